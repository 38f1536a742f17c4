"""A real two-node Ray cluster on this machine: ``alphaloop evolve`` by ``ray job submit``.

A head (``ray start --head --num-cpus=1`` with a dashboard) and a second node (``ray start
--address=<head> --num-cpus=1``, a raylet of its own) are started with ``--block``, each in its own
process group with its own ports and this cluster's own auth token, and stopped by signalling
their groups (never ``ray stop``, which would stop every Ray on the machine). Two evaluator
actors of one CPU each can only fit one per node, so the run must use both nodes; the gene pool
it produces must equal a run without Ray. Then the second node is killed mid-session and the
session must still complete with the uninterrupted result.

The first tests are fast unit checks of where the placement is recorded (store, JSON, MLflow).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.home import LabHome
from evolution.store import GenePoolStore, MemberRecord, PlacementRecord

REPO = Path(__file__).resolve().parents[2]
DATA = "synthetic:seed=5,assets=4,start=2021-01-01,end=2023-12-29"
# Small but real: generations of eight genomes on a short window.
EVOLVE_ARGS = ("--data", DATA, "--seed", "3", "--population", "8", "--window", "60")
AGENT_PORT_FLAGS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)
NODE_PORT_FLAGS = ("node-manager-port", "object-manager-port", *AGENT_PORT_FLAGS)


# --------------------------------------------------------------------------- unit: placement
def _member(genome_id: str) -> MemberRecord:
    return MemberRecord(
        genome_id=genome_id, genome_json="{}", description="d", style="trend", parents=(),
        operator="immigrant", born_generation=0, score=1.0, status="alive", overfit=False,
        low_score_streak=0,
    )  # fmt: skip


def test_store_placement_committed_with_generation_read_back_by_generation(tmp_path) -> None:
    with GenePoolStore(tmp_path / "pool.sqlite") as store:
        store.create_session(
            session_id="s", seed=1, as_of="2023-01-02", config={}, config_hash="c",
            data_hash="d", data_spec="synthetic", code_version="0",
        )  # fmt: skip
        store.commit_generation(
            session_id="s", generation=0, members=[_member("a")], stats={},
            placement=PlacementRecord(nodes=("n1", "n2"), worker_processes=2),
        )  # fmt: skip
        store.commit_generation(session_id="s", generation=1, members=[_member("a")], stats={})
        assert store.placements("s") == {0: PlacementRecord(nodes=("n1", "n2"), worker_processes=2)}


def test_store_opened_without_placement_table_creates_it_and_keeps_data(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    with GenePoolStore(path) as store:
        store.create_session(
            session_id="old", seed=1, as_of="2023-01-02", config={}, config_hash="c",
            data_hash="d", data_spec="synthetic", code_version="0",
        )  # fmt: skip
        store.commit_generation(session_id="old", generation=0, members=[_member("a")], stats={})
    # A store written before placements were recorded has no such table.
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE generation_nodes")
    conn.commit()
    conn.close()
    with GenePoolStore(path) as store:
        assert store.last_generation("old") == 0
        assert store.placements("old") == {}
        store.commit_generation(
            session_id="old", generation=1, members=[_member("a")], stats={},
            placement=PlacementRecord(nodes=("n",), worker_processes=1),
        )  # fmt: skip
        assert store.placements("old") == {1: PlacementRecord(nodes=("n",), worker_processes=1)}


def test_placement_record_unsorted_nodes_rejected() -> None:
    with pytest.raises(ValueError, match="sorted"):
        PlacementRecord(nodes=("b", "a"), worker_processes=2)


def _evolve(home: Path, *extra: str) -> dict[str, Any]:
    old = os.environ.get("ALPHALOOP_HOME")
    os.environ["ALPHALOOP_HOME"] = str(home)
    try:
        result = CliRunner().invoke(
            app, ["evolve", *EVOLVE_ARGS, *extra, "--json"], catch_exceptions=False
        )
    finally:
        if old is not None:
            os.environ["ALPHALOOP_HOME"] = old
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    """The run's outcome without what names the run or measures its speed (compared exactly)."""
    skip = ("session_id", "nodes_used", "mlflow_experiment_id", "mlflow_parent_run_id")
    out = {k: v for k, v in result.items() if k not in skip}
    out["generations"] = [
        {k: v for k, v in g.items() if k != "evaluations_per_second"} for g in result["generations"]
    ]
    return out


