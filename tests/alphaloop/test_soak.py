"""The unattended soak (issue 16 item 7), shortened: ``benchmarks/soak.py``'s own driver.

A fresh home, ``alphaloop serve`` as a subprocess, ``alphaloop daily --date D`` as one process
per trading day over three days of a small synthetic market (Thursday, Friday with a small
weekly evolution and a one-scenario stress replay, Monday), ``/metrics`` scraped every second
throughout. Asserted: no error, every scrape 200 and parseable, the exporter's figures equal
the stores' at the end. The stores' figures come from the benchmark's
:func:`expected_from_stores` (the ledger's and the gene pool's own readers, never
``alphaloop.metrics``/``alphaloop.observe``), and the test recounts a few of them straight from
the SQLite tables. Controls: the same check against a copy of the home taken after the first
day, and against a tampered expectation, reports mismatches; a scrape of a closed port and of a
server answering something that is not an exposition are errors; so is a day that printed an
``error:`` line. Memory is recorded and only checked to have been measured (no bound: timings
and memory are never pass/fail here).
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
import socket
import sqlite3
import sys
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ops_home import RISK, SPEC

from alphaloop.home import LabHome

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
OPS = {
    "daily": {
        "evolution": {"generations": 1, "population": 4, "window": 60},
        "stress": {"scenarios": ["data-outage"]},
    },
}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


soak = _load()


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the soak once for the module; keep what the checks and the controls need."""
    root = tmp_path_factory.mktemp("soak")
    ops, arena = root / "ops.yaml", root / "arena.yaml"
    ops.write_text(yaml.safe_dump(OPS), encoding="utf-8")
    arena.write_text(yaml.safe_dump(RISK), encoding="utf-8")
    days = soak.pick_days(SPEC, 3, date(2023, 5, 25))
    home = root / "home"
    seen: dict[str, Any] = {"days": days, "home": home}

    def on_day(record: Any, base: str) -> None:
        if record.day == days[0]:
            shutil.copytree(home, root / "after-day-one")
        if record.day == days[-1]:  # serve still runs: the controls scrape it here
            seen["stale"], _ = soak.check_now(base, home, against=root / "after-day-one")
            seen["fresh"], text = soak.check_now(base, home)
            seen["observed"] = soak.observed_from_text(text)

    args = ["--local", "--no-mlflow", "--data", SPEC, "--config", str(ops)]
    seen["result"] = soak.run_soak(
        home, days, daily_args=[*args, "--arena-config", str(arena)], scrape_every=(1.0, 1.0),
        on_day=on_day,
    )  # fmt: skip
    return seen


def test_a_short_soak_has_no_error_and_every_scrape_parses(soaked: dict[str, Any]) -> None:
    result = soaked["result"]
    assert [d.day for d in result.days] == soaked["days"]
    assert soaked["days"] == [date(2023, 5, 25), date(2023, 5, 26), date(2023, 5, 29)]
    assert result.errors == []
    for record in result.days:
        assert record.returncode == 0, record.lines
        assert record.lines[0] == f"daily {record.day.isoformat()}:"
        assert any(line.startswith("step arena_day: done") for line in record.lines)
    friday = result.days[1].lines
    assert any(line.startswith("step weekly_evolution: done (1 generation") for line in friday)
    assert any(line.startswith("step stress: done") for line in friday)
    # Scraped every second over the whole run (three processes of several seconds each).
    assert len(result.scrapes) >= 10
    assert all(s.status == 200 and s.parsed for s in result.scrapes)
    # The first ones see an empty home (a few families); the later ones the accounts and pool.
    assert result.scrapes[-1].families > 20
    line = soak.summary_line(result)
    assert line.startswith("days=3 errors=0 scrapes=")
    assert "metrics_match_ledger=true" in line


