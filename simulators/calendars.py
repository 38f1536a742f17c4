"""Market clocks: time zones, daily close times, exchange calendars and frequency inference.

The one place where the data layer decides *when* a market trades and a bar closes.

Daily close stamps (a date-only daily bar is stamped at its session's close):

* ``cn``: ``Asia/Shanghai``, a daily bar closes at 15:00.
* ``us``: ``America/New_York``, a daily bar closes at 16:00.
* ``none``: ``UTC``, a daily bar closes at 16:00 UTC (the synthetic market's clock: the
  US session hours, read in UTC).
* ``crypto``: ``UTC``; no session close, so a daily bar of date ``D`` closes at the end of
  that UTC day, i.e. ``D+1 00:00 UTC``.

Naive timestamps are read as exchange-local time of the market (UTC when the market is
unknown).

Calendars (:func:`market_sessions`; the holiday rules ship inside the ``exchange_calendars``
package, nothing is downloaded):

* ``cn`` -> ``XSHG`` (Shanghai; Shenzhen keeps the same days and hours): sessions
  09:30-11:30 and 13:00-15:00 Asia/Shanghai with the lunch break between, the exchange's
  holidays (Spring Festival, Golden Week...) recorded from 1990-12 to the last year the
  package knows (2026 in exchange_calendars 4.13); data after that year is not checked
  against the calendar. A 1-minute bar stamped 09:30 (the opening call auction, as some
  vendors publish it) counts as part of the session.
* ``us`` -> ``XNYS`` (New York Stock Exchange, also right for NASDAQ-listed stocks):
  09:30-16:00 America/New_York, holidays, special closures (2001-09-11, 2012-10-29) and
  early closes at 13:00 (day after Thanksgiving, Christmas Eve...). Extended hours are
  04:00 to the open (pre-market) and the close to 20:00 (post-market; 17:00 after a 13:00
  early close): bars there are ``extended_hours``, not errors.
* ``crypto`` -> ``24/7``: every day, 00:00-24:00 UTC.
* ``none`` -> ``weekdays``: Monday-Friday, 09:30-16:00 UTC, no holidays (the synthetic
  market's calendar).

Not modelled: the A-share closing call auction (14:57-15:00) as a separate phase, the
pre-1991 and other historical trading hours (XNYS is 09:30-16:00 throughout), unscheduled
halts and circuit breakers (a breaker day is a full session on the calendar, so its data
shows up as a truncated session), single-stock suspensions (a suspended day is a missing
session for that stock), and Hong Kong Stock Connect or exchange-specific extra closures.
Gaps for ``none`` and ``crypto`` are still measured by :func:`missing_business_days` and bar
counts, not by a calendar.
"""

from __future__ import annotations

import warnings
from datetime import time
from functools import lru_cache

import numpy as np
import pandas as pd

MARKETS: tuple[str, ...] = ("none", "cn", "us", "crypto")

MARKET_TIMEZONE: dict[str, str] = {
    "none": "UTC",
    "cn": "Asia/Shanghai",
    "us": "America/New_York",
    "crypto": "UTC",
}

# None means "no session close": the daily bar closes at the next midnight.
MARKET_CLOSE: dict[str, time | None] = {
    "none": time(16, 0),
    "cn": time(15, 0),
    "us": time(16, 0),
    "crypto": None,
}

# The calendar each market's sessions come from (see the module docstring).
MARKET_CALENDAR: dict[str, str] = {
    "none": "weekdays",
    "cn": "XSHG",
    "us": "XNYS",
    "crypto": "24/7",
}
EXCHANGE_CALENDARS: tuple[str, ...] = ("XSHG", "XNYS")
"""Calendars that come from ``exchange_calendars`` (real sessions, holidays, early closes)."""
CALENDARS: tuple[str, ...] = ("weekdays", "24/7", *EXCHANGE_CALENDARS)

SESSION_COLUMNS: tuple[str, ...] = (
    "open",
    "break_start",
    "break_end",
    "close",
    "extended_open",
    "extended_close",
)

# XNYS extended hours (local): pre-market from 04:00, post-market for four hours after the
# close (to 20:00; to 17:00 after a 13:00 early close).
_PRE_MARKET_OPEN = pd.Timedelta(hours=4)
_POST_MARKET_LENGTH = pd.Timedelta(hours=4)
# The range an exchange calendar is built over when the package records no bound of its own.
_CALENDAR_FIRST = pd.Timestamp("1885-01-01")
_CALENDAR_LAST = pd.Timestamp("2100-12-31")

FREQUENCY_STEPS: dict[str, pd.Timedelta] = {
    "1min": pd.Timedelta(minutes=1),
    "5min": pd.Timedelta(minutes=5),
    "15min": pd.Timedelta(minutes=15),
    "30min": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "1D": pd.Timedelta(days=1),
    "1W": pd.Timedelta(weeks=1),
}


def market_timezone(market: str) -> str:
    """Return the exchange time zone of ``market`` (``UTC`` for unknown markets)."""
    return MARKET_TIMEZONE.get(market, "UTC")


