"""Perceive: what the arena knows of the market before trading day ``D``.

:func:`perceive` cuts the daily panel itself at the close of ``D-1`` (every bar whose close
timestamp is at or before midnight of ``D`` in the panel's timezone: the 15:00/16:00 close of
``D-1`` on session markets, the 00:00 bar that ends ``D-1`` on crypto) and never reads a later
bar, so handing it the whole history, future included, gives the same answer as handing it the
history up to ``D-1``.

The regime is :func:`genome.regime.classify_regimes` of the cut panel at its last bar, the same
labels the genomes' backtests are split by (so the debate's "similar regimes" mean the same
thing); the inputs of the rule are recomputed with the same primitives and reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import DataSpecError
from genome.primitives import log_returns, percentile_rank, rolling_std
from genome.regime import RegimeSpec, classify_regimes, equal_weight_index, regime_names
from simulators.bars import Panel
from simulators.metrics import periods_per_year

__all__ = ["AssetRisk", "Perception", "RegimeReading", "perceive", "perception_cutoff"]

# Windows (bars) of the per-asset figures and of breadth.
RISK_WINDOW = 20
DRAWDOWN_LOOKBACK = 252
BREADTH_WINDOW = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class RegimeReading:
    """The regime of the day and the figures it was decided from.

    ``trend_return`` is the equal-weight index's return over ``trend_window`` bars,
    ``index_volatility`` its annualised volatility over ``vol_window`` bars and
    ``vol_percentile`` where that volatility ranks among the last ``vol_lookback`` values.
    ``breadth`` (share of assets closing above their ``BREADTH_WINDOW``-bar mean) is reported
    for the reader; the rule does not use it. NaN marks a figure without enough history, and
    then the regime is ``unknown``.
    """

    regime: str
    trend_return: float
    index_volatility: float
    vol_percentile: float
    breadth: float
    trend_window: int
    trend_threshold: float
    vol_window: int
    vol_lookback: int
    high_vol_rank: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetRisk:
    """Risk figures of one asset at the close of ``D-1``.

    ``volatility`` is annualised (log returns over ``RISK_WINDOW`` bars); ``drawdown`` is the
    current fall from the highest close of the last ``DRAWDOWN_LOOKBACK`` bars and
    ``max_drawdown`` the deepest fall within them (both as positive fractions);
    ``avg_volume`` and ``avg_turnover`` (volume x close, quote currency) are means over
    ``RISK_WINDOW`` bars.
    """

    symbol: str
    last_close: float
    volatility: float
    drawdown: float
    max_drawdown: float
    avg_volume: float
    avg_turnover: float
    tradable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Perception:
    """Everything the day ``date`` is planned from."""

    date: str
    as_of: str
    bars_used: int
    regime: RegimeReading
    assets: tuple[AssetRisk, ...]

    def asset(self, symbol: str) -> AssetRisk:
        """Return the figures of ``symbol``; raise ``KeyError`` naming the known symbols."""
        for item in self.assets:
            if item.symbol == symbol:
                return item
        known = ", ".join(item.symbol for item in self.assets)
        raise KeyError(f"symbol {symbol!r} not in the perception of {self.date} (have: {known})")

    def prices(self) -> dict[str, float]:
        """Return the closes of ``D-1`` (the previous closes of day ``D``)."""
        return {item.symbol: item.last_close for item in self.assets}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN figures become ``None``)."""
        return _json_ready(asdict(self))


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def perception_cutoff(daily: Panel, day: date | datetime | str) -> pd.Timestamp:
    """Return the latest bar-close time :func:`perceive` may read for trading day ``day``."""
    session = pd.Timestamp(day).date()
    return pd.Timestamp(session).tz_localize(daily.index.tz)


def _bars_per_year(market: str) -> float:
    # Perception reads daily bars: the market's trading days a year (cn 243, crypto 365).
    return periods_per_year("1D", market)