def _generation_rows(home: Path) -> list[tuple[Any, ...]]:
    """Every generation's population (id, score, status) and statistics, session id aside."""
    with GenePoolStore(LabHome(home).gene_pool_db) as store:
        session = store.latest_session()
        assert session is not None
        sid = session["session_id"]
        rows: list[tuple[Any, ...]] = []
        for stats in store.generation_stats(sid):
            g = stats["generation"]
            population = [
                (m["genome_id"], m["score"], m["status"]) for m in store.population(sid, g)
            ]
            kept = {k: stats[k] for k in ("best_score", "median_score", "births", "culled")}
            rows.append((g, kept, population, stats["state"]["next_population"]))
        return rows


def test_evolve_json_without_ray_has_empty_nodes_used_and_mlflow_param(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from evolution.tracking import tracking_uri

    result = _evolve(tmp_path / "h", "--generations", "1", "--workers", "0")
    assert result["nodes_used"] == []
    client = MlflowClient(tracking_uri=tracking_uri(LabHome(tmp_path / "h")))
    runs = client.search_runs(
        [result["mlflow_experiment_id"]], "tags.`alphaloop.kind` = 'evolution-generation'"
    )
    assert len(runs) == 1
    assert runs[0].data.params["nodes_used"] == ""
    assert runs[0].data.params["worker_processes"] == "0"


def test_evolve_json_with_local_ray_records_its_node(tmp_path, ray_cluster) -> None:
    import ray

    from evolution.tracking import tracking_uri

    result = _evolve(tmp_path / "h", "--generations", "1", "--workers", "1")
    assert result["nodes_used"] == [ray.get_runtime_context().get_node_id()]
    with GenePoolStore(LabHome(tmp_path / "h").gene_pool_db) as store:
        placement = store.placements(result["session_id"])[0]
    assert placement.nodes == tuple(result["nodes_used"]) and placement.worker_processes == 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(LabHome(tmp_path / "h")))
    (run,) = client.search_runs(
        [result["mlflow_experiment_id"]], "tags.`alphaloop.kind` = 'evolution-generation'"
    )
    assert run.data.params["nodes_used"] == result["nodes_used"][0]


