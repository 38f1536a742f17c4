"""``alphaloop report weekly|monthly`` through the typer app: files, JSON, MLflow, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from alphaloop.cli_report import app
from alphaloop.home import ENV_VAR, LabHome

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"


@pytest.fixture(scope="module")
def home(report_season_home: LabHome) -> LabHome:
    return report_season_home


@pytest.fixture
def at_home(home: LabHome) -> LabHome:
    # The autouse fixture points $ALPHALOOP_HOME at an empty home; this test uses the season.
    os.environ[ENV_VAR] = str(home.root)
    return home


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _artifacts(home: LabHome, run_id: str) -> set[str]:
    client = MlflowClient(tracking_uri=home.mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "alphaloop-reports"
    return {item.path for item in client.list_artifacts(run_id, "report")}


def test_cli_report_weekly_and_monthly_write_files_and_mlflow_runs(at_home: LabHome) -> None:
    weekly = _invoke("weekly", "--week", "2023-W24", "--json")
    assert weekly["period"] == "2023-W24" and weekly["kind"] == "weekly"
    assert {"births", "culled", "accounts", "ranking", "promoted", "demoted"} <= set(weekly)
    assert Path(weekly["markdown"]) == at_home.reports / "weekly" / "2023-W24" / "report.md"
    assert Path(weekly["html"]).exists() and Path(weekly["markdown"]).exists()
    assert _artifacts(at_home, weekly["mlflow_run_id"]) == {
        "report/report.md", "report/report.html", "report/summary.json",
    }  # fmt: skip
    monthly = _invoke("monthly", "--month", "2023-06", "--json")
    assert monthly["period"] == "2023-06" and monthly["round_trips"] > 0
    assert {"top_trades", "bottom_trades", "biases", "principles", "direction"} <= set(monthly)
    assert Path(monthly["html"]).parent == at_home.reports / "monthly" / "2023-06"
    assert monthly["mlflow_run_id"] != weekly["mlflow_run_id"]
    assert "report/report.html" in _artifacts(at_home, monthly["mlflow_run_id"])
    html = Path(monthly["html"]).read_text()
    assert "http://" not in html and "https://" not in html


def test_cli_report_defaults_to_last_committed_period(at_home: LabHome) -> None:
    weekly = _invoke("weekly", "--json", "--no-mlflow")
    assert weekly["period"] == "2023-W26"  # 2023-06-30, the last committed day
    assert weekly["mlflow_run_id"] is None
    monthly = _invoke("monthly", "--json", "--no-mlflow")
    assert monthly["period"] == "2023-06"


def test_cli_report_bad_periods_exit_2_with_clear_message(at_home: LabHome) -> None:
    cases = [
        (("weekly", "--week", "2023-24"), "--week '2023-24'"),
        (("weekly", "--week", "2023-W60"), "no ISO week 60"),
        (("monthly", "--month", "2023-13"), "--month '2023-13'"),
        (("weekly", "--week", "2020-W01", "--no-mlflow"), "week 2020-W01"),
        (("monthly", "--month", "2020-01", "--no-mlflow"), "month 2020-01"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "error:" in result.stderr
    assert not (at_home.reports / "weekly" / "2020-W01").exists()
