"""``alphaloop evolve``, ``alphaloop pool ...`` and ``alphaloop ui``.

``evolve --json`` prints one object: ``session_id``, ``generations`` (each with ``generation``,
``best_score``, ``median_score``, ``diversity``, ``births`` by operator, ``culled``,
``promoted``, ...), ``champions`` (the final generation's gate candidates and the session's
champions, each with ``id``, ``description``, ``live`` and ``year_ago`` statistics and ``gate``
with ``passed`` and ``reasons``), ``mlflow_experiment_id``, ``mlflow_parent_run_id`` and
``nodes_used`` (the sorted Ray node ids that evaluated genomes in this session; empty with
``--workers 0``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from alphaloop.errors import ConfigError, GenomeError
from alphaloop.jsonout import clean, emit

pool_app = typer.Typer(help="Inspect and export the gene pool.", no_args_is_help=True)

CATALOG_SCHEMA_VERSION = 1
# feedback.json: LiveFeedback records (evolution/feedback.py), one per genome, account and week.
FEEDBACK_SCHEMA_VERSION = 1


def evolve(
    data: Annotated[str, typer.Option("--data", help="Data spec.")] = "synthetic",
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score as of this date (default: the data's last day)."),
    ] = None,
    generations: Annotated[int, typer.Option("--generations", min=1)] = 10,
    population: Annotated[int | None, typer.Option("--population", min=4)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Ray evaluator actors (0 = no Ray).")
    ] = 2,
    window: Annotated[
        int | None, typer.Option("--window", min=40, help="Trading days per window.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last session with this identity.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Session config YAML; its keys override the packaged evolution.yaml.",
        ),
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run generations of the gene pool (scored live vs a year ago, in parallel on Ray)."""
    import pandas as pd
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from alphaloop.home import LabHome
    from arena.kill_switch import read_pause
    from evolution.session import EvolutionSession, load_session_config
    from simulators.data_spec import load_market

    overrides: dict[str, Any] = {}
    if population is not None:
        overrides["evolution"] = {"population": population}
        if population <= 4:
            overrides["evolution"]["immigrants"] = 1
    if window is not None:
        overrides["fitness"] = {"window": window}
    session_config = load_session_config(config, overrides)
    home = LabHome.resolve()
    pause = read_pause(home)
    if pause is not None:
        # Evolution places no order: it runs, and says so.
        typer.echo(f"paused: {pause.describe()} (evolve places no orders and runs)", err=True)
    typer.echo(f"loading data {data!r}...", err=True)
    panel = load_market(data, home=home)
    if as_of is None:
        as_of = str(panel.index[-1].date())
    try:
        as_of_day = pd.Timestamp(as_of).date()
    except ValueError:
        raise ConfigError(f"--as-of {as_of!r}: expected YYYY-MM-DD") from None
    last_day = panel.index[-1].date()
    if as_of_day > last_day:
        raise ConfigError(
            f"--as-of {as_of}: after the data's last day {last_day} ({data!r}); a session is "
            f"scored on bars up to its as-of date, so use --as-of {last_day} or earlier"
        )
    session = EvolutionSession(
        home=home,
        panel=panel,
        data_spec=data,
        as_of=as_of,
        seed=seed,
        config=session_config,
        workers=workers,
        track=not no_mlflow,
    )
    progress = Progress(
        TextColumn("[bold]evolve"),
        BarColumn(),
        TextColumn("gen {task.completed}/{task.total}"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=__import__("rich.console").console.Console(stderr=True),
        transient=False,
    )
    try:
        with progress:
            task = progress.add_task("evolve", total=generations, note="starting")

            def advance(summary: dict[str, Any]) -> None:
                note = (
                    f"best {summary['best_score']:.1f} median {summary['median_score']:.1f} "
                    f"culled {summary['culled']} promoted {summary['promoted']}"
                )
                progress.update(task, completed=summary["generation"] + 1, note=note)

            result = session.run(generations, resume=resume, on_generation=advance)
    finally:
        session.close()
    if json_output:
        emit(result)
        return
    _print_summary(result)


def _print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"session {result['session_id']}")
    for name in ("gen", "best", "median", "diversity", "births", "culled", "promoted", "PBO"):
        table.add_column(name)
    for g in result["generations"]:
        births = ", ".join(f"{k} {v}" for k, v in g["births"].items())
        table.add_row(
            str(g["generation"]),
            f"{g['best_score']:.1f}",
            f"{g['median_score']:.1f}",
            f"{g['diversity']:.3f}",
            births,
            str(g["culled"]),
            str(g["promoted"]),
            "-" if g["pbo"] is None or g["pbo"] != g["pbo"] else f"{g['pbo']:.2f}",
        )
    console.print(table)
    for champion in result["champions"]:
        mark = (
            f"passed the gate, now {champion['status']}"
            if champion["gate"]["passed"]
            else "held back"
        )
        console.print(f"[bold]{champion['id']}[/bold] {mark}: {champion['description']}")
        for reason in champion["gate"]["reasons"]:
            console.print(f"    - {reason}")
    console.print(
        f"MLflow experiment {result['mlflow_experiment_id']}, run {result['mlflow_parent_run_id']}"
    )
    if result.get("nodes_used"):
        nodes = ", ".join(node[:12] for node in result["nodes_used"])
        console.print(f"evaluated on {len(result['nodes_used'])} Ray node(s): {nodes}")


