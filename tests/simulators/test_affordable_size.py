"""The largest affordable size is a whole number of lots that fits the budget (issue 13).

Budgets within an ulp of a lot's cost used to come back as a size an ulp under a whole lot
(the final fit stepped the size down by ulps, as for fractional sizes).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.backtest_nb import affordable_size_nb, order_fee_nb

FEES = [(0.00025, 5.0, 0.0), (0.0, 0.0, 1.0), (0.001, 0.0, 0.0), (0.0, 0.0, 0.0)]


def _cost(size: float, price: float, rate: float, minimum: float, fixed: float) -> float:
    value = size * price
    return value + order_fee_nb(value, rate, minimum, fixed)


def test_sizes_are_whole_lots_within_the_budget_and_the_largest_such() -> None:
    rng = np.random.default_rng(7)
    for i in range(30_000):
        lot = (1.0, 100.0, 10.0)[i % 3]
        rate, minimum, fixed = FEES[i % 4]
        price = float(np.round(rng.uniform(1.0, 500.0), 2))
        lots = int(rng.integers(1, 1000))
        exact = _cost(lots * lot, price, rate, minimum, fixed)
        # Budgets a few ulps either side of the cost of a whole number of lots.
        budget = exact
        for _ in range(int(rng.integers(0, 4))):
            budget = float(np.nextafter(budget, np.inf if i % 2 else 0.0))
        size = affordable_size_nb(budget, price, lot, rate, minimum, fixed)
        assert size / lot == round(size / lot), (budget, price, lot, size)
        assert _cost(size, price, rate, minimum, fixed) <= budget, (budget, price, lot, size)
        # The largest: one more lot does not fit.
        assert _cost(size + lot, price, rate, minimum, fixed) > budget, (budget, price, size)


def test_fractional_sizes_still_fill_the_budget_to_the_last_ulp() -> None:
    # The control: without lots the size is the largest representable one that fits.
    for budget, price in ((100_000.0, 37.13), (1e6, 0.0313), (5_000.0, 1234.5)):
        size = affordable_size_nb(budget, price, 0.0, 0.0, 0.0, 0.0)
        assert size * price <= budget < np.nextafter(size, np.inf) * price * (1 + 1e-12)


# Lots of a share board (100), of one share (1) and of a satoshi (1e-8). For each, the float
# the ledger reads for k whole lots is the one nearest the decimal k x lot
# (arena.money.quantity_to_float): written here with Fraction, independently of the kernel.
LOTS = {100.0: Fraction(100), 1.0: Fraction(1), 1e-8: Fraction(1, 10**8)}


def _whole_lots(size: float, lot: float) -> int | None:
    """Return k when ``size`` is exactly the quantity of k whole lots, else None."""
    exact = LOTS[lot]
    count = round(Fraction(size) / exact)
    return count if float(count * exact) == size else None


@settings(max_examples=3_000, deadline=None, derandomize=True)
@given(
    lot=st.sampled_from(sorted(LOTS)),
    cents=st.integers(1, 10_000_000),  # prices with 2 decimals, 0.01 to 100,000.00
    lots=st.integers(1, 10**6),
    fees=st.sampled_from(FEES),
    ulps=st.integers(-6, 6),
)
def test_budgets_ulps_around_a_lot_boundary_buy_whole_lots_that_fit(
    lot: float, cents: int, lots: int, fees: tuple[float, float, float], ulps: int
) -> None:
    price = cents / 100
    rate, minimum, fixed = fees
    boundary = _cost(float(lots * LOTS[lot]), price, rate, minimum, fixed)
    budget = boundary
    for _ in range(abs(ulps)):
        budget = float(np.nextafter(budget, np.inf if ulps > 0 else -np.inf))
    size = affordable_size_nb(budget, price, lot, rate, minimum, fixed)
    count = _whole_lots(size, lot)
    assert count is not None, (budget, price, lot, size)
    assert _cost(size, price, rate, minimum, fixed) <= budget, (budget, price, lot, size)
    # The largest whole number of lots: one more does not fit.
    more = float((count + 1) * LOTS[lot])
    assert _cost(more, price, rate, minimum, fixed) > budget, (budget, price, lot, size)
    # At or above the boundary the boundary's lots fit (the control that the probe sits on a
    # lot boundary and not somewhere the answer is trivially smaller).
    if ulps >= 0:
        assert count >= lots, (budget, price, lot, size)
