"""Train PPO or SAC (stable-baselines3, CPU) on an execution environment.

The policy is saved in the lab's pickle-free format (:mod:`rl_exec.policy_file`):
``<out>.safetensors`` (the network's weights) with ``<out>.json`` next to it (the network's
architecture, the observation and action spaces, algorithm, seed, timesteps, the environment
config and its hash, the observation layout and library versions).
Learning curves (mean episode objective per rollout) go to MLflow (experiment ``rl_exec``
under the lab home's tracking store); MLflow is imported only here and in the CLI, the
environment and the market models stay pure.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alphaloop.errors import ConfigError, DataSpecError
from alphaloop.home import LabHome
from rl_exec.config import EnvConfig, ReplayConfig, TrainConfig
from rl_exec.env import (
    DEFAULT_SHARE_LEVELS,
    DiscreteExecutionEnv,
    ExecutionEnv,
    RewardMode,
    ScaledReward,
    obs_fields,
)
from rl_exec.models import AlmgrenChrissModel, MarketModel, ReplayModel, replay_days_from_panels
from rl_exec.policy_file import WEIGHTS_SUFFIX, policy_paths, save_policy

Algo = Literal["ppo", "sac"]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What :func:`train_policy` produced."""

    path: Path
    metadata: dict[str, Any]
    seconds: float
    curve: list[tuple[int, float]] = field(default_factory=list)
    agent: Any = field(default=None, repr=False, compare=False)
    """The trained stable-baselines3 model, in memory (it is not what is saved)."""


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a saved policy depends on."""
    versions = {"python": platform.python_version()}
    for package in ("alphaloop", "stable-baselines3", "gymnasium", "torch", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def build_replay_model(
    config: ReplayConfig, *, home: LabHome | None = None, holdout: bool = False
) -> ReplayModel:
    """Build the replay market from the lab's data (see :func:`build_replay_source`)."""
    return build_replay_source(config, home=home, holdout=holdout)[0]


def build_replay_source(
    config: ReplayConfig, *, home: LabHome | None = None, holdout: bool = False
) -> tuple[ReplayModel, str]:
    """Build the replay market from the lab's data (synthetic by default); say its market.

    Returns the model and the market code of its data (``cn``, ``us``, ``crypto``, ``none``),
    which a saved policy records (``trained_on.market``) and the registry compares with the
    arena's data.

    Training days are the ``config.days`` days after the look-back window; with ``holdout`` the
    next ``config.days`` days are used instead (evaluation on days the policy never saw).

    * The synthetic market: minute bars from :func:`simulators.synthetic.generate_intraday`,
      the market's usual profile :func:`simulators.synthetic.intraday_profile`.
    * Real intraday bars (a CSV/Parquet/``.zip`` file or folder, 1 minute to 1 hour): the
      regular-hours bars of each session (:func:`simulators.intraday_market.aggregate_sessions`),
      the daily panel aggregated exactly from them, a volume profile measured on the sessions
      before each day (:mod:`rl_exec.replay_data`). Days whose session has fewer bar intervals
      than ``replay.n_steps`` (an early close at a coarse bar size) are left out.
    * Daily-only data cannot be replayed: a :class:`DataSpecError` says so and names its bar
      size.
    """
    text = (config.data or "synthetic").strip()
    if text.split(":", 1)[0].strip() != "synthetic":
        return _build_real_replay_model(text, config, home=home, holdout=holdout)
    from simulators import synthetic

    spec = synthetic.SyntheticSpec.from_spec_string(text)
    daily = _load_market(text, home) if text != "synthetic" else synthetic.generate_daily(spec)
    first = _first_replay_day(text, daily.n_bars, config, holdout)
    # A day's minute bars are generated from the whole panel, as the arena's day generates
    # them (the generator draws for every column): the replayed assets are chosen after.
    intraday = {
        day: synthetic.generate_intraday(spec, daily, day)
        for day in range(first, first + config.days)
    }
    days = replay_days_from_panels(
        daily,
        intraday,
        lookback_days=config.lookback_days,
        symbols=daily.symbols[: config.assets],
    )
    if not days:
        raise DataSpecError(f"--data {text}: no tradable asset-day to replay")
    market = daily.market
    profile: np.ndarray | None = np.asarray(synthetic.intraday_profile(market), dtype=float)
    if profile is not None and profile.shape != (days[0].n_bars,):
        profile = None
    lot, limit = _market_rules(market)
    return ReplayModel(days, config, profile=profile, lot_size=lot, limit_pct=limit), market