# --------------------------------------------------------------------------- the cluster
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_bin() -> str:
    found = Path(sys.executable).parent / "ray"
    return str(found) if found.exists() else "ray"


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> list[tuple[int, str]]:
    """Return the processes below ``root`` with their start times.

    Ray workers put themselves in process groups of their own, so signalling the node's group
    does not reach them; the start time guards against a recycled pid later.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[tuple[int, str]] = []
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            started = _start_time(child)
            if started is not None:
                found.append((child, started))
            frontier.append(child)
    return found


def _kill(processes: list[tuple[int, str]], sig: int) -> None:
    for pid, started in processes:
        if _start_time(pid) != started:
            continue  # gone (or its pid reused by an unrelated process)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _stop_node(process: subprocess.Popen[bytes], *, crash: bool = False) -> None:
    """Stop a ``ray start --block`` node: its process group and every process below it.

    ``crash=True`` removes the node at once (SIGKILL), as a machine failure would: the raylet and
    its workers die together, so no worker finishes a task after its node is gone.
    """
    below = _descendants(process.pid)
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL if crash else signal.SIGTERM)
        except ProcessLookupError:
            pass
    if crash:
        _kill(below, signal.SIGKILL)
    try:
        process.wait(timeout=5 if crash else 20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    # Workers orphaned by a graceful stop that did not end them.
    _kill(below, signal.SIGKILL)


@dataclass
class Cluster:
    """A private two-node Ray cluster (see the module docstring)."""

    env: dict[str, str]
    gcs: str
    dashboard: str
    temp_dir: str
    head: subprocess.Popen[bytes] | None = None
    second: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    manager_ports: dict[str, int] = field(default_factory=dict)

    def start_node(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = Path(self.temp_dir) / f"{name}.log"
        self.logs.append(log)
        ports = {flag: _free_port() for flag in NODE_PORT_FLAGS}
        self.manager_ports[name] = ports["node-manager-port"]
        with log.open("wb") as out:
            return subprocess.Popen(
                [_ray_bin(), "start", "--block", "--disable-usage-stats", *args,
                 *(f"--{flag}={port}" for flag, port in ports.items())],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def node_id(self, name: str) -> str:
        return self.alive_nodes()[self.manager_ports[name]]

    def query(self, code: str) -> Any:
        """Run ``code`` (which prints JSON) in a driver connected to the cluster."""
        done = subprocess.run(
            [sys.executable, "-c", code], env={**self.env, "RAY_ADDRESS": self.gcs},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def alive_nodes(self) -> dict[int, str]:
        """Return the live nodes' ids by their node-manager port."""
        code = (
            "import json, ray; ray.init(log_to_driver=False, configure_logging=False); "
            "print(json.dumps({n['NodeManagerPort']: n['NodeID'] for n in ray.nodes() "
            "if n['Alive']}))"
        )
        return {int(port): str(node) for port, node in self.query(code).items()}

    def submit(self, home: Path, *args: str, wait: bool = True) -> subprocess.Popen[str]:
        runtime_env = {
            "working_dir": str(REPO),
            "excludes": [".venv", ".git", "**/__pycache__", ".mypy_cache", "notebooks", "*.nbc"],
            "env_vars": {"ALPHALOOP_HOME": str(home)},
        }
        command = [
            _ray_bin(), "job", "submit", "--address", self.dashboard,
            "--runtime-env-json", json.dumps(runtime_env), "--",
            "alphaloop", "evolve", *EVOLVE_ARGS, *args, "--json", "--no-mlflow",
        ]  # fmt: skip
        return subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


