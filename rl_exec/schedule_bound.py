"""How much any schedule can save against TWAP on the replay market (a feasibility bound).

The replay market (:class:`~rl_exec.models.ReplayModel`) charges each fill the half-spread,
its square-root temporary impact, the transient impact of the order's earlier fills and, at
the horizon's last bar, the end-of-day completion of what the participation cap left; the
realised shortfall against the arrival price adds the *timing* term, the move of each fill's
bar reference price from the arrival price. This module re-prices a schedule on one day's bars
with exactly those rules (:func:`schedule_costs`, checked against the environment in the
tests), splits the shortfall into those parts, and searches the schedules of the
environment's action scaffold (the share of the remaining quantity per step, the last step
trading everything left) for the cheapest one.

* **Path-free cost** (``spread + temporary + transient + penalty``): what is left of the
  shortfall once the moves of the reference prices are taken out; for a policy that cannot see
  the future on a driftless (martingale) price, the timing term has mean 0 whatever it does,
  so the expected shortfall is the expected path-free cost.
* **Volume oracle** (:func:`best_schedule` on the day's real bars): the schedule with the
  lowest path-free cost *knowing the day's bar volumes in advance*. Any non-anticipating
  policy, adaptive or not, ends a day with some sequence of shares, whose path-free cost is at
  least the oracle's; so ``TWAP's cost - the oracle's`` bounds what such a policy can save on
  average (up to the optimiser finding the minimum: local searches from several starts, the
  best kept; the bound is the least gain the oracle reaches).
* **Planned schedule** (:func:`planned_schedule`): the same search on the day as it was
  expected before it began (volume = average daily volume x the usual profile), then run on
  the real bars: a non-anticipating static schedule, a gain that *is* achievable.
* **Hindsight oracle** (``objective="realised"``): the cheapest schedule knowing the prices
  too, a loose upper bound only (it trades on the future).

Fees: the replay fill model has none (``fees`` is 0 in every decomposition here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
from numba import njit
from scipy.optimize import minimize

from rl_exec.models import ReplayDay, ReplayModel
from simulators.backtest_nb import square_root_impact_nb, transient_decay_nb
from simulators.fill_model import bar_volatility
from simulators.lots import floor_lots_nb, lots_size_nb, round_to_lot_nb

Objective = Literal["path_free", "realised"]

#: Names of the parts of a shortfall, in the order of :attr:`Costs.parts` (bps of ``Q S0``).
PARTS: tuple[str, ...] = (
    "spread",
    "temporary",
    "transient",
    "completion",
    "timing",
    "penalty",
    "fees",
)

#: Seed of :func:`best_schedule`'s random starts (the search is deterministic).
RANDOM_STARTS_SEED = 20_131

# Slots of the numba kernel's output (dollars, or shares for the unfilled quantity).
_SPREAD, _TEMPORARY, _TRANSIENT, _COMPLETION, _TIMING, _PENALTY, _UNFILLED, _REALISED = range(8)


@dataclass(frozen=True, slots=True)
class DayBars:
    """One replay day laid out as the environment executes it (arrays for the kernel).

    ``starts[k]:ends[k]`` are the bars (positions in the day) of decision step ``k``,
    ``slots`` each bar's place in the session (the transient impact's clock).
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    slots: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    quantity: float
    sigma_bar: float
    step_profile: np.ndarray
    label: str = ""

    @property
    def n_steps(self) -> int:
        """Decision steps of the day."""
        return int(self.starts.shape[0])


@dataclass(frozen=True, slots=True)
class FillRules:
    """The replay fill model's parameters the kernel needs (from a :class:`ReplayModel`)."""

    half_spread_bps: float
    impact_coefficient: float
    participation_cap: float
    lot_size: float
    transient_half_life_bars: float
    unfilled_penalty_bps: float
    direction: float

    @classmethod
    def of(cls, model: ReplayModel) -> FillRules:
        """Return the rules of ``model`` (a model with price limits is refused)."""
        params = model.params
        if params.limit_pct is not None:
            raise ValueError(
                "schedule_bound does not model price limits; the replay market has "
                f"limit_pct={params.limit_pct}"
            )
        return cls(
            half_spread_bps=params.half_spread_bps,
            impact_coefficient=params.impact_coefficient,
            participation_cap=params.participation_cap,
            lot_size=params.lot_size,
            transient_half_life_bars=params.transient_half_life_bars,
            unfilled_penalty_bps=model.unfilled_penalty_bps,
            direction=1.0 if model.config.side == "buy" else -1.0,
        )


