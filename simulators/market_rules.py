"""Exchange rules as pluggable models that compile to plain arrays for the numba kernel.

A market model is a frozen dataclass satisfying :class:`MarketRules`: given a
:class:`~simulators.bars.Panel` it returns :class:`RuleArrays` (per-asset lot sizes, per-bar
price-limit levels, per-bar stamp duty, commission scalars, a T+1 flag and a per-bar
trading-day id). The kernel only compares numbers, so adding a market never touches it.

Models (defaults documented in ``docs/fill_assumptions.md``):

* ``none``: frictionless; fractional sizes; no limits (used for parity tests).
* ``us``: lot 1, a fixed commission of 1.00 per order, long only.
* ``crypto``: fractional sizes, 0.1% taker fee on the traded value, trades 24/7.
* ``cn``: China A-shares: lot 100, T+1, daily price limits (+-10% main board, +-20% ChiNext
  ``300xxx``/``301xxx`` and STAR ``688xxx``, +-5% ST), commission 0.025% with a 5 CNY
  minimum, stamp duty on sells 0.1% before 2023-08-28 and 0.05% from that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alphaloop.errors import ConfigError
from simulators.bars import Panel

__all__ = [
    "CN_STAMP_DUTY_CUT",
    "ChinaAShareRules",
    "CryptoRules",
    "FrictionlessRules",
    "MarketRules",
    "RuleArrays",
    "USEquityRules",
    "cn_board_limit",
    "get_market_rules",
    "trading_day_ids",
]

CN_STAMP_DUTY_CUT = pd.Timestamp("2023-08-28")
MARKET_NAMES: tuple[str, ...] = ("none", "cn", "us", "crypto")


@dataclass(frozen=True, slots=True)
class RuleArrays:
    """Market rules flattened to what the kernel reads.

    Attributes
    ----------
    lot_size:
        ``(N,)`` float64; sizes are rounded down to a multiple of it; ``0`` = fractional.
    limit_up, limit_down:
        ``(T, N)`` float64; a buy whose fill price is ``>= limit_up[t, i]`` and a sell whose
        fill price is ``<= limit_down[t, i]`` is refused (``+inf`` / ``-inf`` = no limit).
    stamp_duty:
        ``(T,)`` float64 rate on the value of sells filled at bar ``t``.
    day_id:
        ``(T,)`` int64 trading-day number of each bar (for T+1).
    t_plus_one:
        When True a position cannot be sold on the trading day it was bought.
    commission_rate, commission_min, commission_fixed:
        Per order: ``max(rate * value, min) + fixed``.
    """

    lot_size: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    stamp_duty: np.ndarray
    day_id: np.ndarray
    t_plus_one: bool
    commission_rate: float
    commission_min: float
    commission_fixed: float


class MarketRules(Protocol):
    """A market model: turns a panel into the arrays the kernel enforces."""

    @property
    def name(self) -> str:
        """The market's name (``none``, ``cn``, ``us``, ``crypto``)."""
        ...

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return the rule arrays for ``panel``."""
        ...


def trading_day_ids(index: pd.DatetimeIndex) -> np.ndarray:
    """Return the local calendar day of each bar as an int64 day number."""
    local = index.tz_localize(None) if index.tz is not None else index
    # Through the ns unit explicitly: pandas may store the index in s/ms/us resolution.
    days = local.normalize().as_unit("ns").asi8 // (86_400 * 1_000_000_000)
    return np.ascontiguousarray(days, dtype=np.int64)


def _no_limits(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    shape = (panel.n_bars, panel.n_assets)
    return np.full(shape, np.inf), np.full(shape, -np.inf)


def _plain(panel: Panel, *, lot: float, rate: float, minimum: float, fixed: float) -> RuleArrays:
    up, down = _no_limits(panel)
    return RuleArrays(
        lot_size=np.full(panel.n_assets, float(lot)),
        limit_up=up,
        limit_down=down,
        stamp_duty=np.zeros(panel.n_bars),
        day_id=trading_day_ids(panel.index),
        t_plus_one=False,
        commission_rate=float(rate),
        commission_min=float(minimum),
        commission_fixed=float(fixed),
    )


@dataclass(frozen=True, slots=True)
class FrictionlessRules:
    """No fees, no lots, no limits: the reference for parity with other engines."""

    name: str = "none"
    lot_size: float = 0.0

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return frictionless rule arrays for ``panel``."""
        return _plain(panel, lot=self.lot_size, rate=0.0, minimum=0.0, fixed=0.0)


@dataclass(frozen=True, slots=True)
class USEquityRules:
    """US equities: whole shares, a fixed commission per order (default 1.00 USD)."""

    name: str = "us"
    lot_size: float = 1.0
    commission_rate: float = 0.0
    commission_min: float = 0.0
    commission_fixed: float = 1.0

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return US-equity rule arrays for ``panel``."""
        return _plain(
            panel,
            lot=self.lot_size,
            rate=self.commission_rate,
            minimum=self.commission_min,
            fixed=self.commission_fixed,
        )


@dataclass(frozen=True, slots=True)
class CryptoRules:
    """Crypto spot: fractional sizes, a taker fee on the traded value (default 0.1%)."""

    name: str = "crypto"
    lot_size: float = 0.0
    commission_rate: float = 0.001
    commission_min: float = 0.0
    commission_fixed: float = 0.0

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return crypto rule arrays for ``panel``."""
        return _plain(
            panel,
            lot=self.lot_size,
            rate=self.commission_rate,
            minimum=self.commission_min,
            fixed=self.commission_fixed,
        )


