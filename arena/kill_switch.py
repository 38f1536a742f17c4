"""The kill switch: a pause flag in the lab home that every trading command honours.

Plain Python (no Ray, no ledger). ``alphaloop arena pause`` writes ``<home>/paused.json``
(:attr:`alphaloop.home.LabHome.pause_flag`) atomically; ``alphaloop arena resume`` removes it.
While the file exists the lab is paused: :func:`arena.day.run_arena_day` reads it before
planning each day (so a pause set while a season replays stops the next day) and
:func:`arena.plan.pause_plan` turns the day's plan into one with no new orders, or, with
``flatten``, one that only closes the positions held. The day is still committed (marks,
equity, the pause's risk events), so the ledger stays continuous.

The flag is fail-safe: a file that cannot be read as a pause still pauses the lab (reason
``"unreadable pause flag ..."``, without flattening) until ``resume`` removes it.

Every pause and resume is also appended to ``<home>/kill_switch.jsonl`` (one JSON object per
line: ``action``, ``reason``, ``at``, ``who``, ``flatten``), the only record of a resume's
reason; the paused days themselves are in the ledger's risk events (rule ``kill_switch``).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alphaloop.files import atomic_write_text
from alphaloop.home import LabHome

__all__ = [
    "RULE",
    "Pause",
    "PauseChange",
    "current_user",
    "pause_lab",
    "read_pause",
    "resume_lab",
]

#: The rule name of the kill switch's risk events (kinds ``pause`` and ``flatten``).
RULE = "kill_switch"
_NO_REASON = "no reason given"
_MAX_REASON = 500


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def current_user() -> str:
    """Return the login name of the person at the switch (``"unknown"`` when none)."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (a bare container)
        return "unknown"


