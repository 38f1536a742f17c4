"""The cost-and-fill model as small protocols: fees, spread, impact, participation, rules.

One model per idea (issue 13), in the spirit of zipline's ``SlippageModel`` /
``CommissionModel`` and nautilus_trader's ``FeeModel``. Each protocol has one default
implementation holding its parameters and computing its formula **once**; every user draws
from it:

* the arena broker (:mod:`arena.rules`, :mod:`arena.step`): fees through
  :class:`MarketFees` (in exact money, :meth:`MarketFees.commission_exact`), spread, impact and
  cap through :func:`simulators.fill_model.fill_child_order`, which calls the models below;
* the RL replay environment (:mod:`rl_exec`): the same :func:`fill_child_order`, and the
  market's :class:`MarketFees` when the environment is given one;
* the backtest kernel (:mod:`simulators.backtest_nb`), which cannot take Python objects:
  :func:`kernel_cost_args` turns a :class:`CostModel` into its plain floats, in one place, and
  the kernel's numba twins (``order_fee_nb``, ``trade_cost_nb``, ``bar_capacity_nb``) compute
  the same formulas (``tests/simulators/test_costs.py`` checks the twins on random inputs).

The market rules (lots, price limits, T+1) are :mod:`simulators.market_rules`'s models behind
its :class:`~simulators.market_rules.MarketRules` protocol; their fees are a
:class:`MarketFees` (:func:`simulators.market_rules.market_fees`).

Formulas (``docs/fill_assumptions.md``):

* commission of an order of value ``v``: ``max(rate * v, minimum) + fixed`` (0 when ``v <=
  0``); stamp duty: ``rate(side, day) * v`` (China: on sells, by trading date);
* half-spread: a constant fraction of the price (``half_spread_bps / 1e4``);
* temporary impact: ``k * sigma * sqrt(q / V)`` (square-root law, ``sigma`` and ``V`` of one
  bar); transient impact: a level decaying by half every ``half_life`` bars;
* participation: at most ``cap * V`` of a bar, down to whole lots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from simulators.lots import round_to_lot_nb

__all__ = [
    "ConstantSpread",
    "CostModel",
    "FeeModel",
    "ImpactModel",
    "KernelCostArgs",
    "MarketFees",
    "ParticipationModel",
    "SpreadModel",
    "SquareRootImpact",
    "VolumeParticipation",
    "commission_amount",
    "kernel_cost_args",
    "square_root_impact",
    "transient_decay",
]

Side = Literal["buy", "sell"]

# Decimal precision of the exact commission: far beyond any ledger's digits.
_EXACT_DIGITS = 60


def commission_amount(value: float, rate: float, minimum: float, fixed: float) -> float:
    """Return ``max(rate * value, minimum) + fixed`` (0 for ``value <= 0``): the formula.

    Written once for floats; :func:`simulators.backtest_nb.order_fee_nb` is its numba twin and
    :meth:`MarketFees.commission_exact` evaluates the same expression on exact decimals.
    """
    if value <= 0.0:
        return 0.0
    return max(rate * value, minimum) + fixed


def square_root_impact(quantity: float, volume: float, sigma: float, coefficient: float) -> float:
    """Return ``coefficient * sigma * sqrt(quantity / volume)`` (0 if any of them is not > 0).

    The temporary impact, written once; :func:`simulators.backtest_nb.square_root_impact_nb`
    is its numba twin, and :func:`simulators.backtest_nb.trade_cost_nb` the kernel's (plus the
    half-spread).
    """
    if quantity <= 0 or volume <= 0 or sigma <= 0 or coefficient <= 0:
        return 0.0  # (also no 0 x inf when a tiny volume overflows the ratio)
    return coefficient * sigma * math.sqrt(quantity / volume)


def transient_decay(level: float, bars: float, half_life_bars: float) -> float:
    """Return ``level * 0.5 ** (bars / half_life_bars)`` (0 without a half-life).

    Numba twin: :func:`simulators.backtest_nb.transient_decay_nb`.
    """
    if level == 0.0 or half_life_bars == 0.0:
        return 0.0
    return level * 0.5 ** (bars / half_life_bars)


def _decimal(value: float) -> Decimal:
    # The shortest decimal form of the float: 0.00025 is exactly 0.00025.
    return Decimal(repr(float(value)))


# --------------------------------------------------------------------------- protocols
@runtime_checkable
class FeeModel(Protocol):
    """What an order pays the broker and the state: commission and taxes."""

    def commission(self, value: float) -> float:
        """Return the commission of an order of traded ``value`` (currency units)."""
        ...

    def commission_exact(self, value: Decimal) -> Decimal:
        """Return the same commission on an exact decimal ``value`` (the ledger's money)."""
        ...

    def tax_rate(self, side: Side, day: date) -> float:
        """Return the tax (stamp duty) rate on the value of a ``side`` fill on ``day``."""
        ...


@runtime_checkable
class SpreadModel(Protocol):
    """Half the quoted spread a fill pays, as a fraction of the price."""

    def half_spread(self) -> float:
        """Return the half-spread fraction."""
        ...


@runtime_checkable
class ImpactModel(Protocol):
    """Our own orders' effect on the price: temporary and transient impact."""

    def temporary(self, quantity: float, volume: float, sigma: float) -> float:
        """Return the temporary impact of ``quantity`` on a bar of ``volume`` (a fraction)."""
        ...

    def decay(self, level: float, bars: float) -> float:
        """Return what is left of a transient ``level`` after ``bars`` bars."""
        ...


@runtime_checkable
class ParticipationModel(Protocol):
    """The most of a bar's volume one order may take."""

    def capacity(self, volume: float, lot: float) -> float:
        """Return the largest quantity a bar of ``volume`` fills, in whole ``lot`` s."""
        ...


# --------------------------------------------------------------------------- defaults
@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFees:
    """A market's fees: commission per order and a stamp duty on sells by trading date.

    Parameters
    ----------
    commission_rate, commission_min, commission_fixed:
        Per order ``max(rate * value, min) + fixed`` (``min`` and ``fixed`` in currency).
    sell_stamp_duty:
        ``(effective_from, rate)`` pairs, sorted by day: the rate on sell values from that day
        on (before the first: 0). Buys pay none.
    """

    commission_rate: float = 0.0
    commission_min: float = 0.0
    commission_fixed: float = 0.0
    sell_stamp_duty: tuple[tuple[date, float], ...] = ()

    def __post_init__(self) -> None:
        for name in ("commission_rate", "commission_min", "commission_fixed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"MarketFees.{name} must be finite and >= 0, got {value}")
        days = [d for d, _ in self.sell_stamp_duty]
        if days != sorted(days) or any(not (0 <= r < 1) for _, r in self.sell_stamp_duty):
            raise ValueError(
                "MarketFees.sell_stamp_duty must be sorted (day, rate in [0, 1)) pairs"
            )

    def commission(self, value: float) -> float:
        """Return the commission of an order of traded ``value`` (:func:`commission_amount`)."""
        return commission_amount(
            value, self.commission_rate, self.commission_min, self.commission_fixed
        )

    def commission_exact(self, value: Decimal) -> Decimal:
        """Return ``max(rate * value, min) + fixed`` computed exactly on decimals.

        The parameters are read through their shortest decimal form; the caller rounds the
        result to its money unit once.
        """
        if value <= 0:
            return Decimal(0)
        with localcontext() as context:
            context.prec = _EXACT_DIGITS
            variable = max(value * _decimal(self.commission_rate), _decimal(self.commission_min))
            return variable + _decimal(self.commission_fixed)

    def tax_rate(self, side: Side, day: date) -> float:
        """Return the stamp-duty rate of a ``side`` fill on trading ``day`` (0 on buys)."""
        if side != "sell":
            return 0.0
        rate = 0.0
        for start, value in self.sell_stamp_duty:
            if day >= start:
                rate = value
        return rate

    def tax_rates(self, side: Side, days: Sequence[date] | np.ndarray) -> np.ndarray:
        """Return :meth:`tax_rate` of each day (``datetime64[D]`` or dates), as float64."""
        values = np.asarray(days, dtype="datetime64[D]")
        out = np.zeros(values.shape, dtype=np.float64)
        if side != "sell":
            return out
        for start, rate in self.sell_stamp_duty:
            out[values >= np.datetime64(start, "D")] = rate
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstantSpread:
    """A constant half-spread of ``half_spread_bps`` basis points of the price."""

    half_spread_bps: float = 2.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_spread_bps) and self.half_spread_bps >= 0):
            raise ValueError(f"half_spread_bps must be >= 0, got {self.half_spread_bps}")

    def half_spread(self) -> float:
        """Return the half-spread as a fraction of the price."""
        return self.half_spread_bps / 1e4


