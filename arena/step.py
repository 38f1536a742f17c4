"""The paper broker's one-bar step: ``(account state, order, bar) -> (new state, events)``.

:func:`execute_order` admits an order on its arrival bar and fills what the bar allows.
Prices and quantities come from the shared bar fill model
(:func:`simulators.fill_model.fill_child_order`: spread, square-root impact, participation
cap, lots, locked limits); the money is then made exact (:mod:`arena.money`) and charged with
the market's commission and taxes (:mod:`arena.rules`). Rules enforced on top of the fill
model:

* **Admission** of a new order on its arrival bar, in this order: a non-tradable bar rejects
  it (``suspended``); selling more than is held (``insufficient_position``) or more than is
  sellable today (``t_plus_one``); a quantity that is not whole lots (``lot_size``; a sell of
  the whole position may be an odd lot); a buy at a locked limit-up or a sell at a locked
  limit-down (``limit_up`` / ``limit_down``); a buy whose value at the bar's open plus its
  commission exceeds the cash (``insufficient_cash``).
* **Each fill** is shrunk to whole lots the cash can pay for (fees included) and to the
  sellable quantity, so cash and positions never go negative, whatever the price path.
* **Commission** is charged on the order's cumulative value: fill ``k`` pays
  ``C(value_1 + ... + value_k) - C(value_1 + ... + value_{k-1})`` with
  ``C(v) = max(rate * v, minimum) + fixed``, so a sliced order pays exactly what the same
  order filled at once would, and never the minimum twice. **Stamp duty** is charged on each
  sell fill's value at the rate of its trading day.
* **T+1**: a buy adds to the quantity at once but to the sellable quantity only when the next
  trading day starts (:func:`arena.book.start_day`), on markets with ``t_plus_one``.

Pure: no state between calls (the book is :mod:`arena.book`'s frozen value).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from arena.book import AccountState, apply_fill, fill_id_for, start_day
from arena.events import (
    Event,
    FillEvent,
    OrderAccepted,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
)
from arena.market import Bar
from arena.money import (
    notional_minor,
    price_from_float,
    quantity_from_float,
    quantity_to_float,
)
from arena.orders import (
    InvalidTransition,
    Order,
    OrderStatus,
    apply_fill_to_order,
    transition,
)
from arena.rules import BrokerRules
from simulators.fill_model import (
    NO_IMPACT,
    ChildFill,
    ImpactState,
    fill_child_order,
)

Outcome = Literal["filled", "partially_filled", "rejected", "no_fill", "expired"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResult:
    """What one broker step (or one parent order's day) did.

    Parameters
    ----------
    state:
        The books afterwards.
    order:
        The order afterwards.
    events:
        Events in the order they happened.
    status:
        ``filled``, ``partially_filled`` (something filled, some still working),
        ``rejected``, ``no_fill`` (working, nothing filled on this bar) or ``expired``
        (the parent's day ended with some unfilled; it may have filled partly).
    reason:
        ``"ok"`` or the reason code of why less than asked was filled.
    """

    state: AccountState
    order: Order
    events: tuple[Event, ...]
    status: Outcome
    reason: str

    @property
    def fills(self) -> tuple[FillEvent, ...]:
        """The fill events among :attr:`events`."""
        return tuple(e for e in self.events if isinstance(e, FillEvent))


def check_pair(state: AccountState, order: Order, bar: Bar) -> None:
    if order.account != state.account:
        raise ValueError(f"order {order.order_id} is for {order.account}, not {state.account}")
    if order.symbol != bar.symbol:
        raise ValueError(f"order {order.order_id} is for {order.symbol}, bar is {bar.symbol}")
    if order.day != bar.day:
        raise ValueError(f"order {order.order_id} lives on {order.day}, bar is of {bar.day}")


def sell_lot(order: Order, rules: BrokerRules) -> int:
    # Closing a whole position may be an odd lot (the exchanges allow it), so those sells
    # trade in single units.
    return rules.lot_units if order.quantity % rules.lot_units == 0 else 1


def _admission_reason(
    state: AccountState, order: Order, bar: Bar, rules: BrokerRules, *, check_cash: bool = True
) -> str:
    if not bar.tradable:
        return "suspended"
    if order.side == "sell":
        if order.quantity > state.held(order.symbol):
            return "insufficient_position"
        if order.quantity > state.sellable(order.symbol):
            return "t_plus_one"
        if order.quantity % rules.lot_units and order.quantity != state.held(order.symbol):
            return "lot_size"
    elif order.quantity % rules.lot_units:
        return "lot_size"
    lot = rules.lot_units if order.side == "buy" else sell_lot(order, rules)
    probe = fill_child_order(
        order.side,
        quantity_to_float(order.quantity, rules.units.quantity_digits),
        bar.quote(),
        sigma=0.0,
        params=rules.fill_params(order.symbol, lot, bar.day),
    )
    if probe.reason in ("limit_up", "limit_down"):
        return probe.reason
    if order.side == "buy" and check_cash:
        price = price_from_float(bar.open, rules.units.price_digits)
        value = notional_minor(order.quantity, price, rules.units)
        if value + rules.commission_for(value) > state.cash:
            return "insufficient_cash"
    return ""


def _book_price(raw: float, digits: int) -> Decimal:
    """Return the fill price at book precision (our impact may leave the bar's range)."""
    return price_from_float(raw, digits)


def _fill_cost(
    order: Order, quantity: int, price: Decimal, bar: Bar, rules: BrokerRules
) -> tuple[int, int, int]:
    notional = notional_minor(quantity, price, rules.units)
    commission = rules.commission_for(order.filled_notional + notional) - rules.commission_for(
        order.filled_notional
    )
    return notional, commission, rules.taxes_for(order.side, notional, bar.day)


def fill_on_bar(
    state: AccountState,
    order: Order,
    bar: Bar,
    rules: BrokerRules,
    *,
    want: int,
    sigma: float,
    impact: ImpactState = NO_IMPACT,
    bar_number: int = 0,
    complete: bool = False,
) -> tuple[AccountState, Order, list[Event], int, str, ImpactState]:
    """Fill up to ``want`` units of a working order on ``bar``; return what changed.

    ``impact``, ``bar_number`` and ``complete`` are the fill model's (the parent's transient
    state, the bar's number along its horizon, the end-of-day completion); the last value
    returned is the parent's transient state after this bar.
    """
    if want <= 0:
        return state, order, [], 0, "ok", impact
    if not bar.tradable:
        return state, order, [], 0, "suspended", impact
    digits = rules.units.quantity_digits
    lot = rules.lot_units if order.side == "buy" else sell_lot(order, rules)
    params = rules.fill_params(order.symbol, lot, bar.day)

    def fill_model(units: int, *, whole: bool) -> ChildFill:
        return fill_child_order(
            order.side,
            quantity_to_float(units, digits),
            bar.quote(),
            sigma=sigma,
            params=params,
            impact=impact,
            bar_number=bar_number,
            complete=whole,
        )

    child = fill_model(want, whole=complete)
    reason = child.reason
    if child.filled <= 0:
        return state, order, [], 0, "end_of_day" if reason == "zero_quantity" else reason, impact
    quantity = min(quantity_from_float(child.filled, digits), want)
    quantity -= quantity % lot
    if order.side == "sell":
        sellable = state.sellable(order.symbol)
        if quantity > sellable:
            quantity = sellable - sellable % lot
            reason = (
                "t_plus_one" if state.held(order.symbol) > sellable else "insufficient_position"
            )
    price = _book_price(child.price, rules.units.price_digits)

    def affordable(units: int) -> bool:
        notional, commission, taxes = _fill_cost(order, units, price, bar, rules)
        sign = -1 if order.side == "buy" else 1
        return state.cash + sign * notional - commission - taxes >= 0

    if quantity > 0 and not affordable(quantity):
        # Largest whole number of lots the cash pays for (cost grows with the quantity).
        low_lots, high_lots = 0, quantity // lot
        while low_lots < high_lots:
            middle = (low_lots + high_lots + 1) // 2
            if affordable(middle * lot):
                low_lots = middle
            else:
                high_lots = middle - 1
        quantity = low_lots * lot
        reason = "insufficient_cash"
    if quantity <= 0:
        return state, order, [], 0, reason, impact
    if quantity < quantity_from_float(child.filled, digits):
        # Fewer units than the model priced: re-price them (and their impact) on their own;
        # a smaller quantity costs less, so it stays affordable.
        child = fill_model(quantity, whole=True)
        price = _book_price(child.price, rules.units.price_digits)
    notional, commission, taxes = _fill_cost(order, quantity, price, bar, rules)
    remaining = order.quantity - order.filled - quantity
    seq = state.last_fill_seq + 1
    kind = OrderFilled if remaining == 0 else OrderPartiallyFilled
    fill = kind(
        account=state.account,
        at=bar.at,
        order_id=order.order_id,
        fill_id=fill_id_for(state.account, seq),
        fill_seq=seq,
        day=bar.day,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=price,
        notional=notional,
        commission=commission,
        taxes=taxes,
        remaining=remaining,
    )
    return (
        apply_fill(state, fill),
        apply_fill_to_order(order, fill),
        [fill],
        quantity,
        reason if quantity < want else "ok",
        child.impact,
    )


def admit_order(
    state: AccountState, order: Order, bar: Bar, rules: BrokerRules, *, check_cash: bool = True
) -> tuple[Order, Event]:
    reason = _admission_reason(state, order, bar, rules, check_cash=check_cash)
    if reason:
        rejected = transition(order, OrderStatus.REJECTED, reason=reason)
        return rejected, OrderRejected(
            account=state.account, at=bar.at, order_id=order.order_id, reason=reason
        )
    accepted = transition(order, OrderStatus.ACCEPTED)
    return accepted, OrderAccepted(account=state.account, at=bar.at, order_id=order.order_id)


def execute_order(
    state: AccountState,
    order: Order,
    bar: Bar,
    rules: BrokerRules,
    *,
    sigma: float = 0.0,
) -> ExecutionResult:
    """Execute ``order`` on one ``bar``: the broker's pure step.

    A ``new`` order is first admitted (accepted or rejected with a reason, see the module
    docstring); a working order fills as much of its remaining quantity as the bar allows.

    Parameters
    ----------
    state:
        The account's books.
    order:
        A ``new``, ``accepted`` or ``partially_filled`` order for ``bar.symbol`` and
        ``bar.day``.
    bar:
        The bar it executes on.
    rules:
        Market rules, fees and fill model parameters.
    sigma:
        Volatility of the square-root impact, as a fraction of the price.

    Raises
    ------
    InvalidTransition
        If the order is already terminal.
    ValueError
        If the order and the bar or account do not belong together.
    """
    check_pair(state, order, bar)
    books = start_day(state, bar.day)
    events: list[Event] = []
    if order.status == OrderStatus.NEW:
        order, event = admit_order(books, order, bar, rules)
        events.append(event)
        if order.status == OrderStatus.REJECTED:
            return ExecutionResult(
                state=books, order=order, events=tuple(events), status="rejected",
                reason=order.reason,
            )  # fmt: skip
    elif not order.is_working:
        raise InvalidTransition(f"order {order.order_id} is {order.status}: it cannot execute")
    books, order, fills, filled, reason, _ = fill_on_bar(
        books, order, bar, rules, want=order.remaining, sigma=sigma
    )
    events.extend(fills)
    status: Outcome
    if order.status == OrderStatus.FILLED:
        status = "filled"
    elif filled > 0:
        status = "partially_filled"
    else:
        status = "no_fill"
    return ExecutionResult(
        state=books, order=order, events=tuple(events), status=status, reason=reason
    )
