"""Adapters the tests bring to show that each protection's check can fail.

Production has no switch to turn a protection off (``arena/conditions.py``): a control that
needs "the same day without protection X" plugs in one of these in place of the adapter
``arena.conditions.wire_day`` made, through :func:`wiring_with`. Each stands for a real
failure: a governor that misses its rule, a broker API without order lookup by key, a client
that never gives up, a feed that goes stale without saying so, an exchange halt nobody told
the lab about.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from arena.conditions import (
    DayAdapters,
    DayConditions,
    FeedView,
    Halt,
    MarketConditions,
    wire_day,
)
from arena.gateway import BrokerFaults, FaultyGateway
from arena.market import Bar
from arena.risk import RiskEvent, RiskGovernor, RiskLimits


class NoBreakerGovernor(RiskGovernor):
    """A governor whose circuit breaker never watches the bars."""

    def on_bar(self, *args: Any, **kwargs: Any) -> tuple[RiskEvent, ...]:
        return ()


class NoLossStopGovernor(RiskGovernor):
    """A governor whose daily-loss stop never trips."""

    def on_equity(self, *args: Any, **kwargs: Any) -> tuple[RiskEvent, ...]:
        return ()


class NoBreakerNoStopGovernor(NoBreakerGovernor, NoLossStopGovernor):
    """Neither the breaker nor the daily-loss stop."""


class NoTighteningGovernor(RiskGovernor):
    """A governor that does not tighten its limits on a high-volatility day."""

    def tighten_for_regime(self, regime: str, now: datetime | str) -> RiskLimits:
        return self.active_limits


class BlindResendGateway(FaultyGateway):
    """A broker API the client cannot ask by key: every retry sends the order again."""

    def has_order(self, key: str) -> bool:
        return False


def patient_gateway(faults: BrokerFaults) -> FaultyGateway:
    """A client that keeps retrying and never hands a child to a person."""
    return FaultyGateway(replace(faults, max_retries=10**6))


@dataclass(frozen=True, slots=True)
class SilentlyStaleFeed:
    """A feed that delivers its stale bars without reporting the outage (no backup)."""

    inner: MarketConditions

    def halts_at(self, at: datetime) -> tuple[Halt, ...]:
        return self.inner.halts_at(at)

    def feed_at(
        self, at: datetime, bars: Mapping[str, Bar], last_good: Mapping[str, Bar]
    ) -> FeedView:
        view = self.inner.feed_at(at, bars, last_good)
        return FeedView(bars=view.bars, faults=tuple(f for f in view.faults if f.backup))


@dataclass(frozen=True, slots=True)
class UnannouncedHalts:
    """The exchange halts, but nobody tells the lab."""

    inner: MarketConditions

    def halts_at(self, at: datetime) -> tuple[Halt, ...]:
        return ()

    def feed_at(
        self, at: datetime, bars: Mapping[str, Bar], last_good: Mapping[str, Bar]
    ) -> FeedView:
        return self.inner.feed_at(at, bars, last_good)


def wired(
    conditions: DayConditions | None = None,
    *,
    governor: Callable[[RiskLimits, str], RiskGovernor] | None = None,
    gateway: type[FaultyGateway] | Callable[[BrokerFaults], FaultyGateway] | None = None,
    market: Callable[[MarketConditions], MarketConditions] | None = None,
) -> DayAdapters:
    """Return ``wire_day(conditions)`` with the given adapters in place of its own.

    ``gateway`` is applied to the day's broker faults (days without any keep the paper
    broker); ``market`` wraps the day's market conditions.
    """
    adapters = wire_day(conditions)
    if governor is not None:
        adapters = replace(adapters, governor=governor)
    faults = None if conditions is None else conditions.broker_faults
    if gateway is not None and faults is not None:
        adapters = replace(adapters, gateway=functools.partial(gateway, faults))
    if market is not None:
        adapters = replace(adapters, market=market(adapters.market))
    return adapters


def wiring_with(**replacements: Any) -> Callable[[DayConditions], DayAdapters]:
    """Return a stress-replay ``wiring`` that plugs ``replacements`` in (see :func:`wired`)."""
    return functools.partial(wired, **replacements)
