"""The lab home: the one folder that holds all state (data cache, stores, reports).

Resolution order: an explicit ``--home PATH``, else ``$ALPHALOOP_HOME``, else
``~/.alphaloop``. The current directory is never used: under ``ray job submit`` it is a
temporary copy of the working directory that disappears with the job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "ALPHALOOP_HOME"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the lab home as an absolute path (not created)."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".alphaloop").resolve()


@dataclass(frozen=True, slots=True)
class LabHome:
    """Paths inside one lab home. Call :meth:`ensure` before writing."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> LabHome:
        return cls(resolve_home(explicit))

    @property
    def cache(self) -> Path:
        """Downloaded market data, as Parquet, per provider."""
        return self.root / "cache"

    @property
    def runs(self) -> Path:
        """Daily arena outputs, ``runs/<date>/``."""
        return self.root / "runs"

    @property
    def stress(self) -> Path:
        return self.root / "stress"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    @property
    def gene_pool_db(self) -> Path:
        return self.root / "gene_pool.sqlite"

    @property
    def memory_db(self) -> Path:
        return self.root / "memory.sqlite"

    @property
    def ops_db(self) -> Path:
        """Alerts and the daily routine's step records (:mod:`alphaloop.alert_store`)."""
        return self.root / "ops.sqlite"

    @property
    def adjustments_db(self) -> Path:
        """The daily review's adjustments (:mod:`arena.adjustments`)."""
        return self.root / "adjustments.sqlite"

    @property
    def ledger_db(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def pause_flag(self) -> Path:
        """The kill switch's flag: present while the lab is paused (:mod:`arena.kill_switch`)."""
        return self.root / "paused.json"

    @property
    def kill_switch_journal(self) -> Path:
        """Every ``arena pause`` and ``arena resume``, one JSON object per line."""
        return self.root / "kill_switch.jsonl"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    def ensure(self) -> LabHome:
        """Create the home and its standard sub-folders; return ``self``."""
        for path in (self.root, self.cache, self.runs, self.reports):
            path.mkdir(parents=True, exist_ok=True)
        return self


def leave_job_working_dir(home: LabHome | None = None) -> None:
    """Move this process to the lab home when it runs as a ``ray job submit`` entrypoint.

    Under Ray Jobs the current directory is Ray's copy of the uploaded working directory, and
    Ray may extract that copy again while the job runs (a second raylet of the same machine
    sets up the same runtime env for its workers), which deletes the directory the process is
    in: anything that later asks for the current directory (numba does when it compiles) fails.
    The lab never uses the current directory for state, so once a command has read its inputs
    and joins Ray it moves to the lab home. Outside a Ray job nothing changes.
    """
    if not os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR"):
        return
    target = (home or LabHome.resolve()).ensure().root
    os.chdir(target)
