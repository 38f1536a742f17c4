"""The execution-policy interface the arena's broker calls, and its implementations.

A policy looks at one normalised observation (built by :func:`rl_exec.env.build_observation`)
and returns the share of the *remaining* quantity to trade over the next step, in ``[0, 1]``.
The caller trades everything left at the last step whatever the policy says.

* :class:`TwapPolicy`: equal child orders (share ``1 / steps left``);
* :class:`VwapPolicy`: child orders in proportion to the usual intraday volume profile;
* :class:`AcPolicy`: the Almgren-Chriss optimal schedule;
* :class:`PovPolicy`: participation in the volume as the last step revealed it;
* :class:`RandomPolicy`: a uniformly random share each step (the floor any learner must clear);
* :class:`LearnedPolicy`: a PPO/SAC network saved by :mod:`rl_exec.train` in the lab's
  pickle-free format (:mod:`rl_exec.policy_file`: safetensors weights + a JSON description).

:func:`load_registered_policy` returns the policy registered in the lab home (see
:mod:`rl_exec.registry`), or TWAP when none is; a registered policy that cannot be loaded
safely (an old stable-baselines3 ``.zip``, a tampered file) is an error, never a silent TWAP.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from alphaloop.errors import ConfigError
from rl_exec.baselines import ac_kappa
from rl_exec.config import AcConfig
from rl_exec.env import BASE_OBS_FIELDS
from rl_exec.policy_file import (
    PolicyFiles,
    build_network,
    read_policy_files,
)

__all__ = [
    "AcPolicy",
    "ExecutionPolicy",
    "LearnedPolicy",
    "PovPolicy",
    "RandomPolicy",
    "TwapPolicy",
    "VwapPolicy",
    "builtin_policy",
]

_TWAP = BASE_OBS_FIELDS.index("twap_share")
_VWAP = BASE_OBS_FIELDS.index("vwap_share")
_VOLUME = BASE_OBS_FIELDS.index("log_volume_ratio")


@runtime_checkable
class ExecutionPolicy(Protocol):
    """Decide how much of a parent order to trade over the next step.

    Attributes
    ----------
    name:
        Short name shown in reports (``"twap"``, ``"vwap"``, ``"ac"``, ``"ppo:<file>"``).
    """

    name: str

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return the share of the remaining quantity to trade now, in ``[0, 1]``."""
        ...


def _steps_left(observation: np.ndarray) -> int:
    share = float(observation[_TWAP])
    return max(round(1.0 / share), 1) if share > 0 else 1


class TwapPolicy:
    """Time-weighted: trade ``1 / steps left`` of what remains (equal child orders)."""

    name = "twap"

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return ``1 / steps left``."""
        return 1.0 / _steps_left(observation)


class VwapPolicy:
    """Volume-weighted: trade this step's share of the usual volume still to come."""

    name = "vwap"

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return the step's usual volume over the usual volume of the steps left."""
        return float(np.clip(observation[_VWAP], 0.0, 1.0))


class PovPolicy:
    """Percentage of volume: VWAP's share scaled by how busy the last step was.

    A POV order trades a fixed share of the volume as it prints; inside the step scaffold
    (the share of the remaining quantity per step, decided before the step's bars) the best
    forecast of the step's volume is its usual share times the last step's realised/usual
    volume ratio, so the share is ``vwap_share * volume_ratio`` (clipped to ``[0, 1]``): VWAP
    when volume runs as usual, more when the market is busier.
    """

    name = "pov"

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return the VWAP share times the last step's volume ratio."""
        ratio = math.exp(float(observation[_VOLUME]))
        return float(np.clip(float(observation[_VWAP]) * ratio, 0.0, 1.0))


class RandomPolicy:
    """A share drawn uniformly from ``[0, 1]`` each step, from its own seeded generator.

    Parameters
    ----------
    seed:
        Seed of the policy's generator (episodes evaluated in the same order draw the same
        shares: the comparison stays paired and reproducible).
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return a uniform share of the remaining quantity."""
        return float(self._rng.uniform(0.0, 1.0))


