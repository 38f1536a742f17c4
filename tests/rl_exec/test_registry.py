"""The policy registry: the gate (environment, market, TWAP), atomic versions, list, rollback.

The policies the gate is checked with are honest networks in the lab's format: a tiny PPO
trained on the AC market (another environment), PPO networks with no hidden layer whose action
is set by hand (one follows the usual volume profile, as VWAP does, which is cheaper than TWAP
on a U-shaped day; one leaves everything to the last step, where the participation cap leaves
most of the order unfilled) and a replay PPO after a few hundred steps.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alphaloop.home import LabHome
from rl_exec.config import TrainConfig, load_rl_config
from rl_exec.env import obs_fields
from rl_exec.evaluate import evaluate_policy
from rl_exec.policy import LearnedPolicy, TwapPolicy, VwapPolicy
from rl_exec.policy_file import save_policy
from rl_exec.registry import (
    PolicyRefused,
    arena_environment,
    list_versions,
    load_registered_policy,
    register_policy,
    rollback,
)
from rl_exec.train import TrainResult, make_env, train_policy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console import one_error, run_cli

ENV = load_rl_config().env
TINY = TrainConfig().model_copy(update={"ppo_n_steps": 64, "ppo_batch_size": 64, "n_envs": 1})
FIELDS = obs_fields(ENV.n_returns)
EPISODES = 60
ARENA_MARKET = "none"  # the market of the default synthetic data (`--data synthetic`)
REPLAY_ON_ARENA = {"env": "replay", "data": "synthetic", "market": ARENA_MARKET}


def _linear_policy(
    out: Path, *, trained_on: dict[str, Any] | None, bias: float, follow: str | None = None
) -> Path:
    """Save a PPO network without hidden layers: action = bias (+ the field ``follow``)."""
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticPolicy

    network = ActorCriticPolicy(
        make_env(ENV).observation_space,
        spaces.Box(0.0, 1.0, (1,), dtype=np.float32),
        lambda _: 0.0,
        net_arch={"pi": [], "vf": []},
        activation_fn=torch.nn.Tanh,
        ortho_init=False,
        log_std_init=-1.0,
    )
    with torch.no_grad():
        network.action_net.weight.zero_()
        network.action_net.bias.fill_(bias)
        if follow is not None:
            network.action_net.weight[0, FIELDS.index(follow)] = 1.0
    facts: dict[str, Any] = {"share_levels": None, "obs_fields": list(FIELDS)}
    if trained_on is not None:
        facts["trained_on"] = trained_on
    path, _ = save_policy(out, algo="ppo", discrete=False, policy=network, facts=facts)
    return path


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("registry-policies")
    made = {
        "vwap_like": _linear_policy(
            folder / "vwap_like", trained_on=REPLAY_ON_ARENA, bias=0.0, follow="vwap_share"
        ),
        "all_at_end": _linear_policy(folder / "all_at_end", trained_on=REPLAY_ON_ARENA, bias=0.0),
        "vwap_like_cn": _linear_policy(
            folder / "vwap_like_cn",
            trained_on={"env": "replay", "data": "synthetic:market=cn", "market": "cn"},
            bias=0.0,
            follow="vwap_share",
        ),
        # Written before policies recorded their market: a synthetic spec still names it.
        "old_cn": _linear_policy(
            folder / "old_cn",
            trained_on={"env": "replay", "data": "synthetic:market=cn"},
            bias=0.0,
            follow="vwap_share",
        ),
        "old_real_data": _linear_policy(
            folder / "old_real_data",
            trained_on={"env": "replay", "data": "bars/sse_1min.csv"},
            bias=0.0,
            follow="vwap_share",
        ),
    }
    ac: TrainResult = train_policy(
        "ppo", ENV, TINY, timesteps=64, seed=0, out=folder / "ac", log_mlflow=False
    )
    made["ac"] = ac.path
    return made


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) with its bytes."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _register(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: Path,
    name: str,
    *extra: str,
) -> tuple[int, str, str]:
    return run_cli(
        monkeypatch, capsys, "rl", "register", str(path), "--name", name,
        "--episodes", str(EPISODES), *extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- the gate


def test_register_policy_trained_on_ac_refused_names_the_environment(
    lab_home: LabHome,
    policies: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _snapshot(lab_home.policies)
    code, out, err = _register(monkeypatch, capsys, policies["ac"], "ac-policy")
    line = one_error(code, err)
    assert str(policies["ac"]) in line
    assert "'ac' environment" in line and "'replay'" in line and "--force" in line
    assert out == ""
    assert _snapshot(lab_home.policies) == before
    assert isinstance(load_registered_policy(lab_home), TwapPolicy)


@pytest.mark.parametrize(
    ("policy", "phrase"),
    [
        ("vwap_like_cn", "market 'cn'"),
        ("old_cn", "market 'cn'"),  # derived from the synthetic spec of an older description
        ("old_real_data", "records no market"),
    ],
)
def test_register_policy_of_another_market_refused(
    policy: str,
    phrase: str,
    lab_home: LabHome,
    policies: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _snapshot(lab_home.policies)
    code, _, err = _register(monkeypatch, capsys, policies[policy], "other-market")
    line = one_error(code, err)
    assert phrase in line and str(policies[policy]) in line
    if policy != "old_real_data":
        assert "arena's data is market 'none'" in line
    assert _snapshot(lab_home.policies) == before


def test_register_policy_worse_than_twap_refused_and_better_one_accepted(
    lab_home: LabHome,
    policies: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Worse: everything at the last step, where the participation cap leaves most unfilled.
    before = _snapshot(lab_home.policies)
    code, _, err = _register(monkeypatch, capsys, policies["all_at_end"], "worse")
    line = one_error(code, err)
    assert "does not beat TWAP" in line and "paired difference +" in line
    assert _snapshot(lab_home.policies) == before

    # Better: the control, same environment and market, accepted.
    code, out, err = _register(monkeypatch, capsys, policies["vwap_like"], "better", "--json")
    assert code == 0, err
    version = json.loads(out)
    assert version["active"] is True and version["forced"] is False
    assert version["path"] == str(lab_home.policies / "better" / "v1" / "policy.safetensors")
    loaded = load_registered_policy(lab_home)
    assert isinstance(loaded, LearnedPolicy) and loaded.path == Path(version["path"])

    # The stored figures are what an evaluation of VWAP and TWAP by hand on the arena's
    # hold-out orders gives (the network follows the same volume share, in float32).
    env, _, _ = arena_environment(ENV.model_copy(update={"model": "replay"}), home=lab_home)
    vwap = evaluate_policy(VwapPolicy(), env, episodes=EPISODES, seed=0)
    twap = evaluate_policy(TwapPolicy(), env, episodes=EPISODES, seed=0)
    by_hand = vwap.reward_costs_bps - twap.reward_costs_bps
    figures = version["evaluation"]
    assert figures["twap_cost_bps"] == pytest.approx(twap.reward_costs_bps.mean(), rel=1e-12)
    assert figures["cost_difference_bps"] == pytest.approx(by_hand.mean(), abs=1e-3)
    assert figures["cost_difference_bps"] + 1.96 * figures["cost_difference_se_bps"] < 0
    assert figures["beats_twap"] is True and figures["episodes"] == EPISODES


def test_register_untrained_replay_policy_refused(
    lab_home: LabHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A replay PPO after one small rollout: trained on the arena's environment and market
    # (what it records says so) but not yet better than TWAP.
    monkeypatch.setenv("ALPHALOOP_HOME", str(lab_home.root))
    replay = ENV.model_copy(update={"model": "replay"})
    result = train_policy(
        "ppo", replay, TINY, timesteps=64, seed=0, out=tmp_path / "untrained", log_mlflow=False
    )
    assert result.metadata["trained_on"] == REPLAY_ON_ARENA
    with pytest.raises(PolicyRefused, match="does not beat TWAP"):
        register_policy(result.path, "untrained", lab_home, episodes=EPISODES)
    assert not (lab_home.policies / "untrained").exists()


def test_register_force_stores_the_figures_and_the_override(
    lab_home: LabHome,
    policies: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _register(monkeypatch, capsys, policies["all_at_end"], "late", "--force")
    assert code == 0, err
    assert "forced: it does not beat TWAP" in out
    record = json.loads((lab_home.policies / "late" / "v1" / "registration.json").read_text())
    assert record["forced"] is True
    assert len(record["overridden"]) == 1 and "does not beat TWAP" in record["overridden"][0]
    figures = record["evaluation"]
    assert figures["beats_twap"] is False
    # Most of the order is unfilled and pays the 50 bps penalty: far dearer than TWAP.
    assert figures["cost_difference_bps"] > 10.0
    assert figures["policy_cost_bps"] > figures["twap_cost_bps"]
    assert record["arena"] == {"env": "replay", "data": "synthetic", "market": ARENA_MARKET}
    assert load_registered_policy(lab_home).path == lab_home.policies / "late/v1/policy.safetensors"

    # Another environment, forced: the override says which check it overrode.
    code, out, err = _register(monkeypatch, capsys, policies["ac"], "ac-forced", "--force")
    assert code == 0, err
    record = json.loads((lab_home.policies / "ac-forced" / "v1" / "registration.json").read_text())
    assert record["forced"] is True and "'ac' environment" in record["overridden"][0]
    assert record["trained_on"]["env"] == "ac"


# --------------------------------------------------------------------------- atomicity


def _crash_on(monkeypatch: pytest.MonkeyPatch, target: str) -> list[str]:
    """Make ``os.replace`` onto a path named ``target`` raise (a crash at that step)."""
    real = os.replace
    seen: list[str] = []

    def replace(source: Any, destination: Any) -> None:
        seen.append(Path(destination).name)
        if Path(destination).name == target:
            raise OSError(f"injected crash before {target}")
        real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    return seen


@pytest.mark.parametrize("step", ["v1", "registered.json"])
def test_register_crash_between_steps_leaves_the_old_registration(
    step: str, lab_home: LabHome, policies: dict[str, Path]
) -> None:
    first = register_policy(policies["vwap_like"], "first", lab_home, episodes=EPISODES)
    pointer = (lab_home.policies / "registered.json").read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        seen = _crash_on(patch, step)
        with pytest.raises(OSError, match="injected crash"):
            register_policy(policies["vwap_like"], "second", lab_home, episodes=EPISODES)
    assert step in seen
    assert (lab_home.policies / "registered.json").read_bytes() == pointer
    loaded = load_registered_policy(lab_home)
    assert isinstance(loaded, LearnedPolicy) and loaded.path == first.path
    active = [v for v in list_versions(lab_home) if v.active]
    assert [(v.name, v.version) for v in active] == [("first", 1)]
    second = lab_home.policies / "second"
    if step == "v1":  # the version folder was never published, its staging folder is gone
        assert list(second.iterdir()) == []
    else:  # published, whole, but not active
        assert sorted(p.name for p in (second / "v1").iterdir()) == [
            "policy.json",
            "policy.safetensors",
            "registration.json",
        ]


# --------------------------------------------------------------------------- list, rollback


def test_registry_lists_versions_with_evaluation_and_rollback_returns_to_the_previous(
    lab_home: LabHome,
    policies: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "rl", "rollback")
    assert "no policy is registered" in one_error(code, err)

    assert _register(monkeypatch, capsys, policies["vwap_like"], "exec")[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, "rl", "rollback")
    assert "no previous version" in one_error(code, err)
    assert _register(monkeypatch, capsys, policies["all_at_end"], "exec", "--force")[0] == 0

    code, out, err = run_cli(monkeypatch, capsys, "rl", "registry", "--json")
    assert code == 0, err
    versions = json.loads(out)["versions"]
    assert [(v["name"], v["version"], v["active"], v["forced"]) for v in versions] == [
        ("exec", 1, False, False),
        ("exec", 2, True, True),
    ]
    assert versions[0]["evaluation"]["beats_twap"] is True
    assert versions[1]["evaluation"]["beats_twap"] is False
    code, out, err = run_cli(monkeypatch, capsys, "rl", "registry")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "│ exec │" in line]
    assert len(rows) == 2 and "*" in rows[1] and "*" not in rows[0]

    code, out, err = run_cli(monkeypatch, capsys, "rl", "rollback")
    assert code == 0, err
    assert "from exec v2 to exec v1" in out
    assert load_registered_policy(lab_home).path == lab_home.policies / "exec/v1/policy.safetensors"
    assert [v.active for v in list_versions(lab_home)] == [True, False]
    pointer = (lab_home.policies / "registered.json").read_bytes()
    code, _, err = run_cli(monkeypatch, capsys, "rl", "rollback")
    assert "no previous version" in one_error(code, err)
    assert (lab_home.policies / "registered.json").read_bytes() == pointer


def test_registry_bad_input_is_one_error_line_and_changes_nothing(
    lab_home: LabHome,
    policies: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_policy(policies["vwap_like"], "exec", lab_home, episodes=EPISODES)
    before = _snapshot(lab_home.policies)
    missing = tmp_path / "missing.safetensors"
    cases = [
        (("rl", "registry", "--name", "nobody"), ["'nobody'", str(lab_home.policies), "exec"]),
        (("rl", "register", str(missing), "--name", "x"), [str(missing), "not found"]),
        (("rl", "register", str(policies["vwap_like"]), "--name", "../x"), ["'../x'"]),
        (
            ("rl", "register", str(policies["vwap_like"]), "--name", "x", "--episodes", "1"),
            ["--episodes"],
        ),
    ]
    for args, phrases in cases:
        code, out, err = run_cli(monkeypatch, capsys, *args)
        line = one_error(code, err)
        assert all(phrase in line for phrase in phrases), line
        assert out == ""
    assert _snapshot(lab_home.policies) == before

    # A broken pointer: every command names it, nothing is written.
    pointer = lab_home.policies / "registered.json"
    pointer.write_text('{"schema_version": 2, "name": ')
    broken = _snapshot(lab_home.policies)
    for args in (
        ("rl", "registry", "--json"),
        ("rl", "rollback"),
        ("rl", "register", str(policies["vwap_like"]), "--name", "x"),
    ):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        line = one_error(code, err)
        assert str(pointer) in line and "broken" in line, line
    assert _snapshot(lab_home.policies) == broken


# --------------------------------------------------------------------------- old homes


def _home_registered_before_versions(home: LabHome, policy: Path) -> Path:
    """Write what `rl register` wrote before versions (commit c7a391f's register_policy)."""
    folder = home.policies / "exec-v1"
    folder.mkdir(parents=True)
    weights = folder / "policy.safetensors"
    weights.write_bytes(policy.read_bytes())
    description = policy.with_suffix(".json").read_text()
    (folder / "policy.json").write_text(description)
    record = {
        "name": "exec-v1",
        "path": "exec-v1/policy.safetensors",
        "sha256": json.loads(description)["weights"]["sha256"],
        "format_version": 2,
        "source": str(policy),
        "registered_at": "2026-11-20T10:00:00+00:00",
    }
    (home.policies / "registered.json").write_text(json.dumps(record, indent=2) + "\n")
    return weights


def test_home_registered_before_versions_loads_lists_and_is_rolled_back_to(
    lab_home: LabHome, policies: dict[str, Path]
) -> None:
    old = _home_registered_before_versions(lab_home, policies["ac"])
    loaded = load_registered_policy(lab_home)
    assert isinstance(loaded, LearnedPolicy) and loaded.path == old
    [legacy] = list_versions(lab_home)
    assert (legacy.name, legacy.version, legacy.active, legacy.evaluation) == (
        "exec-v1",
        0,
        True,
        None,
    )
    new = register_policy(policies["vwap_like"], "exec-v2", lab_home, episodes=EPISODES)
    assert load_registered_policy(lab_home).path == new.path
    assert [(v.name, v.version, v.active) for v in list_versions(lab_home)] == [
        ("exec-v1", 0, False),
        ("exec-v2", 1, True),
    ]
    left, now = rollback(lab_home)
    assert (left.name, now.name, now.version) == ("exec-v2", "exec-v1", 0)
    loaded = load_registered_policy(lab_home)
    assert isinstance(loaded, LearnedPolicy) and loaded.path == old
    assert old.read_bytes() == policies["ac"].read_bytes()  # the old files were not rewritten


def test_register_policy_the_arena_cannot_observe_refused_even_forced(
    lab_home: LabHome, policies: dict[str, Path]
) -> None:
    # An arena environment with five return lags gives 12 values; the policy reads 10.
    wider = ENV.model_copy(update={"n_returns": 5})
    with pytest.raises(PolicyRefused, match=r"observes 10 values.*gives 12"):
        register_policy(
            policies["vwap_like"], "blind", lab_home, env_config=wider, episodes=4, force=True
        )
    assert not (lab_home.policies / "blind").exists()


# --------------------------------------------------------------------------- the registry's lock
HOLD_POLICIES = """
import sys, time
from pathlib import Path
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
with store_lock(LabHome(Path(sys.argv[1])), "policies", purpose="another registration"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_rollback_waits_for_a_registration_holding_the_registry_and_changes_nothing(
    lab_home: LabHome,
    policies: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Two registrations read the pointer, extend it and write it back; without the registry's
    # lock the second would drop the first's activation (or a rollback's).
    import subprocess

    register_policy(policies["vwap_like"], "exec", lab_home, episodes=EPISODES)
    register_policy(policies["all_at_end"], "exec", lab_home, episodes=EPISODES, force=True)
    pointer = (lab_home.policies / "registered.json").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_POLICIES, str(lab_home.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("ALPHALOOP_LOCK_TIMEOUT", "0.3")
        code, _, err = run_cli(monkeypatch, capsys, "rl", "rollback")
        line = one_error(code, err)
        assert "policies store" in line and "another registration" in line
        assert (lab_home.policies / "registered.json").read_bytes() == pointer
    finally:
        holder.kill()
        holder.wait(timeout=60)
    # Control: with the holder gone the same rollback goes through.
    code, out, err = run_cli(monkeypatch, capsys, "rl", "rollback")
    assert code == 0, err
    assert "from exec v2 to exec v1" in out
