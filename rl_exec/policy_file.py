"""The execution-policy file format: safetensors weights and a JSON description, no pickle.

A trained policy is two files side by side::

    <name>.safetensors   the network's weights
    <name>.json          what the network is and what it was trained on

Nothing a file contains is ever executed or unpickled. The description is read with
:func:`json.loads` and checked key by key; the weights file is parsed by :func:`decode_weights`
(the safetensors layout: an 8-byte little-endian header length, a JSON header giving each
tensor's dtype, shape and byte range, then the raw little-endian float32 values) with numpy from
raw bytes; the network is rebuilt by our code (:func:`build_network`: a stable-baselines3 policy
object of the described architecture, from an allow-list of algorithms and activations) and the
weights are copied into it. Its deterministic actions are those of the trained model, bit for
bit (tested).

A stable-baselines3 ``.zip`` (its ``data`` entry is a cloudpickle payload, which runs code when
loaded), a ``.pkl``, a ``torch.save`` file or anything else that is not this format is refused
with a :class:`PolicyFileError` naming the file and why, before any of it is interpreted.

The description (``format_version`` 2; the keys :func:`check_description` requires)::

    {"format": "alphaloop.execution_policy", "format_version": 2,
     "algo": "ppo" | "sac", "discrete": bool, "share_levels": [float, ...] | null,
     "observation": {"dim": int, "low": [float, ...], "high": [float, ...]},
     "action": {"kind": "box", "dim": int, "low": [...], "high": [...]}
             | {"kind": "discrete", "n": int},
     "network": {"policy": "ActorCriticPolicy" | "SACPolicy",
                 "net_arch": {"pi": [int, ...], "vf" | "qf": [int, ...]},
                 "activation": "tanh" | "relu" | ..., "log_std_init": float,
                 "share_features_extractor": bool,
                 SAC only: "clip_mean": float, "n_critics": int},
     "weights": {"file": "<name>.safetensors", "sha256": "<hex>", "bytes": int},
     "trained_on": {"env": "ac" | "replay", "data": str | null,
                    "market": "cn" | "us" | "crypto" | "none" | null},
     ...training facts (seed, timesteps, env_config and its hash, obs_fields, versions)}
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alphaloop.errors import ConfigError
from alphaloop.files import atomic_write_bytes

POLICY_FORMAT = "alphaloop.execution_policy"
POLICY_FORMAT_VERSION = 2
WEIGHTS_SUFFIX = ".safetensors"
DESCRIPTION_SUFFIX = ".json"
# Suffixes of formats that hold pickled objects: given one, the loader reads that file (to say
# what it is) and refuses it; it never looks for a same-named file in another format instead.
LEGACY_SUFFIXES = (".zip", ".pkl", ".pickle", ".pt", ".pth", ".joblib", ".ckpt", ".bin")
# Execution policies are small (a 64x64 MLP is about 100 KB): anything far larger is not one.
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_DESCRIPTION_BYTES = 4 * 1024 * 1024
MAX_LAYERS = 8
MAX_WIDTH = 4096
MAX_OBS_DIM = 1024
MAX_ACTION_DIM = 16

# The activations a description may name, by name (nothing is imported from a file).
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu", "gelu", "silu")
_NETWORKS = {"ppo": ("ActorCriticPolicy", "vf"), "sac": ("SACPolicy", "qf")}
_RETRAIN = (
    "re-train it with `alphaloop rl train` (which writes PATH.safetensors and PATH.json) and "
    "register that with `alphaloop rl register PATH.safetensors --name NAME`"
)


class PolicyFileError(ConfigError):
    """A policy file is not in the lab's format, or its weights and description disagree."""