def _store() -> Any:
    from alphaloop.home import LabHome
    from evolution.store import GenePoolStore

    home = LabHome.resolve()
    if not home.gene_pool_db.is_file():
        raise ConfigError(f"no gene pool at {home.gene_pool_db}: run 'alphaloop evolve' first")
    return GenePoolStore(home.gene_pool_db)


@pool_app.command("list")
def pool_list(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="alive, culled, candidate, probation, champion, demoted or retired.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the genomes of the gene pool."""
    from evolution.store import STATUSES

    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status {status!r}: allowed values are {', '.join(STATUSES)}")
    with _store() as store:
        rows = store.list_genomes(status)
    if json_output:
        emit(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gene pool ({len(rows)} genomes)")
    for name in ("id", "status", "score", "style", "operator", "description"):
        table.add_column(name, overflow="fold")
    for row in rows:
        score = row["last_score"]
        table.add_row(
            row["genome_id"],
            row["status"],
            "-" if score is None else f"{score:.1f}",
            row["style"],
            row["operator"],
            row["description"],
        )
    Console().print(table)


@pool_app.command("show")
def pool_show(
    genome_id: Annotated[str, typer.Argument(help="Genome id or unique prefix.")],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one genome: genes, description, lineage, statistics and gate verdicts."""
    with _store() as store:
        record = store.genome(genome_id)
        if record is None:
            raise GenomeError(f"no single genome with id or prefix {genome_id!r} in the pool")
        lineage = store.lineage(record["genome_id"])
    record["genome"] = json.loads(record.pop("genome_json"))
    record["lineage"] = lineage
    if json_output:
        emit(record)
        return
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{record['genome_id']}[/bold] ({record['status']}, {record['style']})")
    console.print(record["description"])
    console.print_json(json.dumps(record["genome"]))
    console.print("[bold]lineage[/bold]")
    for node in lineage:
        parents = ", ".join(node["parents"]) or "founder"
        console.print(
            f"  {node['genome_id']} <- {node['operator']} ({parents}) gen {node['generation']}"
        )
    for verdict in record["verdicts"]:
        mark = "passed" if verdict["passed"] else "failed"
        console.print(f"gate gen {verdict['generation']}: {mark}: {'; '.join(verdict['reasons'])}")
    if record["paused"]:
        console.print("[bold]paused[/bold]: does not trade until `alphaloop pool resume`")
    for move in record["transitions"]:
        change = (
            f"{move['from_status']} -> {move['to_status']}"
            if move["kind"] == "status"
            else move["kind"]
        )
        console.print(f"{move['at']} {change} by {move['actor']}: {move['reason']}")


# --------------------------------------------------------------------------- lifecycle acts
ByOption = Annotated[str | None, typer.Option("--by", help="Who acts (default: the login name).")]


def _actor(by: str | None) -> str:
    import getpass

    if by is not None and not by.strip():
        raise ConfigError("--by: needs a name")
    if by:
        return by.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def _act(genome_id: str, verb: str, allowed: tuple[str, ...], make: Any) -> dict[str, Any]:
    """Apply a user's act on one genome (exact id or unique prefix); one error line otherwise."""
    from alphaloop.home import LabHome
    from alphaloop.pool_acts import act

    return act(LabHome.resolve(), genome_id, verb, allowed, make)


def _report_act(result: dict[str, Any], json_output: bool) -> None:
    if json_output:
        emit(result)
        return
    flag = " (paused)" if result["paused"] else ""
    typer.echo(
        f"{result['genome_id']}: {result['from_status']} -> {result['status']}{flag} "
        f"by {result['actor']}: {result['reason']}"
    )


@pool_app.command("approve")
def pool_approve(
    genome_id: Annotated[str, typer.Argument(help="Genome id or unique prefix.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (stored).")] = "approved",
    by: ByOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approve a gate candidate: it starts probation on paper."""
    from alphaloop.home import LabHome
    from alphaloop.pool_acts import approve

    result = approve(LabHome.resolve(), genome_id, actor=_actor(by), reason=reason)
    _report_act(result, json_output)


@pool_app.command("reject")
def pool_reject(
    genome_id: Annotated[str, typer.Argument(help="Genome id or unique prefix.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (stored; required).")],
    by: ByOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reject a gate candidate: it is retired and never trades."""
    from alphaloop.home import LabHome
    from alphaloop.pool_acts import reject

    if not reason.strip():
        raise ConfigError("--reason: needs a reason")
    result = reject(LabHome.resolve(), genome_id, actor=_actor(by), reason=reason)
    _report_act(result, json_output)


def _flag_act(genome_id: str, kind: str, reason: str, by: str | None, json_output: bool) -> None:
    """Pause or resume a living genome (the pause flag, stored as a transition)."""
    from evolution.store import LIVING, TransitionRecord

    result = _act(
        genome_id,
        kind,
        LIVING,
        lambda gid, status, _paused: TransitionRecord(
            genome_id=gid, from_status=status, to_status=status, kind=kind,
            actor=_actor(by), reason=reason,
        ),
    )  # fmt: skip
    _report_act(result, json_output)


@pool_app.command("pause")
def pool_pause(
    genome_id: Annotated[str, typer.Argument(help="Genome id or unique prefix.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (stored).")] = "paused by a user",
    by: ByOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Take a genome out of trading (it stays in the pool) until `pool resume`."""
    _flag_act(genome_id, "pause", reason, by, json_output)


@pool_app.command("resume")
def pool_resume(
    genome_id: Annotated[str, typer.Argument(help="Genome id or unique prefix.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (stored).")] = "resumed by a user",
    by: ByOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Put a paused genome back into trading."""
    _flag_act(genome_id, "resume", reason, by, json_output)


@pool_app.command("feedback")
def pool_feedback(
    genome_id: Annotated[
        str | None, typer.Argument(help="Genome id or unique prefix (default: all).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the LiveFeedback records: each genome's paper results per account and week."""
    with _store() as store:
        if not store.list_genomes():
            raise GenomeError(f"pool feedback: the gene pool at {store.path} is empty")
        gid = None
        if genome_id is not None:
            record = store.genome(genome_id)
            if record is None:
                raise GenomeError(
                    f"pool feedback {genome_id}: no single genome with that id or prefix"
                )
            gid = record["genome_id"]
        rows = store.feedback(gid)
    if json_output:
        emit({"genome_id": gid, "records": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"paper feedback ({len(rows)} records)")
    for name in ("genome", "account", "period", "days", "return", "max dd", "sharpe", "slip bps",
                 "fill", "rejects", "blocks"):  # fmt: skip
        table.add_column(name)
    for row in rows:
        table.add_row(
            row["genome_id"][:12], row["account"], f"{row['period_start']}..{row['period_end']}",
            str(row["days"]), f"{row['total_return']:+.2%}", f"{row['max_drawdown']:.2%}",
            f"{row['sharpe']:.2f}", f"{row['avg_slippage_bps']:.1f}", f"{row['fill_ratio']:.2f}",
            str(row["order_reject_count"]), str(row["risk_block_count"]),
        )  # fmt: skip
    Console().print(table)


@pool_app.command("export")
def pool_export(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the catalogs into.")],
) -> None:
    """Export a strategy catalog and a generation catalog as versioned JSON."""
    with _store() as store:
        genomes = []
        for row in store.list_genomes():
            record = store.genome(row["genome_id"])
            assert record is not None
            genomes.append(
                {
                    "id": record["genome_id"],
                    "status": record["status"],
                    "style": record["style"],
                    "description": record["description"],
                    "genome": json.loads(record["genome_json"]),
                    "parents": record["parents"],
                    "operator": record["operator"],
                    "born_session": record["born_session"],
                    "born_generation": record["born_generation"],
                    "stats": record["stats"],
                    "verdicts": record["verdicts"],
                    "paused": record["paused"],
                    "transitions": record["transitions"],
                }
            )
        generations = []
        for g in store.all_generations():
            g = {k: v for k, v in g.items() if k != "state"}
            generations.append(g)
        feedback = store.feedback()
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "strategies.json": {
            "kind": "alphaloop.strategy_catalog",
            "schema_version": CATALOG_SCHEMA_VERSION,
            "records": genomes,
        },
        "generations.json": {
            "kind": "alphaloop.generation_catalog",
            "schema_version": CATALOG_SCHEMA_VERSION,
            "records": generations,
        },
        "feedback.json": {
            "kind": "alphaloop.feedback_catalog",
            "schema_version": FEEDBACK_SCHEMA_VERSION,
            "records": feedback,
        },
    }
    for name, payload in files.items():
        target = out / name
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(clean(payload), indent=2, allow_nan=False, default=str))
        os.replace(temporary, target)
    typer.echo(
        f"wrote {len(genomes)} strategies, {len(generations)} generations and "
        f"{len(feedback)} feedback records to {out}",
        err=True,
    )


def ui(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 5000,
) -> None:
    """Start the MLflow UI on the lab's tracking store (every generation is a nested run)."""
    from alphaloop.home import LabHome
    from evolution.tracking import tracking_uri

    home = LabHome.resolve().ensure()
    uri = tracking_uri(home)
    typer.echo(f"MLflow UI on http://{host}:{port} for {uri}", err=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        home.mlflow_artifacts.as_uri(),
        "--host",
        host,
        "--port",
        str(port),
    ]
    raise typer.Exit(subprocess.call(command))
