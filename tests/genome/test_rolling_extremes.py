"""The O(T) rolling max/min give exactly what a scan of each window gives (NaN, ties, inf)."""

from __future__ import annotations

import numpy as np
import pytest

from genome import primitives


def _scan(values: np.ndarray, window: int, reduce) -> np.ndarray:
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(window - 1, n_bars):
            chunk = values[t - window + 1 : t + 1, col]
            if np.isfinite(chunk).all():
                out[t, col] = reduce(chunk)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_rolling_extremes_random_panels_equal_a_window_scan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n_bars, n_assets = int(rng.integers(1, 70)), int(rng.integers(1, 4))
        window = int(rng.integers(1, 25))
        # Rounded values make ties; NaN and inf make undefined windows.
        values = rng.normal(size=(n_bars, n_assets)).round(int(rng.integers(0, 3)))
        values[rng.random(values.shape) < 0.08] = np.nan
        values[rng.random(values.shape) < 0.02] = np.inf
        assert np.array_equal(
            primitives.rolling_max(values, window), _scan(values, window, np.max), equal_nan=True
        )
        assert np.array_equal(
            primitives.rolling_min(values, window), _scan(values, window, np.min), equal_nan=True
        )


def test_rolling_max_window_longer_than_history_is_all_nan() -> None:
    values = np.arange(5.0).reshape(5, 1)
    assert np.isnan(primitives.rolling_max(values, 6)).all()
    assert primitives.rolling_max(values, 2)[1:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_rolling_extremes_equal_values_give_the_latest_one() -> None:
    # -0.0 == 0.0: the latest of equal values is the result (bits included), as the deque
    # these kernels replaced kept it, across a block boundary of the window too.
    values = np.array([[-0.0], [0.0], [-0.0], [-0.0], [0.0]])
    for function in (primitives.rolling_max, primitives.rolling_min):
        out = function(values, 2)
        assert np.signbit(out[1:, 0]).tolist() == [False, True, True, False]
        out = function(values, 3)
        assert np.signbit(out[2:, 0]).tolist() == [True, True, False]
