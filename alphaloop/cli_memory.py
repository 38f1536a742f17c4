"""``alphaloop memory search|show``: the arena's experience memory (:mod:`arena.memory`).

``memory search [--regime R] [--style S] [--kind day|trade] [--limit N] [--json]`` lists the
stored episodes, newest first (``--json``: one object, ``{"episodes": [...], "count": n}``,
each episode's summary: id, kind, day, known, account, regime, style, genome id, outcome
return, importance). ``memory show ID [--json]`` prints one episode in full (context, genes,
debate and execution figures, outcome). An unknown regime, style, kind or id is one
``error:`` line and exit status 2; nothing is written (a home without a memory gets none
created: the search finds no episode).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from alphaloop.errors import ConfigError
from alphaloop.jsonout import emit

app = typer.Typer(help="The arena's experience memory (episodes).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
KINDS = ("day", "trade")


def _summary(episode: Any) -> dict[str, Any]:
    return {
        "episode_id": episode.episode_id,
        "kind": episode.kind,
        "day": episode.day.isoformat(),
        "known": episode.known.isoformat(),
        "account": episode.account,
        "regime": episode.regime,
        "style": episode.style,
        "genome_id": episode.genome_id,
        "outcome_return": episode.outcome_return,
        "importance": episode.importance,
    }


def _episodes(home: Any, **filters: Any) -> list[Any]:
    from arena.memory import MemoryStore

    if not home.memory_db.exists():
        return []
    with MemoryStore(home.memory_db) as store:
        return store.episodes(**filters)


@app.command("search")
def search(
    regime: Annotated[
        str | None, typer.Option("--regime", help="bull, bear, range, high_vol or unknown.")
    ] = None,
    style: Annotated[
        str | None,
        typer.Option("--style", help="trend, mean_reversion, breakout or defensive (trades)."),
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="day or trade.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most episodes shown.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the remembered episodes, newest first."""
    from alphaloop.home import LabHome
    from genome.bounds import REGIMES, STYLES

    if regime is not None and regime not in (*REGIMES, "unknown"):
        raise ConfigError(
            f"--regime {regime!r}: unknown regime (one of {', '.join((*REGIMES, 'unknown'))})"
        )
    if style is not None and style not in STYLES:
        raise ConfigError(f"--style {style!r}: unknown style (one of {', '.join(STYLES)})")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: unknown kind (one of {', '.join(KINDS)})")
    home = LabHome.resolve()
    found = _episodes(home, kind=kind, regime=regime, style=style)
    found.sort(key=lambda e: (e.known, e.day, e.episode_id), reverse=True)
    shown = [_summary(e) for e in found[:limit]]
    if as_json:
        emit({"count": len(found), "episodes": shown})
        return
    if not shown:
        typer.echo("no episode")
        return
    for item in shown:
        typer.echo(
            f"{item['episode_id']}  {item['kind']:<5}  {item['day']}..{item['known']}  "
            f"{item['account']:<12}  {item['regime']:<8}  {item['style'] or '-':<14}  "
            f"return {item['outcome_return']:+.2%}  importance {item['importance']:.2f}"
        )
    if len(found) > limit:
        typer.echo(f"({len(found) - limit} more; --limit)")


@app.command("show")
def show(
    episode_id: Annotated[str, typer.Argument(help="Episode id (from memory search).")],
    as_json: JsonOption = False,
) -> None:
    """Print one episode in full."""
    from alphaloop.home import LabHome
    from arena.memory import MemoryStore

    home = LabHome.resolve()
    episode = None
    if home.memory_db.exists():
        with MemoryStore(home.memory_db) as store:
            episode = store.episode(episode_id)
    if episode is None:
        raise ConfigError(f"memory show {episode_id!r}: no such episode in {home.memory_db}")
    data = episode.to_dict()
    if as_json:
        emit(data)
        return
    for key, value in data.items():
        typer.echo(f"{key}: {value}")