def market_calendar(market: str) -> str:
    """Return the name of the calendar ``market`` trades on (``weekdays`` when unknown)."""
    return MARKET_CALENDAR.get(market, "weekdays")


def _exchange_class(name: str) -> type:
    # exchange_calendars takes about 0.6 s to import: only pay for it when a calendar is used.
    if name == "XSHG":
        from exchange_calendars.exchange_calendar_xshg import XSHGExchangeCalendar

        return XSHGExchangeCalendar
    if name == "XNYS":
        from exchange_calendars.exchange_calendar_xnys import XNYSExchangeCalendar

        return XNYSExchangeCalendar
    raise ValueError(f"unknown exchange calendar {name!r} (known: {', '.join(EXCHANGE_CALENDARS)})")


def calendar_bounds(calendar: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Return the first and last date whose sessions ``calendar`` knows, or None when it has no
    bound (``weekdays``, ``24/7``).

    XSHG's holidays are decreed year by year, so the package records them only up to a year
    (2026 in exchange_calendars 4.13); XNYS follows rules and is built for 1885-2100.
    """
    if calendar not in EXCHANGE_CALENDARS:
        return None
    factory = _exchange_class(calendar)
    first = factory.bound_min() or _CALENDAR_FIRST  # type: ignore[attr-defined]
    last = factory.bound_max() or _CALENDAR_LAST  # type: ignore[attr-defined]
    return pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()


@lru_cache(maxsize=4)
def _exchange_schedule(calendar: str) -> pd.DataFrame:
    """Return the whole UTC schedule of an exchange calendar, built once per process (< 0.5 s)."""
    bounds = calendar_bounds(calendar)
    assert bounds is not None
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads tz-aware Series.values, deprecated in pandas 3.1: its
        # business, not the caller's (the schedule it builds is right).
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        built = _exchange_class(calendar)(start=bounds[0], end=bounds[1])
    schedule = built.schedule[["open", "break_start", "break_end", "close"]].copy()
    schedule.index = pd.DatetimeIndex(schedule.index).tz_localize(None).as_unit("ns")
    return schedule


def _naive_date(value: object, zone: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    if stamp.tz is not None:
        stamp = stamp.tz_convert(zone).tz_localize(None)
    return stamp.normalize()


def market_sessions(
    market: str, start: object, end: object, *, calendar: str | None = None
) -> pd.DataFrame:
    """Return every session of ``market`` from ``start`` to ``end`` (dates, both included).

    Parameters
    ----------
    market:
        ``cn``, ``us``, ``crypto`` or ``none``: chooses the time zone, and the calendar unless
        ``calendar`` is given.
    start, end:
        Dates or timestamps (a tz-aware one is read in the market's zone).
    calendar:
        ``XSHG``, ``XNYS``, ``24/7`` or ``weekdays`` instead of the market's own (the synthetic
        market is generated on ``weekdays`` whatever its market). ``weekdays`` keeps the
        market's hours: 09:30-11:30 and 13:00-15:00 for ``cn``, 09:30-16:00 otherwise.

    Returns
    -------
    pandas.DataFrame
        One row per session, indexed by the naive session date (``session``), with tz-aware
        columns in the market's zone: ``open``, ``break_start``/``break_end`` (the A-share
        lunch break; NaT without one), ``close``, and ``extended_open``/``extended_close``
        (XNYS pre-market start and post-market end; NaT elsewhere). ``attrs`` holds
        ``calendar``, ``timezone`` and ``bounds`` (:func:`calendar_bounds`); an exchange
        calendar's sessions stop at its bounds.
    """
    name = calendar or market_calendar(market)
    if name not in CALENDARS:
        raise ValueError(f"unknown calendar {name!r} (known: {', '.join(CALENDARS)})")
    zone = market_timezone(market)
    first, last = _naive_date(start, zone), _naive_date(end, zone)
    columns: dict[str, pd.DatetimeIndex]
    if name in EXCHANGE_CALENDARS:
        schedule = _exchange_schedule(name).loc[first:last]
        dates = pd.DatetimeIndex(schedule.index)
        columns = {
            column: pd.DatetimeIndex(schedule[column]).tz_convert(zone)
            for column in ("open", "break_start", "break_end", "close")
        }
    else:
        if name == "24/7":
            dates = pd.date_range(first, last, freq="D")
            hours = (pd.Timedelta(0), None, None, pd.Timedelta(days=1))
        else:
            dates = pd.bdate_range(first, last)
            lunch = market == "cn"
            hours = (
                pd.Timedelta(hours=9, minutes=30),
                pd.Timedelta(hours=11, minutes=30) if lunch else None,
                pd.Timedelta(hours=13) if lunch else None,
                pd.Timedelta(hours=15) if lunch else pd.Timedelta(hours=16),
            )
        dates = pd.DatetimeIndex(dates).as_unit("ns")
        nat = pd.DatetimeIndex([pd.NaT] * len(dates), dtype=f"datetime64[ns, {zone}]")
        columns = {
            column: nat if offset is None else (dates + offset).tz_localize(zone)
            for column, offset in zip(
                ("open", "break_start", "break_end", "close"), hours, strict=True
            )
        }
    nat = pd.DatetimeIndex([pd.NaT] * len(dates), dtype=f"datetime64[ns, {zone}]")
    if name == "XNYS":
        columns["extended_open"] = (dates + _PRE_MARKET_OPEN).tz_localize(zone)
        columns["extended_close"] = columns["close"] + _POST_MARKET_LENGTH
    else:
        columns["extended_open"] = columns["extended_close"] = nat
    frame = pd.DataFrame({column: columns[column] for column in SESSION_COLUMNS}, index=dates)
    frame.index.name = "session"
    frame.attrs.update(calendar=name, timezone=zone, bounds=calendar_bounds(name))
    return frame


def session_dates(index: pd.DatetimeIndex, market: str) -> pd.DatetimeIndex:
    """Return the naive session date of each bar-close stamp of ``market``.

    The date in the exchange zone; for ``crypto`` a stamp is moved back by a nanosecond first,
    so a bar closing at ``D+1 00:00`` belongs to day ``D``. Stamps that all fall on midnight of
    their own zone (a date-only daily series stamped in UTC, say) are those dates, as
    :func:`simulators.providers.files.stamp_bars` reads them.
    """
    if MARKET_CLOSE.get(market, time(16, 0)) is not None and index.tz is not None:
        own = index.tz_localize(None)
        if is_date_only(own):
            return pd.DatetimeIndex(own)
    local = index.tz_convert(market_timezone(market)) if index.tz is not None else index
    if MARKET_CLOSE.get(market, time(16, 0)) is None:
        local = local - pd.Timedelta(nanoseconds=1)
    return pd.DatetimeIndex(local.tz_localize(None) if local.tz is not None else local).normalize()


def is_daily_or_slower(freq: str) -> bool:
    """Return True for ``1D`` and ``1W`` bars."""
    return freq in ("1D", "1W")


def infer_frequency(index: pd.DatetimeIndex) -> str:
    """Infer the bar frequency from the typical spacing of the timestamps.

    The median of the positive differences is used, so weekends, holidays, lunch breaks and
    a few missing bars do not change the answer. With fewer than two distinct timestamps the
    frequency is taken as daily.

    Parameters
    ----------
    index:
        Bar timestamps, in any order, possibly with duplicates.

    Returns
    -------
    str
        One of ``1min``, ``5min``, ``15min``, ``30min``, ``1h``, ``1D``, ``1W``.
    """
    values = np.unique(index.as_unit("ns").asi8)
    if len(values) < 2:
        return "1D"
    step = pd.Timedelta(int(np.median(np.diff(values))), unit="ns")
    best = min(FREQUENCY_STEPS, key=lambda name: abs(np.log(step / FREQUENCY_STEPS[name])))
    return best


def is_date_only(index: pd.DatetimeIndex) -> bool:
    """Return True when every timestamp falls on midnight (a date without a time)."""
    if len(index) == 0:
        return False
    return bool((index.normalize() == index).all())


def daily_close_stamps(dates: pd.DatetimeIndex, market: str) -> pd.DatetimeIndex:
    """Turn naive trading dates into tz-aware bar-close timestamps of ``market``.

    Parameters
    ----------
    dates:
        Naive timestamps at midnight, one per trading day.
    market:
        ``cn``, ``us``, ``crypto`` or ``none``.

    Returns
    -------
    pandas.DatetimeIndex
        The session close on that date in the exchange zone (``cn``, ``us``, ``none``), or
        the end of the UTC day (``D+1 00:00 UTC``) for ``crypto``.
    """
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    dates = dates.normalize()
    close = MARKET_CLOSE.get(market)
    zone = market_timezone(market)
    if close is None:
        return (dates + pd.Timedelta(days=1)).tz_localize(zone)
    offset = pd.Timedelta(hours=close.hour, minutes=close.minute)
    # ``nonexistent``/``ambiguous`` never bite at 15:00/16:00, but say so explicitly.
    return (dates + offset).tz_localize(zone, ambiguous="raise", nonexistent="raise")


def missing_business_days(index: pd.DatetimeIndex, market: str) -> np.ndarray:
    """Return, for each bar after the first, the business days skipped since the previous bar.

    Dates are taken in the exchange zone of ``market``; for ``crypto`` the bar-close stamp
    ``D+1 00:00`` is shifted back so that it counts as day ``D``.
    """
    if len(index) < 2:
        return np.zeros(0, dtype=np.int64)
    local = index.tz_convert(market_timezone(market)) if index.tz is not None else index
    if MARKET_CLOSE.get(market) is None:
        local = local - pd.Timedelta(nanoseconds=1)
    days = local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
    counts = np.busday_count(days[:-1], days[1:])
    # busday_count counts the start day when it is a business day; the bar itself is present.
    start_is_business = np.is_busday(days[:-1])
    return np.maximum(counts - start_is_business.astype(np.int64), 0)
