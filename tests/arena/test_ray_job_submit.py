"""End to end: ``ray start --head`` + ``ray job submit -- alphaloop arena run`` = a local run.

The head is started with ``--block`` in its own process group and stopped by signalling that
group (never ``ray stop``, which would stop every Ray on the machine, other tests' included).
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
from pathlib import Path

import typer
from typer.testing import CliRunner

from alphaloop import cli_arena

REPO = Path(__file__).resolve().parents[2]
SPEC = "synthetic:seed=17,assets=5,start=2022-01-01,end=2023-12-31"
DAY = "2023-06-01"


AGENT_PORT_FLAGS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "ray-client-server-port",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
            for t in ("orders", "fills", "positions", "equity", "decisions", "risk_events")
        }
    finally:
        conn.close()


def _ray_bin() -> str:
    found = Path(sys.executable).parent / "ray"
    return str(found) if found.exists() else "ray"


def test_ray_job_submit_arena_run_same_ledger_as_local(tmp_path: Path) -> None:
    job_home = tmp_path / "job_home"
    local_home = tmp_path / "local_home"
    # Unix socket paths under the temp dir must stay short.
    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")
    port, dashboard = _free_port(), _free_port()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RAY_ADDRESS", None)
    # Ray 2.5x+ clusters may require a token: give this private cluster its own.
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    head = subprocess.Popen(
        [
            _ray_bin(), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
            # Every agent port of its own: another Ray on this machine (the suite's shared
            # cluster) holds the defaults, and a clash leaves the head without a job agent.
            *(f"--{name}={_free_port()}" for name in AGENT_PORT_FLAGS),
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        runtime_env = {
            "working_dir": str(REPO),
            "excludes": [".venv", ".git", "**/__pycache__", "*.nbc", "*.nbi", "notebooks"],
            "env_vars": {"ALPHALOOP_HOME": str(job_home)},
        }
        address = f"http://127.0.0.1:{dashboard}"
        command = [
            _ray_bin(), "job", "submit", "--address", address,
            "--runtime-env-json", json.dumps(runtime_env), "--",
            "alphaloop", "arena", "run", "--date", DAY, "--data", SPEC, "--json", "--no-mlflow",
        ]  # fmt: skip
        deadline = time.monotonic() + 240
        while True:  # the dashboard's job API comes up a few seconds after the head
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            output = done.stderr + done.stdout
            # Only start-up conditions are retried: the API or its agent not up yet.
            if not any(m in output for m in ("Connection", "try again later", "No available")):
                break
            time.sleep(2)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        lines = [line for line in done.stdout.splitlines() if line.startswith('{"')]
        assert lines, done.stdout[-3000:]
        summary = json.loads(lines[-1])
        assert summary["date"] == DAY and summary["already_committed"] is False
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)

    app = typer.Typer()
    app.add_typer(cli_arena.app, name="arena")
    os.environ["ALPHALOOP_HOME"] = str(local_home)  # the autouse fixture restores it
    local = CliRunner().invoke(
        app,
        ["arena", "run", "--date", DAY, "--data", SPEC, "--json", "--local", "--no-mlflow"],
        catch_exceptions=False,
    )
    assert local.exit_code == 0, local.output
    job_tables = _tables(job_home / "ledger.sqlite")
    assert job_tables["fills"]
    assert job_tables == _tables(local_home / "ledger.sqlite")
