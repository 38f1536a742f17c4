"""The day's adapters: the broker gateways, the scheduled market conditions, the one wiring."""

from __future__ import annotations

import hashlib
import pickle
from datetime import UTC, date, datetime, timedelta

import pytest

from arena.conditions import (
    DayConditions,
    FeedFault,
    Halt,
    ScheduledMarket,
    wire_day,
)
from arena.gateway import BrokerFaults, FaultyGateway, SimulatedGateway
from arena.market import Bar
from arena.risk import RiskGovernor

OPEN = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


def _at(minute: int) -> datetime:
    return OPEN + timedelta(minutes=minute + 1)


def _bar(symbol: str, minute: int, close: float) -> Bar:
    return Bar(
        symbol=symbol, day=date(2024, 3, 5), at=_at(minute), open=close, high=close * 1.001,
        low=close * 0.999, close=close, volume=1e5, prev_close=100.0,
    )  # fmt: skip


def _u(seed: int, key: str, attempt: int, salt: str) -> float:
    # The draw as docs/execution.md writes it, computed here, not by the gateway.
    digest = hashlib.sha256(f"{seed}|{key}|{attempt}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def test_faulty_gateway_answers_follow_the_documented_draws() -> None:
    faults = BrokerFaults(reject_rate=0.3, timeout_rate=0.3, timeout_filled_share=0.5, seed=11)
    gateway = FaultyGateway(faults)
    seen = set()
    for n in range(200):
        key = f"acct-O{n:04d}-2024-03-05-S00"
        sent = gateway.send(key, 0)
        u = _u(11, key, 0, "send")
        expected = "reject" if u < 0.3 else "timeout" if u < 0.6 else "ok"
        assert sent.outcome == expected
        taken = expected == "ok" or (expected == "timeout" and _u(11, key, 0, "taken") < 0.5)
        assert sent.taken == taken and gateway.has_order(key) == taken
        seen.add((sent.outcome, sent.taken))
    assert seen == {("reject", False), ("timeout", False), ("timeout", True), ("ok", True)}


def test_simulated_gateway_accepts_every_send() -> None:
    gateway = SimulatedGateway()
    assert not gateway.has_order("k")
    assert all(gateway.send(f"k{n}", 0).outcome == "ok" for n in range(50))
    assert gateway.has_order("k0")


def test_wire_day_without_conditions_is_the_daily_arenas_calm_day() -> None:
    adapters = wire_day()
    assert isinstance(adapters.gateway(), SimulatedGateway)
    assert adapters.governor is RiskGovernor and adapters.force_regime is None
    bars = {"AAA": _bar("AAA", 0, 100.0)}
    assert adapters.market.halts_at(_at(0)) == ()
    view = adapters.market.feed_at(_at(0), bars, {})
    assert view.bars is bars and not view.stale and not view.faults


def test_wire_day_makes_a_fresh_gateway_for_each_account_day() -> None:
    adapters = wire_day(DayConditions(broker_faults=BrokerFaults(timeout_rate=1.0, seed=1)))
    first, second = adapters.gateway(), adapters.gateway()
    assert isinstance(first, FaultyGateway) and first is not second
    key = next(f"k{n}" for n in range(100) if first.send(f"k{n}", 0).taken)
    assert first.has_order(key) and not second.has_order(key)
    assert pickle.loads(pickle.dumps(adapters)).gateway().send(key, 0).taken


def test_scheduled_market_halts_and_stale_feeds_inside_their_windows_only() -> None:
    halt = Halt(start=_at(9), end=_at(19), reason="level 1")
    stale = FeedFault(start=_at(4), end=_at(9), symbols=("AAA",))
    backup = FeedFault(start=_at(29), end=_at(39), backup=True)
    market = ScheduledMarket(halts=(halt,), feed_faults=(stale, backup))
    assert market.halts_at(_at(9)) == () and market.halts_at(_at(10)) == (halt,)
    assert market.halts_at(_at(19)) == (halt,) and market.halts_at(_at(20)) == ()
    last_good = {"AAA": _bar("AAA", 4, 101.0)}
    bars = {"AAA": _bar("AAA", 5, 95.0), "BBB": _bar("BBB", 5, 50.0)}
    view = market.feed_at(_at(5), bars, last_good)
    assert view.stale == {"AAA"} and view.faults == (stale,)
    assert view.bars["BBB"] is bars["BBB"]
    repeated = view.bars["AAA"]
    assert (repeated.open, repeated.high, repeated.low, repeated.close) == (101.0,) * 4
    assert repeated.at == _at(5)
    on_backup = market.feed_at(_at(30), bars, last_good)
    assert on_backup.bars is bars and not on_backup.stale and on_backup.faults == (backup,)
    assert market.feed_at(_at(10), bars, last_good).faults == ()


def test_day_conditions_reject_windows_without_timezone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Halt(start=datetime(2024, 3, 5, 14, 30), end=_at(3), reason="x")
    with pytest.raises(ValueError, match="before end"):
        FeedFault(start=_at(5), end=_at(5))
