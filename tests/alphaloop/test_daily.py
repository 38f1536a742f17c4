"""``alphaloop daily`` (issue 16 item 5): the routine, idempotent, resumable after a kill.

On a copy of the operations home (``ops_home.py``, committed up to Tuesday 2023-05-30) the
routine runs Wednesday 2023-05-31, the last trading day of May: the arena day, the weekly
evolution, the weekly report and the stress replay (configured for Wednesdays here, small),
the month-end report and the alerts. The kill is real: a test-owned step list, built from the
routine's public :data:`alphaloop.daily.DAILY_STEPS`, has a step that ends the process with
``os._exit`` after the arena day.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from alphaloop.alert_store import OpsStore, ops_db
from alphaloop.daily import DAILY_STEPS, DailyContext, Step, is_month_end, run_daily
from alphaloop.home import LabHome
from alphaloop.ops_config import load_ops_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ops_home import RISK, SPEC  # noqa: E402

DAY = "2023-05-31"
# Every weekly step due on Wednesdays, each small (one generation of four, one scenario).
OPS = {
    "daily": {
        "evolution_weekday": 2,
        "weekly_report_weekday": 2,
        "stress_weekday": 2,
        "month_end_report": True,
        "evolution": {"generations": 1, "population": 4, "window": 60},
        "stress": {"scenarios": ["data-outage"]},
    },
    "alerts": {"stale_data_days": None},
}


def _files(tmp_path: Path, settings: dict[str, Any] = OPS) -> tuple[Path, Path]:
    ops = tmp_path / "ops.yaml"
    ops.write_text(yaml.safe_dump(settings), encoding="utf-8")
    arena = tmp_path / "arena.yaml"
    arena.write_text(yaml.safe_dump(RISK), encoding="utf-8")
    return ops, arena


def _daily(
    home: LabHome, tmp_path: Path, *args: str, settings: dict[str, Any] = OPS
) -> subprocess.CompletedProcess[str]:
    ops, arena = _files(tmp_path, settings)
    return subprocess.run(
        [
            sys.executable, "-m", "alphaloop.cli", "--home", str(home.root), "daily",
            "--data", SPEC, "--config", str(ops), "--arena-config", str(arena), "--local",
            "--no-mlflow", *args,
        ],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip


def _day_rows(home: LabHome, day: str) -> dict[str, int]:
    with sqlite3.connect(home.ledger_db) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table} WHERE day = ?", (day,)).fetchone()[0]
            for table in ("days", "equity", "fills")
        }


def _steps(result: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["status"] for step in result["steps"]}


def test_the_routine_runs_the_day_and_a_second_run_changes_nothing(
    ops_home: LabHome, tmp_path: Path
) -> None:
    done = _daily(ops_home, tmp_path, "--date", DAY, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert _steps(result) == {
        "arena_day": "done",
        "weekly_evolution": "done",
        "weekly_report": "done",
        "monthly_report": "done",
        "stress": "done",
        "alerts": "done",
    }
    assert result["ok"] and not result["already_done"]
    with sqlite3.connect(ops_home.gene_pool_db) as db:
        as_of = [r[0][:10] for r in db.execute("SELECT as_of FROM sessions")]
    assert DAY in as_of
    assert (ops_home.stress / DAY / "result.json").is_file()
    rows = _day_rows(ops_home, DAY)
    assert rows["days"] == 3 and rows["equity"] == 3
    assert (ops_home.reports / "weekly" / "2023-W22").is_dir()
    assert (ops_home.reports / "monthly" / "2023-05").is_dir()
    with OpsStore(ops_home) as store:
        records = store.step_records(date.fromisoformat(DAY))
        alerts_before = store.alerts()
    assert {name for name, r in records.items() if r["status"] == "done"} == {
        "arena_day", "weekly_evolution", "weekly_report", "monthly_report", "stress", "alerts",
    }  # fmt: skip
    ledger_before = ops_home.ledger_db.read_bytes()
    again = _daily(ops_home, tmp_path, "--date", DAY)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    for name in ("arena_day", "weekly_evolution", "weekly_report", "monthly_report", "stress",
                 "alerts"):  # fmt: skip
        assert f"step {name}: skipped (already done)" in lines
    assert lines[-1] == f"daily {DAY}: already done, nothing changed"
    assert ops_home.ledger_db.read_bytes() == ledger_before
    with OpsStore(ops_home) as store:
        assert store.alerts() == alerts_before
    # Something new about a done day (the stale-data rule switched on: the synthetic data
    # ends in 2023): the alerts step alone runs again and stores that one alert, once.
    stale = {**OPS, "alerts": {"stale_data_days": 5}}
    third = _daily(ops_home, tmp_path, "--date", DAY, "--json", settings=stale)
    assert third.returncode == 0, third.stderr
    steps = _steps(json.loads(third.stdout))
    assert steps == {**{name: "skipped" for name in steps}, "alerts": "done"}
    with OpsStore(ops_home) as store:
        added = [a for a in store.alerts() if a not in alerts_before]
    assert [a["rule"] for a in added] == ["stale_data"]
    fourth = _daily(ops_home, tmp_path, "--date", DAY, settings=stale)
    assert fourth.stdout.splitlines()[-1] == f"daily {DAY}: already done, nothing changed"
    assert ops_home.ledger_db.read_bytes() == ledger_before


# Run by the kill test in its own process: the routine's steps with one that kills the process
# after the arena day (the test's adapter; the routine has no such switch).
KILLER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from datetime import date
    from alphaloop.daily import DAILY_STEPS, DailyContext, Step, run_daily
    from alphaloop.home import LabHome
    from alphaloop.ops_config import load_ops_config
    from arena.market import load_arena_data
    from arena.personas import load_arena_config

    home_root, spec, ops_file, arena_file, day = sys.argv[1:6]
    home = LabHome(Path(home_root))

    def kill(ctx):
        os._exit(9)

    steps = [DAILY_STEPS[0], Step("kill", lambda ctx: None, kill), *DAILY_STEPS[1:]]
    ctx = DailyContext(
        home=home, day=date.fromisoformat(day), market=load_arena_data(spec, home),
        ops=load_ops_config(ops_file), arena_config=load_arena_config(arena_file), local=True,
        track=False,
    )
    run_daily(ctx, steps)
    """
)


