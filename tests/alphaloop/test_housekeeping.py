"""``alphaloop home backup|restore|vacuum`` and ``alphaloop status``, through the real CLI.

Each command runs as its own process (``python -m alphaloop.cli``), so the ``error:`` line and
the exit status are the ones a user sees. A restore is refused, with the live home unchanged,
for each way a backup can be bad: a changed file, a missing file, a page-level corruption the
manifest was re-hashed over (``PRAGMA integrity_check``), a ledger whose books no longer verify
(re-hashed too), a path leaving the backup folder, no manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from alphaloop.home import LabHome
from alphaloop.housekeeping import MANIFEST
from arena.ledger import Ledger

_HOLD_LEDGER_LOCK = """
import sys, time
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
with store_lock(LabHome.resolve(sys.argv[1]), "ledger", purpose="test holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def _cli(
    home: LabHome, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def _json(home: LabHome, *args: str) -> dict[str, Any]:
    done = _cli(home, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _live(home: LabHome) -> dict[str, str]:
    """SHA-256 of every file of the live stores and the policy registry."""
    files = [home.ledger_db, home.gene_pool_db, home.root / "mlflow.db"]
    files += [home.memory_db, home.adjustments_db]
    files += sorted(p for p in home.policies.rglob("*") if p.is_file())
    return {str(p.relative_to(home.root)): _sha(p) for p in files if p.is_file()}


def _add_policy_files(home: LabHome) -> None:
    # The registry is a folder of files for backup's purpose (its format is rl_exec's).
    version = home.policies / "demo" / "v1"
    version.mkdir(parents=True)
    (version / "policy.json").write_text('{"name": "demo"}\n', encoding="utf-8")
    (home.policies / "registered.json").write_text('{"note": "test"}\n', encoding="utf-8")


def _rehash(backup: Path, name: str) -> None:
    manifest = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
    for item in manifest["files"]:
        if item["path"] == name:
            item["sha256"] = _sha(backup / name)
            item["bytes"] = (backup / name).stat().st_size
    (backup / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def backed_up(ops_home: LabHome, tmp_path: Path) -> tuple[LabHome, Path, dict[str, Any]]:
    _add_policy_files(ops_home)
    backup = tmp_path / "backup"
    manifest = _json(ops_home, "home", "backup", str(backup))
    return ops_home, backup, manifest


def test_backup_lists_every_store_with_its_sha256(
    backed_up: tuple[LabHome, Path, dict[str, Any]],
) -> None:
    home, backup, manifest = backed_up
    paths = {item["path"]: item for item in manifest["files"]}
    # The arena's days wrote the experience memory and the adjustments store too.
    assert {"ledger.sqlite", "gene_pool.sqlite", "memory.sqlite", "adjustments.sqlite"} <= set(
        paths
    )
    assert {"policies/demo/v1/policy.json", "policies/registered.json"} <= set(paths)
    for name, item in paths.items():
        assert _sha(backup / name) == item["sha256"]
        assert (backup / name).stat().st_size == item["bytes"]
    # The copies hold the same rows as the live stores (SQLite's backup, not a torn copy).
    with Ledger(home.ledger_db) as live, Ledger(backup / "ledger.sqlite") as copy:
        assert copy.table_rows("fills") == live.table_rows("fills")
        assert copy.verify(copy.recorded_days()).ok
    assert json.loads((backup / MANIFEST).read_text(encoding="utf-8"))["files"] == manifest["files"]


def test_restore_brings_the_home_back_to_the_backup(
    backed_up: tuple[LabHome, Path, dict[str, Any]], tmp_path: Path
) -> None:
    home, backup, manifest = backed_up
    status_before = _json(home, "status")
    # The live home moves on: another lab's stores replace its ledger, a policy file changes.
    other = LabHome(tmp_path / "other").ensure()
    with Ledger(other.ledger_db):
        pass
    os.replace(other.ledger_db, home.ledger_db)
    moved_on = _sha(home.ledger_db)
    (home.policies / "registered.json").write_text('{"note": "changed"}\n', encoding="utf-8")
    (home.policies / "stray.json").write_text("{}\n", encoding="utf-8")
    assert _json(home, "status")["accounts"] == {}
    result = _json(home, "home", "restore", str(backup))
    assert result["restored"] == ["ledger", "gene_pool", "memory", "adjustments", "policies"]
    assert result["kept"] == ["mlflow", "ops"]  # stores the backup does not hold stay as they are
    # The live files the restore replaced are kept aside, not deleted: the way back.
    replaced = Path(result["replaced_files"])
    assert replaced.parent == home.root / "restore-replaced"
    assert _sha(replaced / "ledger" / "ledger.sqlite") == moved_on
    assert (replaced / "policies" / "stray.json").is_file()
    expected = {item["path"]: item["sha256"] for item in manifest["files"]}
    assert _live(home) == expected  # every file as backed up, the stray policy file gone
    after = _json(home, "status")
    assert after["accounts"] == status_before["accounts"]
    assert after["pool"] == status_before["pool"]
    assert _cli(home, "ledger", "verify").returncode == 0
    assert not [p for p in home.root.iterdir() if p.name.startswith(".restore-")]


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_pages(path: Path) -> None:
    # Garbage over every page but the first: the header still opens, the b-trees do not.
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    data[page:] = bytes((i * 37 + 11) % 256 for i in range(len(data) - page))
    path.write_bytes(bytes(data))


def _break_books(path: Path) -> None:
    # A valid SQLite file whose fills no longer give the stored books.
    connection = sqlite3.connect(path)
    try:
        connection.execute("UPDATE fills SET quantity = quantity + 1 WHERE seq = 1")
        connection.commit()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("changed_file", ("ledger.sqlite", "does not match the manifest")),
        ("missing_file", ("gene_pool.sqlite", "missing from the backup")),
        ("corrupt_pages", ("gene_pool.sqlite", "integrity_check")),
        ("broken_books", ("ledger", "fails verification")),
        ("path_escape", ("leaves the backup folder",)),
        ("no_manifest", ("manifest.json", "missing")),
        ("bad_manifest", ("manifest.json", "unreadable")),
    ],
)
def test_restore_refuses_a_bad_backup_and_leaves_the_home_as_it_was(
    backed_up: tuple[LabHome, Path, dict[str, Any]], damage: str, words: tuple[str, ...]
) -> None:
    home, backup, _ = backed_up
    if damage == "changed_file":
        _flip_byte(backup / "ledger.sqlite", 5000)
    elif damage == "missing_file":
        (backup / "gene_pool.sqlite").unlink()
    elif damage == "corrupt_pages":
        _corrupt_pages(backup / "gene_pool.sqlite")
        _rehash(backup, "gene_pool.sqlite")
    elif damage == "broken_books":
        _break_books(backup / "ledger.sqlite")
        _rehash(backup, "ledger.sqlite")
    elif damage == "path_escape":
        manifest = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
        manifest["files"][-1]["path"] = "policies/../../outside.json"
        (backup / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    elif damage == "no_manifest":
        (backup / MANIFEST).unlink()
    elif damage == "bad_manifest":
        (backup / MANIFEST).write_text("{not json", encoding="utf-8")
    before = _live(home)
    _refused(_cli(home, "home", "restore", str(backup)), *words)
    assert _live(home) == before
    assert not [p for p in home.root.iterdir() if p.name.startswith(".restore-")]


def test_restore_verifies_the_ledger_on_a_copy_the_control_passes(
    backed_up: tuple[LabHome, Path, dict[str, Any]],
) -> None:
    # The control of "broken_books": re-hashing an unchanged file is not refused.
    home, backup, _ = backed_up
    _rehash(backup, "ledger.sqlite")
    assert _cli(home, "home", "restore", str(backup)).returncode == 0


def test_backup_refuses_a_folder_that_is_not_new_or_lies_in_the_home(
    ops_home: LabHome, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("x", encoding="utf-8")
    _refused(_cli(ops_home, "home", "backup", str(taken)), "not empty")
    _refused(
        _cli(ops_home, "home", "backup", str(ops_home.root / "backups")), "inside the lab home"
    )
    _refused(
        _cli(LabHome(tmp_path / "nowhere"), "home", "backup", str(tmp_path / "b")), "does not exist"
    )
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("command", ["backup", "restore", "vacuum"])
def test_housekeeping_waits_for_a_running_writer_and_writes_nothing(
    backed_up: tuple[LabHome, Path, dict[str, Any]], tmp_path: Path, command: str
) -> None:
    home, backup, _ = backed_up
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LEDGER_LOCK, str(home.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = _live(home)
        args = {"backup": ["backup", str(tmp_path / "second")], "restore": ["restore", str(backup)]}
        done = _cli(
            home, "home", *args.get(command, ["vacuum"]), env={"ALPHALOOP_LOCK_TIMEOUT": "0"}
        )
        lines = [line for line in done.stderr.strip().splitlines() if line.startswith("error: ")]
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "locked by pid" in lines[0] and "ledger" in lines[0]
        assert _live(home) == before
        assert not (tmp_path / "second" / MANIFEST).exists()
    finally:
        holder.kill()
        holder.wait()


def test_vacuum_rotates_old_run_folders_and_never_touches_the_ledger(ops_home: LabHome) -> None:
    old = time.time() - 40 * 86400
    for parent in (ops_home.runs, ops_home.stress):
        for name in ("2023-01-02", "2023-01-03", "2023-01-04"):
            folder = parent / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "summary.md").write_text("x\n", encoding="utf-8")
            os.utime(folder, (old, old))
    recent = ops_home.runs / "2022-12-30"  # an older name, but written today: kept
    recent.mkdir(parents=True, exist_ok=True)
    (ops_home.runs / "notes").mkdir()
    os.utime(ops_home.runs / "notes", (old, old))
    ledger_before = _sha(ops_home.ledger_db)
    result = _json(ops_home, "home", "vacuum", "--keep-days", "30")
    assert result["removed"] == [
        "runs/2023-01-02", "runs/2023-01-03", "stress/2023-01-02", "stress/2023-01-03"
    ]  # fmt: skip
    assert (ops_home.runs / "2023-01-04").is_dir() and (ops_home.stress / "2023-01-04").is_dir()
    assert recent.is_dir() and (ops_home.runs / "notes").is_dir()
    assert set(result["vacuumed"]) == {"gene_pool", "memory", "adjustments"}  # never the ledger
    assert (
        result["vacuumed"]["gene_pool"]["bytes_after"]
        <= result["vacuumed"]["gene_pool"]["bytes_before"]
    )
    assert _sha(ops_home.ledger_db) == ledger_before
    assert _cli(ops_home, "ledger", "verify").returncode == 0


def test_vacuum_bad_keep_days_or_missing_home_is_one_error_line(
    ops_home: LabHome, tmp_path: Path
) -> None:
    _refused(_cli(ops_home, "home", "vacuum", "--keep-days", "-1"), "--keep-days")
    done = _cli(ops_home, "home", "vacuum", "--keep-days", "soon")
    assert done.returncode == 2 and "keep-days" in done.stderr
    _refused(_cli(LabHome(tmp_path / "nowhere"), "home", "vacuum"), "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_status_shows_the_lab_on_one_screen(ops_home: LabHome) -> None:
    from arena.kill_switch import pause_lab

    pause_lab(ops_home, reason="checking a fill")
    folder = ops_home.stress / "2023-06-08"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(
        json.dumps({"passed": False, "scenarios": [{"name": "data-outage", "passed": False}]}),
        encoding="utf-8",
    )
    done = _cli(ops_home, "status")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    with Ledger(ops_home.ledger_db) as ledger:
        last = ledger.last_committed_day()
        names = ledger.accounts()
    assert f"last day: {last.isoformat()}" in text
    for name in names:
        assert any(line.strip().startswith(name) for line in text.splitlines()), name
    assert "pool: alive" in text and "policy: none registered" in text
    # No routine evaluated the rules in this home yet: no alert records.
    assert "alerts: none" in text
    assert "paused: YES" in text and "checking a fill" in text
    assert "last stress: 2023-06-08 FAILED (failed: data-outage)" in text
    result = _json(ops_home, "status")
    assert result["last_day"] == last.isoformat() and set(result["accounts"]) == set(names)
    assert result["paused"]["reason"] == "checking a fill"
    assert result["stress"]["passed"] is False
    assert result["alerts"]["records"] == [] and result["errors"] == {}


def test_status_of_a_missing_home_says_so_and_creates_nothing(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "nowhere")
    done = _cli(home, "status")
    assert done.returncode == 0, done.stderr
    assert "last day: none" in done.stdout and "paused: no" in done.stdout
    assert not home.root.exists()


def test_status_of_an_unreadable_ledger_warns_and_exits_1(ops_home: LabHome) -> None:
    ops_home.ledger_db.write_bytes(b"garbage" * 1000)
    done = _cli(ops_home, "status", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "ledger" in result["errors"] and result["accounts"] == {}
    assert result["pool"]  # the gene pool was still read
    assert done.stderr.startswith("warning: ledger could not be read")


_LEAVE_A_WAL = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA wal_autocheckpoint=0")
connection.execute("INSERT INTO meta(key, value) VALUES ('planted', 'after the backup')")
os._exit(0)  # a writer killed before its checkpoint: the row lives in the -wal file only
"""


def test_restore_never_replays_a_stale_write_ahead_log_into_the_restored_store(
    backed_up: tuple[LabHome, Path, dict[str, Any]], tmp_path: Path
) -> None:
    home, backup, _ = backed_up
    subprocess.run([sys.executable, "-c", _LEAVE_A_WAL, str(home.gene_pool_db)], check=True)
    wal = Path(f"{home.gene_pool_db}-wal")
    assert wal.stat().st_size > 0

    def planted(path: Path) -> list[tuple[str]]:
        connection = sqlite3.connect(path)
        try:
            return connection.execute("SELECT value FROM meta WHERE key = 'planted'").fetchall()
        finally:
            connection.close()

    # The control: the backup's file with this log beside it does take the planted row.
    control = tmp_path / "control"
    control.mkdir()
    shutil.copyfile(backup / "gene_pool.sqlite", control / "gene_pool.sqlite")
    shutil.copyfile(wal, control / wal.name)
    assert planted(control / "gene_pool.sqlite") == [("after the backup",)]
    assert _cli(home, "home", "restore", str(backup)).returncode == 0
    assert planted(home.gene_pool_db) == []
    assert _json(home, "status")["pool"]


_HOLD_A_READ = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN")
connection.execute("SELECT COUNT(*) FROM meta").fetchall()
print("reading", flush=True)
time.sleep(120)
"""


def test_vacuum_of_a_store_held_in_a_transaction_is_store_busy_and_changes_nothing(
    ops_home: LabHome,
) -> None:
    from alphaloop.locks import StoreBusy
    from alphaloop.sqlite_files import vacuum_file

    # The gene pool is in WAL mode, where readers do not block VACUUM; a rollback-journal
    # file (as MLflow's store is) is held by a reader's open transaction.
    path = ops_home.root / "mlflow.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT)")
    connection.commit()
    connection.close()
    before = _sha(path)
    reader = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_READ, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        with pytest.raises(StoreBusy, match="cannot VACUUM"):
            vacuum_file(path, busy_s=0.2)
    finally:
        reader.kill()
        reader.wait()
    assert _sha(path) == before
    assert vacuum_file(path, busy_s=0.2)[0] > 0  # the control: free again, it vacuums


def test_backup_and_restore_carry_the_mlflow_store(ops_home: LabHome, tmp_path: Path) -> None:
    # MLflow's store is one more SQLite file of the home (its tables are MLflow's business).
    store = ops_home.root / "mlflow.db"
    connection = sqlite3.connect(store)
    connection.execute("CREATE TABLE experiments (name TEXT)")
    connection.execute("INSERT INTO experiments VALUES ('alphaloop-arena')")
    connection.commit()
    connection.close()
    manifest = _json(ops_home, "home", "backup", str(tmp_path / "backup"))
    assert "mlflow.db" in {item["path"] for item in manifest["files"]}
    connection = sqlite3.connect(store)
    connection.execute("DELETE FROM experiments")
    connection.commit()
    connection.close()
    result = _json(ops_home, "home", "restore", str(tmp_path / "backup"))
    assert "mlflow" in result["restored"]
    connection = sqlite3.connect(store)
    try:
        assert connection.execute("SELECT name FROM experiments").fetchall() == [
            ("alphaloop-arena",)
        ]
    finally:
        connection.close()
