"""Rolling indicators: definitions against plain NumPy/pandas, warm-up, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import StrategyParamError
from simulators.indicators import atr, ema, rolling_max, rolling_min, rsi, shift, sma


@pytest.fixture
def prices() -> np.ndarray:
    rng = np.random.default_rng(2)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (120, 3)), axis=0))


def test_sma_matches_pandas_rolling_mean_with_nan_warmup(prices: np.ndarray) -> None:
    out = sma(prices, 7)
    expected = pd.DataFrame(prices).rolling(7).mean().to_numpy()
    assert np.isnan(out[:6]).all()
    np.testing.assert_allclose(out[6:], expected[6:], rtol=1e-12)


def test_sma_one_dimensional_input_returns_one_dimensional(prices: np.ndarray) -> None:
    out = sma(prices[:, 0], 5)
    assert out.shape == (120,)
    np.testing.assert_allclose(out, sma(prices, 5)[:, 0])


def test_ema_seeded_with_sma_then_recursive(prices: np.ndarray) -> None:
    n = 10
    out = ema(prices, n)
    alpha = 2 / (n + 1)
    expected = prices[:n].mean(axis=0)
    assert np.isnan(out[: n - 1]).all()
    np.testing.assert_allclose(out[n - 1], expected, rtol=1e-12)
    for t in range(n, 120):
        expected = expected + alpha * (prices[t] - expected)
    np.testing.assert_allclose(out[-1], expected, rtol=1e-10)


def test_rsi_matches_wilder_definition(prices: np.ndarray) -> None:
    n = 14
    close = prices[:, 0]
    change = np.diff(close)
    gain, loss = np.maximum(change, 0), np.maximum(-change, 0)
    avg_gain, avg_loss = gain[:n].mean(), loss[:n].mean()
    expected = [100 - 100 / (1 + avg_gain / avg_loss)]
    for k in range(n, len(change)):
        avg_gain = (avg_gain * (n - 1) + gain[k]) / n
        avg_loss = (avg_loss * (n - 1) + loss[k]) / n
        expected.append(100 - 100 / (1 + avg_gain / avg_loss))
    out = rsi(close, n)
    assert np.isnan(out[:n]).all()
    np.testing.assert_allclose(out[n:], expected, rtol=1e-10)


def test_rsi_only_rising_prices_is_100() -> None:
    out = rsi(np.arange(1.0, 30.0), 5)
    assert np.all(out[5:] == 100.0)


def test_rolling_max_min_match_pandas(prices: np.ndarray) -> None:
    frame = pd.DataFrame(prices)
    np.testing.assert_array_equal(rolling_max(prices, 9)[8:], frame.rolling(9).max()[8:])
    np.testing.assert_array_equal(rolling_min(prices, 9)[8:], frame.rolling(9).min()[8:])
    assert np.isnan(rolling_max(prices, 9)[:8]).all()


def test_atr_matches_wilder_definition(prices: np.ndarray) -> None:
    close = prices[:, 1]
    high, low = close * 1.01, close * 0.98
    n = 5
    true_range = np.empty(len(close))
    true_range[0] = high[0] - low[0]
    prev = close[:-1]
    true_range[1:] = np.maximum.reduce(
        [high[1:] - low[1:], np.abs(high[1:] - prev), np.abs(low[1:] - prev)]
    )
    expected = true_range[:n].mean()
    for t in range(n, len(close)):
        expected = (expected * (n - 1) + true_range[t]) / n
    out = atr(high, low, close, n)
    assert np.isnan(out[: n - 1]).all()
    assert out[-1] == pytest.approx(expected, rel=1e-10)


def test_leading_nan_delays_warmup() -> None:
    values = np.array([np.nan, np.nan, 1.0, 2.0, 3.0, 4.0])
    assert np.isnan(sma(values, 3)[:4]).all() and sma(values, 3)[4] == 2.0
    assert np.isnan(ema(values, 3)[:4]).all() and ema(values, 3)[4] == 2.0


@pytest.mark.parametrize("func", [sma, ema, rsi, rolling_max, rolling_min])
def test_indicator_prefix_unchanged_when_future_removed(func, prices: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    full = func(prices, 8)
    cut = func(prices[:50], 8)
    np.testing.assert_array_equal(full[:50], cut)


def test_shift_moves_down_with_nan_top() -> None:
    out = shift(np.array([1.0, 2.0, 3.0]), 1)
    assert np.isnan(out[0]) and list(out[1:]) == [1.0, 2.0]


@pytest.mark.parametrize("window", [0, -3, 2.5])
def test_bad_window_raises_naming_indicator(window: float) -> None:
    with pytest.raises(StrategyParamError, match="sma: window"):
        sma(np.ones(5), window)  # type: ignore[arg-type]