@dataclass(frozen=True, slots=True, kw_only=True)
class SquareRootImpact:
    """Square-root temporary impact ``k * sigma * sqrt(q / V)`` and an exponential transient.

    Parameters
    ----------
    coefficient:
        ``k`` of the law.
    transient_half_life_bars:
        Bars for the transient left by earlier fills to halve (``0``: none).
    """

    coefficient: float = 0.5
    transient_half_life_bars: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.coefficient) and self.coefficient >= 0):
            raise ValueError(f"impact coefficient must be >= 0, got {self.coefficient}")
        half_life = self.transient_half_life_bars
        if not (math.isfinite(half_life) and half_life >= 0):
            raise ValueError(f"transient_half_life_bars must be >= 0, got {half_life}")

    def temporary(self, quantity: float, volume: float, sigma: float) -> float:
        """Return :func:`square_root_impact` with this model's ``k``."""
        return square_root_impact(quantity, volume, sigma, self.coefficient)

    def decay(self, level: float, bars: float) -> float:
        """Return :func:`transient_decay` with this model's half-life."""
        return transient_decay(level, bars, self.transient_half_life_bars)


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeParticipation:
    """At most ``cap`` of a bar's volume (``None``: no cap)."""

    cap: float | None = 0.1

    def __post_init__(self) -> None:
        if self.cap is not None and not (0.0 < self.cap <= 1.0):
            raise ValueError(f"participation cap must be in (0, 1] or None, got {self.cap}")

    def limit(self, volume: float) -> float:
        """Return ``cap * volume`` before lots (``inf`` without a cap, 0 without volume)."""
        if self.cap is None:
            return math.inf
        if not volume > 0.0:
            return 0.0
        return self.cap * volume

    def capacity(self, volume: float, lot: float) -> float:
        """Return :meth:`limit` down to whole lots (:func:`simulators.lots.round_to_lot_nb`).

        :func:`simulators.backtest_nb.bar_capacity_nb` is its numba twin.
        """
        limit = self.limit(volume)
        if not math.isfinite(limit) or not lot > 0.0:
            return limit
        return float(round_to_lot_nb(limit, float(lot)))


