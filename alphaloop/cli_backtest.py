"""``alphaloop backtest``: run a reference strategy through the exact backtester.

Registered by :mod:`alphaloop.cli` as ``app.command("backtest")(backtest)``. With ``--json``
stdout is exactly one JSON object: :meth:`BacktestResult.to_json_dict` plus
``"buy_and_hold"`` (the equal-weight buy-and-hold of the same panel under the same costs and
rules: :data:`simulators.explain.BUY_AND_HOLD_METRICS` and ``"not_bought"``) and
``"why_no_trades"`` (a sentence when no trade closed, else ``null``); progress and notes go to
stderr. Without it a readable table is printed: the strategy's metrics beside buy-and-hold's,
the last trades (with times to the minute on intraday bars) and why there were no trades.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alphaloop.errors import ConfigError, DataSpecError, GenomeError, StrategyParamError

if TYPE_CHECKING:
    import pandas as pd

    from genome.genes import Genome
    from simulators.backtest import BacktestConfig, BacktestResult
    from simulators.bars import Panel
    from simulators.explain import BuyAndHold

# The command-line option of each BacktestConfig field it sets (errors name the option).
_OPTION_OF_FIELD = {
    "cash": "--cash",
    "fill": "--fill",
    "market": "--market",
    "commission_rate": "--commission",
    "slippage": "--slippage",
    "sizing": "--sizing",
    "fraction": "--fraction",
}
_SOURCE = "command line"


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


def _backtest_config(values: dict[str, Any], *, market_from_data: bool = False) -> BacktestConfig:
    """Validate the options through :func:`validate_config`; errors name the option."""
    from alphaloop.config import validate_config
    from simulators.backtest import BacktestConfig

    try:
        return validate_config(BacktestConfig, values, _SOURCE)
    except ConfigError as exc:
        lines = [_name_option(line, values, market_from_data) for line in str(exc).splitlines()]
        raise ConfigError("\n".join(lines)) from None


def _name_option(line: str, values: dict[str, Any], market_from_data: bool) -> str:
    for name, option in _OPTION_OF_FIELD.items():
        line = line.replace(f"key '{name}'", f"{option} (key '{name}')")
    if "key '<root>'" not in line:
        return line
    # A cross-field check of BacktestConfig: say which options clash and how to fix it.
    line = line.replace("Value error, ", "")
    if values.get("market") == "none" and values.get("commission_rate") not in (None, 0.0):
        whose = (
            "the data's market 'none' (no --market given)" if market_from_data else "--market none"
        )
        return line.replace("key '<root>'", f"--commission on {whose}") + (
            "; pick --market cn|us|crypto to charge a commission"
        )
    if values.get("sizing", "all-in") == "all-in" and values.get("fraction", 1.0) != 1.0:
        return line.replace("key '<root>'", "--fraction with --sizing all-in") + (
            "; add --sizing fraction"
        )
    return line


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
    commission: Annotated[
        float | None,
        typer.Option(
            "--commission",
            help="Commission rate, a fraction of traded value (default: the market's; "
            "not on market none).",
        ),
    ] = None,
    slippage: Annotated[
        float,
        typer.Option("--slippage", help="Adverse fraction of the price on every fill."),
    ] = 0.0,
    sizing: Annotated[
        str,
        typer.Option(
            "--sizing",
            help="all-in (equity / positions per entry) or fraction (--fraction of equity).",
        ),
    ] = "all-in",
    fraction: Annotated[
        float | None,
        typer.Option("--fraction", help="Fraction of equity per entry with --sizing fraction."),
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
    from simulators.backtest import run_strategy
    from simulators.explain import buy_and_hold
    from simulators.market_rules import MARKET_NAMES

    params = _parse_params(param or [])
    values: dict[str, Any] = {
        "cash": cash,
        "fill": fill,
        "market": market,
        "commission_rate": commission,
        "slippage": slippage,
        "sizing": sizing,
    }
    if fraction is not None:
        values["fraction"] = fraction
    config = _backtest_config(values)
    if genome is not None and param:
        raise StrategyParamError("--param applies to reference strategies, not to --genome")
    typer.echo(f"loading data {data!r}...", err=True)
    panel = _load_panel(data)
    if symbol:
        try:
            # Their own bars: a symbol from a folder backtests as its own file does (the
            # folder's rows where it has no bar would otherwise enter its per-bar metrics).
            panel = panel.select(list(symbol), own_bars=True)
        except KeyError as exc:
            raise DataSpecError(f"--symbol: {exc.args[0]}") from None
    if config.market is None and commission is not None:
        # The data's market decides whether a commission can apply: check it like --market.
        data_market = panel.market if panel.market in MARKET_NAMES else "none"
        config = _backtest_config({**values, "market": data_market}, market_from_data=True)
    typer.echo(
        f"backtesting {'a genome' if genome else strategy} on {panel.n_assets} symbol(s) x "
        f"{panel.n_bars} bars...",
        err=True,
    )
    genome_value: Genome | None = None
    if genome is not None:
        if sizing != "all-in" or fraction is not None:
            typer.echo("note: --sizing/--fraction are ignored: a genome sizes itself", err=True)
        genome_value = load_genome_argument(genome)
        result = _run_genome(genome_value, panel, config)
    else:
        result = run_strategy(panel, strategy, params, config)
    baseline = buy_and_hold(panel, config)
    why = _why_no_trades(result, panel, strategy, params, genome_value)
    if json_output:
        payload = result.to_json_dict()
        payload["buy_and_hold"] = _buy_and_hold_json(baseline)
        payload["why_no_trades"] = why
        sys.stdout.write(json.dumps(payload, allow_nan=False) + "\n")
        return
    _print_table(result, baseline, why, intraday=panel.freq not in ("1D", "1W"))


def _buy_and_hold_json(baseline: BuyAndHold) -> dict[str, Any]:
    from simulators.explain import BUY_AND_HOLD_METRICS

    out: dict[str, Any] = {}
    for key in BUY_AND_HOLD_METRICS:
        value = float(baseline.result.metrics[key])
        out[key] = value if math.isfinite(value) else None
    out["not_bought"] = list(baseline.not_bought)
    return out


def _why_no_trades(
    result: BacktestResult,
    panel: Panel,
    strategy: str,
    params: dict[str, float | int],
    genome: Genome | None,
) -> str | None:
    """Return :func:`simulators.explain.why_no_trades` of the run (signals rebuilt if needed)."""
    from simulators.explain import why_no_trades

    if bool((result.trades["exit_idx"] >= 0).any()):
        return None  # the usual case: no need to rebuild the signals
    if genome is not None:
        from genome.compile import compile_genome

        compiled = compile_genome(genome, panel)
        return why_no_trades(
            panel,
            compiled.entries,
            compiled.exits,
            result.trades,
            config=result.config,
            size=compiled.size,
        )
    from simulators.strategies import strategy_signals

    signals = strategy_signals(panel, strategy, params)
    return why_no_trades(panel, signals.entries, signals.exits, result.trades, config=result.config)


def load_genome_argument(value: str) -> Genome:
    """Return the genome named by ``--genome``: a JSON file path, or an id/prefix in the pool."""
    from alphaloop.home import LabHome
    from evolution.store import GenePoolStore
    from genome.genes import Genome

    path = Path(value).expanduser()
    if path.is_file():
        try:
            return Genome.from_json(path.read_bytes())
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


def _run_genome(genome: Genome, panel: Panel, config: BacktestConfig) -> BacktestResult:
    from genome.compile import compile_and_backtest

    typer.echo(f"genome {genome.id}: {genome.describe()}", err=True)
    if config.sizing == "all-in":
        # The genome sizes its own positions (fraction of equity per entry).
        config = config.model_copy(update={"sizing": "fraction"})
    return compile_and_backtest(genome, panel, config)


def _print_table(
    result: BacktestResult, baseline: BuyAndHold, why: str | None, *, intraday: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    summary = Table(title=f"{result.strategy} {result.params}")
    summary.add_column("metric")
    summary.add_column("strategy", justify="right")
    summary.add_column("buy & hold", justify="right")
    hold = baseline.result.metrics
    from simulators.explain import BUY_AND_HOLD_METRICS

    for key, value in result.metrics.items():
        beside = f"{hold[key]:,.4f}" if key in BUY_AND_HOLD_METRICS else ""
        summary.add_row(key, f"{value:,.4f}", beside)
    console.print(summary)
    if baseline.not_bought:
        console.print(
            f"buy & hold never bought {', '.join(baseline.not_bought)} (no bar it could be "
            "bought at, or one lot beyond its equal share)",
            markup=False,
            soft_wrap=True,
        )
    zone = f"; times {result.equity.index.tz}" if intraday else ""
    trades = Table(title=f"trades ({len(result.trades)}, last 20{zone})")
    for name in ("symbol", "entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"):
        trades.add_column(name)
    for row in result.trades.tail(20).itertuples(index=False):
        trades.add_row(
            row.symbol,
            _time_text(row.entry_time, intraday),
            "open" if row.exit_idx < 0 else _time_text(row.exit_time, intraday),
            f"{row.entry_price:,.4f}",
            f"{row.exit_price:,.4f}",
            f"{row.size:,.4f}",
            f"{row.pnl:,.2f}",
        )
    console.print(trades)
    if why is not None:
        console.print(f"why no trades: {why}", markup=False, soft_wrap=True)


def _time_text(timestamp: pd.Timestamp, intraday: bool) -> str:
    # Bar times are exchange-local (simulators.bars); intraday bars need the minute.
    return timestamp.strftime("%Y-%m-%d %H:%M") if intraday else str(timestamp.date())
