"""The day's execution loop: every parent order of an account, minute by minute, causally.

Pure Python (no Ray, no MLflow). :func:`execute_day` walks the minutes of a
:class:`arena.market.DayMarket` once. At each minute ``t`` (bar stamped at its close):

1. **Windows.** The day's :class:`arena.conditions.MarketConditions` says which exchange
   halts are in force (they block every order) and what the feed delivers
   (:class:`arena.conditions.FeedView`): the stale-data guard places no order on a symbol the
   feed reports stale (a backup source keeps trading, flagged). Every protection always
   runs; the adapters come from :func:`arena.conditions.wire_day`.
2. **Orders.** Sells first, then buys, each in submission order: each parent is a
   :class:`arena.parent_orders.ParentExecution` fed this minute's bar, possibly *blocked*. A buy is
   blocked once the circuit breaker froze (from the minute after the trigger bar) or the
   daily-loss stop tripped. Each step's child order carries an idempotency key
   ``{order_id}-{day}-S{step}`` and goes through the account-day's
   :class:`arena.gateway.BrokerGateway`, which accepts it, rejects it or times out; a retry
   first asks the broker by key (see ``docs/execution.md``).
3. **Close of the minute.** The books are marked at the prices the lab sees (a stale symbol
   keeps its last good price), giving ``intraday_equity``; the governor sees the minute bar
   (:meth:`arena.risk.RiskGovernor.on_bar`) and the marked equity
   (:meth:`arena.risk.RiskGovernor.on_equity`). A daily-loss stop cancels the working sells,
   and every position gets one sell parent over the rest of the day that works all of it on
   every bar (one step: as fast as the fill model's participation cap allows).

Nothing at minute ``t`` reads a bar after ``t``: the schedule's horizon (the number of bars)
is fixed in advance, the bars' contents arrive one by one. Same inputs, same outcome: there
is no clock and no global random state (a faulty gateway draws from a hash of the key, the
attempt and the seed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from arena.book import AccountState, mark_to_market, start_day, submit_order
from arena.conditions import DayAdapters, FeedFault, Halt, aware, wire_day
from arena.events import REJECT_REASONS, FillEvent, Side
from arena.gateway import BrokerGateway
from arena.ledger import (
    Ledger,
    OrderRecord,
)
from arena.market import (
    Bar,
    DayMarket,
    MarketSnapshot,
)
from arena.money import (
    money_to_float,
    quantity_to_float,
)
from arena.orders import Order, OrderStatus
from arena.parent_orders import ParentExecution
from arena.risk import RiskGovernor
from arena.rules import BrokerRules

if TYPE_CHECKING:
    from arena.market import DayMarket

__all__ = [
    "INCIDENT_KINDS",
    "MANUAL_LIMIT_BAND",
    "ChildOrder",
    "FixedProtections",
    "Incident",
    "IntradayOutcome",
    "ManualOrder",
    "duplicate_keys",
    "execute_day",
    "idempotency_key",
]

INCIDENT_KINDS: tuple[str, ...] = (
    "stale_pause",
    "backup_source",
    "halt",
    "broker_reject",
    "broker_timeout",
    "retry",
    "duplicate_suppressed",
    "manual_order",
    "daily_loss_stop",
    "liquidation",
)
#: A manual order's limit price: the last price the lab saw, 1% through it (a buy pays up to
#: 1% more, a sell takes down to 1% less), inside the day's price limits where there are some.
MANUAL_LIMIT_BAND = 0.01


@dataclass(frozen=True, slots=True)
class Incident:
    """Something the executor met or did during the day (see :data:`INCIDENT_KINDS`)."""

    time: datetime
    kind: str
    symbol: str | None
    detail: str

    def __post_init__(self) -> None:
        aware(self.time, "Incident.time")
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"Incident.kind must be one of {INCIDENT_KINDS}, got {self.kind!r}")
        if not self.detail:
            raise ValueError("Incident.detail must say what happened")


@dataclass(frozen=True, slots=True)
class ManualOrder:
    """An instruction for a person: the child order the broker would not take after retries."""

    symbol: str
    side: str
    quantity: float
    limit_price: float
    idempotency_key: str
    reason: str

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"ManualOrder.side must be buy or sell, got {self.side!r}")
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"ManualOrder.quantity must be > 0, got {self.quantity!r}")
        if not (math.isfinite(self.limit_price) and self.limit_price > 0):
            raise ValueError(f"ManualOrder.limit_price must be > 0, got {self.limit_price!r}")


@dataclass(frozen=True, slots=True)
class ChildOrder:
    """One send of a child order to the (simulated) broker.

    ``outcome`` is ``ok``, ``reject``, ``timeout`` or ``resent_duplicate`` (a re-send of an
    order the broker already had, when the retry did not find it by key: it works twice).
    ``stale`` flags a send decided on a bar that was not the market's (only possible with a
    feed that does not report its outage: the guard blocks every symbol reported stale).
    """

    key: str
    order_id: str
    symbol: str
    side: str
    step: int
    attempt: int
    quantity: int
    at: datetime
    outcome: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class FixedProtections:
    """A replay's protections taken as given (the TWAP counterfactual of the daily report).

    ``buy_freeze_at``: the circuit breaker's freeze time (buys blocked on later bars);
    ``stop_at``: the daily-loss stop's time; ``liquidations``: the ``(symbol, units)`` sell
    parents the stop created, in their order.
    """

    buy_freeze_at: datetime | None = None
    stop_at: datetime | None = None
    liquidations: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IntradayOutcome:
    """What :func:`execute_day` did.

    ``fill_keys`` maps each fill id to the idempotency key of the child order it filled;
    ``stale_fill_ids`` are fills executed on stale bars the feed did not report (none with a
    feed that reports its outages).
    """

    state: AccountState
    orders: tuple[Order, ...]
    fills: tuple[FillEvent, ...]
    wins: int
    losses: int
    intraday_equity: tuple[tuple[datetime, float], ...]
    incidents: tuple[Incident, ...]
    manual_orders: tuple[ManualOrder, ...]
    fill_keys: Mapping[str, str]
    child_orders: tuple[ChildOrder, ...]
    stale_fill_ids: tuple[str, ...]
    liquidation_order_ids: tuple[str, ...]


def idempotency_key(order_id: str, day: Any, step: int) -> str:
    """Return the key of the child order of parent ``order_id`` at ``step`` on ``day``.

    The order id names the account; the key does not depend on the attempt, so a retry of
    the same child reuses it.
    """
    return f"{order_id}-{day}-S{step:02d}"


def duplicate_keys(outcome: IntradayOutcome) -> dict[str, int]:
    """Return ``key -> units filled beyond the child's quantity`` for every duplicated key.

    A child order filled more than it asked for only when it was sent twice and both copies
    worked (a re-send after a time-out the broker took, without finding the order by key).
    """
    sent: dict[str, int] = {}
    for child in outcome.child_orders:
        if child.outcome != "resent_duplicate":
            sent.setdefault(child.key, child.quantity)
    filled: dict[str, int] = {}
    for fill in outcome.fills:
        key = outcome.fill_keys.get(fill.fill_id)
        if key is not None:
            filled[key] = filled.get(key, 0) + fill.quantity
    return {k: q - sent.get(k, 0) for k, q in filled.items() if q > sent.get(k, 0)}


def _code(preferred: str, fallback: str) -> str:
    # Order reasons must be arena.events.REJECT_REASONS codes; the finer codes are used once
    # that list has them (the incidents always carry the detail).
    return preferred if preferred in REJECT_REASONS else fallback


_HALTED = _code("halted", "suspended")
_STALE = _code("stale_data", "suspended")
_FROZEN = "risk_veto"
_BROKER = _code("broker_fault", "end_of_day")


# --------------------------------------------------------------------------- internals
@dataclass(slots=True)
class _Child:
    key: str
    step: int
    sent: int
    state: str = "unsent"  # unsent | live | waiting | manual | dropped
    attempt: int = 0
    retry_at: datetime | None = None
    at_broker: bool = False


@dataclass(slots=True)
class _Parent:
    stepper: ParentExecution
    start: int
    liquidation: bool = False
    child: _Child | None = None
    realised: int = 0


class _Day:
    """The mutable state of one :func:`execute_day` call (kept out of the public API)."""

    def __init__(
        self,
        state: AccountState,
        market: DayMarket,
        rules: BrokerRules,
        gateway: BrokerGateway,
        schedule: Any,
    ) -> None:
        self.books = start_day(state, market.day)
        self.market = market
        self.rules = rules
        self.gateway = gateway
        self.schedule = schedule
        self.times = [snap.time.to_pydatetime() for snap in market.snapshots]
        self.n_bars = len(self.times)
        for symbol, bars in market.bars.items():
            if len(bars) != self.n_bars:
                raise ValueError(
                    f"execute_day {market.day}: {symbol} has {len(bars)} bars, the market "
                    f"{self.n_bars} minutes"
                )
        self.parents: list[_Parent] = []
        self.incidents: list[Incident] = []
        self.manual: list[ManualOrder] = []
        self.children: list[ChildOrder] = []
        self.fills: list[FillEvent] = []
        self.fill_keys: dict[str, str] = {}
        self.stale_fills: list[str] = []
        self.equity: list[tuple[datetime, float]] = []
        self.seen: dict[str, float] = {}
        for symbol in set(market.prev_close) | set(market.close):
            price = market.prev_close.get(symbol, market.close.get(symbol))
            if price is not None and math.isfinite(price) and price > 0:
                self.seen[symbol] = float(price)
        self.last_good: dict[str, Bar] = {}
        self.stopped_at: datetime | None = None

    # ------------------------------------------------------------------ orders
    def submit(
        self, symbol: str, side: Side, quantity: int, at: datetime, decision_id: str | None,
        *, start: int, liquidation: bool = False,
    ) -> _Parent:  # fmt: skip
        self.books, order, _ = submit_order(
            self.books,
            symbol=symbol,
            side=side,
            quantity=quantity,
            day=self.market.day,
            at=at,
            decision_id=decision_id,
        )
        horizon = self.n_bars - start
        stepper = ParentExecution(
            order,
            horizon,
            self.rules,
            sigma=self.market.sigma.get(symbol, 0.0),
            # The stop's liquidation works everything left on every bar (one step).
            schedule=None if liquidation else self.schedule,
            n_steps=1 if liquidation or not self.market.intraday else None,
            where=f"execute_day {order.order_id}",
        )
        parent = _Parent(stepper=stepper, start=start, liquidation=liquidation)
        self.parents.append(parent)
        return parent

    def incident(self, at: datetime, kind: str, symbol: str | None, detail: str) -> None:
        self.incidents.append(Incident(time=at, kind=kind, symbol=symbol, detail=detail))

    # ------------------------------------------------------------------ broker
    def _fail(self, parent: _Parent, at: datetime) -> str | None:
        """A send failed: schedule the retry, or hand the child to a person."""
        child, stepper = parent.child, parent.stepper
        assert child is not None
        if child.attempt >= self.gateway.max_retries:
            if child.at_broker:
                child.state = "live"  # the broker works it; the client never learns
                return None
            quantity = stepper.hand_off(_BROKER)
            child.state = "manual"
            if quantity > 0:
                self._manual_order(parent, at, quantity, child)
            return _BROKER
        child.state = "waiting"
        child.retry_at = at + timedelta(minutes=self.gateway.backoff(child.attempt))
        return None if child.at_broker else _BROKER

    def _manual_order(self, parent: _Parent, at: datetime, quantity: int, child: _Child) -> None:
        order = parent.stepper.order
        last = self.seen.get(order.symbol, math.nan)
        band = MANUAL_LIMIT_BAND if order.side == "buy" else -MANUAL_LIMIT_BAND
        limit = last * (1.0 + band)
        reference = self.market.prev_close.get(order.symbol)
        pct = self.rules.limit_pct(order.symbol, self.market.day)
        if reference is not None and pct is not None:
            limit = (
                min(limit, reference * (1 + pct)) if band > 0 else max(limit, reference * (1 - pct))
            )
        units = quantity_to_float(quantity, self.books.units.quantity_digits)
        reason = (
            f"broker refused child {child.key} {child.attempt + 1} times "
            f"(max {self.gateway.max_retries} retries): "
            f"{order.side} {units:g} {order.symbol} by hand, limit {limit:.4f} "
            f"(last {last:.4f} {'+' if band > 0 else '-'}{MANUAL_LIMIT_BAND:.0%})"
        )
        self.manual.append(
            ManualOrder(
                symbol=order.symbol,
                side=order.side,
                quantity=units,
                limit_price=round(limit, self.books.units.price_digits),
                idempotency_key=child.key,
                reason=reason,
            )
        )
        self.incident(at, "manual_order", order.symbol, reason)

    def _record(
        self, child: _Child, order: Order, quantity: int, at: datetime, outcome: str, stale: bool
    ) -> None:
        """Keep one send of a child order (what the stress checks read)."""
        self.children.append(
            ChildOrder(
                key=child.key,
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side,
                step=child.step,
                attempt=child.attempt,
                quantity=quantity,
                at=at,
                outcome=outcome,
                stale=stale,
            )
        )

    def _send(self, parent: _Parent, at: datetime, stale: bool) -> str | None:
        child, stepper = parent.child, parent.stepper
        assert child is not None
        sent = self.gateway.send(child.key, child.attempt)
        order = stepper.order
        if sent.outcome == "ok" and child.at_broker:
            # Sent again while the first copy works at the broker (the retry did not find it by
            # key): the broker works a second copy under the same key.
            added = stepper.add_child(child.sent)
            self._record(child, order, added, at, "resent_duplicate", stale)
            child.state = "live"
            return None
        self._record(child, order, stepper.child, at, sent.outcome, stale)
        if sent.outcome == "ok":
            child.state = "live"
            return None
        if sent.outcome == "reject":
            self.incident(
                at,
                "broker_reject",
                order.symbol,
                f"child {child.key} ({order.side} {stepper.child} units) rejected on send "
                f"{child.attempt + 1}",
            )
        else:
            child.at_broker = child.at_broker or sent.taken
            self.incident(
                at,
                "broker_timeout",
                order.symbol,
                f"child {child.key} ({order.side} {stepper.child} units) timed out on send "
                f"{child.attempt + 1}: no answer from the broker",
            )
        return self._fail(parent, at)

    def _retry(self, parent: _Parent, at: datetime, stale: bool) -> str | None:
        child, stepper = parent.child, parent.stepper
        assert child is not None
        child.attempt += 1
        symbol = stepper.order.symbol
        if self.gateway.has_order(child.key):
            self.incident(
                at,
                "retry",
                symbol,
                f"retry {child.attempt} of {child.key}: asked the broker by key, it has "
                "the order working",
            )
            self.incident(
                at,
                "duplicate_suppressed",
                symbol,
                f"{child.key} was taken despite the time-out: not sent again",
            )
            child.state = "live"
            return None
        self.incident(
            at,
            "retry",
            symbol,
            f"retry {child.attempt} of {child.key}: the broker does not know the key, sent again",
        )
        return self._send(parent, at, stale)

    def broker_block(self, parent: _Parent, at: datetime, stale: bool) -> str | None:
        """Send or retry the open child through the gateway; return a block reason."""
        child = parent.child
        if child is None:
            return None
        if child.state == "unsent":
            return self._send(parent, at, stale)
        if child.state == "waiting":
            assert child.retry_at is not None
            if at < child.retry_at:
                return None if child.at_broker else _BROKER
            return self._retry(parent, at, stale)
        if child.state in ("manual", "dropped"):
            return _BROKER
        return None

    # ------------------------------------------------------------------ the stop
    def liquidate(
        self, t: int, decision_id: str | None, given: Sequence[tuple[str, int]] | None
    ) -> None:
        at = self.times[t]
        for parent in self.parents:
            order = parent.stepper.order
            if order.side == "sell" and parent.stepper.working and order.is_working:
                parent.stepper.cancel(at, _FROZEN)
        if t + 1 >= self.n_bars:
            self.incident(
                at,
                "liquidation",
                None,
                "the stop tripped on the day's last bar: no bar left to sell in",
            )
            return
        digits = self.books.units.quantity_digits
        if given is None:
            wanted = []
            for held in self.books.positions:
                if held.quantity > held.sellable:
                    locked = quantity_to_float(held.quantity - held.sellable, digits)
                    self.incident(
                        at,
                        "liquidation",
                        held.symbol,
                        f"{locked:g} {held.symbol} bought today cannot be sold today (T+1)",
                    )
                if held.symbol not in self.market.bars:
                    self.incident(
                        at,
                        "liquidation",
                        held.symbol,
                        f"{held.symbol} has no bars today: it cannot be sold",
                    )
                    continue
                if held.sellable > 0:
                    wanted.append((held.symbol, held.sellable))
        else:
            wanted = [(s, q) for s, q in given if s in self.market.bars]
        for symbol, quantity in wanted:
            self.submit(symbol, "sell", quantity, at, decision_id, start=t + 1, liquidation=True)
            self.incident(
                at,
                "liquidation",
                symbol,
                f"sell {quantity_to_float(quantity, digits):g} {symbol} over the "
                f"{self.n_bars - t - 1} minutes left",
            )


def _snapshot_seen(
    snapshot: MarketSnapshot, stale: frozenset[str], delivered: Mapping[str, Bar]
) -> MarketSnapshot:
    """Return the prices the lab sees at the minute close.

    A symbol its feed reports stale is left out (a stale price is no market move); a symbol
    whose feed delivered a bar other than the market's without saying so is seen at that
    bar's close.
    """
    if not stale and not delivered:
        return snapshot
    prices = {}
    for symbol, price in snapshot.prices.items():
        if symbol in stale:
            continue
        bar = delivered.get(symbol)
        prices[symbol] = price if bar is None else bar.close
    return MarketSnapshot(time=snapshot.time, prices=prices)


# --------------------------------------------------------------------------- the loop
def execute_day(
    state: AccountState,
    requests: Sequence[tuple[str, Side, int]],
    market: DayMarket,
    rules: BrokerRules,
    *,
    decision_id: str | None = None,
    liquidation_decision_id: str | None = None,
    schedule: Any = None,
    governor: RiskGovernor | None = None,
    adapters: DayAdapters | None = None,
    watched: Sequence[str] = (),
    fixed: FixedProtections | None = None,
) -> IntradayOutcome:
    """Execute an account's parent orders through the day's minutes (module docstring).

    Parameters
    ----------
    state:
        The books at the open.
    requests:
        ``(symbol, side, quantity units)`` parent orders approved at the open, sells first;
        all are submitted at the open (``market.open_time``) in this order.
    market:
        The day's bars (``arena.market.day_market``).
    rules:
        The market's broker rules.
    decision_id, liquidation_decision_id:
        The decision chains of the planned orders and of the daily-loss stop's sells.
    schedule:
        The execution policy (``None``: TWAP), as in :func:`arena.parent_orders.execute_parent`.
    governor:
        The account's governor after ``start_day`` (``start_equity`` given for the stop) and
        any tightening; ``None`` runs without the live protections (see ``fixed``).
    adapters:
        The day's market conditions and broker gateway (:func:`arena.conditions.wire_day`;
        default: the daily arena's calm day and paper broker).
    watched:
        Symbols the circuit breaker watches besides the ones held at each minute.
    fixed:
        Protections taken as given instead of the governor's (a counterfactual replay).
    """
    adapters = adapters or wire_day()
    conditions = adapters.market
    day = _Day(state, market, rules, adapters.gateway(), schedule)
    for symbol, side, quantity in requests:
        if symbol not in market.bars:
            raise ValueError(f"execute_day {market.day}: no bars for {symbol}")
        day.submit(symbol, side, quantity, market.open_time, decision_id, start=0)
    announced: set[Halt | FeedFault] = set()
    stop_on = governor is not None and governor.start_equity is not None
    always = set(watched)

    for t, at in enumerate(day.times):
        halts = conditions.halts_at(at)
        for window in halts:
            if window not in announced:
                announced.add(window)
                day.incident(
                    at,
                    "halt",
                    None,
                    f"exchange halt from {window.start.isoformat()} "
                    f"to {window.end.isoformat()} ({window.reason}): no order fills",
                )
        truth = {symbol: series[t] for symbol, series in market.bars.items()}
        feed = conditions.feed_at(at, truth, day.last_good)
        for fault in feed.faults:
            if fault in announced:
                continue
            announced.add(fault)
            names = sorted(s for s in market.bars if fault.covers(s))
            which = "all symbols" if fault.symbols is None else ", ".join(names)
            if fault.backup:
                day.incident(
                    at,
                    "backup_source",
                    None,
                    f"feed stale for {which} until "
                    f"{fault.end.isoformat()}: trading on the backup source",
                )
            else:
                day.incident(
                    at,
                    "stale_pause",
                    None,
                    f"feed stale for {which} until "
                    f"{fault.end.isoformat()}: no order placed on them",
                )
        # The stale-data guard: no order on a symbol the feed reports stale. ``misfed`` are the
        # symbols whose delivered bar is not the market's: with a feed that reports its
        # outages they are all guarded; a send or fill on one is flagged (`stale`).
        stale = feed.stale
        bars = feed.bars
        misfed = set() if bars is truth else {s for s in truth if bars[s] is not truth[s]}

        if fixed is not None:
            frozen_after = fixed.buy_freeze_at
        else:
            freeze = governor.freeze if governor is not None else None
            frozen_after = None if freeze is None else freeze.freeze_time.to_pydatetime()
        ordered = sorted(
            (p for p in day.parents if p.start <= t),
            key=lambda p: (p.stepper.order.side != "sell", p.stepper.order.seq),
        )
        for parent in ordered:
            stepper = parent.stepper
            order = stepper.order
            bar = bars[order.symbol]
            if t == parent.start:
                day.books = stepper.admit(day.books, bar, check_cash=False)
            if not stepper.working:
                continue
            if stepper.prepare(bar):
                parent.child = _Child(
                    key=idempotency_key(order.order_id, market.day, stepper.step),
                    step=stepper.step,
                    sent=stepper.child,
                )
            block: str | None = None
            if halts:
                block = _HALTED
            elif order.symbol in stale:
                block = _STALE
            elif order.side == "buy" and (
                (frozen_after is not None and at > frozen_after)
                or (day.stopped_at is not None and at > day.stopped_at)
            ):
                block = _FROZEN
            pending = parent.child is not None and parent.child.state == "waiting"
            # A child waiting for its retry is retried even if the broker, unknown to the
            # client, already filled it: the client only learns that by asking (or re-sending).
            if block is None and (stepper.child > 0 or pending):
                block = day.broker_block(parent, at, order.symbol in misfed)
            before = day.books.realised_pnl
            day.books, fills = stepper.work(day.books, bar, blocked=block)
            parent.realised += day.books.realised_pnl - before
            for fill in fills:
                assert isinstance(fill, FillEvent)
                day.fills.append(fill)
                if parent.child is not None:
                    day.fill_keys[fill.fill_id] = parent.child.key
                if order.symbol in misfed:
                    day.stale_fills.append(fill.fill_id)

        # The minute closes: what the lab sees, the marked equity, the governor.
        for symbol, bar in bars.items():
            if symbol not in stale and bar.tradable and math.isfinite(bar.close):
                day.seen[symbol] = bar.close
                day.last_good[symbol] = bar
        prices = {p.symbol: day.seen[p.symbol] for p in day.books.positions}
        equity = money_to_float(
            mark_to_market(day.books, prices).equity, day.books.units.money_digits
        )
        day.equity.append((at, equity))
        if governor is not None:
            delivered = {s: bars[s] for s in misfed - stale}
            seen = _snapshot_seen(market.snapshots[t], stale, delivered)
            held = {p.symbol for p in day.books.positions} | always
            governor.on_bar(
                seen, pd.Timestamp(at), positions=sorted(held), bars_left=day.n_bars - t - 1
            )
        if day.stopped_at is None:
            tripped = False
            if fixed is not None:
                tripped = fixed.stop_at is not None and at >= fixed.stop_at
            elif governor is not None and stop_on:
                tripped = bool(governor.on_equity(equity, at, bars_left=day.n_bars - t - 1))
            if tripped:
                day.stopped_at = at
                what = (
                    "buys frozen, positions liquidated"
                    if t + 1 < day.n_bars
                    else "at the day's last bar, after every order had been executed: nothing "
                    "left to freeze or sell today"
                )
                day.incident(
                    at, "daily_loss_stop", None, f"equity {equity:,.2f} beyond the "
                    f"daily-loss limit: {what}",
                )  # fmt: skip
                given = None if fixed is None else fixed.liquidations
                day.liquidate(t, liquidation_decision_id, given)

    return _close_day(day)


def _close_day(day: _Day) -> IntradayOutcome:
    end = day.times[-1]
    orders: list[Order] = []
    wins = losses = 0
    digits = day.books.units.quantity_digits
    for parent in sorted(day.parents, key=lambda p: p.stepper.order.seq):
        result = parent.stepper.finish(day.books, end)
        order = result.order
        orders.append(order)
        if order.side == "sell" and order.filled > 0:
            gained = parent.realised - order.commission - order.taxes
            wins += gained > 0
            losses += gained <= 0
        if parent.liquidation and order.status != OrderStatus.FILLED:
            unsold = quantity_to_float(order.quantity - order.filled, digits)
            day.incident(
                end,
                "liquidation",
                order.symbol,
                f"{unsold:g} {order.symbol} unsold at the close: {order.reason}",
            )
    return IntradayOutcome(
        state=day.books,
        orders=tuple(orders),
        fills=tuple(day.fills),
        wins=int(wins),
        losses=int(losses),
        intraday_equity=tuple(day.equity),
        incidents=tuple(day.incidents),
        manual_orders=tuple(day.manual),
        fill_keys=dict(day.fill_keys),
        child_orders=tuple(day.children),
        stale_fill_ids=tuple(day.stale_fills),
        liquidation_order_ids=tuple(p.stepper.order.order_id for p in day.parents if p.liquidation),
    )


def liquidation_id(decision_id: str) -> str:
    """Return the decision id of the daily-loss stop's sells of the day of ``decision_id``."""
    return f"{decision_id}-liquidation"


