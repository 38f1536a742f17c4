"""Domain events of the paper broker: frozen values that check their own invariants.

Every event names its account and (except a day-level veto) its order. Money fields are
``int`` minor units and quantities ``int`` quantity units (see :mod:`arena.money`); prices
are ``Decimal``. A fill is an event (:class:`OrderFilled` or :class:`OrderPartiallyFilled`,
both :class:`FillEvent`): the ledger stores fill events and rebuilds every position from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

__all__ = [
    "REJECT_REASONS",
    "Event",
    "FillEvent",
    "OrderAccepted",
    "OrderCancelled",
    "OrderExpired",
    "OrderFilled",
    "OrderPartiallyFilled",
    "OrderRejected",
    "OrderSubmitted",
    "RiskVeto",
    "Side",
]

Side = Literal["buy", "sell"]

#: Reason codes of rejections, expiries and child orders that could not fill.
REJECT_REASONS: tuple[str, ...] = (
    "suspended",  # the bar is not tradable (suspension, halt, missing bar)
    "limit_up",  # a buy while the price is locked at the daily limit-up
    "limit_down",  # a sell while the price is locked at the daily limit-down
    "lot_size",  # the quantity is not a whole number of lots
    "insufficient_cash",  # the buy and its fees cost more than the cash
    "insufficient_position",  # selling more than is held (long only: no short sales)
    "t_plus_one",  # selling shares bought on the same trading day (T+1 markets)
    "no_volume",  # the bar traded nothing
    "participation_cap",  # the bar's volume share was used up
    "lot_rounding",  # what the cap left is less than one lot
    "end_of_day",  # the parent order's day ended before it was filled
    "risk_veto",  # the risk governor refused it
    "cancelled_by_user",  # the account cancelled it
    "halted",  # an exchange-wide halt (market circuit breaker) covered the bar
    "stale_data",  # the feed was stale: no order is placed on a stale price
    "broker_fault",  # the broker rejected or timed out the child order (retried, then manual)
)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_aware(at: datetime, where: str) -> None:
    _require(isinstance(at, datetime), f"{where}.at must be a datetime, got {type(at).__name__}")
    _require(at.tzinfo is not None, f"{where}.at must be timezone-aware, got {at!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event has: the account and the simulated time it happened."""

    account: str
    at: datetime

    def __post_init__(self) -> None:
        where = type(self).__name__
        _require(bool(self.account), f"{where}.account must be a non-empty name")
        _check_aware(self.at, where)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(Event):
    """An order was created by an account (status ``new``)."""

    order_id: str
    symbol: str
    side: Side
    quantity: int

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _require(self.side in ("buy", "sell"), f"OrderSubmitted.side {self.side!r} not buy/sell")
        _require(
            isinstance(self.quantity, int) and self.quantity > 0,
            f"OrderSubmitted.quantity must be a positive int, got {self.quantity!r}",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Event):
    """The broker accepted the order: it is working."""

    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Event):
    """The broker refused the order; ``reason`` is one of :data:`REJECT_REASONS`."""

    order_id: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _require(
            self.reason in REJECT_REASONS,
            f"OrderRejected.reason {self.reason!r} not one of {REJECT_REASONS}",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    """A working order was cancelled; ``unfilled`` quantity units will never trade."""

    order_id: str
    reason: str
    unfilled: int

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _require(self.reason in REJECT_REASONS, f"OrderCancelled.reason {self.reason!r} unknown")
        _require(self.unfilled > 0, f"OrderCancelled.unfilled must be > 0, got {self.unfilled}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(Event):
    """A working order reached the end of its life (the day) with ``unfilled`` units left."""

    order_id: str
    reason: str
    unfilled: int

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _require(self.reason in REJECT_REASONS, f"OrderExpired.reason {self.reason!r} unknown")
        _require(self.unfilled > 0, f"OrderExpired.unfilled must be > 0, got {self.unfilled}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FillEvent(Event):
    """One execution of (part of) an order.

    Parameters
    ----------
    order_id, fill_id:
        The order and this fill's identity (unique across the ledger).
    fill_seq:
        The account's fill number, 1, 2, 3... without gaps (a duplicate or a gap raises when
        the fill is applied).
    day:
        Trading day of the fill (T+1 and taxes are reckoned by it).
    symbol, side, quantity:
        What was traded, in quantity units (``> 0``).
    price:
        Execution price per whole unit.
    notional:
        ``quantity * price`` in minor units (rounded once, half to even).
    commission, taxes:
        Fees and taxes charged by this fill, minor units (``>= 0``).
    remaining:
        Quantity units of the order still unfilled after this fill.
    """

    order_id: str
    fill_id: str
    fill_seq: int
    day: date
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    notional: int
    commission: int
    taxes: int
    remaining: int

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        where = f"{type(self).__name__} {self.fill_id!r}"
        _require(bool(self.fill_id), f"{where}: fill_id must be non-empty")
        _require(self.fill_seq >= 1, f"{where}: fill_seq must be >= 1, got {self.fill_seq}")
        _require(self.side in ("buy", "sell"), f"{where}: side {self.side!r} not buy/sell")
        for name in ("quantity", "notional", "commission", "taxes", "remaining"):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and not isinstance(value, bool),
                f"{where}: {name} must be an int, got {type(value).__name__}",
            )
        _require(self.quantity > 0, f"{where}: quantity must be > 0, got {self.quantity}")
        _require(self.notional >= 0, f"{where}: notional must be >= 0, got {self.notional}")
        _require(self.commission >= 0, f"{where}: commission must be >= 0")
        _require(self.taxes >= 0, f"{where}: taxes must be >= 0")
        _require(self.remaining >= 0, f"{where}: remaining must be >= 0")
        _require(
            isinstance(self.price, Decimal) and self.price.is_finite() and self.price > 0,
            f"{where}: price must be a positive Decimal, got {self.price!r}",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(FillEvent):
    """The fill that completed its order (``remaining == 0``)."""

    def __post_init__(self) -> None:
        FillEvent.__post_init__(self)
        _require(self.remaining == 0, f"OrderFilled {self.fill_id!r}: remaining must be 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPartiallyFilled(FillEvent):
    """A fill that left part of its order working (``remaining > 0``)."""

    def __post_init__(self) -> None:
        FillEvent.__post_init__(self)
        _require(
            self.remaining > 0, f"OrderPartiallyFilled {self.fill_id!r}: remaining must be > 0"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskVeto(Event):
    """The risk governor refused an order (or froze trading, ``order_id=None``).

    Parameters
    ----------
    rule:
        The limit that fired (``"max_name_weight"``, ``"circuit_breaker"``...).
    reason:
        A sentence with the figures (``"SYN003 would be 34.1% of equity > 30%"``).
    value, limit:
        The measured figure and the limit it broke, when the rule has numbers.
    """

    order_id: str | None
    rule: str
    reason: str
    value: float | None = None
    limit: float | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _require(bool(self.rule), "RiskVeto.rule must be non-empty")
        _require(bool(self.reason), "RiskVeto.reason must be non-empty")
