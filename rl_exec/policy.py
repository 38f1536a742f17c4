"""The execution-policy interface the arena's broker calls, and its implementations.

A policy looks at one normalised observation (built by :func:`rl_exec.env.build_observation`)
and returns the share of the *remaining* quantity to trade over the next step, in ``[0, 1]``.
The caller trades everything left at the last step whatever the policy says.

* :class:`TwapPolicy`: equal child orders (share ``1 / steps left``);
* :class:`VwapPolicy`: child orders in proportion to the usual intraday volume profile;
* :class:`AcPolicy`: the Almgren-Chriss optimal schedule;
* :class:`LearnedPolicy`: a stable-baselines3 model saved by :mod:`rl_exec.train`.

:func:`load_registered_policy` returns the policy registered in the lab home (see
:mod:`rl_exec.registry`), or TWAP when none is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from rl_exec.baselines import ac_kappa
from rl_exec.config import AcConfig
from rl_exec.env import BASE_OBS_FIELDS

_TWAP = BASE_OBS_FIELDS.index("twap_share")
_VWAP = BASE_OBS_FIELDS.index("vwap_share")


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


def policy_paths(path: str | Path) -> tuple[Path, Path]:
    """Return ``(model_zip, metadata_json)`` for a policy path given with or without ``.zip``."""
    base = Path(path)
    zip_path = base if base.suffix == ".zip" else base.with_name(base.name + ".zip")
    return zip_path, zip_path.with_suffix(".json")


class LearnedPolicy:
    """A stable-baselines3 model (PPO or SAC) with its metadata JSON, deterministic actions.

    Parameters
    ----------
    path:
        The model's ``.zip`` (or the same path without the suffix); the metadata JSON written
        by :func:`rl_exec.train.train_policy` must sit next to it.

    Notes
    -----
    An observation with only the base fields (:data:`rl_exec.env.BASE_OBS_FIELDS`, what the
    arena broker's default observation carries) is accepted: the missing return lags are 0.
    """

    def __init__(self, path: str | Path) -> None:
        zip_path, meta_path = policy_paths(path)
        if not zip_path.is_file():
            raise ConfigError(f"{zip_path}: policy file not found")
        if not meta_path.is_file():
            raise ConfigError(f"{meta_path}: policy metadata not found (expected next to the zip)")
        try:
            self.metadata: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{meta_path}: not valid JSON: {exc}") from None
        algo = str(self.metadata.get("algo", ""))
        if algo not in ("ppo", "sac"):
            raise ConfigError(f"{meta_path}: key 'algo' must be 'ppo' or 'sac', got {algo!r}")
        from stable_baselines3 import PPO, SAC

        loader = PPO if algo == "ppo" else SAC
        self.model = loader.load(str(zip_path), device="cpu")
        self.path = zip_path
        levels = self.metadata.get("share_levels")
        self.levels = None if levels is None else np.asarray(levels, dtype=np.float64)
        self.name = f"{algo}:{zip_path.name}"
        self.obs_dim = int(self.metadata.get("obs_dim", 0))

    def schedule_fraction(self, observation: np.ndarray) -> float:
        """Return the model's deterministic action as a share of the remaining quantity."""
        obs = np.asarray(observation, dtype=np.float32)
        base = len(BASE_OBS_FIELDS)
        if self.obs_dim > base and obs.shape == (base,):
            # The broker's default observation has no return lags; a zero return is the
            # neutral value the policy also sees at the start of every training episode.
            obs = np.concatenate([obs, np.zeros(self.obs_dim - base, dtype=np.float32)])
        if self.obs_dim and obs.shape != (self.obs_dim,):
            raise ValueError(
                f"{self.path}: observation has shape {obs.shape}, the policy expects "
                f"({self.obs_dim},)"
            )
        action, _ = self.model.predict(obs, deterministic=True)
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


def load_registered_policy(home: LabHome | str | Path | None = None) -> ExecutionPolicy:
    """Return the policy registered in the lab home, or :class:`TwapPolicy` when none is.

    Parameters
    ----------
    home:
        The lab home (default: resolved from ``$ALPHALOOP_HOME``).
    """
    from rl_exec.registry import registered_policy_path

    lab = home if isinstance(home, LabHome) else LabHome.resolve(home)
    path = registered_policy_path(lab)
    if path is None:
        return TwapPolicy()
    return LearnedPolicy(path)
