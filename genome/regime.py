"""Market regime per bar, for the genomes' allowed-regimes filter.

The broad index is the equal-weight mean of the assets' bar returns (assets that traded on
both bars only), compounded into a level. At bar ``t``, using only bars ``<= t``:

* ``trend`` = index level / level ``trend_window`` bars earlier - 1 (default 100 bars);
* ``vol`` = standard deviation of the index's log returns over ``vol_window`` bars (20);
* ``vol_rank`` = share of the last ``vol_lookback`` (252) values of ``vol`` that are <= today's,
  once at least ``vol_min_periods`` (60) are known.

Then, in this order: ``high_vol`` if ``vol_rank >= high_vol_rank`` (0.8); ``bull`` if
``trend > trend_threshold`` (+5%); ``bear`` if ``trend < -trend_threshold``; else ``range``.
Bars without enough history are ``unknown`` (code -1). High volatility wins over the trend
because a trending but turbulent market behaves like neither a calm bull nor a calm bear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from genome.bounds import REGIMES
from genome.primitives import log_returns, percentile_rank, rolling_std
from simulators.bars import Panel

UNKNOWN = -1
# Codes are positions in genome.bounds.REGIMES: bull=0, bear=1, range=2, high_vol=3.
REGIME_CODES: dict[str, int] = {name: code for code, name in enumerate(REGIMES)}


@dataclass(frozen=True, slots=True)
class RegimeSpec:
    """Parameters of :func:`classify_regimes` (see the module docstring)."""

    trend_window: int = 100
    trend_threshold: float = 0.05
    vol_window: int = 20
    vol_lookback: int = 252
    vol_min_periods: int = 60
    high_vol_rank: float = 0.8


@njit(cache=True)
def _equal_weight_returns(
    close: np.ndarray, tradable: np.ndarray
) -> np.ndarray:  # pragma: no cover
    n_bars, n_assets = close.shape
    out = np.full(n_bars, np.nan)
    for t in range(1, n_bars):
        total = 0.0
        count = 0
        for col in range(n_assets):
            before = close[t - 1, col]
            now = close[t, col]
            if (
                tradable[t, col]
                and tradable[t - 1, col]
                and np.isfinite(before)
                and np.isfinite(now)
                and before > 0.0
            ):
                total += now / before - 1.0
                count += 1
        out[t] = total / count if count > 0 else 0.0
    return out


def equal_weight_index(panel: Panel) -> np.ndarray:
    """Return the equal-weight index level, ``(T,)``, starting at 1.0 on the first bar."""
    returns = _equal_weight_returns(panel.close, panel.tradable)
    returns[0] = 0.0
    return np.cumprod(1.0 + returns)  # type: ignore[no-any-return]


def classify_regimes(panel: Panel, spec: RegimeSpec | None = None) -> np.ndarray:
    """Return one regime code per bar, ``(T,)`` int8, using only bars up to each bar.

    Codes index :data:`genome.bounds.REGIMES` (``bull=0, bear=1, range=2, high_vol=3``);
    ``-1`` marks bars without enough history.
    """
    spec = spec or RegimeSpec()
    level = equal_weight_index(panel)[:, None]
    n_bars = level.shape[0]
    trend = np.full(n_bars, np.nan)
    if n_bars > spec.trend_window:
        trend[spec.trend_window :] = (
            level[spec.trend_window :, 0] / level[: n_bars - spec.trend_window, 0] - 1.0
        )
    vol = rolling_std(log_returns(level), spec.vol_window, 1)
    rank = percentile_rank(vol, spec.vol_lookback, spec.vol_min_periods)[:, 0]
    codes = np.full(n_bars, UNKNOWN, dtype=np.int8)
    known = np.isfinite(trend) & np.isfinite(rank)
    codes[known] = REGIME_CODES["range"]
    codes[known & (trend > spec.trend_threshold)] = REGIME_CODES["bull"]
    codes[known & (trend < -spec.trend_threshold)] = REGIME_CODES["bear"]
    codes[known & (rank >= spec.high_vol_rank)] = REGIME_CODES["high_vol"]
    return codes


def regime_names(codes: np.ndarray) -> list[str]:
    """Return the names of ``codes`` (``"unknown"`` for -1)."""
    return [REGIMES[code] if code >= 0 else "unknown" for code in codes.tolist()]
