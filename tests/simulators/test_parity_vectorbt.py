"""Parity of the exact backtester with vectorbt ``Portfolio.from_signals``.

vectorbt is set up to fill our way: ``fill=next-open`` = signals shifted one bar with
``price=open``; ``fill=close`` = unshifted signals with ``price=close``; ``size=inf`` (all
cash, fractional), no fees, ``accumulate=False``; the breakout stop is ``sl_stop`` anchored
at the fill price (``stop_entry_price="fillprice"``). vectorbt lets a stop hit in a bar
override a market exit due at that bar's open; ours fills the earlier open order, so for
``next-open`` the stop is switched off on bars with a due exit (``adjust_sl_func_nb``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import vectorbt as vbt
from numba import njit

from simulators.backtest import BacktestConfig, run_strategy
from simulators.bars import Panel
from simulators.sample import load_sample
from simulators.strategies import strategy_signals
from simulators.synthetic import SyntheticSpec, generate_daily

STRATEGY_CASES: list[tuple[str, dict[str, float | int]]] = [
    ("sma-cross", {"fast": 10, "slow": 30}),
    ("rsi", {"period": 14, "lower": 30.0, "upper": 70.0}),
    ("breakout", {"lookback": 20, "stop_pct": 0.04}),
]
FILLS = ["next-open", "close"]
REL = 1e-9


@njit
def _no_stop_on_exit_bar(context, due_exit):  # type: ignore[no-untyped-def]
    if due_exit[context.i, context.col]:
        return np.nan, False
    return context.curr_stop, context.curr_trail


def _shift(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[False], values[:-1]])


def _assert_parity(panel: Panel, name: str, params: dict[str, float | int], fill: str) -> None:
    signals = strategy_signals(panel, name, params)
    ours = run_strategy(panel, name, params, BacktestConfig(fill=fill, market="none"))
    entries, exits = signals.entries[:, 0], signals.exits[:, 0]
    if fill == "next-open":
        entries, exits, price = _shift(entries), _shift(exits), panel.open[:, 0]
        due_exit = exits
    else:
        price, due_exit = panel.close[:, 0], np.zeros_like(exits)
    portfolio = vbt.Portfolio.from_signals(
        close=panel.close[:, 0],
        entries=entries,
        exits=exits,
        price=price,
        open=panel.open[:, 0],
        high=panel.high[:, 0],
        low=panel.low[:, 0],
        size=np.inf,
        init_cash=100_000.0,
        fees=0.0,
        accumulate=False,
        sl_stop=signals.sl_stop if signals.sl_stop else np.nan,
        stop_entry_price="fillprice",
        adjust_sl_func_nb=_no_stop_on_exit_bar,
        adjust_sl_args=(due_exit.reshape(-1, 1),),
        freq="1D",
    )
    theirs = portfolio.trades.records
    trades = ours.trades
    assert len(trades) > 0, "the case must trade to test anything"
    assert len(theirs) == len(trades)
    assert math.isclose(ours.metrics["final_equity"], float(portfolio.final_value()), rel_tol=REL)
    np.testing.assert_allclose(ours.equity.to_numpy(), portfolio.value().to_numpy(), rtol=REL)
    last = panel.n_bars - 1
    for row, (_, other) in zip(trades.itertuples(index=False), theirs.iterrows(), strict=True):
        assert row.entry_idx == other["entry_idx"]
        # vectorbt reports an open trade at the last bar; ours has exit_idx -1 there.
        assert (row.exit_idx if row.exit_idx >= 0 else last) == other["exit_idx"]
        assert (row.exit_idx < 0) == (other["status"] == 0)
        assert math.isclose(row.entry_price, other["entry_price"], rel_tol=REL)
        assert math.isclose(row.exit_price, other["exit_price"], rel_tol=REL)
        assert math.isclose(row.size, other["size"], rel_tol=REL)
        scale = row.size * row.entry_price
        assert math.isclose(row.pnl, other["pnl"], rel_tol=REL, abs_tol=REL * scale)


@pytest.fixture(scope="module")
def synthetic_panel() -> Panel:
    return generate_daily(SyntheticSpec(seed=11, assets=1, start="2016-01-01", end="2021-12-31"))


@pytest.fixture(scope="module")
def sample_panel() -> Panel:
    return load_sample()


@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize(("name", "params"), STRATEGY_CASES)
def test_vectorbt_parity_synthetic_same_trades_and_equity(
    synthetic_panel: Panel, name: str, params: dict[str, float | int], fill: str
) -> None:
    _assert_parity(synthetic_panel, name, params, fill)


@pytest.mark.parametrize("symbol", ["SP500", "NASDAQ"])
@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize(("name", "params"), STRATEGY_CASES)
def test_vectorbt_parity_sample_same_trades_and_equity(
    sample_panel: Panel, name: str, params: dict[str, float | int], fill: str, symbol: str
) -> None:
    _assert_parity(sample_panel.select([symbol]), name, params, fill)
