"""A real Prometheus server scrapes a running ``alphaloop serve``; its HTTP API returns the series.

Prometheus is Debian's ``prometheus`` package (``.ci/run`` installs it). Without the binary the
test skips, saying so, except in CI (``$CI`` is ``true``), where a missing server is a failure:
the check must not pass there by not running. The server gets its own configuration (a
one-second scrape of the one target), a TSDB folder in the test's temporary folder and free
loopback ports; both processes are stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
from ops_home import stop_process

from alphaloop.home import LabHome
from arena.ledger import Ledger

DEADLINE_S = 90.0
# The log file of each running server, by its base URL (shown when a query times out).
base_log: dict[str, Path] = {}


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The Prometheus server's binary (looked up before the lab home is built)."""
    found = shutil.which("prometheus")
    if found is None:
        why = "the prometheus binary is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; in CI it must be (.ci/run installs it)")
        pytest.skip(why)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def exporter(ops_home: LabHome) -> Iterator[str]:
    """A running ``alphaloop serve`` of the operations home; yields its ``host:port``."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alphaloop.cli",
            "--home",
            str(ops_home.root),
            "serve",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving: http://127.0.0.1:"), (line, process.stderr)
        yield line.split()[1].removeprefix("http://").removesuffix("/metrics")
    finally:
        stop_process(process)


@pytest.fixture
def prometheus(prometheus_binary: str, exporter: str, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping ``exporter`` every second; yields its base URL."""
    binary = prometheus_binary
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: alphaloop\n"
        "    scrape_interval: 1s\n"
        "    scrape_timeout: 1s\n"
        f"    static_configs:\n      - targets: ['{exporter}']\n",
        encoding="utf-8",
    )
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    base_log[base] = tmp_path / "prometheus.log"
    try:
        yield base
    finally:
        stop_process(process)
        log.close()
        del base_log[base]


def _query(base: str, expr: str) -> list[dict[str, object]]:
    with urlopen(f"{base}/api/v1/query?{urlencode({'query': expr})}", timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _wait_for(base: str, expr: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            result = _query(base, expr)
            if result:
                return result
        except (URLError, ConnectionError, OSError):
            pass  # the server is still starting
        if time.monotonic() > deadline:
            log = base_log[base].read_text(encoding="utf-8")[-3000:]
            raise AssertionError(
                f"Prometheus returned no {expr!r} within {DEADLINE_S:g} s; its log:\n{log}"
            )
        time.sleep(0.5)


def _values(result: list[dict[str, object]], label: str) -> dict[str, float]:
    return {
        item["metric"][label]: float(item["value"][1])  # type: ignore[index]
        for item in result
    }


def test_prometheus_scrapes_serve_and_its_api_returns_the_ledger_s_series(
    prometheus_binary: str, ops_home: LabHome, prometheus: str, exporter: str
) -> None:
    up = _wait_for(prometheus, 'up{job="alphaloop"} == 1')
    assert up[0]["metric"]["instance"] == exporter  # type: ignore[index]
    equity = _values(_wait_for(prometheus, "alphaloop_account_equity"), "account")
    orders = _values(_wait_for(prometheus, "alphaloop_orders_total"), "account")
    fills = _values(_wait_for(prometheus, "alphaloop_fills_total"), "account")
    risk = _wait_for(prometheus, "sum by (account) (alphaloop_risk_events_total)")
    with Ledger(ops_home.ledger_db) as ledger:
        names = ledger.accounts()
        expected_equity = {}
        for name, (_, snapshot) in ledger.last_equities().items():
            expected_equity[name] = snapshot.equity / 10.0 ** ledger.money_digits(name)
        expected_orders = {
            name: sum(len(ledger.orders(name, day)) for day in ledger.committed_days(name))
            for name in names
        }
        expected_fills = {name: len(ledger.fills(name)) for name in names}
        expected_risk = {
            name: sum(len(ledger.risk_events(name, day)) for day in ledger.committed_days(name))
            for name in names
        }
    assert set(equity) == set(names)
    for name in names:
        assert equity[name] == pytest.approx(expected_equity[name], rel=1e-12)
    assert orders == {name: float(n) for name, n in expected_orders.items()}
    assert fills == {name: float(n) for name, n in expected_fills.items()}
    assert _values(risk, "account") == {n: float(c) for n, c in expected_risk.items() if c}
    health = _values(_wait_for(prometheus, "alphaloop_store_up"), "store")
    assert health == {"ledger": 1.0, "gene_pool": 1.0}
    assert _query(prometheus, "alphaloop_up")[0]["value"][1] == "1"  # type: ignore[index]
