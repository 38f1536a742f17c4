"""``alphaloop report weekly|monthly``: the weekly evolution and monthly review reports.

``report weekly [--week YYYY-Www]`` (default: the ISO week of the last committed arena day,
else the current week) and ``report monthly [--month YYYY-MM]`` (default: the month of the
last committed arena day, else the current month) write Markdown + self-contained HTML under
``<lab home>/reports/weekly/<YYYY-Www>/`` and ``reports/monthly/<YYYY-MM>/`` and log them to
MLflow (experiment ``alphaloop-reports``). ``--json`` prints one object: ``period``,
``markdown``, ``html``, ``mlflow_run_id`` and the headline figures (see
:mod:`reports.weekly` and :mod:`reports.monthly`).

The benchmark and the chasing detector need the arena's market: ``--data SPEC``, by default
the data spec of the newest gene-pool session, else the embedded synthetic market. A bad
period, or a period with nothing to report, prints one ``error:`` line and exits with 2.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from alphaloop.errors import AlphaLoopError
from alphaloop.jsonout import emit

app = typer.Typer(help="Weekly and monthly evolution reports.", no_args_is_help=True)

DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Market data spec for the benchmark and chasing (default: the gene pool's newest "
        "session's, else the embedded synthetic market).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
NoMlflowOption = Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")]


def _closes(spec: str | None, home: Any) -> Any:
    from arena.market import load_arena_data
    from reports.weekly import PoolView, closes_frame

    if spec is None:
        sessions = PoolView(path=home.gene_pool_db).sessions()
        if sessions:
            spec = str(sessions[-1]["data_spec"]) or None
    return closes_frame(load_arena_data(spec, home).daily)


def _fail(exc: AlphaLoopError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(result)
        return
    typer.echo(f"{result['kind']} report {result['period']}")
    typer.echo(f"  markdown: {result['markdown']}")
    typer.echo(f"  html:     {result['html']}")
    if result["mlflow_run_id"]:
        typer.echo(f"  mlflow run: {result['mlflow_run_id']}")


@app.command("weekly")
def weekly(
    week: Annotated[
        str | None,
        typer.Option("--week", help="ISO week YYYY-Www (default: the last arena day's week)."),
    ] = None,
    data: DataOption = None,
    as_json: JsonOption = False,
    no_mlflow: NoMlflowOption = False,
) -> None:
    """Write the week's evolution report: births, culls, ranking, lineage, accounts, lessons."""
    from alphaloop.home import LabHome
    from reports.weekly import default_week, parse_week, write_weekly_report

    try:
        period = parse_week(week) if week is not None else None
        home = LabHome.resolve().ensure()
        period = period or default_week(home)
        result = write_weekly_report(home, period, closes=_closes(data, home), track=not no_mlflow)
    except AlphaLoopError as exc:
        _fail(exc)
        return
    _print(result, as_json)


@app.command("monthly")
def monthly(
    month: Annotated[
        str | None,
        typer.Option("--month", help="Month YYYY-MM (default: the last arena day's month)."),
    ] = None,
    data: DataOption = None,
    as_json: JsonOption = False,
    no_mlflow: NoMlflowOption = False,
) -> None:
    """Write the month's review: top/bottom trades, biases, principles, evolution's direction."""
    from alphaloop.home import LabHome
    from reports.monthly import write_monthly_report
    from reports.weekly import LedgerView, month_of, parse_month

    try:
        period = parse_month(month) if month is not None else None
        home = LabHome.resolve().ensure()
        if period is None:
            days = LedgerView.load(home.ledger_db).days()
            period = month_of(days[-1] if days else date.today())
        result = write_monthly_report(home, period, closes=_closes(data, home), track=not no_mlflow)
    except AlphaLoopError as exc:
        _fail(exc)
        return
    _print(result, as_json)
