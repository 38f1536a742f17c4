"""Market clocks: time zones, daily close times, frequency inference and business-day gaps.

The one place where the data layer decides *when* a bar closes:

* ``cn``: ``Asia/Shanghai``, a daily bar closes at 15:00.
* ``us``: ``America/New_York``, a daily bar closes at 16:00.
* ``none``: ``UTC``, a daily bar closes at 16:00 UTC (the synthetic market's clock: the
  US session hours, read in UTC).
* ``crypto``: ``UTC``; no session close, so a daily bar of date ``D`` closes at the end of
  that UTC day, i.e. ``D+1 00:00 UTC``.

Naive timestamps are read as exchange-local time of the market (UTC when the market is
unknown). No holiday calendars are shipped: gaps are measured in business days (Mon-Fri)
and only long runs are reported, because holidays make short gaps normal.
"""

from __future__ import annotations

from datetime import time

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
