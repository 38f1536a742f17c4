"""File-level SQLite maintenance: online backup, integrity check and VACUUM of a whole file.

These never read or write a table: they copy a database page by page with SQLite's online
backup API (consistent even while another connection writes), ask SQLite whether a file is
intact, and rebuild a file without its free pages. What is *in* a store stays the business of
its own module (:mod:`arena.ledger`, :mod:`evolution.store`, MLflow); this module is the one
place outside them that imports ``sqlite3``, and only for these three file operations
(``tests/arena/test_read_model.py`` holds it to that).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alphaloop.locks import StoreBusy

__all__ = ["backup_file", "integrity_problems", "vacuum_file"]

_INTEGRITY = "PRAGMA integrity_check"
_VACUUM = "VACUUM"
# Seconds a maintenance connection waits for a writer's transaction to end.
_BUSY_S = 60.0


def backup_file(source: Path, target: Path) -> None:
    """Copy SQLite file ``source`` to ``target`` (replaced) with the online backup API.

    ``source`` is opened read-only, so the copy can never write to it (not even a journal).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_S)
    try:
        writer = sqlite3.connect(str(target), timeout=_BUSY_S)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()


def integrity_problems(path: Path) -> list[str]:
    """Return what ``PRAGMA integrity_check`` finds wrong in ``path`` (``[]``: intact).

    A file that is not an SQLite database at all is one problem, not an exception.
    """
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        rows = connection.execute(_INTEGRITY).fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        connection.close()
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else found


def vacuum_file(path: Path, *, busy_s: float = _BUSY_S) -> tuple[int, int]:
    """Rebuild ``path`` without its free pages; return its size in bytes before and after.

    Raises
    ------
    StoreBusy
        Another process kept a transaction open on the file for ``busy_s`` seconds (an MLflow
        server reading it, say); the file is unchanged (VACUUM is one transaction).
    """
    before = path.stat().st_size
    connection = sqlite3.connect(str(path), timeout=busy_s, isolation_level=None)
    try:
        connection.execute(_VACUUM)
    except sqlite3.OperationalError as exc:
        raise StoreBusy(
            f"{path}: cannot VACUUM ({exc}): another process holds it open in a transaction; "
            f"stop it (an `alphaloop ui` on this home?) and run `home vacuum` again"
        ) from None
    finally:
        connection.close()
    return before, path.stat().st_size
