"""Exchange rules as pluggable models that compile to plain arrays for the numba kernel.

A market model is a frozen dataclass satisfying :class:`MarketRules`: given a
:class:`~simulators.bars.Panel` it returns :class:`RuleArrays` (per-asset lot sizes, per-bar
price-limit levels, per-bar stamp duty, commission scalars, a T+1 flag and a per-bar
trading-day id). The kernel only compares numbers, so adding a market never touches it.

Models (defaults documented in ``docs/fill_assumptions.md``):

* ``none``: frictionless; fractional sizes; no limits (used for parity tests).
* ``us``: lot 1, a fixed commission of 1.00 per order, long only.
* ``crypto``: fractional sizes, 0.1% taker fee on the traded value, trades 24/7.
* ``cn``: China A-shares: lot 100, T+1, daily price limits by board and trading date
  (:func:`cn_board_limit`: +-10% main board; ChiNext ``300xxx``/``301xxx`` +-10% before
  2020-08-24 and +-20% from that day; STAR ``688xxx``/``689xxx`` +-20%; Beijing +-30%;
  +-5% for symbols listed as ST on the boards whose rule has a separate ST limit),
  commission 0.025% with a 5 CNY minimum, stamp duty on sells 0.1% before 2023-08-28 and
  0.05% from that day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from alphaloop.errors import ConfigError
from simulators.bars import Panel
from simulators.costs import MarketFees

__all__ = [
    "CHINEXT_REFORM",
    "CN_STAMP_DUTY_CUT",
    "ChinaAShareRules",
    "ChinaBoard",
    "CryptoRules",
    "FrictionlessRules",
    "MarketRules",
    "RuleArrays",
    "USEquityRules",
    "cn_board",
    "cn_board_limit",
    "cn_limit_fractions",
    "cn_security",
    "cn_symbol_is_st",
    "get_market_rules",
    "trading_day_ids",
]

CN_STAMP_DUTY_CUT = pd.Timestamp("2023-08-28")
#: First trading day of ChiNext under the registration reform's +-20% limit (+-10% before).
CHINEXT_REFORM = pd.Timestamp("2020-08-24")
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
    """A market model: turns a panel into the arrays the kernel enforces.

    The market's fees are one :class:`simulators.costs.MarketFees` (:attr:`fees`), the model
    the arena broker charges and the kernel's arrays are made of.
    """

    @property
    def name(self) -> str:
        """The market's name (``none``, ``cn``, ``us``, ``crypto``)."""
        ...

    @property
    def fees(self) -> MarketFees:
        """The market's commission and stamp duty (:mod:`simulators.costs`)."""
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


def _plain(panel: Panel, *, lot: float, fees: MarketFees) -> RuleArrays:
    up, down = _no_limits(panel)
    return RuleArrays(
        lot_size=np.full(panel.n_assets, float(lot)),
        limit_up=up,
        limit_down=down,
        stamp_duty=fees.tax_rates("sell", _local_days(panel.index).values),
        day_id=trading_day_ids(panel.index),
        t_plus_one=False,
        commission_rate=float(fees.commission_rate),
        commission_min=float(fees.commission_min),
        commission_fixed=float(fees.commission_fixed),
    )


def _commission_fees(model: Any) -> MarketFees:
    return MarketFees(
        commission_rate=float(model.commission_rate),
        commission_min=float(model.commission_min),
        commission_fixed=float(model.commission_fixed),
    )


@dataclass(frozen=True, slots=True)
class FrictionlessRules:
    """No fees, no lots, no limits: the reference for parity with other engines."""

    name: str = "none"
    lot_size: float = 0.0

    @property
    def fees(self) -> MarketFees:
        """No fees."""
        return MarketFees()

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return frictionless rule arrays for ``panel``."""
        return _plain(panel, lot=self.lot_size, fees=self.fees)


@dataclass(frozen=True, slots=True)
class USEquityRules:
    """US equities: whole shares, a fixed commission per order (default 1.00 USD)."""

    name: str = "us"
    lot_size: float = 1.0
    commission_rate: float = 0.0
    commission_min: float = 0.0
    commission_fixed: float = 1.0

    @property
    def fees(self) -> MarketFees:
        """The commission per order (no stamp duty)."""
        return _commission_fees(self)

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return US-equity rule arrays for ``panel``."""
        return _plain(panel, lot=self.lot_size, fees=self.fees)


