"""What a day throws at the accounts, and the one place it is wired into the executor.

Pure Python (no Ray, no MLflow). A day's conditions are data (:class:`DayConditions`:
exchange halts, stale feeds, broker faults, a forced regime; the stress scenarios build them,
the daily arena has none). :func:`wire_day` turns them into the adapters the executor
(:func:`arena.intraday.execute_day`) and the trade stage (:func:`arena.trade.trade_day`)
consult (:class:`DayAdapters`):

* ``market``: a :class:`MarketConditions`, asked at every minute for the halts in force and
  for the feed the lab receives (:class:`FeedView`: the bars, the symbols the feed reports
  stale, the outages in force). :class:`ScheduledMarket` plays the day's :class:`Halt` and
  :class:`FeedFault` windows.
* ``gateway``: makes the account-day's :class:`arena.gateway.BrokerGateway`
  (:class:`~arena.gateway.SimulatedGateway`, or :class:`~arena.gateway.FaultyGateway` with the
  day's :class:`~arena.gateway.BrokerFaults`).
* ``governor``: makes the account's :class:`arena.risk.RiskGovernor`.
* ``force_regime``: the regime the governor tightens for (else the plan's).

Every protection (circuit breaker, daily-loss stop, stale-data guard, idempotent retries,
manual orders, high-volatility tightening) always runs: there is nothing to switch off. A
check that needs a day where a protection fails brings its own adapter (the stress tests'
``tests/arena/fault_adapters.py``), plugged in by replacing a field of ``wire_day``'s result.
The daily arena, the stress replay and the tests all go through :func:`wire_day`.

A window ``[start, end)`` contains the minute bar stamped ``at`` (its close) when
``start < at <= end``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Protocol

from arena.gateway import BrokerFaults, BrokerGateway, FaultyGateway, SimulatedGateway
from arena.market import Bar
from arena.risk import RiskGovernor, RiskLimits

__all__ = [
    "DayAdapters",
    "DayConditions",
    "FeedFault",
    "FeedView",
    "Halt",
    "MarketConditions",
    "ScheduledMarket",
    "wire_day",
]


def aware(value: datetime, what: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")


def _window(start: datetime, end: datetime, what: str) -> None:
    aware(start, f"{what}.start")
    aware(end, f"{what}.end")
    if not start < end:
        raise ValueError(f"{what}: start {start.isoformat()} must be before end {end.isoformat()}")


def _inside(at: datetime, start: datetime, end: datetime) -> bool:
    # A bar stamped at its close `at` covers the minute (at - 1 min, at]: it lies in the window
    # [start, end) when that minute does (for minute-aligned windows).
    return start < at <= end


# --------------------------------------------------------------------------- the data
@dataclass(frozen=True, slots=True)
class Halt:
    """An exchange-wide trading halt over ``[start, end)``: no order fills inside it."""

    start: datetime
    end: datetime
    reason: str

    def __post_init__(self) -> None:
        _window(self.start, self.end, "Halt")
        if not self.reason:
            raise ValueError("Halt.reason must say why the exchange halted")


@dataclass(frozen=True, slots=True)
class FeedFault:
    """The data feed is stale over ``[start, end)`` for ``symbols`` (``None``: all of them).

    With ``backup`` a backup source is configured: the lab trades on the backup's bars (the
    same prices), flagged by a ``backup_source`` incident.
    """

    start: datetime
    end: datetime
    symbols: tuple[str, ...] | None = None
    backup: bool = False

    def __post_init__(self) -> None:
        _window(self.start, self.end, "FeedFault")
        if self.symbols is not None:
            object.__setattr__(self, "symbols", tuple(str(s) for s in self.symbols))
            if not self.symbols:
                raise ValueError("FeedFault.symbols must name at least one symbol, or be None")

    def covers(self, symbol: str) -> bool:
        """Return whether ``symbol``'s feed is affected."""
        return self.symbols is None or symbol in self.symbols


