"""The policy registry under the lab home: which execution policy the arena's broker uses.

Layout::

    <home>/policies/<name>/v<N>/policy.safetensors   the network's weights
    <home>/policies/<name>/v<N>/policy.json          its description (rl_exec.policy_file)
    <home>/policies/<name>/v<N>/registration.json    what the registry checked: the training
                                                     facts, the arena's data, the evaluation
                                                     against TWAP, whether it was forced
    <home>/policies/registered.json                  the pointer: the active version (name,
                                                     version, path, sha256, ...) and the
                                                     history of activations (for rollback)

A home registered before versions (``<name>/policy.safetensors`` and a ``registered.json``
without ``schema_version``) is read as it is: its policy is version 0 of its name, the active
one, with no evaluation; the next registration keeps it in the history, so ``rl rollback``
returns to it. Nothing is rewritten until then.

**The gate.** A policy is registered only if it was trained on the environment the arena
executes on (``replay``: parent orders sliced over intraday bars) and on the arena's market
(``trained_on.market`` against the market of the arena's data), and if it beats TWAP on the
arena's replay environment (the hold-out days of the arena's data) in a quick paired
evaluation: the same orders (common random numbers, :mod:`rl_exec.evaluate`) for both, the
paired difference of the noise-free expected cost (bps) and its standard error, and the upper
end of its 95% interval must be below zero. The expected cost is the gate's figure because
the realised shortfall carries the price path, whose noise over a few hundred orders (several
bps) is larger than the differences between schedules (about half a bp); the realised
objective's difference and its error are stored next to it. ``force`` registers a refused
policy anyway and stores the figures, the reasons overridden and ``forced: true``. A policy
whose observation the arena's environment cannot give is refused even then (nothing could be
evaluated or traded with it).

**Atomic.** The version's three files are written into a temporary folder next to its final
place, which is then renamed to ``v<N>``; only then is ``registered.json`` replaced (temp file +
rename, :mod:`alphaloop.files`). A crash at any point leaves the previous registration active
and whole (at worst a complete, inactive ``v<N>``, or a temporary folder readers ignore).

Registering reads the policy once, checks it completely (format, weights against the
description, the network rebuilt: :class:`rl_exec.policy.LearnedPolicy`) and writes those same
checked bytes into the home. A stable-baselines3 ``.zip`` or any other pickle-bearing file is
refused (:class:`rl_exec.policy_file.PolicyFileError`); nothing of it is unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from alphaloop.errors import ConfigError, DataSpecError
from alphaloop.files import atomic_write_text
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
from rl_exec.config import EnvConfig
from rl_exec.env import BASE_OBS_FIELDS, ExecutionEnv, obs_fields
from rl_exec.evaluate import EvaluationResult, evaluate_policy, paired_change_pct
from rl_exec.policy import ExecutionPolicy, LearnedPolicy, TwapPolicy
from rl_exec.policy_file import (
    PolicyFileError,
    PolicyFiles,
    read_policy_files,
    write_policy_files,
)

__all__ = [
    "ARENA_ENV",
    "DEFAULT_EPISODES",
    "REGISTERED_FILE",
    "GateEvaluation",
    "PolicyRefused",
    "RegisteredVersion",
    "arena_environment",
    "evaluate_against_twap",
    "list_versions",
    "register_policy",
    "registered_policy_path",
    "rollback",
    "training_mismatches",
]

REGISTERED_FILE = "registered.json"
WEIGHTS_NAME = "policy.safetensors"
DESCRIPTION_NAME = "policy.json"
REGISTRATION_NAME = "registration.json"
POINTER_SCHEMA_VERSION = 2
REGISTRATION_SCHEMA_VERSION = 1
#: The environment the arena's broker executes on: parent orders sliced over intraday bars.
ARENA_ENV = "replay"
#: Hold-out orders of the quick evaluation (about 3 s for a 64x64 network on one core).
DEFAULT_EPISODES = 200
#: The gate: the paired difference's 95% interval must lie below zero.
GATE_Z = 1.96
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION_DIR = re.compile(r"^v([1-9][0-9]{0,8})$")


class PolicyRefused(ConfigError):
    """A policy the registry will not make the arena's (another market, worse than TWAP)."""


# --------------------------------------------------------------------------- the gate