@dataclass(frozen=True, slots=True)
class CryptoRules:
    """Crypto spot: fractional sizes, a taker fee on the traded value (default 0.1%)."""

    name: str = "crypto"
    lot_size: float = 0.0
    commission_rate: float = 0.001
    commission_min: float = 0.0
    commission_fixed: float = 0.0

    @property
    def fees(self) -> MarketFees:
        """The commission per order (no stamp duty)."""
        return _commission_fees(self)

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return crypto rule arrays for ``panel``."""
        return _plain(panel, lot=self.lot_size, fees=self.fees)


ChinaBoard = Literal["main", "chinext", "star", "beijing"]

# A six-digit code not inside a longer run of digits (so a date such as 20200824 is no code).
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
# Exchange prefix (``sh600000``, ``sh.600000``, ``SZ000001``) or suffix (``600000.SH``,
# ``600000.SS`` as Yahoo writes Shanghai, ``000001.XSHE`` as the Wind/JoinQuant style does).
_PREFIX = re.compile(r"^(sh|sz|bj)[._]?(?=\d)", re.IGNORECASE)
_SUFFIX = re.compile(r"(?<=\d)[._](sh|ss|sz|bj|xshg|xshe)(?![a-z])", re.IGNORECASE)
_EXCHANGE_ALIASES = {"ss": "sh", "xshg": "sh", "xshe": "sz"}
_CHINEXT_CODES = ("300", "301")
_STAR_CODES = ("688", "689")
_BEIJING_CODES = ("43", "83", "87", "88", "92")
_ST_LIMIT = 0.05


# The broker asks for every fill; parse each symbol once.
@lru_cache(maxsize=4096)
def cn_security(symbol: str) -> tuple[str | None, str | None]:
    """Return ``(exchange, code)`` of a China A-share ``symbol``; ``None`` where it says none.

    The exchange is ``"sh"``, ``"sz"`` or ``"bj"`` when the symbol carries a prefix
    (``sh600000``, ``bj430047``) or a suffix (``600000.SH``, ``000001.SZ``); the code is the
    first six-digit number in the symbol (``sz300059_history`` -> ``("sz", "300059")``).
    """
    found = _PREFIX.search(symbol) or _SUFFIX.search(symbol)
    exchange = found.group(1).lower() if found else None
    if exchange is not None:
        exchange = _EXCHANGE_ALIASES.get(exchange, exchange)
    code = _CODE.search(symbol)
    return exchange, code.group(1) if code else None


def cn_board(symbol: str) -> ChinaBoard:
    """Return the board ``symbol`` trades on, from its exchange and code.

    ``bj`` symbols and bare codes ``43/83/87/88/92xxxx`` are Beijing; ``300/301xxx`` (not on
    Shanghai) ChiNext; ``688/689xxx`` (not on Shenzhen) STAR; everything else, including a
    symbol without a six-digit code, is the main board.
    """
    exchange, code = cn_security(symbol)
    if exchange == "bj":
        return "beijing"
    if code is None:
        return "main"
    if exchange is None and code.startswith(_BEIJING_CODES):
        return "beijing"
    if code.startswith(_CHINEXT_CODES) and exchange != "sh":
        return "chinext"
    if code.startswith(_STAR_CODES) and exchange != "sz":
        return "star"
    return "main"


def _board_limit(board: ChinaBoard, *, is_st: bool, reformed: bool) -> float:
    """Return the limit of ``board`` for an ST or ordinary name, before or after the reform.

    The one table of the rule: ST names have their own 5% only where the board's rule has
    one (the main board; ChiNext before its reform); on post-reform ChiNext, STAR and
    Beijing an ST name has the board's limit.
    """
    if board == "beijing":
        return 0.30
    if board == "star":
        return 0.20
    if board == "chinext" and reformed:
        return 0.20
    return _ST_LIMIT if is_st else 0.10


def _local_days(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Return each bar's trading date (its exchange-local calendar day, as naive midnight)."""
    local = index.tz_localize(None) if index.tz is not None else index
    return local.normalize()


def cn_symbol_is_st(symbol: str, st_symbols: Iterable[str]) -> bool:
    """Return whether ``symbol`` is one of ``st_symbols`` (the explicit ST list).

    A name matches itself, or any symbol with the same six-digit code on the same exchange;
    an entry without an exchange (``600001``) matches that code on any exchange. Letters in
    the symbol never make it ST (``sz300059_history`` and ``STAR_TECH`` are not).
    """
    exchange, code = cn_security(symbol)
    for entry in st_symbols:
        if entry == symbol:
            return True
        other_exchange, other_code = cn_security(entry)
        if code is None or other_code != code:
            continue
        if exchange is None or other_exchange is None or exchange == other_exchange:
            return True
    return False