@dataclass(frozen=True, slots=True)
class DayConditions:
    """What the day throws at the accounts (the daily arena: none of it)."""

    halts: tuple[Halt, ...] = ()
    feed_faults: tuple[FeedFault, ...] = ()
    broker_faults: BrokerFaults | None = None
    force_regime: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "halts", tuple(self.halts))
        object.__setattr__(self, "feed_faults", tuple(self.feed_faults))


# --------------------------------------------------------------------------- the adapters
@dataclass(frozen=True, slots=True)
class FeedView:
    """The feed the lab receives at one minute.

    ``bars``: one bar per symbol, as delivered (a stale symbol's is its last good bar
    repeated); ``stale``: the symbols the feed reports stale (the executor places no order on
    them and leaves their prices out of the governor's watch); ``faults``: the outages in
    force (each announced once as an incident).
    """

    bars: Mapping[str, Bar]
    stale: frozenset[str] = frozenset()
    faults: tuple[FeedFault, ...] = ()


class MarketConditions(Protocol):
    """The market's state the executor consults at every minute."""

    def halts_at(self, at: datetime) -> tuple[Halt, ...]:
        """Return the exchange halts the minute bar stamped ``at`` lies in."""
        ...

    def feed_at(
        self, at: datetime, bars: Mapping[str, Bar], last_good: Mapping[str, Bar]
    ) -> FeedView:
        """Return the feed at ``at``: ``bars`` are the market's, ``last_good`` the lab's."""
        ...


def stale_bar(true: Bar, last_good: Bar | None) -> Bar:
    """Return what a stale feed delivers: the last good bar repeated (flat at its close)."""
    if last_good is not None:
        price, volume = last_good.close, last_good.volume
    elif true.prev_close is not None:
        price, volume = true.prev_close, true.volume if math.isfinite(true.volume) else 0.0
    else:
        return true
    return Bar(
        symbol=true.symbol,
        day=true.day,
        at=true.at,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=volume,
        tradable=True,
        prev_close=true.prev_close,
    )


@dataclass(frozen=True, slots=True)
class ScheduledMarket:
    """The day's halt and feed-fault windows, played minute by minute (:class:`MarketConditions`).

    A feed fault without a backup delivers the last good bar of the symbols it covers and
    reports them stale; with a backup the bars are the market's (the backup has the same
    prices) and only the outage is reported.
    """

    halts: tuple[Halt, ...] = ()
    feed_faults: tuple[FeedFault, ...] = ()

    def halts_at(self, at: datetime) -> tuple[Halt, ...]:
        """Return the halts whose window contains ``at``."""
        return tuple(h for h in self.halts if _inside(at, h.start, h.end))

    def feed_at(
        self, at: datetime, bars: Mapping[str, Bar], last_good: Mapping[str, Bar]
    ) -> FeedView:
        """Return the feed at ``at`` under the faults in force."""
        faults = tuple(f for f in self.feed_faults if _inside(at, f.start, f.end))
        if not faults:
            return FeedView(bars=bars)
        stale = frozenset(s for s in bars for f in faults if not f.backup and f.covers(s))
        if not stale:
            return FeedView(bars=bars, faults=faults)
        seen = {s: stale_bar(b, last_good.get(s)) if s in stale else b for s, b in bars.items()}
        return FeedView(bars=seen, stale=stale, faults=faults)


#: Makes an account's governor from its limits and its name.
GovernorFactory = Callable[[RiskLimits, str], RiskGovernor]


@dataclass(frozen=True, slots=True)
class DayAdapters:
    """The adapters of one day (module docstring); the default is the daily arena's."""

    market: MarketConditions = field(default_factory=ScheduledMarket)
    gateway: Callable[[], BrokerGateway] = SimulatedGateway
    governor: GovernorFactory = RiskGovernor
    force_regime: str | None = None


def wire_day(conditions: DayConditions | None = None) -> DayAdapters:
    """Return the adapters that play ``conditions`` (``None``: the daily arena's calm day)."""
    if conditions is None:
        return DayAdapters()
    faults = conditions.broker_faults
    return DayAdapters(
        market=ScheduledMarket(halts=conditions.halts, feed_faults=conditions.feed_faults),
        gateway=SimulatedGateway if faults is None else partial(FaultyGateway, faults),
        force_regime=conditions.force_regime,
    )
