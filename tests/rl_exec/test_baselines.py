"""Execution baselines (issue 13 item 4): AC closed form, POV, random, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_exec.baselines import replay_ac_kappa_tau
from rl_exec.config import AcConfig, ReplayConfig
from rl_exec.env import BASE_OBS_FIELDS, ExecutionEnv
from rl_exec.evaluate import evaluate_policy, paired_difference
from rl_exec.models import AlmgrenChrissModel
from rl_exec.policy import AcPolicy, PovPolicy, RandomPolicy, TwapPolicy

SMALL = AcConfig(quantity=1e5, horizon_days=5.0, n_steps=5, risk_aversion=1e-5)


def test_ac_policy_trades_closed_form_sinh_holdings_on_ac_market() -> None:
    # Independent closed form: tau = 1 day, eta~ = eta - gamma tau / 2, kappa~^2 = lambda
    # sigma^2 / eta~, cosh(kappa tau) = 1 + kappa~^2 tau^2 / 2, x_j = X sinh(kappa (T - t_j)) /
    # sinh(kappa T).
    sigma = 0.12 * 50.0 / math.sqrt(250.0)
    eta_tilde = 2.5e-6 - 0.5 * 2.5e-7 * 1.0
    kappa = math.acosh(1.0 + 0.5 * 1e-5 * sigma**2 / eta_tilde)
    holdings = [1e5 * math.sinh(kappa * (5 - j)) / math.sinh(kappa * 5) for j in range(6)]
    env = ExecutionEnv(AlmgrenChrissModel(SMALL))
    observation, _ = env.reset(seed=0)
    policy = AcPolicy.from_config(SMALL)
    traded = []
    done = False
    while not done:
        share = policy.schedule_fraction(observation)
        observation, _, done, _, info = env.step(np.array([share], dtype=np.float32))
        traded.append(info["filled"])
    expected = -np.diff(holdings)
    np.testing.assert_allclose(traded, expected, rtol=1e-6)


def test_replay_ac_is_twap_without_risk_aversion_and_front_loads_with_it() -> None:
    neutral = ReplayConfig(risk_aversion=0.0)
    kwargs = {"daily_volatility": 0.02, "average_daily_volume": 1e6, "n_slots": 240}
    assert replay_ac_kappa_tau(neutral, **kwargs) == 0.0
    averse = ReplayConfig(risk_aversion=1e-3)
    kappa_tau = replay_ac_kappa_tau(averse, **kwargs)
    # Hand value: child n0 = 0.1 * 1e6 / 16, B = 15 bars of 1e6 / 240, sigma_bar = 0.02 /
    # sqrt(240); eta/tau = k sigma_bar / sqrt(n0 B V_b); kt2 = lambda sigma_bar^2 B / (eta/tau).
    sigma_bar = 0.02 / math.sqrt(240)
    eta = 0.3 * sigma_bar / math.sqrt(6250 * 15 * 1e6 / 240)
    assert kappa_tau == pytest.approx(math.acosh(1 + 0.5 * 1e-3 * sigma_bar**2 * 15 / eta))
    observation = np.zeros(len(BASE_OBS_FIELDS), dtype=np.float32)
    observation[BASE_OBS_FIELDS.index("twap_share")] = 1 / 16
    assert AcPolicy(kappa_tau).schedule_fraction(observation) > 1 / 16


def test_pov_policy_scales_vwap_share_by_last_volume_ratio() -> None:
    observation = np.zeros(len(BASE_OBS_FIELDS), dtype=np.float32)
    observation[BASE_OBS_FIELDS.index("vwap_share")] = 0.2
    observation[BASE_OBS_FIELDS.index("log_volume_ratio")] = math.log(1.5)
    assert PovPolicy().schedule_fraction(observation) == pytest.approx(0.3, rel=1e-6)
    observation[BASE_OBS_FIELDS.index("log_volume_ratio")] = 0.0
    assert PovPolicy().schedule_fraction(observation) == pytest.approx(0.2, rel=1e-6)


def test_random_policy_same_seed_same_shares_in_unit_interval() -> None:
    observation = np.zeros(len(BASE_OBS_FIELDS), dtype=np.float32)
    a, b = RandomPolicy(seed=3), RandomPolicy(seed=3)
    shares = [a.schedule_fraction(observation) for _ in range(20)]
    assert shares == [b.schedule_fraction(observation) for _ in range(20)]
    assert all(0.0 <= x <= 1.0 for x in shares) and len(set(shares)) == 20
    env = ExecutionEnv(AlmgrenChrissModel(SMALL))
    first = evaluate_policy(RandomPolicy(seed=1), env, episodes=5, seed=2)
    again = evaluate_policy(RandomPolicy(seed=1), env, episodes=5, seed=2)
    np.testing.assert_array_equal(first.shortfalls_bps, again.shortfalls_bps)
    twap = evaluate_policy(TwapPolicy(), env, episodes=5, seed=2)
    assert not np.array_equal(first.shortfalls_bps, twap.shortfalls_bps)


def test_paired_difference_matches_hand_calculation() -> None:
    candidate = np.array([10.0, 12.0, 9.0, 11.0])
    reference = np.array([12.0, 13.0, 12.0, 11.0])
    # d = [-2, -1, -3, 0]: mean -1.5, sample variance ((0.5)^2 + (0.5)^2 + (1.5)^2 + (1.5)^2)
    # / 3 = 5 / 3, standard error sqrt(5/3) / 2.
    diff = paired_difference(candidate, reference)
    error = math.sqrt(5.0 / 3.0) / 2.0
    assert diff.mean == pytest.approx(-1.5)
    assert diff.standard_error == pytest.approx(error)
    assert (diff.low, diff.high) == pytest.approx((-1.5 - 1.96 * error, -1.5 + 1.96 * error))
    assert diff.mean_pct == pytest.approx(-1.5 / 12.0 * 100.0)
    with pytest.raises(ValueError, match="same length"):
        paired_difference(candidate, reference[:3])
