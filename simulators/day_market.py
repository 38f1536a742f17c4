"""The one market type of a trading day: bars, snapshots, closes, calendar position.

A trading day ``D`` of a daily panel is a :class:`DayMarket` (:func:`day_market`): its
position in the calendar (``index``), the previous and the day's closes, the execution bars of
every tradable symbol (:class:`Bar`: one per intraday bar, or the single daily bar on
daily-only data), one :class:`MarketSnapshot` per bar (the closes the risk governor sees) and
the per-symbol volatility the fill model's impact uses (``daily_volatility`` of the closes
before ``D``, ``sigma`` of one bar).

It lives here, below both of its users, so that they read one type built by one function:
the arena's day (:mod:`arena.market` re-exports it with the arena's data, ``ArenaData``;
the trade stage, the review, the reports and the stress replay execute on it) and the
replay environment of :mod:`rl_exec` (each replayed asset-day,
:class:`rl_exec.models.ReplayDay`, is a view of the :class:`DayMarket` of its date). The
arena imports :mod:`rl_exec` (the registered execution policy), so the market type cannot
live in ``arena/`` without the two packages depending on each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import DataSpecError
from simulators import detmath
from simulators.bars import Panel
from simulators.calendars import FREQUENCY_STEPS
from simulators.fill_model import (
    BarQuote,
    bar_volatility,
    daily_volatility,
)

#: Daily closes before ``D`` whose log returns give the day's volatility (the arena's window).
VOLATILITY_LOOKBACK_DAYS = 20


def as_timestamp(value: datetime | str, what: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (bar-close time), got {value!r}")
    return stamp


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSnapshot:
    """The last prices of every symbol at the close of one (minute) bar."""

    time: pd.Timestamp
    prices: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", as_timestamp(self.time, "MarketSnapshot.time"))
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    @classmethod
    def from_panel_row(cls, panel: Any, row: int) -> MarketSnapshot:
        """Build the snapshot of bar ``row`` of a :class:`simulators.bars.Panel` (its closes).

        Non-tradable symbols are left out: their forward-filled prices are not market moves.
        """
        closes = panel.close[row]
        live = panel.tradable[row]
        prices = {s: float(closes[i]) for i, s in enumerate(panel.symbols) if live[i]}
        return cls(time=panel.index[row], prices=prices)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar of one symbol, as the broker sees it.

    Parameters
    ----------
    symbol:
        The symbol.
    day:
        The trading day the bar belongs to (T+1 and stamp duty are reckoned by it).
    at:
        The bar's close, timezone-aware (fills are stamped with it).
    open, high, low, close, volume:
        OHLCV; ignored when the bar is not tradable (they may be NaN then).
    tradable:
        False for a suspended or missing bar: nothing fills.
    prev_close:
        The previous *daily* close, the reference of the price limits (``None``: no limits).
    """

    symbol: str
    day: date
    at: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    tradable: bool = True
    prev_close: float | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"Bar {self.symbol} at {self.at}: timestamp must be timezone-aware")
        if self.tradable:
            # Reuses the fill model's own checks (finite, positive, high >= low, volume >= 0).
            quote = self.quote()
            if not (quote.low <= min(quote.open, quote.close) <= max(quote.open, quote.close)):
                raise ValueError(f"Bar {self.symbol} at {self.at}: open/close outside low/high")
            if quote.high < max(quote.open, quote.close):
                raise ValueError(f"Bar {self.symbol} at {self.at}: open/close above high")

    def quote(self) -> BarQuote:
        """Return the fill model's view of this bar."""
        return BarQuote(
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            prev_close=self.prev_close,
        )


def bars_from_panel(
    panel: Panel, symbol: str, *, day: date, prev_close: float | None = None
) -> list[Bar]:
    """Return the bars of one ``symbol`` column of ``panel`` (e.g. one day's minute bars).

    Parameters
    ----------
    panel:
        Bars of one trading day (``simulators.synthetic.generate_intraday``).
    symbol:
        The column.
    day:
        The trading day they belong to.
    prev_close:
        The previous daily close of the symbol (the price-limit reference).
    """
    col = panel.column(symbol)
    # Python values once per column: indexing the arrays bar by bar is the slow part.
    stamps = panel.index.to_pydatetime()
    prices = [
        np.asarray(getattr(panel, name)[:, col], dtype=np.float64).tolist()
        for name in ("open", "high", "low", "close", "volume")
    ]
    live = np.asarray(panel.tradable[:, col], dtype=bool).tolist()
    rows = zip(stamps, *prices, live, strict=True)
    return [
        Bar(
            symbol=symbol,
            day=day,
            at=at,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            tradable=tradable,
            prev_close=prev_close,
        )
        for at, open_, high, low, close, volume, tradable in rows
    ]


