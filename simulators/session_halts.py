"""Exchange halts read from real intraday bars: where a session's trading stops.

A market-wide halt leaves one trace in a file of bars: for a while **no name trades**. The
file either has no bar there at all (most vendors: the 2016-01-04 SSE session simply ends
with the 13:34 bar) or prints bars without volume (flat at the last price). :func:`find_halts`
reads both from one session's bars (:meth:`simulators.intraday_market.IntradayMarket.row_bars`)
against the market's calendar (:func:`simulators.calendars.market_sessions`):

* **Closing halt** (the market closed for the day, e.g. the CSI 300 7% breaker). The last bar
  in which any name traded (tradable, volume > 0) closes at ``t`` and the regular trading time
  left from ``t`` to the session close is at least ``close_gap_minutes`` (default: the data
  quality policy's ``truncated_session_minutes``, 30, as ``data check`` reports a truncated
  session) and at least one bar: the halt is ``[t, close)``.
* **Halt inside the session** (e.g. the 5% breaker's 15 minutes). Between two consecutive bars
  with a trade, closing at ``a`` and ``b``, the regular trading time of ``(a, b - bar]`` (the
  bar stamped ``b`` traded, so it covers the end) is at least ``min_halt_minutes`` (10) and at
  least one bar: the halt is ``[a, b - bar)``. The lunch break is not trading time, so it is
  never a halt.

The times follow the arena's window convention (:class:`arena.conditions.Halt`): a bar stamped
``s`` is inside the halt ``[start, end)`` when ``start < s <= end``; the bar stamped ``start``
carried the last trades. Their precision is one bar: on 5-minute bars the 09:59 halt of
2016-01-07 is read as 10:00 (the bar 09:55-10:00 still traded), and a halt shorter than
``min_halt_minutes`` or than one bar (15-minute and hourly bars hide the 15-minute halt) is not
seen. A session in which nothing trades at all, and a late first trade after the open, are not
read as halts. Pure pandas/NumPy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.bars import Panel
from simulators.calendars import FREQUENCY_STEPS, market_calendar, market_sessions, session_dates
from simulators.validation import QualityPolicy

__all__ = ["DataHalt", "find_halts"]

_MINUTE_NS = 60 * 10**9


@dataclass(frozen=True, slots=True, kw_only=True)
class DataHalt:
    """A halt found in a session's bars (see the module docstring).

    Parameters
    ----------
    start:
        Close of the last bar with a trade before the halt.
    end:
        The session close (``closes_session``), or the close of the last bar slot before the
        bar with which trading resumed.
    closes_session:
        Nothing traded from ``start`` to the session close.
    bars_inside:
        Bars of the file stamped in ``(start, end]`` (printed without a trade).
    evidence:
        One sentence: what in the data shows the halt.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    closes_session: bool
    bars_inside: int
    evidence: str

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"DataHalt: start {self.start} must be before end {self.end}")


def _trading_ns(begin: int, end: int, parts: list[tuple[int, int]]) -> int:
    """Return the regular trading time (ns) of ``(begin, end]`` over the session ``parts``."""
    return sum(max(0, min(end, high) - max(begin, low)) for low, high in parts)


def _clock(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%H:%M")


def find_halts(
    bars: Panel,
    *,
    min_halt_minutes: int = 10,
    close_gap_minutes: int | None = None,
) -> tuple[DataHalt, ...]:
    """Return the halts visible in ``bars``, the intraday bars of **one** session, in order.

    Raises
    ------
    ValueError
        If ``bars`` is empty, daily or slower, or spans more than one session.
    """
    if bars.n_bars == 0:
        raise ValueError("find_halts needs the bars of one session, got none")
    if bars.freq not in FREQUENCY_STEPS or FREQUENCY_STEPS[bars.freq] >= pd.Timedelta(days=1):
        raise ValueError(f"find_halts needs intraday bars, got freq={bars.freq!r}")
    dates = session_dates(bars.index, bars.market)
    if dates[0] != dates[-1]:
        raise ValueError(f"find_halts needs one session, got {dates[0].date()}..{dates[-1].date()}")
    sessions = market_sessions(bars.market, dates[0], dates[0])
    if sessions.empty:
        return ()
    session = sessions.iloc[0]
    opens, closes = session["open"].value, session["close"].value
    if pd.notna(session["break_start"]):
        parts = [(opens, session["break_start"].value), (session["break_end"].value, closes)]
    else:
        parts = [(opens, closes)]
    step = int(FREQUENCY_STEPS[bars.freq].value)
    gap = close_gap_minutes
    if gap is None:
        gap = QualityPolicy().truncated_session_minutes
    stamps = bars.index.as_unit("ns").asi8
    traded = np.flatnonzero((bars.tradable & (bars.volume > 0)).any(axis=1))
    if traded.size == 0:
        return ()
    zone = bars.index.tz
    names = f"any of the {bars.n_assets} name(s)"
    found: list[DataHalt] = []
    for before, after in itertools.pairwise(traded):
        begin, resume = int(stamps[before]), int(stamps[after])
        end = resume - step
        idle = _trading_ns(begin, end, parts)
        if idle < max(min_halt_minutes * _MINUTE_NS, step) or end <= begin:
            continue
        inside = int(((stamps > begin) & (stamps <= end)).sum())
        start_at, end_at = pd.Timestamp(begin, tz=zone), pd.Timestamp(end, tz=zone)
        printed = (f"{inside} bar(s) printed without volume" if inside
                   else "no bar in the file")  # fmt: skip
        found.append(
            DataHalt(
                start=start_at, end=end_at, closes_session=False, bars_inside=inside,
                evidence=f"no trade in {names} from {_clock(start_at)} to {_clock(end_at)} "
                f"({idle // _MINUTE_NS} min of trading time, {printed}); trading resumes with "
                f"the bar of {_clock(pd.Timestamp(resume, tz=zone))}",
            )
        )  # fmt: skip
    last = int(stamps[traded[-1]])
    left = _trading_ns(last, closes, parts)
    if left >= max(gap * _MINUTE_NS, step) and last < closes:
        inside = int((stamps > last).sum())
        start_at, close_at = pd.Timestamp(last, tz=zone), pd.Timestamp(closes, tz=zone)
        tail = (f"{inside} later bar(s) printed without volume" if inside
                else f"no bar after {_clock(start_at)}: a truncated session")  # fmt: skip
        found.append(
            DataHalt(
                start=start_at, end=close_at, closes_session=True, bars_inside=inside,
                evidence=f"the last trade in {names} is in the bar of {_clock(start_at)}, "
                f"{left // _MINUTE_NS} min of trading time before the "
                f"{market_calendar(bars.market)} close at {_clock(close_at)} ({tail})",
            )
        )  # fmt: skip
    return tuple(found)