def _first_replay_day(text: str, n_days: int, config: ReplayConfig, holdout: bool) -> int:
    """Return the first replayed daily row; a :class:`DataSpecError` if the data is too short."""
    first = config.lookback_days + (config.days if holdout else 0)
    if n_days < first + config.days:
        raise DataSpecError(
            f"--data {text}: {n_days} daily bars, the replay needs at least "
            f"{first + config.days} (replay.lookback_days + replay.days"
            f"{' x 2 with the hold-out days' if holdout else ''})"
        )
    return first


def _market_rules(market: str) -> tuple[float, float | None]:
    """Return the lot size and the price limit of the replay's fill model for ``market``."""
    lot = {"cn": 100.0, "us": 1.0, "crypto": 1e-6}.get(market, 1.0)
    return lot, (0.1 if market == "cn" else None)


def _build_real_replay_model(
    text: str, config: ReplayConfig, *, home: LabHome | None, holdout: bool
) -> tuple[ReplayModel, str]:
    """Build the replay market from real intraday bars (see :func:`build_replay_model`)."""
    from rl_exec.replay_data import replay_days_from_sessions
    from simulators.calendars import is_daily_or_slower
    from simulators.intraday_market import aggregate_sessions

    panel = _load_market(text, home)
    if is_daily_or_slower(panel.freq):
        raise DataSpecError(
            f"--data {text}: the replay environment needs intraday bars (1min to 1h) and this "
            f"source has {panel.freq} bars; give intraday bars (a file or folder) or use the "
            "synthetic market (the default, e.g. --data synthetic:market=cn)"
        )
    try:
        market = aggregate_sessions(panel)
    except ValueError as exc:
        raise DataSpecError(f"--data {text}: {exc}") from None
    first = _first_replay_day(text, market.daily.n_bars, config, holdout)
    days = replay_days_from_sessions(
        market,
        range(first, first + config.days),
        lookback_days=config.lookback_days,
        symbols=market.daily.symbols[: config.assets],
    )
    if not days:
        raise DataSpecError(f"--data {text}: no tradable asset-day to replay")
    longest = max(day.session_slots for day in days)
    days = [day for day in days if day.session_slots >= config.n_steps]
    if not days:
        raise DataSpecError(
            f"--data {text}: replay.n_steps={config.n_steps} is more than the {longest} "
            f"{market.freq} bars of a session; set replay.n_steps to at most {longest}"
        )
    lot, limit = _market_rules(market.daily.market)
    return ReplayModel(days, config, lot_size=lot, limit_pct=limit), market.daily.market


def _load_market(text: str, home: LabHome | None) -> Any:
    try:
        from simulators.data_spec import load_market
    except ModuleNotFoundError:  # the data layer is not there yet: synthetic only
        from simulators import synthetic

        if text.split(":", 1)[0].strip() == "synthetic":
            return synthetic.generate_daily(synthetic.SyntheticSpec.from_spec_string(text))
        raise DataSpecError(f"--data {text}: only synthetic data can be loaded here") from None
    return load_market(text, home=home)


def make_model(
    config: EnvConfig, *, home: LabHome | None = None, holdout: bool = False
) -> MarketModel:
    """Return the market model an :class:`EnvConfig` names."""
    if config.model == "ac":
        return AlmgrenChrissModel(config.ac)
    return build_replay_model(config.replay, home=home, holdout=holdout)


def make_env(
    config: EnvConfig,
    *,
    discrete: bool = False,
    model: MarketModel | None = None,
    home: LabHome | None = None,
    holdout: bool = False,
    reward_mode: RewardMode = "realised",
) -> ExecutionEnv | DiscreteExecutionEnv:
    """Return the environment of ``config`` (Box action, or the discrete variant)."""
    market = model or make_model(config, home=home, holdout=holdout)
    if discrete:
        return DiscreteExecutionEnv(market, n_returns=config.n_returns, reward_mode=reward_mode)
    return ExecutionEnv(market, n_returns=config.n_returns, reward_mode=reward_mode)


