"""Real intraday bars as the arena's market: the day's bars and the daily panel made of them.

A file (or folder, ``.zip``, akshare/yfinance source) of bars from 1 minute to 1 hour drives
the arena, the stress replay and the RL replay environment the way the synthetic market does:
perception reads a daily panel, each day executes on that day's own bars. The daily panel is
**derived from the intraday bars by exact aggregation on the market's sessions**
(:func:`aggregate_sessions`), so the two can never disagree:

* The bars kept are the regular-hours bars of each session of the market's calendar
  (:mod:`simulators.calendars`: XSHG with its lunch break, XNYS with its early closes,
  weekdays for ``none``, 24/7 for ``crypto``). Pre- and post-market bars (US files often carry
  them) and bars outside any session are dropped, and counted; orders never execute there.
* Per session and symbol, over the symbol's **tradable** bars of the session: open = the first
  bar's open, high = the maximum high, low = the minimum low, close = the last bar's close,
  volume = the sum of the volumes (exact in float64 for integer volumes below 2**53). These
  are bitwise the values of the bars, no arithmetic on prices.
* A session in which a symbol has no tradable bar is a non-tradable daily bar for it, with
  the panel's convention (:mod:`simulators.bars`): prices held at its last close (NaN before
  its first bar), volume 0.
* The daily bar is stamped at the session's close stamp (:func:`simulators.calendars.
  daily_close_stamps`), as a daily file of the same market would be.

A session whose bars stop early (a circuit-breaker halt: 2016-01-04 on the SSE stopped at
13:34) keeps only the bars that exist: its daily close is the last traded bar's, and the
day executes on those bars and no others, which is what happened.

**The scheduled session.** Each session's grid of bar intervals comes from the calendar, not
from the bars that exist (:func:`session_slots`, :meth:`IntradayMarket.scheduled_bars`):
``open + step, open + 2 step, ...`` up to the close, a last partial bar included, and the same
again after a break (the XSHG lunch break; XNYS early closes are shorter). A missing bar or a
halt leaves the grid as it is: the fill model spreads the daily volatility over the scheduled
bar intervals (:func:`simulators.day_market.day_market`'s ``session_bars``), so a halt does not
make each remaining bar more volatile. The arena's day and the RL replay environment read the
count from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from simulators.bars import FIELDS, Panel
from simulators.calendars import (
    FREQUENCY_STEPS,
    daily_close_stamps,
    is_daily_or_slower,
    market_calendar,
    market_sessions,
    session_dates,
)
from simulators.validation import regular_and_extended

__all__ = ["IntradayMarket", "aggregate_sessions", "session_slots"]

_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True, eq=False)
class IntradayMarket:
    """Regular-hours intraday bars grouped by session, with their daily aggregate.

    Parameters
    ----------
    bars:
        The intraday bars kept (regular hours of sessions only).
    daily:
        One bar per session (module docstring); ``daily.meta["intraday_freq"]`` names the
        bar size it was made from.
    starts, stops:
        ``bars`` rows of daily row ``k`` are ``starts[k]:stops[k]``.
    dropped_extended, dropped_outside:
        Rows dropped as pre-/post-market bars and as bars outside any session.
    """

    bars: Panel
    daily: Panel
    starts: np.ndarray
    stops: np.ndarray
    dropped_extended: int = 0
    dropped_outside: int = 0

    @property
    def freq(self) -> str:
        """Bar size of the intraday bars (``"1min"``, ``"5min"``, ..., ``"1h"``)."""
        return self.bars.freq

    @property
    def step(self) -> pd.Timedelta:
        """Length of one intraday bar."""
        return FREQUENCY_STEPS[self.bars.freq]

    def row_bars(self, row: int) -> Panel:
        """Return the intraday bars of daily row ``row``."""
        if not 0 <= row < self.daily.n_bars:
            raise IndexError(f"daily row {row} is outside 0..{self.daily.n_bars - 1}")
        return self.bars.slice_bars(int(self.starts[row]), int(self.stops[row]))

    def day_row(self, day: date) -> int:
        """Return the daily row of session ``day`` (``KeyError`` if it has none)."""
        dates = session_dates(self.daily.index, self.daily.market)
        position = int(dates.searchsorted(pd.Timestamp(day)))
        if position >= len(dates) or dates[position].date() != day:
            raise KeyError(f"{day} is not a session of the intraday data")
        return position

    def day_bars(self, day: date) -> Panel:
        """Return the intraday bars of session ``day`` (``KeyError`` if it has none)."""
        return self.row_bars(self.day_row(day))

    def scheduled_bars(self, row: int) -> int:
        """Return the bar intervals of daily row ``row``'s scheduled session.

        The length of the calendar's grid of the session at this bar size (module
        docstring), whatever bars the data has: the count :func:`session_slots` gives the row.
        """
        if not 0 <= row < self.daily.n_bars:
            raise IndexError(f"daily row {row} is outside 0..{self.daily.n_bars - 1}")
        (grid,) = _session_grids(self, np.array([row]))
        return len(grid)

    def describe(self) -> str:
        """One line: what the daily panel was made of (for reports and ``data check``)."""
        dropped = []
        if self.dropped_extended:
            dropped.append(f"{self.dropped_extended} pre/post-market bar(s) dropped")
        if self.dropped_outside:
            dropped.append(f"{self.dropped_outside} bar(s) outside sessions dropped")
        tail = f"; {', '.join(dropped)}" if dropped else ""
        return (
            f"{self.daily.n_bars} session(s) aggregated from {self.bars.n_bars} {self.freq} "
            f"bar(s) on the {market_calendar(self.daily.market)} calendar{tail}"
        )


def _session_rows(daily: Panel, rows: np.ndarray) -> pd.DataFrame:
    """Return the calendar's session of daily rows ``rows`` (weekday hours beyond its years)."""
    dates = session_dates(daily.index[rows], daily.market)
    sessions = market_sessions(daily.market, dates[0], dates[-1])
    unknown = dates[~dates.isin(sessions.index)]
    if len(unknown):
        # aggregate_sessions keeps every weekday bar beyond the calendar's known years.
        weekdays = market_sessions(daily.market, unknown[0], unknown[-1], calendar="weekdays")
        sessions = pd.concat([sessions, weekdays.loc[weekdays.index.isin(unknown)]]).sort_index()
    found = sessions.reindex(dates)
    if found["open"].isna().any():
        missing = dates[found["open"].isna().to_numpy()]
        raise ValueError(f"no calendar session for {missing[0].date()} ({daily.market})")
    return found