def test_a_routine_killed_after_the_arena_day_resumes_with_the_rest(
    ops_home: LabHome, tmp_path: Path
) -> None:
    assert DAILY_STEPS[0].name == "arena_day"
    ops, arena = _files(tmp_path)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(ops_home.root), SPEC, str(ops), str(arena), DAY],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert killed.returncode == 9, killed.stderr
    with OpsStore(ops_home) as store:
        records = store.step_records(date.fromisoformat(DAY))
    assert {name: r["status"] for name, r in records.items()} == {"arena_day": "done"}
    committed = _day_rows(ops_home, DAY)
    assert committed["days"] == 3
    resumed = _daily(ops_home, tmp_path, "--date", DAY, "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert _steps(result) == {
        "arena_day": "skipped",
        "weekly_evolution": "done",
        "weekly_report": "done",
        "monthly_report": "done",
        "stress": "done",
        "alerts": "done",
    }
    assert _day_rows(ops_home, DAY) == committed  # the day is in the ledger once
    verify = subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(ops_home.root), "ledger", "verify",
         "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"], verify.stdout


def test_a_failed_step_is_recorded_alerted_and_run_again(ops_home: LabHome, tmp_path: Path) -> None:
    import socket

    from arena.market import load_arena_data
    from arena.personas import load_arena_config

    # A webhook nobody listens on: its failure is recorded, never the day's.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    ops_file = tmp_path / "ops.yaml"
    ops_file.write_text(
        yaml.safe_dump({"alerts": {"webhook": {"url": closed, "timeout_s": 2.0}}}),
        encoding="utf-8",
    )

    calls: list[str] = []

    def boom(ctx: DailyContext) -> dict[str, Any]:
        calls.append("boom")
        raise RuntimeError("the disk is full")

    def fine(ctx: DailyContext) -> dict[str, Any]:
        calls.append("fine")
        return {"note": "ok"}

    alerts = next(step for step in DAILY_STEPS if step.name == "alerts")
    ctx = DailyContext(
        home=ops_home, day=date(2023, 5, 30), market=load_arena_data(SPEC, ops_home),
        ops=load_ops_config(ops_file), arena_config=load_arena_config(), local=True,
        track=False,
    )  # fmt: skip
    result = run_daily(ctx, [Step("boom", lambda c: None, boom), alerts])
    assert not result["ok"]
    assert result["steps"][0]["status"] == "failed"
    assert "RuntimeError: the disk is full" in result["steps"][0]["reason"]
    assert result["steps"][1]["status"] == "done"
    webhook = result["steps"][1]["detail"]["webhook"]
    assert webhook["delivered"] == 0 and webhook["failed"] >= 1, webhook
    with OpsStore(ops_home) as store:
        failed = [a for a in store.alerts() if a["rule"] == "failed_step"]
        assert store.step_records(date(2023, 5, 30))["boom"]["status"] == "failed"
    assert [a["subject"] for a in failed] == ["boom"]
    # The next run of the day runs the failed step again (now fixed); the done alerts step
    # re-evaluates because a step ran, and stores no second copy of any alert.
    again = DailyContext(
        home=ops_home, day=date(2023, 5, 30), market=ctx.market, ops=ctx.ops,
        arena_config=ctx.arena_config, local=True, track=False,
    )  # fmt: skip
    second = run_daily(again, [Step("boom", lambda c: None, fine), alerts])
    assert [s["status"] for s in second["steps"]] == ["done", "done"]
    assert calls == ["boom", "fine"]
    with OpsStore(ops_home) as store:
        rules = [a["rule"] for a in store.alerts()]
    assert rules.count("failed_step") == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--date", "2023-13-01"), ("--date", "2023-13-01")),
        (("--date", "2023-06-03"), ("2023-06-03", "not a trading day")),
        (("--date", "2023-05-31", "--config", "BAD"), ("unknown key", "daily.evolution_day")),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(
    ops_home: LabHome, tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    if "BAD" in args:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump({"daily": {"evolution_day": 4}}), encoding="utf-8")
        args = tuple(str(bad) if a == "BAD" else a for a in args)
    before = {p: p.stat().st_mtime_ns for p in ops_home.root.rglob("*") if p.is_file()}
    done = subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(ops_home.root), "daily",
         "--data", SPEC, "--local", "--no-mlflow", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    after = {p: p.stat().st_mtime_ns for p in ops_home.root.rglob("*") if p.is_file()}
    assert after == before and not ops_db(ops_home).exists()


