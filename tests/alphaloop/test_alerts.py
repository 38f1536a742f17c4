"""Alerts (issue 16 item 4): rules over a real lab home, idempotent records, a webhook.

The home is the operations home (``ops_home.py``: four committed arena days and a gene pool);
the expected figures are read from the ledger's raw tables here, not from the rules. The
webhook is a real HTTP server on 127.0.0.1 that the test starts.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alphaloop.alert_store import OpsStore, ops_db, read_alerts
from alphaloop.alerts import deliver_alerts, evaluate_alerts
from alphaloop.home import LabHome
from alphaloop.metrics import snapshot_metrics
from alphaloop.observe import read_lab
from alphaloop.ops_config import AlertsConfig, LowConfidence, WebhookConfig

LAST = date(2023, 5, 30)  # the operations home's last committed day
QUIET = AlertsConfig(
    daily_loss=None, drawdown=None, missing_day=False, failed_step=False, stress_failed=False,
    stale_data_days=None, low_confidence=None, lifecycle=False,
)  # fmt: skip


def _rules(**changes: Any) -> AlertsConfig:
    return QUIET.model_copy(update=changes)


def _equities(home: LabHome) -> dict[str, list[tuple[str, int]]]:
    """Each account's (day, equity in minor units), read from the raw ledger tables."""
    with sqlite3.connect(home.ledger_db) as db:
        rows = db.execute("SELECT account, day, equity FROM equity ORDER BY account, day")
        out: dict[str, list[tuple[str, int]]] = {}
        for account, day, equity in rows:
            out.setdefault(account, []).append((day, int(equity)))
    return out


def _initial(home: LabHome) -> dict[str, int]:
    with sqlite3.connect(home.ledger_db) as db:
        return dict(db.execute("SELECT account, initial_cash FROM accounts").fetchall())


def test_loss_and_drawdown_rules_fire_exactly_where_the_ledger_says(ops_home: LabHome) -> None:
    equities, initial = _equities(ops_home), _initial(ops_home)
    loss, drawdown = {}, {}
    for account, rows in equities.items():
        before = rows[-2][1] if len(rows) > 1 else initial[account]
        loss[account] = 1 - rows[-1][1] / before
        drawdown[account] = 1 - rows[-1][1] / max([initial[account], *(e for _, e in rows)])
    threshold = 1e-6
    found = evaluate_alerts(ops_home, LAST, _rules(daily_loss=threshold, drawdown=threshold))
    assert {a.subject for a in found if a.rule == "daily_loss"} == {
        n for n, v in loss.items() if v > threshold
    }
    assert {a.subject for a in found if a.rule == "drawdown"} == {
        n for n, v in drawdown.items() if v > threshold
    }
    # Control: the home has at least one losing account on its last day, and a threshold above
    # every loss raises nothing.
    assert any(v > threshold for v in loss.values()), loss
    above = min(0.99, max(max(loss.values()), max(drawdown.values())) + 0.01)
    assert evaluate_alerts(ops_home, LAST, _rules(daily_loss=above, drawdown=above)) == []


