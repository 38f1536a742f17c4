"""Training with stable-baselines3: learning, determinism, save/load, registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from rl_exec.config import EnvConfig, TrainConfig, load_rl_config
from rl_exec.env import BASE_OBS_FIELDS, ExecutionEnv, obs_fields
from rl_exec.evaluate import evaluate_policy
from rl_exec.models import ReplayModel
from rl_exec.policy import LearnedPolicy, TwapPolicy
from rl_exec.registry import load_registered_policy, register_policy
from rl_exec.train import TrainResult, make_env, train_policy

ENV = load_rl_config().env
TRAIN = TrainConfig()
# A bolder step size than the default so that a few thousand steps visibly learn.
FAST = TRAIN.model_copy(update={"learning_rate": 3e-3})


class RandomPolicy:
    """Uniform random share each step (seeded)."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def schedule_fraction(self, observation: np.ndarray) -> float:
        return float(self.rng.uniform())


def _params(path: Path) -> list[np.ndarray]:
    policy = LearnedPolicy(path)
    return [p.detach().numpy().copy() for p in policy.network.parameters()]


@pytest.fixture(scope="module")
def trained_results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, TrainResult]:
    """PPO on the AC market after one rollout and after a tiny budget (same seed)."""
    folder = tmp_path_factory.mktemp("ppo")
    return {
        steps: train_policy(
            "ppo", ENV, FAST, timesteps=steps, seed=0, out=folder / f"ppo{steps}", log_mlflow=False
        )
        for steps in (1, 4096)
    }


@pytest.fixture(scope="module")
def trained(trained_results: dict[int, TrainResult]) -> dict[int, Path]:
    """The saved policies of :func:`trained_results`."""
    return {steps: result.path for steps, result in trained_results.items()}


def test_train_ppo_tiny_budget_beats_random_and_untrained(trained: dict[int, Path]) -> None:
    env = make_env(ENV)
    assert isinstance(env, ExecutionEnv)
    learned = evaluate_policy(LearnedPolicy(trained[4096]), env, episodes=60, seed=9)
    untrained = evaluate_policy(LearnedPolicy(trained[1]), env, episodes=60, seed=9)
    random = evaluate_policy(RandomPolicy(0), env, episodes=60, seed=9)
    assert learned.objective < random.objective
    assert learned.objective < untrained.objective


def test_train_same_seed_same_policy_parameters(tmp_path: Path, trained: dict[int, Path]) -> None:
    again = train_policy(
        "ppo", ENV, FAST, timesteps=4096, seed=0, out=tmp_path / "again", log_mlflow=False
    )
    other = train_policy(
        "ppo", ENV, FAST, timesteps=4096, seed=1, out=tmp_path / "other", log_mlflow=False
    )
    reference = _params(trained[4096])
    assert all(np.array_equal(a, b) for a, b in zip(reference, _params(again.path), strict=True))
    assert not all(
        np.array_equal(a, b) for a, b in zip(reference, _params(other.path), strict=True)
    )


def test_train_saved_policy_round_trip_same_actions_and_metadata(
    trained_results: dict[int, TrainResult],
) -> None:
    path = trained_results[4096].path
    assert path.suffix == ".safetensors"
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["algo"] == "ppo" and metadata["seed"] == 0
    assert metadata["timesteps"] == 4096
    assert metadata["env_config_hash"] == ENV.stable_hash()
    assert metadata["obs_fields"] == list(obs_fields(ENV.n_returns))
    assert metadata["reward_mode"] == "expected"  # train.reward=auto on the AC market
    assert {"stable-baselines3", "torch", "gymnasium"} <= set(metadata["versions"])
    raw = trained_results[4096].agent  # the model in memory; what was saved is rebuilt
    policy = LearnedPolicy(path)
    env = make_env(ENV)
    observation, _ = env.reset(seed=4)
    for _ in range(5):
        action, _ = raw.predict(observation, deterministic=True)
        share = policy.schedule_fraction(observation)
        assert share == pytest.approx(float(np.clip(action[0], 0, 1)))
        observation, *_ = env.step(np.array([share], dtype=np.float32))


