"""Round trips from ledger fills and the behavioural biases of a period. Pure: no I/O.

Round trips
-----------
:func:`round_trips` replays an account's fills in fill order with the ledger's one P&L
convention, the **average cost** (``docs/ledger.md``): a buy fill adds its quantity, notional
(the cost basis, minor units) and fees to the holding of its name; a sell fill takes
:func:`arena.money.cost_removed` of the cost basis with it (the broker's own rule), and the
same share of the holding's buy fees and of its quantity-weighted acquisition time. A sell
*order* is one round trip::

    pnl = sell notional - cost basis removed - sell fees - buy fees removed

in money units (minor units / 10**money_digits), so the round trips' ``pnl + fees`` of an
account sum exactly to the ledger's ``realised_pnl``. ``entry_price`` is the cost basis
removed per unit (the holding's average cost), ``exit_price`` the sell fills' quantity-weighted
price; ``holding_days`` is the mean age of the units sold, in days (24 h): sell time minus the
holding's quantity-weighted acquisition time. ``entry_time`` is the first buy of the holding
(since the name was last flat) and the entry ids the buys of that holding.

Biases (:class:`BiasConfig` thresholds; each fires only when its threshold is strictly passed)
------------------------------------------------------------------------------------------------
* **over-trading** (:func:`over_trading`): per account, the trades (filled parent orders) of each
  committed day of the period; a day over-trades when its count is above
  ``over_trading_ratio`` x the account's typical daily count = its mean over the period
  (when > 0). The bias is detected when at least ``over_trading_min_days`` days over-trade or
  the mean daily count is above ``max_trades_per_day``.
* **chasing** (:func:`chasing`): a buy chases when its name's close rose by more than
  ``chase_threshold`` over the ``chase_lookback_days`` trading days before the buy day (closes
  up to the day before: what the account knew). Each buy's outcome is the return from its
  average fill price to the close ``chase_outcome_days`` trading days after the buy day (the
  last close available when the data ends earlier). Detected when there is a chasing buy and
  the chasing buys' mean outcome is below the other buys' (below 0 when every buy chased).
* **disposition effect** (:func:`disposition`): detected when the mean holding time of losing
  round trips is above ``disposition_ratio`` x that of winning ones, with at least
  ``disposition_min_trades`` round trips on each side (pnl > 0 wins, pnl < 0 loses).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from alphaloop.config import FrozenConfig
from alphaloop.errors import AlphaLoopError
from arena.money import cost_removed

__all__ = [
    "BiasConfig",
    "BuyRecord",
    "ChasingFinding",
    "DispositionFinding",
    "OverTradingFinding",
    "RoundTrip",
    "RoundTripError",
    "chasing",
    "disposition",
    "over_trading",
    "round_trips",
]

_SECONDS_PER_DAY = 86400.0


class RoundTripError(AlphaLoopError, ValueError):
    """The fills cannot be paired into round trips (a sell larger than the holding)."""


class BiasConfig(FrozenConfig):
    """Thresholds of the bias detectors (see the module docstring)."""

    over_trading_ratio: float = Field(default=1.5, gt=1.0)
    over_trading_min_days: int = Field(default=3, ge=1)
    max_trades_per_day: float = Field(default=10.0, gt=0.0)
    chase_lookback_days: int = Field(default=5, ge=1)
    chase_threshold: float = Field(default=0.05, gt=0.0)
    chase_outcome_days: int = Field(default=5, ge=1)
    disposition_ratio: float = Field(default=1.0, ge=1.0)
    disposition_min_trades: int = Field(default=1, ge=1)


# --------------------------------------------------------------------------- round trips
@dataclass(frozen=True, slots=True, kw_only=True)
class RoundTrip:
    """One sell order against the holding it reduces, at average cost (module docstring)."""

    account: str
    symbol: str
    quantity: float
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    holding_days: float
    exit_order_id: str
    entry_order_ids: tuple[str, ...]
    entry_fill_ids: tuple[str, ...]
    exit_fill_ids: tuple[str, ...]

    @property
    def cost(self) -> float:
        """Money paid for the matched quantity (without fees)."""
        return self.entry_price * self.quantity

    @property
    def return_(self) -> float:
        """``pnl`` as a fraction of the matched cost (0 when the cost is 0)."""
        return self.pnl / self.cost if self.cost > 0 else 0.0


@dataclass(slots=True)
class _Holding:
    """One name's holding since it was last flat (average cost)."""

    quantity: int = 0
    cost_basis: int = 0  # minor units, buy notionals without fees
    fees: float = 0.0  # buy fees of the units held (minor units)
    time_basis: float = 0.0  # sum of quantity x acquisition time (epoch seconds)
    first_buy: datetime | None = None
    orders: list[str] = field(default_factory=list)
    fills: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Trip:
    account: str
    symbol: str
    order_id: str
    quantity: int = 0
    sell_notional: float = 0.0
    sell_fees: float = 0.0
    buy_notional: float = 0.0
    buy_fees: float = 0.0
    weighted_seconds: float = 0.0
    entry_time: datetime | None = None
    exit_time: datetime | None = None
    entry_orders: list[str] = field(default_factory=list)
    entry_fills: list[str] = field(default_factory=list)
    exit_fills: list[str] = field(default_factory=list)