def test_a_damaged_operations_store_is_one_error_line_and_left_as_it_is(
    ops_home: LabHome, tmp_path: Path
) -> None:
    garbage = b"not a database, " * 64
    ops_db(ops_home).write_bytes(garbage)
    ledger = ops_home.ledger_db.read_bytes()
    done = _daily(ops_home, tmp_path, "--date", DAY)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "ops.sqlite" in lines[0]
    assert ops_db(ops_home).read_bytes() == garbage
    assert ops_home.ledger_db.read_bytes() == ledger
    # status reads it read-only: named on a warning line, the rest still shown, exit 1.
    status = subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(ops_home.root), "status"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert status.returncode == 1 and "warning: alerts could not be read" in status.stderr
    assert "last day: 2023-05-30" in status.stdout
    assert "alerts: unknown" in status.stdout


def test_month_end_follows_the_data_calendar() -> None:
    days = [date(2023, 5, 30), date(2023, 5, 31), date(2023, 6, 1)]
    assert is_month_end(date(2023, 5, 31), days)
    assert not is_month_end(date(2023, 5, 30), days)
    # At the data's end: the weekdays left in the month decide.
    assert is_month_end(date(2023, 6, 30), [date(2023, 6, 30)])  # a Friday, the 30th
    assert not is_month_end(date(2023, 6, 28), [date(2023, 6, 28)])
    assert is_month_end(date(2023, 9, 29), [date(2023, 9, 29)])  # Friday; Sat 30th is no day
