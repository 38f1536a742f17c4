"""The ``alphaloop`` command line.

Each command group lives in its own module (``alphaloop/cli_*.py``) and is registered here.
Heavy libraries (numba, Ray, MLflow, torch) are imported inside the commands, so
``alphaloop --help`` stays fast. Results go to stdout (one JSON object with ``--json``);
progress bars and logs go to stderr. A user mistake (an :class:`AlphaLoopError`) prints one
clear line and exits with status 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Annotated

import typer

from alphaloop import ray_session
from alphaloop.egress import quiet_by_default
from alphaloop.errors import AlphaLoopError, DataWarning
from alphaloop.home import ENV_VAR

app = typer.Typer(
    name="alphaloop",
    help="AlphaLoop Lab: evolve, paper-trade and stress-test systematic strategies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            help="Lab home holding all state (default: $ALPHALOOP_HOME, else ~/.alphaloop).",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join (HOST:PORT of its GCS, or ray://HOST:PORT); default: "
            "$RAY_ADDRESS, else a private local Ray on 127.0.0.1. Never a Ray found running.",
        ),
    ] = None,
) -> None:
    if home:
        # Exported so that Ray workers and sub-processes resolve the same home.
        os.environ[ENV_VAR] = os.path.abspath(os.path.expanduser(home))
    ray_session.use_address(ray_address)


def _register() -> None:
    from alphaloop import (
        cli_arena,
        cli_backtest,
        cli_daily,
        cli_data,
        cli_evolve,
        cli_home,
        cli_memory,
        cli_report,
        cli_rl,
        cli_serve,
        cli_status,
        cli_stress,
    )

    app.add_typer(cli_data.app, name="data")
    app.command("backtest")(cli_backtest.backtest)
    app.command("evolve")(cli_evolve.evolve)
    app.add_typer(cli_evolve.pool_app, name="pool")
    app.command("ui")(cli_evolve.ui)
    app.add_typer(cli_arena.app, name="arena")
    app.add_typer(cli_arena.ledger_app, name="ledger")
    app.add_typer(cli_memory.app, name="memory")
    app.add_typer(cli_rl.app, name="rl")
    app.add_typer(cli_report.app, name="report")
    app.add_typer(cli_stress.app, name="stress")
    app.add_typer(cli_home.app, name="home")
    app.command("status")(cli_status.status)
    app.command("daily")(cli_daily.daily)
    app.command("serve")(cli_serve.serve)


_register()


def _show_data_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    if issubclass(category, DataWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main() -> None:
    """Entry point of the console script."""
    # Before any command imports MLflow or starts Ray: no usage reports unless the user asks.
    quiet_by_default()
    warnings.showwarning = _show_data_warning
    try:
        app()
    except AlphaLoopError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
