"""The arena's market: the data it trades on and the one market type of a trading day.

:class:`ArenaData` is the ``--data`` market (daily bars, and the intraday bars of a real
file or the synthetic market's generator): :func:`load_arena_data` loads it. A trading day
``D`` is a :class:`DayMarket` (:func:`day_market`): its position in the calendar
(``index``), the previous and the day's closes, the execution bars of every tradable symbol
(:class:`Bar`: one per minute bar, or the single daily bar on daily-only data), one
:class:`MarketSnapshot` per bar (the closes the risk governor sees) and the per-symbol
volatility the fill model's impact uses. The plan reads only the daily bars up to ``D-1``
(:mod:`arena.perceive`, :mod:`arena.plan`); the trade stage executes on the day's
:class:`DayMarket`; the review, the reports, the stress replay and the tests read the same
type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import DataSpecError
from alphaloop.home import LabHome
from arena.rules import BrokerRules
from simulators import detmath
from simulators.bars import Panel
from simulators.calendars import FREQUENCY_STEPS
from simulators.fill_model import (
    BarQuote,
    bar_volatility,
    daily_volatility,
)


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
    out = []
    for t, stamp in enumerate(panel.index):
        out.append(
            Bar(
                symbol=symbol,
                day=day,
                at=stamp.to_pydatetime(),
                open=float(panel.open[t, col]),
                high=float(panel.high[t, col]),
                low=float(panel.low[t, col]),
                close=float(panel.close[t, col]),
                volume=float(panel.volume[t, col]),
                tradable=bool(panel.tradable[t, col]),
                prev_close=prev_close,
            )
        )
    return out


def _session_day(stamp: pd.Timestamp) -> date:
    # A bar stamped at its close belongs to the session that ends then (crypto: 00:00 bar).
    return (stamp - pd.Timedelta(minutes=1)).date()


def trading_days(daily: Panel) -> list[date]:
    """Return the trading days of the daily panel, in order."""
    return [_session_day(stamp) for stamp in daily.index]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class DayMarket:
    """The bars of trading day ``D`` the accounts execute on (read after the plan)."""

    day: date
    index: int
    intraday: bool
    open_time: datetime
    prev_close: Mapping[str, float]
    close: Mapping[str, float]
    bars: Mapping[str, tuple[Bar, ...]]
    snapshots: tuple[MarketSnapshot, ...]
    sigma: Mapping[str, float] = field(default_factory=dict)


def day_market(daily: Panel, day: date, minute: Panel | None = None) -> DayMarket:
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
    """
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
    bars: dict[str, tuple[Bar, ...]] = {}
    if minute is not None:
        source = minute
        bars_per_day = float(minute.n_bars)
    else:
        source = daily.slice_bars(index, index + 1)
        bars_per_day = 1.0
    for symbol in daily.symbols:
        column = source.column(symbol)
        if not np.isfinite(source.close[:, column]).all():
            continue
        bars[symbol] = tuple(bars_from_panel(source, symbol, day=day, prev_close=prev.get(symbol)))
    snapshots = tuple(MarketSnapshot.from_panel_row(source, row) for row in range(source.n_bars))
    first = source.index[0]
    step = (
        FREQUENCY_STEPS.get(minute.freq, pd.Timedelta(minutes=1))
        if minute is not None
        else pd.Timedelta(0)
    )
    open_time = (first - step).to_pydatetime()
    returns = np.diff(detmath.log(daily.close[max(0, index - 20) : index]), axis=0)
    sigma: dict[str, float] = {}
    for column, symbol in enumerate(daily.symbols):
        values = returns[:, column] if returns.size else np.array([])
        # The fill model's one volatility definition (the replay environment's too).
        sigma[symbol] = bar_volatility(daily_volatility(values), bars_per_day)
    return DayMarket(
        day=day, index=index, intraday=minute is not None, open_time=open_time,
        prev_close=prev, close=close, bars=bars, snapshots=snapshots, sigma=sigma,
    )  # fmt: skip


def benchmark_return(market: DayMarket) -> float:
    """Return the equal-weight close-to-close return of day ``D`` (the benchmark)."""
    moves = [
        market.close[s] / market.prev_close[s] - 1.0
        for s in sorted(market.prev_close)
        if s in market.close
    ]
    return float(np.mean(moves)) if moves else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ArenaData:
    """The market the arena trades: the daily panel and where the day's own bars come from.

    Synthetic data generates each day's minute bars from its spec; real intraday data (bars
    of 1 minute to 1 hour) keeps its regular-hours bars in ``intraday`` and ``daily`` is their
    exact aggregate on the market's sessions (:mod:`simulators.intraday_market`); daily-only
    data has neither, and a day executes at its single daily bar.
    """

    daily: Panel
    spec: str
    synthetic: Any = None  # simulators.synthetic.SyntheticSpec for synthetic data
    intraday: Any = None  # simulators.intraday_market.IntradayMarket for real intraday data

    @property
    def has_intraday(self) -> bool:
        """Whether each day executes on its own intraday bars (not its single daily bar)."""
        return self.synthetic is not None or self.intraday is not None

    def minute_bars(self, day: date) -> Panel | None:
        """Return the intraday bars of ``day``, or ``None`` (daily-only data)."""
        if self.intraday is not None:
            return self.intraday.day_bars(day)
        if self.synthetic is None:
            return None
        from simulators.synthetic import generate_intraday

        return generate_intraday(self.synthetic, self.daily, day_index(self.daily, day))

    def rules(self) -> BrokerRules:
        """Return the market's broker rules."""
        return BrokerRules.from_market(self.daily.market)


def load_arena_data(spec: str | None, home: LabHome) -> ArenaData:
    """Load ``--data SPEC`` (the embedded synthetic market when ``None``)."""
    from simulators.data_spec import load_market, parse_data_spec

    parsed = parse_data_spec(spec)
    if parsed.kind == "synthetic":
        from simulators.synthetic import SyntheticSpec, generate_daily

        synthetic = SyntheticSpec.from_options(dict(parsed.options))
        # The minute bars are generated from this very panel, so it is built here, not cached.
        return ArenaData(daily=generate_daily(synthetic), spec=parsed.raw, synthetic=synthetic)
    from simulators.calendars import is_daily_or_slower

    panel = load_market(spec, home=home)
    if is_daily_or_slower(panel.freq):
        return ArenaData(daily=panel, spec=parsed.raw or str(spec))
    from simulators.intraday_market import aggregate_sessions

    try:
        market = aggregate_sessions(panel)
    except ValueError as exc:
        raise DataSpecError(f"--data {spec}: {exc}") from None
    return ArenaData(daily=market.daily, spec=parsed.raw or str(spec), intraday=market)