def test_the_metrics_equal_the_stores_at_the_end(soaked: dict[str, Any]) -> None:
    result, home = soaked["result"], soaked["home"]
    assert result.final_mismatches == [] and result.metrics_match_ledger
    assert all(d.mismatches == [] for d in result.days)
    assert soaked["fresh"] == []
    observed = soaked["observed"]
    # Recounted here from the tables, by SQL, without the benchmark's reader.
    lab = LabHome(home)
    with sqlite3.connect(lab.ledger_db) as db:
        fills = dict(db.execute("SELECT account, COUNT(*) FROM fills GROUP BY account").fetchall())
        orders = dict(
            db.execute("SELECT account, COUNT(*) FROM orders GROUP BY account").fetchall()
        )
        days = dict(db.execute("SELECT account, COUNT(*) FROM days GROUP BY account").fetchall())
    with sqlite3.connect(lab.gene_pool_db) as db:
        pool = dict(db.execute("SELECT status, COUNT(*) FROM genomes GROUP BY status").fetchall())
    assert set(observed["accounts"]) == {"aggressive", "conservative", "synthesis"}
    for name, figures in observed["accounts"].items():
        assert figures["fills"] == fills.get(name, 0)
        assert figures["orders"] == orders.get(name, 0)
        assert figures["days"] == days[name] == 3
    assert sum(fills.values()) > 0, "nothing traded: the fill counts prove little"
    assert {s: n for s, n in observed["pool"].items() if n} == {
        s: float(n) for s, n in pool.items()
    }
    assert sum(pool.values()) > 0, "the evolution stored no genome"
    # Every memory figure was measured (values are reported, never bounded here).
    assert all(d.peak_rss_kb and d.peak_rss_kb > 0 for d in result.days)
    assert all(d.serve_hwm_kb and d.serve_hwm_kb >= d.serve_rss_kb > 0 for d in result.days)
    assert result.serve_samples and result.rss_method in ("gnu-time", "psutil", "proc")


def test_control_the_check_fails_on_a_day_old_home_and_a_tampered_expectation(
    soaked: dict[str, Any],
) -> None:
    stale = soaked["stale"]
    assert any("days: ledger 1" in m for m in stale), stale
    assert any("last committed day" in m for m in stale), stale
    expected = soak.expected_from_stores(soaked["home"])
    observed = soaked["observed"]
    window = (0.0, float("inf"))  # the age is not what this control is about
    assert soak.compare(expected, observed, scraped_at=window) == []
    for key, change in (("fills", 1), ("rejects", 1), ("equity", 0.01)):
        tampered = copy.deepcopy(expected)
        tampered["accounts"]["synthesis"][key] += change
        found = soak.compare(tampered, observed, scraped_at=window)
        assert len(found) == 1 and found[0].startswith(f"synthesis {key}:"), found
    tampered = copy.deepcopy(expected)
    tampered["pool"]["candidate"] = tampered["pool"].get("candidate", 0) + 1
    found = soak.compare(tampered, observed, scraped_at=window)
    assert len(found) == 1 and found[0].startswith("pool by status"), found
    # An age outside the scrape's interval is a mismatch too.
    late = (observed["last_commit"] + 10 * 86400.0,) * 2
    assert any("last commit age" in m for m in soak.compare(expected, observed, scraped_at=late))


class _NotMetrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"alphaloop_up{broken 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_control_a_failed_or_unparseable_scrape_and_an_error_line_are_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    record, _ = soak.scrape(closed, timeout=5)
    assert record.status == 0 and not record.ok
    server = HTTPServer(("127.0.0.1", 0), _NotMetrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        record, text = soak.scrape(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert record.status == 200 and text is not None
    assert not record.parsed and not record.ok and record.error.startswith("parse:")
    day = soak.DayRecord(
        day=date(2023, 5, 25), returncode=0, lines=["daily 2023-05-25:"],
        stderr_tail=["error: ledger.sqlite: not a database"], seconds=1.0, peak_rss_kb=1,
    )  # fmt: skip
    assert day.errors == ["error: ledger.sqlite: not a database"]
    failed = soak.DayRecord(
        day=date(2023, 5, 25), returncode=1, lines=["step stress: failed: RuntimeError: x"],
        stderr_tail=[], seconds=1.0, peak_rss_kb=1,
    )  # fmt: skip
    assert failed.errors == ["exit status 1", "step stress: failed: RuntimeError: x"]
