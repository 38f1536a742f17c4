"""MLflow tracking of evolution sessions (driver side only; workers never write to MLflow).

One parent run per evolution session and one nested run per generation, in the experiment
``alphaloop-evolution`` of the lab's store (default ``sqlite:///<lab home>/mlflow.db``, or
``$ALPHALOOP_MLFLOW_URI``). Artifacts go under ``<lab home>/mlartifacts`` unless the tracking
URI is a server.

Every write to the store happens under the home's ``mlflow`` lock (:mod:`alphaloop.locks`):
MLflow creates its SQLite schema on first use and two processes doing so at once crashed in its
migrations; the lock also makes "find the experiment, else create it" one step.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alphaloop.egress import quiet_by_default

# Before MLflow is imported: its telemetry client starts at import (alphaloop/egress.py).
quiet_by_default()

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from alphaloop.home import LabHome  # noqa: E402
from alphaloop.locks import store_lock  # noqa: E402

EVOLUTION_EXPERIMENT = "alphaloop-evolution"
URI_ENV = "ALPHALOOP_MLFLOW_URI"


def tracking_uri(home: LabHome) -> str:
    """Return the tracking URI: ``$ALPHALOOP_MLFLOW_URI`` or the lab's SQLite store."""
    return os.environ.get(URI_ENV) or home.mlflow_uri


def tracking_lock(home: LabHome, purpose: str = "MLflow tracking") -> AbstractContextManager[None]:
    """Return the home's ``mlflow`` store lock (hold it around every write to the store)."""
    return store_lock(home, "mlflow", purpose=purpose)


def client_for(home: LabHome) -> MlflowClient:
    """Return a client of the home's store, the store created (first use) under its lock."""
    home.ensure()
    with tracking_lock(home, "opening the MLflow store"):
        client = MlflowClient(tracking_uri=tracking_uri(home))
        # MLflow opens (and on first use creates and migrates) the store on the first call.
        client.search_experiments(max_results=1)
    return client


def experiment_id(client: MlflowClient, name: str, home: LabHome) -> str:
    """Return the id of experiment ``name``, creating it with artifacts in the lab home."""
    with tracking_lock(home, f"creating the MLflow experiment {name}"):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if tracking_uri(home).startswith("sqlite:"):
            home.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
            location = home.mlflow_artifacts.as_uri()
        return str(client.create_experiment(name, artifact_location=location))


def _params(values: Mapping[str, Any]) -> list[Param]:
    # MLflow caps a param value at 6000 characters; long values belong in artifacts.
    return [Param(str(k), str(v)[:6000]) for k, v in sorted(values.items())]


def _metrics(values: Mapping[str, float], step: int, timestamp: int) -> list[Metric]:
    out = []
    for key, value in sorted(values.items()):
        number = float(value)
        if number == number and abs(number) != float("inf"):  # MLflow rejects NaN/inf poorly
            out.append(Metric(str(key), number, timestamp, step))
    return out


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _under_lock(
    method: Callable[Concatenate[EvolutionTracker, _P], _R],
) -> Callable[Concatenate[EvolutionTracker, _P], _R]:
    """Run a tracker's write under the home's ``mlflow`` lock."""

    @functools.wraps(method)
    def locked(self: EvolutionTracker, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with tracking_lock(self.home, f"evolution tracking ({method.__name__})"):
            return method(self, *args, **kwargs)

    return locked


class EvolutionTracker:
    """Writes one evolution session to MLflow (each write under the ``mlflow`` lock)."""

    def __init__(self, home: LabHome, *, experiment: str = EVOLUTION_EXPERIMENT) -> None:
        self.home = home
        self.client = client_for(home)
        self.experiment_id = experiment_id(self.client, experiment, home)
        self.parent_run_id: str | None = None

    @_under_lock
    def start_session(
        self, session_id: str, params: Mapping[str, Any], parent_run_id: str | None = None
    ) -> str:
        """Start (or, on resume, reopen) the parent run of a session; return its id."""
        if parent_run_id:
            self.parent_run_id = parent_run_id
            self.client.update_run(parent_run_id, status="RUNNING")
            return parent_run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"session-{session_id[:8]}",
            tags={"alphaloop.session_id": session_id, "alphaloop.kind": "evolution-session"},
        )
        self.parent_run_id = run.info.run_id
        self.client.log_batch(self.parent_run_id, params=_params(params))
        return self.parent_run_id

    @_under_lock
    def log_generation(
        self,
        *,
        session_id: str,
        generation: int,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        artifacts: Mapping[str, Any],
        files: Sequence[Path] = (),
    ) -> str:
        """Log one generation as a nested run; ``artifacts`` are JSON-able objects by file name."""
        if self.parent_run_id is None:
            raise RuntimeError("start_session must be called before log_generation")
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"generation-{generation:03d}",
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                "alphaloop.session_id": session_id,
                "alphaloop.generation": str(generation),
                "alphaloop.kind": "evolution-generation",
            },
        )
        run_id = run.info.run_id
        now = int(mlflow.utils.time.get_current_time_millis())
        self.client.log_batch(
            run_id,
            metrics=_metrics(metrics, generation, now),
            params=_params(params),
            tags=[RunTag("alphaloop.generation", str(generation))],
        )
        # The parent carries the trend too, one step per generation: comparable in the UI.
        self.client.log_batch(self.parent_run_id, metrics=_metrics(metrics, generation, now))
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in artifacts.items():
                path = Path(tmp) / name
                path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
                self.client.log_artifact(run_id, str(path))
        for file in files:
            self.client.log_artifact(run_id, str(file))
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def generation_runs(self, session_id: str) -> dict[int, list[tuple[str, str]]]:
        """Return the generation runs of a session: ``{generation: [(run_id, status)]}``."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`alphaloop.session_id` = '{session_id}' and "
                "tags.`alphaloop.kind` = 'evolution-generation'"
            ),
            max_results=50_000,
        )
        out: dict[int, list[tuple[str, str]]] = {}
        for run in runs:
            generation = int(run.data.tags["alphaloop.generation"])
            out.setdefault(generation, []).append((run.info.run_id, run.info.status))
        return out

    @_under_lock
    def delete_run(self, run_id: str) -> None:
        """Delete a run (a generation's run that a crash left unfinished)."""
        self.client.delete_run(run_id)

    @_under_lock
    def finish(self, status: str = "FINISHED") -> None:
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status)