def _as_time(value: Any) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


def round_trips(fills: pd.DataFrame, digits: Mapping[str, tuple[int, int]]) -> list[RoundTrip]:
    """Return every round trip of ``fills`` in the order their sell orders first filled.

    Parameters
    ----------
    fills:
        Ledger fill rows with columns ``account, seq, fill_id, order_id, at, symbol, side,
        quantity, notional, commission, taxes`` (quantity in quantity units, money in minor
        units), all fills of each account from its first day on.
    digits:
        ``account -> (money_digits, quantity_digits)``.

    Raises
    ------
    RoundTripError
        If a sell closes more than the open lots of its name, or an account has no digits.
    """
    if fills.empty:
        return []
    ordered = fills.sort_values(["account", "seq"], kind="stable")
    holdings: dict[tuple[str, str], _Holding] = defaultdict(_Holding)
    trips: dict[tuple[str, str], _Trip] = {}
    order_of_trips: list[tuple[str, str]] = []
    for row in ordered.itertuples(index=False):
        account = str(row.account)
        if account not in digits:
            raise RoundTripError(f"round_trips: no money/quantity digits for account {account!r}")
        at = _as_time(row.at)
        fees = float(row.commission) + float(row.taxes)
        quantity = int(row.quantity)
        holding = holdings[(account, str(row.symbol))]
        if row.side == "buy":
            if holding.quantity == 0:
                holdings[(account, str(row.symbol))] = holding = _Holding(first_buy=at)
            holding.quantity += quantity
            holding.cost_basis += int(row.notional)
            holding.fees += fees
            holding.time_basis += quantity * at.timestamp()
            if str(row.order_id) not in holding.orders:
                holding.orders.append(str(row.order_id))
            holding.fills.append(str(row.fill_id))
            continue
        if quantity > holding.quantity:
            raise RoundTripError(
                f"round_trips: {account} sell fill {row.fill_id} of {row.symbol} closes "
                f"{quantity - holding.quantity} units more than were bought"
            )
        trip_key = (account, str(row.order_id))
        trip = trips.get(trip_key)
        if trip is None:
            trip = _Trip(account=account, symbol=str(row.symbol), order_id=str(row.order_id))
            trips[trip_key] = trip
            order_of_trips.append(trip_key)
        share = quantity / holding.quantity
        removed = cost_removed(holding.cost_basis, quantity, holding.quantity)
        fees_removed = holding.fees if quantity == holding.quantity else holding.fees * share
        time_removed = (
            holding.time_basis if quantity == holding.quantity else holding.time_basis * share
        )
        trip.quantity += quantity
        trip.sell_notional += float(row.notional)
        trip.sell_fees += fees
        trip.buy_notional += float(removed)
        trip.buy_fees += fees_removed
        trip.weighted_seconds += quantity * at.timestamp() - time_removed
        trip.exit_time = at
        trip.exit_fills.append(str(row.fill_id))
        assert holding.first_buy is not None
        if trip.entry_time is None or holding.first_buy < trip.entry_time:
            trip.entry_time = holding.first_buy
        for order_id in holding.orders:
            if order_id not in trip.entry_orders:
                trip.entry_orders.append(order_id)
        for fill_id in holding.fills:
            if fill_id not in trip.entry_fills:
                trip.entry_fills.append(fill_id)
        holding.quantity -= quantity
        holding.cost_basis -= removed
        holding.fees -= fees_removed
        holding.time_basis -= time_removed
    out = []
    for trip_key in order_of_trips:
        trip = trips[trip_key]
        money_digits, quantity_digits = digits[trip.account]
        money = 10.0**money_digits
        units = trip.quantity / 10.0**quantity_digits
        fees = (trip.sell_fees + trip.buy_fees) / money
        assert trip.entry_time is not None and trip.exit_time is not None
        out.append(
            RoundTrip(
                account=trip.account,
                symbol=trip.symbol,
                quantity=units,
                entry_time=trip.entry_time,
                exit_time=trip.exit_time,
                entry_price=trip.buy_notional / money / units,
                exit_price=trip.sell_notional / money / units,
                pnl=(trip.sell_notional - trip.buy_notional) / money - fees,
                fees=fees,
                holding_days=trip.weighted_seconds / trip.quantity / _SECONDS_PER_DAY,
                exit_order_id=trip.order_id,
                entry_order_ids=tuple(trip.entry_orders),
                entry_fill_ids=tuple(trip.entry_fills),
                exit_fill_ids=tuple(trip.exit_fills),
            )
        )
    # Sorted by exit time (stable) so that accounts interleave in calendar order.
    return sorted(out, key=lambda trip: trip.exit_time)