def test_missing_day_stale_data_and_stress_rules(ops_home: LabHome) -> None:
    missing = evaluate_alerts(ops_home, date(2023, 5, 31), _rules(missing_day=True))
    assert [a.rule for a in missing] == ["missing_day"]
    assert sorted(missing[0].detail["accounts"]) == sorted(_equities(ops_home))
    assert evaluate_alerts(ops_home, LAST, _rules(missing_day=True)) == []

    stale = _rules(stale_data_days=5)
    last_bar = date(2023, 12, 29)
    fresh = evaluate_alerts(ops_home, LAST, stale, data_last_day=last_bar, today=date(2024, 1, 3))
    assert fresh == []
    found = evaluate_alerts(ops_home, LAST, stale, data_last_day=last_bar, today=date(2024, 1, 4))
    assert [(a.rule, a.detail["age_days"]) for a in found] == [("stale_data", 6)]

    folder = ops_home.stress / "2023-06-02"
    folder.mkdir(parents=True)
    result = {"passed": False, "scenarios": [{"name": "data-outage", "passed": False}]}
    (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
    found = evaluate_alerts(ops_home, LAST, _rules(stress_failed=True))
    assert [(a.rule, a.detail["failed"]) for a in found] == [("stress_failed", ["data-outage"])]
    result = {"passed": True, "scenarios": [{"name": "data-outage", "passed": True}]}
    (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
    assert evaluate_alerts(ops_home, LAST, _rules(stress_failed=True)) == []


def _verdicts(home: LabHome) -> list[tuple[str, float]]:
    with sqlite3.connect(home.ledger_db) as db:
        rows = db.execute("SELECT day, payload FROM decisions WHERE account = 'synthesis'")
        out = []
        for day, payload in rows:
            debate = json.loads(payload).get("debate")
            if isinstance(debate, dict):
                out.append((day, float(debate["confidence"])))
    return sorted(out)


def test_low_confidence_streak_is_one_alert_per_streak(ops_home: LabHome) -> None:
    verdicts = _verdicts(ops_home)
    assert len(verdicts) >= 3, verdicts
    top = max(c for _, c in verdicts)
    below = min(1.0, top + 0.01)  # every verdict of the home is under it
    found = evaluate_alerts(
        ops_home, LAST, _rules(low_confidence=LowConfidence(below=below, streak=len(verdicts)))
    )
    assert [(a.rule, a.detail["since"], a.detail["days"]) for a in found] == [
        ("low_confidence", verdicts[0][0], len(verdicts))
    ]
    # The same streak a day shorter is the same alert (keyed by its first day).
    earlier = evaluate_alerts(
        ops_home,
        date.fromisoformat(verdicts[-2][0]),
        _rules(low_confidence=LowConfidence(below=below, streak=len(verdicts) - 1)),
    )
    assert [a.alert_id for a in earlier] == [found[0].alert_id]
    # Controls: one more verdict day than the home has, or a bar under the lowest confidence.
    longer = _rules(low_confidence=LowConfidence(below=below, streak=len(verdicts) + 1))
    assert evaluate_alerts(ops_home, LAST, longer) == []
    lowest = min(c for _, c in verdicts)
    if lowest > 0:
        low = _rules(low_confidence=LowConfidence(below=lowest, streak=1))
        assert evaluate_alerts(ops_home, LAST, low) == []


def test_promotion_and_demotion_alerts(ops_home: LabHome) -> None:
    from evolution.store import GenePoolStore, TransitionRecord

    day = "2023-06-20"
    with GenePoolStore(ops_home.gene_pool_db) as store:
        genome = store.list_genomes("alive")[0]["genome_id"]
        store.transition(
            TransitionRecord(genome_id=genome, from_status="alive", to_status="candidate",
                             reason="test", day=day),
            TransitionRecord(genome_id=genome, from_status="candidate", to_status="probation",
                             reason="test", day=day),
            TransitionRecord(genome_id=genome, from_status="probation", to_status="demoted",
                             reason="test", day=day),
        )  # fmt: skip
    found = evaluate_alerts(ops_home, date.fromisoformat(day), _rules(lifecycle=True))
    # alive -> candidate is no promotion: the gate's candidates wait for approval.
    assert [(a.rule, a.subject, a.detail["to"]) for a in found] == [
        ("promotion", genome, "probation"),
        ("demotion", genome, "demoted"),
    ]
    assert evaluate_alerts(ops_home, LAST, _rules(lifecycle=True)) == []


def test_recording_the_same_day_twice_stores_each_alert_once(ops_home: LabHome) -> None:
    rules = AlertsConfig(daily_loss=1e-6, drawdown=1e-6)
    found = evaluate_alerts(ops_home, date(2023, 5, 31), rules, failed_steps={"arena_day": "boom"})
    assert {"missing_day", "failed_step"} <= {a.rule for a in found}
    with OpsStore(ops_home) as store:
        first = store.record_alerts(found)
        again = store.record_alerts(
            evaluate_alerts(ops_home, date(2023, 5, 31), rules, failed_steps={"arena_day": "boom"})
        )
    assert len(first) == len(found) and again == []
    rows = read_alerts(ops_home)
    assert sorted(r["alert_id"] for r in rows) == sorted(first)
    with sqlite3.connect(ops_db(ops_home)) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)


class _Hook:
    """A webhook on 127.0.0.1: records each POSTed JSON body; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if hook.status == 200:
                    hook.bodies.append(body)
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    yield server
    server.close()


def _stored(home: LabHome) -> list[str]:
    with OpsStore(home) as store:
        return store.record_alerts(
            evaluate_alerts(home, date(2023, 5, 31), AlertsConfig(), failed_steps={"x": "boom"})
        )


def test_webhook_receives_each_alert_once(ops_home: LabHome, hook: _Hook) -> None:
    ids = _stored(ops_home)
    config = WebhookConfig(url=hook.url, timeout_s=5.0)
    with OpsStore(ops_home) as store:
        report = deliver_alerts(store, config)
        assert report == {"url": hook.url, "delivered": len(ids), "failed": 0, "errors": {}}
        assert deliver_alerts(store, config)["delivered"] == 0  # nothing is sent twice
    assert sorted(b["alert_id"] for b in hook.bodies) == sorted(ids)
    rows = {r["alert_id"]: r for r in read_alerts(ops_home)}
    for body in hook.bodies:
        assert body["message"] == rows[body["alert_id"]]["message"]
        assert rows[body["alert_id"]]["delivery"]["delivered_at"] is not None


def test_failing_webhook_is_recorded_retried_and_never_raises(
    ops_home: LabHome, hook: _Hook
) -> None:
    ids = _stored(ops_home)
    hook.status = 500
    config = WebhookConfig(url=hook.url, timeout_s=5.0, attempts_per_run=2, max_attempts=3)
    with OpsStore(ops_home) as store:
        report = deliver_alerts(store, config)
    assert report["delivered"] == 0 and report["failed"] == len(ids)
    assert all("500" in why for why in report["errors"].values())
    rows = read_alerts(ops_home)
    assert {r["delivery"]["attempts"] for r in rows} == {2}
    assert all(r["delivery"]["delivered_at"] is None for r in rows)
    # The server recovers: the next run delivers them (attempt 3 of 3).
    hook.status = 200
    with OpsStore(ops_home) as store:
        assert deliver_alerts(store, config)["delivered"] == len(ids)
    assert sorted(b["alert_id"] for b in hook.bodies) == sorted(ids)
    # A webhook nobody listens on: recorded, not raised; after max_attempts, given up.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    with OpsStore(ops_home) as store:
        store.record_alerts(evaluate_alerts(ops_home, date(2023, 6, 1), AlertsConfig()))
        down = WebhookConfig(url=closed, timeout_s=2.0, attempts_per_run=1, max_attempts=1)
        first = deliver_alerts(store, down)
        assert first["failed"] >= 1 and first["delivered"] == 0
        assert deliver_alerts(store, down)["failed"] == 0  # given up after max_attempts


def _cli(home: LabHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home.root), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_alerts_in_the_snapshot_the_metrics_and_status(ops_home: LabHome) -> None:
    assert read_lab(ops_home).alerts == []
    ids = _stored(ops_home)
    snapshot = read_lab(ops_home)
    assert sorted(a["alert_id"] for a in snapshot.alerts) == sorted(ids)
    assert snapshot.to_dict()["alerts"] == snapshot.alerts
    expected: dict[str, int] = {}
    for row in read_alerts(ops_home):
        expected[row["rule"]] = expected.get(row["rule"], 0) + 1
    samples = {
        s.labels["rule"]: s.value
        for family in snapshot_metrics(snapshot)
        if family.name == "alphaloop_alerts"
        for s in family.samples
        if s.name == "alphaloop_alerts_total"
    }
    assert {r: v for r, v in samples.items() if v} == expected
    done = _cli(ops_home, "status")
    assert done.returncode == 0, done.stderr
    assert f"alerts: {len(ids)} (" in done.stdout
    assert "missing_day: 2023-05-31 is not committed" in done.stdout
    result = json.loads(_cli(ops_home, "status", "--json").stdout)
    assert result["alerts"]["total"] == len(ids)
    assert sorted(r["alert_id"] for r in result["alerts"]["records"]) == sorted(ids)


def test_a_home_without_alert_records_creates_no_store(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "home")
    assert read_alerts(home) == [] and read_lab(home).alerts == []
    assert not home.root.exists()