def _job_result(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    lines = [line for line in stdout.splitlines() if line.startswith('{"')]
    assert lines, stdout[-3000:]
    return dict(json.loads(lines[-1]))


FAULT_GENERATIONS = 5


@pytest.fixture(scope="module")
def single_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The reference: the longest session of this file run in-process without Ray.

    Generations are committed one by one, so its first generations are also the reference of a
    shorter session with the same seed.
    """
    home = tmp_path_factory.mktemp("single-node")
    generations = str(FAULT_GENERATIONS)
    return home, _evolve(home, "--generations", generations, "--workers", "0", "--no-mlflow")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Unix socket paths under the temp dir must stay short.
    temp_dir = tempfile.mkdtemp(prefix="mn", dir="/tmp")
    port, dashboard = _free_port(), _free_port()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RAY_ADDRESS", None)
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    # A dead node is noticed in a few seconds rather than the default half minute.
    env["RAY_health_check_period_ms"] = "1000"
    env["RAY_health_check_failure_threshold"] = "3"
    env["RAY_health_check_timeout_ms"] = "1000"
    found = Cluster(
        env=env, gcs=f"127.0.0.1:{port}", dashboard=f"http://127.0.0.1:{dashboard}",
        temp_dir=temp_dir,
    )  # fmt: skip
    try:
        found.head = found.start_node(
            "--head", f"--port={port}", "--num-cpus=1", "--node-ip-address=127.0.0.1",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}", f"--temp-dir={temp_dir}",
            f"--ray-client-server-port={_free_port()}", name="head",
        )  # fmt: skip
        found.second = found.start_node(
            f"--address={found.gcs}", "--num-cpus=1", "--node-ip-address=127.0.0.1",
            name="second",
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            try:
                if len(found.alive_nodes()) == 2:
                    break
            except AssertionError:
                pass  # the head's GCS is not up yet
            assert time.monotonic() < deadline, _tail_logs(found)
            time.sleep(1)
        yield found
    finally:
        for process in (found.second, found.head):
            if process is not None:
                _stop_node(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _tail_logs(cluster: Cluster) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
        for log in cluster.logs
        if log.exists()
    )


def _submit_and_wait(cluster: Cluster, home: Path, *args: str) -> dict[str, Any]:
    """Submit, retrying only while the job API or its agent is still coming up."""
    deadline = time.monotonic() + 120
    while True:
        process = cluster.submit(home, *args)
        stdout, stderr = process.communicate(timeout=300)
        if process.returncode == 0 or time.monotonic() > deadline:
            break
        if not any(m in stderr + stdout for m in ("Connection", "try again later", "No available")):
            break
        time.sleep(2)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:] + _tail_logs(cluster)
    lines = [line for line in stdout.splitlines() if line.startswith('{"')]
    assert lines, stdout[-3000:]
    return dict(json.loads(lines[-1]))


def test_multinode_job_submit_evaluates_on_both_nodes_same_pool_as_one_node(
    cluster: Cluster, single_node: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    nodes = list(cluster.alive_nodes().values())
    assert len(nodes) == 2
    job_home = tmp_path / "job"
    result = _submit_and_wait(cluster, job_home, "--generations", "2", "--workers", "2")
    assert result["nodes_used"] == sorted(nodes)
    with GenePoolStore(LabHome(job_home).gene_pool_db) as store:
        placements = store.placements(result["session_id"])
    assert placements[0].nodes == tuple(sorted(nodes))

    local_home, local = single_node
    assert local["nodes_used"] == []
    expected = _comparable(local)["generations"][:2]
    assert _comparable(result)["generations"] == expected
    assert _generation_rows(job_home) == _generation_rows(local_home)[:2]


def test_multinode_second_node_killed_mid_session_completes_with_same_pool(
    cluster: Cluster, single_node: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    assert cluster.second is not None
    nodes = list(cluster.alive_nodes().values())
    assert len(nodes) == 2, "the fault test needs the two-node cluster"
    head = cluster.node_id("head")
    generations = str(FAULT_GENERATIONS)
    job_home = tmp_path / "job"
    job = cluster.submit(job_home, "--generations", generations, "--workers", "2")
    try:
        # Kill once the first generation is committed: the next ones are then under way.
        db = LabHome(job_home).gene_pool_db
        killed_after = -1
        deadline = time.monotonic() + 180
        while True:
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no generation committed in time"
            if db.exists():
                with GenePoolStore(db) as store:
                    session = store.latest_session()
                    if session and store.last_generation(session["session_id"]) is not None:
                        killed_after = store.last_generation(session["session_id"])
                        break
            time.sleep(0.05)
        _stop_node(cluster.second, crash=True)
        result = _job_result(job, timeout=150)
    finally:
        if job.poll() is None:
            job.kill()
    assert 0 <= killed_after < int(generations) - 1
    deadline = time.monotonic() + 60
    while list(cluster.alive_nodes().values()) != [head]:
        assert time.monotonic() < deadline, cluster.alive_nodes()
        time.sleep(1)
    with GenePoolStore(LabHome(job_home).gene_pool_db) as store:
        placements = store.placements(result["session_id"])
    assert placements[0].nodes == tuple(sorted(nodes))  # both nodes worked before the kill
    assert placements[int(generations) - 1].nodes == (head,)  # the head finished alone
    assert result["nodes_used"] == sorted(nodes)

    local_home, local = single_node
    assert _comparable(result) == _comparable(local)
    assert _generation_rows(job_home) == _generation_rows(local_home)
