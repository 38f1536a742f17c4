"""The exporter's exposition, in process: names, types, labels and values against the stores.

The expected values are read from the ledger and the gene pool through other read methods
than the collector's (per-day orders and fills, ``list_genomes`` rather than
``status_counts``) and recomputed here (drawdown, daily P&L).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alphaloop.home import LabHome
from alphaloop.metrics import METRICS, LabCollector
from arena.kill_switch import pause_lab
from arena.ledger import Ledger
from evolution.store import GenePoolStore

ALLOWED_LABELS = {"account", "rule", "kind", "status", "regime", "store", "scenario"}
# The scrape's clock: a day after the home is built (its days are committed at build time).
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def _scrape(home: LabHome) -> dict[str, object]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LabCollector(home, clock=lambda: NOW))
    return {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}


def _samples(families: dict[str, object], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    family = families[name]
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}  # type: ignore[attr-defined]


def _by(families: dict[str, object], name: str, label: str) -> dict[str, float]:
    return {dict(k)[label]: v for k, v in _samples(families, name).items()}


def _single(families: dict[str, object], name: str) -> float:
    (value,) = _samples(families, name).values()
    return value


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_exposition_names_types_and_labels_follow_the_conventions(ops_home: LabHome) -> None:
    families = _scrape(ops_home)
    assert families, "nothing exposed"
    for name, family in families.items():
        assert name.startswith("alphaloop_"), name
        kind, labels, _ = METRICS[name]
        assert family.type == kind, (name, family.type)  # type: ignore[attr-defined]
        for sample in family.samples:  # type: ignore[attr-defined]
            assert set(sample.labels) == set(labels), (name, sample.labels)
            assert set(sample.labels) <= ALLOWED_LABELS
            if kind == "counter":
                assert sample.name in (f"{name}_total", f"{name}_created"), sample.name
            else:
                assert sample.name == name
    # No genome id or order id ever becomes a label value.
    with GenePoolStore(ops_home.gene_pool_db) as store:
        genome_ids = {row["genome_id"] for row in store.list_genomes()}
    values = {
        value
        for family in families.values()
        for sample in family.samples  # type: ignore[attr-defined]
        for value in sample.labels.values()
    }
    assert genome_ids and not values & genome_ids
    assert not any(len(value) >= 16 and value.isalnum() for value in values), values


def test_exposition_values_match_the_ledger_and_the_pool(ops_home: LabHome) -> None:
    families = _scrape(ops_home)
    assert _single(families, "alphaloop_up") == 1.0
    assert _by(families, "alphaloop_store_up", "store") == {"ledger": 1.0, "gene_pool": 1.0}
    equity = _by(families, "alphaloop_account_equity", "account")
    drawdown = _by(families, "alphaloop_account_drawdown_ratio", "account")
    pnl = _by(families, "alphaloop_account_daily_pnl", "account")
    orders = _by(families, "alphaloop_orders", "account")
    fills = _by(families, "alphaloop_fills", "account")
    rejects = _by(families, "alphaloop_order_rejects", "account")
    risk = {
        (dict(k)["account"], dict(k)["rule"], dict(k)["kind"]): v
        for k, v in _samples(families, "alphaloop_risk_events").items()
    }
    expected_risk: Counter[tuple[str, str, str]] = Counter()
    with Ledger(ops_home.ledger_db) as ledger:
        names = ledger.accounts()
        assert set(equity) == set(names) == {"aggressive", "conservative", "synthesis"}
        last = ledger.last_committed_day()
        for name in names:
            scale = 10.0 ** ledger.money_digits(name)
            initial = ledger.account_record(name).initial_cash / scale
            curve = [snap.equity / scale for _, snap in ledger.equity_history(name)]
            assert equity[name] == pytest.approx(curve[-1], abs=1e-9)
            peak = max([initial, *curve])
            assert drawdown[name] == pytest.approx(1 - curve[-1] / peak, abs=1e-12)
            assert pnl[name] == pytest.approx(curve[-1] - curve[-2], abs=1e-6)
            days = ledger.committed_days(name)
            day_orders = [o for day in days for o in ledger.orders(name, day)]
            assert orders[name] == len(day_orders)
            assert fills[name] == len(ledger.fills(name))
            assert rejects[name] == sum(o.status == "rejected" for o in day_orders)
            for day in days:
                expected_risk.update(
                    (name, e.rule, e.reason.split(":")[0]) for e in ledger.risk_events(name, day)
                )
        decision = next(iter(ledger.decisions("synthesis", last).values()))
    # The home was built with risk limits tight enough to raise events (else this proves little).
    assert sum(expected_risk.values()) > 0 and sum(fills.values()) > 0
    assert risk == {key: float(n) for key, n in expected_risk.items()}
    regime = decision["perception"]["regime"]["regime"]
    assert _by(families, "alphaloop_regime", "regime")[regime] == 1.0
    assert sum(_by(families, "alphaloop_regime", "regime").values()) == 1.0
    midnight = datetime(last.year, last.month, last.day, tzinfo=UTC).timestamp()
    assert _single(families, "alphaloop_last_committed_day_timestamp_seconds") == midnight
    committed = _single(families, "alphaloop_last_commit_timestamp_seconds")
    assert _single(families, "alphaloop_last_commit_age_seconds") == pytest.approx(
        NOW.timestamp() - committed
    )
    with GenePoolStore(ops_home.gene_pool_db) as store:
        statuses = Counter(row["status"] for row in store.list_genomes())
        session = store.latest_session()
        assert session is not None
        generation = store.last_generation(session["session_id"])
        assert generation is not None
        scores = [m["score"] for m in store.population(session["session_id"], generation)]
    pool = _by(families, "alphaloop_pool_genomes", "status")
    assert {s: v for s, v in pool.items() if v} == {s: float(n) for s, n in statuses.items()}
    assert _single(families, "alphaloop_generation_best_score") == pytest.approx(max(scores))
    assert _single(families, "alphaloop_generation_median_score") == pytest.approx(
        statistics.median(scores)
    )
    assert _single(families, "alphaloop_generation_size") == len(scores)
    # Reviewed days give the execution and divergence figures; none is made up.
    with Ledger(ops_home.ledger_db) as ledger:
        rows = ledger.genome_days(start=last, end=last)
    divergence = _by(families, "alphaloop_paper_backtest_divergence_ratio", "account")
    for name in names:
        own = [r for r in rows if r.account == name]
        gap = sum(r.pnl - r.expected_pnl for r in own) / sum(r.allocation for r in own)
        assert divergence[name] == pytest.approx(gap, rel=1e-9, abs=1e-15)
    shortfall = _by(families, "alphaloop_execution_shortfall_ratio", "account")
    for name in names:
        own = [r for r in rows if r.account == name and r.turnover > 0]
        if not own:
            assert name not in shortfall
            continue
        value = sum(r.turnover * r.allocation for r in own)
        bps = sum(r.avg_slippage_bps * r.turnover * r.allocation for r in own) / value
        assert shortfall[name] == pytest.approx(bps / 1e4, rel=1e-9)
    assert shortfall, "no account traded on the last day: the shortfall is untested"
    assert _single(families, "alphaloop_paused") == 0.0
    assert "alphaloop_stress_passed" not in families


def test_exposition_shows_the_pause_and_the_last_stress_replay(ops_home: LabHome) -> None:
    pause_lab(ops_home, reason="looking into a fill", flatten=True)
    older, newer = ops_home.stress / "2023-06-01", ops_home.stress / "2023-06-08"
    for folder, passed in ((older, True), (newer, False)):
        folder.mkdir(parents=True)
        scenarios = [
            {"name": "crash-2015", "passed": True},
            {"name": "data-outage", "passed": passed},
        ]
        (folder / "result.json").write_text(
            json.dumps({"passed": passed, "scenarios": scenarios}), encoding="utf-8"
        )
    # A dated folder without a result (a replay still running) is not the last result.
    (ops_home.stress / "2023-06-15").mkdir()
    families = _scrape(ops_home)
    assert _single(families, "alphaloop_paused") == 1.0
    assert _single(families, "alphaloop_paused_flatten") == 1.0
    assert _single(families, "alphaloop_stress_passed") == 0.0
    assert _by(families, "alphaloop_stress_scenario_passed", "scenario") == {
        "crash-2015": 1.0,
        "data-outage": 0.0,
    }
    assert _single(families, "alphaloop_stress_day_timestamp_seconds") == (
        datetime(2023, 6, 8, tzinfo=UTC).timestamp()
    )


def test_exposition_of_a_missing_home_is_valid_and_creates_nothing(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "no-such-home")
    families = _scrape(home)
    assert _single(families, "alphaloop_up") == 1.0
    assert _by(families, "alphaloop_store_present", "store") == {
        "ledger": 0.0,
        "gene_pool": 0.0,
        "stress": 0.0,
        "alerts": 0.0,
    }
    assert "alphaloop_account_equity" not in families
    assert "alphaloop_store_up" not in families
    assert _single(families, "alphaloop_paused") == 0.0
    assert not home.root.exists()


def test_exposition_of_an_unreadable_ledger_reports_it_and_keeps_the_rest(
    ops_home: LabHome,
) -> None:
    ops_home.ledger_db.write_bytes(b"this is not a database\n" * 100)
    before = _sha(ops_home.ledger_db)
    families = _scrape(ops_home)
    assert _single(families, "alphaloop_up") == 0.0
    assert _by(families, "alphaloop_store_up", "store") == {"ledger": 0.0, "gene_pool": 1.0}
    assert "alphaloop_account_equity" not in families
    assert "alphaloop_last_commit_age_seconds" not in families
    assert sum(_by(families, "alphaloop_pool_genomes", "status").values()) > 0
    assert _sha(ops_home.ledger_db) == before


_HOLD_LOCKS = """
import sys, time
from contextlib import ExitStack
from alphaloop.home import LabHome
from alphaloop.locks import STORES, store_lock
with ExitStack() as stack:
    for store in STORES:
        stack.enter_context(store_lock(LabHome.resolve(sys.argv[1]), store, purpose="holder"))
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_scrape_reads_while_another_process_holds_every_store_lock(
    ops_home: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scrape that took a write lock would give up at once (timeout 0) and report up == 0.
    monkeypatch.setenv("ALPHALOOP_LOCK_TIMEOUT", "0")
    files = [ops_home.ledger_db, ops_home.gene_pool_db]
    before = [_sha(path) for path in files]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCKS, str(ops_home.root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        families = _scrape(ops_home)
        assert _single(families, "alphaloop_up") == 1.0
        assert sum(_by(families, "alphaloop_orders", "account").values()) > 0
    finally:
        holder.kill()
        holder.wait()
    assert [_sha(path) for path in files] == before


def _serve(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("serving: http://127.0.0.1:"), line
    return line.split()[1].rsplit("/", 1)[0]


def test_serve_answers_metrics_health_and_nothing_else(ops_home: LabHome) -> None:
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    process = _serve(ops_home.root, "--port", "0")
    try:
        base = _url(process)
        with urlopen(f"{base}/metrics", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["alphaloop_up"].samples[0].value == 1.0
        assert "alphaloop_account_equity" in families
        with urlopen(f"{base}/healthz", timeout=30) as response:
            assert response.read() == b"ok\n"
        with pytest.raises(HTTPError) as missing:
            urlopen(f"{base}/admin", timeout=30)
        assert missing.value.code == 404
        with pytest.raises(HTTPError) as posted:
            urlopen(Request(f"{base}/metrics", data=b"x", method="POST"), timeout=30)
        assert posted.value.code == 405
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0


def test_serve_on_a_busy_port_or_a_bad_one_is_one_error_line(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        for args in (("--port", str(port)), ("--port", "70000"), ("--host", "203.0.113.7")):
            process = _serve(tmp_path / "home", *args)
            _, err = process.communicate(timeout=60)
            lines = err.strip().splitlines()
            assert process.returncode == 2, (args, err)
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)
    finally:
        taken.close()
    assert not (tmp_path / "home").exists()


def test_scrape_time_is_the_collector_clock_not_the_ledger_s(ops_home: LabHome) -> None:
    # The age grows with the clock: two scrapes a day apart differ by a day.
    first = LabCollector(ops_home, clock=lambda: NOW)
    later = LabCollector(ops_home, clock=lambda: NOW + timedelta(days=1))

    def age(collector: LabCollector) -> float:
        for family in collector.collect():
            if family.name == "alphaloop_last_commit_age_seconds":
                return float(family.samples[0].value)
        raise AssertionError("no age")

    assert age(later) - age(first) == pytest.approx(86400.0)
    assert math.isfinite(age(first))