_DIGITS = re.compile(r"(\d{6})")


def cn_board_limit(symbol: str, *, is_st: bool = False) -> float:
    """Return the daily price-limit fraction of a China A-share ``symbol``.

    ST names (flagged, or with ``ST`` in the symbol) are limited to 5%; ChiNext
    (``300``/``301``) and STAR (``688``) to 20%; everything else to 10%.
    """
    if is_st or "ST" in symbol.upper():
        return 0.05
    match = _DIGITS.search(symbol)
    code = match.group(1) if match else ""
    if code.startswith(("300", "301", "688")):
        return 0.20
    return 0.10


def _previous_day_close(close: np.ndarray, day_id: np.ndarray) -> np.ndarray:
    """Return, for each bar, the last close of the previous trading day (NaN on day one)."""
    n_bars = close.shape[0]
    out = np.full(close.shape, np.nan)
    if n_bars == 0:
        return out
    new_day = np.empty(n_bars, dtype=bool)
    new_day[0] = True
    new_day[1:] = day_id[1:] != day_id[:-1]
    starts = np.flatnonzero(new_day)
    ends = np.append(starts[1:], n_bars)
    for k in range(1, len(starts)):
        out[starts[k] : ends[k]] = close[starts[k] - 1]
    return out


@dataclass(frozen=True, slots=True)
class ChinaAShareRules:
    """China A-shares: lot 100, T+1, price limits, stamp duty on sells, minimum commission.

    Parameters
    ----------
    st_symbols:
        Symbols under special treatment (+-5% limit) besides those with ``ST`` in the name.
    """

    name: str = "cn"
    lot_size: float = 100.0
    commission_rate: float = 0.00025
    commission_min: float = 5.0
    commission_fixed: float = 0.0
    stamp_duty_before: float = 0.001
    stamp_duty_after: float = 0.0005
    tick: float = 0.01
    st_symbols: tuple[str, ...] = ()

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return A-share rule arrays for ``panel``."""
        day_id = trading_day_ids(panel.index)
        previous = _previous_day_close(panel.close, day_id)
        limits = np.array(
            [cn_board_limit(s, is_st=s in self.st_symbols) for s in panel.symbols], dtype=float
        )
        # Exchange limit prices are rounded to the tick; a fill within half a tick of the
        # limit price is "at the limit" (so float noise never lets an order through).
        half_tick = self.tick / 2.0
        up = np.round(previous * (1.0 + limits) / self.tick) * self.tick - half_tick
        down = np.round(previous * (1.0 - limits) / self.tick) * self.tick + half_tick
        up = np.where(np.isnan(up), np.inf, up)
        down = np.where(np.isnan(down), -np.inf, down)
        local = panel.index.tz_localize(None).normalize()
        stamp = np.where(local >= CN_STAMP_DUTY_CUT, self.stamp_duty_after, self.stamp_duty_before)
        return RuleArrays(
            lot_size=np.full(panel.n_assets, self.lot_size),
            limit_up=np.ascontiguousarray(up),
            limit_down=np.ascontiguousarray(down),
            stamp_duty=np.ascontiguousarray(stamp, dtype=np.float64),
            day_id=day_id,
            t_plus_one=True,
            commission_rate=self.commission_rate,
            commission_min=self.commission_min,
            commission_fixed=self.commission_fixed,
        )


def get_market_rules(
    name: str,
    *,
    commission_rate: float | None = None,
    commission_min: float | None = None,
    commission_fixed: float | None = None,
    st_symbols: tuple[str, ...] = (),
) -> MarketRules:
    """Return the rules of market ``name`` with optional commission overrides.

    Raises
    ------
    ConfigError
        If ``name`` is not a known market.
    """
    if name not in MARKET_NAMES:
        raise ConfigError(f"market: unknown market {name!r} (allowed: {', '.join(MARKET_NAMES)})")
    overrides: dict[str, Any] = {}
    if commission_rate is not None:
        overrides["commission_rate"] = float(commission_rate)
    if commission_min is not None:
        overrides["commission_min"] = float(commission_min)
    if commission_fixed is not None:
        overrides["commission_fixed"] = float(commission_fixed)
    if name == "none":
        if any(v != 0.0 for v in overrides.values()):
            # Frictionless means frictionless; fees on "none" would silently break parity.
            raise ConfigError(
                "market 'none' is frictionless: commission overrides are not allowed "
                "(use market 'us', 'crypto' or 'cn')"
            )
        return FrictionlessRules()
    if name == "us":
        return replace(USEquityRules(), **overrides)
    if name == "crypto":
        return replace(CryptoRules(), **overrides)
    return replace(ChinaAShareRules(st_symbols=tuple(st_symbols)), **overrides)
