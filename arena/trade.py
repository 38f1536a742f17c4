"""The trade stage of the arena's day: orders from targets, the governor, the day's execution.

:func:`trade_day` turns one account's :class:`arena.plan.AccountPlan` into its day on a
:class:`arena.market.DayMarket`:

1. **Orders** (:func:`opening_requests`): the differences between the target and the held
   quantities at the previous close (whole lots; changes under :data:`MIN_TRADE_WEIGHT` of
   equity are skipped; sells first).
2. **Governor at the open**: the :class:`arena.risk.RiskGovernor` checks every order against
   a running float view of the account (each approved order is assumed filled at the
   previous close for the next check); cuts and vetoes are events.
3. **Execution over the day's bars**: every approved order is a parent order sliced by the
   execution policy and executed minute by minute, all of them interleaved (sells first, then
   buys, each minute), by :func:`arena.intraday.execute_day`: the governor sees each minute
   bar as it closes; a circuit-breaker freeze at minute ``m`` blocks the buys from minute
   ``m + 1`` on (sells go on), the daily-loss stop freezes the buys and liquidates; halts,
   stale feeds and broker faults come in through the day's adapters
   (:func:`arena.conditions.wire_day`), which also make the account's governor.
   **Daily-only data** have no minute bars: each parent order executes on the single daily
   bar of ``D`` (one step; the fill model's price and participation cap of the daily volume).

While paused, the requests are the pause's (none, or the closing sells with ``flatten``) and
the paused governor vetoes anything else; a position that cannot be closed today is one more
``kill_switch`` event naming it.

The result (:class:`AccountDayResult`, and the books at the close) is what the close stage
commits (:mod:`arena.account`). Pure: no ledger, no Ray.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from arena.book import AccountState, mark_to_market, start_day
from arena.conditions import DayAdapters, wire_day
from arena.events import FillEvent, RiskVeto
from arena.intraday import (
    ChildOrder,
    Incident,
    ManualOrder,
    execute_day,
    liquidation_id,
)
from arena.kill_switch import Pause
from arena.ledger import (
    DayAttribution,
    EquitySnapshot,
    PositionSnapshot,
    snapshots_from,
)
from arena.market import DayMarket
from arena.money import (
    money_to_float,
    quantity_from_float,
    quantity_to_float,
)
from arena.orders import Order
from arena.personas import ArenaConfig
from arena.plan import AccountPlan
from arena.risk import AccountSnapshot, OrderRequest, RiskEvent, RiskGovernor
from arena.rules import BrokerRules

# Rebalancing trades smaller than this share of equity cost more than they correct.
MIN_TRADE_WEIGHT = 0.005


def opening_requests(
    state: AccountState, weights: Mapping[str, float], market: DayMarket, lot: int
) -> list[tuple[str, str, int]]:
    """Return the ``(symbol, side, quantity units)`` orders an account asks for at the open.

    The rule of :meth:`arena.account.AccountBook.run_day` (the module docstring of
    :mod:`arena.trade`): the difference between the target and the held quantity at the
    previous close, in whole lots, changes under ``MIN_TRADE_WEIGHT`` of the equity skipped
    unless they close a name no target asks for, sells capped at the sellable quantity, sells
    first. ``state`` is the books at the open of the day (after ``start_day``); request ``k``
    (from 1) is the governor's ``<account>-<day>-R<k:03d>``.
    """
    units = state.units
    qdigits = units.quantity_digits
    marks = {s: market.prev_close.get(s, market.close.get(s, 0.0)) for s in market.close}
    equity0 = money_to_float(mark_to_market(state, marks).equity, units.money_digits)
    held = {p.symbol for p in state.positions}
    requests: list[tuple[str, str, int]] = []
    for symbol in sorted(set(weights) | held):
        price = market.prev_close.get(symbol)
        if price is None or symbol not in market.bars:
            continue
        target_units = (
            quantity_from_float(weights.get(symbol, 0.0) * equity0 / price, qdigits) // lot
        ) * lot
        current = state.held(symbol)
        delta = target_units - current
        if abs(quantity_to_float(abs(delta), qdigits) * price) < MIN_TRADE_WEIGHT * equity0:
            if not (target_units == 0 and current > 0 and symbol not in weights):
                continue
        if delta < 0:
            quantity = min(-delta, state.sellable(symbol))
            if quantity < current:
                quantity = (quantity // lot) * lot
            if quantity > 0:
                requests.append((symbol, "sell", quantity))
        elif delta > 0:
            requests.append((symbol, "buy", delta))
    requests.sort(key=lambda r: (r[1] != "sell", r[0]))
    return requests


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountDayResult:
    """One account's committed day (what the ledger got, plus figures for the report).

    ``attribution`` is the day's P&L per symbol and genome as committed
    (:func:`arena.ledger.attribute_day`); ``None`` on an ``already_committed`` result (read
    the committed rows with :meth:`arena.ledger.Ledger.attribution`).
    """

    account: str
    day: date
    already_committed: bool
    equity: float
    previous_equity: float
    trades: int
    wins: int
    losses: int
    orders: tuple[Order, ...] = ()
    fills: tuple[FillEvent, ...] = ()
    positions: tuple[PositionSnapshot, ...] = ()
    risk_events: tuple[RiskVeto, ...] = ()
    decision: Mapping[str, Any] = field(default_factory=dict)
    equity_snapshot: EquitySnapshot | None = None
    intraday_equity: tuple[tuple[datetime, float], ...] = ()
    incidents: tuple[Incident, ...] = ()
    manual_orders: tuple[ManualOrder, ...] = ()
    fill_keys: Mapping[str, str] = field(default_factory=dict)
    child_orders: tuple[ChildOrder, ...] = ()
    stale_fill_ids: tuple[str, ...] = ()
    liquidation_order_ids: tuple[str, ...] = ()
    attribution: DayAttribution | None = None


def _to_veto(event: RiskEvent) -> RiskVeto:
    return RiskVeto(
        account=event.account,
        at=event.time.to_pydatetime(),
        order_id=event.order_id,
        rule=event.rule,
        reason=f"{event.kind}: {event.message}",
        value=event.value,
        limit=event.limit,
    )


def _pause_note(pause: Pause) -> str:
    return f"kill switch: {pause.reason!r} (paused since {pause.since.isoformat()} by {pause.who})"


def _paused_requests(
    governor: RiskGovernor,
    pause: Pause,
    state: AccountState,
    closing: Sequence[tuple[str, str, int]],
    market: DayMarket,
    equity: float,
    rules: BrokerRules,
) -> list[tuple[str, str, int]]:
    """Pause the governor; return the paused day's requests (``closing``: the order rule's
    against empty targets) and record each position flatten cannot close at the open."""
    qdigits = state.units.quantity_digits
    marks = {s: market.prev_close.get(s, market.close.get(s, 0.0)) for s in market.close}
    values = {
        p.symbol: quantity_to_float(p.quantity, qdigits) * marks.get(p.symbol, 0.0)
        for p in state.positions
    }
    scale = equity if equity > 0 else 1.0
    exposure = math.fsum(abs(v) for v in values.values()) / scale
    what = "closing every position, no buys" if pause.flatten else "no new orders, positions kept"
    governor.pause(
        market.open_time,
        reason=f"{_pause_note(pause)}; {what}; {len(values)} position(s) held at the open",
        flatten=pause.flatten,
        exposure=exposure,
    )
    if not pause.flatten:
        return []
    asked = {symbol: quantity for symbol, side, quantity in closing if side == "sell"}
    for position in state.positions:
        symbol, held = position.symbol, position.quantity
        selling = asked.get(symbol, 0)
        if selling >= held:
            continue
        sellable = state.sellable(symbol)
        if symbol not in market.bars or symbol not in market.prev_close:
            why = "no bar today (halted, suspended or no data)"
        elif sellable < held:
            why = (
                f"{quantity_to_float(sellable, qdigits):g} of "
                f"{quantity_to_float(held, qdigits):g} sellable today (T+1)"
            )
        else:
            why = f"whole lots of {quantity_to_float(rules.lot_units, qdigits):g} only"
        governor.pause(
            market.open_time,
            reason=(
                f"{symbol}: {quantity_to_float(held - selling, qdigits):g} of "
                f"{quantity_to_float(held, qdigits):g} not closed today, {why}, the next "
                f"paused day closes it; {_pause_note(pause)}"
            ),
            flatten=True,
            exposure=abs(values.get(symbol, 0.0)) / scale,
            symbol=symbol,
        )
    return [request for request in closing if request[1] == "sell"]


def _unfilled_closes(
    governor: RiskGovernor,
    pause: Pause,
    orders: Sequence[Order],
    decision_id: str,
    market: DayMarket,
    qdigits: int,
    equity: float,
) -> None:
    """Record each closing sell of a flattening day that did not fill in full."""
    at = market.snapshots[-1].time if market.snapshots else market.open_time
    for order in orders:
        if order.decision_id != decision_id or order.side != "sell":
            continue
        if order.filled >= order.quantity:
            continue
        price = market.close.get(order.symbol, 0.0)
        left = quantity_to_float(order.quantity - order.filled, qdigits)
        governor.pause(
            at,
            reason=(
                f"{order.symbol}: sold {quantity_to_float(order.filled, qdigits):g} of "
                f"{quantity_to_float(order.quantity, qdigits):g} ({order.status}"
                f"{', ' + order.reason if order.reason else ''}), the next paused day closes "
                f"the rest; {_pause_note(pause)}"
            ),
            flatten=True,
            exposure=left * price / (equity if equity > 0 else 1.0),
            symbol=order.symbol,
        )


def trade_day(
    state: AccountState,
    plan: AccountPlan,
    market: DayMarket,
    *,
    account: str,
    config: ArenaConfig,
    rules: BrokerRules,
    schedule: Any,
    history: Sequence[tuple[date, EquitySnapshot]],
    previous_equity: float,
    adapters: DayAdapters | None = None,
) -> tuple[AccountDayResult, AccountState]:
    """Trade one account's plan on the day's market; return its day and the closing books.

    ``state`` is the books at the previous close, ``history`` the account's committed
    ``(day, equity)`` before ``D`` (the governor's peak) and ``previous_equity`` the equity
    at the close before ``D``; ``schedule`` the execution policy (``None``: TWAP); ``adapters``
    the day's (:func:`arena.conditions.wire_day`; ``None``: the daily arena's). Pure: the
    ledger is the close stage's (:meth:`arena.account.AccountBook.run_day`).
    """
    day = plan.day
    units = state.units
    qdigits = units.quantity_digits
    lot = rules.lot_units
    state = start_day(state, day)
    adapters = adapters or wire_day()
    opening = mark_to_market(
        state, {s: market.prev_close.get(s, market.close.get(s, 0.0)) for s in market.close}
    )
    equity0 = money_to_float(opening.equity, units.money_digits)
    # The day's adjustments (arena.adjustments) may only have tightened the limits and lowered
    # the participation cap; without one the plan carries neither.
    governor = adapters.governor(config.risk if plan.risk is None else plan.risk, account)
    if plan.participation_cap is not None:
        rules = dataclasses.replace(rules, participation_cap=plan.participation_cap)
    governor.start_day(dict(market.prev_close), start_equity=equity0 if equity0 > 0 else None)
    governor.tighten_for_regime(adapters.force_regime or plan.regime, market.open_time)
    history = list(history)
    peak = max(
        [money_to_float(e.equity, units.money_digits) for _, e in history]
        + [money_to_float(state.initial_cash, units.money_digits), equity0]
    )
    cash = money_to_float(state.cash, units.money_digits)
    held = {p.symbol: quantity_to_float(p.quantity, qdigits) for p in state.positions}
    wanted = {t.symbol: t.weight for t in plan.targets}

    # Orders: differences to the targets at the previous close, sells first.
    requests = opening_requests(state, wanted, market, lot)
    pause = plan.pause
    if pause is not None:
        # Paused: no targets, so the requests above close every position; a plain pause
        # asks for none of them. The paused governor vetoes anything else.
        requests = _paused_requests(governor, pause, state, requests, market, equity0, rules)

    approved: list[tuple[str, str, int]] = []
    for k, (symbol, side, quantity) in enumerate(requests, start=1):
        price = market.prev_close[symbol]
        request = OrderRequest(
            order_id=f"{account}-{day.isoformat()}-R{k:03d}",
            account=account,
            symbol=symbol,
            side=side,  # type: ignore[arg-type]
            quantity=quantity_to_float(quantity, qdigits),
            reference_price=price,
            lot_size=quantity_to_float(lot, qdigits),
        )
        snapshot = AccountSnapshot(
            account=account,
            cash=cash,
            positions=held,
            day_start_equity=equity0 if equity0 > 0 else 1.0,
            peak_equity=peak if peak > 0 else 1.0,
        )
        prices = {s: market.prev_close[s] for s in set(held) | {symbol}}
        decision = governor.check(request, snapshot, prices, market.open_time)
        if not decision.approved:
            continue
        allowed = quantity_from_float(decision.quantity, qdigits)
        if side == "sell" and allowed >= quantity:
            allowed = quantity
        if allowed <= 0:
            continue
        approved.append((symbol, side, allowed))
        amount = quantity_to_float(allowed, qdigits)
        sign = 1.0 if side == "buy" else -1.0
        cash -= sign * amount * price
        held[symbol] = held.get(symbol, 0.0) + sign * amount
        if held[symbol] <= 1e-12:
            held.pop(symbol)

    # Every parent order works minute by minute, interleaved, with the intraday
    # protections (arena.intraday): the breaker and the daily-loss stop act causally.
    outcome = execute_day(
        state,
        approved,  # type: ignore[arg-type]
        market,
        rules,
        decision_id=plan.decision_id,
        liquidation_decision_id=liquidation_id(plan.decision_id),
        schedule=schedule,
        governor=governor,
        adapters=adapters,
        watched=sorted(set(held) | {p.symbol for p in state.positions}),
    )
    state = outcome.state
    if pause is not None and pause.flatten:
        _unfilled_closes(
            governor, pause, outcome.orders, plan.decision_id, market, qdigits, equity0
        )
    orders = list(outcome.orders)
    fills = list(outcome.fills)
    wins, losses = outcome.wins, outcome.losses
    valuation = mark_to_market(state, market.close)
    positions_snap, equity_snap = snapshots_from(state, valuation)
    result = AccountDayResult(
        account=account,
        day=day,
        already_committed=False,
        equity=money_to_float(equity_snap.equity, units.money_digits),
        previous_equity=previous_equity,
        trades=len(fills),
        wins=int(wins),
        losses=int(losses),
        orders=tuple(orders),
        fills=tuple(fills),
        positions=positions_snap,
        risk_events=tuple(_to_veto(e) for e in governor.events),
        decision=plan.decision,
        equity_snapshot=equity_snap,
        intraday_equity=outcome.intraday_equity,
        incidents=outcome.incidents,
        manual_orders=outcome.manual_orders,
        fill_keys=dict(outcome.fill_keys),
        child_orders=outcome.child_orders,
        stale_fill_ids=outcome.stale_fill_ids,
        liquidation_order_ids=outcome.liquidation_order_ids,
    )
    return result, state
