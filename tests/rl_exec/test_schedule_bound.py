"""The feasibility bound of the replay market (rl_exec.schedule_bound).

Hand-checkable fixtures: one bar per decision step and a flat price, so the square-root law
gives each schedule's cost in closed form; the closed forms are written here from the model's
parameters, never taken from the code under test. The re-pricing kernel is checked against the
environment itself on the shared fixture days (binding cap, transient impact).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from rl_exec.config import ReplayConfig
from rl_exec.env import ExecutionEnv
from rl_exec.models import ReplayDay, ReplayModel
from rl_exec.schedule_bound import (
    FillRules,
    best_schedule,
    day_bars,
    feasibility_bound,
    schedule_costs,
    twap_shares,
)

PRICE = 20.0
DAILY_VOL = 0.02
ADV = 1e6
# Volume of each of the 4 steps (one bar each): the two end steps carry 4x the middle ones.
VOLUMES = np.array([4e5, 1e5, 1e5, 4e5])


def _flat_model(*, half_spread_bps: float, impact: float, order_pct_adv: float) -> ReplayModel:
    flat = np.full(len(VOLUMES), PRICE)
    day = ReplayDay(
        open=flat,
        high=flat,
        low=flat,
        close=flat,
        volume=VOLUMES.copy(),
        prev_close=PRICE,
        average_daily_volume=ADV,
        daily_volatility=DAILY_VOL,
        label="flat",
    )
    config = ReplayConfig(
        n_steps=len(VOLUMES),
        order_pct_adv=order_pct_adv,
        half_spread_bps=half_spread_bps,
        impact_coefficient=impact,
        participation_cap=1.0,
        transient_half_life_bars=0.0,
    )
    return ReplayModel([day], config, profile=VOLUMES / VOLUMES.sum())


def _closed_forms(
    half_spread_bps: float, impact: float, order_pct_adv: float
) -> tuple[float, float]:
    """Return (TWAP's cost, the optimum's cost) in bps for the flat fixture."""
    quantity = order_pct_adv * ADV
    sigma_bar = DAILY_VOL / math.sqrt(len(VOLUMES))
    child = quantity / len(VOLUMES)
    twap = half_spread_bps + 1e4 * float(np.mean(impact * sigma_bar * np.sqrt(child / VOLUMES)))
    # Square-root law without transient or cap: the marginal cost is equal when every step
    # trades the same share of its volume, so the optimum is VWAP on the real volumes.
    optimum = half_spread_bps + 1e4 * impact * sigma_bar * math.sqrt(quantity / VOLUMES.sum())
    return twap, optimum


def test_zero_impact_bound_is_zero_and_every_share_pays_the_spread() -> None:
    model = _flat_model(half_spread_bps=2.5, impact=0.0, order_pct_adv=0.1)
    bound = feasibility_bound(model, [0, 0, 0])
    assert bound.twap.spread == pytest.approx(2.5, rel=1e-9)
    assert bound.twap.temporary == bound.twap.transient == bound.twap.completion == 0.0
    assert bound.twap.timing == pytest.approx(0.0, abs=1e-12)
    assert bound.twap_path_free == pytest.approx(2.5, rel=1e-9)
    assert bound.oracle == pytest.approx(2.5, rel=1e-9)
    assert bound.oracle_gain == pytest.approx(0.0, abs=1e-9)
    assert bound.oracle_gain_pct == pytest.approx(0.0, abs=1e-7)


def test_twap_and_the_optimum_match_their_closed_forms() -> None:
    model = _flat_model(half_spread_bps=2.5, impact=0.3, order_pct_adv=0.1)
    rules = FillRules.of(model)
    bars = day_bars(model, 0)
    twap_cost, optimum = _closed_forms(2.5, 0.3, 0.1)
    assert schedule_costs(twap_shares(4), bars, rules).path_free == pytest.approx(twap_cost, 1e-7)
    # Searched from TWAP alone, the optimiser has to find the optimum itself.
    found = best_schedule(bars, rules, starts=[twap_shares(4)], random_starts=0)
    assert found.cost == pytest.approx(optimum, rel=1e-4)
    assert found.cost >= optimum - 1e-9  # never below the true minimum
    # The schedule it found is VWAP on the real volumes: 40%, then 1/6, 1/5, the rest.
    np.testing.assert_allclose(found.shares[:3], [0.4, 1 / 6, 0.2], atol=2e-3)
    bound = feasibility_bound(model, [0])
    assert bound.oracle_gain == pytest.approx(twap_cost - optimum, rel=1e-4)


def test_bound_exceeds_ten_percent_only_when_impact_dominates_the_spread() -> None:
    # Control: the same volume profile, a large order and a tiny spread (impact dominates)...
    dominated = feasibility_bound(
        _flat_model(half_spread_bps=0.1, impact=0.3, order_pct_adv=0.3), [0]
    )
    twap_cost, optimum = _closed_forms(0.1, 0.3, 0.3)
    assert dominated.oracle_gain_pct == pytest.approx(
        (twap_cost - optimum) / twap_cost * 100, rel=1e-3
    )
    assert dominated.oracle_gain_pct > 10.0
    # ...and a wide spread that every share pays whatever the schedule: below 10%.
    spread_bound = feasibility_bound(
        _flat_model(half_spread_bps=30.0, impact=0.3, order_pct_adv=0.3), [0]
    )
    twap_cost, optimum = _closed_forms(30.0, 0.3, 0.3)
    assert spread_bound.oracle_gain == pytest.approx(dominated.oracle_gain, rel=1e-3)
    assert spread_bound.oracle_gain_pct == pytest.approx(
        (twap_cost - optimum) / twap_cost * 100, rel=1e-3
    )
    assert spread_bound.oracle_gain_pct < 10.0


def _run_env(
    env: ExecutionEnv, shares: list[float] | None, seed: int
) -> tuple[list[float], float, float]:
    """Run one episode; return the shares the env traded, its expected and realised cost."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    traded: list[float] = []
    expected = 0.0
    step = 0
    while True:
        share = shares[step] if shares is not None else float(rng.uniform(0.0, 0.5))
        _observation, reward, terminated, _, info = env.step(np.array([share]))
        traded.append(float(info["share"]))
        expected -= float(reward)
        step += 1
        if terminated:
            return traded, expected, float(info["shortfall_bps"])


