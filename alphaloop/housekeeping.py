"""Housekeeping of a lab home: backup, verified restore, and vacuum with run-folder rotation.

Backup (:func:`backup_home`)
    Under the write locks of every store (:data:`alphaloop.locks.STORES`, in their order, so
    no ``arena run``, evolution or MLflow writer is half-way through), each SQLite store that
    exists (the ledger, the gene pool, MLflow's ``mlflow.db``, the experience memory, the
    adjustments and the alerts' ``ops.sqlite``) is copied with SQLite's online
    backup API, and the policy registry folder file by file, into a new folder; then
    :data:`MANIFEST` is written last (atomically), listing every file with its size and
    SHA-256. A folder without a manifest is not a backup.

Restore (:func:`restore_home`)
    Nothing of the live home is touched until the whole backup verified: the manifest reads,
    every listed file is there with its size and SHA-256 (nothing else is read), each SQLite
    copy passes ``PRAGMA integrity_check``, and the ledger copy passes
    :meth:`arena.ledger.Ledger.verify` (the books re-derived from the fills, the hash chain).
    The checks run on a staging copy inside the home (the backup folder is only read). Then,
    under the stores' locks, each staged file replaces its live one with one ``os.replace``
    (atomic per file; SQLite's ``-wal``/``-shm``/``-journal`` side files of the replaced store
    are moved out first, so an old log is never replayed into the restored file) and the policy
    registry folder is swapped by two renames. A process that keeps a store open across the
    restore (``alphaloop ui``'s MLflow server) goes on reading the replaced file until it
    reopens it; ``alphaloop serve`` reopens the stores on every scrape. A store the backup
    does not hold is left as it is (and reported). Any failed check raises
    :class:`BackupRefused`: one ``error:`` line, exit status 2, the live home unchanged. The
    live files a restore replaced are kept, with their side files, in
    ``<home>/restore-replaced/<stamp>-<pid>/<store>/`` (``replaced_files`` in its output): a
    backup that verifies may still be the wrong one. ``home vacuum`` never removes them.

Vacuum (:func:`vacuum_home`)
    ``VACUUM`` of the other SQLite stores (never the ledger: its file is the audit
    record and is left byte for byte as the arena wrote it), and removal of the dated run
    folders (``runs/<date>/``, ``stress/<date>/``) last modified more than ``keep_days`` days
    ago; the newest folder of each kind is always kept (the last stress result stays readable).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from alphaloop.errors import AlphaLoopError, ConfigError
from alphaloop.files import atomic_write_text
from alphaloop.home import LabHome
from alphaloop.locks import STORES, store_lock
from alphaloop.sqlite_files import backup_file, integrity_problems, vacuum_file

__all__ = [
    "BACKUP_FORMAT",
    "MANIFEST",
    "BackupRefused",
    "backup_home",
    "restore_home",
    "vacuum_home",
]

MANIFEST = "manifest.json"
#: Where a restore keeps the live files it replaced (``<home>/restore-replaced/<stamp>/``).
REPLACED_FOLDER = "restore-replaced"
BACKUP_FORMAT = "alphaloop-home-backup"
BACKUP_VERSION = 1
_CHUNK = 1 << 20


class BackupRefused(AlphaLoopError, ValueError):
    """A backup folder failed verification (or cannot be written); the live home is unchanged."""


def _sqlite_stores(home: LabHome) -> dict[str, Path]:
    """Return ``store -> live file`` of the home's SQLite stores (names as in the locks)."""
    return {
        "ledger": home.ledger_db,
        "gene_pool": home.gene_pool_db,
        "mlflow": home.root / "mlflow.db",
        # Written by the arena's day under the ledger's lock (no lock of their own).
        "memory": home.memory_db,
        "adjustments": home.adjustments_db,
        "ops": home.ops_db,  # alerts and the daily routine's steps
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _all_locks(home: LabHome, purpose: str) -> ExitStack:
    stack = ExitStack()
    try:
        for store in STORES:
            stack.enter_context(store_lock(home, store, purpose=purpose))
    except BaseException:
        stack.close()
        raise
    return stack


def _entry(root: Path, path: Path, kind: str, store: str) -> dict[str, Any]:
    return {
        "path": path.relative_to(root).as_posix(),
        "kind": kind,
        "store": store,
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
    }


def backup_home(home: LabHome, target: Path, *, now: datetime | None = None) -> dict[str, Any]:
    """Write a backup of ``home`` into the new folder ``target``; return its manifest.

    Raises
    ------
    BackupRefused
        ``target`` exists and is not empty, or lies inside the home.
    """
    target = target.expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupRefused(f"backup folder {target}: exists and is not empty (name a new one)")
    if target == home.root or home.root in target.parents:
        raise BackupRefused(f"backup folder {target}: inside the lab home {home.root}")
    if not home.root.is_dir():
        raise BackupRefused(f"lab home {home.root}: does not exist, nothing to back up")
    target.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    with _all_locks(home, f"home backup {target}"):
        for store, live in _sqlite_stores(home).items():
            if live.is_file():
                copy = target / live.name
                backup_file(live, copy)
                files.append(_entry(target, copy, "sqlite", store))
        if home.policies.is_dir():
            shutil.copytree(home.policies, target / home.policies.name, symlinks=True)
            for path in sorted((target / home.policies.name).rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                files.append(_entry(target, path, "file", "policies"))
    manifest = {
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "home": str(home.root),
        "files": files,
    }
    atomic_write_text(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {"backup": str(target), **manifest}


def _read_manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not source.is_dir():
        raise BackupRefused(f"backup folder {source}: does not exist")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupRefused(f"{path}: missing (not a backup, or an unfinished one)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BackupRefused(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupRefused(f"{path}: not an {BACKUP_FORMAT} manifest")
    if manifest.get("version") != BACKUP_VERSION:
        raise BackupRefused(
            f"{path}: manifest version {manifest.get('version')!r}, this lab reads {BACKUP_VERSION}"
        )
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise BackupRefused(f"{path}: 'files' must be a list of objects")
    return manifest


def _safe_relative(text: Any, where: str) -> PurePosixPath:
    if not isinstance(text, str) or not text:
        raise BackupRefused(f"{where}: 'path' must be a non-empty string")
    relative = PurePosixPath(text)
    if relative.is_absolute() or ".." in relative.parts or "\\" in text:
        raise BackupRefused(f"{where}: path {text!r} leaves the backup folder")
    return relative


def _checked_files(source: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the manifest's entries after checking each file's place, size and SHA-256."""
    where = source / MANIFEST
    stores = {store: Path(name).name for store, name in _sqlite_stores(LabHome(source)).items()}
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for number, item in enumerate(manifest["files"]):
        at = f"{where} files[{number}]"
        relative = _safe_relative(item.get("path"), at)
        kind, store = item.get("kind"), item.get("store")
        if kind == "sqlite":
            if store not in stores or relative.as_posix() != stores[store]:
                raise BackupRefused(f"{at}: {relative} is not a store of a lab home")
        elif kind == "file":
            if store != "policies" or relative.parts[0] != "policies" or len(relative.parts) < 2:
                raise BackupRefused(f"{at}: {relative} is not in the policy registry folder")
        else:
            raise BackupRefused(f"{at}: kind {kind!r} (expected 'sqlite' or 'file')")
        if relative.as_posix() in seen:
            raise BackupRefused(f"{at}: {relative} listed twice")
        seen.add(relative.as_posix())
        path = source.joinpath(*relative.parts)
        if path.is_symlink() or not path.is_file():
            raise BackupRefused(f"{path}: listed in the manifest but missing from the backup")
        expected = item.get("sha256")
        size = path.stat().st_size
        if size != item.get("bytes") or _sha256(path) != expected:
            raise BackupRefused(
                f"{path}: does not match the manifest (sha256 or size differs: the file was "
                f"changed or damaged after the backup)"
            )
        out.append({**item, "path": relative.as_posix()})
    return out


def _verify_staged(staging: Path, files: list[dict[str, Any]]) -> None:
    for item in files:
        if item["kind"] != "sqlite":
            continue
        path = staging / item["path"]
        problems = integrity_problems(path)
        if problems:
            raise BackupRefused(
                f"{item['path']} in the backup: fails PRAGMA integrity_check ({problems[0]})"
            )
    ledger_file = staging / LabHome(staging).ledger_db.name
    if any(item["store"] == "ledger" for item in files):
        from arena.ledger import Ledger

        try:
            with Ledger(ledger_file) as ledger:
                report = ledger.verify(ledger.recorded_days())
        except AlphaLoopError as exc:
            raise BackupRefused(f"ledger in the backup: cannot be opened ({exc})") from None
        if not report.ok:
            first = report.issues[0]
            raise BackupRefused(
                f"ledger in the backup: fails verification ({len(report.issues)} issue(s); "
                f"first: {first.kind} {first.account} {first.day}: {first.detail})"
            )


def _replace_store(staged: Path, live: Path, aside: Path) -> None:
    """Put ``staged`` in the place of ``live``; the live file and its side files go to ``aside``.

    A ``-wal`` or hot ``-journal`` left beside the live file would be applied to the restored
    one by the next connection, so they go first, into ``aside``; if the replacement fails they
    are put back, and the live store is as it was.
    """
    moved: list[tuple[Path, Path]] = []
    if live.is_file():
        # The replaced file stays in ``aside`` (a second link to it: same file system, no copy).
        os.link(live, aside / live.name)
    try:
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(f"{live}{suffix}")
            if side.exists():
                kept = aside / side.name
                os.replace(side, kept)
                moved.append((kept, side))
        os.replace(staged, live)
    except BaseException:
        for kept, side in moved:
            os.replace(kept, side)
        raise


def restore_home(home: LabHome, source: Path) -> dict[str, Any]:
    """Replace ``home``'s stores with the verified backup in ``source``; return what it did.

    Raises
    ------
    BackupRefused
        The backup failed a check (module docstring); the live home is unchanged.
    """
    source = source.expanduser().resolve()
    manifest = _read_manifest(source)
    files = _checked_files(source, manifest)
    if not files:
        raise BackupRefused(
            f"{source / MANIFEST}: lists no file (an empty backup restores nothing)"
        )
    home.root.mkdir(parents=True, exist_ok=True)
    staging = home.root / f".restore-{os.getpid()}-{time.monotonic_ns()}"
    staging.mkdir()
    try:
        for item in files:
            target = staging / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / item["path"], target)
            if _sha256(target) != item["sha256"]:  # changed between the check and the copy
                raise BackupRefused(f"{source / item['path']}: changed while being restored")
        _verify_staged(staging, files)
        restored: list[str] = []
        held = {item["store"] for item in files}
        # What a restore replaces is kept, not deleted: a backup that verifies may still be the
        # wrong one, and the live files it replaced are the only way back.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        replaced = home.root / REPLACED_FOLDER / f"{stamp}-{os.getpid()}"
        with _all_locks(home, f"home restore {source}"):
            for store, live in _sqlite_stores(home).items():
                if store not in held:
                    continue
                aside = replaced / store
                aside.mkdir(parents=True)
                _replace_store(staging / live.name, live, aside)
                restored.append(store)
            if "policies" in held:
                if home.policies.exists():
                    replaced.mkdir(parents=True, exist_ok=True)
                    os.replace(home.policies, replaced / home.policies.name)
                os.replace(staging / home.policies.name, home.policies)
                restored.append("policies")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    kept = [s for s in (*_sqlite_stores(home), "policies") if s not in restored]
    return {
        "restored_from": str(source),
        "home": str(home.root),
        "created_at": manifest.get("created_at"),
        "restored": restored,
        "kept": kept,
        "replaced_files": str(replaced) if replaced.is_dir() else None,
        "files": len(files),
    }


def _dated_folders(parent: Path) -> list[Path]:
    out = []
    if parent.is_dir():
        for child in parent.iterdir():
            try:
                date.fromisoformat(child.name)
            except ValueError:
                continue
            if child.is_dir() and not child.is_symlink():
                out.append(child)
    return sorted(out, key=lambda p: p.name)


def vacuum_home(home: LabHome, *, keep_days: int, now: datetime | None = None) -> dict[str, Any]:
    """VACUUM the gene pool and MLflow's store, remove run folders older than ``keep_days``.

    Raises
    ------
    ConfigError
        ``keep_days`` is negative.
    """
    if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 0:
        raise ConfigError(f"--keep-days {keep_days!r}: expected a whole number of days >= 0")
    if not home.root.is_dir():
        raise ConfigError(f"lab home {home.root}: does not exist, nothing to vacuum")
    moment = (now or datetime.now(UTC)).timestamp()
    cutoff = moment - keep_days * 86400.0
    vacuumed: dict[str, dict[str, int]] = {}
    removed: list[str] = []
    with _all_locks(home, "home vacuum"):
        for store, live in _sqlite_stores(home).items():
            if store == "ledger" or not live.is_file():
                continue
            before, after = vacuum_file(live)
            vacuumed[store] = {"bytes_before": before, "bytes_after": after}
        for parent in (home.runs, home.stress):
            folders = _dated_folders(parent)
            for folder in folders[:-1]:  # the newest of each kind stays
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder)
                    removed.append(folder.relative_to(home.root).as_posix())
    return {
        "home": str(home.root),
        "keep_days": keep_days,
        "vacuumed": vacuumed,
        "removed": removed,
    }
