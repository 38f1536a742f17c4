"""Exact money for the ledger, and the one boundary with the float64 research code.

Policy (written down in ``docs/ledger.md``):

* **Money** is an ``int`` count of minor units of the account currency (fen for CNY, cents
  for USD): ``MoneyUnits.money_digits`` decimal places, 2 by default.
* **Quantities** are an ``int`` count of quantity units: whole shares for ``cn``/``us``
  (``quantity_digits = 0``), 1e-8 of a coin for ``crypto`` (``quantity_digits = 8``). One
  integer type for every market keeps the arithmetic exact and the SQLite columns
  ``INTEGER``.
* **Prices** are :class:`~decimal.Decimal` with ``price_digits`` decimal places; a price is
  never summed, only multiplied by a quantity and rounded once to money.
* **The boundary**: a float from the research code (a fill price, a close, a rate) is read
  through its shortest round-trip decimal form (``repr``: ``0.1`` is ``"0.1"``, not
  ``0.1000000000000000055...``) and rounded **half to even** ("banker's rounding", no upward
  drift over many trades) to the target number of digits. Every derived amount (a notional,
  a commission, a tax, the cost removed on a sale) is computed exactly in ``Decimal`` and
  rounded half to even to minor units exactly once. Floats never come back into the ledger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

__all__ = [
    "MoneyUnits",
    "cost_removed",
    "format_money",
    "money_from_float",
    "money_to_float",
    "notional_minor",
    "price_from_float",
    "quantity_from_float",
    "quantity_to_float",
    "rate_amount",
    "round_half_even",
    "units_for_market",
]

# Enough significant digits that no product of a quantity, a price and a scale ever rounds
# before the one rounding we choose (28, Decimal's default, could for large crypto books).
_EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True, kw_only=True)
class MoneyUnits:
    """The integer units an account keeps its books in.

    Parameters
    ----------
    currency:
        ISO-like code shown in reports (``"CNY"``, ``"USD"``).
    money_digits:
        Decimal places of one minor unit of money (2: cents).
    price_digits:
        Decimal places kept of a fill or mark price.
    quantity_digits:
        Decimal places of one quantity unit (0: whole shares; 8: 1e-8 of a coin).
    """

    currency: str = "CNY"
    money_digits: int = 2
    price_digits: int = 4
    quantity_digits: int = 0

    def __post_init__(self) -> None:
        if not self.currency or not self.currency.isalnum():
            raise ValueError(f"MoneyUnits.currency must be a non-empty code, got {self.currency!r}")
        for name in ("money_digits", "price_digits", "quantity_digits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 12:
                raise ValueError(f"MoneyUnits.{name} must be an integer in [0, 12], got {value!r}")


def units_for_market(market: str) -> MoneyUnits:
    """Return the default book units of ``market`` (``none``, ``cn``, ``us``, ``crypto``).

    Raises
    ------
    ValueError
        If ``market`` is unknown.
    """
    if market == "cn":
        return MoneyUnits(currency="CNY", money_digits=2, price_digits=4, quantity_digits=0)
    if market == "us":
        return MoneyUnits(currency="USD", money_digits=2, price_digits=4, quantity_digits=0)
    if market == "crypto":
        return MoneyUnits(currency="USD", money_digits=2, price_digits=8, quantity_digits=8)
    if market == "none":
        return MoneyUnits(currency="USD", money_digits=2, price_digits=6, quantity_digits=6)
    raise ValueError(f"unknown market {market!r} (allowed: none, cn, us, crypto)")


def _decimal_of_float(value: float, what: str) -> Decimal:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    # repr gives the shortest string that round-trips: the number the researcher sees.
    return Decimal(repr(number))


def round_half_even(value: Decimal, digits: int = 0) -> Decimal:
    """Return ``value`` rounded half to even to ``digits`` decimal places."""
    with localcontext(_EXACT):
        return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)


def _to_units(value: Decimal, digits: int) -> int:
    with localcontext(_EXACT):
        return int(round_half_even(value.scaleb(digits), 0))


def money_from_float(value: float, digits: int = 2) -> int:
    """Convert a float amount to integer minor units (the research-to-ledger boundary).

    Parameters
    ----------
    value:
        Amount in currency units (``1234.565`` yuan).
    digits:
        Decimal places of a minor unit.

    Returns
    -------
    int
        Minor units, rounded half to even from the shortest decimal form of ``value``
        (``money_from_float(0.125) == 12``, ``money_from_float(0.135) == 14``).
    """
    return _to_units(_decimal_of_float(value, "money amount"), digits)


def money_to_float(minor: int, digits: int = 2) -> float:
    """Return minor units as a float in currency units (for reports and research only)."""
    return float(Decimal(int(minor)).scaleb(-digits))


def format_money(minor: int, units: MoneyUnits) -> str:
    """Return ``minor`` as an exact decimal string with the currency (``"1234.50 CNY"``)."""
    amount = Decimal(int(minor)).scaleb(-units.money_digits)
    return f"{amount:.{units.money_digits}f} {units.currency}"


def price_from_float(value: float, digits: int = 4) -> Decimal:
    """Convert a float price to a ``Decimal`` with ``digits`` places (half to even).

    Raises
    ------
    ValueError
        If the price is not finite or not positive after rounding.
    """
    price = round_half_even(_decimal_of_float(value, "price"), digits)
    if price <= 0:
        raise ValueError(f"price must be > 0 after rounding to {digits} places, got {value!r}")
    return price


def quantity_from_float(value: float, digits: int = 0) -> int:
    """Convert a float quantity (shares, coins) to integer quantity units (half to even)."""
    units = _to_units(_decimal_of_float(value, "quantity"), digits)
    if units < 0:
        raise ValueError(f"quantity must be >= 0, got {value!r}")
    return units


def quantity_to_float(units: int, digits: int = 0) -> float:
    """Return integer quantity units as a float quantity (for the research code)."""
    return float(Decimal(int(units)).scaleb(-digits))


def notional_minor(quantity_units: int, price: Decimal, units: MoneyUnits) -> int:
    """Return ``quantity * price`` in minor units, computed exactly and rounded once.

    Parameters
    ----------
    quantity_units:
        Quantity in quantity units (``>= 0``).
    price:
        Price per whole unit of the asset.
    units:
        The book's digits.
    """
    with localcontext(_EXACT):
        value = Decimal(int(quantity_units)).scaleb(-units.quantity_digits) * price
        return _to_units(value, units.money_digits)


def rate_amount(amount_minor: int, rate: float | Decimal) -> int:
    """Return ``rate * amount`` in minor units, exact and rounded half to even once.

    ``rate`` is read through its shortest decimal form (``0.00025`` is exactly 0.00025).
    """
    exact_rate = rate if isinstance(rate, Decimal) else _decimal_of_float(rate, "rate")
    with localcontext(_EXACT):
        return int(round_half_even(Decimal(int(amount_minor)) * exact_rate, 0))


def cost_removed(cost_basis: int, sold: int, held: int) -> int:
    """Return the part of a holding's cost basis that leaves with ``sold`` of its ``held``
    units (average cost, minor units): all of it on a full sale, else
    ``cost_basis x sold / held`` rounded half up (the one rule the broker and the reports use).
    """
    if not 0 < sold <= held:
        raise ValueError(f"cost_removed: sold {sold} of {held} held")
    if sold == held:
        return cost_basis
    return (cost_basis * sold * 2 + held) // (2 * held)