# --------------------------------------------------------------------------- over-trading
@dataclass(frozen=True, slots=True, kw_only=True)
class OverTradingFinding:
    """Daily trade counts of one account over the period and whether it over-traded."""

    account: str
    days: int
    mean_per_day: float
    median_per_day: float
    max_per_day: int
    over_days: tuple[date, ...]
    threshold: float
    detected: bool

    def figures(self) -> dict[str, Any]:
        """Return the JSON-ready figures."""
        return {
            "days": self.days,
            "mean_per_day": self.mean_per_day,
            "median_per_day": self.median_per_day,
            "max_per_day": self.max_per_day,
            "over_days": [day.isoformat() for day in self.over_days],
            "threshold": self.threshold,
            "detected": self.detected,
        }


def over_trading(
    account: str, daily_trades: Mapping[date, int], config: BiasConfig | None = None
) -> OverTradingFinding:
    """Return the over-trading finding of ``account`` from its trades per committed day.

    Parameters
    ----------
    account:
        The account's name.
    daily_trades:
        ``day -> filled parent orders`` for every committed day of the period (0 included).
    config:
        Thresholds; the defaults of :class:`BiasConfig` when ``None``.
    """
    config = config or BiasConfig()
    days = sorted(daily_trades)
    counts = np.array([daily_trades[day] for day in days], dtype=np.float64)
    if counts.size == 0:
        return OverTradingFinding(
            account=account, days=0, mean_per_day=0.0, median_per_day=0.0, max_per_day=0,
            over_days=(), threshold=0.0, detected=False,
        )  # fmt: skip
    median = float(np.median(counts))
    mean = float(np.mean(counts))
    limit = config.over_trading_ratio * mean
    over = tuple(day for day in days if mean > 0 and daily_trades[day] > limit)
    detected = len(over) >= config.over_trading_min_days or mean > config.max_trades_per_day
    return OverTradingFinding(
        account=account,
        days=len(days),
        mean_per_day=mean,
        median_per_day=median,
        max_per_day=int(counts.max()),
        over_days=over,
        threshold=limit,
        detected=detected,
    )