class AcPolicy:
    """The Almgren-Chriss optimal static schedule, ``x_j ~ sinh(kappa (T - t_j))``.

    With ``k`` steps left the share to trade is ``1 - sinh(kappa tau (k-1)) / sinh(kappa tau k)``
    (``1 / k``, TWAP, when ``kappa = 0``).

    Parameters
    ----------
    kappa_tau:
        ``kappa * tau``, the urgency per step (:func:`rl_exec.baselines.ac_kappa` times tau).
    """

    name = "ac"

    def __init__(self, kappa_tau: float) -> None:
        if not (math.isfinite(kappa_tau) and kappa_tau >= 0):
            raise ValueError(f"kappa_tau must be finite and >= 0, got {kappa_tau}")
        self.kappa_tau = kappa_tau

    @classmethod
    def from_config(cls, config: AcConfig) -> AcPolicy:
        """Return the optimal policy of an Almgren-Chriss market."""
        return cls(ac_kappa(config) * config.tau)

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return the share of the remaining quantity the optimal schedule trades now."""
        steps = _steps_left(observation)
        if steps <= 1:
            return 1.0
        if self.kappa_tau < 1e-12:
            return 1.0 / steps
        # sinh ratio written with exponentials of negative arguments: no overflow for long
        # horizons (sinh(a(k-1))/sinh(ak) = e^-a (1 - e^-2a(k-1)) / (1 - e^-2ak)).
        a = self.kappa_tau
        ratio = math.exp(-a) * (-math.expm1(-2 * a * (steps - 1))) / (-math.expm1(-2 * a * steps))
        return float(min(max(1.0 - ratio, 0.0), 1.0))


class LearnedPolicy:
    """A trained PPO or SAC policy in the lab's file format, deterministic actions.

    Parameters
    ----------
    path:
        ``PATH.safetensors`` (or ``PATH`` / ``PATH.json``) written by
        :func:`rl_exec.train.train_policy`, or files already read by
        :func:`rl_exec.policy_file.read_policy_files`. The network is rebuilt by our code from
        the JSON description and the weights copied in (:mod:`rl_exec.policy_file`); nothing
        is unpickled, and a stable-baselines3 ``.zip`` or other pickle-bearing file is refused
        with a :class:`~rl_exec.policy_file.PolicyFileError`.

    Notes
    -----
    An observation with only the base fields (:data:`rl_exec.env.BASE_OBS_FIELDS`, what the
    arena broker's default observation carries) is accepted: the missing return lags are 0.
    """

    def __init__(self, path: str | Path | PolicyFiles) -> None:
        files = path if isinstance(path, PolicyFiles) else read_policy_files(path)
        self.network: Any = build_network(files)
        self.files = files
        self.metadata: dict[str, Any] = files.description
        self.path = files.weights_path
        levels = self.metadata.get("share_levels") if self.metadata["discrete"] else None
        self.levels = None if levels is None else np.asarray(levels, dtype=np.float64)
        self.name = f"{self.metadata['algo']}:{self.path.name}"
        self.obs_dim = int(self.metadata["observation"]["dim"])

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return the network's deterministic action as a share of the remaining quantity."""
        obs = np.asarray(observation, dtype=np.float32)
        base = len(BASE_OBS_FIELDS)
        if self.obs_dim > base and obs.shape == (base,):
            # The broker's default observation has no return lags; a zero return is the
            # neutral value the policy also sees at the start of every training episode.
            obs = np.concatenate([obs, np.zeros(self.obs_dim - base, dtype=np.float32)])
        if obs.shape != (self.obs_dim,):
            raise ValueError(
                f"{self.path}: observation has shape {obs.shape}, the policy expects "
                f"({self.obs_dim},)"
            )
        action, _ = self.network.predict(obs, deterministic=True)
        if self.levels is not None:
            return float(self.levels[int(np.asarray(action).reshape(-1)[0])])
        return float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, 1.0))


def builtin_policy(name: str, *, ac_config: AcConfig | None = None) -> ExecutionPolicy:
    """Return ``twap``, ``vwap`` or ``ac`` (the latter for ``ac_config``, default AC market)."""
    if name == "twap":
        return TwapPolicy()
    if name == "vwap":
        return VwapPolicy()
    if name == "ac":
        return AcPolicy.from_config(ac_config or AcConfig())
    raise ConfigError(f"unknown built-in policy {name!r} (allowed: twap, vwap, ac)")