@dataclass(frozen=True, slots=True)
class Costs:
    """A schedule's shortfall on one day, split into its parts (bps of ``Q S0``)."""

    spread: float
    temporary: float
    transient: float
    completion: float
    timing: float
    penalty: float
    unfilled_share: float
    fees: float = 0.0

    @property
    def path_free(self) -> float:
        """Shortfall without the timing term: spread, impact and the unfilled penalty."""
        return self.spread + self.temporary + self.transient + self.penalty + self.fees

    @property
    def realised(self) -> float:
        """The realised implementation shortfall (the environment's ``shortfall_bps``)."""
        return self.path_free + self.timing

    @property
    def parts(self) -> tuple[float, ...]:
        """The parts in the order of :data:`PARTS` (``completion`` is inside the impacts)."""
        return (
            self.spread,
            self.temporary,
            self.transient,
            self.completion,
            self.timing,
            self.penalty,
            self.fees,
        )


def day_bars(model: ReplayModel, index: int) -> DayBars:
    """Return day ``index`` of ``model`` laid out in decision steps as the environment does.

    The steps split the session's slots evenly (``numpy.array_split``) and take the bars whose
    slots fall in them (the layout of :class:`~rl_exec.models.ReplayModel`).
    """
    day: ReplayDay = model.days[index]
    n_steps = model.n_steps
    n_slots = day.session_slots
    slot_buckets = np.array_split(np.arange(n_slots), n_steps)
    firsts = [int(bucket[0]) for bucket in slot_buckets]
    slots = day.bar_slots().astype(np.int64)
    cuts = np.searchsorted(slots, [*firsts, n_slots], side="left")
    profile = day.profile if day.profile is not None else model.minute_profile
    assert profile is not None  # the model checks that every day has a profile
    profile = np.asarray(profile, dtype=float) / float(np.sum(profile))
    lot = model.params.lot_size
    quantity = model.config.order_pct_adv * day.average_daily_volume
    quantity = float(lots_size_nb(max(floor_lots_nb(quantity, lot), 1.0), lot))
    return DayBars(
        open=day.open.astype(float),
        high=day.high.astype(float),
        low=day.low.astype(float),
        close=day.close.astype(float),
        volume=day.volume.astype(float),
        slots=slots,
        starts=np.asarray(cuts[:-1], dtype=np.int64),
        ends=np.asarray(cuts[1:], dtype=np.int64),
        quantity=quantity,
        sigma_bar=bar_volatility(day.daily_volatility, n_slots),
        step_profile=np.array([profile[bucket].sum() for bucket in slot_buckets]),
        label=day.label,
    )


def expected_day(model: ReplayModel, index: int) -> DayBars:
    """Return day ``index`` as it was expected before it began: usual volumes, a flat price.

    Every slot has one bar of ``average_daily_volume x profile[slot]`` at the day's open
    price, so a schedule searched on it uses only what was known before the day.
    """
    day = model.days[index]
    bars = day_bars(model, index)
    profile = day.profile if day.profile is not None else model.minute_profile
    assert profile is not None
    profile = np.asarray(profile, dtype=float) / float(np.sum(profile))
    n_slots = day.session_slots
    slot_buckets = np.array_split(np.arange(n_slots), model.n_steps)
    flat = np.full(n_slots, float(day.open[0]))
    return DayBars(
        open=flat,
        high=flat,
        low=flat,
        close=flat,
        volume=day.average_daily_volume * profile,
        slots=np.arange(n_slots, dtype=np.int64),
        starts=np.array([int(b[0]) for b in slot_buckets], dtype=np.int64),
        ends=np.array([int(b[-1]) + 1 for b in slot_buckets], dtype=np.int64),
        quantity=bars.quantity,
        sigma_bar=bars.sigma_bar,
        step_profile=bars.step_profile,
        label=f"{day.label} (expected)",
    )


