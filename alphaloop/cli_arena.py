"""``alphaloop arena run|replay|status|pause|resume|adjustments`` and ``alphaloop ledger verify``.

``arena run --json`` prints one object: ``date``, ``already_committed``, ``accounts`` (per
account ``equity``, ``return``, ``trades``, ``win_rate``, ``max_drawdown``, ``sharpe``,
``score``), ``benchmark`` (``return``), ``regime`` (label and its inputs), ``risk_events``
(list), ``genomes`` (each genome's day per account: sleeve, P&L, the shadow backtest's expected
P&L and the parts of the difference), ``loop`` (``transitions``: the lifecycle moves the day's
paper record caused), ``report`` (``markdown``, ``html`` paths), ``mlflow_run_id`` (the day's
MLflow run, logged by the command that committed the day; ``null`` when it was already
committed or with ``--no-mlflow``) and
``adjustments`` (``in_force``: the ids the day's plan applied, ``made``: those its review
stored for the next days; absent when ``adjustments.enabled`` is false) and
``arena_config_hash`` (the stable hash of the arena settings the day ran with: the packaged
``arena.yaml`` with ``--arena-config FILE`` over it; ``arena replay --json`` carries it too).

Option names: ``--arena-config FILE`` is the arena's own settings (starting capital, personas,
risk limits, debate) on ``arena run``, ``arena replay`` and ``stress replay``; ``--config FILE``
keeps the meaning it has on each command (on ``arena replay``: the weekly evolution's settings
and the promotion rules, the format of ``evolution.yaml``). Either file names only the keys it
changes; the rest come from the packaged defaults (``alphaloop/configs/``).

The accounts run as Ray actors (``arena/actors.py``): the command joins the cluster the user
named (``alphaloop --ray-address``, ``RAY_ADDRESS``, which ``ray job submit`` sets) or starts a
private local Ray, never one it finds running (``alphaloop/ray_session.py``). ``--local`` keeps
them in this process (same ledger, no Ray). All state is under the lab home: ``ledger.sqlite``
and ``runs/<date>/``.

The kill switch (:mod:`arena.kill_switch`): ``arena pause [--reason TEXT] [--flatten]`` writes
``<home>/paused.json``, ``arena resume [--reason TEXT]`` removes it; both are idempotent (a
second pause, or a resume of a lab that is not paused, says so and exits 0; ``pause
--flatten`` on a plain pause turns it into a flattening one). While paused, ``arena run`` and
``arena replay`` commit their days without new orders (with ``--flatten``: only the sells that
close positions) and say so on stderr; ``arena status`` says so; each ``--json`` object has
``"paused"`` (the pause, or ``null``) and ``arena replay --json`` ``"paused_days"``.

``arena adjustments [--json]`` lists the daily review's adjustments (:mod:`arena.adjustments`),
``--revert ID`` undoes one: an unknown, already reverted or expired id is one ``error:`` line,
exit 2, nothing changed.

``arena status --json`` has ``"partial"``: ``null``, or ``{"day", "committed", "missing"}`` when
only some accounts committed the last day (a crash between two commits).

``arena run`` and ``arena replay`` hold the home's ledger lock (:mod:`alphaloop.locks`) for
their whole run: a second one waits (one ``waiting:`` line on stderr), or after
``$ALPHALOOP_LOCK_TIMEOUT`` seconds stops with an ``error:`` line, having written nothing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from alphaloop.errors import ConfigError
from alphaloop.jsonout import emit
from alphaloop.locks import store_lock

app = typer.Typer(
    help="The daily arena: paper accounts, debate, risk governor, ledger.", no_args_is_help=True
)
ledger_app = typer.Typer(help="The arena's ledger.", no_args_is_help=True)

DataOption = Annotated[
    str | None, typer.Option("--data", help="Data spec (default: the embedded synthetic market).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Run the accounts in this process instead of Ray actors.")
]
NoMlflowOption = Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")]
ArenaConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--arena-config",
        help="The arena's settings (starting capital, personas, risk limits, debate): a YAML "
        "file whose keys override the packaged arena.yaml.",
    ),
]


def _say_if_paused(home: Any) -> None:
    """Print the kill switch's notice on stderr when the lab is paused."""
    from arena.kill_switch import read_pause

    pause = read_pause(home)
    if pause is not None:
        typer.echo(f"paused: {pause.describe()}", err=True)


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a date YYYY-MM-DD") from None


def _accounts(local: bool, home: Any, config: Any, data: Any) -> Any:
    """Wire the accounts once (:func:`alphaloop.arena_accounts.open_accounts`)."""
    from alphaloop.arena_accounts import open_accounts

    return open_accounts(local, home, config, data)