def policy_paths(path: str | Path) -> tuple[Path, Path]:
    """Return ``(weights, description)`` for a policy path.

    ``PATH``, ``PATH.safetensors`` and ``PATH.json`` all name the pair ``PATH.safetensors`` +
    ``PATH.json``. A path ending in a pickle-bearing suffix (``.zip``, ``.pkl``, ``.pt``...) is
    returned as the weights file itself so that the loader can say what it is and refuse it.
    """
    base = Path(path)
    suffix = base.suffix.lower()
    if suffix == DESCRIPTION_SUFFIX:
        return base.with_suffix(WEIGHTS_SUFFIX), base
    if suffix == WEIGHTS_SUFFIX or suffix in LEGACY_SUFFIXES:
        return base, base.with_suffix(DESCRIPTION_SUFFIX)
    weights = base.with_name(base.name + WEIGHTS_SUFFIX)
    return weights, weights.with_suffix(DESCRIPTION_SUFFIX)


# --- the weights file (safetensors layout) ---------------------------------------------------


def encode_weights(tensors: Mapping[str, np.ndarray]) -> bytes:
    """Return the safetensors bytes of float32 ``tensors`` (in name order)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = array.tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the format advises
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def _foreign_format(data: bytes) -> str | None:
    """Say what a file that is not a weights file is, from its first bytes (or ``None``)."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return (
            "a zip archive (a stable-baselines3 .zip or a torch.save file: pickled Python "
            "objects, which run code when loaded)"
        )
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "a Python pickle (unpickling runs code)"
    return None


def decode_weights(data: bytes, *, source: Path) -> dict[str, np.ndarray]:
    """Parse safetensors bytes of float32 tensors, strictly.

    Raises
    ------
    PolicyFileError
        If ``data`` is not a safetensors file of float32 tensors that tile its data exactly.
    """

    def bad(why: str) -> PolicyFileError:
        return PolicyFileError(f"{source}: not a policy weights file: {why}")

    foreign = _foreign_format(data)
    if foreign is not None:
        raise PolicyFileError(f"{source}: refused: the file is {foreign}; {_RETRAIN}")
    if len(data) < 8:
        raise bad("shorter than the 8-byte safetensors header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > MAX_HEADER_BYTES or 8 + header_length > len(data):
        raise bad(f"header length {header_length} does not fit the file ({len(data)} bytes)")
    try:
        header = json.loads(
            data[8 : 8 + header_length].decode("utf-8"), parse_constant=_refuse_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    body = memoryview(data)[8 + header_length :]
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name!r}: expected exactly dtype, shape and data_offsets")
        if entry["dtype"] != "F32":
            raise bad(f"tensor {name!r}: dtype {entry['dtype']!r} (only F32 is allowed)")
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and all(_is_count(n, 0) for n in shape)):
            raise bad(f"tensor {name!r}: shape {shape!r} is not a list of sizes")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_count(n, 0) for n in offsets)
        ):
            raise bad(f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end]")
        begin, end = offsets
        if end - begin != 4 * math.prod(shape) or end > len(body):
            raise bad(f"tensor {name!r}: bytes [{begin}, {end}) do not hold a {shape} float32")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(shape).copy()
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise bad(f"tensor {name!r} starts at byte {begin}, expected {position} (gap/overlap)")
        position = end
    if position != len(body):
        raise bad(f"{len(body) - position} bytes after the last tensor")
    return tensors


def _is_count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# --- the description --------------------------------------------------------------------------


def _activation_classes() -> dict[str, Any]:
    from torch import nn

    return {
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "elu": nn.ELU,
        "leaky_relu": nn.LeakyReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
    }


