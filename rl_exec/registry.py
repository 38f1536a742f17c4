"""The policy registry under the lab home: which execution policy the arena's broker uses.

Layout::

    <home>/policies/<name>/policy.zip     the stable-baselines3 model
    <home>/policies/<name>/policy.json    its metadata
    <home>/policies/registered.json       {"name": ..., "path": "<name>/policy.zip", ...}

Registering copies the policy into the home (so it survives the training folder) and then
replaces ``registered.json`` atomically (temp file + rename): a reader sees the old or the new
registration, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from rl_exec.policy import LearnedPolicy, policy_paths

REGISTERED_FILE = "registered.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def register_policy(path: str | Path, name: str, home: LabHome | None = None) -> Path:
    """Copy a trained policy into the registry and make it the one the broker uses.

    Parameters
    ----------
    path:
        The policy ``.zip`` written by training (metadata JSON next to it).
    name:
        Registry name (letters, digits, ``_ . -``; at most 64 characters).
    home:
        The lab home (default: resolved from ``$ALPHALOOP_HOME``).

    Returns
    -------
    Path
        The registered copy of the model.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"policy name {name!r} is not allowed (letters, digits, '_', '.', '-'; 1-64 chars)"
        )
    zip_path, meta_path = policy_paths(path)
    LearnedPolicy(zip_path)  # refuse to register something the broker could not load
    lab = home or LabHome.resolve()
    folder = lab.policies / name
    folder.mkdir(parents=True, exist_ok=True)
    target_zip = folder / "policy.zip"
    shutil.copyfile(zip_path, folder / ".policy.zip.tmp")
    os.replace(folder / ".policy.zip.tmp", target_zip)
    shutil.copyfile(meta_path, folder / ".policy.json.tmp")
    os.replace(folder / ".policy.json.tmp", folder / "policy.json")
    record = {
        "name": name,
        "path": f"{name}/policy.zip",
        "source": str(zip_path.resolve()),
        "registered_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _atomic_write(lab.policies / REGISTERED_FILE, json.dumps(record, indent=2) + "\n")
    return target_zip


def registered_policy_path(home: LabHome | None = None) -> Path | None:
    """Return the registered policy's ``.zip``, or ``None`` when nothing is registered."""
    lab = home or LabHome.resolve()
    record_path = lab.policies / REGISTERED_FILE
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        relative = str(record["path"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{record_path}: broken policy registration ({exc})") from None
    path = lab.policies / relative
    if not path.is_file():
        raise ConfigError(f"{record_path}: registered policy {path} is missing")
    return path
