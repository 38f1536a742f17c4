"""No surprise egress (issue 14 item 6): a full ``arena run`` reaches nothing beyond loopback.

The command runs in a subprocess under a socket guard: a ``sitecustomize`` module, on a
``PYTHONPATH`` folder this test writes, wraps ``socket.socket.connect``/``connect_ex``,
``socket.create_connection``, ``socket.getaddrinfo`` and ``socket.gethostbyname`` in every
Python process that starts with that environment (the command, and Ray's workers, which
inherit it), and records each non-loopback target (a connection, or a DNS lookup of a name)
to a file. The record must stay empty. Ray's own C++ processes (GCS, raylet) are outside a
Python guard; their binding to 127.0.0.1 is checked in ``test_ray_ownership.py``.

The environment is cleaned of everything that would switch the reports off by accident
(MLflow's telemetry is off under pytest and CI variables): what keeps them off is the lab.
Controls: the guard records a deliberate lookup and connection, it is loaded by Ray's worker
processes of the run, and a lab process whose user turned MLflow's telemetry back on does reach
for MLflow's telemetry host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = "synthetic:seed=5,assets=5,start=2022-01-01,end=2023-12-31"
DAY = "2023-06-01"
TIMEOUT_S = 600

GUARD = textwrap.dedent(
    '''
    """Socket guard of tests/alphaloop/test_no_egress.py: record non-loopback targets."""
    import ipaddress
    import json
    import os
    import socket

    _RECORD = os.environ.get("EGRESS_GUARD_RECORD")


    def _write(name, entry):
        entry["pid"] = os.getpid()
        with open(os.path.join(_RECORD, name), "a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry) + "\\n")


    def _local(host):
        if host is None:
            return True  # getaddrinfo(None, port): a local address to bind
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        host = str(host).strip("[]")
        if host in ("", "localhost", "localhost.localdomain"):
            return True
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False  # a name: resolving it is a DNS query
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or address.is_unspecified


    def _check(kind, host, port=None):
        if not _local(host):
            _write("egress.jsonl", {"kind": kind, "host": str(host), "port": str(port)})


    def _inet(sock, address):
        return sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)


    if _RECORD:
        _connect = socket.socket.connect
        _connect_ex = socket.socket.connect_ex
        _getaddrinfo = socket.getaddrinfo
        _create_connection = socket.create_connection
        _gethostbyname = socket.gethostbyname

        def connect(self, address):
            if _inet(self, address):
                _check("connect", address[0], address[1])
            return _connect(self, address)

        def connect_ex(self, address):
            if _inet(self, address):
                _check("connect", address[0], address[1])
            return _connect_ex(self, address)

        def getaddrinfo(host, port, *args, **kwargs):
            _check("getaddrinfo", host, port)
            return _getaddrinfo(host, port, *args, **kwargs)

        def create_connection(address, *args, **kwargs):
            _check("create_connection", address[0], address[1])
            return _create_connection(address, *args, **kwargs)

        def gethostbyname(host):
            _check("gethostbyname", host)
            return _gethostbyname(host)

        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex
        socket.getaddrinfo = getaddrinfo
        socket.create_connection = create_connection
        socket.gethostbyname = gethostbyname
        # sys.argv is not set yet when site runs; the kernel knows the command line.
        with open("/proc/self/cmdline", "rb") as stream:
            _command = stream.read().replace(b"\\0", b" ").decode("utf-8", "replace")
        _write("loaded.jsonl", {"argv": _command[:300]})
    '''
)
# Variables under which MLflow turns its telemetry off by itself (its CI detection), or that
# switch a report off: removed so that only the lab's own default keeps them off.
CLEARED = (
    "PYTEST_CURRENT_TEST", "PYTEST_VERSION", "CI", "GITHUB_ACTIONS", "CIRCLECI", "GITLAB_CI",
    "JENKINS_URL", "TRAVIS", "BUILDKITE", "TEAMCITY_VERSION", "CODEBUILD_BUILD_ID",
    "BITBUCKET_BUILD_NUMBER", "TF_BUILD", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK",
    "RAY_USAGE_STATS_ENABLED", "ALPHALOOP_HOME", "RAY_ADDRESS", "ALPHALOOP_MLFLOW_URI",
)  # fmt: skip


@pytest.fixture
def guard(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Return the guarded environment and the folder the guard records into."""
    site = tmp_path / "guard_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GUARD)
    record = tmp_path / "guard_record"
    record.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED and not k.startswith("CI_")}
    paths = [str(site), env.get("PYTHONPATH", ""), str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["EGRESS_GUARD_RECORD"] = str(record)
    return env, record


def _read(record: Path, name: str) -> list[dict[str, Any]]:
    path = record / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_guard_records_a_lookup_and_a_connection_beyond_loopback(
    guard: tuple[dict[str, str], Path],
) -> None:
    # Control: the guard can see egress (else the empty record below would prove nothing).
    env, record = guard
    probe = (
        "import socket\n"
        "for attempt in (lambda: socket.getaddrinfo('example.com', 443),\n"
        "                lambda: socket.create_connection(('192.0.2.1', 9), timeout=0.2)):\n"
        "    try:\n"
        "        attempt()\n"
        "    except OSError:\n"
        "        pass\n"
        "socket.getaddrinfo('127.0.0.1', 80)\n"  # loopback: not recorded
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = {(e["kind"], e["host"]) for e in _read(record, "egress.jsonl")}
    assert ("getaddrinfo", "example.com") in seen
    assert ("create_connection", "192.0.2.1") in seen
    assert not any(host == "127.0.0.1" for _kind, host in seen)


def test_mlflow_telemetry_turned_on_by_the_user_is_seen_by_the_guard(
    guard: tuple[dict[str, str], Path],
) -> None:
    # Control: the lab's default is what keeps MLflow quiet. A user who opts back in
    # (MLFLOW_DISABLE_TELEMETRY=false) gets MLflow's telemetry lookups, and the guard sees them.
    env, record = guard
    env = {**env, "MLFLOW_DISABLE_TELEMETRY": "false"}
    probe = (
        "import time\n"
        "from alphaloop.home import LabHome\n"
        "from evolution.tracking import client_for, experiment_id\n"
        "home = LabHome.resolve()\n"
        "client = client_for(home)\n"
        "run = client.create_run(experiment_id(client, 'probe', home))\n"
        "client.set_terminated(run.info.run_id, 'FINISHED')\n"
        "time.sleep(5)\n"  # the telemetry client asks for its configuration in a thread
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "ALPHALOOP_HOME": str(record.parent / "h")},
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    hosts = {e["host"] for e in _read(record, "egress.jsonl")}
    assert any("mlflow" in host for host in hosts), hosts


def test_full_arena_run_reaches_nothing_beyond_loopback(
    guard: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, record = guard
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home), "arena", "run", "--date",
         DAY, "--data", SPEC, "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # A full run: the accounts on Ray actors, a committed day, an MLflow run.
    assert summary["already_committed"] is False and summary["mlflow_run_id"]
    loaded = _read(record, "loaded.jsonl")
    assert any("alphaloop.cli" in e["argv"] for e in loaded)
    # The guard was in Ray's worker processes too (they run the account actors).
    assert any("default_worker.py" in e["argv"] for e in loaded), [e["argv"] for e in loaded]
    assert _read(record, "egress.jsonl") == []
