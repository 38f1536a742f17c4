"""The policy registry under the lab home: which execution policy the arena's broker uses.

Layout::

    <home>/policies/<name>/policy.safetensors   the network's weights
    <home>/policies/<name>/policy.json          its description (rl_exec.policy_file)
    <home>/policies/registered.json             {"name": ..., "path": "<name>/policy.safetensors",
                                                 "sha256": ..., "source": ..., ...}

Registering reads the policy once, checks it completely (format, weights against the
description, the network rebuilt: :class:`rl_exec.policy.LearnedPolicy`), writes those same
checked bytes into the home (so it survives the training folder) and then replaces
``registered.json`` atomically (temp file + rename): a reader sees the old or the new
registration, never half of one. A stable-baselines3 ``.zip`` or any other pickle-bearing file
is refused (:class:`rl_exec.policy_file.PolicyFileError`); nothing of it is unpickled.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from rl_exec.policy import LearnedPolicy
from rl_exec.policy_file import read_policy_files, write_policy_files

REGISTERED_FILE = "registered.json"
WEIGHTS_NAME = "policy.safetensors"
DESCRIPTION_NAME = "policy.json"
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
        The policy written by training: ``PATH.safetensors`` (or ``PATH``), its JSON
        description next to it.
    name:
        Registry name (letters, digits, ``_ . -``; at most 64 characters).
    home:
        The lab home (default: resolved from ``$ALPHALOOP_HOME``).

    Returns
    -------
    Path
        The registered copy of the weights.

    Raises
    ------
    ConfigError
        If the name is not allowed; :class:`~rl_exec.policy_file.PolicyFileError` if the
        policy is not in the lab's format (an SB3 ``.zip``, a pickle), is inconsistent or
        tampered with.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"policy name {name!r} is not allowed (letters, digits, '_', '.', '-'; 1-64 chars)"
        )
    files = read_policy_files(path)
    LearnedPolicy(files)  # refuse to register something the broker could not load
    lab = home or LabHome.resolve()
    folder = lab.policies / name
    target = folder / WEIGHTS_NAME
    # The bytes checked above are the ones written: no second read of the source.
    write_policy_files(target, folder / DESCRIPTION_NAME, files.weights, files.description_text)
    record = {
        "name": name,
        "path": f"{name}/{WEIGHTS_NAME}",
        "sha256": files.description["weights"]["sha256"],
        "format_version": files.description["format_version"],
        "source": str(files.weights_path.resolve()),
        "registered_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _atomic_write(lab.policies / REGISTERED_FILE, json.dumps(record, indent=2) + "\n")
    return target


def registered_policy_path(home: LabHome | None = None) -> Path | None:
    """Return the registered policy's weights file, or ``None`` when nothing is registered.

    Raises
    ------
    ConfigError
        If ``registered.json`` is broken, points outside ``<home>/policies`` or at a missing
        file. (The file's format is checked by the loader, :class:`LearnedPolicy`.)
    """
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
    if not path.resolve().is_relative_to(lab.policies.resolve()):
        raise ConfigError(
            f"{record_path}: registered policy path {relative!r} is outside {lab.policies}"
        )
    if not path.is_file():
        raise ConfigError(f"{record_path}: registered policy {path} is missing")
    return path