@dataclass(frozen=True, slots=True, kw_only=True)
class GateEvaluation:
    """A policy against TWAP on the same hold-out orders of the arena's replay environment.

    ``cost_*`` are the noise-free expected costs (bps of arrival value; the gate's figure),
    ``objective_*`` the realised shortfall plus risk term (what ``rl evaluate`` reports). A
    ``*_difference_bps`` is the mean over the orders of policy minus TWAP (negative: the policy
    is cheaper), ``*_se_bps`` its standard error; ``cost_change_pct`` the same as a share of
    TWAP's cost (:func:`rl_exec.evaluate.paired_change_pct`).
    """

    episodes: int
    seed: int
    data: str
    market: str
    env_config_hash: str
    policy_cost_bps: float
    twap_cost_bps: float
    cost_difference_bps: float
    cost_difference_se_bps: float
    cost_change_pct: float
    cost_change_se_pct: float
    policy_objective_bps: float
    twap_objective_bps: float
    objective_difference_bps: float
    objective_difference_se_bps: float

    @property
    def beats_twap(self) -> bool:
        """Whether the 95% interval of the paired cost difference lies below zero."""
        return self.cost_difference_bps + GATE_Z * self.cost_difference_se_bps < 0.0

    def summary(self) -> str:
        """Return the figures in one phrase (for messages and the table)."""
        return (
            f"expected cost {self.policy_cost_bps:.3f} bps vs TWAP {self.twap_cost_bps:.3f} bps, "
            f"paired difference {self.cost_difference_bps:+.3f} +/- "
            f"{self.cost_difference_se_bps:.3f} bps ({self.cost_change_pct:+.2f}% of TWAP's) "
            f"over {self.episodes} hold-out orders of {self.data}"
        )

    def to_json(self) -> dict[str, Any]:
        """Return the stored figures (``beats_twap`` included)."""
        return {
            "episodes": self.episodes,
            "seed": self.seed,
            "data": self.data,
            "market": self.market,
            "env_config_hash": self.env_config_hash,
            "policy_cost_bps": self.policy_cost_bps,
            "twap_cost_bps": self.twap_cost_bps,
            "cost_difference_bps": self.cost_difference_bps,
            "cost_difference_se_bps": self.cost_difference_se_bps,
            "cost_change_pct": self.cost_change_pct,
            "cost_change_se_pct": self.cost_change_se_pct,
            "policy_objective_bps": self.policy_objective_bps,
            "twap_objective_bps": self.twap_objective_bps,
            "objective_difference_bps": self.objective_difference_bps,
            "objective_difference_se_bps": self.objective_difference_se_bps,
            "beats_twap": self.beats_twap,
            "gate": f"cost_difference_bps + {GATE_Z} * cost_difference_se_bps < 0",
        }


def arena_environment(
    env_config: EnvConfig, *, home: LabHome | None = None
) -> tuple[ExecutionEnv, str, EnvConfig]:
    """Return the arena's replay environment on the hold-out days of ``env_config``'s data.

    The environment is ``env_config`` with ``model: replay`` (its ``replay.data`` is the arena's
    data), rewarding the expected cost so that the gate reads the noise-free figure.

    Returns
    -------
    tuple
        The environment, the market code of the data and the replay :class:`EnvConfig` used.
    """
    from rl_exec.train import build_replay_source

    config = env_config.model_copy(update={"model": ARENA_ENV})
    model, market = build_replay_source(config.replay, home=home, holdout=True)
    env = ExecutionEnv(model, n_returns=config.n_returns, reward_mode="expected")
    return env, market, config


