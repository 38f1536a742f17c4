"""``alphaloop data ...``: look at market data before trusting it.

``alphaloop data check SPEC [--json]`` loads a ``--data`` spec through the same path every
command uses (cache included), validates it, and prints the quality report: a table on
stdout, or one JSON object with ``--json``. Exit status 0 when the data is usable (warnings
and repairs allowed), 1 when an issue falls under a ``raise`` action, 2 for a bad spec or an
unreachable source (the root command's handling of :class:`AlphaLoopError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Inspect and validate market data (--data SPEC: synthetic, sample, yfinance:..., "
    "akshare:..., or a CSV/Parquet path).",
    no_args_is_help=True,
)


@app.command("check")
def check(
    spec: Annotated[
        str,
        typer.Argument(
            help="Data spec: synthetic[:k=v,...], sample, yfinance:AAPL,MSFT[;start=...], "
            "akshare:600036,sh000001[;interval=5m], PATH[;market=cn], file:PATH[;k=v]."
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Data config YAML: its keys override the packaged one."),
    ] = None,
) -> None:
    """Load SPEC, validate every symbol and print the data quality report."""
    from simulators.data_spec import check_market, load_data_config

    settings = load_data_config(config)
    report = check_market(spec, policy=settings.quality, retry=settings.retry)
    if json_output:
        typer.echo(report.to_json())
    else:
        _print_table(report)
    raise typer.Exit(code=0 if report.ok else 1)


def _print_table(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from simulators.validation import DataQualityReport

    assert isinstance(report, DataQualityReport)
    console = Console(soft_wrap=False)
    bars = ", ".join(f"{symbol}={count}" for symbol, count in report.bars.items())
    console.print(
        f"[bold]{report.source}[/bold]  market={report.market}  calendar={report.calendar}  "
        f"freq={report.freq}  bars: {bars}",
        markup=True,
        highlight=False,
    )
    if report.issues:
        table = Table(show_lines=False)
        for name in ("symbol", "kind", "action", "count", "first timestamps", "detail"):
            table.add_column(name, overflow="fold")
        styles = {"raise": "bold red", "warn": "yellow", "repair": "cyan"}
        for row in report.rows():
            table.add_row(*row, style=styles.get(row[2], ""))
        console.print(table)
    else:
        console.print("no issues")
    if report.ok:
        console.print("[green]OK[/green]")
    else:
        console.print(f"[bold red]FAILED[/bold red]: {len(report.errors)} issue(s) under 'raise'")
