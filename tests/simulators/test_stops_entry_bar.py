"""Stops are armed from the bar after the entry fill (docs/fill_assumptions.md, issue 13).

Each case builds bars where the rule matters: the entry bar trades through the stop or the
target. A control moves the same range one bar later, where the stop is live and fires.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel

NEXT_OPEN = BacktestConfig(market="none")
AT_CLOSE = BacktestConfig(market="none", fill="close")


def _panel(low: list[float], high: list[float]) -> Panel:
    # Four daily bars of one asset opening and closing at 100.
    flat = np.full((4, 1), 100.0)
    return Panel(
        symbols=("A",),
        index=pd.date_range("2024-01-01 16:00", periods=4, freq="D", tz="UTC"),
        open=flat.copy(),
        high=np.asarray(high, dtype=float).reshape(4, 1),
        low=np.asarray(low, dtype=float).reshape(4, 1),
        close=flat.copy(),
        volume=np.ones((4, 1)),
        tradable=np.ones((4, 1), dtype=bool),
        market="none",
    )


def _trade(low: list[float], high: list[float], config: BacktestConfig, **stops: Any) -> pd.Series:
    entries = np.array([True, False, False, False])
    result = run_backtest(
        _panel(low, high), entries, np.zeros(4, dtype=bool), config=config, **stops
    )
    assert len(result.trades) == 1
    return result.trades.iloc[0]


def test_next_open_entry_bar_through_the_stop_does_not_stop_the_position() -> None:
    # Signal at bar 0, filled at open[1] = 100; stop 5% -> 95. Bar 1 (the entry bar) falls to
    # 80, bar 2 stays above the stop.
    trade = _trade([99, 80, 99, 99], [101, 101, 101, 101], NEXT_OPEN, sl_stop=0.05)
    assert trade.entry_idx == 1
    assert trade.exit_reason == "open"
    # Control: the same fall one bar later, on a bar after the entry, stops at the level.
    trade = _trade([99, 99, 80, 99], [101, 101, 101, 101], NEXT_OPEN, sl_stop=0.05)
    assert (trade.exit_reason, trade.exit_idx, trade.exit_price) == ("stop_loss", 2, 95.0)


def test_next_open_entry_bar_through_the_target_does_not_take_profit() -> None:
    trade = _trade([99, 99, 99, 99], [101, 130, 101, 101], NEXT_OPEN, tp_stop=0.1)
    assert trade.exit_reason == "open"
    trade = _trade([99, 99, 99, 99], [101, 101, 130, 101], NEXT_OPEN, tp_stop=0.1)
    assert (trade.exit_reason, trade.exit_idx) == ("take_profit", 2)
    assert trade.exit_price == pytest.approx(110.0)


def test_close_entry_bar_range_came_before_the_fill_and_never_stops_it() -> None:
    # fill="close": the entry fills at close[0]; bar 0's low of 80 happened before the fill.
    trade = _trade([80, 99, 99, 99], [101, 101, 101, 101], AT_CLOSE, sl_stop=0.05)
    assert (trade.entry_idx, trade.exit_reason) == (0, "open")
    trade = _trade([99, 80, 99, 99], [101, 101, 101, 101], AT_CLOSE, sl_stop=0.05)
    assert (trade.exit_reason, trade.exit_idx, trade.exit_price) == ("stop_loss", 1, 95.0)


def test_the_trailing_peak_skips_the_entry_bars_high() -> None:
    # Trail 10% from a peak that starts at the entry (100): level 90. The entry bar's high of
    # 130 is not the peak, so bar 2 (low 95) does not trail out; with the peak at 130 the
    # level would be 117, above bar 2's open, and the position would exit there.
    trade = _trade([99, 99, 95, 95], [101, 130, 101, 101], NEXT_OPEN, tsl_stop=0.1)
    assert trade.exit_reason == "open"
    # Control: a high of 130 on bar 2 (after the entry bar) raises the peak to 130; bar 3
    # opens at 100, under the trail of 117, and exits at that open (a gap through the stop).
    trade = _trade([99, 99, 95, 95], [101, 101, 130, 101], NEXT_OPEN, tsl_stop=0.1)
    assert (trade.exit_reason, trade.exit_idx, trade.exit_price) == ("trailing_stop", 3, 100.0)
