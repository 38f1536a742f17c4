"""No surprise egress: the usage reports of the lab's libraries are off unless the user asks.

MLflow (3.2 and later) starts a telemetry client when it is imported and sends anonymous usage
records to its servers (a DNS lookup and HTTPS requests, even from an offline ``arena run``);
Ray's usage statistics ask the cloud metadata address and report to Ray's servers. The lab
runs offline by default, so :func:`quiet_by_default` sets ``MLFLOW_DISABLE_TELEMETRY=true``
and ``RAY_USAGE_STATS_ENABLED=0`` in this process's environment, which every process it starts
(Ray's workers, the MLflow UI server) inherits. A value the user set is kept: exporting
``MLFLOW_DISABLE_TELEMETRY=false`` or ``RAY_USAGE_STATS_ENABLED=1`` turns a report back on.

Called by the CLI's entry point and by :mod:`evolution.tracking` before MLflow is imported
(so library use is quiet too), and by :mod:`alphaloop.ray_session` before Ray starts.
"""

from __future__ import annotations

import os

__all__ = ["MLFLOW_TELEMETRY_ENV_VAR", "RAY_USAGE_STATS_ENV_VAR", "quiet_by_default"]

MLFLOW_TELEMETRY_ENV_VAR = "MLFLOW_DISABLE_TELEMETRY"
RAY_USAGE_STATS_ENV_VAR = "RAY_USAGE_STATS_ENABLED"


def quiet_by_default() -> None:
    """Turn MLflow's telemetry and Ray's usage statistics off unless the user set them."""
    os.environ.setdefault(MLFLOW_TELEMETRY_ENV_VAR, "true")
    os.environ.setdefault(RAY_USAGE_STATS_ENV_VAR, "0")