def describe_network(algo: str, policy: Any) -> dict[str, Any]:
    """Return the ``network`` entry of the description of a trained stable-baselines3 policy."""
    parameters = policy._get_constructor_parameters()
    names = {cls: name for name, cls in _activation_classes().items()}
    activation = names.get(parameters["activation_fn"])
    if activation is None:
        raise ConfigError(f"activation {parameters['activation_fn']!r} cannot be saved")
    if parameters.get("use_sde"):
        raise ConfigError("a policy trained with gSDE (use_sde) cannot be saved")
    net_arch = parameters["net_arch"]
    policy_name, critic = _NETWORKS[algo]
    if isinstance(net_arch, dict):
        arch = {"pi": list(net_arch["pi"]), critic: list(net_arch[critic])}
    else:
        arch = {"pi": list(net_arch), critic: list(net_arch)}
    network: dict[str, Any] = {
        "policy": policy_name,
        "net_arch": arch,
        "activation": activation,
        "log_std_init": float(parameters.get("log_std_init", 0.0)),
        "share_features_extractor": bool(
            getattr(policy, "share_features_extractor", algo == "ppo")
        ),
    }
    if algo == "sac":
        network["clip_mean"] = float(parameters["clip_mean"])
        network["n_critics"] = int(parameters["n_critics"])
    return network


def describe_spaces(observation_space: Any, action_space: Any) -> dict[str, Any]:
    """Return the ``observation`` and ``action`` entries of a description, as plain numbers."""
    from gymnasium import spaces

    observation = {
        "dim": int(observation_space.shape[0]),
        "low": [float(v) for v in observation_space.low],
        "high": [float(v) for v in observation_space.high],
    }
    if isinstance(action_space, spaces.Discrete):
        action: dict[str, Any] = {"kind": "discrete", "n": int(action_space.n)}
    else:
        action = {
            "kind": "box",
            "dim": int(action_space.shape[0]),
            "low": [float(v) for v in action_space.low],
            "high": [float(v) for v in action_space.high],
        }
    return {"observation": observation, "action": action}


