"""Each lab command owns its Ray: it joins only a cluster the user named, else starts its own.

The scenario (one module fixture, so the suite pays for it once): a Ray started with
``ray start --head`` runs on this machine and is the one Ray's discovery would pick (it is the
last ``ray start`` recorded under ``RAY_TMPDIR``, as ``/tmp/ray/ray_current_cluster`` records it
on a real machine). Two ``alphaloop evolve --workers 1`` on different homes start together
without ``RAY_ADDRESS``. Each must run on a private Ray of its own (not the running one, not the
other's), listening on loopback only, and produce the result of a run without Ray. A named
cluster that is not there is one ``error:`` line and exit status 2 within seconds.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alphaloop.errors import RayClusterUnavailable
from alphaloop.ray_session import connect_ray, named_address, use_address

REPO = Path(__file__).resolve().parents[2]
DATA = "synthetic:seed=5,assets=3,start=2021-01-01,end=2023-12-29"
EVOLVE = (
    "evolve", "--data", DATA, "--generations", "1", "--population", "4", "--window", "40",
    "--seed", "3", "--no-mlflow", "--json",
)  # fmt: skip
ARENA_SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
COMMAND_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_bin() -> str:
    found = Path(sys.executable).parent / "ray"
    return str(found) if found.exists() else "ray"


def _lab_env(ray_tmpdir: str | None = None, token: str | None = None) -> dict[str, str]:
    """The environment of a lab command: no named cluster and no Ray setting of the caller's;
    the machine's Ray state in ``ray_tmpdir`` and the auth token every Ray of this user on the
    machine accepts, when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.pop("ALPHALOOP_HOME", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if ray_tmpdir is not None:
        env["RAY_TMPDIR"] = ray_tmpdir
    if token is not None:
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = token
    return env


def _lab(home: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
    return process.returncode, stdout, stderr


def _kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill ``process``'s process group (a ``ray start`` node, or a lab command and its Ray:
    every Ray process they start stays in the group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(timeout=30)


def _fingerprint(result: dict[str, Any]) -> dict[str, Any]:
    """What a session computed, without its id and timings."""
    generations = [{k: v for k, v in g.items() if "second" not in k} for g in result["generations"]]
    identity = {k: result[k] for k in ("as_of", "seed", "data_hash", "config_hash")}
    return {**identity, "generations": generations, "champions": result["champions"]}


def _is_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass
class Observed:
    """What the processes below a running lab command showed while it ran."""

    listening: set[tuple[str, str]] = field(default_factory=set)  # (process name, host)
    usage_stats: set[str | None] = field(default_factory=set)  # the GCS's RAY_USAGE_STATS_ENABLED


def _observe(processes: list[subprocess.Popen[str]], seen: Observed) -> None:
    """Sample the listening sockets and the GCS environment below ``processes`` until they end."""
    psutil = pytest.importorskip("psutil")
    while any(p.poll() is None for p in processes):
        for process in processes:
            try:
                root = psutil.Process(process.pid)
                below = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in below:
                try:
                    name = proc.name()
                    for conn in proc.net_connections(kind="inet"):
                        if conn.status == psutil.CONN_LISTEN:
                            seen.listening.add((name, conn.laddr.ip))
                    if name == "gcs_server":
                        seen.usage_stats.add(proc.environ().get("RAY_USAGE_STATS_ENABLED"))
                except psutil.Error:
                    continue
        time.sleep(1.0)  # sparse: reading every process's sockets costs CPU the runs need


@dataclass
class Foreign:
    """The Ray that was already running (``ray start --head``)."""

    gcs: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def state(self) -> dict[str, Any]:
        """Return its node ids and how many drivers (jobs) it has ever seen."""
        code = (
            "import json, sys; from ray._raylet import GcsClient; "
            "c = GcsClient(address=sys.argv[1]); "
            "print(json.dumps({'nodes': sorted(n.hex() for n in c.get_all_node_info()), "
            "'jobs': len(c.get_all_job_info())}))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, self.gcs], env=self.env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@dataclass
class Scenario:
    solo: dict[str, Any]
    runs: list[tuple[int, str, str]]
    foreign_before: dict[str, Any]
    foreign_after: dict[str, Any]
    observed: Observed
    seconds: float


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    # Short: Ray's Unix socket paths live under it.
    ray_tmpdir = tempfile.mkdtemp(prefix="ro", dir="/tmp")
    token = secrets.token_hex(32)
    env = _lab_env(ray_tmpdir, token)
    base = tmp_path_factory.mktemp("ownership")
    port = _free_port()
    head: subprocess.Popen[bytes] | None = None
    lab: list[subprocess.Popen[str]] = []
    try:
        # The solo result (no Ray at all) is computed while the other Ray starts.
        solo_run = _lab(base / "solo", *EVOLVE, "--workers", "0", env=env)
        log = (Path(ray_tmpdir) / "head.log").open("wb")
        head = subprocess.Popen(
            [_ray_bin(), "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             "--disable-usage-stats", f"--ray-client-server-port={_free_port()}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        recorded = Path(ray_tmpdir) / "ray" / "ray_current_cluster"
        deadline = time.monotonic() + 90
        while not recorded.exists() or not recorded.read_text().strip():
            assert head.poll() is None, (Path(ray_tmpdir) / "head.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(0.5)
        foreign = Foreign(gcs=recorded.read_text().strip(), env=env, process=head)
        foreign_before = foreign.state()
        code, out, err = _finish(solo_run)
        assert code == 0, err[-3000:]
        solo = json.loads(out)

        started = time.monotonic()
        lab = [_lab(base / name, *EVOLVE, "--workers", "1", env=env) for name in ("a", "b")]
        observed = Observed()
        _observe(lab, observed)
        runs = [_finish(process) for process in lab]
        seconds = time.monotonic() - started
        foreign_after = foreign.state()
        yield Scenario(
            solo=solo, runs=runs, foreign_before=foreign_before, foreign_after=foreign_after,
            observed=observed, seconds=seconds,
        )  # fmt: skip
    finally:
        for process in lab:
            if process.poll() is None:
                _kill_group(process)
        if head is not None:
            _kill_group(head)
        shutil.rmtree(ray_tmpdir, ignore_errors=True)


def test_lab_command_without_ray_address_does_not_join_a_running_ray(
    scenario: Scenario,
) -> None:
    foreign_nodes = set(scenario.foreign_before["nodes"])
    assert len(foreign_nodes) == 1
    for code, out, err in scenario.runs:
        assert code == 0, err[-3000:]
        result = json.loads(out)
        assert len(result["nodes_used"]) == 1
        assert not set(result["nodes_used"]) & foreign_nodes, "evaluated on the running Ray"
        assert _fingerprint(result) == _fingerprint(scenario.solo)
    # No driver of the lab ever connected to the running Ray.
    assert scenario.foreign_after["jobs"] == scenario.foreign_before["jobs"]
    assert set(scenario.foreign_after["nodes"]) == foreign_nodes


def test_two_lab_commands_started_together_each_own_a_ray_with_solo_results(
    scenario: Scenario,
) -> None:
    results = []
    for code, out, err in scenario.runs:
        assert code == 0, err[-3000:]
        results.append(json.loads(out))
    (first,), (second,) = (r["nodes_used"] for r in results)
    assert first != second, "the two commands shared one Ray"
    assert [_fingerprint(r) for r in results] == [_fingerprint(scenario.solo)] * 2


def test_private_ray_listens_on_loopback_only_with_usage_stats_off(scenario: Scenario) -> None:
    names = {name for name, _ in scenario.observed.listening}
    assert {"gcs_server", "raylet"} <= names, scenario.observed.listening
    outside = {(n, host) for n, host in scenario.observed.listening if not _is_loopback(host)}
    assert outside == set()
    assert scenario.observed.usage_stats == {"0"}


@pytest.mark.parametrize("how", ["RAY_ADDRESS", "--ray-address"])
def test_unreachable_named_cluster_is_one_error_line_exit_2_within_seconds(
    tmp_path: Path, how: str
) -> None:
    closed = f"127.0.0.1:{_free_port()}"
    env = _lab_env()
    named: tuple[str, ...] = ("--ray-address", closed) if how == "--ray-address" else ()
    if how == "RAY_ADDRESS":
        env["RAY_ADDRESS"] = closed
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(tmp_path / "home"), *named,
         "arena", "run", "--data", ARENA_SPEC, "--date", "2023-06-01", "--no-mlflow"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert process.returncode == 2, process.stderr[-3000:]
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and closed in errors[0] and how in errors[0], process.stderr
    assert "Traceback" not in process.stderr
    assert seconds < 15


@pytest.mark.parametrize(
    ("address", "hint"),
    [
        ("auto", "name the cluster"),
        ("http://127.0.0.1:8265", "ray job submit"),
        ("10.0.0.5", "expected HOST:PORT"),
        ("tcp://10.0.0.5:6379", "expected HOST:PORT"),
    ],
)
def test_named_address_that_asks_for_discovery_or_is_malformed_is_refused(
    address: str, hint: str
) -> None:
    with pytest.raises(RayClusterUnavailable, match=hint):
        connect_ray(address=address)


def test_named_address_argument_then_cli_option_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert named_address() is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert named_address() == ("10.0.0.1:6379", "RAY_ADDRESS")
    use_address("10.0.0.2:6379")
    try:
        assert named_address() == ("10.0.0.2:6379", "--ray-address")
        assert named_address("10.0.0.3:6379") == ("10.0.0.3:6379", "address argument")
    finally:
        use_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert named_address() is None


def test_no_module_asks_ray_for_discovery() -> None:
    offenders = []
    for package in ("alphaloop", "arena", "evolution", "rl_exec", "reports", "benchmarks"):
        for path in sorted((REPO / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if 'address="auto"' in text or "address='auto'" in text:
                offenders.append(path.relative_to(REPO).as_posix())
    assert offenders == []