@app.command("run")
def run(
    day: Annotated[
        str | None, typer.Option("--date", help="Trading day (default: the data's last).")
    ] = None,
    data: DataOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute a committed day and replace it.")
    ] = False,
    as_json: JsonOption = False,
    local: LocalOption = False,
    no_mlflow: NoMlflowOption = False,
    arena_config: ArenaConfigOption = None,
) -> None:
    """Run one arena day (perceive, plan, debate, risk, execute, close, report)."""
    from alphaloop.home import LabHome
    from arena.day import refuse_broken_ledger, run_arena_day
    from arena.market import load_arena_data, trading_days
    from arena.personas import load_arena_config
    from arena.season import closed_loop

    config = load_arena_config(arena_config)
    home = LabHome.resolve().ensure()
    market = load_arena_data(data, home)
    target = _parse_day(day, "--date") if day else trading_days(market.daily)[-1]
    # One writer of the ledger at a time, from the checks to the MLflow run: a second `arena
    # run` of the day waits here, then finds the day committed and logs nothing.
    with store_lock(home, "ledger", purpose=f"arena run --date {target.isoformat()}"):
        refuse_broken_ledger(home)  # before any account restores its books from the ledger
        _say_if_paused(home)
        with _accounts(local, home, config, market) as accounts:
            summary = run_arena_day(accounts, market, target, home=home, config=config, force=force)
        # The loop closes: the day's paper record into the gene pool, promotions and demotions.
        loop_day = closed_loop(home, market)(target)
        summary["loop"] = {"transitions": list(loop_day.transitions)}
        summary["arena_config_hash"] = config.stable_hash()
        summary["mlflow_run_id"] = None
        if not no_mlflow and not summary["already_committed"]:
            from arena.tracking import log_arena_day

            # One MLflow run per committed day: the run that committed it logs it.
            summary["mlflow_run_id"] = log_arena_day(home, summary, data_spec=market.spec)
    if as_json:
        emit(summary)
        return
    state = "already committed" if summary["already_committed"] else "committed"
    if summary["paused"] is not None and not summary["already_committed"]:
        state += " while paused (flatten)" if summary["paused"]["flatten"] else " while paused"
    typer.echo(f"{summary['date']}: {state}")
    for name, figures in summary["accounts"].items():
        typer.echo(
            f"  {name:<13} equity {figures['equity']:>16,.2f}  return {figures['return']:+.4%}"
            f"  trades {figures['trades']}"
        )
    for move in summary["loop"]["transitions"]:
        typer.echo(f"  {move['genome_id']}: {move['from']} -> {move['to']}: {move['reason']}")
    typer.echo(f"  report: {summary['report']['markdown']}")


