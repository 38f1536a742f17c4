"""The stress-test scenario library: named crises and injected faults as seeded markets.

Pure NumPy (no Ray, no MLflow, no arena import): a scenario is data the arena's stress replay
(``arena/stress.py``) drives the paper accounts through. :func:`build_scenario` returns a
:class:`Scenario`: the market and its rules, a daily :class:`~simulators.bars.Panel` (a seeded
synthetic history from :func:`simulators.synthetic.generate_daily`, long enough for the
genomes' indicators, followed by the stress days calibrated to the facts), the minute bars of
the stress days, per stress day the conditions the executor meets (exchange halts, feed
faults, broker faults, a forced regime) and the checks that apply.

How the stress days are built
-----------------------------
* **Calibrated daily path** (``cn-crash-2015``, the days of ``covid-crash-2020`` without a
  halt): the *equal-weight index* (:func:`equal_weight_index`: the mean close-to-close return
  of the names tradable on both days, compounded) is pinned to the published index closes at
  the anchor dates and follows a seeded Brownian bridge between them; each name's return is
  the day's index return plus a seeded idiosyncratic move, shifted (bisection) so the mean of
  the tradable names' returns is exactly the index return after the ``cn`` +/-10% limits clip
  them. On listed limit-down days a share of names is locked at the limit all day (open = high
  = low = close = limit-down: nobody can sell) and on suspension days a share is suspended
  (``tradable`` False, flat at the last close, zero volume). The minutes of such a day are a
  Brownian bridge from the open to the close, folded into the day's range.
* **Shaped days** (flash crash, circuit breakers, gap, high volatility): the market's
  intraday log level relative to the previous close is a piecewise-linear path through
  anchor times (the published times of the event) and each name follows ``beta x market +
  idiosyncratic walk`` (the walks are demeaned across names so the index follows the shape).
  Inside an exchange halt the path is flat. The daily bar of the day is the aggregate of its
  minutes (open of the first, close of the last, max high, min low, summed volume), so the
  minutes aggregate to the daily bar by construction.

Halted minutes keep printing the last price *with volume*: the bars do not stop a fill, the
executor's halt rule must (so a replay that ignored the halt would show fills inside it).

Randomness: one ``SeedSequence(seed)`` per scenario with children spawned per purpose (the
history's seed, the daily path, each day's minutes), so the same ``(name, size, seed)`` gives
the same bytes.

Real data (``build_scenario(..., data=panel)``, ``stress replay --data``)
--------------------------------------------------------------------------
* ``cn-crash-2015`` replays real bars covering 2015-06-01..2015-09-01 (market cn). **Daily**
  bars are the daily panel as they are, and each replayed day executes on minutes synthesised
  with :func:`simulators.synthetic.generate_intraday` (they aggregate exactly to the day's
  bar). **Intraday** bars (1 minute to 1 hour) are aggregated exactly to the daily panel on
  the XSHG sessions (:func:`simulators.intraday_market.aggregate_sessions`) and every replayed
  day, warm-up and stress, executes on the data's own bars of that session. The 2015 crash had
  no market-wide halt; the scenario has no halt check.
* ``cn-circuit-breaker-2016`` replays **intraday** bars holding the breaker sessions
  2016-01-04 and 2016-01-07 and four sessions before them (three warm-up days and the close
  before); the stress days are the data's sessions 01-04..01-07, each on its own bars. The
  halts are **found in the bars** (:func:`simulators.session_halts.find_halts`: a session that
  stops trading long before its close, a stretch in which no name trades), not planted at the
  published minutes: the times are the data's (to one bar: 5-minute bars read 09:59 as 10:00),
  each :class:`HaltWindow` says ``source="data"`` and what showed it, and the published
  closing time of each breaker day is kept beside them (``StressDay.published_close_halt``) so
  the halt check fails when the data do not show it. Daily bars cannot show a halt: with
  daily ``--data`` the breaker replays its synthetic days, and ``Scenario.execution`` says so.
* The other scenarios ignore ``data``.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import numpy as np
import pandas as pd

from alphaloop.errors import ConfigError, DataSpecError
from simulators import detmath
from simulators.bars import Panel
from simulators.calendars import FREQUENCY_STEPS, is_daily_or_slower
from simulators.day_market import DayMarket, day_market
from simulators.intraday_market import IntradayMarket, aggregate_sessions
from simulators.session_halts import DataHalt, find_halts
from simulators.synthetic import (
    SyntheticSpec,
    generate_daily,
    generate_intraday,
    intraday_profile,
    session_minutes,
)

__all__ = [
    "CHECKS",
    "SCENARIOS",
    "SIZES",
    "BrokerFaultRates",
    "FeedOutage",
    "HaltWindow",
    "Scenario",
    "ScenarioInfo",
    "StressDay",
    "build_scenario",
    "equal_weight_index",
    "list_scenarios",
    "minute_index",
]

SIZES: tuple[str, ...] = ("small", "full")
CHECKS: tuple[str, ...] = (
    "circuit_breaker_froze_within_3_min",
    "daily_loss_within_limit",
    "no_order_on_stale_data",
    "no_duplicate_fill",
    "manual_order_written",
    "governor_tightened",
    "exchange_halt_respected",
    "ledger_verify",
    "limits_tripped",
)
_CN_LIMIT = 0.10
_WARMUP_DAYS = 3
# Per size: names, history bars (the genomes' longest window is 200 bars; the arena plans from
# at most 756) and the crash window replayed by cn-crash-2015 / covid-crash-2020.
_ASSETS = {"small": 6, "full": 20}
_HISTORY = {"small": 320, "full": 800}
_TIMEZONE = {"us": "America/New_York", "cn": "Asia/Shanghai"}
_SYNTHETIC_EXECUTION = "synthetic 1-minute bars (simulators.scenarios)"
_CLOSE = {"us": (16, 0), "cn": (15, 0)}


# --------------------------------------------------------------------------- conditions
@dataclass(frozen=True, slots=True, kw_only=True)
class HaltWindow:
    """An exchange-wide halt over ``[start, end)``: no fill at a bar stamped in ``(start, end]``.

    (A bar stamped at its close covers the minute before it.) ``source`` says where the times
    come from: ``scenario`` (planted at the published times in the synthetic day) or ``data``
    (read from the real bars, :func:`simulators.session_halts.find_halts`; ``reason`` then
    says what in the data shows it). ``closes_session``: the market stays closed to the end
    of the session (the 7% breaker).
    """

    start: datetime
    end: datetime
    reason: str
    source: str = "scenario"
    closes_session: bool = False

    @property
    def label(self) -> str:
        """Return ``HH:MM-HH:MM`` (``HH:MM-close`` for a halt to the session close)."""
        return _halt_label(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedOutage:
    """The data feed is stale in ``[start, end)`` (``symbols`` ``None``: every name).

    ``backup`` says a backup source is configured (the lab should switch to it, not pause).
    """

    start: datetime
    end: datetime
    symbols: tuple[str, ...] | None = None
    backup: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerFaultRates:
    """Share of broker calls rejected or timed out, and the retry policy the lab must follow."""

    reject_rate: float = 0.0
    timeout_rate: float = 0.0
    seed: int = 0
    max_retries: int = 3
    backoff_minutes: tuple[int, ...] = (1, 2, 4)
    timeout_filled_share: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class StressDay:
    """One replayed day of a scenario: its minute bars and what the executor meets.

    ``crash`` marks a day on which limits are expected to trip (``limits_tripped``).
    ``published_close_halt`` (real data only) is the time the exchange is known to have
    closed the market that day: the data must show that closing halt for the halt check to
    have something to check (``exchange_halt_respected``).
    """

    day: date
    minute: Panel
    halts: tuple[HaltWindow, ...] = ()
    published_close_halt: datetime | None = None
    feed_faults: tuple[FeedOutage, ...] = ()
    broker_faults: BrokerFaultRates | None = None
    force_regime: str | None = None
    crash: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A built scenario (see the module docstring).

    Parameters
    ----------
    name, title:
        Registry name and one-line title.
    market:
        ``cn`` (10% limits, T+1, suspensions as non-tradable bars) or ``us``.
    facts:
        The facts the scenario is calibrated to.
    checks:
        The names of the checks that apply (:data:`CHECKS`).
    daily:
        Warm-up history followed by the stress days.
    warmup:
        Trading days replayed before the stress days (bootstrap the books).
    stress_days:
        The replayed stress days.
    build_book:
        ``True``: the opening book is built *on* the first stress day (the orders the faults
        must meet); ``False``: it is in place at the close before the first stress day.
    source:
        ``synthetic`` or the data's source.
    execution:
        What the replayed days execute on (synthetic minutes, minutes synthesised from real
        daily bars, or the data's own intraday bars).
    intraday:
        The data's sessions when the replayed days execute on its own intraday bars (their
        scheduled bar counts: :meth:`session_bars`); ``None`` otherwise.
    """

    name: str
    title: str
    market: str
    size: str
    seed: int
    facts: tuple[str, ...]
    checks: tuple[str, ...]
    daily: Panel
    warmup: tuple[date, ...]
    stress_days: tuple[StressDay, ...]
    build_book: bool = False
    source: str = "synthetic"
    history_spec: SyntheticSpec | None = None
    extra_minutes: dict[date, Panel] = field(default_factory=dict)
    execution: str = _SYNTHETIC_EXECUTION
    intraday: IntradayMarket | None = None

    @property
    def days(self) -> tuple[date, ...]:
        """Return every replayed day (warm-up, then stress), in order."""
        return (*self.warmup, *(d.day for d in self.stress_days))

    def stress_day(self, day: date) -> StressDay | None:
        """Return the stress day ``day`` (``None`` for a warm-up day)."""
        for item in self.stress_days:
            if item.day == day:
                return item
        return None

    def minute_bars(self, day: date) -> Panel:
        """Return the minute bars of a replayed day (warm-up days are generated on demand)."""
        item = self.stress_day(day)
        if item is not None:
            return item.minute
        if day in self.extra_minutes:
            return self.extra_minutes[day]
        row = _row_of(self.daily, day)
        spec = self.history_spec or SyntheticSpec(seed=self.seed, market=self.market)
        return generate_intraday(spec, self.daily, row)

    def session_bars(self, day: date) -> int | None:
        """Return the bar intervals of ``day``'s scheduled session on the data's own bars.

        The calendar's count (:meth:`simulators.intraday_market.IntradayMarket.scheduled_bars`)
        when the replay executes on real intraday bars (``intraday``); ``None`` for generated
        minutes (whole sessions: the bars present).
        """
        real = self.stress_day(day) is not None or day in self.extra_minutes
        if self.intraday is None or not real:
            return None
        return int(self.intraday.scheduled_bars(self.intraday.day_row(day)))

    def day_market(self, day: date) -> DayMarket:
        """Return the :class:`~simulators.day_market.DayMarket` a replayed ``day`` executes on.

        :func:`simulators.day_market.day_market` of :meth:`minute_bars`, one bar's volatility
        spread over :meth:`session_bars` (the arena's ``ArenaData.day_market`` on the same data
        gives the same day).
        """
        return day_market(
            self.daily, day, self.minute_bars(day), session_bars=self.session_bars(day)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioInfo:
    """A registry entry: what the scenario is, the facts it rests on, the checks that apply."""

    name: str
    title: str
    market: str
    facts: tuple[str, ...]
    checks: tuple[str, ...]
    builder: Callable[[str, int, Panel | None], Scenario]

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form (``stress list --json``)."""
        return {
            "name": self.name,
            "title": self.title,
            "market": self.market,
            "facts": list(self.facts),
            "checks": list(self.checks),
        }


# --------------------------------------------------------------------------- helpers
def _row_of(daily: Panel, day: date) -> int:
    days = [(stamp - pd.Timedelta(minutes=1)).date() for stamp in daily.index]
    try:
        return days.index(day)
    except ValueError:
        raise DataSpecError(f"{day.isoformat()} is not a day of {daily.source}") from None


def equal_weight_index(daily: Panel) -> pd.Series:
    """Return the equal-weight index of ``daily`` (base 1 at the first bar).

    Each bar's move is the mean close-to-close return of the names tradable on both bars
    (suspended names are left out rather than counted as flat).
    """
    closes = daily.close
    live = daily.tradable[1:] & daily.tradable[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.where(live, closes[1:] / closes[:-1] - 1.0, np.nan)
    counts = live.sum(axis=1)
    mean = np.where(counts > 0, np.nansum(moves, axis=1) / np.maximum(counts, 1), 0.0)
    level = np.concatenate([[1.0], np.cumprod(1.0 + mean)])
    return pd.Series(level, index=daily.index, name="index")


def minute_index(minute: Panel, prev_close: Sequence[float] | np.ndarray) -> pd.Series:
    """Return the equal-weight move of each minute close from the previous daily close."""
    reference = np.asarray(prev_close, dtype=float)
    live = minute.tradable
    moves = np.where(live, minute.close / reference - 1.0, np.nan)
    counts = np.maximum(live.sum(axis=1), 1)
    return pd.Series(np.nansum(moves, axis=1) / counts, index=minute.index, name="move")


def _seed_int(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def _rng(seed: int, name: str, *key: int) -> np.random.Generator:
    # The scenario's name is part of the key so two scenarios never share a stream.
    tag = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(tag, *key))))


def _history(name: str, size: str, seed: int, market: str, first_stress: date) -> Panel:
    """Return the seeded synthetic history ending the business day before ``first_stress``."""
    end = (pd.Timestamp(first_stress) - pd.offsets.BDay(1)).date()
    start = (pd.Timestamp(end) - pd.offsets.BDay(_HISTORY[size] - 1)).date()
    spec = _history_spec(name, size, seed, market, start, end)
    return generate_daily(spec)


def _history_spec(
    name: str, size: str, seed: int, market: str, start: date, end: date
) -> SyntheticSpec:
    child = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode("utf-8")), 0))
    return SyntheticSpec(
        seed=_seed_int(child),
        assets=_ASSETS[size] + (2 if market == "cn" else 0),
        start=start.isoformat(),
        end=end.isoformat(),
        market=market,
    )


def _stamp(market: str, day: date, hour: int, minute: int) -> datetime:
    local = pd.Timestamp(datetime(day.year, day.month, day.day, hour, minute))
    return local.tz_localize(_TIMEZONE[market]).to_pydatetime()


def _clock(text: str) -> tuple[int, int]:
    hour, minute = text.split(":")
    return int(hour), int(minute)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Built:
    """The arrays of one constructed day (minutes and their daily aggregate)."""

    minute: Panel
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tradable: np.ndarray


def _aggregate(
    minute_open: np.ndarray,
    minute_high: np.ndarray,
    minute_low: np.ndarray,
    minute_close: np.ndarray,
    minute_volume: np.ndarray,
    tradable: np.ndarray,
    *,
    symbols: tuple[str, ...],
    index: pd.DatetimeIndex,
    market: str,
    source: str,
) -> _Built:
    minute = Panel(
        symbols=symbols,
        index=index,
        open=np.ascontiguousarray(minute_open),
        high=np.ascontiguousarray(minute_high),
        low=np.ascontiguousarray(minute_low),
        close=np.ascontiguousarray(minute_close),
        volume=np.ascontiguousarray(minute_volume),
        tradable=np.broadcast_to(tradable, minute_open.shape).copy(),
        freq="1min",
        market=market,
        source=source,
        meta={"generator": "simulators.scenarios"},
    )
    return _Built(
        minute=minute,
        open=minute_open[0].copy(),
        high=minute_high.max(axis=0),
        low=minute_low.min(axis=0),
        close=minute_close[-1].copy(),
        volume=minute_volume.sum(axis=0),
        tradable=tradable.copy(),
    )


def _minute_bars_from_path(
    price: np.ndarray,
    rng: np.random.Generator,
    *,
    prev_close: np.ndarray,
    tradable: np.ndarray,
    daily_volume: np.ndarray,
    market: str,
    halted: np.ndarray,
    wick_sd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return minute OHLCV from boundary prices ``price`` (``M+1`` rows: open, then closes)."""
    n_minutes = price.shape[0] - 1
    m_open, m_close = price[:-1], price[1:]
    up = detmath.exp(wick_sd * rng.exponential(size=m_open.shape))
    down = detmath.exp(-wick_sd * rng.exponential(size=m_open.shape))
    m_high = np.maximum(m_open, m_close) * up
    m_low = np.minimum(m_open, m_close) * down
    if market == "cn":
        lower, upper = prev_close * (1.0 - _CN_LIMIT), prev_close * (1.0 + _CN_LIMIT)
        m_high = np.minimum(m_high, upper)
        m_low = np.maximum(m_low, lower)
    m_high = np.maximum(m_high, np.maximum(m_open, m_close))
    m_low = np.minimum(m_low, np.minimum(m_open, m_close))
    # No wick inside a halt: the feed prints the halt price.
    m_high = np.where(halted[:, None], np.maximum(m_open, m_close), m_high)
    m_low = np.where(halted[:, None], np.minimum(m_open, m_close), m_low)
    profile = intraday_profile(market)
    if profile.size != n_minutes:
        profile = np.full(n_minutes, 1.0 / n_minutes)
    unit = 100.0 if market == "cn" else 1.0
    lots = np.floor(np.maximum(daily_volume, 0.0) / unit).astype(np.int64)
    volume = rng.multinomial(lots, profile).T.astype(float) * unit
    dead = ~tradable
    if dead.any():
        flat = np.broadcast_to(prev_close, m_open.shape)
        for array in (m_open, m_high, m_low, m_close):
            array[:, dead] = flat[:, dead]
        volume[:, dead] = 0.0
    return m_open.copy(), m_high, m_low, m_close.copy(), volume


def _shaped_day(
    rng: np.random.Generator,
    *,
    day: date,
    market: str,
    symbols: tuple[str, ...],
    prev_close: np.ndarray,
    betas: np.ndarray,
    daily_volume: np.ndarray,
    anchors: Sequence[tuple[str, float]],
    halts: Sequence[tuple[str, str]] = (),
    idio_sd: float = 0.0006,
    gap_sd: float = 0.002,
    wick_sd: float = 0.0004,
    source: str,
) -> tuple[_Built, tuple[HaltWindow, ...]]:
    """Build a day whose market level follows ``anchors`` (``HH:MM`` bar close, log level).

    The first anchor is the open (``09:30``); halts are ``(start, end)`` clock pairs (``end``
    ``close`` runs to the end of the session). Each name: ``beta x level + idio`` with the idio
    walks demeaned across names, clipped to the limits on ``cn``.
    """
    index = session_minutes(market, day)
    n_minutes, n_assets = len(index), len(symbols)
    times = np.concatenate([[index[0] - pd.Timedelta(minutes=1)], index])
    clock = np.asarray([t.hour * 60 + t.minute for t in times], dtype=float)
    # Interpolate in session position so a lunch break is no move.
    anchor_pos = []
    for text, _ in anchors:
        hour, minute = _clock(text)
        anchor_pos.append(float(np.searchsorted(clock, hour * 60 + minute)))
    levels = np.interp(np.arange(n_minutes + 1), anchor_pos, [lv for _, lv in anchors])
    halted = np.zeros(n_minutes, dtype=bool)
    windows: list[HaltWindow] = []
    for start_text, end_text in halts:
        hour, minute = _clock(start_text)
        start = _stamp(market, day, hour, minute)
        if end_text == "close":
            end = index[-1].to_pydatetime()
        else:
            hour, minute = _clock(end_text)
            end = _stamp(market, day, hour, minute)
        stamps = index.to_pydatetime()
        # A bar stamped at its close ``s`` covers (s - 1 min, s]: it is inside the halt
        # [start, end) when start < s <= end. The trigger bar (stamped ``start``) carries the
        # move; the feed is flat after it until trading resumes.
        halted |= np.array([start < s <= end for s in stamps])
        windows.append(
            HaltWindow(
                start=start, end=end, reason=f"exchange halt {start_text}-{end_text}",
                closes_session=end_text == "close",
            )
        )  # fmt: skip
    steps = rng.standard_normal((n_minutes, n_assets)) * idio_sd
    steps[halted] = 0.0
    gap = rng.standard_normal(n_assets) * gap_sd
    walk = np.vstack([gap, gap + np.cumsum(steps, axis=0)])
    walk -= walk.mean(axis=1, keepdims=True)
    # Flat market inside halts: hold the level of the bar before each halted run.
    held = levels.copy()
    for k in range(1, n_minutes + 1):
        if halted[k - 1]:
            held[k] = held[k - 1]
    log_move = betas[None, :] * held[:, None] + walk
    if market == "cn":
        log_move = np.clip(
            log_move, float(detmath.log(1.0 - _CN_LIMIT)), float(detmath.log(1.0 + _CN_LIMIT))
        )
    price = prev_close[None, :] * detmath.exp(log_move)
    tradable = np.ones(n_assets, dtype=bool)
    o, h, lo, c, v = _minute_bars_from_path(
        price, rng, prev_close=prev_close, tradable=tradable, daily_volume=daily_volume,
        market=market, halted=halted, wick_sd=wick_sd,
    )  # fmt: skip
    built = _aggregate(
        o, h, lo, c, v, tradable, symbols=symbols, index=index, market=market, source=source
    )
    return built, tuple(windows)


def _bridge_day(
    rng: np.random.Generator,
    *,
    day: date,
    market: str,
    symbols: tuple[str, ...],
    prev_close: np.ndarray,
    open_price: np.ndarray,
    close_price: np.ndarray,
    tradable: np.ndarray,
    locked: np.ndarray,
    daily_volume: np.ndarray,
    range_sd: float,
    source: str,
) -> _Built:
    """Build a day whose names go from ``open_price`` to ``close_price`` by a Brownian bridge.

    ``locked`` names sit at their close all day (a locked limit: one price, no wick).
    """
    index = session_minutes(market, day)
    n_minutes, n_assets = len(index), len(symbols)
    steps = rng.standard_normal((n_minutes, n_assets)) * (range_sd / math.sqrt(n_minutes))
    walk = np.vstack([np.zeros(n_assets), np.cumsum(steps, axis=0)])
    weight = np.arange(n_minutes + 1, dtype=float)[:, None] / n_minutes
    start, end = detmath.log(open_price), detmath.log(close_price)
    path = start + weight * (end - start) + walk - weight * walk[-1]
    if market == "cn":
        lower = detmath.log(prev_close * (1.0 - _CN_LIMIT))
        upper = detmath.log(prev_close * (1.0 + _CN_LIMIT))
        path = np.clip(path, lower, upper)
    price = detmath.exp(path)
    price[0], price[-1] = open_price, close_price
    price[:, locked] = close_price[locked]
    halted = np.zeros(n_minutes, dtype=bool)
    o, h, lo, c, v = _minute_bars_from_path(
        price, rng, prev_close=prev_close, tradable=tradable, daily_volume=daily_volume,
        market=market, halted=halted, wick_sd=0.0003,
    )  # fmt: skip
    for array in (h, lo):
        array[:, locked] = close_price[locked]
    return _aggregate(
        o, h, lo, c, v, tradable, symbols=symbols, index=index, market=market, source=source
    )


def _append_days(history: Panel, built: Sequence[tuple[date, _Built]], source: str) -> Panel:
    """Return ``history`` followed by the constructed days (their daily aggregates)."""
    market = history.market
    hour, minute = _CLOSE[market]
    stamps = [pd.Timestamp(_stamp(market, d, hour, minute)) for d, _ in built]
    index = history.index.append(pd.DatetimeIndex(stamps).tz_convert(history.index.tz))
    index.name = history.index.name

    def stack(name: str) -> np.ndarray:
        rows = [getattr(b, name) for _, b in built]
        return np.ascontiguousarray(np.vstack([getattr(history, name), *rows]))

    return Panel(
        symbols=history.symbols,
        index=pd.DatetimeIndex(index),
        open=stack("open"),
        high=stack("high"),
        low=stack("low"),
        close=stack("close"),
        volume=stack("volume"),
        tradable=stack("tradable").astype(bool),
        freq="1D",
        market=market,
        source=source,
        meta={"generator": "simulators.scenarios"},
    )


def _last_state(history: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Return the last closes and the mean daily volume of the last 20 bars."""
    return history.close[-1].copy(), history.volume[-20:].mean(axis=0)


def _betas(rng: np.random.Generator, n_assets: int) -> np.ndarray:
    betas = rng.uniform(0.8, 1.2, n_assets)
    return betas / betas.mean()


def _solve_shift(
    target: float, raw: np.ndarray, lower: float | None, upper: float | None
) -> np.ndarray:
    """Return ``raw + s`` (clipped to the limits) whose mean simple return is ``target``."""

    def clip(values: np.ndarray) -> np.ndarray:
        if lower is None or upper is None:
            return values
        return np.clip(values, lower, upper)

    if raw.size == 0:
        return raw
    low, high = -1.0, 1.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if np.mean(detmath.exp(clip(raw + middle)) - 1.0) < target:
            low = middle
        else:
            high = middle
    return clip(raw + 0.5 * (low + high))


# --------------------------------------------------------------------------- calibrated crashes
def _calibrated_days(
    name: str,
    seed: int,
    history: Panel,
    days: Sequence[date],
    index_returns: np.ndarray,
    *,
    locked_share: dict[date, float],
    suspended_share: dict[date, float],
    idio_sd: float,
    source: str,
) -> list[tuple[date, _Built]]:
    """Build daily paths whose equal-weight index has exactly ``index_returns``."""
    market = history.market
    limit = market == "cn"
    rng = _rng(seed, name, 1)
    n_assets = history.n_assets
    # A fixed fragility order: the same names lock limit-down first, day after day (the runs
    # of limit-down days); suspensions are taken from the other end.
    fragility = rng.permutation(n_assets)
    close, volume = _last_state(history)
    built: list[tuple[date, _Built]] = []
    was_suspended = np.zeros(n_assets, dtype=bool)
    for number, (day, target) in enumerate(zip(days, index_returns, strict=True)):
        day_rng = _rng(seed, name, 2, number)
        n_suspended = round(suspended_share.get(day, 0.0) * n_assets)
        suspended = np.zeros(n_assets, dtype=bool)
        if n_suspended:
            suspended[fragility[::-1][:n_suspended]] = True
        live = ~suspended
        counted = live & ~was_suspended
        n_counted = int(counted.sum())
        n_locked = round(locked_share.get(day, 0.0) * n_assets)
        if limit:
            # No more locked names than the index move allows the others to offset (the real
            # index was held up by big caps; an equal-weight index of few names cannot be).
            while n_locked > 0 and (
                n_locked >= n_counted
                or (target * n_counted + n_locked * _CN_LIMIT) / (n_counted - n_locked)
                > 0.8 * _CN_LIMIT
            ):
                n_locked -= 1
        locked = np.zeros(n_assets, dtype=bool)
        for column in fragility:
            if locked.sum() >= n_locked:
                break
            if counted[column]:
                locked[column] = True
        raw = day_rng.standard_normal(n_assets) * idio_sd
        lower = float(detmath.log(1.0 - _CN_LIMIT)) if limit else None
        upper = float(detmath.log(1.0 + _CN_LIMIT)) if limit else None
        log_ret = np.zeros(n_assets)
        # The index counts the names tradable on both days; a name back from a suspension
        # moves on its own (the index of the day leaves it out).
        free = counted & ~locked
        # Locked names sit exactly on the limit-down price (the fill model's "locked" test).
        locked_ret = float(detmath.log(1.0 - _CN_LIMIT)) if limit else float(detmath.log(0.9))
        log_ret[locked] = locked_ret
        resumed = live & was_suspended
        log_ret[resumed] = np.clip(
            float(detmath.log(1.0 + target)) + raw[resumed], lower or -1.0, upper or 1.0
        )
        if n_counted and free.any():
            # The free names carry what the locked ones leave of the index move.
            n_locked_counted = int((locked & counted).sum())
            rest = (target * n_counted - n_locked_counted * (math.exp(locked_ret) - 1.0)) / int(
                free.sum()
            )
            log_ret[free] = _solve_shift(rest, raw[free], lower, upper)
        new_close = close * detmath.exp(log_ret)
        new_close[suspended] = close[suspended]
        if limit:
            new_close[locked] = close[locked] * (1.0 - _CN_LIMIT)
        gap_share = day_rng.uniform(0.2, 0.6, n_assets)
        open_price = close * detmath.exp(gap_share * log_ret)
        open_price[locked] = new_close[locked]
        open_price[suspended] = close[suspended]
        stress_volume = volume * (1.0 + 4.0 * abs(float(target)))
        stress_volume = np.where(locked, stress_volume * 0.05, stress_volume)
        day_built = _bridge_day(
            day_rng, day=day, market=market, symbols=history.symbols, prev_close=close,
            open_price=open_price, close_price=new_close, tradable=live, locked=locked,
            daily_volume=stress_volume, range_sd=0.6 * max(abs(float(target)), 0.01),
            source=source,
        )  # fmt: skip
        built.append((day, day_built))
        close = new_close
        was_suspended = suspended
    return built


def _anchored_returns(
    rng: np.random.Generator, days: Sequence[date], anchors: dict[date, float], noise: float
) -> np.ndarray:
    """Daily index returns whose level hits every anchor exactly (bridge noise in between).

    The first anchor is the level at the close *before* ``days[0]``.
    """
    keys = sorted(anchors)
    positions = {d: i for i, d in enumerate(days)}
    levels = np.full(len(days), np.nan)
    for day in keys[1:]:
        if day not in positions:
            raise ValueError(f"anchor {day} is not a stress day")
        levels[positions[day]] = float(detmath.log(anchors[day]))
    known = [(-1, float(detmath.log(anchors[keys[0]])))] + [
        (positions[d], float(detmath.log(anchors[d]))) for d in keys[1:]
    ]
    log_level = np.empty(len(days))
    for (i0, v0), (i1, v1) in itertools.pairwise(known):
        span = i1 - i0
        steps = rng.standard_normal(span) * noise
        walk = np.cumsum(steps)
        for k in range(1, span + 1):
            w = k / span
            log_level[i0 + k] = v0 + w * (v1 - v0) + walk[k - 1] - w * walk[-1]
    last_known = known[-1][0]
    if last_known < len(days) - 1:
        tail = np.cumsum(rng.standard_normal(len(days) - 1 - last_known) * noise)
        log_level[last_known + 1 :] = known[-1][1] + tail
    previous = np.concatenate([[known[0][1]], log_level[:-1]])
    return detmath.exp(log_level - previous) - 1.0


# The SSE Composite, 2015 (close unless said; index points).
_SSE_2015 = {
    date(2015, 6, 12): 5178.19,  # the intraday high of the bubble (close 5166.35)
    date(2015, 6, 19): 4478.36,
    date(2015, 6, 25): 4527.78,
    date(2015, 6, 26): 4192.87,
    date(2015, 7, 2): 3912.77,
    date(2015, 7, 3): 3686.92,
    date(2015, 7, 6): 3775.91,
    date(2015, 7, 7): 3727.12,
    date(2015, 7, 8): 3507.19,
    date(2015, 7, 9): 3709.33,
    date(2015, 7, 24): 4070.91,
    date(2015, 7, 27): 3725.56,
    date(2015, 8, 17): 3993.67,
    date(2015, 8, 18): 3748.16,
    date(2015, 8, 21): 3507.74,
    date(2015, 8, 24): 3209.91,
    date(2015, 8, 25): 2964.97,
    date(2015, 8, 26): 2850.71,  # the late-August low (intraday; close 2927.29)
    date(2015, 9, 30): 3052.78,
}
_SSE_LOCKED = {
    date(2015, 6, 26): 0.5,
    date(2015, 7, 2): 0.35,
    date(2015, 7, 3): 0.5,
    date(2015, 7, 6): 0.5,
    date(2015, 7, 7): 0.5,
    date(2015, 7, 8): 0.4,
    date(2015, 7, 27): 0.5,
    date(2015, 8, 24): 0.7,
    date(2015, 8, 25): 0.6,
}
_SSE_SUSPENDED = {
    date(2015, 7, 6): 0.2,
    date(2015, 7, 7): 0.35,
    date(2015, 7, 8): 0.5,
    date(2015, 7, 9): 0.5,
    date(2015, 7, 10): 0.45,
    date(2015, 7, 13): 0.4,
    date(2015, 7, 14): 0.3,
    date(2015, 7, 15): 0.2,
    date(2015, 7, 16): 0.1,
}
_CN_CRASH_FACTS = (
    "SSE Composite 5178 (intraday high) on 2015-06-12 to 3507 (close) on 2015-07-08: -32%",
    "a second leg to about 2850 on 2015-08-26 (2015-08-24 'Black Monday' -8.5%, 08-25 -7.6%)",
    "runs of limit-down days: on 2015-06-26 and 2015-07-03..07-08 about half the A-shares "
    "closed at the -10% limit, a locked limit nobody could sell into",
    "mass suspensions: about half of all listed A-shares suspended themselves by 2015-07-08",
    "main-board price limit +/-10% of the previous close, T+1, lots of 100 shares",
)


def _cn_crash_2015(size: str, seed: int, data: Panel | None) -> Scenario:
    name = "cn-crash-2015"
    info = SCENARIOS[name]
    first_replay = date(2015, 7, 6) if size == "small" else date(2015, 6, 15)
    last_replay = date(2015, 7, 8) if size == "small" else date(2015, 8, 31)
    if data is not None:
        return _cn_crash_from_data(size, seed, data, first_replay, last_replay)
    history = _history(name, size, seed, "cn", date(2015, 6, 15))
    # The history ends 2015-06-12, the peak: its last close is the anchor's level.
    days = [d.date() for d in pd.bdate_range("2015-06-15", "2015-09-30")]
    returns = _anchored_returns(_rng(seed, name, 3), days, _SSE_2015, noise=0.012)
    source = f"scenario:{name}:synthetic:seed={seed}:size={size}"
    built = _calibrated_days(
        name, seed, history, days, returns, locked_share=_SSE_LOCKED,
        suspended_share=_SSE_SUSPENDED, idio_sd=0.02, source=source,
    )  # fmt: skip
    daily = _append_days(history, built, source)
    by_day = dict(built)
    replay = [d for d in days if first_replay <= d <= last_replay]
    all_days = [(s - pd.Timedelta(minutes=1)).date() for s in daily.index]
    start = all_days.index(replay[0])
    warmup = tuple(all_days[start - _WARMUP_DAYS : start])
    index = equal_weight_index(daily)
    moves = {d: float(index.iloc[all_days.index(d)] / index.iloc[all_days.index(d) - 1] - 1.0)
             for d in replay}  # fmt: skip
    stress = tuple(
        StressDay(
            day=d, minute=by_day[d].minute, crash=moves[d] < -0.05, note=f"index {moves[d]:+.2%}"
        )
        for d in replay
    )
    extra = {d: by_day[d].minute for d in warmup if d in by_day}
    return Scenario(
        name=name, title=info.title, market="cn", size=size, seed=seed, facts=info.facts,
        checks=info.checks, daily=daily, warmup=warmup, stress_days=stress, source="synthetic",
        history_spec=None, extra_minutes=extra,
    )  # fmt: skip


def _real_bars(name: str, data: Panel, needs: str) -> tuple[Panel, IntradayMarket | None]:
    """Return the daily panel of ``data`` and, for intraday bars, their sessions.

    Daily bars are used as they are; intraday bars (1 minute to 1 hour) are aggregated to a
    daily panel on the market's sessions (:func:`simulators.intraday_market.
    aggregate_sessions`), and each replayed day executes on the data's own bars of that day.
    """
    if data.market != "cn":
        raise DataSpecError(
            f"{name}: --data {data.source or ''} is market={data.market!r}; {needs} is "
            "China A-shares (market=cn, e.g. 'file:bars.csv;market=cn' or akshare:...)"
        )
    if data.freq == "1D":
        return data, None
    if is_daily_or_slower(data.freq) or data.freq not in FREQUENCY_STEPS:
        raise DataSpecError(
            f"{name}: --data must be daily bars or intraday bars (1 minute to 1 hour), got "
            f"freq={data.freq!r}"
        )
    try:
        market = aggregate_sessions(data)
    except ValueError as error:
        raise DataSpecError(f"{name}: {error}") from None
    return market.daily, market


def _session_days(daily: Panel) -> list[date]:
    return [(s - pd.Timedelta(minutes=1)).date() for s in daily.index]


def _span(days: Sequence[date], intraday: IntradayMarket | None) -> str:
    span = f"{days[0]}..{days[-1]}" if days else "no bars"
    if intraday is not None:
        span += f" ({len(days)} session(s) of {intraday.freq} bars)"
    return span


def _day_moves(daily: Panel) -> Callable[[int], float]:
    """Return ``row -> the equal-weight index move of daily row row`` (close to close)."""
    index = equal_weight_index(daily)
    return lambda row: float(index.iloc[row] / index.iloc[row - 1] - 1.0)


def _cn_crash_from_data(
    size: str, seed: int, data: Panel, first_replay: date, last_replay: date
) -> Scenario:
    name = "cn-crash-2015"
    info = SCENARIOS[name]
    daily_all, intraday = _real_bars(name, data, "the 2015 crash")
    all_days = _session_days(daily_all)
    if not all_days or all_days[0] > date(2015, 6, 1) or all_days[-1] < date(2015, 9, 1):
        raise DataSpecError(
            f"{name}: --data {data.source or ''} covers {_span(all_days, intraday)}; it must "
            "cover 2015-06-01..2015-09-01 (the crash and its second leg)"
        )
    stop = int(np.searchsorted(np.array(all_days, dtype="datetime64[D]"),
                               np.datetime64(date(2015, 9, 30)), side="right"))  # fmt: skip
    daily = daily_all.slice_bars(0, stop)
    all_days = all_days[:stop]
    replay = [d for d in all_days if first_replay <= d <= last_replay]
    if not replay:
        raise DataSpecError(f"{name}: --data has no trading day in {first_replay}..{last_replay}")
    start = all_days.index(replay[0])
    if start < _WARMUP_DAYS + 1:
        raise DataSpecError(f"{name}: --data has too little history before {replay[0]}")
    warmup = tuple(all_days[start - _WARMUP_DAYS : start])
    spec = SyntheticSpec(seed=_seed_int(np.random.SeedSequence(seed)), market="cn")

    def bars_of(row: int) -> Panel:
        # Intraday data: the day's own bars; daily data: minutes that aggregate to its bar.
        if intraday is not None:
            return intraday.row_bars(row)
        return generate_intraday(spec, daily, row)

    kind = "real daily bars" if intraday is None else f"real {intraday.freq} bars"
    day_move = _day_moves(daily)
    stress = []
    for d in replay:
        row = all_days.index(d)
        move = day_move(row)
        stress.append(
            StressDay(day=d, minute=bars_of(row), crash=move < -0.05,
                      note=f"index {move:+.2%} ({kind})")
        )  # fmt: skip
    extra = {} if intraday is None else {d: bars_of(all_days.index(d)) for d in warmup}
    execution = (
        "1-minute bars synthesised from the data's daily bars (simulators.synthetic."
        "generate_intraday: they aggregate exactly to each daily bar)"
        if intraday is None
        else f"the data's own {intraday.freq} bars of each day ({intraday.describe()})"
    )
    return Scenario(
        name=name, title=info.title, market="cn", size=size, seed=seed, facts=info.facts,
        checks=info.checks, daily=daily, warmup=warmup, stress_days=tuple(stress),
        source=data.source or "data", history_spec=spec if intraday is None else None,
        extra_minutes=extra, execution=execution, intraday=intraday,
    )  # fmt: skip


# --------------------------------------------------------------------------- shaped scenarios
def _shaped_scenario(
    name: str,
    size: str,
    seed: int,
    market: str,
    plans: Sequence[dict[str, object]],
    *,
    build_book: bool = False,
) -> Scenario:
    """Build a scenario of consecutive shaped days after a synthetic history.

    Each plan: ``day``, ``anchors``, optional ``halts``, ``idio_sd``, ``wick_sd``, ``crash``,
    ``feed_faults``, ``broker_faults``, ``force_regime``, ``note``.
    """
    info = SCENARIOS[name]
    first = plans[0]["day"]
    assert isinstance(first, date)
    history = _history(name, size, seed, market, first)
    rng_betas = _rng(seed, name, 4)
    betas = _betas(rng_betas, history.n_assets)
    close, volume = _last_state(history)
    source = f"scenario:{name}:synthetic:seed={seed}:size={size}"
    built: list[tuple[date, _Built]] = []
    stress: list[StressDay] = []
    for number, plan in enumerate(plans):
        day = plan["day"]
        assert isinstance(day, date)
        day_rng = _rng(seed, name, 5, number)
        day_built, windows = _shaped_day(
            day_rng, day=day, market=market, symbols=history.symbols, prev_close=close,
            betas=betas, daily_volume=volume * float(plan.get("volume", 1.0)),  # type: ignore[arg-type]
            anchors=plan["anchors"],  # type: ignore[arg-type]
            halts=plan.get("halts", ()),  # type: ignore[arg-type]
            idio_sd=float(plan.get("idio_sd", 0.0006)),  # type: ignore[arg-type]
            wick_sd=float(plan.get("wick_sd", 0.0004)),  # type: ignore[arg-type]
            source=source,
        )  # fmt: skip
        built.append((day, day_built))
        faults = plan.get("feed_faults", ())
        outages = tuple(
            FeedOutage(
                start=_stamp(market, day, *_clock(str(s))),
                end=_stamp(market, day, *_clock(str(e))),
                backup=bool(b),
            )
            for s, e, b in faults  # type: ignore[attr-defined]
        )
        broker = plan.get("broker_faults")
        stress.append(
            StressDay(
                day=day,
                minute=day_built.minute,
                halts=windows,
                feed_faults=outages,
                broker_faults=broker if isinstance(broker, BrokerFaultRates) else None,
                force_regime=plan.get("force_regime"),  # type: ignore[arg-type]
                crash=bool(plan.get("crash", False)),
                note=str(plan.get("note", "")),
            )
        )
        close = day_built.close
    daily = _append_days(history, built, source)
    all_days = [(s - pd.Timedelta(minutes=1)).date() for s in daily.index]
    start = all_days.index(stress[0].day)
    warmup = tuple(all_days[start - _WARMUP_DAYS : start])
    spec = _history_spec(
        name, size, seed, market,
        (pd.Timestamp(all_days[0])).date(), (pd.Timestamp(all_days[start - 1])).date(),
    )  # fmt: skip
    return Scenario(
        name=name, title=info.title, market=market, size=size, seed=seed, facts=info.facts,
        checks=info.checks, daily=daily, warmup=warmup, stress_days=tuple(stress),
        build_book=build_book, source="synthetic", history_spec=spec,
    )  # fmt: skip


def _log(move: float) -> float:
    return float(detmath.log(1.0 + move))


_CSI_FACTS = (
    "CSI 300 circuit breaker, in force 2016-01-04..01-07: a 5% move halts trading for 15 "
    "minutes, a 7% move closes the market for the day",
    "2016-01-04: the 5% level tripped at 13:13, trading resumed at 13:28, the 7% level "
    "tripped at 13:34 and closed the day (CSI 300 -7.02%)",
    "2016-01-07: the 5% level tripped at 09:42 (12 minutes after the open), trading resumed "
    "09:57, the 7% level closed the market at 09:59, about half an hour after the open "
    "(CSI 300 -7.21%); the mechanism was suspended that evening",
)


# The days the 7% level closed the market, and when (Asia/Shanghai).
_CSI_CLOSED = {date(2016, 1, 4): (13, 34), date(2016, 1, 7): (9, 59)}


def _cn_circuit_breaker_2016(size: str, seed: int, data: Panel | None) -> Scenario:
    if data is not None and data.freq != "1D":
        return _cn_breaker_from_data(size, seed, data)
    # Daily bars cannot show a halt: the synthetic days are replayed (and say so).
    d4, d5, d6, d7 = (date(2016, 1, n) for n in (4, 5, 6, 7))
    plans = [
        {
            "day": d4, "crash": True, "volume": 1.5, "note": "5% at 13:13, 7% at 13:34",
            "anchors": [("09:30", _log(-0.012)), ("11:30", _log(-0.025)),
                        ("13:12", _log(-0.048)), ("13:13", _log(-0.051)),
                        ("13:33", _log(-0.068)), ("13:34", _log(-0.0702)),
                        ("15:00", _log(-0.0702))],
            "halts": [("13:13", "13:28"), ("13:34", "close")],
        },
        {"day": d5, "note": "-0.26%",
         "anchors": [("09:30", _log(-0.01)), ("15:00", _log(-0.0026))]},
        {"day": d6, "note": "+1.75%",
         "anchors": [("09:30", _log(0.002)), ("15:00", _log(0.0175))]},
        {
            "day": d7, "crash": True, "volume": 1.5, "note": "5% at 09:42, 7% at 09:59",
            "anchors": [("09:30", _log(-0.015)), ("09:41", _log(-0.048)),
                        ("09:42", _log(-0.0505)), ("09:58", _log(-0.068)),
                        ("09:59", _log(-0.0721)), ("15:00", _log(-0.0721))],
            "halts": [("09:42", "09:57"), ("09:59", "close")],
        },
    ]  # fmt: skip
    scenario = _shaped_scenario("cn-circuit-breaker-2016", size, seed, "cn", plans)
    if data is None:
        return scenario
    return replace(
        scenario,
        execution=f"{_SYNTHETIC_EXECUTION}: --data {data.source or ''} has daily bars, which "
        "cannot show a halt; the breaker replays real data from intraday bars (1 minute to "
        "1 hour) only",
    )


def _halt_label(halt: HaltWindow | DataHalt) -> str:
    """Return ``HH:MM-HH:MM`` (``HH:MM-close`` for a halt to the session close)."""
    end = "close" if halt.closes_session else halt.end.strftime("%H:%M")
    return f"{halt.start.strftime('%H:%M')}-{end}"


def _cn_breaker_from_data(size: str, seed: int, data: Panel) -> Scenario:
    """Replay the breaker sessions of real intraday ``data`` with the halts found in its bars.

    The stress days are the sessions of 2016-01-04..01-07 in the data (the breaker sessions
    01-04 and 01-07 must be there), after three warm-up sessions and the close before them;
    each executes on the data's own bars. The halts are the ones the bars show
    (:func:`simulators.session_halts.find_halts`), not the published times; the published
    closing time of each breaker day is kept beside them (``published_close_halt``) so the
    halt check can say when the data do not show it.
    """
    name = "cn-circuit-breaker-2016"
    info = SCENARIOS[name]
    daily_all, intraday = _real_bars(name, data, "the 2016 circuit breaker")
    assert intraday is not None  # daily data replays the synthetic days
    all_days = _session_days(daily_all)
    first, last = min(_CSI_CLOSED), max(_CSI_CLOSED)
    missing = [d.isoformat() for d in sorted(_CSI_CLOSED) if d not in all_days]
    if missing:
        raise DataSpecError(
            f"{name}: --data {data.source or ''} covers {_span(all_days, intraday)} and lacks "
            f"the breaker session(s) {', '.join(missing)}; it must hold the sessions "
            f"{first}..{last} (the 7% breaker closed the market on {first} and {last}) and "
            f"{_WARMUP_DAYS + 1} sessions before {first}"
        )
    start = all_days.index(first)
    if start < _WARMUP_DAYS + 1:
        raise DataSpecError(
            f"{name}: --data {data.source or ''} covers {_span(all_days, intraday)}; it needs "
            f"{_WARMUP_DAYS + 1} sessions before {first} ({_WARMUP_DAYS} warm-up days and the "
            f"close before them), it has {start}"
        )
    stop = all_days.index(last) + 1
    daily = daily_all.slice_bars(0, stop)
    all_days = all_days[:stop]
    warmup = tuple(all_days[start - _WARMUP_DAYS : start])
    day_move = _day_moves(daily)
    stress = []
    for row in range(start, stop):
        day = all_days[row]
        bars = intraday.row_bars(row)
        found = find_halts(bars)
        halts = tuple(
            HaltWindow(
                start=h.start.to_pydatetime(), end=h.end.to_pydatetime(),
                reason=f"exchange halt {_halt_label(h)} from the data: {h.evidence}",
                source="data", closes_session=h.closes_session,
            )
            for h in found
        )  # fmt: skip
        published = None
        if day in _CSI_CLOSED:
            published = _stamp("cn", day, *_CSI_CLOSED[day])
        move = day_move(row)
        shown = ", ".join(_halt_label(w) for w in halts) or "none"
        note = f"index {move:+.2%} (real {intraday.freq} bars); halts in the data: {shown}"
        if published is not None:
            note += f" (published: 7% breaker closed the market at {published.strftime('%H:%M')})"
        stress.append(
            StressDay(day=day, minute=bars, halts=halts, published_close_halt=published,
                      crash=move < -0.05, note=note)
        )  # fmt: skip
    extra = {d: intraday.row_bars(all_days.index(d)) for d in warmup}
    return Scenario(
        name=name, title=info.title, market="cn", size=size, seed=seed, facts=info.facts,
        checks=info.checks, daily=daily, warmup=warmup, stress_days=tuple(stress),
        source=data.source or "data", extra_minutes=extra, intraday=intraday,
        execution=f"the data's own {intraday.freq} bars of each day, with the exchange halts "
        f"found in them ({intraday.describe()})",
    )  # fmt: skip


_FLASH_FACTS = (
    "2010-05-06 flash crash: the Dow was already down about 2.8% by 14:32 ET",
    "it fell to -9.2% from the previous close at 14:47 (about 6.5% in 15 minutes)",
    "and recovered most of it within about 20 minutes (by 15:07), closing -3.2%",
)


def _us_flash_crash_2010(size: str, seed: int, data: Panel | None) -> Scenario:
    del data
    plans = [
        {
            "day": date(2010, 5, 6), "crash": True, "volume": 2.0,
            "note": "V: -9.2% at 14:47, back within ~20 minutes",
            "anchors": [("09:30", _log(0.001)), ("12:00", _log(-0.012)),
                        ("14:32", _log(-0.028)), ("14:42", _log(-0.06)),
                        ("14:47", _log(-0.092)), ("14:55", _log(-0.05)),
                        ("15:07", _log(-0.032)), ("16:00", _log(-0.032))],
        }
    ]  # fmt: skip
    return _shaped_scenario("us-flash-crash-2010", size, seed, "us", plans)


# The S&P 500 closes, 2020-02-19 .. 03-23 (points).
_SPX_2020 = {
    date(2020, 2, 19): 3386.15, date(2020, 2, 20): 3373.23, date(2020, 2, 21): 3337.75,
    date(2020, 2, 24): 3225.89, date(2020, 2, 25): 3128.21, date(2020, 2, 26): 3116.39,
    date(2020, 2, 27): 2978.76, date(2020, 2, 28): 2954.22, date(2020, 3, 2): 3090.23,
    date(2020, 3, 3): 3003.37, date(2020, 3, 4): 3130.12, date(2020, 3, 5): 3023.94,
    date(2020, 3, 6): 2972.37, date(2020, 3, 9): 2746.56, date(2020, 3, 10): 2882.23,
    date(2020, 3, 11): 2741.38, date(2020, 3, 12): 2480.64, date(2020, 3, 13): 2711.02,
    date(2020, 3, 16): 2386.13, date(2020, 3, 17): 2529.19, date(2020, 3, 18): 2398.10,
    date(2020, 3, 19): 2409.39, date(2020, 3, 20): 2304.92, date(2020, 3, 23): 2237.40,
}  # fmt: skip
# Market-wide Level 1 halts (S&P 500 down 7%: 15 minutes): trigger time per day.
_SPX_HALTS = {
    date(2020, 3, 9): "09:34",
    date(2020, 3, 12): "09:35",
    date(2020, 3, 16): "09:31",
    date(2020, 3, 18): "12:56",
}
_COVID_FACTS = (
    "S&P 500 3386.15 on 2020-02-19 to 2237.40 on 2020-03-23: -33.9% in 23 trading days",
    "market-wide Level 1 circuit breaker (S&P 500 down 7% before 15:25: 15-minute halt) on "
    "2020-03-09 (09:34), 03-12 (09:35), 03-16 (at the open) and 03-18 (12:56)",
    "daily closes: 03-09 -7.6%, 03-12 -9.5%, 03-16 -12.0%, 03-18 -5.2%",
)


def _covid_crash_2020(size: str, seed: int, data: Panel | None) -> Scenario:
    del data
    days = sorted(_SPX_2020)[1:]
    replay = (
        [d for d in days if date(2020, 3, 9) <= d <= date(2020, 3, 12)] if size == "small" else days
    )
    plans: list[dict[str, object]] = []
    for day in days:
        before = (
            _SPX_2020[days[days.index(day) - 1]] if day != days[0] else _SPX_2020[date(2020, 2, 19)]
        )
        move = _SPX_2020[day] / before - 1.0
        if day in _SPX_HALTS:
            trigger = _SPX_HALTS[day]
            hour, minute = _clock(trigger)
            end = f"{hour + (minute + 15) // 60:02d}:{(minute + 15) % 60:02d}"
            just_before = f"{hour:02d}:{minute - 1:02d}" if minute > 31 or hour > 9 else "09:30"
            anchors = [("09:30", _log(-0.03 if trigger.startswith("09") else -0.01))]
            if just_before != "09:30":
                anchors.append((just_before, _log(-0.068)))
            anchors += [(trigger, _log(-0.0705)), (end, _log(-0.0705)), ("16:00", _log(move))]
            plan: dict[str, object] = {
                "day": day, "crash": True, "volume": 2.0, "anchors": anchors,
                "halts": [(trigger, end)], "note": f"{move:+.2%}, Level 1 halt at {trigger}",
            }  # fmt: skip
        else:
            plan = {
                "day": day, "volume": 1.5, "crash": move < -0.05,
                "anchors": [("09:30", _log(0.4 * move)), ("16:00", _log(move))],
                "idio_sd": 0.0008, "note": f"{move:+.2%}",
            }  # fmt: skip
        plans.append(plan)
    scenario = _shaped_scenario("covid-crash-2020", size, seed, "us", plans)
    keep = tuple(s for s in scenario.stress_days if s.day in replay)
    all_days = [(s - pd.Timedelta(minutes=1)).date() for s in scenario.daily.index]
    start = all_days.index(keep[0].day)
    warmup = tuple(all_days[start - _WARMUP_DAYS : start])
    extra = {s.day: s.minute for s in scenario.stress_days if s.day in warmup}
    # The daily panel keeps the whole crash; only the kept days are replayed.
    stop = all_days.index(keep[-1].day) + 1
    return Scenario(
        name=scenario.name, title=scenario.title, market="us", size=size, seed=seed,
        facts=scenario.facts, checks=scenario.checks,
        daily=scenario.daily if size == "full" else scenario.daily.slice_bars(0, stop),
        warmup=warmup, stress_days=keep, source="synthetic",
        history_spec=scenario.history_spec, extra_minutes=extra,
    )  # fmt: skip


_GAP_FACTS = (
    "a hypothetical overnight gap: every name opens about 15% below its previous close "
    "(for scale: the Dow fell 22.6% on 1987-10-19, in one session)",
    "no minute of the day trades above the open by more than the day's noise",
)


def _black_swan_gap(size: str, seed: int, data: Panel | None) -> Scenario:
    del data
    plans = [
        {
            "day": date(2024, 3, 4), "crash": True, "volume": 3.0, "note": "-15% overnight gap",
            "anchors": [("09:30", _log(-0.15)), ("11:00", _log(-0.165)), ("16:00", _log(-0.16))],
        }
    ]  # fmt: skip
    return _shaped_scenario("black-swan-gap", size, seed, "us", plans)


_OUTAGE_FACTS = (
    "the market feed goes stale 11:00-11:30 on the first day (no backup source: pause) and "
    "11:00-11:30 on the second (a backup source is configured: switch to it)",
    "the lab must place no order on stale prices, and must say so (an incident)",
)


def _data_outage(size: str, seed: int, data: Panel | None) -> Scenario:
    del data
    plans = [
        {
            "day": date(2024, 5, 6), "note": "feed stale 11:00-11:30, no backup",
            "anchors": [("09:30", 0.0), ("11:00", _log(-0.01)), ("11:30", _log(-0.02)),
                        ("16:00", _log(-0.005))],
            "feed_faults": [("11:00", "11:30", False)],
        },
        {
            "day": date(2024, 5, 7), "note": "feed stale 11:00-11:30, backup source on",
            "anchors": [("09:30", 0.0), ("16:00", _log(0.004))],
            "feed_faults": [("11:00", "11:30", True)],
        },
    ]  # fmt: skip
    return _shaped_scenario("data-outage", size, seed, "us", plans, build_book=True)


_BROKER_FACTS = (
    "30% of broker calls are rejected and 20% time out (half of the timed-out orders did fill "
    "at the broker: a blind resend would fill twice)",
    "the lab retries with back-off (1, 2, 4 minutes) under one idempotency key per child "
    "order, and after the retries writes a manual-order instruction (symbol, side, quantity, "
    "limit price)",
)


def _broker_faults(size: str, seed: int, data: Panel | None) -> Scenario:
    del data
    faults = BrokerFaultRates(reject_rate=0.3, timeout_rate=0.2, seed=seed)
    plans = [
        {
            "day": date(2024, 6, 3), "note": "30% rejects, 20% timeouts",
            "anchors": [("09:30", 0.0), ("16:00", _log(0.002))], "broker_faults": faults,
        }
    ]  # fmt: skip
    return _shaped_scenario("broker-faults", size, seed, "us", plans, build_book=True)


_HIGH_VOL_FACTS = (
    "intraday volatility about five times a normal day (minute-return standard deviation)",
    "the day is classified high-volatility: the governor must tighten the size limits",
)


def _high_vol_day(size: str, seed: int, data: Panel | None) -> Scenario:
    del data
    rng = _rng(seed, "high-vol-day", 6)
    # A zig-zag market: large swings both ways, ending near flat.
    times = ["09:30", "10:00", "10:30", "11:00", "11:30", "12:00", "12:30", "13:00", "13:30",
             "14:00", "14:30", "15:00", "15:30", "16:00"]  # fmt: skip
    swings = np.cumsum(rng.choice([-1.0, 1.0], size=len(times)) * 0.02)
    # Pinned to open and close flat: the day's move is the swings, not a trend.
    swings -= swings[0] + np.linspace(0.0, 1.0, len(times)) * (swings[-1] - swings[0])
    plans = [
        {
            "day": date(2024, 8, 5), "force_regime": "high_vol", "volume": 2.5,
            "idio_sd": 0.004, "wick_sd": 0.002, "note": "intraday volatility ~5x normal",
            "anchors": list(zip(times, swings.tolist(), strict=True)),
        }
    ]  # fmt: skip
    return _shaped_scenario("high-vol-day", size, seed, "us", plans)


# --------------------------------------------------------------------------- registry
_CRASH_CHECKS = (
    "circuit_breaker_froze_within_3_min",
    "daily_loss_within_limit",
    "limits_tripped",
    "ledger_verify",
)
SCENARIOS: dict[str, ScenarioInfo] = {
    info.name: info
    for info in (
        ScenarioInfo(
            name="cn-crash-2015", title="China A-share crash, June-August 2015", market="cn",
            facts=_CN_CRASH_FACTS, checks=_CRASH_CHECKS, builder=_cn_crash_2015,
        ),
        ScenarioInfo(
            name="cn-circuit-breaker-2016", title="CSI 300 circuit breaker, 4 and 7 January 2016",
            market="cn", facts=_CSI_FACTS,
            checks=(*_CRASH_CHECKS[:3], "exchange_halt_respected", "ledger_verify"),
            builder=_cn_circuit_breaker_2016,
        ),
        ScenarioInfo(
            name="us-flash-crash-2010", title="US flash crash, 6 May 2010", market="us",
            facts=_FLASH_FACTS, checks=_CRASH_CHECKS, builder=_us_flash_crash_2010,
        ),
        ScenarioInfo(
            name="covid-crash-2020", title="COVID-19 crash, February-March 2020", market="us",
            facts=_COVID_FACTS,
            checks=(*_CRASH_CHECKS[:3], "exchange_halt_respected", "ledger_verify"),
            builder=_covid_crash_2020,
        ),
        ScenarioInfo(
            name="black-swan-gap", title="Overnight black-swan gap of -15%", market="us",
            facts=_GAP_FACTS, checks=_CRASH_CHECKS, builder=_black_swan_gap,
        ),
        ScenarioInfo(
            name="data-outage", title="Market-data feed outage mid-session", market="us",
            facts=_OUTAGE_FACTS, checks=("no_order_on_stale_data", "ledger_verify"),
            builder=_data_outage,
        ),
        ScenarioInfo(
            name="broker-faults", title="Broker API rejects and timeouts", market="us",
            facts=_BROKER_FACTS,
            checks=("no_duplicate_fill", "manual_order_written", "ledger_verify"),
            builder=_broker_faults,
        ),
        ScenarioInfo(
            name="high-vol-day", title="High-volatility day", market="us", facts=_HIGH_VOL_FACTS,
            checks=("governor_tightened", "daily_loss_within_limit", "ledger_verify"),
            builder=_high_vol_day,
        ),
    )
}  # fmt: skip


def list_scenarios() -> list[ScenarioInfo]:
    """Return the registry's scenarios in their documented order."""
    return list(SCENARIOS.values())


def build_scenario(
    name: str, *, size: str = "full", seed: int = 0, data: Panel | None = None
) -> Scenario:
    """Build scenario ``name`` at ``size`` (``small`` for tests, ``full``) from ``seed``.

    ``data`` replaces the synthetic market where the scenario can replay real data (module
    docstring): daily or intraday bars for ``cn-crash-2015``, intraday bars for
    ``cn-circuit-breaker-2016`` (which replays its synthetic days on daily bars, saying so in
    ``Scenario.execution``); other scenarios ignore it.

    Raises
    ------
    ConfigError
        On an unknown scenario name or size (naming the known ones).
    DataSpecError
        If ``data`` does not cover what the scenario needs.
    """
    if name not in SCENARIOS:
        raise ConfigError(
            f"unknown stress scenario {name!r}; known scenarios: {', '.join(SCENARIOS)}"
        )
    if size not in SIZES:
        raise ConfigError(f"stress scenario size {size!r} is unknown; expected one of {SIZES}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"stress scenario seed must be a non-negative integer, got {seed!r}")
    return SCENARIOS[name].builder(size, seed, data)
