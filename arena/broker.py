"""The paper broker: a pure step ``(account state, order, bar) -> (new state, events)``.

Nothing here keeps state between calls: :class:`AccountState` and :class:`~arena.orders.Order`
are frozen values and every function returns new ones. Prices and quantities come from the
shared bar fill model (:func:`simulators.fill_model.fill_child_order`: spread, square-root and
transient impact, participation cap, lots, locked limits; our impact may leave the bar's
``[low, high]``, ``docs/fill_assumptions.md``); the money is
then made exact (:mod:`arena.money`) and charged with the market's commission and taxes.

Rules enforced on top of the fill model:

* **Admission** of a new order on its arrival bar, in this order: a non-tradable bar rejects
  it (``suspended``); selling more than is held (``insufficient_position``) or more than is
  sellable today (``t_plus_one``); a quantity that is not whole lots (``lot_size``; a sell of
  the whole position may be an odd lot); a buy at a locked limit-up or a sell at a locked
  limit-down (``limit_up`` / ``limit_down``); a buy whose value at the bar's open plus its
  commission exceeds the cash (``insufficient_cash``).
* **Each fill** is shrunk to whole lots the cash can pay for (fees included) and to the
  sellable quantity, so cash and positions never go negative, whatever the price path.
* **Commission** is charged on the order's cumulative value: fill ``k`` pays
  ``C(value_1 + ... + value_k) - C(value_1 + ... + value_{k-1})`` with
  ``C(v) = max(rate * v, minimum) + fixed``, so a sliced order pays exactly what the same
  order filled at once would, and never the minimum twice. **Stamp duty** is charged on each
  sell fill's value at the rate of its trading day.
* **T+1**: a buy adds to the quantity at once but to the sellable quantity only when the next
  trading day starts (:func:`start_day`), on markets with ``t_plus_one``.

A parent order is sliced through the day by :func:`execute_parent`: the day's bars are cut
into ``n_steps`` decision steps; at each step a schedule (TWAP by default; any object with
``schedule_fraction(observation) -> float``, a plain callable, or a sequence of fractions of
the total) decides how much of the remaining quantity to work over the step's bars; the last
bar of the horizon completes what the participation cap left (the fill model's end-of-day
rule), and what even that cannot fill (a blocked or locked bar, no cash) expires. A parent's
transient impact (:class:`simulators.fill_model.ImpactState`) lives in its
:class:`ParentExecution`, one per (account, symbol, parent order). :class:`ParentExecution`
is the same logic fed one bar at a time (``execute_parent`` is a loop over it), so that the
arena's day can interleave every parent minute by minute and block a bar for one order
(:mod:`arena.intraday`).

The market rules come from :mod:`simulators.market_rules` through :meth:`BrokerRules.from_market`
(an adapter: those models compile to whole-panel arrays for the backtest kernel; the broker
needs per-symbol scalars and the previous *daily* close, which a one-day minute panel lacks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from arena.events import (
    Event,
    FillEvent,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderSubmitted,
    Side,
)
from arena.money import (
    MoneyUnits,
    cost_removed,
    money_from_float,
    notional_minor,
    price_from_float,
    quantity_from_float,
    quantity_to_float,
    rate_amount,
    units_for_market,
)
from arena.orders import (
    DuplicateFill,
    FillSequenceError,
    InvalidTransition,
    Order,
    OrderStatus,
    apply_fill_to_order,
    order_id_for,
    transition,
)
from simulators.bars import Panel
from simulators.execution_observation import BASE_OBS_FIELDS, execution_observation
from simulators.fill_model import (
    NO_IMPACT,
    BarQuote,
    ChildFill,
    FillParams,
    ImpactState,
    fill_child_order,
)
from simulators.market_rules import (
    CN_STAMP_DUTY_CUT,
    cn_board_limit,
    cn_symbol_is_st,
    get_market_rules,
)

__all__ = [
    "DEFAULT_STEPS",
    "OBSERVATION_FIELDS",
    "AccountState",
    "Bar",
    "BrokerRules",
    "ExecutionContext",
    "ExecutionResult",
    "InvariantViolation",
    "ParentExecution",
    "Position",
    "ScheduleFraction",
    "TwapSchedule",
    "Valuation",
    "apply_fill",
    "bars_from_panel",
    "default_observation",
    "execute_order",
    "execute_parent",
    "fill_id_for",
    "mark_to_market",
    "open_account",
    "start_day",
    "submit_order",
]

#: Decision steps of a parent order when the caller does not say (15 minutes of a cn day).
DEFAULT_STEPS = 16
#: Layout of :func:`default_observation` (the base fields of ``rl_exec.env``, same order).
OBSERVATION_FIELDS: tuple[str, ...] = BASE_OBS_FIELDS
_TWAP_INDEX = OBSERVATION_FIELDS.index("twap_share")


class InvariantViolation(RuntimeError):
    """An accounting invariant broke (negative cash, selling what is not sellable...)."""


# --------------------------------------------------------------------------- rules
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
        duty: tuple[tuple[date, float], ...] = ()
        if hasattr(model, "stamp_duty_before"):
            duty = (
                (date.min, float(model.stamp_duty_before)),
                (CN_STAMP_DUTY_CUT.date(), float(getattr(model, "stamp_duty_after", 0.0))),
            )
        return cls(
            market=name,
            units=book,
            lot_units=lot_units,
            t_plus_one=name == "cn",
            commission_rate=float(getattr(model, "commission_rate", 0.0)),
            commission_min=float(getattr(model, "commission_min", 0.0)),
            commission_fixed=float(getattr(model, "commission_fixed", 0.0)),
            stamp_duty=duty,
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
        """Return the stamp-duty rate on sells filled on ``day``."""
        rate = 0.0
        for start, value in self.stamp_duty:
            if day >= start:
                rate = value
        return rate

    def commission_for(self, order_value: int) -> int:
        """Return the commission of an order whose filled value is ``order_value`` minor units."""
        if order_value <= 0:
            return 0
        digits = self.units.money_digits
        variable = max(
            rate_amount(order_value, self.commission_rate),
            money_from_float(self.commission_min, digits),
        )
        return variable + money_from_float(self.commission_fixed, digits)

    def fill_params(self, symbol: str, lot_units: int, day: date) -> FillParams:
        """Return the fill model parameters of ``symbol`` traded on ``day`` in ``lot_units``."""
        return FillParams(
            half_spread_bps=self.half_spread_bps,
            impact_coefficient=self.impact_coefficient,
            participation_cap=self.participation_cap,
            lot_size=quantity_to_float(lot_units, self.units.quantity_digits),
            limit_pct=self.limit_pct(symbol, day),
        )


# --------------------------------------------------------------------------- bars
@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar of one symbol, as the broker sees it.

    Parameters
    ----------
    symbol:
        The symbol.
    day:
        The trading day the bar belongs to (T+1 and stamp duty are reckoned by it).
    at:
        The bar's close, timezone-aware (fills are stamped with it).
    open, high, low, close, volume:
        OHLCV; ignored when the bar is not tradable (they may be NaN then).
    tradable:
        False for a suspended or missing bar: nothing fills.
    prev_close:
        The previous *daily* close, the reference of the price limits (``None``: no limits).
    """

    symbol: str
    day: date
    at: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    tradable: bool = True
    prev_close: float | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"Bar {self.symbol} at {self.at}: timestamp must be timezone-aware")
        if self.tradable:
            # Reuses the fill model's own checks (finite, positive, high >= low, volume >= 0).
            quote = self.quote()
            if not (quote.low <= min(quote.open, quote.close) <= max(quote.open, quote.close)):
                raise ValueError(f"Bar {self.symbol} at {self.at}: open/close outside low/high")
            if quote.high < max(quote.open, quote.close):
                raise ValueError(f"Bar {self.symbol} at {self.at}: open/close above high")

    def quote(self) -> BarQuote:
        """Return the fill model's view of this bar."""
        return BarQuote(
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            prev_close=self.prev_close,
        )


