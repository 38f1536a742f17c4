"""Fill of one child order on one bar: spread, square-root impact, participation cap, lots, limits.

A pure function (NumPy, no Ray) shared by the execution environment (``rl_exec``) and the
arena's broker. The assumptions, written once:

* The order is decided at the close of the previous bar and executes *during* this bar
  (next-bar execution; a bar's timestamp is its close).
* The base price is the bar's OHLC average, a proxy for the bar's VWAP.
* The trader pays half the quoted spread and a square-root market impact
  ``k * sigma * sqrt(qty / bar_volume)`` (both as fractions of the base price), adverse to the
  side: a buy pays more, a sell receives less.
* At most ``participation_cap`` of the bar's volume is filled; the rest stays unfilled (the
  caller decides whether it rolls over).
* The filled quantity is rounded *down* to whole lots.
* No buy when the bar closes at or above the limit-up price, no sell when it closes at or below
  the limit-down price (a locked limit: the queue on the other side is empty).
* The fill price is never outside ``[low, high]`` of the bar (nor outside the price limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from simulators.lots import round_to_lot_nb

Side = Literal["buy", "sell"]
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
    """

    half_spread_bps: float = 2.5
    impact_coefficient: float = 0.5
    participation_cap: float = 0.1
    lot_size: float = 1.0
    limit_pct: float | None = None

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
    """

    open: float
    high: float
    low: float
    close: float
    volume: float
    prev_close: float | None = None

    def __post_init__(self) -> None:
        prices = (self.open, self.high, self.low, self.close)
        if not all(math.isfinite(p) and p > 0 for p in prices):
            raise ValueError(f"BarQuote prices must be finite and > 0, got {prices}")
        if self.high < self.low:
            raise ValueError(f"BarQuote high {self.high} < low {self.low}")
        if not (math.isfinite(self.volume) and self.volume >= 0):
            raise ValueError(f"BarQuote volume must be finite and >= 0, got {self.volume}")


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
    """

    side: Side
    requested: float
    filled: float
    price: float
    status: FillStatus
    reason: str

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
    if quantity <= 0 or bar_volume <= 0:
        return 0.0
    return coefficient * sigma * math.sqrt(quantity / bar_volume)


def fill_child_order(
    side: Side,
    quantity: float,
    bar: BarQuote,
    *,
    sigma: float,
    params: FillParams,
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
        Volatility for the square-root impact, as a fraction of the price (``>= 0``).
    params:
        Spread, impact, cap, lot and limit parameters.

    Returns
    -------
    ChildFill
        Filled quantity, average price and why less was filled, if it was.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not (math.isfinite(quantity) and quantity >= 0):
        raise ValueError(f"quantity must be finite and >= 0, got {quantity}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")

    def rejected(reason: str) -> ChildFill:
        return ChildFill(
            side=side,
            requested=quantity,
            filled=0.0,
            price=math.nan,
            status="rejected",
            reason=reason,
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
    capacity = params.participation_cap * bar.volume
    wanted = quantity
    if wanted > capacity:
        wanted = capacity
        reason = "participation_cap"
    filled = round_to_lot(wanted, params.lot_size)
    if filled < wanted * (1 - 1e-12) and reason == "ok":
        reason = "lot_rounding"
    if filled <= 0:
        return rejected(reason)

    base = (bar.open + bar.high + bar.low + bar.close) / 4.0
    cost = params.half_spread_bps / 1e4 + impact_fraction(
        filled, bar.volume, sigma, params.impact_coefficient
    )
    direction = 1.0 if side == "buy" else -1.0
    price = base * (1.0 + direction * cost)
    # The bar's range (and the day's limits) bound every trade that really happened.
    low = max(bar.low, limit_down)
    high = min(bar.high, limit_up)
    price = min(max(price, low), high) if low <= high else min(max(price, bar.low), bar.high)
    status: FillStatus = "filled" if reason == "ok" else "partial"
    return ChildFill(
        side=side,
        requested=quantity,
        filled=filled,
        price=price,
        status=status,
        reason=reason,
    )
