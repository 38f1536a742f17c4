"""The backtest kernel's spread, square-root impact and participation cap (the arena's model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulators.backtest import BacktestConfig, bar_sigma, run_backtest, run_backtest_arrays
from simulators.bars import Panel
from simulators.fill_model import impact_fraction

N_BARS = 60
HALF_SPREAD_BPS = 2.5
IMPACT = 0.5


def _panel(volume: np.ndarray | float, seed: int = 3) -> Panel:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (N_BARS, 1)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.004, (N_BARS, 1)))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    index = pd.date_range("2022-01-03 16:00", periods=N_BARS, freq="D", tz="America/New_York")
    return Panel(
        symbols=("A",),
        index=index,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.broadcast_to(np.asarray(volume, dtype=float), (N_BARS, 1)).copy(),
        tradable=np.ones((N_BARS, 1), dtype=bool),
        market="none",
    )


def _signals(entry: int, exit_: int) -> tuple[np.ndarray, np.ndarray]:
    entries = np.zeros((N_BARS, 1), dtype=bool)
    exits = np.zeros((N_BARS, 1), dtype=bool)
    entries[entry, 0] = True
    exits[exit_, 0] = True
    return entries, exits


def _config(cash: float, cap: float | None) -> BacktestConfig:
    return BacktestConfig(
        cash=cash,
        market="none",
        half_spread_bps=HALF_SPREAD_BPS,
        impact_coefficient=IMPACT,
        participation_cap=cap,
    )


def test_bar_sigma_is_the_std_of_the_log_returns_of_the_20_closes_before_the_bar() -> None:
    panel = _panel(1e6)
    sigma = bar_sigma(panel.close)
    for t in (3, 10, 20, 21, 45):
        closes = panel.close[max(0, t - 20) : t, 0]
        expected = float(np.diff(np.log(closes)).std(ddof=1))  # the sample deviation
        assert sigma[t, 0] == pytest.approx(expected, rel=1e-12)
    # One return: its own size (fill_model.daily_volatility's rule); none: 0.
    one = abs(float(np.log(panel.close[1, 0] / panel.close[0, 0])))
    assert sigma[2, 0] == pytest.approx(one, rel=1e-12)
    assert sigma[0, 0] == 0.0 and sigma[1, 0] == 0.0


def test_bar_sigma_is_the_arenas_volatility_on_daily_bars() -> None:
    # One volatility definition: the backtest's sigma of a daily bar is the one the arena's
    # day prices impact with (arena.market.day_market, daily-only data: one bar a day).
    from arena.market import day_market, trading_days
    from simulators.synthetic import SyntheticSpec, generate_daily

    daily = generate_daily(SyntheticSpec(seed=4, assets=3, start="2022-01-03", end="2022-12-30"))
    sigma = bar_sigma(daily.close)
    days = trading_days(daily)
    for index in (5, 21, 120, len(days) - 1):
        market = day_market(daily, days[index])
        for column, symbol in enumerate(daily.symbols):
            assert market.sigma[symbol] == pytest.approx(sigma[index, column], rel=1e-12)


def test_one_round_trip_costs_half_spread_plus_square_root_impact_by_hand() -> None:
    volume, cash = 50_000.0, 200_000.0
    panel = _panel(volume)
    entries, exits = _signals(25, 40)
    result = run_backtest(panel, entries, exits, config=_config(cash, cap=None))
    sigma = bar_sigma(panel.close)[:, 0]
    half_spread = HALF_SPREAD_BPS / 1e4
    # Entry at the next open: the size the cash buys at the impact of the first estimate.
    open_in = float(panel.open[26, 0])
    first = cash / (open_in * (1.0 + half_spread))
    estimate = half_spread + impact_fraction(first, volume, float(sigma[26]), IMPACT)
    size = cash / (open_in * (1.0 + estimate))
    entry_price = open_in * (1.0 + half_spread + IMPACT * sigma[26] * math.sqrt(size / volume))
    open_out = float(panel.open[41, 0])
    exit_price = open_out * (1.0 - half_spread - IMPACT * sigma[41] * math.sqrt(size / volume))
    trade = result.trades.iloc[0]
    assert len(result.trades) == 1 and trade.exit_idx == 41
    assert trade["size"] == pytest.approx(size, rel=1e-12)
    assert trade.entry_price == pytest.approx(entry_price, rel=1e-12)
    assert trade.exit_price == pytest.approx(exit_price, rel=1e-12)
    assert result.equity.iloc[-1] == pytest.approx(
        cash - size * entry_price + size * exit_price, rel=1e-12
    )
    # The cost is real: the same trade without spread and impact ends richer.
    free = run_backtest(panel, entries, exits, config=BacktestConfig(cash=cash, market="none"))
    assert free.equity.iloc[-1] > result.equity.iloc[-1]


def test_participation_cap_cuts_the_buy_and_spreads_the_sell_over_bars() -> None:
    cap, cash = 0.1, 1_000_000.0
    volume = np.full(N_BARS, 1_000.0)
    volume[26] = 2_000.0  # the entry bar can fill 200 shares, later bars 100 each
    panel = _panel(volume[:, None])
    entries, exits = _signals(25, 40)
    result = run_backtest(panel, entries, exits, config=_config(cash, cap=cap))
    positions = result.positions["A"].to_numpy()
    assert positions[26] == pytest.approx(200.0)  # the rest of the order was not bought
    assert positions[41] == pytest.approx(100.0)  # the sell fills 100 a bar
    assert positions[42] == 0.0
    trade = result.trades.iloc[0]
    assert len(result.trades) == 1 and trade["size"] == pytest.approx(200.0)
    assert trade.exit_idx == 42 and trade.exit_reason == "signal"
    sigma = bar_sigma(panel.close)[:, 0]
    half_spread = HALF_SPREAD_BPS / 1e4
    sells = [
        float(panel.open[t, 0]) * (1.0 - half_spread - IMPACT * sigma[t] * math.sqrt(0.1))
        for t in (41, 42)
    ]
    assert trade.exit_price == pytest.approx(sum(sells) / 2.0, rel=1e-12)


def test_participation_cap_no_volume_bar_fills_nothing() -> None:
    volume = np.full(N_BARS, 1_000.0)
    volume[26] = 0.0
    panel = _panel(volume[:, None])
    entries, exits = _signals(25, 40)
    result = run_backtest(panel, entries, exits, config=_config(100_000.0, cap=0.1))
    assert len(result.trades) == 0
    # The whole entry was intended and none of it filled: capacity 0.
    assert result.metrics["capacity"] == 0.0


def test_capacity_is_the_filled_share_of_the_intended_entry_notional_by_hand() -> None:
    # Two round trips: the first entry (bar 26) is capped at 10% of 2,000 shares, the second
    # (bar 46) meets a bar deep enough for all of it.
    cap, cash = 0.1, 1_000_000.0
    volume = np.full(N_BARS, 1_000.0)
    volume[26] = 2_000.0
    volume[46] = 1e12
    panel = _panel(volume[:, None])
    entries = np.zeros((N_BARS, 1), dtype=bool)
    exits = np.zeros((N_BARS, 1), dtype=bool)
    entries[[25, 45], 0] = True
    exits[[40, 55], 0] = True
    config = _config(cash, cap=cap)
    arrays = run_backtest_arrays(panel, entries, exits, config=config)
    half_spread = HALF_SPREAD_BPS / 1e4
    # Intended: what the budget affords at the open plus the half-spread, valued at the open.
    first_intended = cash / (1.0 + half_spread)
    first_filled = 200.0 * float(panel.open[26, 0])
    first = arrays.trades[0]
    assert first["size"] == pytest.approx(200.0) and first["exit_idx"] == 42
    budget = cash + float(first["pnl"])  # flat after the first trade: the whole equity
    second_intended = budget / (1.0 + half_spread)
    assert arrays.trades[1]["size"] * float(panel.open[46, 0]) == pytest.approx(
        second_intended,
        rel=1e-3,  # filled whole (its own impact cuts it a little)
    )
    intended = first_intended + second_intended
    filled = first_filled + second_intended
    assert arrays.intended_notional == pytest.approx(intended, rel=1e-12)
    assert arrays.filled_notional == pytest.approx(filled, rel=1e-12)
    assert arrays.metrics["capacity"] == pytest.approx(filled / intended, rel=1e-12)
    assert 0.4 < arrays.metrics["capacity"] < 0.6  # about half the notional could not fill
    # The wrapper reports the same figure.
    assert (
        run_backtest(panel, entries, exits, config=config).metrics["capacity"]
        == (arrays.metrics["capacity"])
    )


@pytest.mark.parametrize("fill", ["next-open", "next-bar", "close"])
def test_capacity_is_one_without_a_participation_cap(fill: str) -> None:
    # Control: the same thin bars with the cap off fill every intended share (each fill
    # mode: the open and the close phases keep their own accumulators).
    volume = np.full(N_BARS, 1_000.0)
    panel = _panel(volume[:, None])
    entries, exits = _signals(25, 40)

    def config(cap: float | None) -> BacktestConfig:
        return _config(1_000_000.0, cap=cap).model_copy(update={"fill": fill})

    capped = run_backtest_arrays(panel, entries, exits, config=config(0.1))
    free = run_backtest_arrays(panel, entries, exits, config=config(None))
    assert capped.metrics["capacity"] < 0.01
    assert free.intended_notional > 0.0
    assert free.filled_notional == free.intended_notional
    assert free.metrics["capacity"] == 1.0
    # No entry at all: nothing was intended, capacity 1.
    none = np.zeros((N_BARS, 1), dtype=bool)
    idle = run_backtest_arrays(panel, none, none, config=config(0.1))
    assert idle.intended_notional == 0.0 and idle.metrics["capacity"] == 1.0


def test_costs_off_by_default_give_the_frictionless_fill() -> None:
    panel = _panel(1_000.0)
    entries, exits = _signals(25, 40)
    result = run_backtest(panel, entries, exits, config=BacktestConfig(market="none"))
    trade = result.trades.iloc[0]
    assert trade.entry_price == panel.open[26, 0] and trade.exit_price == panel.open[41, 0]
