"""Lab commands racing on one home (issue 14 item 4), as real processes.

Each writer takes its store's lock (``alphaloop.locks``): MLflow's store is created once,
the loser of two ``arena run`` of one day waits, then finds the day committed and logs no
second MLflow run, and a writer that waits says so on stderr (or, past
``$ALPHALOOP_LOCK_TIMEOUT``, fails with one ``error:`` line having written nothing).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from alphaloop.home import LabHome
from alphaloop.locks import store_lock

REPO = Path(__file__).resolve().parents[2]
SPEC = "synthetic:seed=5,assets=5,start=2022-01-01,end=2023-12-31"
DAY = "2023-06-01"
EVOLVE_SPEC = "synthetic:seed=5,assets=3,start=2021-01-01,end=2023-12-29"
TIMEOUT_S = 600


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ALPHALOOP_HOME", "RAY_ADDRESS")}
    env.pop("ALPHALOOP_LOCK_TIMEOUT", None)
    env.update(extra)
    return env


def _start(home: Path, *args: str, stderr: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home), *args],
        cwd=REPO, env=_env(**extra), stdout=subprocess.PIPE, stderr=stderr.open("w"), text=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str], stderr: Path) -> tuple[int, str, str]:
    try:
        stdout, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, _ = process.communicate()
    return process.returncode, stdout, stderr.read_text()


def _wait_for(path: Path, text: str, process: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"the command ended before printing {text!r}: {path.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"no {text!r} within {seconds} s: {path.read_text()}")


def _runs(home: Path, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return list(client.search_runs([found.experiment_id], max_results=1000))


def test_two_arena_runs_of_one_day_one_commits_the_other_is_already_committed(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    args = ("arena", "run", "--date", DAY, "--data", SPEC, "--local", "--json")
    errs = [tmp_path / "a.err", tmp_path / "b.err"]
    processes = [_start(home, *args, stderr=err) for err in errs]
    outcomes = [_finish(p, err) for p, err in zip(processes, errs, strict=True)]
    for code, _out, err in outcomes:
        assert code == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for _code, out, _err in outcomes]
    assert sorted(r["already_committed"] for r in results) == [False, True]
    winner = next(r for r in results if not r["already_committed"])
    loser = next(r for r in results if r["already_committed"])
    assert winner["mlflow_run_id"] is not None and loser["mlflow_run_id"] is None
    assert loser["accounts"] == winner["accounts"]
    # One MLflow run for the day (the winner's), and the ledger holds one day that verifies.
    runs = _runs(home, "alphaloop-arena")
    assert [r.info.run_id for r in runs if r.data.tags.get("arena.date") == DAY] == [
        winner["mlflow_run_id"]
    ]
    assert runs[0].info.status == "FINISHED"
    verify = subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home), "ledger", "verify", "--json"],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True, verify.stdout


def test_arena_run_waits_for_the_ledger_with_a_message_then_commits(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "home").ensure()
    err = tmp_path / "run.err"
    with store_lock(home, "ledger", purpose="a test holding the ledger"):
        process = _start(
            home.root, "arena", "run", "--date", DAY, "--data", SPEC, "--local", "--no-mlflow",
            "--json", stderr=err,
        )  # fmt: skip
        _wait_for(err, "waiting:", process, TIMEOUT_S)
        time.sleep(1.0)
        assert process.poll() is None  # still waiting while the lock is held
        assert not home.ledger_db.exists()  # and it wrote nothing
    code, out, text = _finish(process, err)
    assert code == 0, text
    (line,) = [row for row in text.splitlines() if row.startswith("waiting:")]
    assert "ledger" in line and str(home.root) in line and "a test holding the ledger" in line
    assert f"arena run --date {DAY}" in line
    assert json.loads(out.strip().splitlines()[-1])["already_committed"] is False


def test_arena_run_past_the_lock_timeout_is_one_error_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    home = LabHome(tmp_path / "home").ensure()
    err = tmp_path / "run.err"
    with store_lock(home, "ledger", purpose="a test holding the ledger"):
        process = _start(
            home.root, "arena", "run", "--date", DAY, "--data", SPEC, "--local", "--no-mlflow",
            stderr=err, ALPHALOOP_LOCK_TIMEOUT="1",
        )  # fmt: skip
        code, _out, text = _finish(process, err)
    assert code == 2, text
    assert "Traceback" not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("error: the ledger store of ") and str(home.root) in last
    assert "ALPHALOOP_LOCK_TIMEOUT" in last
    assert not home.ledger_db.exists() and not (home.runs / DAY).exists()


def _first_use(root: str, name: str) -> str:
    """One process's first use of a home's MLflow store: open it, the experiment, a run."""
    from evolution.tracking import client_for, experiment_id

    home = LabHome(Path(root))
    client = client_for(home)
    experiment = experiment_id(client, "alphaloop-race", home)
    run = client.create_run(experiment, run_name=name)
    client.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)


def test_concurrent_first_use_of_a_home_creates_one_mlflow_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    names = [f"process-{i}" for i in range(3)]
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as separate commands
    with context.Pool(len(names)) as pool:
        run_ids = pool.starmap(_first_use, [(str(home), name) for name in names])
    runs = _runs(home, "alphaloop-race")
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids)
    assert {r.info.run_name for r in runs} == set(names)
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_two_evolves_on_a_fresh_home_both_finish_and_a_resume_that_cannot_wait_fails_clearly(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    common = (
        "evolve", "--data", EVOLVE_SPEC, "--generations", "1", "--population", "4",
        "--window", "40", "--workers", "0", "--json",
    )  # fmt: skip
    errs = {name: tmp_path / f"{name}.err" for name in ("a", "b", "resume")}
    first = _start(home, *common, "--seed", "3", stderr=errs["a"])
    second = _start(home, *common, "--seed", "4", stderr=errs["b"])
    # Whichever takes the gene pool first, the other waits and says so.
    deadline = time.monotonic() + TIMEOUT_S
    while not any("waiting:" in err.read_text() for err in (errs["a"], errs["b"])):
        assert time.monotonic() < deadline, "neither evolve waited for the other"
        assert first.poll() is None or second.poll() is None
        time.sleep(0.2)
    # While a session runs, a resume of seed 3 that will not wait fails before writing.
    resume = _start(
        home, *common, "--seed", "3", "--resume", stderr=errs["resume"],
        ALPHALOOP_LOCK_TIMEOUT="0",
    )  # fmt: skip
    code, _out, text = _finish(resume, errs["resume"])
    assert code == 2 and "Traceback" not in text, text
    assert text.strip().splitlines()[-1].startswith("error: the gene_pool store of ")
    outcomes = [_finish(first, errs["a"]), _finish(second, errs["b"])]
    for code, _out, text in outcomes:
        assert code == 0, text
    results = [json.loads(out.strip().splitlines()[-1]) for _code, out, _text in outcomes]
    # One MLflow store, one experiment, each session's parent run FINISHED.
    runs = _runs(home, "alphaloop-evolution")
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert set(parents) == {r["mlflow_parent_run_id"] for r in results}
    assert {r.info.status for r in runs} == {"FINISHED"}
    # The resume, now that nobody holds the pool, finds the completed session: still FINISHED.
    again = _start(home, *common, "--seed", "3", "--resume", stderr=errs["resume"])
    code, out, text = _finish(again, errs["resume"])
    assert code == 0, text
    resumed = json.loads(out.strip().splitlines()[-1])
    assert resumed["session_id"] == results[0]["session_id"]
    runs = _runs(home, "alphaloop-evolution")
    assert len(runs) == len(parents) + sum(len(r["generations"]) for r in results)
    assert {r.info.status for r in runs} == {"FINISHED"}