def shortfall_bps(fills: Sequence[Any], arrival: Mapping[str, float], qdigits: int) -> float:
    """Execution shortfall of ``fills`` against ``arrival`` prices, bps of arrival value.

    Positive = a cost: buys above and sells below the arrival price. Prices only: commissions
    and taxes are the same whichever schedule trades, so they are left out.
    """
    cost = value = 0.0
    for fill in fills:
        reference = arrival.get(fill.symbol)
        if reference is None or not reference > 0:
            continue
        quantity = fill.quantity / 10.0**qdigits
        sign = 1.0 if fill.side == "buy" else -1.0
        cost += sign * (float(fill.price) - reference) * quantity
        value += reference * quantity
    return 1e4 * cost / value if value > 0 else 0.0


def twap_counterfactual(
    ledger: Ledger,
    account: str,
    day: date,
    orders: Sequence[OrderRecord],
    market: DayMarket,
    rules: BrokerRules,
    fixed: FixedProtections,
) -> list[Any]:
    """Re-run the day's parent orders with the TWAP schedule; return the fills it would get.

    The same executor as the account's day (:func:`arena.intraday.execute_day`): the books
    restart from the close before ``day``, the planned orders go in at the open in their
    ledger order, and the protections that acted that day are taken as they happened
    (``fixed``: the breaker's freeze time, the daily-loss stop's time and its liquidation
    orders), so with a TWAP policy this gives the ledger's fills exactly.
    """
    state = start_day(ledger.restore_state(account, before=day), day)
    planned = [
        (order.symbol, order.side, order.quantity)
        for order in orders
        if not (order.decision_id or "").endswith(LIQUIDATION_SUFFIX)
        and order.symbol in market.bars
    ]
    decision = next((order.decision_id for order in orders if order.decision_id), None)
    outcome = execute_day(
        state,
        planned,  # type: ignore[arg-type]
        market,
        rules,
        decision_id=decision,
        schedule=None,
        fixed=fixed,
    )
    return list(outcome.fills)


LIQUIDATION_SUFFIX = liquidation_id("")
