"""Indicator primitives: causal (no look-ahead) and equal to plain reference loops."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from genome import primitives as prim
from simulators.bars import Panel

# Every primitive, as a function of a panel. Windows are short enough to warm up in the panel.
PRIMITIVES: dict[str, Callable[[Panel], np.ndarray]] = {
    "sma": lambda p: prim.sma(p.close, 20),
    "sma_volume": lambda p: prim.sma(p.volume, 10),
    "ema": lambda p: prim.ema(p.close, 15),
    "rolling_std": lambda p: prim.rolling_std(p.close, 20, 0),
    "rolling_std_ddof1": lambda p: prim.rolling_std(p.close, 7, 1),
    "rolling_max": lambda p: prim.rolling_max(p.high, 30),
    "rolling_min": lambda p: prim.rolling_min(p.low, 30),
    "rsi": lambda p: prim.rsi(p.close, 14),
    "atr": lambda p: prim.atr(p.high, p.low, p.close, 14),
    "rate_of_change": lambda p: prim.rate_of_change(p.close, 25),
    "log_returns": lambda p: prim.log_returns(p.close),
    "simple_returns": lambda p: prim.simple_returns(p.close),
    "percentile_rank": lambda p: prim.percentile_rank(p.close, 50, 50),
    "shift": lambda p: prim.shift(p.close, 1),
    "realised_volatility": lambda p: prim.realised_volatility(p.close, 20),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_truncated_future_bars_past_values_unchanged(name: str, panel: Panel) -> None:
    compute = PRIMITIVES[name]
    full = compute(panel)
    assert full.shape == (panel.n_bars, panel.n_assets)
    assert np.isfinite(full[-1, 0]), "the primitive never warmed up; the test would be vacuous"
    for stop in (1, 45, 61, 105, 230, panel.n_bars - 1):
        truncated = compute(panel.slice_bars(0, stop))
        np.testing.assert_array_equal(truncated, full[:stop], err_msg=f"{name} at stop={stop}")


def _reference_rolling(values: np.ndarray, window: int, reducer: Callable) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    for t in range(window - 1, values.shape[0]):
        block = values[t - window + 1 : t + 1]
        for col in range(values.shape[1]):
            if np.all(np.isfinite(block[:, col])):
                out[t, col] = reducer(block[:, col])
    return out


@pytest.mark.parametrize(
    ("kernel", "reducer"),
    [
        (lambda x, w: prim.sma(x, w), np.mean),
        (lambda x, w: prim.rolling_std(x, w, 0), lambda b: np.std(b)),
        (lambda x, w: prim.rolling_std(x, w, 1), lambda b: np.std(b, ddof=1)),
        (lambda x, w: prim.rolling_max(x, w), np.max),
        (lambda x, w: prim.rolling_min(x, w), np.min),
    ],
    ids=["sma", "std", "std_ddof1", "max", "min"],
)
def test_rolling_kernel_against_reference_loop_matches(
    kernel: Callable, reducer: Callable, panel: Panel
) -> None:
    for window in (2, 5, 33):
        expected = _reference_rolling(panel.close, window, reducer)
        np.testing.assert_allclose(kernel(panel.close, window), expected, rtol=1e-9, atol=1e-9)


def test_ema_against_sma_seeded_recursion_matches(panel: Panel) -> None:
    window = 10
    alpha = 2.0 / (window + 1.0)
    close = panel.close[:, -1]  # the late-listed asset: NaN before bar 60
    expected = np.full(close.shape, np.nan)
    first = 60 + window - 1
    expected[first] = close[60 : first + 1].mean()
    for t in range(first + 1, len(close)):
        expected[t] = alpha * close[t] + (1 - alpha) * expected[t - 1]
    np.testing.assert_allclose(prim.ema(panel.close, window)[:, -1], expected, rtol=1e-12)


def test_rsi_against_wilder_reference_matches(panel: Panel) -> None:
    window = 14
    close = panel.close[:, 0]
    change = np.diff(close)
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    expected = np.full(close.shape, np.nan)
    average_gain, average_loss = gains[:window].mean(), losses[:window].mean()
    expected[window] = 100 - 100 / (1 + average_gain / average_loss)
    for t in range(window + 1, len(close)):
        average_gain = (average_gain * (window - 1) + gains[t - 1]) / window
        average_loss = (average_loss * (window - 1) + losses[t - 1]) / window
        expected[t] = 100 - 100 / (1 + average_gain / average_loss)
    np.testing.assert_allclose(prim.rsi(panel.close, window)[:, 0], expected, rtol=1e-9)


def test_rsi_flat_and_rising_prices_hit_50_and_100() -> None:
    flat = np.full((30, 1), 10.0)
    rising = np.arange(1.0, 31.0).reshape(30, 1)
    assert prim.rsi(flat, 5)[-1, 0] == 50.0
    assert prim.rsi(rising, 5)[-1, 0] == 100.0


def test_atr_against_true_range_reference_matches(panel: Panel) -> None:
    window = 14
    high, low, close = panel.high[:, 0], panel.low[:, 0], panel.close[:, 0]
    previous = np.concatenate([[np.nan], close[:-1]])
    true_range = np.fmax(high - low, np.fmax(np.abs(high - previous), np.abs(low - previous)))
    expected = np.full(close.shape, np.nan)
    expected[window - 1] = true_range[:window].mean()
    for t in range(window, len(close)):
        expected[t] = (expected[t - 1] * (window - 1) + true_range[t]) / window
    np.testing.assert_allclose(
        prim.atr(panel.high, panel.low, panel.close, window)[:, 0], expected, rtol=1e-9
    )


def test_rate_of_change_and_returns_against_pandas_match(panel: Panel) -> None:
    frame = pd.DataFrame(panel.close)
    np.testing.assert_allclose(
        prim.rate_of_change(panel.close, 7), frame.pct_change(7, fill_method=None), rtol=1e-12
    )
    np.testing.assert_allclose(
        prim.simple_returns(panel.close), frame.pct_change(fill_method=None), rtol=1e-12
    )
    np.testing.assert_allclose(
        prim.log_returns(panel.close), np.log(frame / frame.shift(1)), rtol=1e-12
    )


def test_percentile_rank_against_reference_matches() -> None:
    values = np.random.default_rng(5).normal(size=(120, 2))
    values[:10, 1] = np.nan
    lookback, min_periods = 30, 20
    expected = np.full(values.shape, np.nan)
    for t in range(values.shape[0]):
        for col in range(2):
            block = values[max(0, t - lookback + 1) : t + 1, col]
            block = block[np.isfinite(block)]
            if np.isfinite(values[t, col]) and len(block) >= min_periods:
                expected[t, col] = np.mean(block <= values[t, col])
    np.testing.assert_allclose(prim.percentile_rank(values, lookback, min_periods), expected)


def test_rolling_std_far_from_zero_prices_keeps_precision() -> None:
    # BTC-like prices: a running sum of raw squares would lose the small variance.
    values = 60_000.0 + np.random.default_rng(1).normal(0.0, 0.5, (500, 1))
    expected = _reference_rolling(values, 20, lambda b: np.std(b))
    np.testing.assert_allclose(prim.rolling_std(values, 20, 0), expected, rtol=1e-6)


def test_rolling_std_flat_window_is_exactly_zero() -> None:
    values = np.concatenate([np.linspace(10.0, 20.0, 30), np.full(10, 17.3)]).reshape(40, 1)
    assert (prim.rolling_std(values, 5, 1)[-5:, 0] == 0.0).all()
    assert np.isnan(prim.rolling_std(values, 1, 1)).all()


def test_nan_inside_window_gives_nan_then_recovers() -> None:
    values = np.arange(1.0, 41.0).reshape(40, 1)
    values[20, 0] = np.nan
    out = prim.sma(values, 5)
    assert np.isnan(out[20:25, 0]).all()
    assert out[25, 0] == pytest.approx(values[21:26, 0].mean())
    out_ema = prim.ema(values, 5)
    assert np.isnan(out_ema[20:25, 0]).all()
    assert out_ema[25, 0] == pytest.approx(values[21:26, 0].mean())


def test_percentile_rank_with_gaps_and_infinities_equals_a_scan_exactly() -> None:
    # Non-finite values (NaN, +inf, -inf) are neither counted nor ranked; the ranks are the
    # same floats as a plain scan's, for look-backs shorter and longer than the history.
    rng = np.random.default_rng(11)
    values = rng.normal(size=(300, 4))
    values[rng.random(values.shape) < 0.05] = np.nan
    values[rng.random(values.shape) < 0.02] = np.inf
    values[rng.random(values.shape) < 0.02] = -np.inf
    values[:40, 2] = np.nan
    values[100:130, 3] = 0.5  # ties
    for lookback, min_periods in ((1, 1), (7, 3), (60, 60), (400, 10)):
        expected = np.full(values.shape, np.nan)
        for t in range(values.shape[0]):
            for col in range(values.shape[1]):
                block = values[max(0, t - lookback + 1) : t + 1, col]
                block = block[np.isfinite(block)]
                today = values[t, col]
                if np.isfinite(today) and len(block) >= min_periods:
                    expected[t, col] = np.sum(block <= today) / len(block)
        np.testing.assert_array_equal(prim.percentile_rank(values, lookback, min_periods), expected)


def test_sizing_kernels_equal_numpy_where_chains_bit_for_bit() -> None:
    # The one-pass kernels give the very floats of NumPy's where/clip chains they replaced,
    # on the awkward values: NaN, +-inf, +-0, values at and beyond the caps.
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 5e-324, 0.2, 1.0, 7.5])
    rng = np.random.default_rng(3)
    a = rng.choice(np.concatenate([special, rng.normal(size=40)]), size=(60, 7))
    b = rng.choice(np.concatenate([special, np.abs(rng.normal(size=40))]), size=(60, 7))

    def bits(x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), np.nan, x).view(np.int64)

    with np.errstate(all="ignore"):
        variance = b**2
        ratio = np.where(variance > 0.0, a / variance, np.where(a > 0.0, np.inf, 0.0))
        kelly = np.where(np.isnan(a), np.nan, ratio)
        for cap in (0.0, 0.2, 1.0):
            clipped = np.clip(a, 0.0, cap)
            expected = np.where(np.isfinite(clipped), clipped, 0.0)
            assert np.array_equal(bits(prim.clipped_weight(a, cap)), bits(expected))
        for target, slots in ((0.15, 5), (0.0, 1), (2.0, 3)):
            sigma = b * 19.1
            scale = np.where(
                sigma > 0.0, np.minimum(1.0, target / sigma), np.where(sigma == 0.0, 1.0, np.nan)
            )
            weight = scale / slots
            expected = np.where(np.isfinite(weight), weight, 0.0)
            assert np.array_equal(
                bits(prim.vol_target_weight(b, 19.1, target, slots)), bits(expected)
            )
    assert np.array_equal(bits(prim.kelly_from_moments(a, b)), bits(kelly))