@njit(cache=True)
def _simulate(
    shares: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    slots: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    quantity: float,
    sigma: float,
    half_spread: float,
    k: float,
    cap: float,
    lot: float,
    half_life: float,
    penalty: float,
    direction: float,
) -> np.ndarray:
    """Run one schedule (share of the remaining quantity per step) on one day's bars."""
    out = np.zeros(8)
    n_steps = starts.shape[0]
    arrival = open_[0]
    mid = arrival
    remaining = quantity
    level = 0.0
    level_bar = 0
    before_last = mid
    for step in range(n_steps):
        share = 1.0 if step == n_steps - 1 else min(max(shares[step], 0.0), 1.0)
        if step == n_steps - 1:
            before_last = mid
        left = share * remaining
        filled_step = 0.0
        first, stop = starts[step], ends[step]
        count = stop - first
        for position in range(count):
            if left <= 0.0:
                break
            bar = first + position
            ask = left / (count - position)
            if ask < lot:
                ask = left
            vol = volume[bar]
            if vol <= 0.0:
                continue
            complete = step == n_steps - 1 and position == count - 1
            capacity = cap * vol
            wanted = ask if (complete or ask <= capacity) else capacity
            filled = round_to_lot_nb(wanted, lot)
            if filled <= 0.0:
                continue
            number = slots[bar]
            transient = transient_decay_nb(level, number - level_bar, half_life)
            blocked = filled > capacity * (1.0 + 1e-12)
            if blocked:
                full = math.floor(filled / capacity + 1e-9)
                rest = max(filled - full * capacity, 0.0)
                slice_impact = square_root_impact_nb(capacity, vol, sigma, k)
                rest_impact = square_root_impact_nb(rest, vol, sigma, k)
                paid = transient * full + slice_impact * full * (full - 1) / 2.0
                last_transient = transient + slice_impact * full
                new_level = last_transient + rest_impact
                temporary = (full * capacity * slice_impact + rest * rest_impact) / filled
                transient = (capacity * paid + rest * last_transient) / filled
            else:
                temporary = square_root_impact_nb(filled, vol, sigma, k)
                new_level = transient + temporary
            level = new_level
            level_bar = number
            reference = (open_[bar] + high[bar] + low[bar] + close[bar]) / 4.0
            out[_SPREAD] += filled * reference * half_spread
            out[_TEMPORARY] += filled * reference * temporary
            out[_TRANSIENT] += filled * reference * transient
            if blocked:
                out[_COMPLETION] += filled * reference * (temporary + transient)
            out[_TIMING] += direction * filled * (reference - arrival)
            filled_step += filled
            left -= filled
        filled_step = min(filled_step, remaining)
        remaining = max(remaining - filled_step, 0.0)
        if remaining < 1e-9 * quantity:
            remaining = 0.0
        if count > 0:
            mid = close[stop - 1]
    out[_UNFILLED] = remaining
    out[_PENALTY] = remaining * before_last * penalty
    # Realised: the unfilled rest is marked at the last price (its move is timing) plus the
    # penalty there, as the environment does.
    out[_TIMING] += direction * remaining * (mid - arrival)
    out[_REALISED] = remaining * mid * penalty - out[_PENALTY]
    return out


def _run(shares: np.ndarray, bars: DayBars, rules: FillRules) -> np.ndarray:
    return _simulate(
        np.asarray(shares, dtype=np.float64),
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        bars.volume,
        bars.slots,
        bars.starts,
        bars.ends,
        bars.quantity,
        bars.sigma_bar,
        rules.half_spread_bps / 1e4,
        rules.impact_coefficient,
        rules.participation_cap,
        rules.lot_size,
        rules.transient_half_life_bars,
        rules.unfilled_penalty_bps / 1e4,
        rules.direction,
    )


