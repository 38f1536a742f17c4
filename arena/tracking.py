"""MLflow tracking of arena days (driver side only; the account actors never touch MLflow).

One run per trading day in the experiment ``alphaloop-arena`` of the lab's store (the same
store as the evolution: ``$ALPHALOOP_MLFLOW_URI`` or ``sqlite:///<lab home>/mlflow.db``): the
run is named by the date, has the data spec and regime as parameters, every account figure
as a metric ``<account>.<figure>``, the benchmark return, the number of risk events, and the
day's ``runs/<date>/`` folder as artifacts under ``report/`` (``summary.md``, the
self-contained ``report.html``, ``summary.json`` and the Parquet tables).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alphaloop.home import LabHome

__all__ = ["ARENA_EXPERIMENT", "log_arena_day", "log_stress_run"]

ARENA_EXPERIMENT = "alphaloop-arena"


def log_arena_day(home: LabHome, summary: Mapping[str, Any], *, data_spec: str) -> str:
    """Log one day's ``summary`` (the ``arena run --json`` object) as an MLflow run.

    Returns
    -------
    str
        The run id.
    """
    from mlflow.entities import Metric, Param

    from evolution.tracking import client_for, experiment_id, tracking_lock

    with tracking_lock(home, f"logging arena day {summary['date']}"):
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


def log_stress_run(
    home: LabHome, result: Mapping[str, Any], folder: Path, *, experiment_name: str
) -> str:
    """Log the replay as one MLflow run in ``experiment_name``; return its id.

    ``experiment_name`` is :data:`arena.stress.STRESS_EXPERIMENT` (passed by the replay, so
    this writer does not import it back).

    Params: the scenario names, seed, size and config hashes; metrics: ``passed``, per
    scenario ``<name>.passed`` and ``<name>.<check>`` (1/0), per account
    ``<name>.<account>.loss|max_drawdown|exposure_at_start``; artifacts: the report, the
    result and the manual-order files.
    """
    from mlflow.entities import Metric, Param

    from evolution.tracking import client_for, experiment_id, tracking_lock

    with tracking_lock(home, "logging a stress replay"):
        client = client_for(home)
        experiment = experiment_id(client, experiment_name, home)
        names = [s["name"] for s in result["scenarios"]]
        run = client.create_run(
            experiment,
            run_name=f"stress-{result['date']}",
            tags={"stress.date": str(result["date"])},
        )
        run_id = str(run.info.run_id)
        params = {
            "scenarios": ",".join(names),
            "seed": result["seed"],
            "size": result["size"],
            "config_hash": result["config_hash"],
            "arena_config_hash": result["arena_config_hash"],
        }
        values: dict[str, float] = {"passed": float(bool(result["passed"]))}
        for scenario in result["scenarios"]:
            prefix = scenario["name"]
            values[f"{prefix}.passed"] = float(scenario["passed"])
            for check in scenario["checks"]:
                values[f"{prefix}.{check['name']}"] = float(check["passed"])
            for account, figures in scenario["accounts"].items():
                for key in ("loss", "max_drawdown", "exposure_at_start"):
                    values[f"{prefix}.{account}.{key}"] = float(figures[key])
        try:
            stamp = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[
                    Metric(k, v, stamp, 0)
                    for k, v in sorted(values.items())
                    if math.isfinite(v)  # MLflow stores NaN/inf poorly
                ],
                params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())],
            )
            for name in ("report.md", "report.html", "result.json"):
                if (folder / name).exists():
                    client.log_artifact(run_id, str(folder / name), artifact_path="report")
            if (folder / "manual_orders").exists():
                client.log_artifacts(
                    run_id, str(folder / "manual_orders"), artifact_path="manual_orders"
                )
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        return run_id
