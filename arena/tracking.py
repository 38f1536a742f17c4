"""MLflow tracking of arena days (driver side only; the account actors never touch MLflow).

One run per trading day in the experiment ``alphaloop-arena`` of the lab's store (the same
store as the evolution: ``$ALPHALOOP_MLFLOW_URI`` or ``sqlite:///<lab home>/mlflow.db``): the
run is named by the date, has the data spec and regime as parameters, every account figure
as a metric ``<account>.<figure>``, the benchmark return, the number of risk events, and the
day's ``runs/<date>/`` folder as artifacts under ``report/`` (``summary.md``, the
self-contained ``report.html``, ``summary.json`` and the Parquet tables).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alphaloop.home import LabHome

__all__ = ["ARENA_EXPERIMENT", "log_arena_day"]

ARENA_EXPERIMENT = "alphaloop-arena"


def log_arena_day(home: LabHome, summary: Mapping[str, Any], *, data_spec: str) -> str:
    """Log one day's ``summary`` (the ``arena run --json`` object) as an MLflow run.

    Returns
    -------
    str
        The run id.
    """
    from mlflow.entities import Metric, Param

    from evolution.tracking import client_for, experiment_id

    client = client_for(home)
    experiment = experiment_id(client, ARENA_EXPERIMENT, home)
    day = str(summary["date"])
    run = client.create_run(experiment, run_name=day, tags={"arena.date": day})
    run_id = str(run.info.run_id)
    stamp = int(time.time() * 1000)
    regime = summary.get("regime") or {}
    params = [
        Param("date", day),
        Param("data_spec", data_spec[:6000]),
        Param("regime", str(regime.get("regime", "unknown"))),
        Param("already_committed", str(bool(summary.get("already_committed")))),
    ]
    metrics = [
        Metric("benchmark.return", float(summary["benchmark"]["return"]), stamp, 0),
        Metric("risk_events", float(len(summary.get("risk_events", []))), stamp, 0),
    ]
    for account, figures in sorted(summary["accounts"].items()):
        for key, value in sorted(figures.items()):
            if value is None:
                continue
            number = float(value)
            if number == number and abs(number) != float("inf"):
                metrics.append(Metric(f"{account}.{key}", number, stamp, 0))
    try:
        client.log_batch(run_id, metrics=metrics, params=params)
        report = summary.get("report") or {}
        markdown = report.get("markdown")
        if markdown:
            client.log_artifacts(run_id, str(Path(markdown).parent), artifact_path="report")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id
