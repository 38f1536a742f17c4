"""Performance metrics on hand-computable equity curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.metrics import compute_metrics, max_drawdown, periods_per_year


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
        ("1D", "cn", 252.0),
        ("1D", "crypto", 365.0),
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