def trading_days(daily: Panel) -> list[date]:
    """Return the trading days of the daily panel, in order."""
    # A bar stamped at its close belongs to the session that ends then (crypto: 00:00 bar).
    return list((daily.index - pd.Timedelta(minutes=1)).date)


def day_index(daily: Panel, day: date) -> int:
    """Return the bar number of trading day ``day`` in ``daily``.

    Raises
    ------
    DataSpecError
        If ``day`` is not a trading day of the data, or has no earlier bar to plan from.
    """
    days = trading_days(daily)
    try:
        index = days.index(day)
    except ValueError:
        raise DataSpecError(
            f"{day.isoformat()} is not a trading day of {daily.source or 'the data'} "
            f"(days {days[0].isoformat()} .. {days[-1].isoformat()})"
        ) from None
    if index == 0:
        raise DataSpecError(
            f"{day.isoformat()} is the first day of {daily.source or 'the data'}: "
            "there is no earlier bar to plan it from"
        )
    return index


#: The columns of a symbol's bars, as :meth:`DayBars.columns` returns them.
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "tradable")


class DayBars(Mapping[str, tuple[Bar, ...]]):
    """The execution bars of a day per symbol, made from the day's panel when first read.

    A read-only mapping ``symbol -> tuple of Bar`` over the symbols whose bars of the day all
    have a price (:func:`bars_from_panel` of each, with its previous daily close). A symbol's
    :class:`Bar` objects are built on first access and kept: a day of minute bars of many
    symbols is a great many small objects, and a reader of only some symbols (the replay
    environment replays a few assets of the day) need not build the others'.
    """

    __slots__ = ("_built", "_day", "_panel", "_prev_close", "_symbols")

    def __init__(
        self, panel: Panel, *, day: date, prev_close: Mapping[str, float], symbols: list[str]
    ) -> None:
        self._panel = panel
        self._day = day
        self._prev_close = dict(prev_close)
        self._symbols = tuple(symbols)
        self._built: dict[str, tuple[Bar, ...]] = {}

    def __getitem__(self, symbol: str) -> tuple[Bar, ...]:
        bars = self._built.get(symbol)
        if bars is None:
            if symbol not in self._symbols:
                raise KeyError(symbol)
            bars = tuple(
                bars_from_panel(
                    self._panel, symbol, day=self._day, prev_close=self._prev_close.get(symbol)
                )
            )
            self._built[symbol] = bars
        return bars

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._symbols

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols)

    def __len__(self) -> int:
        return len(self._symbols)

    def __repr__(self) -> str:
        return f"DayBars({self._day.isoformat()}, {len(self._symbols)} symbols)"

    def columns(self, symbol: str) -> dict[str, np.ndarray]:
        """Return the fields of ``self[symbol]``'s bars as arrays (:data:`BAR_COLUMNS`).

        The same values as the :class:`Bar` objects (the panel's, as float64), without
        building them.
        """
        if symbol not in self._symbols:
            raise KeyError(symbol)
        column = self._panel.column(symbol)
        out = {
            name: np.array(getattr(self._panel, name)[:, column], dtype=np.float64)
            for name in BAR_COLUMNS[:-1]
        }
        out["tradable"] = np.array(self._panel.tradable[:, column], dtype=bool)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DayMarket:
    """The bars of trading day ``D`` the accounts execute on (read after the plan).

    Parameters
    ----------
    day, index:
        The trading day and its bar number in the daily panel (its calendar position).
    intraday:
        Whether ``bars`` are the day's own intraday bars (not its single daily bar).
    open_time:
        When the day's first bar opens.
    prev_close, close:
        The previous and the day's daily closes (a missing close holds the previous one).
    bars:
        The execution bars of every symbol whose bars of the day all have a price
        (:class:`DayBars` from :func:`day_market`: built when first read).
    snapshots:
        The closes of every bar (the risk governor's view).
    sigma:
        The fill model's volatility of one bar per symbol: ``daily_volatility`` over the
        scheduled session's bar intervals (:func:`simulators.fill_model.bar_volatility`;
        ``session_bars`` of :func:`day_market`).
    daily_volatility:
        The standard deviation of the daily log returns of the closes before ``D``
        (:func:`simulators.fill_model.daily_volatility`).
    """

    day: date
    index: int
    intraday: bool
    open_time: datetime
    prev_close: Mapping[str, float]
    close: Mapping[str, float]
    bars: Mapping[str, tuple[Bar, ...]]
    snapshots: tuple[MarketSnapshot, ...]
    sigma: Mapping[str, float] = field(default_factory=dict)
    daily_volatility: Mapping[str, float] = field(default_factory=dict)

    def bar_columns(self, symbol: str) -> dict[str, np.ndarray]:
        """Return the fields of ``bars[symbol]`` as arrays (:data:`BAR_COLUMNS`).

        Read from the day's panel when the bars were made from one (:class:`DayBars`, without
        building the :class:`Bar` objects), else from the bars.
        """
        if isinstance(self.bars, DayBars):
            return self.bars.columns(symbol)
        bars = self.bars[symbol]
        out = {
            name: np.array([getattr(bar, name) for bar in bars], dtype=np.float64)
            for name in BAR_COLUMNS[:-1]
        }
        out["tradable"] = np.array([bar.tradable for bar in bars], dtype=bool)
        return out


