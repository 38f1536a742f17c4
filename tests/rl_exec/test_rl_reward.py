"""The expected-cost training reward and the paired gap of the benchmark."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from alphaloop.errors import ConfigError
from rl_exec.baselines import (
    ac_holdings,
    dollars_to_bps,
    holdings_to_fractions,
    mean_variance,
    twap_holdings,
)
from rl_exec.config import AcConfig, ReplayConfig
from rl_exec.env import DiscreteExecutionEnv, ExecutionEnv
from rl_exec.evaluate import evaluate_policy, paired_gap_pct
from rl_exec.models import (
    AlmgrenChrissModel,
    EpisodeStart,
    ReplayDay,
    ReplayModel,
    StepFill,
)
from rl_exec.policy import AcPolicy, TwapPolicy
from rl_exec.train import resolve_reward_mode

# A shorter market than the standard one keeps the episodes cheap; the identities are exact.
SMALL = AcConfig(n_steps=12, horizon_days=12)


def _episode(env: ExecutionEnv, fractions: np.ndarray, seed: int) -> tuple[float, dict]:
    """Run the fractions; return the episode return and the last info (with the holdings)."""
    env.reset(seed=seed)
    total, info, holdings = 0.0, {}, [SMALL.quantity]
    for fraction in fractions:
        _, reward, done, _, info = env.step(np.array([fraction], dtype=np.float32))
        total += reward
        holdings.append(holdings[-1] - info["filled"])
        if done:
            break
    info["holdings"] = np.array(holdings)
    return total, info


@pytest.mark.parametrize("schedule", ["ac", "twap", "front"])
def test_reward_expected_static_schedule_sums_to_analytic_objective_on_every_path(
    schedule: str,
) -> None:
    if schedule == "ac":
        holdings = ac_holdings(SMALL)
    elif schedule == "twap":
        holdings = twap_holdings(SMALL.quantity, SMALL.n_steps)
    else:  # an arbitrary front-loaded schedule, optimal for nothing
        holdings = SMALL.quantity * np.linspace(1.0, 0.0, SMALL.n_steps + 1) ** 2
    env = ExecutionEnv(AlmgrenChrissModel(SMALL), reward_mode="expected")
    fractions = holdings_to_fractions(holdings)
    for seed in (0, 1, 2):
        episode_return, info = _episode(env, fractions, seed)
        # The schedule actually traded (actions are float32) is the one the formula gets.
        traded = info["holdings"]
        assert traded == pytest.approx(holdings, rel=1e-5, abs=1e-3)
        objective = mean_variance(SMALL, traded).objective
        # No price noise is left in the signal: every path returns exactly -(E + lambda V).
        assert episode_return == pytest.approx(-dollars_to_bps(objective, SMALL), rel=1e-9)


def test_reward_expected_keeps_realised_info_and_removes_noise() -> None:
    fractions = holdings_to_fractions(ac_holdings(SMALL))
    realised_env = ExecutionEnv(AlmgrenChrissModel(SMALL))
    expected_env = ExecutionEnv(AlmgrenChrissModel(SMALL), reward_mode="expected")
    realised_return, realised_info = _episode(realised_env, fractions, seed=7)
    expected_return, expected_info = _episode(expected_env, fractions, seed=7)
    # Evaluation reads the info: the same realised shortfall whatever the training reward.
    assert expected_info["shortfall_bps"] == realised_info["shortfall_bps"]
    assert expected_info["objective_bps"] == realised_info["objective_bps"]
    assert realised_return == pytest.approx(-realised_info["objective_bps"], rel=1e-9)
    assert expected_return != pytest.approx(realised_return, rel=1e-6)


def test_reward_expected_is_realised_mean_for_state_dependent_policy() -> None:
    # An adaptive rule (trade faster after an adverse move) is not a static schedule; the
    # expected reward must still average to the realised objective (it only drops noise).
    config = AcConfig(n_steps=6, horizon_days=6)
    realised, expected = [], []
    for mode, sink in (("realised", realised), ("expected", expected)):
        env = ExecutionEnv(AlmgrenChrissModel(config), reward_mode=mode)  # type: ignore[arg-type]
        for seed in range(400):
            observation, _ = env.reset(seed=seed)
            total, done = 0.0, False
            while not done:
                share = 0.5 if observation[6] > 0 else 0.2  # price_vs_arrival
                observation, reward, done, _, _ = env.step(np.array([share], dtype=np.float32))
                total += reward
            sink.append(total)
    difference = np.asarray(realised) - np.asarray(expected)
    standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
    assert abs(difference.mean()) < 4 * standard_error
    assert np.std(expected) < 0.2 * np.std(realised)


class _NoExpectationModel:
    """A market that reports realised fills only (no noise-free cost)."""

    provides_expected_cost = False

    def __init__(self) -> None:
        self._inner = AlmgrenChrissModel(SMALL)
        self.n_steps = SMALL.n_steps
        self.risk_aversion = SMALL.risk_aversion
        self.unfilled_penalty_bps = 0.0

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        return self._inner.start(rng)

    def execute(self, quantity: float) -> StepFill:
        fill = self._inner.execute(quantity)
        return StepFill(
            filled=fill.filled, cash=fill.cash, view=fill.view, step_variance=fill.step_variance
        )


def test_reward_expected_on_model_without_expectation_rejected() -> None:
    with pytest.raises(ValueError, match="expected costs"):
        ExecutionEnv(_NoExpectationModel(), reward_mode="expected")
    with pytest.raises(ValueError, match="expected costs"):
        DiscreteExecutionEnv(_NoExpectationModel(), reward_mode="expected")
    with pytest.raises(ValueError, match="reward_mode"):
        ExecutionEnv(AlmgrenChrissModel(SMALL), reward_mode="noisy")  # type: ignore[arg-type]


def test_reward_mode_auto_expected_where_model_provides_it(replay_model: ReplayModel) -> None:
    assert resolve_reward_mode("auto", AlmgrenChrissModel(SMALL)) == "expected"
    assert resolve_reward_mode("auto", replay_model) == "expected"
    assert resolve_reward_mode("auto", _NoExpectationModel()) == "realised"
    assert resolve_reward_mode("realised", AlmgrenChrissModel(SMALL)) == "realised"
    with pytest.raises(ConfigError, match=r"train\.reward"):
        resolve_reward_mode("expected", _NoExpectationModel())


def _flat_day(n_bars: int, volume: float, half_range: float = 0.01) -> ReplayDay:
    """A day whose reference price never moves: 20 at every bar, range 20 +- half_range."""
    price = np.full(n_bars, 20.0)
    return ReplayDay(
        open=price,
        high=price * (1 + half_range),
        low=price * (1 - half_range),
        close=price,
        volume=np.full(n_bars, volume),
        prev_close=20.0,
        average_daily_volume=volume * n_bars,
        daily_volatility=0.02,
    )


def _run_shares(env: ExecutionEnv, share: float, seed: int) -> tuple[float, dict]:
    env.reset(seed=seed)
    total, done, info = 0.0, False, {}
    while not done:
        _, reward, done, _, info = env.step(np.array([share], dtype=np.float32))
        total += reward
    return total, info


def test_reward_expected_replay_flat_day_equals_analytic_spread_impact_and_transient() -> None:
    # 60 bars of 10,000 shares, an order of 1% of the day sent whole in the first of 6 steps:
    # its 10 bars fill 600 each (under the cap of 1,000). Bar i pays the half-spread, its own
    # impact I = k sigma_bar sqrt(600 / 10,000) with sigma_bar = 0.02 / sqrt(60) (the one
    # volatility definition, issue 13), and the transient of the bars before it,
    # I * sum_{j=1..i} 2^(-j / 10) (half-life 10 bars).
    config = ReplayConfig(n_steps=6, order_pct_adv=0.01, participation_cap=0.1)
    model = ReplayModel([_flat_day(60, 10_000.0)], config)
    expected_env = ExecutionEnv(model, reward_mode="expected")
    episode_return, info = _run_shares(expected_env, 1.0, seed=0)
    impact = config.impact_coefficient * 0.02 / np.sqrt(60) * np.sqrt(600 / 10_000)
    transient = [impact * sum(2 ** (-j / 10) for j in range(1, i + 1)) for i in range(10)]
    cost_bps = config.half_spread_bps + (impact + np.mean(transient)) * 1e4
    assert info["unfilled"] == 0
    assert episode_return == pytest.approx(-cost_bps, rel=1e-9)
    # Nothing moves: the realised shortfall is the same cost.
    assert info["shortfall_bps"] == pytest.approx(cost_bps, rel=1e-9)


def test_reward_expected_replay_cap_left_completed_at_last_bar_cap_free() -> None:
    # An order of 20% of the day with a 10% cap, sent whole at every step, no transient
    # between bars: the first 39 bars fill 100 each at the cap; the last bar completes the
    # remaining 4,100 (the end-of-day rule) as 41 slices of 100 one after another in the bar,
    # slice j paying its impact I and the j I its predecessors left (no time to decay).
    config = ReplayConfig(
        n_steps=4,
        order_pct_adv=0.2,
        participation_cap=0.1,
        unfilled_penalty_bps=50.0,
        transient_half_life_bars=0.0,
    )
    model = ReplayModel([_flat_day(40, 1_000.0, half_range=0.05)], config)
    episode_return, info = _run_shares(ExecutionEnv(model, reward_mode="expected"), 1.0, seed=0)
    assert info["unfilled"] == 0
    impact_bps = config.impact_coefficient * 0.02 / np.sqrt(40) * np.sqrt(0.1) * 1e4
    at_cap_bps = config.half_spread_bps + impact_bps
    completion_bps = at_cap_bps + impact_bps * np.mean(np.arange(41))
    expected_bps = (3_900 * at_cap_bps + 4_100 * completion_bps) / 8_000
    assert episode_return == pytest.approx(-expected_bps, rel=1e-9)
    assert info["shortfall_bps"] == pytest.approx(-episode_return, rel=1e-9)


def test_reward_expected_replay_is_realised_mean_without_path_noise(
    replay_days: Callable[..., list[ReplayDay]],
) -> None:
    # Random-walk days: the realised shortfall carries the moves of the bars' prices, the
    # expected reward does not; over many episodes they agree on average. The pool is larger
    # than the episode count so that the episodes' days are (nearly) independent draws.
    config = ReplayConfig(n_steps=6, order_pct_adv=0.1, participation_cap=0.1)
    model = ReplayModel(replay_days(11, 1200), config)
    realised_env = ExecutionEnv(model)
    expected_env = ExecutionEnv(
        ReplayModel(model.days, config, profile=model.minute_profile), reward_mode="expected"
    )
    realised, expected = [], []
    for seed in range(400):
        share = 0.6 if seed % 2 else 0.25
        realised.append(-_run_shares(realised_env, share, seed)[0])
        expected.append(-_run_shares(expected_env, share, seed)[0])
    difference = np.asarray(realised) - np.asarray(expected)
    standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
    assert abs(difference.mean()) < 4 * standard_error
    assert np.std(expected) < 0.2 * np.std(realised)
    # The evaluation figures are the realised ones whatever the training reward.
    assert _run_shares(expected_env, 0.4, 5)[1]["shortfall_bps"] == pytest.approx(
        -_run_shares(realised_env, 0.4, 5)[0]
    )


def test_paired_gap_same_policy_zero_and_twap_gap_matches_objectives() -> None:
    env = ExecutionEnv(AlmgrenChrissModel(SMALL))
    optimum = evaluate_policy(AcPolicy.from_config(SMALL), env, episodes=50, seed=3)
    again = evaluate_policy(AcPolicy.from_config(SMALL), env, episodes=50, seed=3)
    twap = evaluate_policy(TwapPolicy(), env, episodes=50, seed=3)
    assert paired_gap_pct(again, optimum) == (0.0, 0.0)
    gap, error = paired_gap_pct(twap, optimum)
    assert gap == pytest.approx((twap.objective / optimum.objective - 1) * 100, rel=1e-9)
    assert gap > 0 and 0 < error < gap
    other = evaluate_policy(TwapPolicy(), env, episodes=50, seed=4)
    with pytest.raises(ValueError, match="same episodes"):
        paired_gap_pct(other, optimum)
