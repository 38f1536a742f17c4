"""The day's market type (simulators/day_market.py): its bars are the panel's, built on first read.

The expected values are read straight from the minute panel with NumPy indexing.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from simulators.bars import Panel
from simulators.day_market import BAR_COLUMNS, Bar, DayBars, DayMarket, day_market, trading_days
from simulators.synthetic import SyntheticSpec, generate_daily, generate_intraday

SPEC = SyntheticSpec(seed=4, assets=3, start="2023-01-02", end="2023-03-31")


def _day() -> tuple[DayMarket, Panel]:
    daily = generate_daily(SPEC)
    index = 30
    minute = generate_intraday(SPEC, daily, index)
    return day_market(daily, trading_days(daily)[index], minute), minute


def test_day_bars_are_the_panels_bars_of_each_symbol() -> None:
    market, minute = _day()
    assert isinstance(market.bars, DayBars)
    assert list(market.bars) == list(minute.symbols) and len(market.bars) == 3
    for column, symbol in enumerate(minute.symbols):
        bars = market.bars[symbol]
        assert isinstance(bars, tuple) and all(isinstance(bar, Bar) for bar in bars)
        assert len(bars) == minute.n_bars
        for name in BAR_COLUMNS:
            np.testing.assert_array_equal(
                [getattr(bar, name) for bar in bars], getattr(minute, name)[:, column]
            )
            np.testing.assert_array_equal(
                market.bar_columns(symbol)[name], getattr(minute, name)[:, column]
            )
        assert {bar.prev_close for bar in bars} == {market.prev_close[symbol]}
        assert bars[0].at == minute.index[0].to_pydatetime()
        # Built once: the same tuple on every read.
        assert market.bars[symbol] is bars


def test_day_bars_leave_out_a_symbol_without_a_price_and_survive_pickle() -> None:
    daily = generate_daily(SPEC)
    minute = generate_intraday(SPEC, daily, 30)
    minute.close[5, 1] = np.nan  # a bar without a price: the arena cannot trade it that day
    market = day_market(daily, trading_days(daily)[30], minute)
    missing = minute.symbols[1]
    assert missing not in market.bars and list(market.bars) == [
        minute.symbols[0],
        minute.symbols[2],
    ]
    with pytest.raises(KeyError):
        market.bars[missing]
    with pytest.raises(KeyError):
        market.bar_columns(missing)
    copy = pickle.loads(pickle.dumps(market.bars))
    assert copy == market.bars and list(copy) == list(market.bars)
    # Control: equality looks at the bars (another day's bars are not these).
    other = day_market(daily, trading_days(daily)[31], generate_intraday(SPEC, daily, 31))
    assert other.bars != market.bars


def test_bar_columns_of_a_hand_made_market_read_its_bars() -> None:
    market, _ = _day()
    symbol = next(iter(market.bars))
    hand_made = DayMarket(
        day=market.day, index=market.index, intraday=True, open_time=market.open_time,
        prev_close=market.prev_close, close=market.close,
        bars={symbol: market.bars[symbol]}, snapshots=market.snapshots,
    )  # fmt: skip
    for name in BAR_COLUMNS:
        np.testing.assert_array_equal(
            hand_made.bar_columns(symbol)[name], market.bar_columns(symbol)[name]
        )