class _Checker:
    """Read typed values from a description, each failure naming the file and the key."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, key: str, why: str) -> PolicyFileError:
        return PolicyFileError(f"{self.source}: key '{key}' {why}")

    def table(self, parent: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
        value = parent.get(key)
        if not isinstance(value, dict):
            raise self.fail(where + key, f"must be an object, got {_short(value)}")
        return value

    def count(
        self, parent: Mapping[str, Any], key: str, low: int, high: int, where: str = ""
    ) -> int:
        value: Any = parent.get(key)
        if not _is_count(value, low) or value > high:
            raise self.fail(
                where + key, f"must be a whole number in [{low}, {high}], got {_short(value)}"
            )
        return int(value)

    def flag(self, parent: Mapping[str, Any], key: str, where: str = "") -> bool:
        value = parent.get(key)
        if not isinstance(value, bool):
            raise self.fail(where + key, f"must be true or false, got {_short(value)}")
        return value

    def number(
        self, parent: Mapping[str, Any], key: str, low: float, high: float, where: str = ""
    ) -> float:
        value = parent.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(
                where + key, f"must be a number in [{low}, {high}], got {_short(value)}"
            )
        return float(value)

    def numbers(
        self, parent: Mapping[str, Any], key: str, size: int, where: str = ""
    ) -> list[float]:
        value = parent.get(key)
        if (
            not isinstance(value, list)
            or len(value) != size
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(where + key, f"must be a list of {size} numbers, got {_short(value)}")
        return [float(v) for v in value]

    def layers(self, parent: Mapping[str, Any], key: str, where: str = "") -> list[int]:
        value = parent.get(key)
        if (
            not isinstance(value, list)
            or len(value) > MAX_LAYERS
            or not all(_is_count(v, 1) and v <= MAX_WIDTH for v in value)
        ):
            raise self.fail(
                where + key,
                f"must be a list of at most {MAX_LAYERS} layer widths in [1, {MAX_WIDTH}], "
                f"got {_short(value)}",
            )
        return list(value)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_description(description: Any, *, source: Path) -> dict[str, Any]:
    """Check a parsed description against the format; return it unchanged.

    Raises
    ------
    PolicyFileError
        Naming ``source`` and the first key that is missing, of the wrong type or out of range.
    """
    check = _Checker(source)
    if not isinstance(description, dict):
        raise PolicyFileError(f"{source}: a policy description must be a JSON object")
    if description.get("format") != POLICY_FORMAT:
        raise PolicyFileError(
            f"{source}: not a policy description of this lab's format (key 'format' must be "
            f"{POLICY_FORMAT!r}; a description without it belongs to an old stable-baselines3 "
            f".zip policy, which is no longer loaded); {_RETRAIN}"
        )
    if description.get("format_version") != POLICY_FORMAT_VERSION:
        raise check.fail(
            "format_version",
            f"must be {POLICY_FORMAT_VERSION}, got {_short(description.get('format_version'))}",
        )
    algo = description.get("algo")
    if algo not in _NETWORKS:
        raise check.fail("algo", f"must be 'ppo' or 'sac', got {_short(algo)}")
    discrete = check.flag(description, "discrete")
    observation = check.table(description, "observation")
    dim = check.count(observation, "dim", 1, MAX_OBS_DIM, "observation.")
    low = check.numbers(observation, "low", dim, "observation.")
    high = check.numbers(observation, "high", dim, "observation.")
    if not all(
        math.isfinite(a) and math.isfinite(b) and a <= b for a, b in zip(low, high, strict=True)
    ):
        raise check.fail("observation", "bounds must be finite with low <= high")
    if "obs_dim" in description and description["obs_dim"] != dim:
        raise check.fail(
            "obs_dim", f"is {_short(description['obs_dim'])}, observation.dim is {dim}"
        )
    action = check.table(description, "action")
    if discrete:
        if algo != "ppo":
            raise check.fail("discrete", "a SAC policy has a continuous action")
        if action.get("kind") != "discrete":
            raise check.fail("action.kind", "must be 'discrete' for a discrete policy")
        n = check.count(action, "n", 2, 64, "action.")
        levels = check.numbers(description, "share_levels", n)
        if not all(0.0 <= level <= 1.0 for level in levels):
            raise check.fail("share_levels", "must all be in [0, 1]")
    else:
        if action.get("kind") != "box":
            raise check.fail("action.kind", "must be 'box' for a continuous policy")
        size = check.count(action, "dim", 1, MAX_ACTION_DIM, "action.")
        a_low = check.numbers(action, "low", size, "action.")
        a_high = check.numbers(action, "high", size, "action.")
        if not all(
            math.isfinite(a) and math.isfinite(b) and a < b
            for a, b in zip(a_low, a_high, strict=True)
        ):
            raise check.fail("action", "bounds must be finite with low < high")
        if description.get("share_levels") is not None:
            raise check.fail("share_levels", "must be null for a continuous policy")
    network = check.table(description, "network")
    policy_name, critic = _NETWORKS[str(algo)]
    if network.get("policy") != policy_name:
        raise check.fail(
            "network.policy",
            f"must be {policy_name!r} for {algo}, got {_short(network.get('policy'))}",
        )
    arch = check.table(network, "net_arch", "network.")
    if set(arch) != {"pi", critic}:
        raise check.fail("network.net_arch", f"must have exactly the keys 'pi' and {critic!r}")
    check.layers(arch, "pi", "network.net_arch.")
    check.layers(arch, critic, "network.net_arch.")
    if network.get("activation") not in ACTIVATIONS:
        raise check.fail(
            "network.activation",
            f"must be one of {', '.join(ACTIVATIONS)}, got {_short(network.get('activation'))}",
        )
    check.number(network, "log_std_init", -20.0, 20.0, "network.")
    check.flag(network, "share_features_extractor", "network.")
    if algo == "sac":
        check.number(network, "clip_mean", 0.0, 100.0, "network.")
        check.count(network, "n_critics", 1, 10, "network.")
    weights = check.table(description, "weights")
    digest = weights.get("sha256")
    if not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        raise check.fail("weights.sha256", f"must be 64 lowercase hex digits, got {_short(digest)}")
    check.count(weights, "bytes", 8, MAX_WEIGHTS_BYTES, "weights.")
    return description


# --- reading, writing, rebuilding -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyFiles:
    """A policy read from disk and checked: its description and its weights' bytes."""

    weights_path: Path
    description_path: Path
    description: dict[str, Any]
    weights: bytes
    description_text: str


