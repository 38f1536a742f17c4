"""No code from data: policies are safetensors weights + a JSON description, never a pickle.

A crafted stable-baselines3 ``policy.zip`` (its ``data`` entry carries a cloudpickle payload)
used to run a shell command at ``rl register`` and at every ``arena run``. These tests build
such a file with a payload that creates a marker file when unpickled and check that neither
path runs it; that a trained policy round-trips bit for bit through the new format; and that
a description or weights file that does not fit is one ``error:`` line, not a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from rl_exec.config import TrainConfig, load_rl_config
from rl_exec.env import obs_fields
from rl_exec.policy import LearnedPolicy, TwapPolicy
from rl_exec.policy_file import (
    PolicyFileError,
    decode_weights,
    encode_weights,
    policy_paths,
    read_policy_files,
)
from rl_exec.registry import load_registered_policy, register_policy
from rl_exec.train import TrainResult, make_env, train_policy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console import one_error, run_cli

ENV = load_rl_config().env
TINY = TrainConfig().model_copy(update={"ppo_n_steps": 64, "ppo_batch_size": 64, "n_envs": 1})
SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
DAY = "2023-06-01"


class _OpenOnLoad:
    """Unpickles into ``open(marker, "w")``: a file appears if anyone unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _payload(marker: Path) -> bytes:
    return pickle.dumps(_OpenOnLoad(marker), protocol=4)


def _crafted_sb3_zip(path: Path, marker: Path) -> Path:
    """Write an SB3-layout ``.zip`` (``data`` with a ``:serialized:`` entry, ``policy.pth``)."""
    payload = _payload(marker)
    data = {
        "policy_class": {
            ":type:": "<class 'abc.ABCMeta'>",
            ":serialized:": base64.b64encode(payload).decode("ascii"),
        },
        "n_envs": 1,
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("policy.pth", payload)
        archive.writestr("pytorch_variables.pth", payload)
        archive.writestr("_stable_baselines3_version", "2.9.2")
    # The metadata JSON an old `rl train` wrote next to its zip.
    path.with_suffix(".json").write_text(json.dumps({"schema_version": 1, "algo": "ppo"}))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainResult]:
    """Tiny PPO (Box and discrete) and SAC policies, with their in-memory models."""
    folder = tmp_path_factory.mktemp("policies")
    runs = {
        "ppo": dict(algo="ppo", timesteps=64, discrete=False),
        "discrete": dict(algo="ppo", timesteps=64, discrete=True),
        "sac": dict(algo="sac", timesteps=120, discrete=False),
    }
    return {
        name: train_policy(
            run["algo"],  # type: ignore[arg-type]
            ENV,
            TINY,
            timesteps=int(run["timesteps"]),  # type: ignore[call-overload]
            seed=0,
            out=folder / name,
            discrete=bool(run["discrete"]),
            log_mlflow=False,
        )
        for name, run in runs.items()
    }


def _copy_policy(source: Path, target: Path) -> Path:
    weights, description = policy_paths(source)
    new_weights, new_description = policy_paths(target)
    new_weights.write_bytes(weights.read_bytes())
    new_description.write_bytes(description.read_bytes())
    return new_weights


# --------------------------------------------------------------------- (a) crafted payloads


def test_crafted_payload_is_live_under_a_naive_unpickler(tmp_path: Path) -> None:
    # The payload the refusal tests use does run when unpickled, so its absence means something.
    probe = tmp_path / "probe"
    pickle.loads(_payload(probe)).close()
    assert probe.exists()


