"""MLflow logging of the weekly and monthly reports (driver side; the edge that imports MLflow).

One run per report in the experiment :data:`REPORTS_EXPERIMENT` of the lab's store, named
``<kind>-<period>``, with the report's numeric headline figures as metrics and its files as
artifacts under ``report/``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from alphaloop.home import LabHome

if TYPE_CHECKING:
    from reports.periods import Period, ReportFiles

__all__ = ["REPORTS_EXPERIMENT", "log_report"]

REPORTS_EXPERIMENT = "alphaloop-reports"


def log_report(
    home: LabHome, kind: str, period: Period, files: ReportFiles, metrics: Mapping[str, Any]
) -> str:
    """Log a written report to MLflow (experiment ``alphaloop-reports``); return the run id.

    The run is named ``<kind>-<label>``; its numeric headline figures are metrics and the
    report's files are artifacts under ``report/``.
    """
    from mlflow.entities import Metric, Param

    from evolution.tracking import client_for, experiment_id, tracking_lock

    with tracking_lock(home, f"logging the {kind} report"):
        client = client_for(home)
        experiment = experiment_id(client, REPORTS_EXPERIMENT, home)
        run = client.create_run(
            experiment,
            run_name=f"{kind}-{period.label}",
            tags={"alphaloop.kind": f"report-{kind}", "alphaloop.period": period.label},
        )
        run_id = str(run.info.run_id)
        stamp = int(time.time() * 1000)
        numbers = [
            Metric(str(key), float(value), stamp, 0)
            for key, value in sorted(metrics.items())
            if isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ]
        params = [
            Param("kind", kind),
            Param("period", period.label),
            Param("start", period.start.isoformat()),
            Param("end", period.end.isoformat()),
        ]
        try:
            client.log_batch(run_id, metrics=numbers, params=params)
            for path in (files.markdown, files.html, files.summary):
                client.log_artifact(run_id, str(path), artifact_path="report")
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        return run_id
