"""The execution environment: gymnasium's checker, accounting, seeding."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_exec.config import AcConfig, ReplayConfig
from rl_exec.env import DiscreteExecutionEnv, ExecutionEnv, obs_fields
from rl_exec.evaluate import evaluate_policy
from rl_exec.models import AlmgrenChrissModel, ReplayDay, ReplayModel
from rl_exec.policy import TwapPolicy, VwapPolicy


def _check(env: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning is a failure
        check_env(env, skip_render_check=True)  # type: ignore[arg-type]


def test_env_ac_box_passes_check_env() -> None:
    _check(ExecutionEnv(AlmgrenChrissModel(AcConfig(n_steps=10, horizon_days=10))))


def test_env_ac_discrete_passes_check_env() -> None:
    _check(DiscreteExecutionEnv(AlmgrenChrissModel(AcConfig())))


def test_env_replay_box_and_discrete_pass_check_env(replay_model: ReplayModel) -> None:
    _check(ExecutionEnv(replay_model))
    _check(DiscreteExecutionEnv(replay_model))


def _run(env: ExecutionEnv, shares: Callable[[int], float], seed: int) -> list[dict]:
    env.reset(seed=seed)
    infos, done, step = [], False, 0
    while not done:
        _, reward, done, _, info = env.step(np.array([shares(step)], dtype=np.float32))
        assert np.isfinite(reward)
        info["reward"] = reward
        infos.append(info)
        step += 1
    return infos


def test_env_ac_zero_action_last_step_trades_everything() -> None:
    config = AcConfig(n_steps=5, horizon_days=5)
    infos = _run(ExecutionEnv(AlmgrenChrissModel(config)), lambda _: 0.0, seed=0)
    assert [i["filled"] for i in infos[:-1]] == [0.0] * 4
    assert infos[-1]["filled"] == pytest.approx(config.quantity)
    assert infos[-1]["unfilled"] == 0.0


def test_env_ac_rewards_sum_to_minus_shortfall_against_arrival() -> None:
    config = AcConfig(n_steps=8, horizon_days=8)
    model = AlmgrenChrissModel(config)
    env = ExecutionEnv(model)
    cash = 0.0
    original = model.execute

    def spy(quantity: float):  # type: ignore[no-untyped-def]
        nonlocal cash
        result = original(quantity)
        cash += result.cash
        return result

    model.execute = spy  # type: ignore[method-assign]
    infos = _run(env, lambda _: 0.3, seed=5)
    shortfall = config.quantity * config.initial_price - cash  # a sell: arrival value - proceeds
    expected_bps = shortfall / (config.quantity * config.initial_price) * 1e4
    assert infos[-1]["shortfall_bps"] == pytest.approx(expected_bps, rel=1e-9, abs=1e-9)
    total_reward = sum(i["reward"] for i in infos)
    assert total_reward == pytest.approx(-(expected_bps + infos[-1]["risk_bps"]), rel=1e-9)


def test_env_same_seed_same_episode_and_different_seed_differs() -> None:
    env = ExecutionEnv(AlmgrenChrissModel(AcConfig()))
    first = [i["reward"] for i in _run(env, lambda _: 0.2, seed=3)]
    again = [i["reward"] for i in _run(env, lambda _: 0.2, seed=3)]
    other = [i["reward"] for i in _run(env, lambda _: 0.2, seed=4)]
    assert first == again
    assert first != other


def test_env_observation_has_documented_layout_and_bounds() -> None:
    env = ExecutionEnv(AlmgrenChrissModel(AcConfig()), n_returns=4)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (len(obs_fields(4)),)
    assert observation[0] == pytest.approx(1.0)  # inventory left
    assert observation[2] == pytest.approx(1 / 60)  # twap share
    assert env.observation_space.contains(observation)


def test_env_nan_action_raises() -> None:
    env = ExecutionEnv(AlmgrenChrissModel(AcConfig()))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan], dtype=np.float32))


def test_env_replay_cap_left_to_last_bar_completed_and_costs_more(
    replay_days: Callable[..., list[ReplayDay]],
) -> None:
    # Everything is left to the last quarter, whose volume caps the fills; its last bar
    # completes the rest cap-free (issue 13's end-of-day rule), at a larger impact.
    days = replay_days(1, 2)
    strict = ReplayModel(days, ReplayConfig(n_steps=4, order_pct_adv=0.2, participation_cap=0.05))
    strict_infos = _run(ExecutionEnv(strict), lambda _: 0.0, seed=0)
    assert strict_infos[-1]["unfilled"] == 0
    completion = strict_infos[-1]["filled"]
    loose = ReplayModel(days, ReplayConfig(n_steps=4, order_pct_adv=0.2, participation_cap=1.0))
    loose_infos = _run(ExecutionEnv(loose), lambda _: 0.0, seed=0)
    assert loose_infos[-1]["unfilled"] == 0
    # The strict cap left most of the order to the last bar: its step filled it all.
    assert completion == pytest.approx(strict.config.order_pct_adv * 1e6, rel=1e-9)
    capped = ExecutionEnv(strict, reward_mode="expected")
    free = ExecutionEnv(loose, reward_mode="expected")
    cost_capped = -sum(_step_rewards(capped))
    cost_free = -sum(_step_rewards(free))
    assert cost_capped > cost_free


def _step_rewards(env: ExecutionEnv) -> list[float]:
    env.reset(seed=0)
    rewards, done = [], False
    while not done:
        _, reward, done, _, _ = env.step(np.array([0.0], dtype=np.float32))
        rewards.append(float(reward))
    return rewards


def test_env_replay_vwap_cheaper_than_twap_with_u_shaped_volume(
    replay_model: ReplayModel,
) -> None:
    env = ExecutionEnv(replay_model)
    twap = evaluate_policy(TwapPolicy(), env, episodes=16, seed=2)
    vwap = evaluate_policy(VwapPolicy(), env, episodes=16, seed=2)
    assert vwap.mean_shortfall_bps < twap.mean_shortfall_bps
