"""Parent-order algorithms: slice an order through the day, .

A parent order is sliced through the day by :func:`execute_parent`: the day's bars are cut
into ``n_steps`` decision steps; at each step a schedule (TWAP by default; any object with
``schedule_fraction(observation) -> float``, a plain callable, or a sequence of fractions of
the total) decides how much of the remaining quantity to work over the step's bars; what is
left at the end of the day expires. :class:`ParentExecution` is the same logic fed one bar at
a time (``execute_parent`` is a loop over it), so that the arena's day can interleave every
parent minute by minute and block a bar for one order (:mod:`arena.intraday`). Each step's
child order goes through the one-bar step (:func:`arena.step.execute_order`).

The TWAP counterfactual of a whole day (the same parent orders by TWAP on the same bars,
through the day's loop) is :func:`arena.intraday.twap_counterfactual`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from arena.book import AccountState, start_day
from arena.events import (
    Event,
    OrderCancelled,
    OrderExpired,
    Side,
)
from arena.market import Bar
from arena.orders import (
    InvalidTransition,
    Order,
    OrderStatus,
    transition,
)
from arena.rules import BrokerRules
from arena.step import ExecutionResult, admit_order, check_pair, fill_on_bar, sell_lot
from simulators.execution_observation import BASE_OBS_FIELDS, execution_observation
from simulators.fill_model import (
    NO_IMPACT,
    ImpactState,
)

#: Decision steps of a parent order when the caller does not say (15 minutes of a cn day).
DEFAULT_STEPS = 16


#: Layout of :func:`default_observation` (the base fields of ``rl_exec.env``, same order).
OBSERVATION_FIELDS: tuple[str, ...] = BASE_OBS_FIELDS


_TWAP_INDEX = OBSERVATION_FIELDS.index("twap_share")


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
        self.lot = rules.lot_units if order.side == "buy" else sell_lot(order, rules)

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
        check_pair(state, self.order, bar)
        books = start_day(state, self.order.day)
        if self.order.status == OrderStatus.NEW:
            self.order, event = admit_order(
                books, self.order, bar, self.rules, check_cash=check_cash
            )
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
            check_pair(state, self.order, bar)
            if blocked:
                self.last_reason = blocked
            else:
                state, self.order, fills, filled, reason, self.impact = fill_on_bar(
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
        check_pair(state, order, bar)
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
