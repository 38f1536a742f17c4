"""The account book: frozen values for cash and positions, and the only ways they change.

:class:`AccountState` (cash, positions, the fill sequence, the units of money and quantity)
is a frozen value; :func:`open_account` makes the first one, :func:`start_day` rolls T+1
quantities into the sellable ones when a trading day starts, :func:`apply_fill` books one
fill (exact money: :mod:`arena.money`) and :func:`mark_to_market` values the book at given
prices. Nothing here keeps state between calls: every function returns a new value, and the
ledger replays the fills into the same state after a crash
(:meth:`arena.ledger.Ledger.restore_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from arena.events import (
    FillEvent,
    OrderSubmitted,
    Side,
)
from arena.money import (
    MoneyUnits,
    cost_removed,
    notional_minor,
    price_from_float,
)
from arena.orders import (
    DuplicateFill,
    FillSequenceError,
    Order,
    order_id_for,
)


class InvariantViolation(RuntimeError):
    """An accounting invariant broke (negative cash, selling what is not sellable...)."""


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