def _paired(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    difference = np.asarray(candidate, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    error = float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0
    return float(difference.mean()), error


def evaluate_against_twap(
    policy: ExecutionPolicy,
    env: ExecutionEnv,
    *,
    episodes: int,
    seed: int,
    data: str,
    market: str,
    env_config_hash: str,
) -> GateEvaluation:
    """Evaluate ``policy`` and TWAP on the same ``episodes`` orders of ``env`` (paired).

    ``env`` rewards the expected cost (:func:`arena_environment`): ``reward_costs_bps`` of the
    results are the noise-free costs, ``objectives_bps`` the realised ones.
    """
    if episodes < 2:
        raise ConfigError(f"--episodes must be >= 2 (a paired standard error), got {episodes}")
    learned: EvaluationResult = evaluate_policy(policy, env, episodes=episodes, seed=seed)
    twap = evaluate_policy(TwapPolicy(), env, episodes=episodes, seed=seed)
    cost, cost_error = _paired(learned.reward_costs_bps, twap.reward_costs_bps)
    change, change_error = paired_change_pct(learned.reward_costs_bps, twap.reward_costs_bps)
    objective, objective_error = _paired(learned.objectives_bps, twap.objectives_bps)
    return GateEvaluation(
        episodes=episodes,
        seed=seed,
        data=data,
        market=market,
        env_config_hash=env_config_hash,
        policy_cost_bps=float(learned.reward_costs_bps.mean()),
        twap_cost_bps=float(twap.reward_costs_bps.mean()),
        cost_difference_bps=cost,
        cost_difference_se_bps=cost_error,
        cost_change_pct=change,
        cost_change_se_pct=change_error,
        policy_objective_bps=learned.objective,
        twap_objective_bps=twap.objective,
        objective_difference_bps=objective,
        objective_difference_se_bps=objective_error,
    )


def _trained_market(trained_on: dict[str, Any]) -> str | None:
    """Return the market a description says it was trained on (``None``: it does not say)."""
    market = trained_on.get("market")
    if isinstance(market, str):
        return market
    data = trained_on.get("data")
    if "market" not in trained_on and isinstance(data, str):
        # Written before policies recorded their market: a synthetic spec still names it.
        from simulators.synthetic import SyntheticSpec

        text = data.strip()
        if text.split(":", 1)[0].strip() == "synthetic":
            try:
                return SyntheticSpec.from_spec_string(text).market
            except DataSpecError:
                return None
    return None


def training_mismatches(description: dict[str, Any], *, market: str) -> list[str]:
    """Return why a policy was not trained on the arena's environment and market (or ``[]``).

    Parameters
    ----------
    description:
        The policy's checked description (``trained_on``: ``env``, ``data``, ``market``).
    market:
        The market code of the arena's data.
    """
    trained_on = description.get("trained_on")
    if not isinstance(trained_on, dict):
        return [
            "its description records no 'trained_on' (what it was trained on); re-train it "
            "with `alphaloop rl train --env replay`"
        ]
    reasons = []
    env = trained_on.get("env")
    if env != ARENA_ENV:
        reasons.append(
            f"it was trained on the {env!r} environment, the arena executes on {ARENA_ENV!r} "
            "(intraday bars); re-train it with `alphaloop rl train --env replay`"
        )
        return reasons  # another environment has no market to compare
    trained = _trained_market(trained_on)
    if trained is None:
        reasons.append(
            f"its description records no market it was trained on (trained_on: "
            f"{json.dumps(trained_on)}); re-train it with `alphaloop rl train --env replay`, "
            "which records it"
        )
    elif trained != market:
        reasons.append(
            f"it was trained on market {trained!r} (data {trained_on.get('data')!r}), the "
            f"arena's data is market {market!r}"
        )
    return reasons


def _check_observation(policy: LearnedPolicy, n_returns: int) -> None:
    size = len(obs_fields(n_returns))
    if policy.obs_dim not in (size, len(BASE_OBS_FIELDS)):
        raise PolicyRefused(
            f"{policy.path}: refused: the policy observes {policy.obs_dim} values, the arena's "
            f"environment gives {size} (env.n_returns={size - len(BASE_OBS_FIELDS)}); it "
            "cannot be evaluated or traded with, --force does not change that"
        )


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredVersion:
    """One version in the registry (``version`` 0: registered before versions existed)."""

    name: str
    version: int
    path: Path
    active: bool = False
    registered_at: str | None = None
    source: str | None = None
    sha256: str | None = None
    forced: bool = False
    overridden: tuple[str, ...] = ()
    evaluation: dict[str, Any] | None = field(default=None, repr=False)
    trained_on: dict[str, Any] | None = None
    arena: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """Return ``name v<N>`` (``name (legacy)`` for version 0)."""
        return f"{self.name} v{self.version}" if self.version else f"{self.name} (legacy)"

    def to_json(self) -> dict[str, Any]:
        """Return the version as ``rl registry --json`` prints it."""
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "active": self.active,
            "registered_at": self.registered_at,
            "source": self.source,
            "sha256": self.sha256,
            "forced": self.forced,
            "overridden": list(self.overridden),
            "trained_on": self.trained_on,
            "arena": self.arena,
            "evaluation": self.evaluation,
        }


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f"policy name {name!r} is not allowed (letters, digits, '_', '.', '-'; 1-64 chars)"
        )


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: broken {what} ({exc})") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: broken {what} (not a JSON object)")
    return record


