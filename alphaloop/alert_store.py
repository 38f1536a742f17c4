"""The operations store ``<home>/ops.sqlite``: alert records, their deliveries, daily steps.

:class:`OpsStore` writes it (the alert rules of :mod:`alphaloop.alerts`, the daily runbook of
:mod:`alphaloop.daily`); :func:`read_alerts` reads the alert records read-only, never creating
the file (:func:`alphaloop.observe.read_lab`). The file carries its schema version in
``meta``; a newer one than this code knows is refused. Every write is one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alphaloop.home import LabHome

__all__ = [
    "RULES",
    "SCHEMA_VERSION",
    "Alert",
    "OpsStore",
    "alert_counts",
    "ops_db",
    "read_alerts",
]

#: The rules an alert can come from (the ``rule`` label of ``alphaloop_alerts_total``).
RULES: tuple[str, ...] = (
    "daily_loss",
    "drawdown",
    "missing_day",
    "failed_step",
    "stress_failed",
    "stale_data",
    "low_confidence",
    "promotion",
    "demotion",
)
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    detail TEXT NOT NULL,
    raised_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_day ON alerts (day, rule);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT PRIMARY KEY REFERENCES alerts (alert_id),
    attempts INTEGER NOT NULL,
    delivered_at TEXT,
    last_attempt_at TEXT NOT NULL,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS daily_steps (
    day TEXT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    finished_at TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (day, step)
);
"""


def ops_db(home: LabHome) -> Path:
    """Return the operations store of ``home`` (alerts and the daily runbook's steps)."""
    return home.ops_db


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert: what rule raised it, about what (``subject``), on which trading day."""

    day: date
    rule: str
    key: str
    severity: str
    subject: str
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown alert rule {self.rule!r}")
        if self.severity not in ("info", "warning", "critical"):
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def alert_id(self) -> str:
        """Return the content hash of (rule, key): the same finding is one alert."""
        return hashlib.sha256(f"{self.rule}\x1f{self.key}".encode()).hexdigest()[:16]


class OpsStore:
    """``<home>/ops.sqlite``: alert records, their deliveries and the daily steps' records.

    Opening creates the file (writers only: readers use :func:`read_alerts`); every write is
    one transaction.
    """

    def __init__(self, home: LabHome) -> None:
        home.ensure()
        self.path = ops_db(home)
        self._connection = sqlite3.connect(self.path, timeout=30.0)
        self._connection.row_factory = sqlite3.Row
        from alphaloop.errors import ConfigError

        try:
            self._open()
        except ConfigError:
            self._connection.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._connection.close()
            raise ConfigError(
                f"{self.path}: not a readable operations store ({exc}); it is left as it is "
                "(move it away to start a new one, or restore it from a backup)"
            ) from None

    def _open(self) -> None:
        with self._connection:
            self._connection.executescript(_SCHEMA)
            row = self._connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                self._connection.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row["value"]) > SCHEMA_VERSION:
                from alphaloop.errors import ConfigError

                raise ConfigError(
                    f"{self.path}: schema version {row['value']} is newer than this code's "
                    f"{SCHEMA_VERSION}; upgrade alphaloop"
                )

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def __enter__(self) -> OpsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ alerts
    def record_alerts(self, alerts: Iterable[Alert], *, now: datetime | None = None) -> list[str]:
        """Store the alerts not stored yet (one transaction); return the new alerts' ids."""
        raised = (now or datetime.now(UTC)).isoformat()
        new: list[str] = []
        with self._connection:
            for alert in alerts:
                cursor = self._connection.execute(
                    "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        alert.alert_id, alert.day.isoformat(), alert.rule, alert.key,
                        alert.severity,
                        alert.subject, alert.message,
                        json.dumps(dict(alert.detail), sort_keys=True), raised,
                    ),
                )  # fmt: skip
                if cursor.rowcount:
                    new.append(alert.alert_id)
        return new

    def alerts(self, *, day: date | None = None) -> list[dict[str, Any]]:
        """Return the stored alerts (of ``day``), newest day first, with delivery state."""
        return _alert_rows(self._connection, day=day)

    def undelivered(self, max_attempts: int) -> list[dict[str, Any]]:
        """Return the alerts never delivered with fewer than ``max_attempts`` attempts."""
        return [
            row
            for row in _alert_rows(self._connection)
            if row["delivery"]["delivered_at"] is None
            and row["delivery"]["attempts"] < max_attempts
        ][::-1]

    def record_attempt(self, alert_id: str, *, error: str | None, now: datetime) -> None:
        """Record one delivery attempt of ``alert_id`` (``error=None``: delivered)."""
        at = now.isoformat()
        with self._connection:
            self._connection.execute(
                "INSERT INTO deliveries VALUES (?, 1, ?, ?, ?) ON CONFLICT (alert_id) DO UPDATE "
                "SET attempts = attempts + 1, delivered_at = excluded.delivered_at, "
                "last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error",
                (alert_id, None if error else at, at, error),
            )

    # ------------------------------------------------------------------ daily steps
    def step_records(self, day: date) -> dict[str, dict[str, Any]]:
        """Return the daily steps recorded for ``day``, by step name."""
        rows = self._connection.execute(
            "SELECT * FROM daily_steps WHERE day = ?", (day.isoformat(),)
        ).fetchall()
        return {
            r["step"]: {
                "status": r["status"],
                "finished_at": r["finished_at"],
                "detail": json.loads(r["detail"]),
            }
            for r in rows
        }

    def record_step(
        self, day: date, step: str, status: str, detail: Mapping[str, Any], *, now: datetime
    ) -> None:
        """Record ``step`` of ``day`` as ``done`` or ``failed`` (one transaction)."""
        with self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO daily_steps VALUES (?, ?, ?, ?, ?)",
                (
                    day.isoformat(), step, status, now.isoformat(),
                    json.dumps(dict(detail), sort_keys=True, default=str),
                ),
            )  # fmt: skip


def _alert_rows(connection: sqlite3.Connection, *, day: date | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT a.*, d.attempts, d.delivered_at, d.last_attempt_at, d.last_error FROM alerts a "
        "LEFT JOIN deliveries d ON d.alert_id = a.alert_id"
    )
    params: tuple[Any, ...] = ()
    if day is not None:
        sql += " WHERE a.day = ?"
        params = (day.isoformat(),)
    rows = connection.execute(sql + " ORDER BY a.day DESC, a.raised_at DESC, a.alert_id", params)
    return [
        {
            "alert_id": r["alert_id"],
            "day": r["day"],
            "rule": r["rule"],
            "key": r["key"],
            "severity": r["severity"],
            "subject": r["subject"],
            "message": r["message"],
            "detail": json.loads(r["detail"]),
            "raised_at": r["raised_at"],
            "delivery": {
                "attempts": int(r["attempts"] or 0),
                "delivered_at": r["delivered_at"],
                "last_error": r["last_error"],
            },
        }
        for r in rows.fetchall()
    ]


def read_alerts(home: LabHome) -> list[dict[str, Any]]:
    """Return ``home``'s alert records read-only (``[]`` without the store; never creates it)."""
    path = ops_db(home)
    if not path.is_file():
        return []
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
    connection.row_factory = sqlite3.Row
    try:
        tables = {
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        return _alert_rows(connection) if "alerts" in tables else []
    finally:
        connection.close()


def alert_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Return the number of alert records per rule (every rule, 0 included)."""
    counts = dict.fromkeys(RULES, 0)
    for row in rows:
        counts[str(row["rule"])] = counts.get(str(row["rule"]), 0) + 1
    return counts
