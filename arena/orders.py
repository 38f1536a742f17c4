"""Orders and their explicit state machine.

An :class:`Order` is an immutable value; every change returns a new one through
:func:`transition` (status only) or :func:`apply_fill_to_order` (a fill). The allowed moves
are the rows of :data:`TRANSITIONS`::

    new -> accepted | rejected
    accepted -> partially_filled | filled | cancelled | expired
    partially_filled -> partially_filled | filled | cancelled | expired

``filled``, ``rejected``, ``cancelled`` and ``expired`` are terminal. Anything else raises
:class:`InvalidTransition`: an invariant violation stops the run loudly, it is never an event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from arena.events import REJECT_REASONS, FillEvent, Side

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "DuplicateFill",
    "FillSequenceError",
    "InvalidTransition",
    "Order",
    "OrderStatus",
    "apply_fill_to_order",
    "order_id_for",
    "transition",
]


class InvalidTransition(RuntimeError):
    """An order was asked to move along an edge that is not in :data:`TRANSITIONS`."""


class DuplicateFill(RuntimeError):
    """A fill id (or fill number) was applied twice."""


class FillSequenceError(RuntimeError):
    """A fill arrived out of order: its number skips one, or it belongs elsewhere."""


class OrderStatus(StrEnum):
    """Life-cycle states of an order."""

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


S = OrderStatus
#: Every allowed move; the keys without targets are terminal.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.ACCEPTED, S.REJECTED}),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}
TERMINAL: frozenset[OrderStatus] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# Statuses reached only by applying a fill (so that the filled quantity always agrees).
_FILL_STATUSES = frozenset({S.PARTIALLY_FILLED, S.FILLED})
# Statuses that end a working order and need a reason.
_REASONED = frozenset({S.REJECTED, S.CANCELLED, S.EXPIRED})


def order_id_for(account: str, seq: int) -> str:
    """Return the id of the account's order number ``seq`` (``"aggressive-O00000042"``)."""
    return f"{account}-O{seq:08d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A parent order of one account on one trading day.

    Parameters
    ----------
    account:
        The account placing it.
    order_id:
        Unique id (see :func:`order_id_for`).
    seq:
        The account's order number, 1, 2, 3... without gaps.
    day:
        Trading day the order lives on (it expires at the day's end).
    symbol, side:
        What to trade.
    quantity:
        Quantity units wanted (``> 0``).
    status:
        Current state (see :data:`TRANSITIONS`).
    filled:
        Quantity units filled so far.
    filled_notional, commission, taxes:
        Running totals of the fills, minor units (the commission minimum is charged on the
        order's cumulative value, so slicing an order never pays the minimum twice).
    fill_ids:
        Ids of the fills applied, in order.
    reason:
        Why it was rejected, cancelled or expired (one of
        :data:`~arena.events.REJECT_REASONS`); ``""`` otherwise.
    decision_id:
        The decision chain that produced it (stored with the order in the ledger).
    """

    account: str
    order_id: str
    seq: int
    day: date
    symbol: str
    side: Side
    quantity: int
    status: OrderStatus = OrderStatus.NEW
    filled: int = 0
    filled_notional: int = 0
    commission: int = 0
    taxes: int = 0
    fill_ids: tuple[str, ...] = ()
    reason: str = ""
    decision_id: str | None = None

    def __post_init__(self) -> None:
        where = f"Order {self.order_id!r}"
        if not self.account or not self.order_id or not self.symbol:
            raise ValueError(f"{where}: account, order_id and symbol must be non-empty")
        if self.side not in ("buy", "sell"):
            raise ValueError(f"{where}: side must be 'buy' or 'sell', got {self.side!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError(f"{where}: quantity must be an int, got {self.quantity!r}")
        if self.quantity <= 0:
            raise ValueError(f"{where}: quantity must be > 0, got {self.quantity}")
        if self.seq < 1:
            raise ValueError(f"{where}: seq must be >= 1, got {self.seq}")
        object.__setattr__(self, "status", OrderStatus(self.status))
        if not 0 <= self.filled <= self.quantity:
            raise ValueError(f"{where}: filled {self.filled} not in [0, {self.quantity}]")
        if min(self.filled_notional, self.commission, self.taxes) < 0:
            raise ValueError(f"{where}: money totals must be >= 0")
        if self.status == S.FILLED and self.filled != self.quantity:
            raise ValueError(f"{where}: status filled with {self.filled}/{self.quantity} filled")
        if self.status in (S.NEW, S.ACCEPTED, S.REJECTED) and self.filled != 0:
            raise ValueError(f"{where}: status {self.status} with {self.filled} filled")
        if self.status == S.PARTIALLY_FILLED and not 0 < self.filled < self.quantity:
            raise ValueError(f"{where}: partially_filled with {self.filled}/{self.quantity}")
        if self.reason and self.reason not in REJECT_REASONS:
            raise ValueError(f"{where}: reason {self.reason!r} not one of {REJECT_REASONS}")
        if self.status in _REASONED and not self.reason:
            raise ValueError(f"{where}: status {self.status} needs a reason")

    @property
    def remaining(self) -> int:
        """Quantity units still to fill (0 once the order is terminal)."""
        return 0 if self.status in TERMINAL else self.quantity - self.filled

    @property
    def is_working(self) -> bool:
        """True while the order may still fill (accepted or partially filled)."""
        return self.status in (S.ACCEPTED, S.PARTIALLY_FILLED)


def transition(order: Order, target: OrderStatus | str, *, reason: str = "") -> Order:
    """Return ``order`` moved to ``target``.

    Parameters
    ----------
    order:
        The order now.
    target:
        The new status; ``partially_filled`` and ``filled`` are reached through
        :func:`apply_fill_to_order` only.
    reason:
        Required for ``rejected``, ``cancelled`` and ``expired``.

    Raises
    ------
    InvalidTransition
        If ``order.status -> target`` is not in :data:`TRANSITIONS`, or ``target`` is a fill
        status.
    """
    try:
        new_status = OrderStatus(target)
    except ValueError:
        raise InvalidTransition(f"order {order.order_id}: unknown status {target!r}") from None
    if new_status not in TRANSITIONS[order.status]:
        raise InvalidTransition(
            f"order {order.order_id}: {order.status} -> {new_status} is not allowed "
            f"(allowed from {order.status}: {sorted(TRANSITIONS[order.status]) or 'none'})"
        )
    if new_status in _FILL_STATUSES:
        raise InvalidTransition(
            f"order {order.order_id}: {new_status} is reached by applying a fill, not directly"
        )
    return replace(order, status=new_status, reason=reason)


def apply_fill_to_order(order: Order, fill: FillEvent) -> Order:
    """Return ``order`` with ``fill`` applied (``partially_filled`` or ``filled``).

    Raises
    ------
    DuplicateFill
        If ``fill.fill_id`` was already applied to this order.
    FillSequenceError
        If the fill belongs to another order, side or symbol, or overfills the order.
    InvalidTransition
        If the order is not working (a fill on a new, rejected or finished order).
    """
    if fill.fill_id in order.fill_ids:
        raise DuplicateFill(f"order {order.order_id}: fill {fill.fill_id} applied twice")
    if (fill.order_id, fill.symbol, fill.side, fill.account) != (
        order.order_id,
        order.symbol,
        order.side,
        order.account,
    ):
        raise FillSequenceError(
            f"fill {fill.fill_id} ({fill.account} {fill.order_id} {fill.side} {fill.symbol}) "
            f"does not belong to order {order.order_id} ({order.side} {order.symbol})"
        )
    filled = order.filled + fill.quantity
    if filled > order.quantity:
        raise FillSequenceError(
            f"fill {fill.fill_id} overfills order {order.order_id}: "
            f"{filled} > {order.quantity} units"
        )
    target = S.FILLED if filled == order.quantity else S.PARTIALLY_FILLED
    if target not in TRANSITIONS[order.status]:
        raise InvalidTransition(
            f"order {order.order_id}: {order.status} -> {target} by fill {fill.fill_id} "
            "is not allowed"
        )
    if fill.remaining != order.quantity - filled:
        raise FillSequenceError(
            f"fill {fill.fill_id}: remaining {fill.remaining} disagrees with order "
            f"{order.order_id} ({order.quantity - filled} left)"
        )
    return replace(
        order,
        status=target,
        filled=filled,
        filled_notional=order.filled_notional + fill.notional,
        commission=order.commission + fill.commission,
        taxes=order.taxes + fill.taxes,
        fill_ids=(*order.fill_ids, fill.fill_id),
    )