def schedule_costs(shares: np.ndarray, bars: DayBars, rules: FillRules) -> Costs:
    """Return the shortfall of a schedule on one day, split into its parts (bps).

    Parameters
    ----------
    shares:
        Share of the remaining quantity traded at each of the ``n_steps`` steps (the last one
        is taken as 1, as the environment does).
    bars, rules:
        The day (:func:`day_bars`) and the fill model (:meth:`FillRules.of`).
    """
    out = _run(shares, bars, rules)
    scale = 1e4 / (bars.quantity * float(bars.open[0]))
    # The realised penalty is priced at the last mid; its difference from the path-free one
    # (priced before the last step) is a price move, i.e. timing.
    return Costs(
        spread=float(out[_SPREAD] * scale),
        temporary=float(out[_TEMPORARY] * scale),
        transient=float(out[_TRANSIENT] * scale),
        completion=float(out[_COMPLETION] * scale),
        timing=float((out[_TIMING] + out[_REALISED]) * scale),
        penalty=float(out[_PENALTY] * scale),
        unfilled_share=float(out[_UNFILLED] / bars.quantity),
    )


def twap_shares(n_steps: int) -> np.ndarray:
    """Return TWAP's schedule: ``1 / steps left`` at every step."""
    return 1.0 / (n_steps - np.arange(n_steps))


def profile_shares(step_volumes: np.ndarray) -> np.ndarray:
    """Return the schedule that trades in proportion to ``step_volumes`` (VWAP's shape)."""
    volumes = np.asarray(step_volumes, dtype=float)
    left = np.cumsum(volumes[::-1])[::-1]
    return np.divide(volumes, left, out=np.ones_like(volumes), where=left > 0)


@dataclass(frozen=True, slots=True)
class BestSchedule:
    """The cheapest schedule found on a day and its cost (bps, the searched objective)."""

    shares: np.ndarray
    cost: float


def best_schedule(
    bars: DayBars,
    rules: FillRules,
    *,
    objective: Objective = "path_free",
    starts: list[np.ndarray] | None = None,
    random_starts: int = 1,
    max_evaluations: int = 500,
) -> BestSchedule:
    """Return the cheapest schedule of the action scaffold on one day (local searches).

    L-BFGS-B over the ``n_steps - 1`` free shares in ``[0, 1]`` (at most ``max_evaluations``
    cost evaluations each) from each start (default: the usual-profile schedule, the schedule
    of the day's real step volumes and ``random_starts`` seeded random schedules), the best
    result kept; TWAP and the starts themselves are candidates, so the result is never worse
    than them. A local search: the cost it
    reports is an upper estimate of the true minimum (so the gain a lower estimate of the
    oracle's).
    """
    n = bars.n_steps
    candidates = [np.asarray(start, dtype=float) for start in starts or []]
    if not candidates:
        step_volumes = np.array(
            [bars.volume[a:b].sum() for a, b in zip(bars.starts, bars.ends, strict=True)]
        )
        candidates = [profile_shares(bars.step_profile)]
        if step_volumes.sum() > 0:
            candidates.append(profile_shares(step_volumes))
        # A few seeded random starts: the cost is not convex (the cap, the completion block).
        rng = np.random.default_rng(RANDOM_STARTS_SEED)
        for _ in range(random_starts):
            candidates.append(np.append(rng.uniform(0.0, 2.0 / n, n - 1), 1.0))
    scale = 1e4 / (bars.quantity * float(bars.open[0]))
    # The search runs with lots relaxed to a hair: whole lots make the cost a staircase whose
    # finite-difference gradient is 0; every candidate is then priced with the real lots.
    relaxed = replace(rules, lot_size=bars.quantity * 1e-12)

    def priced(free: np.ndarray, with_rules: FillRules) -> float:
        out = _run(np.append(free, 1.0), bars, with_rules)
        path_free = out[_SPREAD] + out[_TEMPORARY] + out[_TRANSIENT] + out[_PENALTY]
        if objective == "realised":
            return float((path_free + out[_TIMING] + out[_REALISED]) * scale)
        return float(path_free * scale)

    best_shares = twap_shares(n)
    best_cost = priced(best_shares[:-1], rules)
    for start in candidates:
        start = np.clip(start, 0.0, 1.0)
        value = priced(start[:-1], rules)
        if value < best_cost:
            best_shares, best_cost = start, value
        result = minimize(
            priced,
            start[:-1],
            args=(relaxed,),
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * (n - 1),
            options={"eps": 1e-7, "maxfun": max_evaluations},
        )
        value = priced(result.x, rules)
        if value < best_cost:
            best_shares, best_cost = np.append(result.x, 1.0), value
    return BestSchedule(shares=best_shares, cost=best_cost)