def _read_capped(path: Path, limit: int, what: str) -> bytes:
    if not path.is_file():
        raise PolicyFileError(f"{path}: policy {what} not found")
    size = path.stat().st_size
    if size > limit:
        raise PolicyFileError(
            f"{path}: policy {what} is {size} bytes, more than the {limit} allowed"
        )
    return path.read_bytes()


def read_policy_files(path: str | Path) -> PolicyFiles:
    """Read and check a policy's two files (nothing is built or executed).

    The weights file is read first, so that a pickle-bearing file is refused for what it is.

    Raises
    ------
    PolicyFileError
        If a file is missing, too large, of another format (a stable-baselines3 ``.zip``, a
        pickle, ...), if the description breaks the format or if the weights are not the ones
        it describes (size or SHA-256).
    """
    weights_path, description_path = policy_paths(path)
    weights = _read_capped(weights_path, MAX_WEIGHTS_BYTES, "weights file")
    foreign = _foreign_format(weights[:8])
    if foreign is not None:
        raise PolicyFileError(f"{weights_path}: refused: the file is {foreign}; {_RETRAIN}")
    if weights_path.suffix.lower() in LEGACY_SUFFIXES:
        raise PolicyFileError(
            f"{weights_path}: refused: a {weights_path.suffix} file is not a policy of this "
            f"lab's format; {_RETRAIN}"
        )
    raw = _read_capped(
        description_path, MAX_DESCRIPTION_BYTES, "description (JSON next to the weights)"
    )
    try:
        text = raw.decode("utf-8")
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PolicyFileError(f"{description_path}: not valid JSON ({exc})") from None
    description = check_description(parsed, source=description_path)
    recorded = description["weights"]
    if (
        len(weights) != recorded["bytes"]
        or hashlib.sha256(weights).hexdigest() != recorded["sha256"]
    ):
        raise PolicyFileError(
            f"{weights_path}: the weights are not the ones {description_path.name} describes "
            f"({len(weights)} bytes, SHA-256 {hashlib.sha256(weights).hexdigest()[:12]}...; "
            f"described: {recorded['bytes']} bytes, {recorded['sha256'][:12]}...): the file was "
            f"changed or belongs to another policy; {_RETRAIN}"
        )
    return PolicyFiles(weights_path, description_path, description, weights, text)


def write_policy_files(
    weights_path: Path, description_path: Path, weights: bytes, description_text: str
) -> None:
    """Write a policy's two files atomically each (weights first: the description names them)."""
    atomic_write_bytes(weights_path, weights)
    atomic_write_bytes(description_path, description_text.encode("utf-8"))


def save_policy(
    out: str | Path, *, algo: str, discrete: bool, policy: Any, facts: Mapping[str, Any]
) -> tuple[Path, dict[str, Any]]:
    """Save a trained stable-baselines3 policy in the lab's format.

    Parameters
    ----------
    out:
        ``PATH`` (or ``PATH.safetensors``): writes ``PATH.safetensors`` and ``PATH.json``.
    algo, discrete:
        The algorithm and whether the action is the discrete menu.
    policy:
        The trained ``agent.policy`` (its ``state_dict`` is saved, float32).
    facts:
        Further keys of the description (training facts; ``share_levels`` for a discrete one).

    Returns
    -------
    tuple[Path, dict]
        The weights file and the description written next to it.
    """
    weights_path, description_path = policy_paths(out)
    if weights_path.suffix.lower() != WEIGHTS_SUFFIX:
        raise ConfigError(f"--out {out}: a policy is saved as PATH{WEIGHTS_SUFFIX} + PATH.json")
    tensors = {
        name: value.detach().cpu().numpy().astype(np.float32, copy=False)
        for name, value in policy.state_dict().items()
    }
    weights = encode_weights(tensors)
    description: dict[str, Any] = dict(facts)
    description.update(
        {
            "format": POLICY_FORMAT,
            "format_version": POLICY_FORMAT_VERSION,
            "schema_version": POLICY_FORMAT_VERSION,
            "algo": algo,
            "discrete": discrete,
            **describe_spaces(policy.observation_space, policy.action_space),
            "network": describe_network(algo, policy),
            "weights": {
                "file": weights_path.name,
                "sha256": hashlib.sha256(weights).hexdigest(),
                "bytes": len(weights),
            },
        }
    )
    check_description(description, source=description_path)
    text = json.dumps(description, indent=2, sort_keys=True) + "\n"
    write_policy_files(weights_path, description_path, weights, text)
    return weights_path, description