@pytest.mark.parametrize("day_index", range(4))
def test_kernel_reprices_what_the_environment_charges_and_oracle_is_a_floor(
    day_index: int, replay_days: Callable[..., list[ReplayDay]]
) -> None:
    # The shared fixture: binding 10% cap, transient impact, U-shaped volume, random walk.
    days = replay_days(3, 8)
    config = ReplayConfig(n_steps=6, order_pct_adv=0.1, participation_cap=0.1)
    model = ReplayModel([days[day_index]], config)
    env = ExecutionEnv(model, reward_mode="expected")
    rules = FillRules.of(model)
    bars = day_bars(model, 0)
    oracle = best_schedule(bars, rules).cost
    vwap = list(model.step_profile[::-1].cumsum()[::-1])
    schedules = [list(twap_shares(6)), list(model.step_profile / np.array(vwap)), None, None]
    for seed, shares in enumerate(schedules):
        traded, expected, realised = _run_env(env, shares, seed)
        costs = schedule_costs(np.array(traded), bars, rules)
        assert costs.path_free == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert costs.realised == pytest.approx(realised, rel=1e-9, abs=1e-9)
        # No schedule the environment runs is cheaper than the volume oracle's.
        assert expected >= oracle - 1e-9
    assert costs.completion > 0  # the random shares leave a block for the end-of-day rule


def test_price_limits_are_refused(replay_days: Callable[..., list[ReplayDay]]) -> None:
    days = replay_days(3, 1)
    model = ReplayModel(days, ReplayConfig(n_steps=6, limit_pct=0.1))
    with pytest.raises(ValueError, match="price limits"):
        FillRules.of(model)