def _entry(record: dict[str, Any], source: Path) -> dict[str, Any]:
    """Return the history entry of a pointer or registration record (checked)."""
    try:
        entry = {
            "name": str(record["name"]),
            "version": int(record.get("version", 0)),
            "path": str(record["path"]),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: broken policy registration (missing or bad {exc})") from None
    for key in ("sha256", "format_version", "source", "registered_at"):
        if key in record:
            entry[key] = record[key]
    return entry


def _read_pointer(lab: LabHome) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Return the pointer (``None`` if nothing is registered) and its activation history."""
    path = lab.policies / REGISTERED_FILE
    if not path.is_file():
        return None, []
    record = _read_json(path, "policy registration")
    schema = record.get("schema_version", 1)
    if schema == 1:  # written before versions: one registration, no history
        return record, [_entry(record, path)]
    if schema != POINTER_SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: policy registration schema_version {schema!r} is not one this lab reads "
            f"(1 or {POINTER_SCHEMA_VERSION}); it was written by a newer lab"
        )
    history = record.get("history")
    if (
        not isinstance(history, list)
        or not history
        or not all(isinstance(item, dict) for item in history)
    ):
        raise ConfigError(
            f"{path}: broken policy registration ('history' must be a non-empty list of objects)"
        )
    return record, [_entry(item, path) for item in history]


def _pointer_text(history: list[dict[str, Any]]) -> str:
    # The active entry's keys stay at the top level, where a reader of the first layout
    # (name, path, sha256, ...) finds them.
    record = {"schema_version": POINTER_SCHEMA_VERSION, **history[-1], "history": history}
    return json.dumps(record, indent=2) + "\n"


def _inside(lab: LabHome, relative: str, source: Path) -> Path:
    path = lab.policies / relative
    if not path.resolve().is_relative_to(lab.policies.resolve()):
        raise ConfigError(
            f"{source}: registered policy path {relative!r} is outside {lab.policies}"
        )
    return path


def registered_policy_path(home: LabHome | None = None) -> Path | None:
    """Return the registered policy's weights file, or ``None`` when nothing is registered.

    Reads both layouts (module docstring).

    Raises
    ------
    ConfigError
        If ``registered.json`` is broken, points outside ``<home>/policies`` or at a missing
        file. (The file's format is checked by the loader, :class:`LearnedPolicy`.)
    """
    lab = home or LabHome.resolve()
    record_path = lab.policies / REGISTERED_FILE
    record, history = _read_pointer(lab)
    if record is None:
        return None
    relative = history[-1]["path"]  # checked by _read_pointer, in both layouts
    path = _inside(lab, relative, record_path)
    if not path.is_file():
        raise ConfigError(f"{record_path}: registered policy {path} is missing")
    return path


def _versions_of(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(
        int(match.group(1))
        for child in folder.iterdir()
        if (match := _VERSION_DIR.match(child.name)) and child.is_dir()
    )


def _fsync_directory(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _publish_version(
    lab: LabHome, name: str, files: PolicyFiles, record: dict[str, Any]
) -> tuple[int, Path]:
    """Write a new version of ``name`` (temp folder, then renamed); return it and its folder."""
    folder = lab.policies / name
    folder.mkdir(parents=True, exist_ok=True)
    versions = _versions_of(folder)
    version = (versions[-1] if versions else 0) + 1
    final = folder / f"v{version}"
    staging = Path(tempfile.mkdtemp(prefix=f".v{version}.", suffix=".tmp", dir=folder))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the registry is readable
        write_policy_files(
            staging / WEIGHTS_NAME,
            staging / DESCRIPTION_NAME,
            files.weights,
            files.description_text,
        )
        record = {**record, "version": version, "path": f"{name}/v{version}/{WEIGHTS_NAME}"}
        atomic_write_text(staging / REGISTRATION_NAME, json.dumps(record, indent=2) + "\n")
        try:
            # A rename onto an existing, non-empty folder fails: never half-replace a version.
            os.replace(staging, final)
        except OSError:
            if final.exists():
                raise ConfigError(
                    f"{final}: another registration took version {version} of {name!r} "
                    "meanwhile; register again"
                ) from None
            raise
        _fsync_directory(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version, final


def register_policy(
    path: str | Path,
    name: str,
    home: LabHome | None = None,
    *,
    env_config: EnvConfig | None = None,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    force: bool = False,
) -> RegisteredVersion:
    """Check a trained policy against the arena, store it as a new version and activate it.

    Parameters
    ----------
    path:
        The policy written by training: ``PATH.safetensors`` (or ``PATH``), its JSON
        description next to it.
    name:
        Registry name (letters, digits, ``_ . -``; at most 64 characters).
    home:
        The lab home (default: resolved from ``$ALPHALOOP_HOME``).
    env_config:
        The arena's environment: its ``replay`` section names the arena's data and fill
        parameters (default: the packaged ``rl_exec.yaml``, the synthetic market the arena
        also defaults to).
    episodes, seed:
        The quick paired evaluation's hold-out orders and their root seed.
    force:
        Register even if the gate refuses; the figures and the reasons overridden are stored
        with ``forced: true``.

    Returns
    -------
    RegisteredVersion
        The new, active version.

    Raises
    ------
    ConfigError
        If the name is not allowed; :class:`~rl_exec.policy_file.PolicyFileError` if the
        policy is not in the lab's format (an SB3 ``.zip``, a pickle), is inconsistent or
        tampered with; :class:`PolicyRefused` if the gate refuses it (without ``force``) or
        the arena's environment cannot give its observation. Nothing is stored then.
    """
    _check_name(name)
    lab = home or LabHome.resolve()
    _read_pointer(lab)  # a broken registry is said before anything is evaluated
    files = read_policy_files(path)
    policy = LearnedPolicy(files)  # refuse to register something the broker could not load
    if env_config is None:
        from rl_exec.config import load_rl_config

        env_config = load_rl_config().env
    env, market, config = arena_environment(env_config, home=lab)
    _check_observation(policy, config.n_returns)
    data = config.replay.data or "synthetic"
    reasons = training_mismatches(files.description, market=market)
    where = f"{files.weights_path}: refused"
    if reasons and not force:
        raise PolicyRefused(
            f"{where}: {'; '.join(reasons)}; --force evaluates and registers it anyway (the "
            "figures and the override are stored with it)"
        )
    evaluation = evaluate_against_twap(
        policy,
        env,
        episodes=episodes,
        seed=seed,
        data=data,
        market=market,
        env_config_hash=config.stable_hash(),
    )
    if not evaluation.beats_twap:
        reasons.append(
            f"it does not beat TWAP on the arena's replay environment: {evaluation.summary()}"
        )
        if not force:
            raise PolicyRefused(
                f"{where}: {'; '.join(reasons)}; --force registers it anyway (the figures and "
                "the override are stored with it)"
            )
    registered_at = datetime.now(UTC).isoformat(timespec="microseconds")
    record: dict[str, Any] = {
        "schema_version": REGISTRATION_SCHEMA_VERSION,
        "name": name,
        "sha256": files.description["weights"]["sha256"],
        "format_version": files.description["format_version"],
        "source": str(files.weights_path.resolve()),
        "registered_at": registered_at,
        "trained_on": files.description.get("trained_on"),
        "arena": {"env": ARENA_ENV, "data": data, "market": market},
        "forced": bool(reasons),
        "overridden": reasons,
        "evaluation": evaluation.to_json(),
    }
    # The pointer is read, extended and rewritten under the registry's lock, so that two
    # registrations (or a registration and a rollback) never drop each other's activation.
    with store_lock(lab, "policies", purpose=f"rl register {name}"):
        _, history = _read_pointer(lab)  # read again: the evaluation took a while
        version, folder = _publish_version(lab, name, files, record)
        entry = _entry(
            {**record, "version": version, "path": f"{name}/v{version}/{WEIGHTS_NAME}"}, folder
        )
        atomic_write_text(lab.policies / REGISTERED_FILE, _pointer_text([*history, entry]))
    return _version_from_record(
        {**record, "version": version, "path": entry["path"]}, lab, active=True
    )


def _version_from_record(
    record: dict[str, Any], lab: LabHome, *, active: bool
) -> RegisteredVersion:
    return RegisteredVersion(
        name=str(record["name"]),
        version=int(record.get("version", 0)),
        path=lab.policies / str(record["path"]),
        active=active,
        registered_at=record.get("registered_at"),
        source=record.get("source"),
        sha256=record.get("sha256"),
        forced=bool(record.get("forced", False)),
        overridden=tuple(record.get("overridden") or ()),
        evaluation=record.get("evaluation"),
        trained_on=record.get("trained_on"),
        arena=record.get("arena"),
    )


def list_versions(home: LabHome | None = None, name: str | None = None) -> list[RegisteredVersion]:
    """Return the registry's versions, oldest first, the active one marked.

    Version 0 of a name is a policy registered before versions (``<name>/policy.safetensors``).

    Raises
    ------
    ConfigError
        If ``name`` has no version in the registry, or a stored record is broken (naming it).
    """
    lab = home or LabHome.resolve()
    pointer, history = _read_pointer(lab)
    active = (history[-1]["name"], history[-1]["version"]) if pointer is not None else None
    versions: list[RegisteredVersion] = []
    legacy = {entry["name"]: entry for entry in history if entry.get("version") == 0}
    folders = (
        sorted(p for p in lab.policies.iterdir() if p.is_dir()) if lab.policies.is_dir() else []
    )
    for folder in folders:
        if not _NAME.match(folder.name):
            continue
        if folder.name in legacy or (folder / WEIGHTS_NAME).is_file():
            entry = legacy.get(
                folder.name,
                {"name": folder.name, "version": 0, "path": f"{folder.name}/{WEIGHTS_NAME}"},
            )
            versions.append(_version_from_record(entry, lab, active=active == (folder.name, 0)))
        for number in _versions_of(folder):
            record_path = folder / f"v{number}" / REGISTRATION_NAME
            record = _read_json(record_path, "policy version record")
            versions.append(
                _version_from_record(
                    {
                        **record,
                        "name": folder.name,
                        "version": number,
                        "path": f"{folder.name}/v{number}/{WEIGHTS_NAME}",
                    },
                    lab,
                    active=active == (folder.name, number),
                )
            )
    versions.sort(key=lambda v: (v.registered_at or "", v.name, v.version))
    if name is not None:
        _check_name(name)
        chosen = [version for version in versions if version.name == name]
        if not chosen:
            known = sorted({version.name for version in versions})
            raise ConfigError(
                f"no registered policy named {name!r} in {lab.policies} "
                f"(registered: {', '.join(known) or 'none'})"
            )
        return chosen
    return versions


def rollback(home: LabHome | None = None) -> tuple[RegisteredVersion, RegisteredVersion]:
    """Make the previously active version the active one again.

    Returns
    -------
    tuple
        The version left and the version now active.

    Raises
    ------
    ConfigError
        If nothing was active before the current version (or nothing is registered), or the
        previous version's files are gone or refused; the registration is left as it was.
    """
    lab = home or LabHome.resolve()
    with store_lock(lab, "policies", purpose="rl rollback"):
        return _rollback(lab)


def _rollback(lab: LabHome) -> tuple[RegisteredVersion, RegisteredVersion]:
    pointer_path = lab.policies / REGISTERED_FILE
    pointer, history = _read_pointer(lab)
    if pointer is None:
        raise ConfigError(f"{pointer_path}: no policy is registered, nothing to roll back")
    if len(history) < 2:
        current = history[-1]
        label = f"{current['name']} v{current['version']}"
        raise ConfigError(
            f"{pointer_path}: nothing was active before {label}, there is no previous version "
            "to roll back to"
        )
    previous = history[-2]
    target = _inside(lab, previous["path"], pointer_path)
    read_policy_files(target)  # the version returned to must still be whole
    atomic_write_text(pointer_path, _pointer_text(history[:-1]))
    by_key = {(v.name, v.version): v for v in list_versions(lab)}
    left = by_key.get((history[-1]["name"], history[-1]["version"]))
    now = by_key.get((previous["name"], previous["version"]))
    if left is None or now is None:  # pragma: no cover - both were just read from the store
        raise ConfigError(f"{pointer_path}: the registry changed during the rollback")
    return left, now


def load_registered_policy(home: LabHome | str | Path | None = None) -> ExecutionPolicy:
    """Return the policy registered in the lab home, or :class:`TwapPolicy` when none is.

    Parameters
    ----------
    home:
        The lab home (default: resolved from ``$ALPHALOOP_HOME``).

    Raises
    ------
    ConfigError
        If the registration is broken or the registered policy is refused
        (:class:`~rl_exec.policy_file.PolicyFileError`: not the lab's format, tampered): the
        arena does not trade with another schedule than the one registered without saying so.
    """
    from rl_exec.registry import REGISTERED_FILE, registered_policy_path

    lab = home if isinstance(home, LabHome) else LabHome.resolve(home)
    path = registered_policy_path(lab)
    if path is None:
        return TwapPolicy()
    try:
        return LearnedPolicy(path)
    except PolicyFileError as exc:
        raise PolicyFileError(
            f"registered execution policy: {exc}; "
            f"or remove {lab.policies / REGISTERED_FILE} to slice orders by TWAP"
        ) from None
