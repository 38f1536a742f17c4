"""One writer per store of a lab home: an advisory file lock per store.

The stores of a home (the arena's ``ledger.sqlite``, the ``gene_pool.sqlite``, MLflow's
``mlflow.db`` and the policy registry's pointer ``policies/registered.json``) are each written
under a lock file, ``<home>/locks/<store>.lock``, held with ``flock(2)`` by the command that
writes. SQLite keeps each transaction whole, but not the work
that spans several: an arena day's check "committed?" and its commits, an evolution session's
generations, and the first use of MLflow's store (its schema is created by whichever process
opens it first; two at once crashed inside MLflow's migrations). A second writer waits: it
prints one ``waiting:`` line on stderr naming the store, the home and the holder, and carries on
when the holder is done, or after :data:`TIMEOUT_ENV_VAR` seconds (default
:data:`DEFAULT_TIMEOUT_S`) fails with a :class:`StoreBusy` (the CLI's ``error:`` line, exit
status 2) before it has written anything.

The lock is the kernel's: a holder that dies (``kill -9`` included) releases it with its file
descriptor, so a crash never leaves a home locked. A lock is re-entrant within a process (an
arena replay holds the ledger's and runs days that take it again). When several are held they
are taken in the order of :data:`STORES`, which every caller follows, so two commands cannot
wait on each other. Plain Python; no Ray, no MLflow.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from alphaloop.errors import AlphaLoopError
from alphaloop.home import LabHome

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "STORES",
    "TIMEOUT_ENV_VAR",
    "StoreBusy",
    "lock_path",
    "lock_timeout",
    "store_lock",
]

# The stores of a home, in the order their locks are taken when a command holds several.
STORES = ("ledger", "gene_pool", "mlflow", "policies")
TIMEOUT_ENV_VAR = "ALPHALOOP_LOCK_TIMEOUT"
# An arena season or an evolution can hold a store for a long while; a second writer waiting
# that long is usually a user who started the same job twice, and should learn so.
DEFAULT_TIMEOUT_S = 3600.0
# How often a waiting writer tries again.
POLL_S = 0.1

_held: dict[Path, tuple[IO[str], int]] = {}
_held_guard = threading.Lock()


class StoreBusy(AlphaLoopError, TimeoutError):
    """Another command kept a store of the home locked for longer than the writer would wait."""


def lock_path(home: LabHome, store: str) -> Path:
    """Return the lock file of ``store`` (one of :data:`STORES`) in ``home``."""
    if store not in STORES:
        raise ValueError(f"unknown store {store!r}; the stores are {', '.join(STORES)}")
    return home.root / "locks" / f"{store}.lock"


def lock_timeout() -> float:
    """Return the seconds a writer waits for a store: ``$ALPHALOOP_LOCK_TIMEOUT``, else 3600."""
    text = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0.0 or value == float("inf"):
        from alphaloop.errors import ConfigError

        raise ConfigError(
            f"${TIMEOUT_ENV_VAR}={text!r}: expected a number of seconds >= 0 (0: do not wait)"
        )
    return value


def _holder(stream: IO[str]) -> str:
    """Describe who holds the lock, from what the holder wrote into the file."""
    try:
        stream.seek(0)
        found = json.loads(stream.read() or "{}")
        return f"pid {found['pid']} ({found['purpose']}, since {found['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another command"


@contextmanager
def store_lock(
    home: LabHome, store: str, *, purpose: str, timeout: float | None = None
) -> Iterator[None]:
    """Hold the write lock of ``store`` in ``home`` for the ``with`` block.

    Parameters
    ----------
    purpose:
        What this command does (``"arena run --date 2024-01-05"``): written into the lock file
        so that a waiting writer can say who it waits for.
    timeout:
        Seconds to wait for another holder (default :func:`lock_timeout`).

    Raises
    ------
    StoreBusy
        The store stayed locked for ``timeout`` seconds; nothing was written.
    """
    path = lock_path(home, store)
    with _held_guard:
        if path in _held:
            stream, depth = _held[path]
            _held[path] = (stream, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a+", encoding="utf-8")
    try:
        _acquire(stream, home, store, purpose, lock_timeout() if timeout is None else timeout)
    except BaseException:
        stream.close()
        raise
    stream.seek(0)
    stream.truncate()
    since = datetime.now(UTC).isoformat(timespec="seconds")
    stream.write(json.dumps({"pid": os.getpid(), "purpose": purpose, "since": since}))
    stream.flush()
    with _held_guard:
        _held[path] = (stream, 1)
    try:
        yield
    finally:
        _release(path)


def _acquire(stream: IO[str], home: LabHome, store: str, purpose: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _holder(stream)
        if time.monotonic() >= deadline:
            raise StoreBusy(
                f"the {store} store of {home.root} is locked by {holder}; {purpose} waited "
                f"{timeout:g} s and wrote nothing (wait for that command to end, or set "
                f"${TIMEOUT_ENV_VAR} to wait longer)"
            )
        if not said:
            print(
                f"waiting: the {store} store of {home.root} is locked by {holder}; {purpose} "
                f"starts when it is released (at most {timeout:g} s)",
                file=sys.stderr,
                flush=True,
            )
            said = True
        time.sleep(POLL_S)


def _release(path: Path) -> None:
    with _held_guard:
        stream, depth = _held[path]
        if depth > 1:
            _held[path] = (stream, depth - 1)
            return
        del _held[path]
    # The holder's note stays in the file: harmless, and overwritten by the next holder.
    fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
    stream.close()
