"""The per-store write lock of a lab home (``alphaloop.locks``), between real processes.

A holder is a separate Python process (``flock`` locks are per open file: a lock held by this
process would not make another attempt of this process wait, and would not show the message
another process prints).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphaloop.errors import AlphaLoopError, ConfigError
from alphaloop.home import LabHome
from alphaloop.locks import STORES, StoreBusy, lock_path, lock_timeout, store_lock

HOLD = """
import sys, time
from pathlib import Path
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
with store_lock(LabHome(Path(sys.argv[1])), sys.argv[2], purpose="a test holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _holder(home: Path, store: str, seconds: float) -> subprocess.Popen[str]:
    """Start a process that holds ``store``'s lock for ``seconds``; return once it holds it."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home), store, str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_lock_held_by_another_process_waits_with_a_message_then_proceeds(
    lab_home: LabHome, capfd: pytest.CaptureFixture[str]
) -> None:
    holder = _holder(lab_home.root, "ledger", 2.0)
    started = time.monotonic()
    with store_lock(lab_home, "ledger", purpose="the waiting writer", timeout=120):
        waited = time.monotonic() - started
    holder.wait(timeout=60)
    err = capfd.readouterr().err
    assert waited > 0.5  # it waited for the holder...
    (line,) = [row for row in err.splitlines() if row.startswith("waiting:")]
    # ...and said for what: the store, the home, the holder and its purpose.
    assert "ledger" in line and str(lab_home.root) in line
    assert f"pid {holder.pid}" in line and "a test holder" in line


def test_lock_free_takes_it_at_once_without_a_message(
    lab_home: LabHome, capfd: pytest.CaptureFixture[str]
) -> None:
    # Control of the test above: nobody holds the lock, so no wait and no message.
    started = time.monotonic()
    with store_lock(lab_home, "ledger", purpose="alone", timeout=120):
        pass
    assert time.monotonic() - started < 0.5
    assert "waiting:" not in capfd.readouterr().err


def test_lock_still_held_after_timeout_raises_store_busy_naming_store_and_home(
    lab_home: LabHome,
) -> None:
    holder = _holder(lab_home.root, "gene_pool", 30.0)
    try:
        with pytest.raises(StoreBusy) as caught:
            with store_lock(lab_home, "gene_pool", purpose="evolve", timeout=0.5):
                pytest.fail("the lock of a live holder was taken")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert isinstance(caught.value, AlphaLoopError)  # the CLI's error line, exit 2
    message = str(caught.value)
    assert "gene_pool" in message and str(lab_home.root) in message
    assert f"pid {holder.pid}" in message and "ALPHALOOP_LOCK_TIMEOUT" in message


def test_lock_of_a_killed_holder_is_released(lab_home: LabHome) -> None:
    holder = _holder(lab_home.root, "mlflow", 300.0)
    holder.kill()  # SIGKILL: no clean-up code runs
    holder.wait(timeout=30)
    with store_lock(lab_home, "mlflow", purpose="after a crash", timeout=5):
        pass


def test_lock_is_reentrant_in_one_process_and_per_store(lab_home: LabHome) -> None:
    with store_lock(lab_home, "ledger", purpose="outer", timeout=0):
        with store_lock(lab_home, "ledger", purpose="inner", timeout=0):
            pass
        # Another store is another lock; a held ledger lock does not hold the gene pool's.
        with store_lock(lab_home, "gene_pool", purpose="other store", timeout=0):
            pass
        # Still held after the inner block: another process cannot take it.
        held = _try_once(lab_home.root, "ledger")
        assert held.returncode != 0 and "StoreBusy" in held.stderr
    # Released after the outer block.
    free = _try_once(lab_home.root, "ledger")
    assert free.returncode == 0, free.stderr


def _try_once(home: Path, store: str) -> subprocess.CompletedProcess[str]:
    """Try to take ``store``'s lock in another process without waiting."""
    env = {**os.environ, "ALPHALOOP_LOCK_TIMEOUT": "0"}
    return subprocess.run(
        [sys.executable, "-c", HOLD, str(home), store, "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_lock_files_one_per_store_under_the_home(lab_home: LabHome) -> None:
    paths = {lock_path(lab_home, store) for store in STORES}
    assert paths == {lab_home.root / "locks" / f"{store}.lock" for store in STORES}
    with pytest.raises(ValueError, match="unknown store"):
        lock_path(lab_home, "notes")


def test_lock_timeout_from_environment_or_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHALOOP_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == 3600.0
    monkeypatch.setenv("ALPHALOOP_LOCK_TIMEOUT", "2.5")
    assert lock_timeout() == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("ALPHALOOP_LOCK_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="ALPHALOOP_LOCK_TIMEOUT"):
            lock_timeout()
