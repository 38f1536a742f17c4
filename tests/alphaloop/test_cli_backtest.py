"""``alphaloop backtest``: JSON contract, table output, errors, and a real subprocess run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.errors import ConfigError, StrategyParamError
from simulators.backtest import BacktestConfig, run_strategy
from simulators.data_spec import load_market
from simulators.strategies import strategy_signals

DATA = "synthetic:seed=3,assets=2,start=2020-01-01,end=2021-12-31"
FILES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "files"
TRADE_KEYS = {"entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"}


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["backtest", "--data", DATA, *args])


def test_backtest_json_matches_library_result() -> None:
    result = invoke("--strategy", "sma-cross", "--param", "fast=5", "--param", "slow=20", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"final_equity", "total_return", "sharpe", "max_drawdown", "n_trades"} <= set(payload)
    assert payload["n_trades"] == len(payload["trades"]) > 0
    assert all(TRADE_KEYS <= set(trade) for trade in payload["trades"])
    expected = run_strategy(
        load_market(DATA), "sma-cross", {"fast": 5, "slow": 20}, BacktestConfig()
    )
    assert payload["final_equity"] == pytest.approx(expected.metrics["final_equity"], rel=1e-12)
    assert payload["params"] == {"fast": 5, "slow": 20}


def test_backtest_market_and_fill_options_reach_the_engine() -> None:
    result = invoke("--symbol", "SYN000", "--market", "cn", "--fill", "close", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["config"]["market"] == "cn" and payload["config"]["fill"] == "close"
    assert payload["trades"], "the case must trade"
    assert all(trade["size"] % 100 == 0 for trade in payload["trades"])
    assert {trade["symbol"] for trade in payload["trades"]} == {"SYN000"}


def test_backtest_without_json_prints_table() -> None:
    result = invoke("--strategy", "breakout", "--param", "lookback=10")
    assert result.exit_code == 0, result.output
    assert "final_equity" in result.stdout and "trades" in result.stdout


def test_backtest_bad_param_raises_strategy_param_error() -> None:
    result = invoke("--param", "fast=60", "--param", "slow=50")
    assert isinstance(result.exception, StrategyParamError)
    assert "fast < slow" in str(result.exception)


def test_backtest_subprocess_json_on_stdout_logs_on_stderr() -> None:
    command = [
        sys.executable,
        "-c",
        "from alphaloop.cli import main; main()",
        "backtest",
        "--data",
        DATA,
        "--strategy",
        "rsi",
        "--param",
        "period=14",
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["strategy"] == "rsi"
    assert "backtesting rsi" in done.stderr


def test_backtest_subprocess_user_error_exits_2_with_one_line() -> None:
    command = [
        sys.executable,
        "-c",
        "from alphaloop.cli import main; main()",
        "backtest",
        "--data",
        DATA,
        "--strategy",
        "rsi",
        "--param",
        "lower=90",
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "lower < upper" in done.stderr and done.stdout == ""


# --------------------------------------------------------------------------- costs and sizing
def test_backtest_commission_slippage_and_sizing_options_reach_the_engine() -> None:
    result = invoke(
        "--market", "us", "--commission", "0.002", "--slippage", "0.001",
        "--sizing", "fraction", "--fraction", "0.4", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    config = payload["config"]
    assert (config["commission_rate"], config["slippage"]) == (0.002, 0.001)
    assert (config["sizing"], config["fraction"]) == ("fraction", 0.4)
    settings = BacktestConfig(
        market="us", commission_rate=0.002, slippage=0.001, sizing="fraction", fraction=0.4
    )
    expected = run_strategy(load_market(DATA), "sma-cross", {}, settings)
    assert payload["final_equity"] == pytest.approx(expected.metrics["final_equity"], rel=1e-12)
    plain = json.loads(invoke("--market", "us", "--json").stdout)
    assert plain["final_equity"] != payload["final_equity"], "the options must change the run"
    assert all(t["fees"] > 0 for t in payload["trades"])


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--commission", "0.5", "--market", "us"], "--commission (key 'commission_rate')"),
        (["--slippage", "0.2"], "--slippage (key 'slippage')"),
        (["--sizing", "half"], "--sizing (key 'sizing')"),
        (["--sizing", "fraction", "--fraction", "1.5"], "--fraction (key 'fraction')"),
        (["--fraction", "0.5"], "--fraction with --sizing all-in"),
        (["--commission", "0.001", "--market", "none"], "pick --market cn|us|crypto"),
        # Synthetic data is market none: a commission needs a market that has one.
        (["--commission", "0.001"], "the data's market 'none'"),
    ],
)
def test_backtest_bad_cost_or_sizing_option_is_a_config_error_naming_it(
    options: list[str], named: str
) -> None:
    result = invoke(*options, "--json")
    assert isinstance(result.exception, ConfigError), result.output
    message = str(result.exception)
    assert named in message and len(message.splitlines()) == 1


def test_backtest_subprocess_commission_on_frictionless_market_exits_2_with_one_line() -> None:
    command = [
        sys.executable, "-c", "from alphaloop.cli import main; main()",
        "backtest", "--data", DATA, "--market", "none", "--commission", "0.001", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "--commission" in errors[0] and "--market cn|us|crypto" in errors[0]


# --------------------------------------------------------------------------- buy and hold
def test_backtest_json_adds_buy_and_hold_and_keeps_every_existing_field() -> None:
    result = invoke("--param", "fast=5", "--param", "slow=20", "--json")
    payload = json.loads(result.stdout)
    library = run_strategy(
        load_market(DATA), "sma-cross", {"fast": 5, "slow": 20}, BacktestConfig()
    ).to_json_dict()
    assert set(payload) == set(library) | {"buy_and_hold", "why_no_trades"}
    assert {key: payload[key] for key in library} == library
    assert set(payload["buy_and_hold"]) == {
        "total_return", "cagr", "sharpe", "max_drawdown", "final_equity", "not_bought"
    }  # fmt: skip
    assert payload["why_no_trades"] is None and payload["n_trades"] > 0


def test_backtest_buy_and_hold_of_one_symbol_without_costs_is_its_price_return() -> None:
    payload = json.loads(invoke("--symbol", "SYN001", "--cash", "25000", "--json").stdout)
    panel = load_market(DATA).select(["SYN001"])
    assert panel.market == "none", "the case is frictionless"
    # Bought at the next open of the first bar (nothing before it), held to the last close.
    expected = panel.close[-1, 0] / panel.open[1, 0] - 1.0
    hold = payload["buy_and_hold"]
    assert hold["total_return"] == pytest.approx(expected, rel=1e-9)
    assert hold["final_equity"] == pytest.approx(25_000.0 * (1.0 + expected), rel=1e-9)
    assert hold["not_bought"] == []
    assert hold["total_return"] != pytest.approx(payload["total_return"])


def test_backtest_table_shows_buy_and_hold_beside_the_strategy() -> None:
    result = invoke("--param", "fast=5", "--param", "slow=20")
    assert result.exit_code == 0, result.output
    payload = json.loads(invoke("--param", "fast=5", "--param", "slow=20", "--json").stdout)
    assert "buy & hold" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "total_return" in line)
    assert f"{payload['total_return']:,.4f}" in row
    assert f"{payload['buy_and_hold']['total_return']:,.4f}" in row


# --------------------------------------------------------------------------- trade times
HOURLY = str(FILES / "BTCUSDT_1h.csv")


def test_backtest_table_prints_intraday_trade_times_to_the_minute() -> None:
    args = ["backtest", "--data", HOURLY, "--param", "fast=3", "--param", "slow=8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    trades = run_strategy(load_market(HOURLY), "sma-cross", {"fast": 3, "slow": 8}).trades
    assert len(trades) >= 2, "the case must trade"
    for row in trades.itertuples(index=False):
        assert row.entry_time.strftime("%Y-%m-%d %H:%M") in result.stdout
    assert any(t.hour != 0 for t in trades["entry_time"]), "the times must not all be midnight"
    assert "times UTC" in result.stdout


def test_backtest_table_prints_daily_trade_times_as_dates() -> None:
    result = invoke("--param", "fast=5", "--param", "slow=20")
    trades = run_strategy(load_market(DATA), "sma-cross", {"fast": 5, "slow": 20}).trades
    last = trades.iloc[-1]["entry_time"]
    assert str(last.date()) in result.stdout
    assert last.strftime("%Y-%m-%d %H:%M") not in result.stdout


# --------------------------------------------------------------------------- why no trades
def expensive_a_share(tmp_path: Path) -> str:
    """Write 60 days of a 1,800-yuan A-share (600519) that sma-cross(3, 10) enters."""
    days = pd.bdate_range("2024-01-02", periods=60)
    close = np.round(1800.0 * (1.0 + 0.03 * np.sin(np.arange(60) / 5.0)), 2)
    frame = pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            "open": close,
            "high": np.round(close * 1.005, 2),
            "low": np.round(close * 0.995, 2),
            "close": close,
            "volume": 1e5,
        }
    )
    frame.to_csv(tmp_path / "600519.csv", index=False)
    return f"file:{tmp_path / '600519.csv'};market=cn"


def test_backtest_without_trades_says_one_lot_costs_more_than_the_cash(tmp_path: Path) -> None:
    spec = expensive_a_share(tmp_path)
    args = ["backtest", "--data", spec, "--param", "fast=3", "--param", "slow=10"]
    payload = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert payload["trades"] == [] and payload["n_trades"] == 0
    # The lot cost computed here from the signals and the bars, independently of the CLI.
    panel = load_market(spec)
    signal_bars = np.flatnonzero(
        strategy_signals(panel, "sma-cross", {"fast": 3, "slow": 10}).entries[:-1, 0]
    )
    price = float(panel.open[signal_bars[0] + 1, 0])
    cost = 100 * price + max(0.00025 * 100 * price, 5.0)
    why = payload["why_no_trades"]
    assert (
        f"one lot (100 units) of 600519 at {price:,.2f} costs {cost:,.2f} > the cash 100,000.00"
        in why
    )
    assert payload["buy_and_hold"]["not_bought"] == ["600519"]
    table = CliRunner().invoke(app, args)
    assert f"why no trades: {why}" in table.stdout
    # Control: with ten times the cash the same backtest trades and has nothing to explain.
    rich = json.loads(CliRunner().invoke(app, [*args, "--cash", "1000000", "--json"]).stdout)
    assert rich["n_trades"] > 0 and rich["why_no_trades"] is None


def test_backtest_without_entry_signals_says_the_strategy_never_signalled() -> None:
    short = "synthetic:seed=3,assets=1,start=2020-01-01,end=2020-02-15"
    args = ["backtest", "--data", short, "--param", "fast=10", "--param", "slow=50", "--json"]
    payload = json.loads(CliRunner().invoke(app, args).stdout)
    assert payload["n_trades"] == 0
    assert payload["why_no_trades"].startswith("the strategy never signalled an entry")


def test_backtest_genome_json_has_the_same_buy_and_hold_and_explains_no_trades(
    tmp_path: Path,
) -> None:
    from genome.random import random_genome

    reference = json.loads(invoke("--json").stdout)["buy_and_hold"]
    seen = set()
    for seed in range(4):
        path = tmp_path / f"genome{seed}.json"
        path.write_text(random_genome(np.random.default_rng(seed)).to_json())
        result = invoke("--genome", str(path), "--json")
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        # The baseline depends on the panel and the costs, not on what is backtested.
        assert payload["buy_and_hold"] == reference
        assert (payload["why_no_trades"] is None) == (payload["n_trades"] > 0)
        seen.add(payload["why_no_trades"] is None)
    assert seen == {True, False}, "the seeds must cover a genome with trades and one without"
