"""The calendar periods the weekly and monthly reports cover, and the files a report writes.

:class:`Period` is an ISO week or a calendar month (its label and first and last day);
:class:`ReportFiles` the files of one written report. Plain values shared by
:mod:`reports.weekly`, :mod:`reports.monthly` and the MLflow writer
(:mod:`reports.tracking`), so the writer need not import the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """A calendar week (ISO) or month: its label and first and last day (inclusive)."""

    kind: str
    label: str
    start: date
    end: date

    def contains(self, day: date) -> bool:
        """Return whether ``day`` is in the period."""
        return self.start <= day <= self.end

    def describe(self) -> str:
        """Return ``"week 2023-W22 (2023-05-29..2023-06-04)"``."""
        return f"{self.kind} {self.label} ({self.start.isoformat()}..{self.end.isoformat()})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFiles:
    """The files of one written report."""

    folder: Path
    markdown: Path
    html: Path
    summary: Path