def perceive(
    daily: Panel, day: date | datetime | str, regime_spec: RegimeSpec | None = None
) -> Perception:
    """Return the regime and per-asset risk figures for trading day ``day``.

    Only bars that closed by midnight starting ``day`` (local time of the panel) are read.

    Raises
    ------
    DataSpecError
        If the panel is not daily or has no bar before ``day``.
    """
    if daily.freq != "1D":
        raise DataSpecError(f"perceive needs a daily panel, got freq={daily.freq!r}")
    spec = regime_spec or RegimeSpec()
    cutoff = perception_cutoff(daily, day)
    past = daily.truncate_after(cutoff)
    if past.n_bars == 0:
        first = daily.index[0].isoformat() if daily.n_bars else "none"
        raise DataSpecError(
            f"perceive: no daily bar closes before {pd.Timestamp(day).date()} in "
            f"{daily.source or 'the panel'} (first bar {first})"
        )
    return Perception(
        date=pd.Timestamp(day).date().isoformat(),
        as_of=past.index[-1].isoformat(),
        bars_used=past.n_bars,
        regime=_read_regime(past, spec),
        assets=_asset_risks(past),
    )


def _read_regime(past: Panel, spec: RegimeSpec) -> RegimeReading:
    n_bars = past.n_bars
    regime = regime_names(classify_regimes(past, spec)[-1:])[0]
    level = equal_weight_index(past)[:, None]
    trend = (
        float(level[-1, 0] / level[-1 - spec.trend_window, 0] - 1.0)
        if n_bars > spec.trend_window
        else math.nan
    )
    vol = rolling_std(log_returns(level), spec.vol_window, 1)
    rank = percentile_rank(vol, spec.vol_lookback, spec.vol_min_periods)
    close = past.close
    breadth = math.nan
    if n_bars >= BREADTH_WINDOW:
        window = close[-BREADTH_WINDOW:]
        live = past.tradable[-1] & np.isfinite(window).all(axis=0)
        if live.any():
            above = close[-1, live] > window[:, live].mean(axis=0)
            breadth = float(above.mean())
    return RegimeReading(
        regime=regime,
        trend_return=trend,
        index_volatility=float(vol[-1, 0]) * math.sqrt(_bars_per_year(past.market)),
        vol_percentile=float(rank[-1, 0]),
        breadth=breadth,
        trend_window=spec.trend_window,
        trend_threshold=spec.trend_threshold,
        vol_window=spec.vol_window,
        vol_lookback=spec.vol_lookback,
        high_vol_rank=spec.high_vol_rank,
    )


def _asset_risks(past: Panel) -> tuple[AssetRisk, ...]:
    close = past.close
    returns = log_returns(close)[-RISK_WINDOW:]
    annual = math.sqrt(_bars_per_year(past.market))
    history = close[-DRAWDOWN_LOOKBACK:]
    out = []
    for col, symbol in enumerate(past.symbols):
        series = history[:, col]
        series = series[np.isfinite(series)]
        step = returns[:, col]
        step = step[np.isfinite(step)]
        volatility = float(step.std(ddof=1)) * annual if step.size >= 2 else math.nan
        if series.size:
            peaks = np.maximum.accumulate(series)
            falls = 1.0 - series / peaks
            drawdown, max_drawdown = float(falls[-1]), float(falls.max())
        else:
            drawdown = max_drawdown = math.nan
        volume = past.volume[-RISK_WINDOW:, col]
        turnover = volume * close[-RISK_WINDOW:, col]
        out.append(
            AssetRisk(
                symbol=symbol,
                last_close=float(close[-1, col]),
                volatility=volatility,
                drawdown=drawdown,
                max_drawdown=max_drawdown,
                avg_volume=float(np.nanmean(volume)) if np.isfinite(volume).any() else math.nan,
                avg_turnover=float(np.nanmean(turnover))
                if np.isfinite(turnover).any()
                else math.nan,
                tradable=bool(past.tradable[-1, col]),
            )
        )
    return tuple(out)