@dataclass(frozen=True, slots=True, kw_only=True)
class CostModel:
    """The four cost models of one market, as every user of the fill model takes them."""

    fees: MarketFees = field(default_factory=MarketFees)
    spread: ConstantSpread = field(default_factory=ConstantSpread)
    impact: SquareRootImpact = field(default_factory=SquareRootImpact)
    participation: VolumeParticipation = field(default_factory=VolumeParticipation)


class KernelCostArgs(NamedTuple):
    """The plain floats the numba kernel takes for a :class:`CostModel`."""

    commission_rate: float
    commission_min: float
    commission_fixed: float
    half_spread: float
    impact_coefficient: float
    participation_cap: float


def kernel_cost_args(model: CostModel) -> KernelCostArgs:
    """Return the kernel's cost arguments of ``model`` (numba cannot take the protocols).

    The one place where the models become :func:`simulators.backtest_nb.simulate_nb`'s floats:
    a missing cap is ``inf``. The kernel has no transient impact (a daily bar is one fill per
    order and asset) and reads the stamp duty from the market rules' per-bar array
    (:meth:`MarketFees.tax_rates`).
    """
    cap = model.participation.cap
    return KernelCostArgs(
        commission_rate=float(model.fees.commission_rate),
        commission_min=float(model.fees.commission_min),
        commission_fixed=float(model.fees.commission_fixed),
        half_spread=model.spread.half_spread(),
        impact_coefficient=float(model.impact.coefficient),
        participation_cap=math.inf if cap is None else float(cap),
    )