def planned_schedule(model: ReplayModel, index: int) -> np.ndarray:
    """Return the cheapest schedule on the day as expected before it (:func:`expected_day`).

    Searched from the usual-profile schedule (on the expected day it is also the schedule of
    the step volumes) and one random start.
    """
    day = expected_day(model, index)
    start = profile_shares(day.step_profile)
    rng = np.random.default_rng(RANDOM_STARTS_SEED)
    other = np.append(rng.uniform(0.0, 2.0 / day.n_steps, day.n_steps - 1), 1.0)
    return best_schedule(day, FillRules.of(model), starts=[start, other]).shares


@dataclass(frozen=True, slots=True)
class FeasibilityBound:
    """What the schedules can save against TWAP on a set of orders (bps, means over orders).

    ``twap`` holds TWAP's mean parts; ``oracle`` is the volume oracle's mean path-free cost,
    ``planned`` the planned schedule's, ``hindsight`` the hindsight oracle's realised one;
    ``*_gain`` are ``TWAP's mean path-free cost - theirs`` (the hindsight one against TWAP's
    realised mean), with ``oracle_gain_se`` the standard error of the paired mean.
    """

    orders: int
    twap: Costs
    twap_path_free: float
    oracle: float
    oracle_gain: float
    oracle_gain_se: float
    planned: float
    planned_gain: float
    hindsight: float
    hindsight_gain: float

    @property
    def oracle_gain_pct(self) -> float:
        """The volume oracle's gain in % of TWAP's mean path-free cost."""
        return self.oracle_gain / self.twap_path_free * 100.0

    @property
    def planned_gain_pct(self) -> float:
        """The planned schedule's gain in % of TWAP's mean path-free cost."""
        return self.planned_gain / self.twap_path_free * 100.0

    @property
    def hindsight_gain_pct(self) -> float:
        """The hindsight oracle's gain in % of TWAP's mean realised shortfall."""
        return self.hindsight_gain / self.twap.realised * 100.0


def _mean_costs(items: list[Costs]) -> Costs:
    return Costs(*(float(np.mean([getattr(c, f.name) for c in items])) for f in fields(Costs)))


def feasibility_bound(
    model: ReplayModel, day_indices: list[int], *, hindsight: bool = True
) -> FeasibilityBound:
    """Return TWAP's decomposition and the three oracles' gains on the given orders.

    ``day_indices`` are the days of the orders (a day may repeat: each entry is one order,
    weighted once); each distinct day is optimised once.
    """
    if not day_indices:
        raise ValueError("feasibility_bound needs at least one order")
    rules = FillRules.of(model)
    per_day: dict[int, tuple[Costs, float, float, float]] = {}
    for index in sorted(set(day_indices)):
        bars = day_bars(model, index)
        twap = schedule_costs(twap_shares(bars.n_steps), bars, rules)
        oracle = best_schedule(bars, rules).cost
        planned = schedule_costs(planned_schedule(model, index), bars, rules).path_free
        best_realised = (
            best_schedule(bars, rules, objective="realised").cost if hindsight else math.nan
        )
        per_day[index] = (twap, oracle, planned, best_realised)
    rows = [per_day[index] for index in day_indices]
    twaps = [row[0] for row in rows]
    twap_free = np.array([c.path_free for c in twaps])
    oracles = np.array([row[1] for row in rows])
    planned_costs = np.array([row[2] for row in rows])
    hindsights = np.array([row[3] for row in rows])
    gains = twap_free - oracles
    se = float(gains.std(ddof=1) / math.sqrt(len(gains))) if len(gains) > 1 else 0.0
    twap_mean = _mean_costs(twaps)
    return FeasibilityBound(
        orders=len(day_indices),
        twap=twap_mean,
        twap_path_free=float(twap_free.mean()),
        oracle=float(oracles.mean()),
        oracle_gain=float(gains.mean()),
        oracle_gain_se=se,
        planned=float(planned_costs.mean()),
        planned_gain=float((twap_free - planned_costs).mean()),
        hindsight=float(hindsights.mean()),
        hindsight_gain=float(twap_mean.realised - hindsights.mean()),
    )
