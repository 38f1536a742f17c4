"""Whole lots: the one rule every sizing path rounds by (backtest, arena, RL environment).

A size is a whole number ``k`` of lots, counted as an integer and turned into a float
quantity once, by :func:`lots_size_nb`. For a decimal lot (``1e-8`` of a coin, ``0.01`` of a
share) the quantity is ``k / (1 / lot)``, the float nearest the decimal ``k x lot``: exactly
the float the ledger reads for ``k`` lots (``arena.money.quantity_to_float``); ``k * lot``
would be off by an ulp for many ``k`` (``3 * 1e-8 != 3e-8``). Integral lots (1, 100) are
exact either way.

Two roundings, on purpose different:

* a *budget* (:func:`simulators.backtest_nb.affordable_size_nb`) is fitted exactly: the
  cost of the lots, computed as the caller will compute it, never exceeds the budget;
* a *quantity* (:func:`floor_lots_nb`) is floored with a tolerance of ``1e-9`` of a lot: a
  quantity built by float arithmetic a hair under a whole lot is that lot.

Counts stop at ``MAX_LOTS`` (``2**52``), beyond which a float can no longer count by one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_LOTS = 4503599627370496.0  # 2**52: the largest count a float64 still steps by one
LOT_TOLERANCE = 1e-9  # of a lot: float noise in a quantity, never in a budget


@njit(cache=True)
def lot_inverse_nb(lot: float) -> float:
    """Return ``1 / lot`` when it is a whole number above 1 (a decimal lot), else 0."""
    if lot <= 0.0 or lot >= 1.0:
        return 0.0
    inverse = np.round(1.0 / lot)
    if inverse >= 2.0 and abs(inverse * lot - 1.0) <= 1e-12:
        return inverse
    return 0.0


@njit(cache=True)
def lots_size_nb(count: float, lot: float) -> float:
    """Return the quantity of ``count`` whole lots of size ``lot``."""
    if count <= 0.0:
        return 0.0
    inverse = lot_inverse_nb(lot)
    if inverse > 0.0:
        return count / inverse
    return count * lot


@njit(cache=True)
def floor_lots_nb(quantity: float, lot: float) -> float:
    """Return the number of whole lots in ``quantity`` (tolerant of float noise)."""
    if not quantity > 0.0 or not lot > 0.0:
        return 0.0
    # The quotient of a large quantity can fall a hair under a whole number by more than the
    # tolerance (its ulp is larger): floor it, then correct the count by the sizes themselves.
    reach = quantity + LOT_TOLERANCE * lot
    count = min(max(np.floor(quantity / lot + LOT_TOLERANCE), 0.0), MAX_LOTS)
    while count < MAX_LOTS and lots_size_nb(count + 1.0, lot) <= reach:
        count += 1.0
    while count > 0.0 and lots_size_nb(count, lot) > reach:
        count -= 1.0
    return count


@njit(cache=True)
def round_to_lot_nb(quantity: float, lot: float) -> float:
    """Return ``quantity`` rounded down to whole lots (tolerant of float noise)."""
    return lots_size_nb(floor_lots_nb(quantity, lot), lot)
