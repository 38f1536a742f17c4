"""The broker's market rules: lots, commission, taxes, price limits and T+1 per symbol.

:class:`BrokerRules` adapts :mod:`simulators.market_rules` (whose models compile to
whole-panel arrays for the backtest kernel) to the per-symbol scalars the paper broker needs,
with the previous *daily* close as the price-limit reference (a one-day minute panel lacks
it). Every order the arena sends is checked and charged by these rules (:mod:`arena.step`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from arena.money import (
    MoneyUnits,
    quantity_from_float,
    quantity_to_float,
    rate_amount,
    round_half_even,
    units_for_market,
)
from simulators.costs import MarketFees
from simulators.fill_model import (
    FillParams,
)
from simulators.market_rules import (
    cn_board_limit,
    cn_symbol_is_st,
    get_market_rules,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerRules:
    """Everything the broker charges and enforces, as per-symbol scalars.

    Parameters
    ----------
    market:
        ``none``, ``cn``, ``us`` or ``crypto``.
    units:
        The book's integer units (see :func:`arena.money.units_for_market`).
    lot_units:
        One lot in quantity units (100 shares on ``cn``; 1 unit elsewhere).
    t_plus_one:
        Shares bought on a trading day can be sold from the next one only.
    commission_rate, commission_min, commission_fixed:
        Per order ``max(rate * value, min) + fixed``; ``min`` and ``fixed`` in currency units.
    stamp_duty:
        ``(effective_from, rate)`` pairs, sorted: the rate on sell values from that day on.
    price_limits:
        Apply the China board limits of the day traded
        (:func:`simulators.market_rules.cn_board_limit`: by board and trading date).
    st_symbols:
        Symbols under special treatment (the only source of ST status; the letters of a
        symbol never make it ST).
    half_spread_bps, impact_coefficient, participation_cap:
        The bar fill model's parameters (:class:`simulators.fill_model.FillParams`).
    """

    market: str = "none"
    units: MoneyUnits = field(default_factory=lambda: units_for_market("none"))
    lot_units: int = 1
    t_plus_one: bool = False
    commission_rate: float = 0.0
    commission_min: float = 0.0
    commission_fixed: float = 0.0
    stamp_duty: tuple[tuple[date, float], ...] = ()
    price_limits: bool = False
    st_symbols: tuple[str, ...] = ()
    half_spread_bps: float = 2.5
    impact_coefficient: float = 0.5
    participation_cap: float = 0.1
    #: The market's fee model these fields make (:class:`simulators.costs.MarketFees`).
    fees: MarketFees = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.lot_units, bool) or not isinstance(self.lot_units, int):
            raise ValueError(f"BrokerRules.lot_units must be an int, got {self.lot_units!r}")
        if self.lot_units < 1:
            raise ValueError(f"BrokerRules.lot_units must be >= 1, got {self.lot_units}")
        for name in ("commission_rate", "commission_min", "commission_fixed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"BrokerRules.{name} must be finite and >= 0, got {value}")
        days = [d for d, _ in self.stamp_duty]
        if days != sorted(days) or any(not (0 <= r < 1) for _, r in self.stamp_duty):
            raise ValueError("BrokerRules.stamp_duty must be sorted (day, rate in [0, 1)) pairs")
        # The one fee model (simulators.costs), built once: every charge goes through it.
        object.__setattr__(
            self,
            "fees",
            MarketFees(
                commission_rate=self.commission_rate,
                commission_min=self.commission_min,
                commission_fixed=self.commission_fixed,
                sell_stamp_duty=self.stamp_duty,
            ),
        )
        # Validates the fill parameters once, at construction.
        FillParams(
            half_spread_bps=self.half_spread_bps,
            impact_coefficient=self.impact_coefficient,
            participation_cap=self.participation_cap,
        )

    @classmethod
    def from_market(
        cls,
        market: str | Any,
        *,
        units: MoneyUnits | None = None,
        half_spread_bps: float = 2.5,
        impact_coefficient: float = 0.5,
        participation_cap: float = 0.1,
    ) -> BrokerRules:
        """Return the broker rules of a :mod:`simulators.market_rules` model (or its name).

        Parameters
        ----------
        market:
            A market name or a model such as ``ChinaAShareRules()``.
        units:
            Book units; the market's defaults when ``None``.
        half_spread_bps, impact_coefficient, participation_cap:
            Fill model parameters.
        """
        model = get_market_rules(market) if isinstance(market, str) else market
        name = str(model.name)
        book = units or units_for_market(name)
        lot = float(getattr(model, "lot_size", 0.0))
        # A fractional market (lot 0) trades in the book's smallest quantity unit.
        lot_units = max(quantity_from_float(lot, book.quantity_digits), 1) if lot > 0 else 1
        fees: MarketFees = model.fees
        return cls(
            market=name,
            units=book,
            lot_units=lot_units,
            t_plus_one=name == "cn",
            commission_rate=fees.commission_rate,
            commission_min=fees.commission_min,
            commission_fixed=fees.commission_fixed,
            stamp_duty=fees.sell_stamp_duty,
            price_limits=name == "cn",
            st_symbols=tuple(getattr(model, "st_symbols", ())),
            half_spread_bps=half_spread_bps,
            impact_coefficient=impact_coefficient,
            participation_cap=participation_cap,
        )

    def limit_pct(self, symbol: str, day: date) -> float | None:
        """Return the price-limit fraction of ``symbol`` on trading ``day`` (``None``: none)."""
        if not self.price_limits:
            return None
        return cn_board_limit(symbol, day, is_st=cn_symbol_is_st(symbol, self.st_symbols))

    def stamp_duty_rate(self, day: date) -> float:
        """Return the stamp-duty rate on sells filled on ``day`` (the fee model's)."""
        return self.fees.tax_rate("sell", day)

    def taxes_for(self, side: str, value: int, day: date) -> int:
        """Return the taxes of a ``side`` fill of ``value`` minor units on ``day``."""
        rate = self.fees.tax_rate("sell" if side == "sell" else "buy", day)
        return rate_amount(value, rate) if rate else 0

    def commission_for(self, order_value: int) -> int:
        """Return the commission of an order whose filled value is ``order_value`` minor units.

        The fee model's formula (:meth:`simulators.costs.MarketFees.commission_exact`) on the
        exact value, rounded half to even to the minor unit once.
        """
        if order_value <= 0:
            return 0
        digits = self.units.money_digits
        with localcontext() as context:
            context.prec = 60
            value = Decimal(int(order_value)).scaleb(-digits)
            minor = self.fees.commission_exact(value).scaleb(digits)
        return int(round_half_even(minor, 0))

    def fill_params(self, symbol: str, lot_units: int, day: date) -> FillParams:
        """Return the fill model parameters of ``symbol`` traded on ``day`` in ``lot_units``."""
        return FillParams(
            half_spread_bps=self.half_spread_bps,
            impact_coefficient=self.impact_coefficient,
            participation_cap=self.participation_cap,
            lot_size=quantity_to_float(lot_units, self.units.quantity_digits),
            limit_pct=self.limit_pct(symbol, day),
        )