def bars_from_panel(
    panel: Panel, symbol: str, *, day: date, prev_close: float | None = None
) -> list[Bar]:
    """Return the bars of one ``symbol`` column of ``panel`` (e.g. one day's minute bars).

    Parameters
    ----------
    panel:
        Bars of one trading day (``simulators.synthetic.generate_intraday``).
    symbol:
        The column.
    day:
        The trading day they belong to.
    prev_close:
        The previous daily close of the symbol (the price-limit reference).
    """
    col = panel.column(symbol)
    out = []
    for t, stamp in enumerate(panel.index):
        out.append(
            Bar(
                symbol=symbol,
                day=day,
                at=stamp.to_pydatetime(),
                open=float(panel.open[t, col]),
                high=float(panel.high[t, col]),
                low=float(panel.low[t, col]),
                close=float(panel.close[t, col]),
                volume=float(panel.volume[t, col]),
                tradable=bool(panel.tradable[t, col]),
                prev_close=prev_close,
            )
        )
    return out


# --------------------------------------------------------------------------- account state
@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A long holding.

    Parameters
    ----------
    symbol:
        The symbol.
    quantity:
        Quantity units held (``> 0``).
    sellable:
        Quantity units that may be sold today (``<= quantity``; less on T+1 markets after a buy).
    cost_basis:
        Cost of the units held, minor units (fill values, fees excluded; see ``docs/ledger.md``).
    """

    symbol: str
    quantity: int
    sellable: int
    cost_basis: int

    def __post_init__(self) -> None:
        if not 0 < self.quantity:
            raise InvariantViolation(f"Position {self.symbol}: quantity {self.quantity} <= 0")
        if not 0 <= self.sellable <= self.quantity:
            raise InvariantViolation(
                f"Position {self.symbol}: sellable {self.sellable} not in [0, {self.quantity}]"
            )
        if self.cost_basis < 0:
            raise InvariantViolation(f"Position {self.symbol}: cost basis {self.cost_basis} < 0")

    def average_cost(self, units: MoneyUnits) -> Decimal:
        """Return the cost per whole unit of the asset, in currency units (exact)."""
        money = Decimal(self.cost_basis).scaleb(-units.money_digits)
        return money / Decimal(self.quantity).scaleb(-units.quantity_digits)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountState:
    """The books of one paper account: a frozen value; every step returns a new one.

    Parameters
    ----------
    account:
        The account's name.
    units:
        Its integer book units.
    t_plus_one:
        Whether buys become sellable on the next trading day only.
    initial_cash, cash:
        Minor units; cash is never negative.
    positions:
        Holdings sorted by symbol, one per symbol, none empty.
    realised_pnl:
        Sum over sells of value received minus cost basis removed (fees excluded).
    commission_paid, taxes_paid:
        Totals charged.
    day:
        The trading day the books are at (``None`` before the first).
    last_fill_seq, last_order_seq:
        Numbers of the last fill applied and the last order created.
    """

    account: str
    units: MoneyUnits
    t_plus_one: bool
    initial_cash: int
    cash: int
    positions: tuple[Position, ...] = ()
    realised_pnl: int = 0
    commission_paid: int = 0
    taxes_paid: int = 0
    day: date | None = None
    last_fill_seq: int = 0
    last_order_seq: int = 0

    def __post_init__(self) -> None:
        if not self.account:
            raise ValueError("AccountState.account must be a non-empty name")
        if self.cash < 0:
            raise InvariantViolation(f"account {self.account}: cash {self.cash} < 0")
        symbols = [p.symbol for p in self.positions]
        if symbols != sorted(set(symbols)):
            raise InvariantViolation(
                f"account {self.account}: positions must be sorted by symbol and unique"
            )

    @property
    def fees_paid(self) -> int:
        """Commission plus taxes, minor units."""
        return self.commission_paid + self.taxes_paid

    def position(self, symbol: str) -> Position | None:
        """Return the holding of ``symbol`` or ``None``."""
        for held in self.positions:
            if held.symbol == symbol:
                return held
        return None

    def held(self, symbol: str) -> int:
        """Return the quantity units held of ``symbol`` (0 when none)."""
        held = self.position(symbol)
        return 0 if held is None else held.quantity

    def sellable(self, symbol: str) -> int:
        """Return the quantity units of ``symbol`` that may be sold now."""
        held = self.position(symbol)
        return 0 if held is None else held.sellable


def open_account(
    account: str,
    *,
    initial_cash: int,
    units: MoneyUnits,
    t_plus_one: bool,
) -> AccountState:
    """Return a fresh account holding ``initial_cash`` minor units and nothing else."""
    if isinstance(initial_cash, bool) or not isinstance(initial_cash, int) or initial_cash < 0:
        raise ValueError(f"initial_cash must be a non-negative int of minor units: {initial_cash}")
    return AccountState(
        account=account,
        units=units,
        t_plus_one=t_plus_one,
        initial_cash=initial_cash,
        cash=initial_cash,
    )


def start_day(state: AccountState, day: date) -> AccountState:
    """Return the books moved to trading day ``day`` (everything held becomes sellable).

    Raises
    ------
    InvariantViolation
        If ``day`` is before the books' day (time only moves forward).
    """
    if state.day is not None:
        if day < state.day:
            raise InvariantViolation(
                f"account {state.account}: day {day} is before the books' day {state.day}"
            )
        if day == state.day:
            return state
    positions = tuple(replace(p, sellable=p.quantity) for p in state.positions)
    return replace(state, day=day, positions=positions)


def fill_id_for(account: str, seq: int) -> str:
    """Return the id of the account's fill number ``seq`` (``"aggressive-F00000007"``)."""
    return f"{account}-F{seq:08d}"