def _grid(open_: int, break_start: int, break_end: int, close: int, step: int) -> np.ndarray:
    """Return the bar-end stamps (ns) of a session's regular hours at bar size ``step``."""
    parts = [(open_, break_start), (break_end, close)] if break_start != _NAT else [(open_, close)]
    ends = [
        start + step * np.arange(1, -(-(end - start) // step) + 1, dtype=np.int64)
        for start, end in parts
    ]
    return np.concatenate(ends)


def _session_grids(market: IntradayMarket, rows: np.ndarray) -> list[np.ndarray]:
    """Return the scheduled grid of bar-end stamps (ns) of each daily row of ``rows``."""
    found = _session_rows(market.daily, rows)
    opens, breaks, resumes, closes = (
        pd.DatetimeIndex(found[name]).as_unit("ns").asi8
        for name in ("open", "break_start", "break_end", "close")
    )
    step = int(market.step.value)
    return [
        _grid(int(opens[k]), int(breaks[k]), int(resumes[k]), int(closes[k]), step=step)
        for k in range(len(rows))
    ]


def session_slots(market: IntradayMarket) -> tuple[np.ndarray, np.ndarray]:
    """Return the slot of every bar of ``market.bars`` and the slots of every session.

    A bar goes to the first interval of its session's scheduled grid (module docstring) that
    ends after the bar begins (a bar stamped at the XSHG open, the call auction, shares slot 0
    with the first continuous bar).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``slots[i]``: the place of bar ``i`` in its session's grid of bar intervals;
        ``n_slots[k]``: the grid's length for daily row ``k``
        (:meth:`IntradayMarket.scheduled_bars`).
    """
    grids = _session_grids(market, np.arange(market.daily.n_bars))
    begins = market.bars.index.as_unit("ns").asi8 - int(market.step.value)
    slots = np.zeros(market.bars.n_bars, dtype=np.int64)
    n_slots = np.zeros(market.daily.n_bars, dtype=np.int64)
    for row, grid in enumerate(grids):
        start, stop = int(market.starts[row]), int(market.stops[row])
        position = np.searchsorted(grid, begins[start:stop], side="right")
        slots[start:stop] = np.clip(position, 0, len(grid) - 1)
        n_slots[row] = len(grid)
    return slots, n_slots


def aggregate_sessions(panel: Panel) -> IntradayMarket:
    """Split intraday ``panel`` by session and aggregate each session to a daily bar.

    Raises
    ------
    ValueError
        If ``panel`` is daily or slower, or holds no regular-hours bar.
    """
    if is_daily_or_slower(panel.freq) or panel.freq not in FREQUENCY_STEPS:
        raise ValueError(f"aggregate_sessions needs intraday bars, got freq={panel.freq!r}")
    market = panel.market
    index = panel.index
    dates = session_dates(index, market)
    sessions = market_sessions(market, dates[0], dates[-1])
    position = sessions.index.get_indexer(dates)
    step = int(FREQUENCY_STEPS[panel.freq].value)
    regular, extended = regular_and_extended(index, position, sessions, step=step)
    bounds = sessions.attrs.get("bounds")
    if bounds is not None:
        # Beyond the calendar's known years every bar on a weekday counts (not checked).
        unknown = np.asarray((dates < bounds[0]) | (dates > bounds[1]), dtype=bool)
        regular = regular | (unknown & (dates.day_of_week < 5))
    keep = np.flatnonzero(regular)
    if keep.size == 0:
        raise ValueError(
            f"{panel.source or 'intraday data'}: no bar falls in the regular hours of a "
            f"{market_calendar(market)} session (market={market})"
        )
    bars = panel._replace_arrays(keep, list(range(panel.n_assets)), panel.symbols)
    kept_dates = dates[keep]
    day_values = kept_dates.as_unit("ns").asi8
    starts = np.flatnonzero(np.r_[True, day_values[1:] != day_values[:-1]])
    stops = np.r_[starts[1:], len(keep)]
    daily = _aggregate(bars, pd.DatetimeIndex(kept_dates[starts]), starts, stops)
    return IntradayMarket(
        bars=bars,
        daily=daily,
        starts=starts,
        stops=stops,
        dropped_extended=int((extended & ~regular).sum()),
        dropped_outside=int((~regular & ~extended).sum()),
    )


def _aggregate(
    bars: Panel, session_days: pd.DatetimeIndex, starts: np.ndarray, stops: np.ndarray
) -> Panel:
    n_days, n_assets = len(starts), bars.n_assets
    out = {name: np.full((n_days, n_assets), np.nan) for name in FIELDS}
    tradable = np.zeros((n_days, n_assets), dtype=bool)
    rows = np.arange(bars.n_bars)
    for column in range(n_assets):
        live = bars.tradable[:, column]
        if not live.any():
            continue
        high = np.where(live, bars.high[:, column], -np.inf)
        low = np.where(live, bars.low[:, column], np.inf)
        volume = np.where(live, bars.volume[:, column], 0.0)
        first = np.where(live, rows, np.iinfo(np.int64).max)
        last = np.where(live, rows, -1)
        day_first = np.minimum.reduceat(first, starts)
        day_last = np.maximum.reduceat(last, starts)
        has = day_last >= 0
        tradable[:, column] = has
        out["open"][has, column] = bars.open[day_first[has], column]
        out["close"][has, column] = bars.close[day_last[has], column]
        out["high"][has, column] = np.maximum.reduceat(high, starts)[has]
        out["low"][has, column] = np.minimum.reduceat(low, starts)[has]
        out["volume"][:, column] = np.add.reduceat(volume, starts)
        # A session without a bar of the symbol: hold its last close, volume 0.
        held = pd.Series(np.where(has, out["close"][:, column], np.nan)).ffill().to_numpy()
        for name in ("open", "high", "low", "close"):
            out[name][~has, column] = held[~has]
        out["volume"][~has, column] = 0.0
    index = daily_close_stamps(session_days, bars.market)
    del stops  # the reduceat segments end where the next begins
    meta = dict(bars.meta)
    meta.update(intraday_freq=bars.freq, aggregated_from=bars.source)
    return Panel(
        symbols=bars.symbols,
        index=index,
        **{name: np.ascontiguousarray(out[name]) for name in FIELDS},
        tradable=tradable,
        freq="1D",
        market=bars.market,
        source=bars.source,
        meta=meta,
    )
