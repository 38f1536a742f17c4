"""The order state machine: every allowed move works, everything else raises."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from arena.events import FillEvent, OrderFilled, OrderPartiallyFilled, OrderRejected
from arena.orders import (
    TERMINAL,
    TRANSITIONS,
    DuplicateFill,
    FillSequenceError,
    InvalidTransition,
    Order,
    OrderStatus,
    apply_fill_to_order,
    transition,
)

DAY = date(2024, 3, 5)
AT = datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
S = OrderStatus


def _order(status: OrderStatus = S.NEW, filled: int = 0) -> Order:
    reason = "suspended" if status in (S.REJECTED, S.CANCELLED, S.EXPIRED) else ""
    return Order(
        account="acct",
        order_id="acct-O00000001",
        seq=1,
        day=DAY,
        symbol="SYN000",
        side="buy",
        quantity=1000,
        status=status,
        filled=filled,
        reason=reason,
    )


def _fill(quantity: int, remaining: int, fill_id: str = "acct-F00000001") -> FillEvent:
    kind = OrderFilled if remaining == 0 else OrderPartiallyFilled
    return kind(
        account="acct",
        at=AT,
        order_id="acct-O00000001",
        fill_id=fill_id,
        fill_seq=int(fill_id[-8:]),
        day=DAY,
        symbol="SYN000",
        side="buy",
        quantity=quantity,
        price=Decimal("10.00"),
        notional=quantity * 1000,
        commission=500,
        taxes=0,
        remaining=remaining,
    )


def _order_in(status: OrderStatus) -> Order:
    filled = 400 if status == S.PARTIALLY_FILLED else (1000 if status == S.FILLED else 0)
    return _order(status, filled)


ALLOWED = [(src, dst) for src, targets in TRANSITIONS.items() for dst in sorted(targets)]
FORBIDDEN = [(src, dst) for src in S for dst in S if dst not in TRANSITIONS[src]]


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_transition_allowed_edge_reaches_target(source: OrderStatus, target: OrderStatus) -> None:
    order = _order_in(source)
    if target == S.PARTIALLY_FILLED:
        moved = apply_fill_to_order(order, _fill(100, 1000 - order.filled - 100, "acct-F00000009"))
    elif target == S.FILLED:
        left = 1000 - order.filled
        moved = apply_fill_to_order(order, _fill(left, 0, "acct-F00000009"))
    else:
        moved = transition(order, target, reason="end_of_day" if target != S.ACCEPTED else "")
    assert moved.status == target
    assert order.status == source  # the original value is untouched


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_transition_forbidden_edge_raises(source: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"{source}"):
        transition(_order_in(source), target, reason="end_of_day")


def test_transition_fill_status_directly_raises_even_when_edge_exists() -> None:
    with pytest.raises(InvalidTransition, match="applying a fill"):
        transition(_order(S.ACCEPTED), S.PARTIALLY_FILLED)


def test_terminal_statuses_are_exactly_the_four_ends() -> None:
    assert {S.FILLED, S.REJECTED, S.CANCELLED, S.EXPIRED} == TERMINAL


def test_apply_fill_to_new_order_raises_invalid_transition() -> None:
    with pytest.raises(InvalidTransition):
        apply_fill_to_order(_order(S.NEW), _fill(100, 900))


def test_apply_fill_same_fill_id_twice_raises_duplicate_fill() -> None:
    order = apply_fill_to_order(_order(S.ACCEPTED), _fill(100, 900))
    with pytest.raises(DuplicateFill, match="acct-F00000001"):
        apply_fill_to_order(order, _fill(100, 800))


def test_apply_fill_overfill_raises() -> None:
    with pytest.raises(FillSequenceError, match="overfills"):
        apply_fill_to_order(_order(S.ACCEPTED), _fill(1100, 0))


def test_apply_fill_wrong_remaining_raises() -> None:
    with pytest.raises(FillSequenceError, match="remaining"):
        apply_fill_to_order(_order(S.ACCEPTED), _fill(100, 5))


def test_apply_fill_accumulates_quantity_money_and_ids() -> None:
    order = apply_fill_to_order(_order(S.ACCEPTED), _fill(300, 700, "acct-F00000001"))
    order = apply_fill_to_order(order, _fill(700, 0, "acct-F00000002"))
    assert order.status == S.FILLED
    assert order.filled == 1000
    assert order.filled_notional == 1000 * 1000
    assert order.commission == 1000
    assert order.fill_ids == ("acct-F00000001", "acct-F00000002")
    assert order.remaining == 0


def test_order_invariants_inconsistent_status_raises() -> None:
    with pytest.raises(ValueError, match="filled"):
        _order(S.FILLED, filled=10)
    with pytest.raises(ValueError, match="needs a reason"):
        Order(
            account="a", order_id="a-O1", seq=1, day=DAY, symbol="X", side="buy", quantity=1,
            status=S.EXPIRED,
        )  # fmt: skip
    with pytest.raises(ValueError, match="quantity"):
        Order(account="a", order_id="a-O1", seq=1, day=DAY, symbol="X", side="buy", quantity=0)


def test_events_check_invariants_on_construction() -> None:
    with pytest.raises(ValueError, match="remaining must be 0"):
        OrderFilled(**{**_fields(_fill(100, 900)), "remaining": 900})
    with pytest.raises(ValueError, match="reason"):
        OrderRejected(account="a", at=AT, order_id="o", reason="because")
    with pytest.raises(ValueError, match="timezone-aware"):
        OrderRejected(account="a", at=datetime(2024, 1, 1), order_id="o", reason="suspended")
    with pytest.raises(ValueError, match="positive Decimal"):
        OrderPartiallyFilled(**{**_fields(_fill(100, 900)), "price": Decimal("0")})


def _fields(event: FillEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__dataclass_fields__}


def test_orders_and_events_pickle_round_trip_equal() -> None:
    order = apply_fill_to_order(_order(S.ACCEPTED), _fill(100, 900))
    fill = _fill(100, 900)
    assert pickle.loads(pickle.dumps(order)) == order
    assert pickle.loads(pickle.dumps(fill)) == fill
