"""Performance metrics on hand-computable equity curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulators.backtest import run_backtest_arrays
from simulators.bars import Panel
from simulators.metrics import (
    annualised_sharpe,
    calendar_years,
    compute_metrics,
    daily_periods_per_year,
    max_drawdown,
    panel_periods_per_year,
    periods_per_year,
)


def metrics_of(equity: list[float], pnl: list[float] | None = None, **kw: float) -> dict:
    values = np.asarray(equity, dtype=float)
    trades = np.asarray(pnl or [], dtype=float)
    return compute_metrics(
        values,
        init_cash=kw.get("init_cash", 100.0),
        trade_pnl=trades,
        trade_closed=np.ones(trades.size, dtype=bool),
        traded_value=kw.get("traded_value", 0.0),
        position_value=np.asarray(kw.get("position_value", np.zeros(values.size))),
        periods=kw.get("periods", 252.0),
    )


def test_max_drawdown_from_running_peak() -> None:
    assert max_drawdown(np.array([100, 120, 90, 130, 117])) == pytest.approx(0.25)


def test_max_drawdown_monotone_rise_is_zero() -> None:
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0


def test_total_return_and_cagr_over_one_year() -> None:
    equity = list(np.linspace(101, 121, 252))
    out = metrics_of(equity)
    assert out["total_return"] == pytest.approx(0.21)
    assert out["cagr"] == pytest.approx(0.21)  # exactly one year of bars


def test_sharpe_and_sortino_definitions() -> None:
    equity = [110.0, 99.0, 108.9, 119.79]
    returns = np.array([0.1, -0.1, 0.1, 0.1])
    out = metrics_of(equity, periods=4)
    expected = returns.mean() / returns.std(ddof=1) * 2
    assert out["sharpe"] == pytest.approx(expected)
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert out["sortino"] == pytest.approx(returns.mean() / downside * 2)


def test_flat_equity_sharpe_zero_not_nan() -> None:
    out = metrics_of([100.0] * 10)
    assert out["sharpe"] == 0.0 and out["sortino"] == 0.0 and out["calmar"] == 0.0


def test_trade_statistics_win_rate_profit_factor() -> None:
    out = metrics_of([100.0, 101.0], pnl=[10.0, -5.0, 5.0, -5.0])
    assert out["win_rate"] == 0.5
    assert out["profit_factor"] == pytest.approx(1.5)
    assert out["n_trades"] == 4


def test_profit_factor_no_losses_is_infinite() -> None:
    assert metrics_of([100.0, 101.0], pnl=[3.0])["profit_factor"] == math.inf


def test_exposure_and_turnover() -> None:
    out = metrics_of(
        [100.0] * 4,
        position_value=np.array([0.0, 50.0, 100.0, 50.0]),
        traded_value=200.0,
        periods=4,
    )
    assert out["exposure"] == pytest.approx(0.5)
    assert out["turnover"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("freq", "market", "expected"),
    [
        ("1D", "us", 252.0),
        ("1D", "cn", 243.0),
        ("1D", "none", 252.0),
        ("1D", "crypto", 365.0),
        ("5min", "cn", 243.0 * 48),
        ("1W", "us", 52.0),
        ("1h", "crypto", 365.0 * 24),
        ("1min", "us", 252.0 * 390),
    ],
)
def test_periods_per_year_by_frequency_and_market(freq: str, market: str, expected: float) -> None:
    assert periods_per_year(freq, market) == expected


def test_periods_per_year_unknown_frequency_raises() -> None:
    with pytest.raises(ValueError, match="unknown frequency"):
        periods_per_year("3D", "us")


def _panel(
    index: pd.DatetimeIndex, close: np.ndarray, market: str = "us", freq: str = "1D"
) -> Panel:
    close = np.asarray(close, dtype=float).reshape(-1, 1)
    return Panel(
        symbols=("AAA",), index=index, open=close, high=close, low=close, close=close,
        volume=np.full(close.shape, 1e6), tradable=np.ones(close.shape, dtype=bool),
        freq=freq, market=market,
    )  # fmt: skip


def test_a_us_hourly_file_with_seven_bars_a_day_is_annualised_at_seven() -> None:
    # yfinance's US hourly bars open 9:30, 10:30, ..., 15:30: seven bars a day, the last one a
    # half hour; bar-close stamps 10:30 .. 15:30 and 16:00.
    days = pd.bdate_range("2024-01-02", periods=10)
    closes = [pd.Timedelta(hours=10, minutes=30) + pd.Timedelta(hours=h) for h in range(6)]
    closes.append(pd.Timedelta(hours=16))
    index = pd.DatetimeIndex([d + c for d in days for c in closes]).tz_localize("America/New_York")
    panel = _panel(index, np.linspace(10, 11, len(index)), freq="1h")
    assert panel_periods_per_year(panel) == 252.0 * 7
    assert periods_per_year("1h", "us") == 252.0 * 6.5  # the session length: the old figure
    # Daily bars keep the market's trading days.
    daily = _panel((days + pd.Timedelta(hours=16)).tz_localize("America/New_York"), np.ones(10))
    assert panel_periods_per_year(daily) == 252.0


def test_cagr_uses_calendar_time_so_a_long_suspension_is_not_left_out() -> None:
    # 252 daily bars, then 140 calendar days without a bar (a suspension), then 126 bars:
    # about 1.5 years of bars over about 1.9 years of calendar time.
    first = pd.bdate_range("2019-01-02", periods=252)
    second = pd.bdate_range(first[-1] + pd.Timedelta(days=140), periods=126)
    index = (first.append(second) + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    equity = np.linspace(101.0, 150.0, len(index))
    years = calendar_years(index)
    span = (index[-1] - index[0]).total_seconds() / 86_400.0  # a DST hour included
    assert years == pytest.approx(span * len(index) / (len(index) - 1) / 365.25)
    by_bars = metrics_of(list(equity))
    by_calendar = compute_metrics(
        equity, init_cash=100.0, trade_pnl=np.zeros(0), trade_closed=np.zeros(0, dtype=bool),
        traded_value=0.0, position_value=np.zeros(equity.size), periods=252.0, years=years,
    )  # fmt: skip
    assert by_bars["cagr"] == pytest.approx(1.5 ** (252 / len(index)) - 1)
    assert by_calendar["cagr"] == pytest.approx(1.5 ** (1 / years) - 1)
    assert by_calendar["cagr"] < by_bars["cagr"]
    # A backtest reports the calendar figure.
    panel = _panel(index, equity)
    entries = np.zeros((len(index), 1), dtype=bool)
    entries[0] = True
    result = run_backtest_arrays(panel, entries, np.zeros_like(entries))
    final = result.metrics["final_equity"] / 100_000.0
    assert result.metrics["cagr"] == pytest.approx(final ** (1 / years) - 1, rel=1e-9)


def test_one_sharpe_ratio_annualised_over_the_markets_trading_days() -> None:
    returns = np.array([0.01, -0.005, 0.007, 0.002, -0.001])
    by_hand = returns.mean() / returns.std(ddof=1)
    assert annualised_sharpe(returns, 252.0) == pytest.approx(by_hand * math.sqrt(252.0))
    assert annualised_sharpe(returns, 365.0) == pytest.approx(by_hand * math.sqrt(365.0))
    assert annualised_sharpe(returns[:1], 252.0) == 0.0
    assert annualised_sharpe(np.full(5, 0.01), 252.0) == 0.0
    # A daily record with weekend days is a 24/7 market's (crypto): 365 days a year.
    weekdays = pd.bdate_range("2024-01-01", periods=10).date
    every_day = pd.date_range("2024-01-01", periods=10).date
    assert daily_periods_per_year(weekdays) == 252.0
    assert daily_periods_per_year(every_day) == 365.0


def test_arena_account_sharpe_uses_the_markets_days_a_crypto_account_is_not_understated() -> None:
    from reports.arena_day import account_metrics

    curve = [1_000_000.0 * (1 + 0.001 * k) + (500.0 if k % 2 else -500.0) for k in range(1, 30)]
    stock = account_metrics(curve, 1_000_000.0, 0, 0, 0, periods_per_year=252.0)
    crypto = account_metrics(curve, 1_000_000.0, 0, 0, 0, periods_per_year=365.0)
    assert crypto["sharpe"] == pytest.approx(stock["sharpe"] * math.sqrt(365.0 / 252.0))
    values = np.asarray([1_000_000.0, *curve])
    returns = values[1:] / values[:-1] - 1
    assert stock["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))


def test_trading_days_a_year_match_the_exchange_calendars() -> None:
    """cn and us daily annualisation: the mean sessions a year of XSHG and XNYS, 2006-2025,
    counted here straight from exchange_calendars (not through the lab's calendar module)."""
    import exchange_calendars as xcals

    for market, name in (("cn", "XSHG"), ("us", "XNYS")):
        calendar = xcals.get_calendar(name, start="2006-01-01", end="2025-12-31")
        per_year = len(calendar.sessions) / 20.0
        assert abs(periods_per_year("1D", market) - per_year) < 0.5, (market, per_year)