def test_rl_register_crafted_sb3_zip_exits_2_and_runs_nothing(
    tmp_path: Path,
    lab_home: LabHome,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "pwned"
    evil = _crafted_sb3_zip(tmp_path / "policy.zip", marker)
    for given in (evil, evil.with_suffix("")):  # PATH.zip, and PATH where only the zip exists
        code, out, err = run_cli(monkeypatch, capsys, "rl", "register", str(given), "--name", "x")
        line = one_error(code, err)
        if given == evil:
            assert str(evil) in line and "zip archive" in line and "rl train" in line
        else:
            assert "not found" in line
        assert out == ""
    assert not marker.exists()
    assert not (lab_home.policies / "registered.json").exists()
    assert not (lab_home.policies / "x").exists()


@pytest.mark.parametrize("disguise", ["renamed_zip", "raw_pickle", "pkl"])
def test_rl_register_pickle_in_any_disguise_refused(
    disguise: str,
    tmp_path: Path,
    lab_home: LabHome,
    trained: dict[str, TrainResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "pwned"
    # A valid description next to the payload: the weights file's bytes are what is refused.
    weights = _copy_policy(trained["ppo"].path, tmp_path / "pol")
    if disguise == "renamed_zip":
        _crafted_sb3_zip(tmp_path / "evil.zip", marker)
        weights.write_bytes((tmp_path / "evil.zip").read_bytes())
        given, why = weights, "zip archive"
    elif disguise == "raw_pickle":
        weights.write_bytes(_payload(marker))
        given, why = weights, "pickle"
    else:
        given = tmp_path / "pol.pkl"
        given.write_bytes(pickle.dumps({"weights": _OpenOnLoad(marker)}, protocol=2))
        why = "pickle"
    code, _, err = run_cli(monkeypatch, capsys, "rl", "register", str(given), "--name", "x")
    line = one_error(code, err)
    assert str(given) in line and why in line
    assert not marker.exists()
    assert not (lab_home.policies / "registered.json").exists()


def _old_home_with_crafted_policy(home: LabHome, marker: Path) -> Path:
    """An existing home whose registered policy is an (old-format, here crafted) SB3 zip."""
    folder = home.policies / "exec-v1"
    folder.mkdir(parents=True)
    evil = _crafted_sb3_zip(folder / "policy.zip", marker)
    record = {"name": "exec-v1", "path": "exec-v1/policy.zip", "registered_at": "2026-01-01"}
    (home.policies / "registered.json").write_text(json.dumps(record))
    return evil


def test_arena_registered_crafted_policy_refused_runs_nothing(
    tmp_path: Path,
    lab_home: LabHome,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "pwned"
    evil = _old_home_with_crafted_policy(lab_home, marker)
    with pytest.raises(PolicyFileError, match="registered execution policy"):
        load_registered_policy(lab_home)
    # Both ways of wiring the accounts: in-process books, and Ray actors (refused before Ray).
    for mode in (["--local"], []):
        code, _, err = run_cli(
            monkeypatch, capsys, "arena", "run", "--date", DAY, "--data", SPEC, "--json",
            "--no-mlflow", *mode,
        )  # fmt: skip
        line = one_error(code, err)
        assert str(evil) in line and "zip archive" in line
        assert "rl register" in line and "registered.json" in line and "TWAP" in line
    assert not marker.exists()
    assert not lab_home.ledger_db.exists() or not _committed_days(lab_home.ledger_db)


def _committed_days(ledger: Path) -> list[Any]:
    import sqlite3

    with sqlite3.connect(ledger) as db:
        try:
            return db.execute("SELECT * FROM days").fetchall()
        except sqlite3.OperationalError:
            return []


def test_rl_register_crafted_zip_console_script_subprocess(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = _crafted_sb3_zip(tmp_path / "policy.zip", marker)
    home = tmp_path / "home"
    command = [
        sys.executable, "-c", "from alphaloop.cli import main; main()",
        "rl", "register", str(evil), "--name", "evil",
    ]  # fmt: skip
    environment = {**os.environ, "ALPHALOOP_HOME": str(home)}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=environment
    )
    line = one_error(done.returncode, done.stderr)
    assert str(evil) in line and done.stdout == ""
    assert not marker.exists()


def test_arena_without_registration_still_slices_by_twap(lab_home: LabHome) -> None:
    assert isinstance(load_registered_policy(lab_home), TwapPolicy)


# ------------------------------------------------------------------------- (b) round trip


def _observations(discrete: bool, count: int = 256) -> np.ndarray:
    env = make_env(ENV, discrete=discrete)
    rng = np.random.default_rng(7)
    low, high = env.observation_space.low, env.observation_space.high
    sampled = rng.uniform(low, high, size=(count, low.size)).astype(np.float32)
    visited = [env.reset(seed=seed)[0] for seed in range(8)]
    return np.vstack([sampled, np.asarray(visited, dtype=np.float32)])


@pytest.mark.parametrize("name", ["ppo", "discrete", "sac"])
def test_trained_policy_round_trip_bit_identical_actions(
    name: str, trained: dict[str, TrainResult]
) -> None:
    result = trained[name]
    assert result.path.suffix == ".safetensors"
    assert not result.path.with_suffix(".zip").exists()  # no pickle-bearing file is written
    loaded = LearnedPolicy(result.path)
    observations = _observations(result.metadata["discrete"])
    expected, _ = result.agent.predict(observations, deterministic=True)
    actual, _ = loaded.network.predict(observations, deterministic=True)
    assert actual.dtype == expected.dtype and np.array_equal(actual, expected)
    # One observation at a time, as the broker asks (a batch rounds differently in float32).
    for observation in observations[:16]:
        action, _ = result.agent.predict(observation, deterministic=True)
        share = loaded.schedule_fraction(observation)
        if loaded.levels is not None:
            assert share == loaded.levels[int(action)]
        else:
            assert share == float(np.clip(np.float64(action[0]), 0.0, 1.0))
    trained_state = result.agent.policy.state_dict()
    for key, value in loaded.network.state_dict().items():
        assert np.array_equal(value.numpy(), trained_state[key].numpy()), key


def test_description_is_plain_numbers_and_names_what_it_was_trained_on(
    trained: dict[str, TrainResult],
) -> None:
    description = json.loads(trained["ppo"].path.with_suffix(".json").read_text())
    assert description["format"] == "alphaloop.execution_policy"
    assert description["format_version"] == 2
    assert description["observation"]["dim"] == len(obs_fields(ENV.n_returns))
    assert description["action"] == {"kind": "box", "dim": 1, "low": [0.0], "high": [1.0]}
    assert description["network"]["net_arch"] == {"pi": [64, 64], "vf": [64, 64]}
    assert description["network"]["activation"] == "tanh"
    assert description["trained_on"] == {"env": "ac", "data": None, "market": None}
    assert description["env_config_hash"] == ENV.stable_hash()
    weights = trained["ppo"].path.read_bytes()
    assert description["weights"]["sha256"] == hashlib.sha256(weights).hexdigest()
    discrete = json.loads(trained["discrete"].path.with_suffix(".json").read_text())
    assert discrete["action"]["kind"] == "discrete"
    assert discrete["action"]["n"] == len(discrete["share_levels"])


def test_loading_a_policy_never_unpickles(
    trained: dict[str, TrainResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a policy load reached an unpickler")

    for module, name in (
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (torch, "load"),
    ):
        monkeypatch.setattr(module, name, forbidden)
    for result in trained.values():
        LearnedPolicy(result.path).schedule_fraction(_observations(False, 1)[0])


def test_registered_copy_is_what_the_broker_loads(
    lab_home: LabHome, trained: dict[str, TrainResult]
) -> None:
    # Trained on the AC market, so forced past the arena's gate (tests/rl_exec/test_registry.py):
    # what is checked here is the copy.
    target = register_policy(trained["ppo"].path, "exec-v2", lab_home, force=True, episodes=4).path
    assert target == lab_home.policies / "exec-v2" / "v1" / "policy.safetensors"
    record = json.loads((lab_home.policies / "registered.json").read_text())
    assert record["path"] == "exec-v2/v1/policy.safetensors"
    assert record["sha256"] == hashlib.sha256(trained["ppo"].path.read_bytes()).hexdigest()
    loaded = load_registered_policy(lab_home)
    assert isinstance(loaded, LearnedPolicy) and loaded.path == target
    observations = _observations(False, 32)
    expected, _ = trained["ppo"].agent.predict(observations, deterministic=True)
    assert np.array_equal(loaded.network.predict(observations, deterministic=True)[0], expected)


def test_weights_file_is_standard_safetensors() -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"b": np.arange(3, dtype=np.float32), "a": np.ones((2, 2), dtype=np.float32)}
    ours = encode_weights(tensors)
    theirs = safetensors_numpy.load(ours)
    assert set(theirs) == set(tensors)
    assert all(np.array_equal(theirs[k], tensors[k]) for k in tensors)
    back = decode_weights(safetensors_numpy.save(tensors), source=Path("x"))
    assert all(np.array_equal(back[k], tensors[k]) for k in tensors)


# ------------------------------------------------------------- (c) files that do not fit


def _rewrite_description(weights: Path, change: Any) -> None:
    path = weights.with_suffix(".json")
    description = json.loads(path.read_text())
    change(description)
    path.write_text(json.dumps(description))


def _set(keys: str, value: Any) -> Any:
    def change(description: dict[str, Any]) -> None:
        *parents, last = keys.split(".")
        target = description
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _resign(weights: Path, data: bytes) -> None:
    """Write new weight bytes and record their hash: a consistent tampering."""
    weights.write_bytes(data)
    _rewrite_description(weights, _set("weights.sha256", hashlib.sha256(data).hexdigest()))
    _rewrite_description(weights, _set("weights.bytes", len(data)))


def _break(case: str, weights: Path, trained: dict[str, TrainResult]) -> str:
    """Damage a copied policy; return a phrase its error line must contain."""
    if case == "wrong_net_arch":
        _rewrite_description(weights, _set("network.net_arch", {"pi": [32, 32], "vf": [64, 64]}))
        return "mlp_extractor.policy_net.0.weight has shape [64, 10]"
    if case == "wrong_observation_dim":
        _rewrite_description(weights, _set("observation.dim", 12))
        return "observation.low"
    if case == "wrong_obs_sizes_consistently":

        def change(description: dict[str, Any]) -> None:
            description["observation"] = {"dim": 12, "low": [-1.0] * 12, "high": [1.0] * 12}
            description["obs_dim"] = 12

        _rewrite_description(weights, change)
        return "needs [64, 12]"
    if case == "sac_description_on_ppo_weights":
        sac = json.loads(trained["sac"].path.with_suffix(".json").read_text())
        sac["weights"] = json.loads(weights.with_suffix(".json").read_text())["weights"]
        weights.with_suffix(".json").write_text(json.dumps(sac))
        return "do not fit the network"
    if case == "activation_not_allowed":
        _rewrite_description(weights, _set("network.activation", "os.system"))
        return "network.activation"
    if case == "flipped_weight_byte":
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0x40
        weights.write_bytes(bytes(data))
        return "not the ones"
    if case == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:-100])
        return "not the ones"
    if case == "resigned_garbage_header":
        _resign(weights, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"\x00" * 8)
        return "header is not JSON"
    if case == "resigned_overlapping_tensors":
        tensors = decode_weights(weights.read_bytes(), source=weights)
        data = bytearray(encode_weights(tensors))
        (length,) = np.frombuffer(bytes(data[:8]), dtype="<u8")
        header = json.loads(bytes(data[8 : 8 + int(length)]))
        header["log_std"]["data_offsets"] = [0, 4]  # on top of action_net.bias
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        _resign(weights, len(text).to_bytes(8, "little") + text + bytes(data[8 + int(length) :]))
        return "gap/overlap"
    if case == "resigned_float64":
        tensors = decode_weights(weights.read_bytes(), source=weights)
        data = encode_weights(tensors).replace(b'"F32"', b'"F64"', 1)
        _resign(weights, data)
        return "only F32"
    if case == "description_not_json":
        weights.with_suffix(".json").write_text('{"format": ')
        return "not valid JSON"
    if case == "description_nan":
        text = weights.with_suffix(".json").read_text()
        weights.with_suffix(".json").write_text(
            text.replace('"log_std_init": -1.0', '"log_std_init": NaN')
        )
        return "NaN"
    if case == "description_deeply_nested":
        weights.with_suffix(".json").write_text("[" * 100_000 + "]" * 100_000)
        return "not valid JSON"
    if case == "old_format_description":
        weights.with_suffix(".json").write_text(json.dumps({"schema_version": 1, "algo": "ppo"}))
        return "key 'format'"
    if case == "description_missing":
        weights.with_suffix(".json").unlink()
        return "description"
    raise AssertionError(case)


BROKEN = [
    "wrong_net_arch",
    "wrong_observation_dim",
    "wrong_obs_sizes_consistently",
    "sac_description_on_ppo_weights",
    "activation_not_allowed",
    "flipped_weight_byte",
    "truncated_weights",
    "resigned_garbage_header",
    "resigned_overlapping_tensors",
    "resigned_float64",
    "description_not_json",
    "description_nan",
    "description_deeply_nested",
    "old_format_description",
    "description_missing",
]


@pytest.mark.parametrize("case", BROKEN)
def test_policy_that_does_not_fit_is_one_error_line(
    case: str,
    tmp_path: Path,
    lab_home: LabHome,
    trained: dict[str, TrainResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = _copy_policy(trained["ppo"].path, tmp_path / "pol")
    phrase = _break(case, weights, trained)
    code, _, err = run_cli(monkeypatch, capsys, "rl", "register", str(weights), "--name", "x")
    line = one_error(code, err)
    assert phrase in line, line
    assert str(tmp_path) in line  # names the file
    assert not (lab_home.policies / "registered.json").exists()


def test_tampered_registered_policy_refused_by_the_arena_and_evaluate(
    tmp_path: Path,
    lab_home: LabHome,
    trained: dict[str, TrainResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = register_policy(trained["ppo"].path, "exec-v1", lab_home, force=True, episodes=4).path
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(PolicyFileError, match="not the ones"):
        load_registered_policy(lab_home)
    code, _, err = run_cli(
        monkeypatch, capsys, "rl", "evaluate", "--policy", str(target), "--env", "ac",
        "--episodes", "1",
    )  # fmt: skip
    assert str(target) in one_error(code, err)


def test_registered_path_outside_the_registry_refused(lab_home: LabHome, tmp_path: Path) -> None:
    lab_home.policies.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"")
    record = {"name": "x", "path": os.path.relpath(outside, lab_home.policies)}
    (lab_home.policies / "registered.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="outside"):
        load_registered_policy(lab_home)


def test_read_policy_files_checks_without_building(trained: dict[str, TrainResult]) -> None:
    files = read_policy_files(trained["sac"].path.with_suffix(".json"))  # PATH.json works too
    assert files.weights_path == trained["sac"].path
    assert files.description["algo"] == "sac"
