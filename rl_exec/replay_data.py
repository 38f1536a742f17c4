"""Replay days from real intraday bars (bar sizes from 1 minute to 1 hour).

:func:`replay_days_from_sessions` turns an :class:`~simulators.intraday_market.IntradayMarket`
(the regular-hours bars of a file or folder, split by session, with their exact daily
aggregate) into :class:`~rl_exec.models.ReplayDay` values:

* **Bars.** A replayed day executes on the session's regular-hours bars of the asset exactly as
  the data has them: the rows where the asset traded (``tradable``). A missing stretch, a halt
  or a session cut short is missing bars; no bar is padded in, so nothing can fill where the
  data has no bar.
* **Slots.** Each bar gets its place in the session's grid of bar intervals, built from the
  market's calendar (:func:`simulators.intraday_market.session_slots`, re-exported here; the
  XSHG lunch break, XNYS early closes; the arena's day reads the same count):
  ``open + step, open + 2 step, ...`` up to the close, a last partial bar included, and the
  same again after a break. A bar goes to the first grid interval that ends
  after the bar begins (a bar stamped at the XSHG open, the call auction, shares slot 0 with
  the first continuous bar). :class:`~rl_exec.models.ReplayModel` cuts the session into
  decision steps by slots, so a step is the same stretch of clock time on every complete day
  and a step whose bars are missing fills nothing.
* **Volume profile, from the data and causal.** The usual share of a session's volume per slot
  for day ``d`` is the mean, over the look-back sessions before ``d`` (never ``d`` itself or
  later) in which the asset traded, of each slot's share of that session's volume. Only
  sessions with the same number of slots as ``d`` are averaged (an early close is compared with
  nothing else when a full day is replayed); when none has it, all look-back sessions are used,
  cut or padded with zeros to ``d``'s slots. A profile with no volume at all falls back to equal
  shares (a schedule hint only; no bar comes from it).
* **Order size, volatility, limits.** The previous close, the mean daily volume and the
  volatility of daily log returns over the look-back come from the daily aggregate
  (:func:`rl_exec.models.daily_history`), as for the synthetic market.
* **The arena's day.** Each replayed day is one asset of the
  :class:`simulators.day_market.DayMarket` of its session, built by
  :func:`simulators.day_market.day_market` from the session's bars (the arena's
  ``ArenaData.minute_bars``): its bars, previous close and calendar position are the
  arena's; its volatility of one bar spreads the daily volatility over the session's
  scheduled slots (the arena's ``ArenaData.day_market`` passes the same count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl_exec.models import ReplayDay, daily_history, daily_log_close
from simulators.day_market import DayMarket, day_market, trading_days
from simulators.intraday_market import IntradayMarket, session_slots

__all__ = ["replay_days_from_sessions", "session_slots"]


def _shares(volume: np.ndarray, slots: np.ndarray, n_slots: int) -> np.ndarray | None:
    per_slot = np.bincount(slots, weights=volume, minlength=n_slots)
    total = per_slot.sum()
    return per_slot / total if total > 0 else None


def _profile(history: list[np.ndarray], n_slots: int) -> np.ndarray:
    same = [shares for shares in history if len(shares) == n_slots]
    chosen = same or [np.resize(np.r_[shares, np.zeros(n_slots)], n_slots) for shares in history]
    profile = np.mean(np.stack(chosen), axis=0)
    if profile.sum() <= 0:
        return np.full(n_slots, 1.0 / n_slots)
    return profile / profile.sum()


def replay_days_from_sessions(
    market: IntradayMarket,
    rows: Sequence[int],
    *,
    lookback_days: int,
    symbols: Sequence[str] | None = None,
) -> list[ReplayDay]:
    """Build the replay days of daily rows ``rows`` from real intraday bars.

    Parameters
    ----------
    market:
        Regular-hours bars by session and their daily aggregate
        (:func:`simulators.intraday_market.aggregate_sessions`).
    rows:
        Daily rows to replay (each at least ``lookback_days``).
    lookback_days:
        Sessions before a day for its volume profile, mean volume and volatility.
    symbols:
        Assets to replay (default all).

    Returns
    -------
    list of ReplayDay
        One per asset and row where the asset traded and its look-back has prices, volume and
        at least one session with volume; ordered by row, then asset.
    """
    daily, bars = market.daily, market.bars
    slots, n_slots = session_slots(market)
    log_close = daily_log_close(daily)
    columns = [daily.column(symbol) for symbol in (symbols or daily.symbols)]
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = {}

    def session_of(row: int, column: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the asset's bar rows in session ``row`` and their volume shares per slot."""
        key = (row, column)
        if key not in cache:
            start, stop = int(market.starts[row]), int(market.stops[row])
            own = start + np.flatnonzero(bars.tradable[start:stop, column])
            cache[key] = (own, _shares(bars.volume[own, column], slots[own], int(n_slots[row])))
        return cache[key]

    calendar = trading_days(daily)
    markets: dict[int, DayMarket] = {}

    def market_of(row: int) -> DayMarket:
        """Return the day's market: the session's bars, as the arena's day reads them."""
        if row not in markets:
            markets[row] = day_market(
                daily,
                calendar[row],
                market.row_bars(row),
                lookback_days=lookback_days,
                session_bars=int(n_slots[row]),
            )
        return markets[row]

    days: list[ReplayDay] = []
    for row in rows:
        if row < lookback_days:
            raise ValueError(
                f"row {row} has fewer than lookback_days={lookback_days} days before it"
            )
        for column in columns:
            own, _ = session_of(row, column)
            if not daily.tradable[row, column] or own.size == 0:
                continue
            figures = daily_history(daily, log_close, row, column, lookback_days=lookback_days)
            history = [session_of(past, column)[1] for past in range(row - lookback_days, row)]
            past_shares = [shares for shares in history if shares is not None]
            if figures is None or not past_shares:
                continue
            symbol = daily.symbols[column]
            day = market_of(row)
            if symbol not in day.bars:  # no price before its first bar: the arena has none
                continue
            days.append(
                ReplayDay.from_market(
                    day,
                    symbol,
                    average_daily_volume=figures[1],
                    label=f"{symbol} {daily.index[row].date()}",
                    slots=slots[own].copy(),
                    n_slots=int(n_slots[row]),
                    profile=_profile(past_shares, int(n_slots[row])),
                )
            )
    return days
