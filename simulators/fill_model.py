"""Fill of one child order on one bar: spread, square-root and transient impact, cap, lots, limits.

A pure function (NumPy, no Ray) shared by the execution environment (``rl_exec``) and the
arena's broker: the market model decided in issue 13, written once (and in
``docs/fill_assumptions.md``, "Child orders"):

* The order is decided at the close of the previous bar and executes *during* this bar
  (next-bar execution; a bar's timestamp is its close).
* The reference price is the bar's VWAP where the quote carries one, otherwise its proxy, the
  OHLC average ``(O + H + L + C) / 4`` (:func:`reference_price`, :func:`reference_prices`):
  the lab's bars (:class:`simulators.bars.Panel`) carry no VWAP or traded-amount column, and
  the OHLC average is the proxy the model always used. The backtest kernel's
  ``fill="next-bar"`` fills a daily bar at the same reference.
* Spread, impact and the participation cap are the models of :mod:`simulators.costs`
  (:attr:`FillParams.spread`, :attr:`FillParams.impact`, :attr:`FillParams.participation`);
  this module composes them, it does not repeat their formulas.
* The fill price is ``reference * (1 + s * (half_spread + temporary + transient))`` with
  ``s = +1`` for a buy and ``-1`` for a sell:

  - ``temporary = k * sigma_bar * sqrt(filled / bar_volume)``, the square-root impact of this
    child, with ``sigma_bar`` the volatility of one bar (:func:`bar_volatility`, the one
    volatility definition of impact);
  - ``transient`` is what is left of the temporary impacts of the *same parent order's*
    earlier child fills: each decays exponentially with ``transient_half_life_bars``
    (a propagator / Obizhaeva-Wang style resilience). It is carried from fill to fill in an
    :class:`ImpactState` the caller passes in and gets back (the function keeps no state).

* Our own impact may take the fill price **outside** the bar's recorded ``[low, high]``: the
  recorded bar is what traded without us. Only the day's price limits bound the price (and a
  sell's price stays above ``1e-6`` of the reference when absurd costs exceed 100%).
* At most ``participation_cap`` of the bar's volume is filled; the rest stays unfilled (the
  caller rolls it over). ``complete=True`` lifts the cap: the **end-of-day rule**, used on the
  last bar of a parent order's horizon to complete what the cap left, priced the same way:
  as the capped slices it would have needed, one after another within that bar with no time
  to decay, each paying its square-root impact and the transient of those before it. The
  cost of a block then grows about linearly with its size (a walk through the book); the
  square-root law alone would price one print of many times the bar's volume cheaply, a
  reward for waiting to the close that no market pays.
* The filled quantity is rounded *down* to whole lots.
* No buy when the bar closes at or above the limit-up price, no sell when it closes at or below
  the limit-down price (a locked limit: the queue on the other side is empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

from simulators.costs import (
    ConstantSpread,
    CostModel,
    MarketFees,
    SquareRootImpact,
    VolumeParticipation,
    square_root_impact,
    transient_decay,
)
from simulators.lots import round_to_lot_nb

Side = Literal["buy", "sell"]
#: A price or an array of prices (:func:`reference_prices` takes either).
PriceT = TypeVar("PriceT", float, np.ndarray)
FillStatus = Literal["filled", "partial", "rejected"]

#: Reason codes of :class:`ChildFill` (``"ok"`` when everything asked for was filled).
REASONS: tuple[str, ...] = (
    "ok",
    "participation_cap",
    "lot_rounding",
    "limit_up",
    "limit_down",
    "no_volume",
    "zero_quantity",
)

# Relative tolerance when comparing a close with a limit price (limit prices are rounded to
# ticks by exchanges, so an exact float equality is too strict).
_LIMIT_TOLERANCE = 1e-6
# Lowest sell price as a share of the reference (the price stays positive whatever the costs).
_MIN_PRICE_FRACTION = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class FillParams:
    """Parameters of the bar fill model.

    Parameters
    ----------
    half_spread_bps:
        Half the quoted bid-ask spread, in basis points of the price.
    impact_coefficient:
        ``k`` of the square-root impact ``k * sigma * sqrt(qty / bar_volume)``.
    participation_cap:
        Largest share of the bar's volume that one child order may take, in ``(0, 1]``.
    lot_size:
        Fills are whole multiples of this quantity (100 for China A-shares, 1 for US stocks,
        a small number such as ``1e-8`` for crypto).
    limit_pct:
        Daily price limit as a fraction of the previous close (0.10 for China main board);
        ``None`` when the market has no limits.
    transient_half_life_bars:
        Half-life, in bars, of the transient impact an earlier child fill of the same parent
        order leaves on later fills (``0``: none, each fill's impact vanishes after it).
        The default of 10 (minute bars: 10 minutes) makes a parent order worked evenly at
        the cap over a whole minute-bar session pay about the square-root law of the whole
        order, ``k * sigma_daily * sqrt(Q / V_daily)`` (``docs/fill_assumptions.md``).
    """

    half_spread_bps: float = 2.5
    impact_coefficient: float = 0.5
    participation_cap: float = 0.1
    lot_size: float = 1.0
    limit_pct: float | None = None
    transient_half_life_bars: float = 10.0

    #: The cost models these parameters make (:mod:`simulators.costs`), built once here.
    spread: ConstantSpread = field(init=False, repr=False, compare=False)
    impact: SquareRootImpact = field(init=False, repr=False, compare=False)
    participation: VolumeParticipation = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_spread_bps) and self.half_spread_bps >= 0):
            raise ValueError(f"FillParams.half_spread_bps must be >= 0, got {self.half_spread_bps}")
        if not (math.isfinite(self.impact_coefficient) and self.impact_coefficient >= 0):
            raise ValueError(
                f"FillParams.impact_coefficient must be >= 0, got {self.impact_coefficient}"
            )
        if not (0.0 < self.participation_cap <= 1.0):
            raise ValueError(
                f"FillParams.participation_cap must be in (0, 1], got {self.participation_cap}"
            )
        if not (math.isfinite(self.lot_size) and self.lot_size > 0):
            raise ValueError(f"FillParams.lot_size must be > 0, got {self.lot_size}")
        if self.limit_pct is not None and not (0.0 < self.limit_pct < 1.0):
            raise ValueError(
                f"FillParams.limit_pct must be in (0, 1) or None, got {self.limit_pct}"
            )
        half_life = self.transient_half_life_bars
        if not (math.isfinite(half_life) and half_life >= 0):
            raise ValueError(f"FillParams.transient_half_life_bars must be >= 0, got {half_life}")
        spread = ConstantSpread(half_spread_bps=self.half_spread_bps)
        impact = SquareRootImpact(
            coefficient=self.impact_coefficient, transient_half_life_bars=half_life
        )
        participation = VolumeParticipation(cap=self.participation_cap)
        object.__setattr__(self, "spread", spread)
        object.__setattr__(self, "impact", impact)
        object.__setattr__(self, "participation", participation)

    def cost_model(self, fees: MarketFees | None = None) -> CostModel:
        """Return these parameters as a :class:`simulators.costs.CostModel` with ``fees``."""
        return CostModel(
            fees=fees or MarketFees(),
            spread=self.spread,
            impact=self.impact,
            participation=self.participation,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactState:
    """Transient impact of a parent order's earlier child fills (carried between fills).

    Parameters
    ----------
    level:
        Price displacement left by the earlier fills just after bar ``bar``, as a fraction of
        the price, positive when adverse to the order (a buy's fills pushed the price up).
    bar:
        Number of the bar ``level`` refers to, counted along the order's horizon (the
        position of the bar in the day, or its slot in the session).
    """

    level: float = 0.0
    bar: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.level) and self.level >= 0):
            raise ValueError(f"ImpactState.level must be finite and >= 0, got {self.level}")

    def at(self, bar: int, half_life_bars: float) -> float:
        """Return the transient displacement left at bar ``bar`` (``>= self.bar``)."""
        if bar < self.bar:
            raise ValueError(f"ImpactState is at bar {self.bar}; bar {bar} is in its past")
        return transient_decay(self.level, bar - self.bar, half_life_bars)


#: The state of a parent order before its first fill.
NO_IMPACT = ImpactState()


@dataclass(frozen=True, slots=True, kw_only=True)
class BarQuote:
    """The part of one bar the fill model needs.

    Parameters
    ----------
    open, high, low, close:
        Bar prices (``low <= open, close <= high``).
    volume:
        Bar volume in units of the asset.
    prev_close:
        Previous *daily* close, the reference of the price limits (``None``: no limits apply).
    vwap:
        The bar's volume-weighted average price where the data has one (``None``: the OHLC
        average is the reference, :func:`reference_price`).
    """

    open: float
    high: float
    low: float
    close: float
    volume: float
    prev_close: float | None = None
    vwap: float | None = None

    def __post_init__(self) -> None:
        prices = (self.open, self.high, self.low, self.close)
        if not all(math.isfinite(p) and p > 0 for p in prices):
            raise ValueError(f"BarQuote prices must be finite and > 0, got {prices}")
        if self.high < self.low:
            raise ValueError(f"BarQuote high {self.high} < low {self.low}")
        if not (math.isfinite(self.volume) and self.volume >= 0):
            raise ValueError(f"BarQuote volume must be finite and >= 0, got {self.volume}")
        if self.vwap is not None and not (math.isfinite(self.vwap) and self.vwap > 0):
            raise ValueError(f"BarQuote vwap must be finite and > 0, got {self.vwap}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildFill:
    """Result of one child order on one bar.

    Parameters
    ----------
    side:
        ``"buy"`` or ``"sell"``.
    requested:
        Quantity asked for.
    filled:
        Quantity filled (a whole number of lots, ``<= requested``).
    price:
        Average fill price (``nan`` when nothing was filled).
    status:
        ``"filled"``, ``"partial"`` or ``"rejected"`` (nothing filled).
    reason:
        Why less than requested was filled (one of :data:`REASONS`), ``"ok"`` otherwise.
    reference:
        The bar's reference price the fill started from (:func:`reference_price`).
    transient:
        Transient impact of the earlier fills paid by this one, as a fraction of the price.
    impact:
        The parent order's :class:`ImpactState` after this fill (unchanged when nothing
        filled): pass it to the order's next fill.
    """

    side: Side
    requested: float
    filled: float
    price: float
    status: FillStatus
    reason: str
    reference: float = math.nan
    transient: float = 0.0
    impact: ImpactState = NO_IMPACT

    def __post_init__(self) -> None:
        if self.filled < 0 or self.filled > self.requested * (1 + 1e-12) + 1e-12:
            raise ValueError(f"ChildFill.filled {self.filled} not in [0, {self.requested}]")
        if self.reason not in REASONS:
            raise ValueError(f"ChildFill.reason {self.reason!r} not one of {REASONS}")

    @property
    def unfilled(self) -> float:
        """Quantity asked for and not filled."""
        return max(self.requested - self.filled, 0.0)

    @property
    def notional(self) -> float:
        """Cash exchanged (``filled * price``; 0 when nothing was filled)."""
        return self.filled * self.price if self.filled > 0 else 0.0


def round_to_lot(quantity: float, lot_size: float) -> float:
    """Round ``quantity`` down to a whole number of lots (the rule of :mod:`simulators.lots`)."""
    return float(round_to_lot_nb(float(quantity), float(lot_size)))


def price_limits(prev_close: float | None, limit_pct: float | None) -> tuple[float, float]:
    """Return ``(limit_down, limit_up)``; ``(0, inf)`` when there is no limit."""
    if prev_close is None or limit_pct is None:
        return 0.0, math.inf
    return prev_close * (1.0 - limit_pct), prev_close * (1.0 + limit_pct)


def reference_prices(open_: PriceT, high: PriceT, low: PriceT, close: PriceT) -> PriceT:
    """Return the reference price of bars: the OHLC average ``(O + H + L + C) / 4``.

    The one formula of the reference price, for one bar (floats: :func:`reference_price`) or
    elementwise for arrays (the kernel's ``fill="next-bar"`` price,
    :func:`simulators.backtest.prepare_panel`), summed in this order so that a bar's scalar and
    array references are the same float. It is the documented proxy of the bar's VWAP: the
    lab's bars carry none (``simulators.bars.Panel``, ``simulators.intraday_market``); a bar
    that has one gives it to :class:`BarQuote` instead.
    """
    return (open_ + high + low + close) / 4.0


def reference_price(bar: BarQuote) -> float:
    """Return the price a fill on ``bar`` starts from before costs.

    The bar's VWAP when it carries one, else its OHLC average (:func:`reference_prices`, the
    documented proxy of the VWAP).
    """
    if bar.vwap is not None:
        return bar.vwap
    return reference_prices(bar.open, bar.high, bar.low, bar.close)


def daily_volatility(log_returns: np.ndarray) -> float:
    """Return the standard deviation (``ddof=1``) of the finite daily log returns given.

    The one estimate of daily volatility behind impact (the arena's day and the replay
    environment). One return has no sample deviation: its size is taken instead; none gives 0.
    """
    values = np.asarray(log_returns, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    if values.size == 1:
        return float(abs(values[0]))
    return float(values.std(ddof=1))


def bar_volatility(daily: float, bars_per_session: float) -> float:
    """Return the volatility of one bar: ``daily / sqrt(bars_per_session)``.

    The ``sigma`` of :func:`fill_child_order`, the only one: the square-root law
    ``k sigma sqrt(q / V)`` measures ``sigma`` and ``V`` over the same interval, so a bar's
    impact uses the bar's volatility with the bar's volume (then the impact of a quantity
    traded at a steady rate does not depend on the bar size). ``bars_per_session`` is the
    session's bar intervals (1 for daily bars).
    """
    if not (math.isfinite(bars_per_session) and bars_per_session > 0):
        raise ValueError(f"bars_per_session must be > 0, got {bars_per_session}")
    if not (math.isfinite(daily) and daily >= 0):
        raise ValueError(f"daily volatility must be finite and >= 0, got {daily}")
    return daily / math.sqrt(bars_per_session)


def impact_fraction(quantity: float, bar_volume: float, sigma: float, coefficient: float) -> float:
    """Return the square-root market impact ``k * sigma * sqrt(qty / volume)`` as a fraction.

    Parameters
    ----------
    quantity:
        Filled quantity (``>= 0``).
    bar_volume:
        Volume of the bar (``> 0``).
    sigma:
        Volatility the impact scales with, as a fraction of the price.
    coefficient:
        ``k`` of the law.
    """
    return square_root_impact(quantity, bar_volume, sigma, coefficient)


def fill_child_order(
    side: Side,
    quantity: float,
    bar: BarQuote,
    *,
    sigma: float,
    params: FillParams,
    impact: ImpactState = NO_IMPACT,
    bar_number: int = 0,
    complete: bool = False,
) -> ChildFill:
    """Fill one child order on one bar under the assumptions of this module.

    Parameters
    ----------
    side:
        ``"buy"`` or ``"sell"``.
    quantity:
        Quantity asked for (``>= 0``, in units of the asset).
    bar:
        The bar the order executes on.
    sigma:
        Volatility of one bar (:func:`bar_volatility`), as a fraction of the price (``>= 0``).
    params:
        Spread, impact, cap, lot, limit and transient parameters.
    impact:
        The parent order's transient state after its previous fill (:data:`NO_IMPACT` for the
        first one, or for a fill that belongs to no parent).
    bar_number:
        Number of this bar along the parent's horizon, on the same count as ``impact.bar``.
    complete:
        Lift the participation cap (the end-of-day completion of the module docstring).

    Returns
    -------
    ChildFill
        Filled quantity, average price, why less was filled, and the state to carry on.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not (math.isfinite(quantity) and quantity >= 0):
        raise ValueError(f"quantity must be finite and >= 0, got {quantity}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    reference = reference_price(bar)
    if bar_number < impact.bar:
        raise ValueError(f"ImpactState is at bar {impact.bar}; bar {bar_number} is in its past")
    transient = params.impact.decay(impact.level, bar_number - impact.bar)

    def rejected(reason: str) -> ChildFill:
        return ChildFill(
            side=side,
            requested=quantity,
            filled=0.0,
            price=math.nan,
            status="rejected",
            reason=reason,
            reference=reference,
            impact=impact,
        )

    if quantity == 0:
        return rejected("zero_quantity")
    limit_down, limit_up = price_limits(bar.prev_close, params.limit_pct)
    if side == "buy" and bar.close >= limit_up * (1 - _LIMIT_TOLERANCE):
        return rejected("limit_up")
    if side == "sell" and bar.close <= limit_down * (1 + _LIMIT_TOLERANCE):
        return rejected("limit_down")
    if bar.volume <= 0:
        return rejected("no_volume")

    reason = "ok"
    wanted = quantity
    capacity = params.participation.limit(bar.volume)
    if not complete and wanted > capacity:
        wanted = capacity
        reason = "participation_cap"
    filled = round_to_lot(wanted, params.lot_size)
    if filled < wanted * (1 - 1e-12) and reason == "ok":
        reason = "lot_rounding"
    if filled <= 0:
        return rejected(reason)

    if filled > capacity * (1 + 1e-12):
        # The end-of-day completion: the slices the cap would have taken, in this bar.
        temporary, transient, level = _completion_impact(
            filled, capacity, bar, sigma, params, transient
        )
    else:
        temporary = params.impact.temporary(filled, bar.volume, sigma)
        level = transient + temporary
    cost = params.spread.half_spread() + temporary + transient
    direction = 1.0 if side == "buy" else -1.0
    price = reference * (1.0 + direction * cost)
    # Our impact may leave the recorded [low, high] (the bar traded without us); the day's
    # price limits still bound every trade.
    price = min(max(price, limit_down), limit_up)
    # A sell's costs beyond 100% (absurd parameters only) would price it at or below zero.
    price = max(price, reference * _MIN_PRICE_FRACTION)
    status: FillStatus = "filled" if reason == "ok" else "partial"
    return ChildFill(
        side=side,
        requested=quantity,
        filled=filled,
        price=price,
        status=status,
        reason=reason,
        reference=reference,
        transient=transient,
        impact=ImpactState(level=level, bar=bar_number),
    )


def _completion_impact(
    filled: float,
    capacity: float,
    bar: BarQuote,
    sigma: float,
    params: FillParams,
    transient: float,
) -> tuple[float, float, float]:
    """Return ``(temporary, transient, level_after)`` of an end-of-day completion.

    ``filled`` (more than the cap allows) is priced as the fills the cap would have split it
    into, one after another within the bar with no time to decay: ``m`` slices of
    ``capacity`` and a last one of the rest, slice ``j`` paying its own square-root impact
    ``I`` and the transient ``T0 + j I`` of the fills before it. The cost of a block grows
    about linearly with its size (a walk through the book), so a block left to the end is
    dearer than the cap, whatever the concavity of the square-root law for one large print.
    The first two values are quantity-weighted means over the slices (fractions of the price).
    """
    full = math.floor(filled / capacity + 1e-9)
    rest = max(filled - full * capacity, 0.0)
    slice_impact = params.impact.temporary(capacity, bar.volume, sigma)
    rest_impact = params.impact.temporary(rest, bar.volume, sigma)
    # Sum over the full slices of the transient each pays, then the last slice's.
    paid = transient * full + slice_impact * full * (full - 1) / 2.0
    last_transient = transient + slice_impact * full
    level = last_transient + rest_impact
    temporary = (full * capacity * slice_impact + rest * rest_impact) / filled
    mean_transient = (capacity * paid + rest * last_transient) / filled
    return temporary, mean_transient, level
