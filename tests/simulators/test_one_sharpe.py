"""One Sharpe ratio and one annualisation, with the market's periods per year (issue 13, 6).

The expected figures are worked by hand from a five-day return series, not by the code
under test: r = 1%, -2%, 3%, 0%, 1.5%; mean 0.007; deviations 0.003, -0.027, 0.023, -0.007,
0.008, squares summing to 1380e-6, sample variance 345e-6; per-day Sharpe
0.007 / sqrt(0.000345) = 0.37686733...; a year of 365 days (crypto) makes it
x sqrt(365) = 7.20004026, of 252 (us) 5.98258342, of 243 (cn) 5.87478029, so a crypto
figure annualised over 252 days is 17% short (1 - sqrt(252/365)).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from evolution.feedback import paper_stats
from evolution.stats import _column_sharpe, sharpe_per_period
from reports.arena_day import account_metrics
from reports.daily import _history_sharpe
from reports.daily_input import DailyReportInput
from reports.weekly import _sharpe as weekly_sharpe
from simulators.metrics import (
    annualised_sharpe,
    compute_metrics,
    daily_periods_per_year,
    periods_per_year,
)

RETURNS = np.array([0.01, -0.02, 0.03, 0.0, 0.015])
PER_DAY = 0.37686733144071590  # 0.007 / sqrt(0.000345), worked above
CRYPTO = 7.200040257536407  # PER_DAY * sqrt(365)
US = 5.982583417540126  # PER_DAY * sqrt(252)


def _curve(initial: float) -> np.ndarray:
    return initial * np.cumprod(1.0 + RETURNS)


def test_the_markets_say_their_trading_days_a_year() -> None:
    assert periods_per_year("1D", "crypto") == 365.0
    assert periods_per_year("1D", "us") == 252.0
    assert periods_per_year("1D", "cn") == 243.0
    # Intraday bars scale by the bars of a session: a US session is 390 minutes.
    assert periods_per_year("1h", "crypto") == 365.0 * 24
    assert periods_per_year("5min", "us") == 252.0 * 78


def test_a_crypto_accounts_sharpe_is_annualised_over_365_days() -> None:
    figures = account_metrics(
        list(_curve(1_000_000.0)),
        1_000_000.0,
        0,
        0,
        0,
        periods_per_year=periods_per_year("1D", "crypto"),
    )
    assert figures["sharpe"] == pytest.approx(CRYPTO, rel=1e-9)
    # The control: the figure 252 days would give is the understated one.
    assert CRYPTO * math.sqrt(252 / 365) == pytest.approx(US, rel=1e-12)
    assert figures["sharpe"] != pytest.approx(US, rel=1e-3)


def test_every_former_sharpe_gives_the_one_functions_figure() -> None:
    one = annualised_sharpe(RETURNS, 365.0)
    assert one == pytest.approx(CRYPTO, rel=1e-12)
    assert annualised_sharpe(RETURNS, 1.0) == pytest.approx(PER_DAY, rel=1e-12)
    curve = _curve(100_000.0)
    metrics = compute_metrics(
        curve,
        init_cash=100_000.0,
        trade_pnl=np.empty(0),
        trade_closed=np.empty(0, dtype=bool),
        traded_value=0.0,
        position_value=np.zeros_like(curve),
        periods=365.0,
    )
    # The first return of a backtest is measured against the initial cash: the same five.
    assert metrics["sharpe"] == pytest.approx(one, rel=1e-9)
    assert paper_stats(list(RETURNS), periods_per_year=365.0)["sharpe"] == one
    assert sharpe_per_period(RETURNS) == pytest.approx(PER_DAY, rel=1e-12)
    matrix = np.column_stack([RETURNS, np.full(5, 0.01), -RETURNS])
    np.testing.assert_allclose(_column_sharpe(matrix), [PER_DAY, 0.0, -PER_DAY], rtol=1e-12)
    weekly = weekly_sharpe(np.concatenate(([100_000.0], curve)), 365.0)
    assert weekly == pytest.approx(one, rel=1e-9)
    days = [date(2024, 3, 1) + timedelta(days=k) for k in range(6)]
    history = pd.Series(np.concatenate(([3000.0], _curve(3000.0))), index=days)
    assert _history_sharpe(history, 365.0) == pytest.approx(one, rel=1e-9)


def test_a_ledgers_own_calendar_or_its_market_gives_the_days_a_year() -> None:
    weekdays = list(pd.bdate_range("2024-01-01", periods=10).date)
    every_day = list(pd.date_range("2024-01-01", periods=10).date)
    assert daily_periods_per_year(every_day) == 365.0
    assert daily_periods_per_year(weekdays) == 252.0
    assert daily_periods_per_year(weekdays, "cn") == 243.0


def test_the_daily_report_has_no_default_year_for_its_benchmark() -> None:
    # No market can get another market's year by omission.
    field = {f.name: f for f in dataclasses.fields(DailyReportInput)}["periods_per_year"]
    assert field.default is dataclasses.MISSING
    with pytest.raises(TypeError):
        account_metrics([1.0, 1.1], 1.0, 0, 0, 0)  # type: ignore[call-arg]