def _zero_schedule(_progress: float) -> float:
    return 0.0


def build_network(files: PolicyFiles) -> Any:
    """Rebuild the described stable-baselines3 policy and load the weights into it.

    Returns
    -------
    stable_baselines3.common.policies.BasePolicy
        In evaluation mode; ``predict(obs, deterministic=True)`` gives the trained actions.

    Raises
    ------
    PolicyFileError
        If the weights file is malformed or its tensors are not those of the described network
        (a name missing or extra, a shape that differs).
    """
    import torch
    from gymnasium import spaces

    description = files.description
    tensors = decode_weights(files.weights, source=files.weights_path)
    obs, act, network = description["observation"], description["action"], description["network"]
    observation_space = spaces.Box(
        low=np.asarray(obs["low"], dtype=np.float32),
        high=np.asarray(obs["high"], dtype=np.float32),
        dtype=np.float32,
    )
    action_space: Any
    if act["kind"] == "discrete":
        action_space = spaces.Discrete(int(act["n"]))
    else:
        action_space = spaces.Box(
            low=np.asarray(act["low"], dtype=np.float32),
            high=np.asarray(act["high"], dtype=np.float32),
            dtype=np.float32,
        )
    activation = _activation_classes()[network["activation"]]
    arch = {key: list(value) for key, value in network["net_arch"].items()}
    # Building draws initial weights from torch's global generator; leave it as it was.
    with torch.random.fork_rng(devices=[]):
        if description["algo"] == "ppo":
            from stable_baselines3.common.policies import ActorCriticPolicy

            policy: Any = ActorCriticPolicy(
                observation_space,
                action_space,
                _zero_schedule,
                net_arch=arch,
                activation_fn=activation,
                ortho_init=False,
                log_std_init=float(network["log_std_init"]),
                share_features_extractor=bool(network["share_features_extractor"]),
            )
        else:
            from stable_baselines3.sac.policies import SACPolicy

            policy = SACPolicy(
                observation_space,
                action_space,
                _zero_schedule,
                net_arch=arch,
                activation_fn=activation,
                log_std_init=float(network["log_std_init"]),
                clip_mean=float(network["clip_mean"]),
                n_critics=int(network["n_critics"]),
                share_features_extractor=bool(network["share_features_extractor"]),
            )
    expected = {name: tuple(value.shape) for name, value in policy.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise PolicyFileError(
            f"{files.weights_path}: the weights do not fit the network "
            f"{files.description_path.name} describes (missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(extra) or 'none'})"
        )
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise PolicyFileError(
                f"{files.weights_path}: tensor {name} has shape {list(tensors[name].shape)}, the "
                f"network {files.description_path.name} describes (observation dim {obs['dim']}, "
                f"net_arch {arch}) needs {list(shape)}"
            )
    state = {name: torch.from_numpy(array) for name, array in tensors.items()}
    policy.load_state_dict(state, strict=True)
    policy.set_training_mode(False)
    return policy