def test_train_sac_and_discrete_ppo_run_and_load(tmp_path: Path) -> None:
    sac = train_policy(
        "sac", ENV, TRAIN, timesteps=300, seed=0, out=tmp_path / "sac", log_mlflow=False
    )
    assert 0.0 <= LearnedPolicy(sac.path).schedule_fraction(np.zeros(len(obs_fields(3)))) <= 1.0
    discrete = train_policy(
        "ppo",
        ENV,
        TRAIN.model_copy(update={"ppo_n_steps": 64, "ppo_batch_size": 64}),
        timesteps=256,
        seed=0,
        out=tmp_path / "discrete",
        discrete=True,
        log_mlflow=False,
    )
    policy = LearnedPolicy(discrete.path)
    assert policy.levels is not None
    assert policy.schedule_fraction(np.zeros(len(obs_fields(3)), dtype=np.float32)) in set(
        policy.levels
    )


def test_train_replay_model_factory_tiny_run_expected_reward_deterministic(
    tmp_path: Path, replay_model: ReplayModel
) -> None:
    env_config = EnvConfig(model="replay", replay=replay_model.config)
    tiny = TRAIN.model_copy(update={"ppo_n_steps": 64, "ppo_batch_size": 64, "n_envs": 2})
    paths = []
    for name in ("replay", "again"):
        result = train_policy(
            "ppo",
            env_config,
            tiny,
            timesteps=128,
            seed=0,
            out=tmp_path / name,
            model_factory=lambda: ReplayModel(replay_model.days, replay_model.config),
            log_mlflow=False,
        )
        assert result.metadata["env"] == "replay" and result.path.is_file()
        # train.reward=auto: the replay market prices fills against their own bars.
        assert result.metadata["reward_mode"] == "expected"
        paths.append(result.path)
    first, again = (_params(path) for path in paths)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_train_sac_discrete_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SAC"):
        train_policy("sac", ENV, TRAIN, timesteps=10, seed=0, out=tmp_path / "x", discrete=True)


def test_registry_without_registration_falls_back_to_twap(lab_home: LabHome) -> None:
    assert isinstance(load_registered_policy(lab_home), TwapPolicy)


def test_registry_registered_policy_is_what_broker_loads(
    lab_home: LabHome, trained: dict[int, Path]
) -> None:
    # AC-trained policies, forced past the arena's gate (tests/rl_exec/test_registry.py).
    target = register_policy(trained[4096], "exec-v1", lab_home, force=True, episodes=4).path
    loaded = load_registered_policy(lab_home)
    assert isinstance(loaded, LearnedPolicy)
    assert loaded.path == target
    original = LearnedPolicy(trained[4096])
    observation = make_env(ENV).reset(seed=2)[0]
    assert loaded.schedule_fraction(observation) == original.schedule_fraction(observation)
    # A later registration replaces the first one.
    register_policy(trained[1], "exec-v0", lab_home, force=True, episodes=4)
    assert (
        load_registered_policy(lab_home).path
        == lab_home.policies / "exec-v0" / "v1" / "policy.safetensors"
    )


def test_registry_bad_name_and_missing_file_rejected(lab_home: LabHome, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="name"):
        register_policy(tmp_path / "x.safetensors", "../evil", lab_home)
    with pytest.raises(ConfigError, match="not found"):
        register_policy(tmp_path / "missing.safetensors", "ok", lab_home)


def test_learned_policy_base_observation_padded_with_zero_returns(
    trained: dict[int, Path],
) -> None:
    policy = LearnedPolicy(trained[4096])
    full = make_env(ENV).reset(seed=6)[0]
    assert np.all(full[len(BASE_OBS_FIELDS) :] == 0)  # no return seen yet at the start
    base = full[: len(BASE_OBS_FIELDS)]
    assert policy.schedule_fraction(base) == policy.schedule_fraction(full)
    with pytest.raises(ValueError, match="expects"):
        policy.schedule_fraction(full[:-1])