# --------------------------------------------------------------------------- chasing
@dataclass(frozen=True, slots=True, kw_only=True)
class BuyRecord:
    """A filled buy order: the name, the trading day and its average fill price."""

    account: str
    symbol: str
    day: date
    price: float
    order_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChasingFinding:
    """Buys after a strong prior move of the name against the other buys."""

    account: str
    buys: int
    chasing_buys: int
    assessed_buys: int
    mean_prior_move_chasing: float | None
    mean_outcome_chasing: float | None
    mean_outcome_other: float | None
    chasing_orders: tuple[str, ...]
    detected: bool

    def figures(self) -> dict[str, Any]:
        """Return the JSON-ready figures."""
        return {
            "buys": self.buys,
            "assessed_buys": self.assessed_buys,
            "chasing_buys": self.chasing_buys,
            "mean_prior_move_chasing": self.mean_prior_move_chasing,
            "mean_outcome_chasing": self.mean_outcome_chasing,
            "mean_outcome_other": self.mean_outcome_other,
            "chasing_orders": list(self.chasing_orders),
            "detected": self.detected,
        }


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def chasing(
    account: str,
    buys: Sequence[BuyRecord],
    closes: pd.DataFrame,
    config: BiasConfig | None = None,
) -> ChasingFinding:
    """Return the chasing finding of ``account``'s ``buys`` (module docstring).

    Parameters
    ----------
    account:
        The account's name.
    buys:
        Its filled buy orders of the period.
    closes:
        Daily closes, index = trading days (``datetime.date``) in order, columns = symbols.
        A buy whose day or name is not in it, or without ``chase_lookback_days`` earlier
        closes, is not assessed.
    config:
        Thresholds; the defaults of :class:`BiasConfig` when ``None``.
    """
    config = config or BiasConfig()
    position = {day: index for index, day in enumerate(closes.index)}
    values = closes.to_numpy(dtype=np.float64)
    columns = {symbol: index for index, symbol in enumerate(closes.columns)}
    last = len(closes.index) - 1
    chase_outcomes: list[float] = []
    chase_moves: list[float] = []
    other_outcomes: list[float] = []
    chasing_orders: list[str] = []
    assessed = 0
    for buy in buys:
        row = position.get(buy.day)
        column = columns.get(buy.symbol)
        if row is None or column is None or row - 1 - config.chase_lookback_days < 0:
            continue
        before = values[row - 1 - config.chase_lookback_days, column]
        latest = values[row - 1, column]
        after = values[min(row + config.chase_outcome_days, last), column]
        if not (math.isfinite(before) and math.isfinite(latest) and math.isfinite(after)):
            continue
        if before <= 0 or buy.price <= 0:
            continue
        assessed += 1
        move = latest / before - 1.0
        outcome = after / buy.price - 1.0
        if move > config.chase_threshold:
            chase_moves.append(move)
            chase_outcomes.append(outcome)
            chasing_orders.append(buy.order_id)
        else:
            other_outcomes.append(outcome)
    chase_mean = _mean(chase_outcomes)
    other_mean = _mean(other_outcomes)
    detected = chase_mean is not None and chase_mean < (0.0 if other_mean is None else other_mean)
    return ChasingFinding(
        account=account,
        buys=len(buys),
        chasing_buys=len(chase_outcomes),
        assessed_buys=assessed,
        mean_prior_move_chasing=_mean(chase_moves),
        mean_outcome_chasing=chase_mean,
        mean_outcome_other=other_mean,
        chasing_orders=tuple(chasing_orders),
        detected=detected,
    )


# --------------------------------------------------------------------------- disposition
@dataclass(frozen=True, slots=True, kw_only=True)
class DispositionFinding:
    """Mean holding time of losing against winning round trips."""

    account: str
    winners: int
    losers: int
    mean_hold_winners: float | None
    mean_hold_losers: float | None
    ratio: float | None
    detected: bool

    def figures(self) -> dict[str, Any]:
        """Return the JSON-ready figures (holding times in days)."""
        return {
            "winners": self.winners,
            "losers": self.losers,
            "mean_hold_winners_days": self.mean_hold_winners,
            "mean_hold_losers_days": self.mean_hold_losers,
            "ratio": self.ratio,
            "detected": self.detected,
        }


def disposition(
    account: str, trips: Sequence[RoundTrip], config: BiasConfig | None = None
) -> DispositionFinding:
    """Return the disposition-effect finding of ``account``'s round trips (module docstring)."""
    config = config or BiasConfig()
    wins = [trip.holding_days for trip in trips if trip.pnl > 0]
    losses = [trip.holding_days for trip in trips if trip.pnl < 0]
    win_mean = _mean(wins)
    loss_mean = _mean(losses)
    ratio = None
    if win_mean is not None and loss_mean is not None:
        ratio = loss_mean / win_mean if win_mean > 0 else (math.inf if loss_mean > 0 else 1.0)
    enough = min(len(wins), len(losses)) >= config.disposition_min_trades
    detected = (
        enough
        and win_mean is not None
        and loss_mean is not None
        and loss_mean > config.disposition_ratio * win_mean
    )
    return DispositionFinding(
        account=account,
        winners=len(wins),
        losers=len(losses),
        mean_hold_winners=win_mean,
        mean_hold_losers=loss_mean,
        ratio=ratio,
        detected=detected,
    )
