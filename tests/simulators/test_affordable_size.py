"""The largest affordable size is a whole number of lots that fits the budget (issue 13).

Budgets within an ulp of a lot's cost used to come back as a size an ulp under a whole lot
(the final fit stepped the size down by ulps, as for fractional sizes).
"""

from __future__ import annotations

import numpy as np

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
