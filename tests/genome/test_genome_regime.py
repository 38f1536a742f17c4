"""Regime classification: known markets get their regime, and no future bar is used."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from genome.regime import (
    REGIME_CODES,
    UNKNOWN,
    RegimeSpec,
    classify_regimes,
    equal_weight_index,
    regime_names,
)
from simulators.bars import Panel


def panel_from_returns(returns: np.ndarray) -> Panel:
    close = 100.0 * np.cumprod(1.0 + returns, axis=0)
    n_bars, n_assets = close.shape
    return Panel(
        symbols=tuple(f"S{i}" for i in range(n_assets)),
        index=pd.date_range("2021-01-04 15:00", periods=n_bars, freq="D", tz="Asia/Shanghai"),
        open=close.copy(),
        high=close.copy(),
        low=close.copy(),
        close=close,
        volume=np.full(close.shape, 1e4),
        tradable=np.ones(close.shape, dtype=bool),
    )


def calm_returns(drift: float, seed: int = 0, n_bars: int = 400) -> np.ndarray:
    return np.random.default_rng(seed).normal(drift, 0.004, (n_bars, 8))


@pytest.mark.parametrize(("drift", "regime"), [(0.002, "bull"), (-0.002, "bear"), (0.0, "range")])
def test_classify_regimes_trending_or_flat_market_gets_its_regime(
    drift: float, regime: str
) -> None:
    codes = classify_regimes(panel_from_returns(calm_returns(drift)))
    known = codes[codes != UNKNOWN]
    # In a stationary market the volatility rank is uniform, so about a fifth of the bars are
    # "high_vol" by construction; every other known bar must carry the trend's regime.
    assert len(known) > 250
    assert set(regime_names(known)) <= {regime, "high_vol"}
    assert np.mean(known == REGIME_CODES[regime]) > 0.6


def test_classify_regimes_volatility_burst_is_high_vol() -> None:
    returns = calm_returns(0.0, seed=1)
    burst = slice(300, 330)
    returns[burst] = np.random.default_rng(2).normal(0.0, 0.03, (30, 8))
    codes = classify_regimes(panel_from_returns(returns))
    # From a few bars into the burst (the 20-bar volatility needs to rise) to its end.
    assert (codes[305:330] == REGIME_CODES["high_vol"]).all()
    assert np.mean(codes[200:295] == REGIME_CODES["high_vol"]) < 0.5


def test_classify_regimes_short_history_is_unknown() -> None:
    spec = RegimeSpec()
    codes = classify_regimes(panel_from_returns(calm_returns(0.002)), spec)
    assert (codes[: spec.trend_window] == UNKNOWN).all()
    assert (codes[spec.trend_window + 1 :] != UNKNOWN).all()
    assert regime_names(np.array([UNKNOWN, 0, 3])) == ["unknown", "bull", "high_vol"]


def test_classify_regimes_truncated_future_bars_past_codes_unchanged(
    panel_factory: Callable[..., Panel],
) -> None:
    panel = panel_factory(seed=4, n_bars=420, n_assets=7)
    full = classify_regimes(panel)
    assert len(set(full.tolist())) >= 3, "too few regimes for a meaningful check"
    for stop in (50, 101, 150, 233, 300, 419):
        np.testing.assert_array_equal(classify_regimes(panel.slice_bars(0, stop)), full[:stop])


def test_equal_weight_index_skips_untradable_assets() -> None:
    returns = np.zeros((5, 2))
    returns[:, 0] = 0.01
    panel = panel_from_returns(returns)
    tradable = panel.tradable.copy()
    tradable[:, 1] = False
    blocked = Panel(
        **{
            **{
                k: getattr(panel, k)
                for k in ("symbols", "index", "open", "high", "low", "close", "volume")
            },
            "tradable": tradable,
        }
    )
    np.testing.assert_allclose(equal_weight_index(blocked), 1.01 ** np.arange(5))
    np.testing.assert_allclose(equal_weight_index(panel), 1.005 ** np.arange(5))
