"""``alphaloop stress list|replay``: the weekly stress-test replay (``arena/stress.py``).

``stress replay --json`` prints one object: ``date``, ``seed``, ``size``, ``config_hash``,
``passed``, ``scenarios`` (each ``name``, ``passed``, ``checks`` (``name``, ``passed``,
``detail``), ``accounts`` (per account ``loss``, ``max_drawdown``, ``exposure_at_start``,
``seeded``, ``stress_orders``, ``stress_fills``), ``report`` (path of the HTML report)),
``report`` (``markdown``, ``html``) and ``mlflow_run_id``; each scenario also says what it
executed on (``execution``) and the exchange halts it used per stress day and where they came
from (``halts``). The exit status is 1 when any check failed, 2 on a user mistake (an unknown
scenario, ``--data`` a scenario cannot replay: for example an intraday file without the 2016
breaker sessions). A scenario whose accounts held no book (the ``exposure`` check, e.g. an
index-only ``--data`` file one lot of which costs more than the position limit) also prints
``error: <scenario>: <why>`` on stderr and exits 1: it never passes on an empty book. The
replay runs in its own sandbox under ``<lab home>/stress/<date>/`` and never writes the
arena's ledger or gene pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alphaloop.cli_arena import ArenaConfigOption
from alphaloop.jsonout import emit

app = typer.Typer(
    help="Weekly stress-test replay: named crises and injected faults through the accounts.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List the scenarios, the facts each is built on and the checks that apply."""
    from arena.stress import EXPOSURE_CHECK
    from simulators.scenarios import list_scenarios

    # Every replay ends with the exposure check (arena/stress.py: no pass on an empty book).
    scenarios = [
        {**info.to_dict(), "checks": [*info.checks, EXPOSURE_CHECK]} for info in list_scenarios()
    ]
    if as_json:
        emit({"scenarios": scenarios})
        return
    for info in scenarios:
        typer.echo(f"{info['name']:<26} {info['title']}")
        typer.echo(f"{'':<26} checks: {', '.join(info['checks'])}")  # type: ignore[arg-type]


@app.command("replay")
def replay_command(
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="Scenario to replay (repeat the option for several)."),
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every scenario.")] = False,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Real bars (a data spec): daily or intraday (1min-1h) for cn-crash-2015, "
            "intraday for cn-circuit-breaker-2016 (the halts are read from the bars).",
        ),
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="small or full (default: the stress config's).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Root seed.")] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The stress replay's settings: a YAML file whose keys override the packaged "
            "stress.yaml (--size and --seed override it).",
        ),
    ] = None,
    arena_config: ArenaConfigOption = None,
    as_json: JsonOption = False,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
) -> None:
    """Replay scenarios through the accounts in a sandbox; exit 1 when a check fails."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from alphaloop.errors import ConfigError
    from alphaloop.home import LabHome
    from arena.kill_switch import read_pause
    from arena.personas import load_arena_config
    from arena.stress import EXPOSURE_CHECK, load_stress_config, replay
    from simulators.scenarios import SCENARIOS

    names = list(SCENARIOS) if replay_all else list(scenario or [])
    if not names:
        raise ConfigError(
            f"stress replay: name a --scenario (one of {', '.join(SCENARIOS)}) or pass --all"
        )
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ConfigError(
            f"unknown stress scenario(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(SCENARIOS)}"
        )
    if size is not None and size not in ("small", "full"):
        raise ConfigError(f"--size {size!r}: expected small or full")
    stress_config = load_stress_config(config_file)
    arena_settings = load_arena_config(arena_config)
    home = LabHome.resolve().ensure()
    pause = read_pause(home)
    if pause is not None:
        # The scenarios trade fresh sandbox ledgers, never the lab's accounts.
        typer.echo(
            f"paused: {pause.describe()} (stress replays trade only their sandboxes and run)",
            err=True,
        )
    progress = Progress(
        TextColumn("stress"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[note]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=as_json,
    )
    with progress:
        task = progress.add_task("stress", total=len(names), note="")

        def done(name: str) -> None:
            progress.advance(task)
            progress.update(task, note=name)

        result = replay(
            names, home=home, data_spec=data, config=stress_config, arena_config=arena_settings,
            seed=seed, size=size, track=not no_mlflow, on_scenario=done,
        )  # fmt: skip
    if as_json:
        emit(result)
    else:
        for entry in result["scenarios"]:
            typer.echo(f"{entry['name']}: {'PASS' if entry['passed'] else 'FAIL'}")
            for check in entry["checks"]:
                typer.echo(f"  {'ok  ' if check['passed'] else 'FAIL'} {check['name']}")
        typer.echo(f"report: {result['report']['html']}")
    for entry in result["scenarios"]:
        for check in entry["checks"]:
            if check["name"] == EXPOSURE_CHECK and not check["passed"]:
                typer.echo(f"error: {entry['name']}: {check['detail']['why']}", err=True)
    if not result["passed"]:
        raise typer.Exit(1)
