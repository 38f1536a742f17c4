"""``fill="next-bar"``: a daily order executes over the next bar at its reference price.

Expected prices are written out by hand from the bars below (the OHLC average of the fill
bar), never read from the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulators.backtest import BacktestConfig, run_backtest

# (open, high, low, close) per bar; the reference price (O + H + L + C) / 4 in the comment.
BARS = [
    (10.0, 10.0, 10.0, 10.0),  # 0: 10
    (10.0, 10.0, 10.0, 10.0),  # 1: 10
    (10.0, 12.0, 9.0, 11.0),  # 2: 42 / 4 = 10.5
    (11.0, 13.0, 11.0, 12.0),  # 3: 47 / 4 = 11.75
    (12.0, 14.0, 12.0, 14.0),  # 4: 52 / 4 = 13
    (20.0, 22.0, 18.0, 20.0),  # 5: 80 / 4 = 20
    (20.0, 20.0, 20.0, 20.0),  # 6: 20
]


def _panel():  # type: ignore[no-untyped-def]
    from simulators.bars import Panel

    values = np.array(BARS, dtype=float)
    n = len(BARS)
    return Panel(
        symbols=("A",),
        index=pd.date_range("2024-01-02 16:00", periods=n, freq="D", tz="America/New_York"),
        open=values[:, [0]],
        high=values[:, [1]],
        low=values[:, [2]],
        close=values[:, [3]],
        volume=np.full((n, 1), 1e9),
        tradable=np.ones((n, 1), dtype=bool),
        market="none",
    )


def _signals(entry: int, exit_: int | None) -> tuple[np.ndarray, np.ndarray]:
    entries = np.zeros((len(BARS), 1), dtype=bool)
    exits = np.zeros((len(BARS), 1), dtype=bool)
    entries[entry, 0] = True
    if exit_ is not None:
        exits[exit_, 0] = True
    return entries, exits


def test_next_bar_entry_and_exit_fill_at_the_fill_bars_ohlc_average() -> None:
    entries, exits = _signals(1, 4)
    result = run_backtest(
        _panel(), entries, exits, config=BacktestConfig(cash=1050.0, fill="next-bar")
    )
    trade = result.trades.iloc[0]
    assert trade["entry_idx"] == 2 and trade["exit_idx"] == 5
    assert trade["entry_price"] == pytest.approx(10.5)
    assert trade["exit_price"] == pytest.approx(20.0)
    assert trade["size"] == pytest.approx(100.0)  # 1050 / 10.5
    assert trade["pnl"] == pytest.approx(950.0)  # 100 x (20 - 10.5)
    assert result.equity.iloc[-1] == pytest.approx(2000.0)


def test_next_open_still_fills_at_the_open_control() -> None:
    # The same signals under next-open pay the opens (10 and 20): the modes differ.
    entries, exits = _signals(1, 4)
    result = run_backtest(
        _panel(), entries, exits, config=BacktestConfig(cash=1050.0, fill="next-open")
    )
    trade = result.trades.iloc[0]
    assert trade["entry_price"] == pytest.approx(10.0)
    assert trade["size"] == pytest.approx(105.0)


def test_next_bar_pays_half_spread_and_fee_on_the_reference_price() -> None:
    entries, exits = _signals(1, None)
    config = BacktestConfig(cash=1e6, fill="next-bar", market="us", half_spread_bps=10.0)
    result = run_backtest(_panel(), entries, exits, config=config)
    trade = result.trades.iloc[0]
    # 10.5 x (1 + 10 bps) = 10.5105; US: whole shares, 1.00 per order.
    assert trade["entry_price"] == pytest.approx(10.5105)
    # Largest whole size with size x 10.5105 + 1 <= 1e6: floor(999999 / 10.5105) = 95142.
    assert trade["size"] == 95142.0
    assert trade["fees"] == pytest.approx(1.0)


def test_next_bar_time_stop_exits_at_the_reference_price_of_its_bar() -> None:
    entries, exits = _signals(1, None)
    result = run_backtest(
        _panel(), entries, exits, config=BacktestConfig(cash=1050.0, fill="next-bar"), time_stop=2
    )
    trade = result.trades.iloc[0]
    # Filled on bar 2; held bars 3 and 4: out at bar 4's reference, 13.
    assert trade["exit_reason"] == "time_stop" and trade["exit_idx"] == 4
    assert trade["exit_price"] == pytest.approx(13.0)
    assert trade["pnl"] == pytest.approx(100.0 * (13.0 - 10.5))


def test_next_bar_sizes_entries_on_equity_at_the_reference_prices() -> None:
    # Two assets, the second entered one bar after the first, each with a quarter of equity.
    from simulators.bars import Panel

    values = np.array(BARS, dtype=float)
    n = len(BARS)
    flat = np.full((n, 1), 10.0)
    panel = Panel(
        symbols=("A", "B"),
        index=pd.date_range("2024-01-02 16:00", periods=n, freq="D", tz="America/New_York"),
        open=np.hstack([values[:, [0]], flat]),
        high=np.hstack([values[:, [1]], flat]),
        low=np.hstack([values[:, [2]], flat]),
        close=np.hstack([values[:, [3]], flat]),
        volume=np.full((n, 2), 1e9),
        tradable=np.ones((n, 2), dtype=bool),
        market="none",
    )
    entries = np.zeros((n, 2), dtype=bool)
    entries[1, 0] = True
    entries[2, 1] = True
    exits = np.zeros((n, 2), dtype=bool)
    config = BacktestConfig(cash=2100.0, fill="next-bar", sizing="fraction", fraction=0.25)
    result = run_backtest(panel, entries, exits, config=config)
    a, b = result.trades.iloc[0], result.trades.iloc[1]
    # A on bar 2: a quarter of 2100 = 525 at 10.5 = 50 shares, cash 1575 left.
    assert a["size"] == pytest.approx(50.0)
    # B on bar 3: equity = 1575 + 50 x 11.75 (A at bar 3's reference, not its open 11) =
    # 2162.5; a quarter, 540.625, at 10 = 54.0625 shares (valued at the open: 53.125).
    assert b["entry_idx"] == 3
    assert b["size"] == pytest.approx(54.0625)
