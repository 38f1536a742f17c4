"""The Almgren-Chriss closed form: the published figures and the environment's Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest

from rl_exec.baselines import (
    ac_holdings,
    dollars_to_bps,
    holdings_to_fractions,
    mean_variance,
    twap_holdings,
    vwap_holdings,
)
from rl_exec.config import AcConfig
from rl_exec.env import ExecutionEnv
from rl_exec.evaluate import evaluate_policy
from rl_exec.models import AlmgrenChrissModel
from rl_exec.policy import AcPolicy, TwapPolicy


def test_ac_standard_parameters_optimum_and_twap_match_published_figures() -> None:
    config = AcConfig()
    optimum = mean_variance(config, ac_holdings(config)).objective
    twap = mean_variance(config, twap_holdings(config.quantity, config.n_steps)).objective
    assert optimum == pytest.approx(704_723, abs=1.0)
    assert twap == pytest.approx(3_035_483, abs=1.0)
    assert 1 - optimum / twap == pytest.approx(0.768, abs=5e-4)


def test_ac_optimum_beats_every_perturbed_schedule() -> None:
    config = AcConfig()
    best = ac_holdings(config)
    rng = np.random.default_rng(0)
    for _ in range(20):
        bumped = best.copy()
        bumped[1:-1] *= 1 + 0.05 * rng.standard_normal(config.n_steps - 1)
        assert mean_variance(config, bumped).objective > mean_variance(config, best).objective


def test_ac_zero_risk_aversion_optimum_is_twap() -> None:
    config = AcConfig(risk_aversion=0.0)
    assert np.allclose(ac_holdings(config), twap_holdings(config.quantity, config.n_steps))


def test_ac_policy_in_env_reproduces_closed_form_holdings() -> None:
    config = AcConfig()
    env = ExecutionEnv(AlmgrenChrissModel(config))
    observation, _ = env.reset(seed=1)
    policy = AcPolicy.from_config(config)
    holdings = [config.quantity]
    done = False
    while not done:
        share = policy.schedule_fraction(observation)
        observation, _, done, _, info = env.step(np.array([share], dtype=np.float32))
        holdings.append(holdings[-1] - info["filled"])
    assert np.allclose(holdings, ac_holdings(config), rtol=1e-6, atol=1e-3)
    assert np.allclose(holdings_to_fractions(ac_holdings(config))[-1], 1.0)


@pytest.mark.parametrize("policy_name", ["ac", "twap"])
def test_ac_env_monte_carlo_matches_closed_form_objective(policy_name: str) -> None:
    config = AcConfig()
    env = ExecutionEnv(AlmgrenChrissModel(config))
    if policy_name == "ac":
        policy, holdings = AcPolicy.from_config(config), ac_holdings(config)
    else:
        policy, holdings = TwapPolicy(), twap_holdings(config.quantity, config.n_steps)
    expected = mean_variance(config, holdings)
    result = evaluate_policy(policy, env, episodes=400, seed=11)
    standard_error = result.std_shortfall_bps / np.sqrt(result.episodes)
    assert abs(result.mean_shortfall_bps - dollars_to_bps(expected.expected_cost, config)) < (
        4 * standard_error
    )
    # The risk term of a static schedule is deterministic: lambda V exactly.
    assert result.mean_risk_bps == pytest.approx(
        dollars_to_bps(config.risk_aversion * expected.variance, config), rel=1e-5
    )
    # The shortfall's spread is the schedule's standard deviation sqrt(V).
    assert result.std_shortfall_bps == pytest.approx(
        dollars_to_bps(np.sqrt(expected.variance), config), rel=0.15
    )


def test_vwap_holdings_follow_profile() -> None:
    holdings = vwap_holdings(100.0, np.array([3.0, 1.0, 1.0, 3.0]))
    assert np.allclose(holdings, [100.0, 62.5, 50.0, 37.5, 0.0])
