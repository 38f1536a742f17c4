"""``alphaloop backtest``: JSON contract, table output, errors, and a real subprocess run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.errors import StrategyParamError
from simulators.backtest import BacktestConfig, run_strategy
from simulators.data_spec import load_market

DATA = "synthetic:seed=3,assets=2,start=2020-01-01,end=2021-12-31"
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
