"""Smoke runs of ``alphaloop arena run|replay|status`` and ``alphaloop ledger verify``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from alphaloop import cli_arena
from alphaloop.home import LabHome

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crashing_accounts import CrashingAccounts

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(cli_arena.app, name="arena")
    app.add_typer(cli_arena.ledger_app, name="ledger")
    return app


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(_app(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cli_arena_run_twice_second_already_committed(lab_home: LabHome) -> None:
    common = ("--data", SPEC, "--json", "--local", "--no-mlflow")
    first = _invoke("arena", "run", "--date", "2023-06-01", *common)
    assert first["date"] == "2023-06-01" and first["already_committed"] is False
    assert set(first["accounts"]) == {"aggressive", "conservative", "synthesis"}
    for figures in first["accounts"].values():
        assert set(figures) >= {
            "equity", "return", "trades", "win_rate", "max_drawdown", "sharpe", "score"
        }  # fmt: skip
        assert 0.0 <= figures["score"] <= 100.0
    assert "return" in first["benchmark"] and first["regime"]["regime"]
    assert isinstance(first["risk_events"], list)
    assert first["report"]["markdown"].endswith("summary.md")
    second = _invoke("arena", "run", "--date", "2023-06-01", *common)
    assert second["already_committed"] is True
    assert second["accounts"] == first["accounts"]
    forced = _invoke("arena", "run", "--date", "2023-06-01", "--force", *common)
    assert forced["already_committed"] is False


def test_cli_arena_run_without_date_takes_last_day(lab_home: LabHome) -> None:
    out = _invoke("arena", "run", "--data", SPEC, "--json", "--local", "--no-mlflow")
    assert out["date"] == "2023-12-29"


def test_cli_arena_replay_status_verify(lab_home: LabHome) -> None:
    common = ("--data", SPEC, "--json", "--local", "--no-mlflow")
    replay = _invoke(
        "arena", "replay", "--start", "2023-06-01", "--end", "2023-06-05",
        "--evolve-weekday", "4", "--population", "8", "--window", "60", *common,
    )  # fmt: skip
    assert replay["days"] == 3 and replay["ran"] == 3 and replay["skipped"] == 0
    assert [e["as_of"] for e in replay["evolutions"]] == ["2023-06-02"]
    assert replay["last_committed"] == "2023-06-05"
    again = _invoke(
        "arena", "replay", "--start", "2023-06-01", "--end", "2023-06-06",
        "--evolve-weekday", "-1", *common,
    )  # fmt: skip
    assert again["skipped"] == 3 and again["ran"] == 1  # resumable: only the new day runs
    status = _invoke("arena", "status", "--json")
    assert status["last_committed"] == "2023-06-06"
    assert set(status["accounts"]) == {"aggressive", "conservative", "synthesis"}
    verify = _invoke("ledger", "verify", "--json")
    assert verify["ok"] is True and verify["days_checked"] == 12


def test_cli_ledger_verify_tampered_reports_difference(lab_home: LabHome) -> None:
    _invoke("arena", "run", "--date", "2023-06-01", "--data", SPEC, "--json", "--local",
            "--no-mlflow")  # fmt: skip
    conn = sqlite3.connect(str(lab_home.ledger_db))
    conn.execute("UPDATE equity SET cash = cash + 100, equity = equity + 100")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(_app(), ["ledger", "verify", "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False
    assert any(issue["kind"] == "cash_mismatch" for issue in payload["issues"])


def test_cli_arena_bad_date_is_user_error(lab_home: LabHome) -> None:
    from alphaloop.errors import AlphaLoopError

    result = CliRunner().invoke(
        _app(), ["arena", "run", "--date", "2023-13-01", "--data", SPEC, "--local"]
    )
    assert isinstance(result.exception, AlphaLoopError)
    result = CliRunner().invoke(
        _app(), ["arena", "run", "--date", "2023-06-03", "--data", SPEC, "--local", "--no-mlflow"]
    )
    assert isinstance(result.exception, AlphaLoopError) and "not a trading day" in str(
        result.exception
    )


def _cli(home: LabHome, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALPHALOOP_HOME": str(home.root)}
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _ledger_rows(home: LabHome) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(home.ledger_db)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("days", "orders", "fills", "positions", "equity")
        }
    finally:
        conn.close()


def test_cli_arena_run_before_the_last_committed_day_is_refused(lab_home: LabHome) -> None:
    common = ("--data", SPEC, "--local", "--no-mlflow")
    assert _cli(lab_home, "arena", "run", "--date", "2023-06-02", *common).returncode == 0
    before = _ledger_rows(lab_home)
    for extra in ((), ("--force",)):
        refused = _cli(lab_home, "arena", "run", "--date", "2023-06-01", *extra, *common)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: arena day 2023-06-01"), lines
        assert "last committed day 2023-06-02" in lines[0]
        assert _ledger_rows(lab_home) == before  # nothing stored changed
    # The control: the next day runs, and the last day may still be forced.
    assert _cli(lab_home, "arena", "run", "--date", "2023-06-05", *common).returncode == 0
    forced = _cli(lab_home, "arena", "run", "--date", "2023-06-05", "--force", *common)
    assert forced.returncode == 0, forced.stderr


def test_cli_arena_run_on_data_lacking_held_symbols_is_one_error_line(lab_home: LabHome) -> None:
    spec = "synthetic:seed=5,assets=5,start=2022-01-01,end=2023-12-31"
    fewer = "synthetic:seed=5,assets=2,start=2022-01-01,end=2023-12-31"
    common = ("--local", "--no-mlflow")
    done = _cli(lab_home, "arena", "run", "--date", "2023-06-01", "--data", spec, *common)
    assert done.returncode == 0, done.stderr
    from arena.ledger import Ledger
    from arena.market import load_arena_data

    kept = set(load_arena_data(fewer, lab_home).daily.symbols)
    with Ledger(lab_home.ledger_db) as ledger:
        held = {
            p.symbol
            for name in ("aggressive", "conservative", "synthesis")
            for p in ledger.positions(name, date(2023, 6, 1))
            if p.quantity
        }
    assert held - kept, "the precondition: the accounts hold a symbol the smaller data lacks"
    before = _ledger_rows(lab_home)
    refused = _cli(lab_home, "arena", "run", "--date", "2023-06-02", "--data", fewer, *common)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: arena day 2023-06-02: --data "), lines
    assert fewer in lines[0] and str(lab_home.ledger_db) in lines[0]
    assert all(symbol in lines[0] for symbol in held - kept)
    assert _ledger_rows(lab_home) == before  # nothing stored changed
    # The control: the data the accounts traded runs the next day.
    again = _cli(lab_home, "arena", "run", "--date", "2023-06-02", "--data", spec, *common)
    assert again.returncode == 0, again.stderr


def test_cli_arena_status_marks_a_partially_committed_day(lab_home: LabHome) -> None:
    from arena.day import run_arena_day
    from arena.market import load_arena_data
    from arena.personas import load_arena_config

    config = load_arena_config()
    data = load_arena_data(SPEC, lab_home)
    crashed = CrashingAccounts(lab_home, config, data.rules(), fail_after=1)
    try:
        with pytest.raises(RuntimeError, match="injected crash"):
            run_arena_day(crashed, data, date(2023, 6, 1), home=lab_home, config=config)
    finally:
        crashed.close()
    status = _invoke("arena", "status", "--json")
    assert status["partial"] == {
        "day": "2023-06-01",
        "committed": ["aggressive"],
        "missing": ["conservative", "synthesis"],
    }
    text = CliRunner().invoke(_app(), ["arena", "status"], catch_exceptions=False).stdout
    assert text.splitlines()[0] == (
        "last committed day: 2023-06-01 (partial: committed for aggressive, not for "
        "conservative, synthesis; finish it with alphaloop arena run --date 2023-06-01)"
    )
    # The control: once the day is finished, it is no longer partial.
    _invoke("arena", "run", "--date", "2023-06-01", "--data", SPEC, "--json", "--local",
            "--no-mlflow")  # fmt: skip
    status = _invoke("arena", "status", "--json")
    assert status["partial"] is None and status["last_committed"] == "2023-06-01"
    assert set(status["accounts"]) == {"aggressive", "conservative", "synthesis"}
