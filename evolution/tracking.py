"""MLflow tracking of evolution sessions (driver side only; workers never write to MLflow).

One parent run per evolution session and one nested run per generation, in the experiment
``alphaloop-evolution`` of the lab's store (default ``sqlite:///<lab home>/mlflow.db``, or
``$ALPHALOOP_MLFLOW_URI``). Artifacts go under ``<lab home>/mlartifacts`` unless the tracking
URI is a server.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from alphaloop.home import LabHome

EVOLUTION_EXPERIMENT = "alphaloop-evolution"
URI_ENV = "ALPHALOOP_MLFLOW_URI"


def tracking_uri(home: LabHome) -> str:
    """Return the tracking URI: ``$ALPHALOOP_MLFLOW_URI`` or the lab's SQLite store."""
    return os.environ.get(URI_ENV) or home.mlflow_uri


def client_for(home: LabHome) -> MlflowClient:
    home.ensure()
    return MlflowClient(tracking_uri=tracking_uri(home))


def experiment_id(client: MlflowClient, name: str, home: LabHome) -> str:
    """Return the id of experiment ``name``, creating it with artifacts in the lab home."""
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


class EvolutionTracker:
    """Writes one evolution session to MLflow."""

    def __init__(self, home: LabHome, *, experiment: str = EVOLUTION_EXPERIMENT) -> None:
        self.home = home
        self.client = client_for(home)
        self.experiment_id = experiment_id(self.client, experiment, home)
        self.parent_run_id: str | None = None

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

    def delete_run(self, run_id: str) -> None:
        """Delete a run (a generation's run that a crash left unfinished)."""
        self.client.delete_run(run_id)

    def finish(self, status: str = "FINISHED") -> None:
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status)
