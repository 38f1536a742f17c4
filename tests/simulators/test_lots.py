"""One whole-lot rule: sizes are the ledger's floats for whole lots (issue 13, item 6)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from arena.money import quantity_to_float
from simulators.fill_model import round_to_lot
from simulators.lots import lots_size_nb, round_to_lot_nb


def _ledger_float(count: int, digits: int) -> float:
    # Independent of the code under test: the decimal count x 10**-digits, read as a float.
    return float(Decimal(count).scaleb(-digits))


def test_lots_of_a_satoshi_are_the_floats_the_ledger_reads() -> None:
    counts = np.random.default_rng(3).integers(1, 10**12, size=2_000)
    for count in (*range(1, 200), *map(int, counts)):
        expected = _ledger_float(count, 8)
        assert lots_size_nb(float(count), 1e-8) == expected, count
        assert quantity_to_float(count, 8) == expected
        # A quantity the ledger holds rounds to itself.
        assert round_to_lot(expected, 1e-8) == expected, count


def test_the_old_product_is_not_the_ledgers_float_control() -> None:
    # The control: k * 1e-8 differs from the ledger's float for many k, so the test above
    # would catch a size built as a product.
    differs = sum(count * 1e-8 != _ledger_float(count, 8) for count in range(1, 200))
    assert differs > 20


def test_round_to_lot_floors_and_tolerates_float_noise() -> None:
    assert round_to_lot(199.0, 100.0) == 100.0
    assert round_to_lot(99.0, 100.0) == 0.0
    assert round_to_lot(0.0, 1.0) == 0.0
    # 0.1 + 0.2 lands an ulp above 0.3 and 0.7 - 0.4 an ulp below: both are 30 lots of 0.01.
    assert round_to_lot(0.1 + 0.2, 0.01) == 0.3
    assert round_to_lot(0.7 - 0.4, 0.01) == 0.3
    # A real shortfall of a lot is not noise.
    assert round_to_lot(0.3 - 0.005, 0.01) == 0.29
    assert round_to_lot(250.0, 100.0) == round_to_lot_nb(250.0, 100.0) == 200.0