def cn_board_limit(symbol: str, day: date | pd.Timestamp, *, is_st: bool = False) -> float:
    """Return the daily price-limit fraction of China A-share ``symbol`` on trading ``day``.

    Parameters
    ----------
    symbol:
        The symbol (``600000``, ``sh600000``, ``600000.SH``, ``bj430047``...); its board comes
        from :func:`cn_board`.
    day:
        The trading date (a tz-aware timestamp counts by its own local calendar day).
    is_st:
        Whether the name is under special treatment that day; only an explicit source says
        so (``st_symbols``), never the letters of the symbol.

    Returns
    -------
    float
        Main board 0.10 (0.05 ST); ChiNext 0.10 (0.05 ST) before 2020-08-24 and 0.20 from
        that day; STAR 0.20; Beijing 0.30.
    """
    stamp = pd.Timestamp(day)
    if stamp.tz is not None:
        stamp = stamp.tz_localize(None)
    reformed = bool(stamp.normalize() >= CHINEXT_REFORM)
    return _board_limit(cn_board(symbol), is_st=is_st, reformed=reformed)


def cn_limit_fractions(
    symbols: Iterable[str], index: pd.DatetimeIndex, *, st_symbols: Iterable[str] = ()
) -> np.ndarray:
    """Return the ``(T, N)`` price-limit fraction of each symbol on each bar's trading date.

    The array form of :func:`cn_board_limit` (same rule, one value per bar and symbol).
    """
    st = tuple(st_symbols)
    reformed = np.asarray(_local_days(index) >= CHINEXT_REFORM, dtype=bool)
    columns = []
    for symbol in symbols:
        board, is_st = cn_board(symbol), cn_symbol_is_st(symbol, st)
        before = _board_limit(board, is_st=is_st, reformed=False)
        after = _board_limit(board, is_st=is_st, reformed=True)
        columns.append(np.where(reformed, after, before))
    if not columns:
        return np.empty((len(index), 0))
    return np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.float64)


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
        Symbols under special treatment (+-5% where the board has an ST limit; see
        :func:`cn_board_limit`). The only source of ST status: the letters of a symbol
        never make it ST.
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

    @property
    def fees(self) -> MarketFees:
        """Commission per order and the stamp duty on sells by trading date."""
        return MarketFees(
            commission_rate=self.commission_rate,
            commission_min=self.commission_min,
            commission_fixed=self.commission_fixed,
            sell_stamp_duty=(
                (date.min, self.stamp_duty_before),
                (CN_STAMP_DUTY_CUT.date(), self.stamp_duty_after),
            ),
        )

    def arrays(self, panel: Panel) -> RuleArrays:
        """Return A-share rule arrays for ``panel``."""
        day_id = trading_day_ids(panel.index)
        previous = _previous_day_close(panel.close, day_id)
        # Each bar gets the limit of its own trading date (ChiNext changed on 2020-08-24).
        limits = cn_limit_fractions(panel.symbols, panel.index, st_symbols=self.st_symbols)
        # Exchange limit prices are rounded to the tick; a fill within half a tick of the
        # limit price is "at the limit" (so float noise never lets an order through).
        half_tick = self.tick / 2.0
        up = np.round(previous * (1.0 + limits) / self.tick) * self.tick - half_tick
        down = np.round(previous * (1.0 - limits) / self.tick) * self.tick + half_tick
        up = np.where(np.isnan(up), np.inf, up)
        down = np.where(np.isnan(down), -np.inf, down)
        fees = self.fees
        stamp = fees.tax_rates("sell", _local_days(panel.index).values)
        return RuleArrays(
            lot_size=np.full(panel.n_assets, self.lot_size),
            limit_up=np.ascontiguousarray(up),
            limit_down=np.ascontiguousarray(down),
            stamp_duty=np.ascontiguousarray(stamp, dtype=np.float64),
            day_id=day_id,
            t_plus_one=True,
            commission_rate=fees.commission_rate,
            commission_min=fees.commission_min,
            commission_fixed=fees.commission_fixed,
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