def _clean_reason(reason: str | None) -> str:
    # One line, so that the status line, the report table and the ledger read the same.
    text = " ".join((reason or "").split())
    return (text or _NO_REASON)[:_MAX_REASON]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause:
    """The lab is paused: why, since when (UTC), by whom, and whether it flattens.

    Parameters
    ----------
    reason:
        What the person at the switch wrote (``"no reason given"`` without one).
    since:
        When the pause began, timezone-aware UTC (a later ``--flatten`` keeps it).
    who:
        The login name that paused.
    flatten:
        Whether each paused day closes every position (else positions are kept).
    """

    reason: str
    since: datetime
    who: str
    flatten: bool

    def __post_init__(self) -> None:
        if self.since.tzinfo is None:
            raise ValueError(f"Pause.since must be timezone-aware, got {self.since!r}")
        if not self.reason:
            raise ValueError("Pause.reason must say why")

    @property
    def mode(self) -> str:
        """Return ``"flatten"`` or ``"pause"`` (the kind of the day's risk events)."""
        return "flatten" if self.flatten else "pause"

    def describe(self) -> str:
        """Return the one-line notice every command prints while the lab is paused."""
        what = (
            "flatten: each day only closes positions"
            if self.flatten
            else "no new orders, positions kept"
        )
        return (
            f"the lab is PAUSED since {self.since.isoformat()} by {self.who} "
            f"({what}): {self.reason}; `alphaloop arena resume` lifts it"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the flag file's content, ``"paused"`` in ``--json``)."""
        return {
            "reason": self.reason,
            "since": self.since.isoformat(),
            "who": self.who,
            "flatten": self.flatten,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Pause:
        """Rebuild a pause from :meth:`to_dict` output; raise ``ValueError`` if malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        since = datetime.fromisoformat(str(data["since"]))
        if since.tzinfo is None:
            raise ValueError(f"since {data['since']!r} has no UTC offset")
        flatten = data.get("flatten", False)
        if not isinstance(flatten, bool):
            raise ValueError(f"flatten {flatten!r} is not true/false")
        return cls(
            reason=_clean_reason(str(data.get("reason") or "")),
            since=since.astimezone(UTC),
            who=str(data.get("who") or "unknown"),
            flatten=flatten,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseChange:
    """What ``pause`` or ``resume`` did: ``changed`` false when it was already so."""

    action: str  # "paused", "flattening", "already_paused", "resumed", "not_paused"
    changed: bool
    pause: Pause | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` object of ``arena pause|resume``."""
        return {
            "action": self.action,
            "changed": self.changed,
            "paused": None if self.pause is None else self.pause.to_dict(),
            "message": self.message,
        }


def read_pause(home: LabHome) -> Pause | None:
    """Return the lab's pause, or ``None`` when it is not paused.

    A flag file that cannot be read as a pause still pauses (fail-safe): its pause says so in
    its reason, with the file's modification time as ``since`` and no flattening.
    """
    path = home.pause_flag
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unreadable(path, f"{type(exc).__name__}: {exc}")
    try:
        return Pause.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return _unreadable(path, str(exc) or type(exc).__name__)


def _unreadable(path: Path, why: str) -> Pause:
    try:
        since = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
    except OSError:
        since = _now()
    return Pause(
        reason=_clean_reason(f"unreadable pause flag {path} ({why})"),
        since=since,
        who="unknown",
        flatten=False,
    )


def _journal(
    home: LabHome, action: str, reason: str, at: datetime, who: str, flatten: bool
) -> None:
    line = json.dumps(
        {"action": action, "reason": reason, "at": at.isoformat(), "who": who, "flatten": flatten},
        sort_keys=True,
    )
    with home.kill_switch_journal.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def pause_lab(
    home: LabHome,
    *,
    reason: str | None = None,
    flatten: bool = False,
    who: str | None = None,
    now: datetime | None = None,
) -> PauseChange:
    """Pause the lab (idempotent).

    Not paused: write the flag. Already paused: nothing changes (the first pause's time,
    reason and person stand), except that ``flatten=True`` turns a plain pause into a
    flattening one (its ``since`` kept, the new reason replacing the old when one is given).
    A flattening pause is never turned back into a plain one: resume, then pause again.
    """
    home.ensure()
    stamp = (now or _now()).astimezone(UTC)
    person = who or current_user()
    current = read_pause(home)
    if current is None:
        pause = Pause(reason=_clean_reason(reason), since=stamp, who=person, flatten=flatten)
        atomic_write_text(home.pause_flag, json.dumps(pause.to_dict(), sort_keys=True) + "\n")
        _journal(home, "pause", pause.reason, stamp, person, flatten)
        return PauseChange(action="paused", changed=True, pause=pause, message=pause.describe())
    if flatten and not current.flatten:
        pause = replace(
            current, flatten=True, reason=_clean_reason(reason) if reason else current.reason
        )
        atomic_write_text(home.pause_flag, json.dumps(pause.to_dict(), sort_keys=True) + "\n")
        _journal(home, "flatten", pause.reason, stamp, person, True)
        return PauseChange(
            action="flattening", changed=True, pause=pause,
            message=f"now flattening; {pause.describe()}",
        )  # fmt: skip
    return PauseChange(
        action="already_paused", changed=False, pause=current,
        message=f"already paused, nothing changed; {current.describe()}",
    )  # fmt: skip


def resume_lab(
    home: LabHome,
    *,
    reason: str | None = None,
    who: str | None = None,
    now: datetime | None = None,
) -> PauseChange:
    """Lift the pause (idempotent: a lab that is not paused is left as it is)."""
    current = read_pause(home)
    if current is None:
        return PauseChange(
            action="not_paused", changed=False, pause=None,
            message="the lab is not paused; nothing to resume",
        )  # fmt: skip
    stamp = (now or _now()).astimezone(UTC)
    person = who or current_user()
    home.pause_flag.unlink(missing_ok=True)
    text = _clean_reason(reason)
    _journal(home, "resume", text, stamp, person, current.flatten)
    return PauseChange(
        action="resumed", changed=True, pause=None,
        message=(
            f"resumed at {stamp.isoformat()} by {person}: {text} (paused since "
            f"{current.since.isoformat()} by {current.who}: {current.reason}); the next day "
            "trades again"
        ),
    )  # fmt: skip
