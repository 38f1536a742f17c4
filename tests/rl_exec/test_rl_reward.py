"""The expected-cost training reward and the paired gap of the benchmark."""

from __future__ import annotations

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
from rl_exec.config import AcConfig
from rl_exec.env import DiscreteExecutionEnv, ExecutionEnv
from rl_exec.evaluate import evaluate_policy, paired_gap_pct
from rl_exec.models import AlmgrenChrissModel, ReplayModel
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


def test_reward_expected_on_replay_model_rejected(replay_model: ReplayModel) -> None:
    with pytest.raises(ValueError, match="expected costs"):
        ExecutionEnv(replay_model, reward_mode="expected")
    with pytest.raises(ValueError, match="expected costs"):
        DiscreteExecutionEnv(replay_model, reward_mode="expected")
    with pytest.raises(ValueError, match="reward_mode"):
        ExecutionEnv(AlmgrenChrissModel(SMALL), reward_mode="noisy")  # type: ignore[arg-type]


def test_reward_mode_auto_expected_for_ac_realised_for_replay(replay_model: ReplayModel) -> None:
    assert resolve_reward_mode("auto", AlmgrenChrissModel(SMALL)) == "expected"
    assert resolve_reward_mode("auto", replay_model) == "realised"
    assert resolve_reward_mode("realised", AlmgrenChrissModel(SMALL)) == "realised"
    with pytest.raises(ConfigError, match=r"train\.reward"):
        resolve_reward_mode("expected", replay_model)


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