def submit_order(
    state: AccountState,
    *,
    symbol: str,
    side: Side,
    quantity: int,
    day: date,
    at: datetime,
    decision_id: str | None = None,
) -> tuple[AccountState, Order, OrderSubmitted]:
    """Create the account's next order (status ``new``).

    Returns
    -------
    tuple
        The books with the order number taken, the order and its ``OrderSubmitted`` event.
    """
    seq = state.last_order_seq + 1
    order = Order(
        account=state.account,
        order_id=order_id_for(state.account, seq),
        seq=seq,
        day=day,
        symbol=symbol,
        side=side,
        quantity=quantity,
        decision_id=decision_id,
    )
    event = OrderSubmitted(
        account=state.account,
        at=at,
        order_id=order.order_id,
        symbol=symbol,
        side=side,
        quantity=quantity,
    )
    return replace(state, last_order_seq=seq), order, event


def _with_position(
    positions: tuple[Position, ...], symbol: str, new: Position | None
) -> tuple[Position, ...]:
    kept = [p for p in positions if p.symbol != symbol]
    if new is not None:
        kept.append(new)
    return tuple(sorted(kept, key=lambda p: p.symbol))


def apply_fill(state: AccountState, fill: FillEvent) -> AccountState:
    """Return the books after ``fill``: the only way positions and cash change.

    Raises
    ------
    DuplicateFill
        If the fill's number was already applied (``fill_seq <= last_fill_seq``).
    FillSequenceError
        If a fill number is skipped, or the fill belongs to another account or an earlier day.
    InvariantViolation
        If it sells more than is sellable or leaves the cash negative.
    """
    if fill.account != state.account:
        raise FillSequenceError(f"fill {fill.fill_id} is for {fill.account}, not {state.account}")
    if fill.fill_seq <= state.last_fill_seq:
        raise DuplicateFill(
            f"account {state.account}: fill {fill.fill_id} (number {fill.fill_seq}) already "
            f"applied (last applied: {state.last_fill_seq})"
        )
    if fill.fill_seq != state.last_fill_seq + 1:
        raise FillSequenceError(
            f"account {state.account}: fill {fill.fill_id} is number {fill.fill_seq}, expected "
            f"{state.last_fill_seq + 1}"
        )
    books = start_day(state, fill.day)
    held = books.position(fill.symbol)
    fees = fill.commission + fill.taxes
    if fill.side == "buy":
        quantity = fill.quantity + (0 if held is None else held.quantity)
        sellable = (0 if held is None else held.sellable) + (
            0 if books.t_plus_one else fill.quantity
        )
        cost = fill.notional + (0 if held is None else held.cost_basis)
        new_position: Position | None = Position(
            symbol=fill.symbol, quantity=quantity, sellable=sellable, cost_basis=cost
        )
        cash = books.cash - fill.notional - fees
        realised = books.realised_pnl
    else:
        if held is None or fill.quantity > held.sellable:
            raise InvariantViolation(
                f"account {state.account}: fill {fill.fill_id} sells {fill.quantity} "
                f"{fill.symbol}, sellable {0 if held is None else held.sellable}"
            )
        # Average cost: the share of the basis that leaves with the units sold.
        removed = cost_removed(held.cost_basis, fill.quantity, held.quantity)
        if fill.quantity == held.quantity:
            new_position = None
        else:
            new_position = Position(
                symbol=fill.symbol,
                quantity=held.quantity - fill.quantity,
                sellable=held.sellable - fill.quantity,
                cost_basis=held.cost_basis - removed,
            )
        cash = books.cash + fill.notional - fees
        realised = books.realised_pnl + fill.notional - removed
    if cash < 0:
        raise InvariantViolation(
            f"account {state.account}: fill {fill.fill_id} would leave cash {cash} < 0"
        )
    return replace(
        books,
        cash=cash,
        positions=_with_position(books.positions, fill.symbol, new_position),
        realised_pnl=realised,
        commission_paid=books.commission_paid + fill.commission,
        taxes_paid=books.taxes_paid + fill.taxes,
        last_fill_seq=fill.fill_seq,
    )


