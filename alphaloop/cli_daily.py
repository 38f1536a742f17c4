"""``alphaloop daily``: the daily runbook (:mod:`alphaloop.daily`), one line per step.

``alphaloop daily [--date D] [--data SPEC] [--config FILE] [--arena-config FILE]`` runs the
trading day's routine: the arena day (what ``arena run`` does: the pre-market plan, trading,
the close, the post-close review, the closed loop), then on their configured days the weekly
evolution, the weekly report, the month-end report and the weekly stress replay, then the
alert rules. ``--config FILE`` overrides the packaged ``ops.yaml`` (the days, the alert rules,
the webhook). Each step prints ``step <name>: done|skipped (already done)|not due (...)|
failed: ...``; ``--json`` prints one object (``date``, ``steps``, ``already_done``, ``ok``).
Re-running a done day changes nothing and says so; a run killed between two steps resumes at
the first step not done. Exit status: 0, 1 when a step failed, 2 on bad input (a bad date, a
day that is not a trading day of the data, a bad config key), with nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from alphaloop.cli_arena import ArenaConfigOption, DataOption, JsonOption, LocalOption
from alphaloop.jsonout import emit


def daily(
    day: Annotated[
        str | None, typer.Option("--date", help="Trading day (default: the data's last).")
    ] = None,
    data: DataOption = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Operations settings (which days the weekly and monthly steps run, the alert "
            "rules, the webhook): a YAML file whose keys override the packaged ops.yaml.",
        ),
    ] = None,
    arena_config: ArenaConfigOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")] = False,
) -> None:
    """Run a trading day's routine: arena day, weekly/monthly steps when due, alerts."""
    from alphaloop.cli_arena import _parse_day
    from alphaloop.daily import DailyContext, StepOutcome, run_daily
    from alphaloop.errors import ConfigError
    from alphaloop.home import LabHome
    from alphaloop.ops_config import load_ops_config
    from arena.market import load_arena_data, trading_days
    from arena.personas import load_arena_config

    # Every check of the input before anything is written.
    target = _parse_day(day, "--date") if day else None
    try:
        ops = load_ops_config(config_file)
    except ConfigError as exc:  # one error line, however many keys are wrong
        raise ConfigError("; ".join(str(exc).splitlines())) from None
    settings = load_arena_config(arena_config)
    home = LabHome.resolve()
    market = load_arena_data(data, home)
    days = trading_days(market.daily)
    if target is None:
        target = days[-1]
    elif target not in set(days):
        raise ConfigError(
            f"--date {target.isoformat()}: not a trading day of --data {market.spec} "
            f"({days[0].isoformat()}..{days[-1].isoformat()})"
        )
    if target == days[0]:
        raise ConfigError(
            f"--date {target.isoformat()}: the data's first day; the arena needs an earlier bar"
        )
    ctx = DailyContext(
        home=home, day=target, market=market, ops=ops, arena_config=settings, local=local,
        track=not no_mlflow, today=datetime.now(UTC).date(),
    )  # fmt: skip

    def say(outcome: StepOutcome) -> None:
        if not as_json:
            typer.echo(outcome.line())

    if not as_json:
        typer.echo(f"daily {target.isoformat()}:")
    result = run_daily(ctx, on_step=say)
    if as_json:
        emit(result)
    elif result["already_done"]:
        typer.echo(f"daily {target.isoformat()}: already done, nothing changed")
    if not result["ok"]:
        raise typer.Exit(1)
