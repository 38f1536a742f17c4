"""``alphaloop ui`` serves the lab's MLflow store: a session's nested runs are visible over REST."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
from evolution.refine import RefineConfig
from evolution.session import EvolutionSession, SessionConfig
from simulators.synthetic import SyntheticSpec, generate_daily


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ask(request: urllib.request.Request | str, *, deadline_s: float = 60.0) -> dict:
    """One REST call, retried until a deadline: a loaded machine may stall the server."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return json.loads(response.read())
        except OSError as exc:  # refused, reset or timed out (URLError is an OSError)
            if time.monotonic() > deadline:
                raise AssertionError(f"the MLflow UI did not answer in {deadline_s:g} s") from exc
            time.sleep(0.5)


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    return _ask(request)


def test_cli_ui_serves_the_session_runs_on_loopback(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "lab")
    panel = generate_daily(SyntheticSpec(seed=2, assets=4, start="2021-01-01", end="2023-12-29"))
    session = EvolutionSession(
        home=home,
        panel=panel,
        data_spec="synthetic",
        as_of="2023-12-29",
        seed=1,
        config=SessionConfig(
            evolution=EvolutionConfig(population=6, immigrants=1), refine=RefineConfig(top=0)
        ),
        workers=0,
        track=True,
    )
    try:
        result = session.run(2)
    finally:
        session.close()

    port = _free_port()
    env = {**os.environ, "ALPHALOOP_HOME": str(home.root)}
    server = subprocess.Popen(
        [sys.executable, "-m", "alphaloop.cli", "ui", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(
                    f"{base}/experiments/get-by-name?experiment_name=alphaloop-evolution",
                    timeout=15,
                ) as response:
                    experiment = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, "the MLflow UI process exited"
                assert time.monotonic() < deadline, "the MLflow UI did not answer in 90 s"
                time.sleep(0.5)
        experiment_id = experiment["experiment"]["experiment_id"]
        assert experiment_id == result["mlflow_experiment_id"]
        parent = result["mlflow_parent_run_id"]
        runs = _post(
            f"{base}/runs/search",
            {
                "experiment_ids": [experiment_id],
                "filter": f"tags.mlflow.parentRunId = '{parent}'",
            },
        )["runs"]
        assert len(runs) == 2
        metric_keys = {m["key"] for m in runs[0]["data"]["metrics"]}
        assert {"best_score", "median_score", "diversity", "pbo"} <= metric_keys
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