# --------------------------------------------------------------------------- valuation
@dataclass(frozen=True, slots=True, kw_only=True)
class Valuation:
    """Mark-to-market of the books at given prices (all money in minor units).

    ``marks`` holds ``(symbol, quantity, price, value)`` per position.
    """

    cash: int
    market_value: int
    equity: int
    marks: tuple[tuple[str, int, Decimal, int], ...]


def mark_to_market(state: AccountState, prices: Mapping[str, float]) -> Valuation:
    """Value the books at ``prices`` (e.g. the day's closes), exactly.

    Raises
    ------
    KeyError
        If a held symbol has no price.
    """
    marks = []
    for held in state.positions:
        if held.symbol not in prices:
            raise KeyError(f"mark_to_market: no price for held symbol {held.symbol!r}")
        price = price_from_float(prices[held.symbol], state.units.price_digits)
        value = notional_minor(held.quantity, price, state.units)
        marks.append((held.symbol, held.quantity, price, value))
    market_value = sum(m[3] for m in marks)
    return Valuation(
        cash=state.cash,
        market_value=market_value,
        equity=state.cash + market_value,
        marks=tuple(marks),
    )


# --------------------------------------------------------------------------- one step
Outcome = Literal["filled", "partially_filled", "rejected", "no_fill", "expired"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResult:
    """What one broker step (or one parent order's day) did.

    Parameters
    ----------
    state:
        The books afterwards.
    order:
        The order afterwards.
    events:
        Events in the order they happened.
    status:
        ``filled``, ``partially_filled`` (something filled, some still working),
        ``rejected``, ``no_fill`` (working, nothing filled on this bar) or ``expired``
        (the parent's day ended with some unfilled; it may have filled partly).
    reason:
        ``"ok"`` or the reason code of why less than asked was filled.
    """

    state: AccountState
    order: Order
    events: tuple[Event, ...]
    status: Outcome
    reason: str

    @property
    def fills(self) -> tuple[FillEvent, ...]:
        """The fill events among :attr:`events`."""
        return tuple(e for e in self.events if isinstance(e, FillEvent))


def _check_pair(state: AccountState, order: Order, bar: Bar) -> None:
    if order.account != state.account:
        raise ValueError(f"order {order.order_id} is for {order.account}, not {state.account}")
    if order.symbol != bar.symbol:
        raise ValueError(f"order {order.order_id} is for {order.symbol}, bar is {bar.symbol}")
    if order.day != bar.day:
        raise ValueError(f"order {order.order_id} lives on {order.day}, bar is of {bar.day}")


def _sell_lot(order: Order, rules: BrokerRules) -> int:
    # Closing a whole position may be an odd lot (the exchanges allow it), so those sells
    # trade in single units.
    return rules.lot_units if order.quantity % rules.lot_units == 0 else 1


def _admission_reason(
    state: AccountState, order: Order, bar: Bar, rules: BrokerRules, *, check_cash: bool = True
) -> str:
    if not bar.tradable:
        return "suspended"
    if order.side == "sell":
        if order.quantity > state.held(order.symbol):
            return "insufficient_position"
        if order.quantity > state.sellable(order.symbol):
            return "t_plus_one"
        if order.quantity % rules.lot_units and order.quantity != state.held(order.symbol):
            return "lot_size"
    elif order.quantity % rules.lot_units:
        return "lot_size"
    lot = rules.lot_units if order.side == "buy" else _sell_lot(order, rules)
    probe = fill_child_order(
        order.side,
        quantity_to_float(order.quantity, rules.units.quantity_digits),
        bar.quote(),
        sigma=0.0,
        params=rules.fill_params(order.symbol, lot, bar.day),
    )
    if probe.reason in ("limit_up", "limit_down"):
        return probe.reason
    if order.side == "buy" and check_cash:
        price = price_from_float(bar.open, rules.units.price_digits)
        value = notional_minor(order.quantity, price, rules.units)
        if value + rules.commission_for(value) > state.cash:
            return "insufficient_cash"
    return ""


def _book_price(raw: float, digits: int) -> Decimal:
    """Return the fill price at book precision (our impact may leave the bar's range)."""
    return price_from_float(raw, digits)


def _fill_cost(
    order: Order, quantity: int, price: Decimal, bar: Bar, rules: BrokerRules
) -> tuple[int, int, int]:
    notional = notional_minor(quantity, price, rules.units)
    commission = rules.commission_for(order.filled_notional + notional) - rules.commission_for(
        order.filled_notional
    )
    taxes = 0
    if order.side == "sell":
        taxes = rate_amount(notional, rules.stamp_duty_rate(bar.day))
    return notional, commission, taxes


def _fill_on_bar(
    state: AccountState,
    order: Order,
    bar: Bar,
    rules: BrokerRules,
    *,
    want: int,
    sigma: float,
    impact: ImpactState = NO_IMPACT,
    bar_number: int = 0,
    complete: bool = False,
) -> tuple[AccountState, Order, list[Event], int, str, ImpactState]:
    """Fill up to ``want`` units of a working order on ``bar``; return what changed.

    ``impact``, ``bar_number`` and ``complete`` are the fill model's (the parent's transient
    state, the bar's number along its horizon, the end-of-day completion); the last value
    returned is the parent's transient state after this bar.
    """
    if want <= 0:
        return state, order, [], 0, "ok", impact
    if not bar.tradable:
        return state, order, [], 0, "suspended", impact
    digits = rules.units.quantity_digits
    lot = rules.lot_units if order.side == "buy" else _sell_lot(order, rules)
    params = rules.fill_params(order.symbol, lot, bar.day)

    def fill_model(units: int, *, whole: bool) -> ChildFill:
        return fill_child_order(
            order.side,
            quantity_to_float(units, digits),
            bar.quote(),
            sigma=sigma,
            params=params,
            impact=impact,
            bar_number=bar_number,
            complete=whole,
        )

    child = fill_model(want, whole=complete)
    reason = child.reason
    if child.filled <= 0:
        return state, order, [], 0, "end_of_day" if reason == "zero_quantity" else reason, impact
    quantity = min(quantity_from_float(child.filled, digits), want)
    quantity -= quantity % lot
    if order.side == "sell":
        sellable = state.sellable(order.symbol)
        if quantity > sellable:
            quantity = sellable - sellable % lot
            reason = (
                "t_plus_one" if state.held(order.symbol) > sellable else "insufficient_position"
            )
    price = _book_price(child.price, rules.units.price_digits)

    def affordable(units: int) -> bool:
        notional, commission, taxes = _fill_cost(order, units, price, bar, rules)
        sign = -1 if order.side == "buy" else 1
        return state.cash + sign * notional - commission - taxes >= 0

    if quantity > 0 and not affordable(quantity):
        # Largest whole number of lots the cash pays for (cost grows with the quantity).
        low_lots, high_lots = 0, quantity // lot
        while low_lots < high_lots:
            middle = (low_lots + high_lots + 1) // 2
            if affordable(middle * lot):
                low_lots = middle
            else:
                high_lots = middle - 1
        quantity = low_lots * lot
        reason = "insufficient_cash"
    if quantity <= 0:
        return state, order, [], 0, reason, impact
    if quantity < quantity_from_float(child.filled, digits):
        # Fewer units than the model priced: re-price them (and their impact) on their own;
        # a smaller quantity costs less, so it stays affordable.
        child = fill_model(quantity, whole=True)
        price = _book_price(child.price, rules.units.price_digits)
    notional, commission, taxes = _fill_cost(order, quantity, price, bar, rules)
    remaining = order.quantity - order.filled - quantity
    seq = state.last_fill_seq + 1
    kind = OrderFilled if remaining == 0 else OrderPartiallyFilled
    fill = kind(
        account=state.account,
        at=bar.at,
        order_id=order.order_id,
        fill_id=fill_id_for(state.account, seq),
        fill_seq=seq,
        day=bar.day,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=price,
        notional=notional,
        commission=commission,
        taxes=taxes,
        remaining=remaining,
    )
    return (
        apply_fill(state, fill),
        apply_fill_to_order(order, fill),
        [fill],
        quantity,
        reason if quantity < want else "ok",
        child.impact,
    )


def _admit(
    state: AccountState, order: Order, bar: Bar, rules: BrokerRules, *, check_cash: bool = True
) -> tuple[Order, Event]:
    reason = _admission_reason(state, order, bar, rules, check_cash=check_cash)
    if reason:
        rejected = transition(order, OrderStatus.REJECTED, reason=reason)
        return rejected, OrderRejected(
            account=state.account, at=bar.at, order_id=order.order_id, reason=reason
        )
    accepted = transition(order, OrderStatus.ACCEPTED)
    return accepted, OrderAccepted(account=state.account, at=bar.at, order_id=order.order_id)


def execute_order(
    state: AccountState,
    order: Order,
    bar: Bar,
    rules: BrokerRules,
    *,
    sigma: float = 0.0,
) -> ExecutionResult:
    """Execute ``order`` on one ``bar``: the broker's pure step.

    A ``new`` order is first admitted (accepted or rejected with a reason, see the module
    docstring); a working order fills as much of its remaining quantity as the bar allows.

    Parameters
    ----------
    state:
        The account's books.
    order:
        A ``new``, ``accepted`` or ``partially_filled`` order for ``bar.symbol`` and
        ``bar.day``.
    bar:
        The bar it executes on.
    rules:
        Market rules, fees and fill model parameters.
    sigma:
        Volatility of the square-root impact, as a fraction of the price.

    Raises
    ------
    InvalidTransition
        If the order is already terminal.
    ValueError
        If the order and the bar or account do not belong together.
    """
    _check_pair(state, order, bar)
    books = start_day(state, bar.day)
    events: list[Event] = []
    if order.status == OrderStatus.NEW:
        order, event = _admit(books, order, bar, rules)
        events.append(event)
        if order.status == OrderStatus.REJECTED:
            return ExecutionResult(
                state=books, order=order, events=tuple(events), status="rejected",
                reason=order.reason,
            )  # fmt: skip
    elif not order.is_working:
        raise InvalidTransition(f"order {order.order_id} is {order.status}: it cannot execute")
    books, order, fills, filled, reason, _ = _fill_on_bar(
        books, order, bar, rules, want=order.remaining, sigma=sigma
    )
    events.extend(fills)
    status: Outcome
    if order.status == OrderStatus.FILLED:
        status = "filled"
    elif filled > 0:
        status = "partially_filled"
    else:
        status = "no_fill"
    return ExecutionResult(
        state=books, order=order, events=tuple(events), status=status, reason=reason
    )


# --------------------------------------------------------------------------- parent orders
@runtime_checkable
class ScheduleFraction(Protocol):
    """An execution policy: the share of the *remaining* quantity to trade at a step."""

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return a share in ``[0, 1]``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionContext:
    """What a schedule may know at a decision step (nothing from the step's own bars on).

    Parameters
    ----------
    step, n_steps:
        This step (0-based) and the number of steps.
    quantity, remaining:
        The parent's quantity and what is left, in quantity units.
    side:
        ``buy`` or ``sell``.
    arrival_price:
        Open of the first bar of the day (the reference of the shortfall).
    last_price:
        Close of the last bar before this step (``arrival_price`` at step 0).
    history:
        The bars before this step.
    half_spread_bps:
        The fill model's half spread.
    sigma:
        The impact volatility passed to :func:`execute_parent` (one bar's).
    step_bars:
        Bars of this step (its volatility is ``sigma * sqrt(step_bars)``).
    """

    step: int
    n_steps: int
    quantity: int
    remaining: int
    side: Side
    arrival_price: float
    last_price: float
    history: tuple[Bar, ...]
    half_spread_bps: float
    sigma: float
    step_bars: int = 1


def default_observation(context: ExecutionContext) -> np.ndarray:
    """Return the observation of :data:`OBSERVATION_FIELDS` (the environment's builder).

    :func:`simulators.execution_observation.execution_observation`, the builder of
    ``rl_exec.env``, with the step's volatility ``sigma * sqrt(step_bars)`` as the environment
    computes it. The usual volume profile is unknown to the broker, so the VWAP share equals
    the TWAP share and the volume ratio is 1 (log 0); no return lags (a learned policy pads
    zeros). Policies that need more pass their own ``observe`` to :func:`execute_parent`.
    """
    return execution_observation(
        inventory_left=context.remaining / context.quantity,
        steps_done=context.step,
        n_steps=context.n_steps,
        profile=None,
        spread_bps=2.0 * context.half_spread_bps,
        volume_ratio=1.0,
        step_volatility=context.sigma * math.sqrt(context.step_bars),
        price=context.last_price,
        arrival_price=context.arrival_price,
        recent_returns=(),
        side=context.side,
    )


class TwapSchedule:
    """Time-weighted slicing: trade ``1 / steps left`` of what remains (equal child orders).

    Reads the ``twap_share`` entry of the :func:`default_observation` layout.
    """

    name = "twap"

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return ``1 / steps left``."""
        return float(observation[_TWAP_INDEX])


ScheduleLike = ScheduleFraction | Callable[[np.ndarray], float] | Sequence[float] | None


def _fraction_of(
    schedule: ScheduleFraction | Callable[[np.ndarray], float], obs: np.ndarray
) -> float:
    if isinstance(schedule, ScheduleFraction):
        value = schedule.schedule_fraction(obs)
    else:
        value = schedule(obs)
    share = float(value)
    if not math.isfinite(share):
        name = getattr(schedule, "name", type(schedule).__name__)
        raise ValueError(f"execution schedule {name!r} returned {value!r}, not a share in [0, 1]")
    return min(max(share, 0.0), 1.0)


class ParentExecution:
    """One parent order worked bar by bar: the per-step logic of :func:`execute_parent`.

    The schedule's horizon is fixed when the stepper is built (``n_bars`` bars cut into
    ``n_steps`` groups, as :func:`execute_parent` cuts them); the bars themselves arrive one
    at a time through :meth:`on_bar`, so nothing of a later bar can reach an earlier
    decision. At the first bar of each step the schedule decides the step's child quantity;
    each bar of the step fills what it can of it. A bar may be *blocked* for this order
    (frozen, halted, stale, a broker fault): it fills nothing, exactly as a bar that hit its
    participation cap, and the unfilled child rolls to the next bar of the step and then,
    through the remaining quantity, to the next step. :meth:`finish` expires what is left.

    Parameters
    ----------
    order:
        A ``new`` or working order.
    n_bars:
        Bars of the order's horizon (the rest of its day).
    rules, sigma, schedule, n_steps, observe:
        As in :func:`execute_parent`.
    arrival_price:
        The shortfall reference; ``None`` takes the open of the first tradable bar seen.
    where:
        Name used in error messages.
    """

    def __init__(
        self,
        order: Order,
        n_bars: int,
        rules: BrokerRules,
        *,
        sigma: float = 0.0,
        schedule: ScheduleLike = None,
        n_steps: int | None = None,
        observe: Callable[[ExecutionContext], np.ndarray] | None = None,
        arrival_price: float | None = None,
        where: str = "ParentExecution",
    ) -> None:
        if n_bars < 1:
            raise ValueError(f"{where}: no bars for order {order.order_id}")
        fractions: list[float] | None = None
        if (
            schedule is not None
            and not callable(schedule)
            and not isinstance(schedule, ScheduleFraction)
        ):
            fractions = [float(x) for x in schedule]
            if not fractions or any(not (math.isfinite(x) and x >= 0) for x in fractions):
                raise ValueError(f"{where}: fractions must be >= 0, got {fractions}")
            if sum(fractions) > 1.0 + 1e-9:
                raise ValueError(f"{where}: fractions sum to {sum(fractions)} > 1")
            if n_steps is not None and n_steps != len(fractions):
                raise ValueError(f"{where}: {len(fractions)} fractions for {n_steps} steps")
            n_steps = len(fractions)
        steps = min(n_steps or DEFAULT_STEPS, n_bars)
        if steps < 1:
            raise ValueError(f"{where}: n_steps must be >= 1, got {n_steps}")
        if fractions is not None and steps < len(fractions):
            # Fewer bars than fractions: fold the tail into the last step.
            fractions = [*fractions[: steps - 1], sum(fractions[steps - 1 :])]
        self.order = order
        self.rules = rules
        self.sigma = sigma
        self.n_bars = n_bars
        self.n_steps = steps
        self._schedule = None if fractions is not None else schedule
        self._fractions = fractions
        self._observe = observe or default_observation
        # Step k starts at bar _starts[k] (np.array_split's layout, without the arrays).
        size, extra = divmod(n_bars, steps)
        starts, position = [], 0
        for k in range(steps):
            starts.append(position)
            position += size + (1 if k < extra else 0)
        self._step_at = {start: k for k, start in enumerate(starts)}
        self._step_bars = [b - a for a, b in zip(starts, [*starts[1:], n_bars], strict=True)]
        #: The parent's transient impact (the fill model's state, carried bar to bar).
        self.impact: ImpactState = NO_IMPACT
        self._arrival = arrival_price
        self._history: list[Bar] = []
        self._cumulative = 0.0
        self._done = False
        self.position = 0
        self.step = -1
        self.child = 0
        self.handed_off = 0
        self.last_reason = "end_of_day"
        self.events: list[Event] = []
        self.lot = rules.lot_units if order.side == "buy" else _sell_lot(order, rules)

    @property
    def remaining(self) -> int:
        """Return what is left to work (not filled, not handed to a manual order)."""
        return self.order.quantity - self.order.filled - self.handed_off

    @property
    def working(self) -> bool:
        """Return whether the order may still fill (admitted, not terminal, bars left)."""
        return self.order.is_working and not self._done and self.position < self.n_bars

    def admit(self, state: AccountState, bar: Bar, *, check_cash: bool = True) -> AccountState:
        """Admit a ``new`` order on its arrival ``bar`` (see the module docstring).

        ``check_cash=False`` leaves a buy's cash to each fill (an interleaved day, where the
        day's sells pay for its buys as they fill). Returns the books moved to the order's
        day; a rejection ends the order (``OrderRejected`` in :attr:`events`).
        """
        _check_pair(state, self.order, bar)
        books = start_day(state, self.order.day)
        if self.order.status == OrderStatus.NEW:
            self.order, event = _admit(books, self.order, bar, self.rules, check_cash=check_cash)
            self.events.append(event)
        elif not self.order.is_working:
            raise InvalidTransition(
                f"order {self.order.order_id} is {self.order.status}: it cannot execute"
            )
        return books

    def prepare(self, bar: Bar) -> bool:
        """Open the next bar: at a step's first bar, decide the step's child quantity.

        Returns whether a new child order starts on this bar (a step with something to do).
        """
        if not self.working:
            return False
        if self._arrival is None and bar.tradable:
            self._arrival = bar.open
        step = self._step_at.get(self.position)
        if step is None:
            return False
        self.step = step
        remaining = self.remaining
        if remaining <= 0:
            self.child = 0
            self._done = True
            return False
        lot = self.lot
        if step == self.n_steps - 1:
            child = remaining
        elif self._fractions is not None:
            self._cumulative += self._fractions[step]
            target = round(self._cumulative * self.order.quantity / lot) * lot
            child = min(max(target - self.order.filled - self.handed_off, 0), remaining)
        else:
            if self._schedule is None:
                share = 1.0 / (self.n_steps - step)
            else:
                arrival = math.nan if self._arrival is None else self._arrival
                history = tuple(self._history)
                last = next((b.close for b in reversed(history) if b.tradable), arrival)
                context = ExecutionContext(
                    step=step,
                    n_steps=self.n_steps,
                    quantity=self.order.quantity,
                    remaining=remaining,
                    side=self.order.side,
                    arrival_price=arrival,
                    last_price=last,
                    history=history,
                    half_spread_bps=self.rules.half_spread_bps,
                    sigma=self.sigma,
                    step_bars=self._step_bars[step],
                )
                share = _fraction_of(self._schedule, self._observe(context))  # type: ignore[arg-type]
            child = min(round(share * remaining / lot) * lot, remaining)
        self.child = child
        return child > 0

    def work(
        self, state: AccountState, bar: Bar, *, blocked: str | None = None
    ) -> tuple[AccountState, list[Event]]:
        """Fill what this bar allows of the open child (nothing when ``blocked``).

        ``blocked`` is the reason code of a bar this order may not trade on; it becomes the
        expiry reason if the order ends unfilled. Returns the books and the fill events.
        """
        fills: list[Event] = []
        if self.working and self.child > 0:
            _check_pair(state, self.order, bar)
            if blocked:
                self.last_reason = blocked
            else:
                state, self.order, fills, filled, reason, self.impact = _fill_on_bar(
                    state,
                    self.order,
                    bar,
                    self.rules,
                    want=self.child,
                    sigma=self.sigma,
                    impact=self.impact,
                    bar_number=self.position,
                    # The end-of-day rule: the horizon's last bar completes the order.
                    complete=self.position == self.n_bars - 1,
                )
                self.events.extend(fills)
                self.child -= filled
                if reason != "ok":
                    self.last_reason = reason
        self._history.append(bar)
        self.position += 1
        return state, fills

    def on_bar(
        self, state: AccountState, bar: Bar, *, blocked: str | None = None
    ) -> tuple[AccountState, list[Event]]:
        """Return :meth:`prepare` then :meth:`work` on ``bar``."""
        self.prepare(bar)
        return self.work(state, bar, blocked=blocked)

    def add_child(self, quantity: int) -> int:
        """Add ``quantity`` to the open child (a re-sent copy); return what was added."""
        added = max(min(quantity, self.remaining - self.child), 0)
        self.child += added
        return added

    def drop_child(self, reason: str) -> int:
        """Drop the open child (it rolls to the next step); return its quantity."""
        dropped, self.child = self.child, 0
        if dropped:
            self.last_reason = reason
        return dropped

    def hand_off(self, reason: str) -> int:
        """Hand the open child to a manual order (never worked again); return its quantity."""
        quantity = self.drop_child(reason)
        self.handed_off += quantity
        return quantity

    def cancel(self, at: datetime, reason: str) -> None:
        """Cancel a working order now (``OrderCancelled``)."""
        if not self.order.is_working:
            self._done = True
            return
        unfilled = self.order.quantity - self.order.filled
        self.order = transition(self.order, OrderStatus.CANCELLED, reason=reason)
        self.events.append(
            OrderCancelled(
                account=self.order.account,
                at=at,
                order_id=self.order.order_id,
                reason=reason,
                unfilled=unfilled,
            )
        )
        self._done = True
        self.child = 0

    def finish(self, state: AccountState, at: datetime) -> ExecutionResult:
        """End the order's day: expire what is unfilled at ``at`` (the last bar's close)."""
        order = self.order
        if order.status == OrderStatus.FILLED:
            return ExecutionResult(
                state=state, order=order, events=tuple(self.events), status="filled", reason="ok"
            )
        if order.status == OrderStatus.REJECTED:
            return ExecutionResult(
                state=state, order=order, events=tuple(self.events), status="rejected",
                reason=order.reason,
            )  # fmt: skip
        if order.status == OrderStatus.CANCELLED:
            return ExecutionResult(
                state=state, order=order, events=tuple(self.events), status="expired",
                reason=order.reason,
            )  # fmt: skip
        unfilled = order.quantity - order.filled
        self.order = transition(order, OrderStatus.EXPIRED, reason=self.last_reason)
        self.events.append(
            OrderExpired(
                account=state.account,
                at=at,
                order_id=order.order_id,
                reason=self.last_reason,
                unfilled=unfilled,
            )
        )
        self._done = True
        return ExecutionResult(
            state=state,
            order=self.order,
            events=tuple(self.events),
            status="expired",
            reason=self.last_reason,
        )


def execute_parent(
    state: AccountState,
    order: Order,
    bars: Sequence[Bar],
    rules: BrokerRules,
    *,
    sigma: float = 0.0,
    schedule: ScheduleLike = None,
    n_steps: int | None = None,
    observe: Callable[[ExecutionContext], np.ndarray] | None = None,
) -> ExecutionResult:
    """Slice a parent order through one day of bars.

    The bars are cut into ``n_steps`` consecutive groups. At each step the schedule decides a
    child quantity (rounded half to even to whole lots); the child works through the group's
    bars, each bar filling at most its participation cap, and what it does not fill returns to
    the remaining quantity. The last step works everything left and its last bar completes it
    without the cap (the fill model's end-of-day rule). What is still unfilled after
    the last bar expires (``OrderExpired`` with the last blocking reason). This is a loop of
    :class:`ParentExecution` over ``bars``.

    Parameters
    ----------
    state:
        The account's books.
    order:
        A ``new`` (admitted on the first bar) or working order of ``bars``' symbol and day.
    bars:
        The day's bars of the symbol, in time order (:func:`bars_from_panel`).
    rules:
        Market rules, fees and fill model parameters.
    sigma:
        Impact volatility per bar, as a fraction of the price
        (:func:`simulators.fill_model.bar_volatility`).
    schedule:
        ``None`` (TWAP), an object with ``schedule_fraction(observation)`` (e.g. an
        ``rl_exec.policy.ExecutionPolicy``), a callable ``observation -> share of remaining``,
        or a sequence of ``n_steps`` fractions of the *total* quantity (the cumulative target
        is kept, so a shortfall at one step is caught up at the next).
    n_steps:
        Decision steps (default: :data:`DEFAULT_STEPS`, or the sequence's length, capped by
        the number of bars).
    observe:
        Builds the observation handed to the schedule (default :func:`default_observation`).

    Returns
    -------
    ExecutionResult
        ``filled``, ``expired`` or ``rejected``, with every event of the day.
    """
    if not bars:
        raise ValueError(f"execute_parent: no bars for order {order.order_id}")
    for bar in bars:
        _check_pair(state, order, bar)
    stepper = ParentExecution(
        order,
        len(bars),
        rules,
        sigma=sigma,
        schedule=schedule,
        n_steps=n_steps,
        observe=observe,
        arrival_price=_first_price(bars),
        where="execute_parent",
    )
    books = stepper.admit(state, bars[0])
    if stepper.order.status == OrderStatus.REJECTED:
        return stepper.finish(books, bars[0].at)
    for bar in bars:
        if not stepper.working:
            break
        books, _ = stepper.on_bar(books, bar)
    return stepper.finish(books, bars[-1].at)


def _first_price(bars: Iterable[Bar]) -> float:
    """Return the open of the first tradable bar (NaN when none trades: nothing will fill)."""
    for bar in bars:
        if bar.tradable:
            return bar.open
    return math.nan