def day_market(
    daily: Panel,
    day: date,
    minute: Panel | None = None,
    *,
    lookback_days: int = VOLATILITY_LOOKBACK_DAYS,
    session_bars: int | None = None,
) -> DayMarket:
    """Return the execution bars of ``day``.

    Parameters
    ----------
    daily:
        The daily panel.
    day:
        A trading day of it (not the first).
    minute:
        The day's own intraday bars (``simulators.synthetic.generate_intraday``, or a real
        file's bars of that session: :mod:`simulators.intraday_market`; any bar size from 1
        minute to 1 hour); ``None`` for daily-only data: the single daily bar of ``day`` is
        the fallback (see the module docstring).
    lookback_days:
        Daily closes before ``day`` whose log returns give its volatility (at most the
        closes there are); the arena's is :data:`VOLATILITY_LOOKBACK_DAYS`.
    session_bars:
        Bar intervals of the day's scheduled session, over which the daily volatility is
        spread to one bar's (``sigma``); ``None``: the bars of ``minute`` (one on daily-only
        data). Real intraday data passes the calendar's count
        (:meth:`simulators.intraday_market.IntradayMarket.scheduled_bars`: the arena's
        ``ArenaData.day_market``, the stress replay's ``Scenario.day_market``, the replay
        environment), so missing bars or a halt do not raise one bar's volatility; synthetic
        days are whole sessions.
    """
    if lookback_days < 2:
        raise ValueError(f"day_market: lookback_days={lookback_days} needs at least 2 closes")
    index = day_index(daily, day)
    prev: dict[str, float] = {}
    close: dict[str, float] = {}
    for column, symbol in enumerate(daily.symbols):
        before = float(daily.close[index - 1, column])
        after = float(daily.close[index, column])
        if math.isfinite(before) and before > 0:
            prev[symbol] = before
        if math.isfinite(after) and after > 0:
            close[symbol] = after
        elif symbol in prev:
            close[symbol] = prev[symbol]
    if minute is not None:
        source = minute
        bars_per_day = float(minute.n_bars)
    else:
        source = daily.slice_bars(index, index + 1)
        bars_per_day = 1.0
    if session_bars is not None:
        if session_bars < 1:
            raise ValueError(f"day_market: session_bars={session_bars} must be at least 1")
        bars_per_day = float(session_bars)
    priced = [
        symbol
        for symbol in daily.symbols
        if np.isfinite(source.close[:, source.column(symbol)]).all()
    ]
    bars = DayBars(source, day=day, prev_close=prev, symbols=priced)
    snapshots = tuple(MarketSnapshot.from_panel_row(source, row) for row in range(source.n_bars))
    first = source.index[0]
    step = (
        FREQUENCY_STEPS.get(minute.freq, pd.Timedelta(minutes=1))
        if minute is not None
        else pd.Timedelta(0)
    )
    open_time = (first - step).to_pydatetime()
    returns = np.diff(detmath.log(daily.close[max(0, index - lookback_days) : index]), axis=0)
    sigma: dict[str, float] = {}
    volatility: dict[str, float] = {}
    for column, symbol in enumerate(daily.symbols):
        values = returns[:, column] if returns.size else np.array([])
        # The fill model's one volatility definition (the replay environment's too).
        volatility[symbol] = daily_volatility(values)
        sigma[symbol] = bar_volatility(volatility[symbol], bars_per_day)
    return DayMarket(
        day=day, index=index, intraday=minute is not None, open_time=open_time,
        prev_close=prev, close=close, bars=bars, snapshots=snapshots, sigma=sigma,
        daily_volatility=volatility,
    )  # fmt: skip


def benchmark_return(market: DayMarket) -> float:
    """Return the equal-weight close-to-close return of day ``D`` (the benchmark)."""
    moves = [
        market.close[s] / market.prev_close[s] - 1.0
        for s in sorted(market.prev_close)
        if s in market.close
    ]
    return float(np.mean(moves)) if moves else 0.0