@app.command("replay")
def replay(
    start: Annotated[str, typer.Option("--start", help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day YYYY-MM-DD.")],
    data: DataOption = None,
    as_json: JsonOption = False,
    evolve_weekday: Annotated[
        int, typer.Option("--evolve-weekday", min=-1, max=6, help="0=Mon..6=Sun; -1 never.")
    ] = 4,
    generations: Annotated[
        int, typer.Option("--generations", min=1, help="Generations per weekly evolution.")
    ] = 5,
    population: Annotated[
        int | None,
        typer.Option("--population", min=4, help="Population of the weekly evolution (16)."),
    ] = None,
    window: Annotated[
        int | None, typer.Option("--window", min=20, help="Fitness window of the evolution.")
    ] = None,
    holdout: Annotated[
        int | None,
        typer.Option("--holdout", min=10, help="Days before each as-of fitness never sees."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the weekly evolution.")] = 0,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The weekly evolution's settings and the promotion rules (the format of the "
            "packaged evolution.yaml, whose keys it overrides); --population, --window and "
            "--holdout override it. The arena's own settings: --arena-config.",
        ),
    ] = None,
    open_loop: Annotated[
        bool,
        typer.Option(
            "--open-loop",
            help="Do not feed paper results back (no probation verdicts, no demotion).",
        ),
    ] = False,
    local: LocalOption = False,
    no_mlflow: NoMlflowOption = False,
    arena_config: ArenaConfigOption = None,
) -> None:
    """Replay a season day after day (resumable), evolving the gene pool once a week."""
    from alphaloop.home import LabHome
    from arena.market import load_arena_data
    from arena.personas import load_arena_config

    config = load_arena_config(arena_config)
    home = LabHome.resolve().ensure()
    market = load_arena_data(data, home)
    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    if first > last:
        raise ConfigError(f"--start {start} is after --end {end}")
    with store_lock(home, "ledger", purpose=f"arena replay --start {start} --end {end}"):
        _replay(
            home, market, first, last, config, as_json=as_json, evolve_weekday=evolve_weekday,
            generations=generations, population=population, window=window, holdout=holdout,
            seed=seed, config_file=config_file, open_loop=open_loop, local=local,
            no_mlflow=no_mlflow,
        )  # fmt: skip


def _replay(
    home: Any,
    market: Any,
    first: date,
    last: date,
    config: Any,
    *,
    as_json: bool,
    evolve_weekday: int,
    generations: int,
    population: int | None,
    window: int | None,
    holdout: int | None,
    seed: int,
    config_file: Path | None,
    open_loop: bool,
    local: bool,
    no_mlflow: bool,
) -> None:
    """The season of `arena replay`, run under the ledger's lock."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from arena.day import refuse_broken_ledger
    from arena.season import closed_loop, replay_season, season_days, weekly_evolution

    refuse_broken_ledger(home)  # before any account restores its books from the ledger
    _say_if_paused(home)
    total = len(season_days(market, first, last))
    session_config = None
    if config_file is not None:
        from evolution.session import load_session_config

        overrides: dict[str, Any] = {}
        if population is not None:
            overrides["evolution"] = {"population": population}
        if window is not None:
            overrides["fitness"] = {"window": window}
        if holdout is not None:
            overrides["holdout"] = holdout
        session_config = load_session_config(config_file, overrides=overrides)
    evolve = weekly_evolution(
        home,
        market,
        generations=generations,
        population=16 if population is None else population,
        seed=seed,
        window=window,
        holdout=holdout,
        track=not no_mlflow,
        config=session_config,
    )
    progress = Progress(
        TextColumn("replay"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[note]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=as_json,
    )

    def on_day(summary: dict[str, Any]) -> None:
        if not no_mlflow and not summary["already_committed"]:
            from arena.tracking import log_arena_day

            log_arena_day(home, summary, data_spec=market.spec)
        progress.advance(task)
        progress.update(task, note=summary["date"])

    with progress:
        task = progress.add_task("replay", total=total, note="")
        with _accounts(local, home, config, market) as accounts:
            result = replay_season(
                accounts, market, first, last, home=home, config=config,
                evolve_weekday=None if evolve_weekday < 0 else evolve_weekday,
                evolve=evolve, on_day=on_day,
                close=None
                if open_loop
                else closed_loop(
                    home,
                    market,
                    promotion=None if session_config is None else session_config.promotion,
                ),
            )  # fmt: skip
    result["arena_config_hash"] = config.stable_hash()
    if as_json:
        emit(result)
        return
    typer.echo(
        f"replayed {result['start']}..{result['end']}: {result['ran']} day(s) run, "
        f"{result['skipped']} already committed, {len(result['evolutions'])} evolution(s)"
    )
    for week in result["evolutions"]:
        births = ", ".join(f"{k} {v}" for k, v in week.get("births", {}).items()) or "none"
        typer.echo(
            f"  evolution as of {week['as_of']}: {week.get('generations', 0)} generation(s), "
            f"births {births}, {week.get('passed_gate', 0)} passed the gate"
        )
    if result["paused_days"]:
        typer.echo(
            f"  paused: {len(result['paused_days'])} day(s) committed without new orders "
            f"({result['paused_days'][0]}..{result['paused_days'][-1]})"
        )
    if result["paused"] is not None:
        typer.echo(f"  paused: {result['paused']['reason']} (still paused)")
    loop = result.get("loop")
    if loop is None:
        typer.echo("  open loop: paper results were not fed back")
    else:
        typer.echo(
            f"  loop: {loop['paper_days']} genome paper day(s), "
            f"{len(loop['promoted'])} promotion(s), {len(loop['demoted'])} demotion(s)"
        )
        for move in loop["transitions"]:
            typer.echo(
                f"    {move['day']} {move['genome_id']}: {move['from']} -> {move['to']}: "
                f"{move['reason']}"
            )


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Show the last committed day, each account's equity and whether the lab is paused."""
    from alphaloop.home import LabHome
    from arena.season import arena_status

    result = arena_status(LabHome.resolve())
    if as_json:
        emit(result)
        return
    partial = result["partial"]
    if partial is None:
        typer.echo(f"last committed day: {result['last_committed'] or 'none'}")
    else:
        typer.echo(
            f"last committed day: {partial['day']} (partial: committed for "
            f"{', '.join(partial['committed'])}, not for {', '.join(partial['missing'])}; "
            f"finish it with alphaloop arena run --date {partial['day']})"
        )
    paused = result["paused"]
    if paused is None:
        typer.echo("paused: no")
    else:
        what = "flatten: each day only closes positions" if paused["flatten"] else "no new orders"
        typer.echo(
            f"paused: yes, since {paused['since']} by {paused['who']} ({what}): {paused['reason']}"
        )
    for name, figures in result["accounts"].items():
        typer.echo(f"  {name:<13} {figures['day']}  equity {figures['equity']:,.2f}")


ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why (recorded with the time and your login).")
]


@app.command("pause")
def pause(
    reason: ReasonOption = None,
    flatten: Annotated[
        bool,
        typer.Option(
            "--flatten",
            help="Close every position on the next days (sells only, as the order rule allows: "
            "sellable quantity, whole lots), then hold cash.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Pause the lab (kill switch): no new orders on any later day until `arena resume`.

    Days are still committed (marks, equity, the pause's risk events). Idempotent: pausing a
    paused lab changes nothing, except that --flatten turns a plain pause into a flattening one.
    """
    from alphaloop.home import LabHome
    from arena.kill_switch import pause_lab

    change = pause_lab(LabHome.resolve(), reason=reason, flatten=flatten)
    if as_json:
        emit(change.to_dict())
        return
    typer.echo(change.message)


@app.command("resume")
def resume(reason: ReasonOption = None, as_json: JsonOption = False) -> None:
    """Lift the pause: the next day trades again. Idempotent (not paused: nothing to do)."""
    from alphaloop.home import LabHome
    from arena.kill_switch import resume_lab

    change = resume_lab(LabHome.resolve(), reason=reason)
    if as_json:
        emit(change.to_dict())
        return
    typer.echo(change.message)


@ledger_app.command("verify")
def verify(
    as_json: JsonOption = False,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Look for missing days in this data's trading days (default: the days the "
            "ledger's accounts committed).",
        ),
    ] = None,
) -> None:
    """Re-derive the books from the fills and recompute the hash chain; report every issue."""
    from alphaloop.home import LabHome
    from arena.ledger import Ledger

    home = LabHome.resolve()
    if not home.ledger_db.exists():
        result: dict[str, Any] = {
            "ok": True, "accounts": [], "days_checked": 0, "fills_checked": 0, "issues": [],
            "first_broken": {}, "chain_heads": {}, "ledger": str(home.ledger_db),
            "note": "no ledger yet",
        }  # fmt: skip
    else:
        calendar = None
        if data is not None:
            from arena.market import load_arena_data, trading_days

            calendar = trading_days(load_arena_data(data, home).daily)
        with Ledger(home.ledger_db) as ledger:
            result = ledger.verify(
                ledger.recorded_days() if calendar is None else calendar
            ).to_dict()
        result["ledger"] = str(home.ledger_db)
    if as_json:
        emit(result)
    else:
        typer.echo(f"ok: {str(result['ok']).lower()}")
        for account, day in result.get("first_broken", {}).items():
            typer.echo(f"  first broken day of {account}: {day or 'none (no day)'}")
        for issue in result["issues"]:
            typer.echo(f"  {issue['kind']} {issue['account']} {issue['day']}: {issue['detail']}")
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("adjustments")
def adjustments(
    as_json: JsonOption = False,
    revert: Annotated[
        str | None,
        typer.Option("--revert", help="Undo the adjustment with this id (it applies no more)."),
    ] = None,
) -> None:
    """List the daily review's adjustments (in force or not), or revert one with --revert ID.

    ``--json`` prints ``{"adjustments": [...], "next_day": ...}`` (each record: id, account,
    parameter, old_value, new_value, reason, lesson, created_day, expires_day, reverted_at,
    in_force on the next day), or with ``--revert`` ``{"reverted": record}``. An unknown,
    already reverted or expired id is one ``error:`` line, exit 2, nothing changed.
    """
    from datetime import timedelta

    from alphaloop.home import LabHome
    from arena.adjustments import AdjustmentStore, adjustments_db
    from arena.ledger import Ledger

    home = LabHome.resolve()
    last = None
    if home.ledger_db.exists():
        with Ledger(home.ledger_db) as ledger:
            last = ledger.last_committed_day()
    next_day = None if last is None else last + timedelta(days=1)
    path = adjustments_db(home)
    if revert is not None:
        if not path.exists():
            raise ConfigError(
                f"arena adjustments --revert {revert!r}: no such adjustment ({path} does not "
                "exist: no day has made one)"
            )
        with AdjustmentStore(path) as store:
            record = store.revert(revert, next_day=next_day)
        if as_json:
            emit({"reverted": record.to_dict()})
            return
        typer.echo(
            f"reverted {record.id}: {record.parameter} of {record.account} is configured again"
        )
        return
    records = []
    if path.exists():
        with AdjustmentStore(path) as store:
            records = store.all()
    rows = [
        {**r.to_dict(), "in_force": next_day is not None and r.in_force(next_day)} for r in records
    ]
    if as_json:
        emit({"adjustments": rows, "next_day": None if next_day is None else next_day.isoformat()})
        return
    if not rows:
        typer.echo("no adjustment stored")
        return
    for row in rows:
        state = "reverted" if row["reverted_at"] else ("in force" if row["in_force"] else "idle")
        typer.echo(
            f"{row['id']}  {row['parameter']} {row['old_value']:.4g} -> {row['new_value']:.4g} "
            f"until {row['expires_day']} [{state}]: {row['reason']}"
        )