def resolve_reward_mode(requested: str, model: MarketModel) -> RewardMode:
    """Return the training reward for ``train.reward`` (``auto``/``expected``/``realised``).

    ``auto`` picks the expected-cost reward when the model provides expected costs (the
    Almgren-Chriss and replay markets: the price noise then leaves the learning signal) and the
    realised one otherwise; asking for ``expected`` on a model without it is a
    :class:`ConfigError`. On a replay market with a drift the expected reward does not see the
    drift (it prices fills against their own bars): train with ``realised`` there.
    """
    provides = bool(getattr(model, "provides_expected_cost", False))
    if requested == "auto":
        return "expected" if provides else "realised"
    if requested == "expected" and not provides:
        raise ConfigError(
            f"train.reward='expected' needs a market model with expected costs; "
            f"{type(model).__name__} has none (allowed here: auto, realised)"
        )
    if requested not in ("expected", "realised"):
        raise ConfigError(f"train.reward must be auto, expected or realised, got {requested!r}")
    return "expected" if requested == "expected" else "realised"


def train_policy(
    algo: Algo,
    env_config: EnvConfig,
    train_config: TrainConfig,
    *,
    timesteps: int,
    seed: int,
    out: str | Path,
    discrete: bool = False,
    model_factory: Callable[[], MarketModel] | None = None,
    home: LabHome | None = None,
    log_mlflow: bool = True,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``algo`` on ``env_config`` and save the policy with its metadata.

    Parameters
    ----------
    algo:
        ``"ppo"`` or ``"sac"`` (SAC needs the Box action).
    env_config, train_config:
        Environment and hyper-parameters.
    timesteps:
        Environment steps to train for (summed over the vectorised environments).
    seed:
        Seed of the networks, the exploration and the environments (same seed, same policy).
    out:
        Where to save (``<out>.safetensors`` and ``<out>.json``).
    discrete:
        Train on the discrete-action variant (PPO only).
    model_factory:
        Builds one market model per vectorised environment (default: from ``env_config``).
    home:
        Lab home (MLflow store, data cache); default resolved from the environment.
    log_mlflow:
        Log parameters and the learning curve to MLflow.
    progress:
        Called with ``(timesteps_done, timesteps)`` after each rollout/step batch.
    """
    if algo not in ("ppo", "sac"):
        raise ConfigError(f"--algo must be 'ppo' or 'sac', got {algo!r}")
    if algo == "sac" and discrete:
        raise ConfigError("SAC needs the continuous (Box) action; use --algo ppo for discrete")
    if timesteps < 1:
        raise ConfigError(f"--timesteps must be >= 1, got {timesteps}")
    if policy_paths(out)[0].suffix.lower() != WEIGHTS_SUFFIX:  # say so before training
        raise ConfigError(f"--out {out}: a policy is saved as PATH{WEIGHTS_SUFFIX} + PATH.json")
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(train_config.torch_threads)
    lab = home or LabHome.resolve()
    # The market of the data trained on, recorded for the registry; unknown (None) when the
    # caller brings its own market models.
    trained_market: str | None = None
    if model_factory is None:
        if env_config.model == "replay":
            # Build the replay data once; every vectorised env replays the same pool.
            shared, trained_market = build_replay_source(env_config.replay, home=lab)

            def model_factory() -> MarketModel:
                return shared.fresh()
        else:

            def model_factory() -> MarketModel:
                return AlmgrenChrissModel(env_config.ac)

    factory = model_factory
    scale = train_config.reward_scale
    reward_mode = resolve_reward_mode(train_config.reward, factory())

    def env_fn() -> Any:
        env = make_env(env_config, discrete=discrete, model=factory(), reward_mode=reward_mode)
        return ScaledReward(env, scale)

    vec_env = DummyVecEnv([env_fn for _ in range(train_config.n_envs)])
    policy_kwargs: dict[str, Any] = {"net_arch": list(train_config.net_arch)}
    if algo == "ppo":
        if not discrete:
            policy_kwargs["log_std_init"] = train_config.ppo_log_std_init
        agent: Any = PPO(
            "MlpPolicy",
            vec_env,
            learning_rate=train_config.learning_rate,
            n_steps=train_config.ppo_n_steps,
            batch_size=train_config.ppo_batch_size,
            n_epochs=train_config.ppo_n_epochs,
            gamma=train_config.gamma,
            gae_lambda=train_config.ppo_gae_lambda,
            ent_coef=train_config.ppo_ent_coef,
            policy_kwargs=policy_kwargs,
            seed=seed,
            device="cpu",
            verbose=0,
        )
    else:
        agent = SAC(
            "MlpPolicy",
            vec_env,
            learning_rate=train_config.learning_rate,
            buffer_size=train_config.sac_buffer_size,
            learning_starts=min(train_config.sac_learning_starts, max(timesteps // 2, 1)),
            batch_size=train_config.sac_batch_size,
            gamma=train_config.gamma,
            policy_kwargs=policy_kwargs,
            seed=seed,
            device="cpu",
            verbose=0,
        )

    curve: list[tuple[int, float]] = []

    class _Curve(BaseCallback):
        """Collect the mean objective (bps) of the episodes that ended, per rollout."""

        def __init__(self) -> None:
            super().__init__()
            self._objectives: list[float] = []
            self._last_report = 0

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "objective_bps" in info:
                    self._objectives.append(float(info["objective_bps"]))
            if progress is not None and self.num_timesteps - self._last_report >= 256:
                self._last_report = self.num_timesteps
                progress(min(self.num_timesteps, timesteps), timesteps)
            return True

        def _on_rollout_end(self) -> None:
            if self._objectives:
                curve.append((self.num_timesteps, float(np.mean(self._objectives))))
                self._objectives = []

    started = time.perf_counter()
    agent.learn(total_timesteps=timesteps, callback=_Curve(), progress_bar=False)
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(timesteps, timesteps)

    n_returns = env_config.n_returns
    facts: dict[str, Any] = {
        "seed": seed,
        "timesteps": timesteps,
        "share_levels": list(DEFAULT_SHARE_LEVELS) if discrete else None,
        "env": env_config.model,
        "trained_on": {
            "env": env_config.model,
            "data": (env_config.replay.data or "synthetic")
            if env_config.model == "replay"
            else None,
            "market": trained_market,
        },
        "env_config": env_config.model_dump(mode="json"),
        "env_config_hash": env_config.stable_hash(),
        "train_config": train_config.model_dump(mode="json"),
        "train_config_hash": train_config.stable_hash(),
        "reward_mode": reward_mode,
        "obs_fields": list(obs_fields(n_returns)),
        "obs_dim": len(obs_fields(n_returns)),
        "train_seconds": seconds,
        "versions": library_versions(),
    }
    weights_path, metadata = save_policy(
        out, algo=algo, discrete=discrete, policy=agent.policy, facts=facts
    )
    if log_mlflow:
        _log_mlflow(lab, metadata, curve, weights_path)
    return TrainResult(
        path=weights_path, metadata=metadata, seconds=seconds, curve=curve, agent=agent
    )


def _log_mlflow(
    lab: LabHome, metadata: dict[str, Any], curve: list[tuple[int, float]], weights_path: Path
) -> None:
    import mlflow

    lab.ensure()
    mlflow.set_tracking_uri(lab.mlflow_uri)
    if mlflow.get_experiment_by_name("rl_exec") is None:
        mlflow.create_experiment("rl_exec", artifact_location=lab.mlflow_artifacts.as_uri())
    mlflow.set_experiment("rl_exec")
    with mlflow.start_run(run_name=f"{metadata['algo']}-{metadata['env']}-seed{metadata['seed']}"):
        mlflow.log_params(
            {
                "algo": metadata["algo"],
                "env": metadata["env"],
                "seed": metadata["seed"],
                "timesteps": metadata["timesteps"],
                "discrete": metadata["discrete"],
                "env_config_hash": metadata["env_config_hash"],
                "train_config_hash": metadata["train_config_hash"],
            }
        )
        for step, objective in curve:
            mlflow.log_metric("episode_objective_bps", objective, step=step)
        mlflow.log_metric("train_seconds", metadata["train_seconds"])
        mlflow.log_artifact(str(weights_path))
        mlflow.log_artifact(str(weights_path.with_suffix(".json")))
