"""``alphaloop backtest``: run a reference strategy through the exact backtester.

Registered by :mod:`alphaloop.cli` as ``app.command("backtest")(backtest)``. With ``--json``
stdout is exactly one JSON object (see :meth:`BacktestResult.to_json_dict`); progress and
notes go to stderr. Without it a readable table is printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alphaloop.errors import DataSpecError, GenomeError, StrategyParamError

if TYPE_CHECKING:
    from genome.genes import Genome
    from simulators.backtest import BacktestConfig, BacktestResult
    from simulators.bars import Panel


def _parse_params(pairs: list[str]) -> dict[str, float | int]:
    params: dict[str, float | int] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StrategyParamError(f"--param {pair!r}: expected NAME=VALUE, e.g. fast=10")
        try:
            number = float(raw)
        except ValueError:
            raise StrategyParamError(
                f"--param {pair!r}: value of {key!r} must be a number, got {raw!r}"
            ) from None
        params[key] = int(number) if number.is_integer() and "." not in raw else number
    return params


def _load_panel(data: str) -> Panel:
    """Load ``--data`` through the shared data-spec loader."""
    from simulators.data_spec import load_market

    return load_market(data)


def backtest(
    data: Annotated[
        str, typer.Option("--data", help="Data spec (default: the seeded synthetic market).")
    ] = "synthetic",
    symbol: Annotated[
        list[str] | None,
        typer.Option("--symbol", help="Symbol(s) to trade (repeatable; default: all)."),
    ] = None,
    strategy: Annotated[
        str, typer.Option("--strategy", help="sma-cross, rsi or breakout.")
    ] = "sma-cross",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Strategy parameter NAME=VALUE (repeatable)."),
    ] = None,
    fill: Annotated[
        str, typer.Option("--fill", help="next-open (default) or close.")
    ] = "next-open",
    cash: Annotated[float, typer.Option("--cash", help="Initial cash.")] = 100_000.0,
    market: Annotated[
        str | None,
        typer.Option("--market", help="Market rules: none, cn, us, crypto (default: the data's)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    genome: Annotated[
        str | None,
        typer.Option(
            "--genome",
            help="Backtest a genome instead: a JSON file, or an id (or unique prefix) in the pool.",
        ),
    ] = None,
) -> None:
    """Backtest a reference strategy (or a genome) on a market and print metrics and trades."""
    from alphaloop.config import validate_config
    from simulators.backtest import BacktestConfig, run_strategy

    params = _parse_params(param or [])
    config = validate_config(
        BacktestConfig,
        {"cash": cash, "fill": fill, "market": market},
        "command line (--cash/--fill/--market)",
    )
    typer.echo(f"loading data {data!r}...", err=True)
    panel = _load_panel(data)
    if symbol:
        try:
            # Their own bars: a symbol from a folder backtests as its own file does.
            panel = panel.select(list(symbol), own_bars=True)
        except KeyError as exc:
            raise DataSpecError(f"--symbol: {exc.args[0]}") from None
    typer.echo(
        f"backtesting {'a genome' if genome else strategy} on {panel.n_assets} symbol(s) x "
        f"{panel.n_bars} bars...",
        err=True,
    )
    if genome is not None:
        if param:
            raise StrategyParamError("--param applies to reference strategies, not to --genome")
        result = _run_genome(genome, panel, config)
    else:
        result = run_strategy(panel, strategy, params, config)
    if json_output:
        sys.stdout.write(json.dumps(result.to_json_dict(), allow_nan=False) + "\n")
        return
    _print_table(result)


def load_genome_argument(value: str) -> Genome:
    """Return the genome named by ``--genome``: a JSON file path, or an id/prefix in the pool."""
    from alphaloop.home import LabHome
    from evolution.store import GenePoolStore
    from genome.genes import Genome

    path = Path(value).expanduser()
    if path.is_file():
        try:
            return Genome.from_json(path.read_text(encoding="utf-8"))
        except GenomeError as exc:
            raise GenomeError(f"{path}: {exc}") from None
    home = LabHome.resolve()
    if not home.gene_pool_db.is_file():
        raise GenomeError(
            f"--genome {value!r}: no such file, and no gene pool at {home.gene_pool_db}"
        )
    with GenePoolStore(home.gene_pool_db) as store:
        record = store.genome(value)
    if record is None:
        raise GenomeError(
            f"--genome {value!r}: no such file, and no single genome with that id (or prefix) "
            f"in {home.gene_pool_db}"
        )
    return Genome.from_json(record["genome_json"])


def _run_genome(value: str, panel: Panel, config: BacktestConfig) -> BacktestResult:
    from genome.compile import compile_and_backtest

    genome = load_genome_argument(value)
    typer.echo(f"genome {genome.id}: {genome.describe()}", err=True)
    if config.sizing == "all-in":
        # The genome sizes its own positions (fraction of equity per entry).
        config = config.model_copy(update={"sizing": "fraction"})
    return compile_and_backtest(genome, panel, config)


def _print_table(result: BacktestResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    summary = Table(title=f"{result.strategy} {result.params}")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for key, value in result.metrics.items():
        summary.add_row(key, f"{value:,.4f}")
    console.print(summary)
    trades = Table(title=f"trades ({len(result.trades)}, last 20)")
    for name in ("symbol", "entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"):
        trades.add_column(name)
    for row in result.trades.tail(20).itertuples(index=False):
        trades.add_row(
            row.symbol,
            str(row.entry_time.date()),
            "open" if row.exit_idx < 0 else str(row.exit_time.date()),
            f"{row.entry_price:,.4f}",
            f"{row.exit_price:,.4f}",
            f"{row.size:,.4f}",
            f"{row.pnl:,.2f}",
        )
    console.print(trades)
