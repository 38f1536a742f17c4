"""The money boundary: floats become exact integers by one documented rounding rule."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arena.money import (
    MoneyUnits,
    format_money,
    money_from_float,
    money_to_float,
    notional_minor,
    price_from_float,
    quantity_from_float,
    rate_amount,
    units_for_market,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.125, 12),  # half to even: down to the even cent
        (0.135, 14),  # half to even: up to the even cent
        (-0.125, -12),
        (2.675, 268),  # the float is 2.67499999...; its shortest decimal form "2.675" rounds
        (1.005, 100),
        (0.1 + 0.2, 30),  # 0.30000000000000004 is not a half: plain rounding
        (1234567.891, 123456789),
    ],
)
def test_money_from_float_half_to_even_of_shortest_decimal_gives_documented_cents(
    value: float, expected: int
) -> None:
    assert money_from_float(value) == expected


def test_money_from_float_other_digits_half_to_even_rounds_to_even_unit() -> None:
    assert money_from_float(1.5, 0) == 2
    assert money_from_float(2.5, 0) == 2
    assert money_from_float(0.0005, 3) == 0
    assert money_from_float(0.0015, 3) == 2


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_money_from_float_non_finite_raises(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        money_from_float(bad)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_from_float_cent_values_round_trip_exactly(cents: int) -> None:
    assert money_from_float(cents / 100) == cents
    assert money_from_float(money_to_float(cents)) == cents


def test_notional_minor_exact_product_rounded_once_half_to_even() -> None:
    cny = units_for_market("cn")
    # 3 x 0.335 = 1.005 exactly: a half cent, to the even cent (1.00).
    assert notional_minor(3, Decimal("0.335"), cny) == 100
    # 5 x 0.335 = 1.675: to 1.68.
    assert notional_minor(5, Decimal("0.335"), cny) == 168
    # Float arithmetic would give 10.000000000000002-ish noise; the exact product is 10.
    assert notional_minor(100, Decimal("0.1"), cny) == 1000


def test_notional_minor_fractional_quantity_units_scale_by_quantity_digits() -> None:
    crypto = units_for_market("crypto")
    half_coin = quantity_from_float(0.5, crypto.quantity_digits)
    assert half_coin == 50_000_000
    assert notional_minor(half_coin, Decimal("60001.01"), crypto) == 3_000_050  # 30000.505 -> .50


def test_rate_amount_reads_rate_exactly_and_rounds_half_to_even() -> None:
    assert rate_amount(1_000_001, 0.00025) == 250  # 250.00025
    assert rate_amount(2, 0.25) == 0  # 0.5 -> 0
    assert rate_amount(6, 0.25) == 2  # 1.5 -> 2
    assert rate_amount(10_000_000, 0.001) == 10_000  # 0.001 is read as exactly 1/1000


def test_price_from_float_rounds_to_price_digits_and_rejects_non_positive() -> None:
    assert price_from_float(10.12345, 4) == Decimal("10.1234")  # the 5 goes to the even 4
    assert price_from_float(10.12355, 4) == Decimal("10.1236")
    with pytest.raises(ValueError, match="> 0"):
        price_from_float(0.00001, 4)


def test_units_unknown_market_and_bad_digits_raise() -> None:
    with pytest.raises(ValueError, match="unknown market"):
        units_for_market("forex")
    with pytest.raises(ValueError, match="money_digits"):
        MoneyUnits(money_digits=-1)


def test_format_money_is_exact_decimal_with_currency() -> None:
    assert format_money(123456789, units_for_market("cn")) == "1234567.89 CNY"
    assert format_money(-5, units_for_market("us")) == "-0.05 USD"


def test_cost_removed_is_the_average_cost_share_rounded_half_up() -> None:
    from arena.money import cost_removed

    assert cost_removed(101, 1, 2) == 51  # 50.5 -> 51
    assert cost_removed(100, 1, 3) == 33  # 33.33 -> 33
    assert cost_removed(200, 2, 3) == 133  # 133.33 -> 133
    assert cost_removed(100, 3, 3) == 100  # a full sale takes all of it
    with pytest.raises(ValueError, match="sold 4 of 3"):
        cost_removed(100, 4, 3)
