"""``alphaloop stress list|replay``: the JSON contract and the exit statuses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from alphaloop import cli, cli_stress
from alphaloop.home import LabHome
from simulators.scenarios import SCENARIOS


def _app() -> typer.Typer:
    # Registered here as the lead registers it in alphaloop/cli.py (``stress``).
    root = typer.Typer()
    root.add_typer(cli_stress.app, name="stress")

    @root.callback()
    def _root() -> None:
        pass

    return root


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(_app(), ["stress", *args])


def test_cli_stress_list_json_names_every_scenario_with_facts_and_checks() -> None:
    result = _invoke("list", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [s["name"] for s in payload["scenarios"]] == list(SCENARIOS)
    for scenario in payload["scenarios"]:
        assert scenario["facts"] and scenario["checks"] and scenario["market"] in ("cn", "us")
        assert scenario["checks"][-1] == "exposure"


def test_cli_stress_replay_json_contract_and_exit_zero(lab_home: LabHome) -> None:
    result = _invoke(
        "replay", "--scenario", "black-swan-gap", "--size", "small", "--json", "--no-mlflow"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["passed"] is True and payload["mlflow_run_id"] is None
    (scenario,) = payload["scenarios"]
    assert {"name", "passed", "checks", "accounts", "report"} <= set(scenario)
    assert scenario["name"] == "black-swan-gap"
    for check in scenario["checks"]:
        assert set(check) == {"name", "passed", "detail"}
        assert isinstance(check["detail"], dict)
    for figures in scenario["accounts"].values():
        assert {"loss", "max_drawdown"} <= set(figures)
    assert scenario["report"].startswith(str(lab_home.stress))
    assert scenario["report"].endswith("report.html")


def test_cli_stress_replay_failed_check_exits_one(
    lab_home: LabHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arena.stress

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "arena"))
    from fault_adapters import NoTighteningGovernor, wiring_with

    real = arena.stress.replay

    def without_tightening(*args: Any, **kwargs: Any) -> Any:
        # A governor that never tightens, plugged in where wire_day puts the real one (the
        # CLI has no such option: production has no switch for it).
        return real(*args, wiring=wiring_with(governor=NoTighteningGovernor), **kwargs)

    monkeypatch.setattr(arena.stress, "replay", without_tightening)
    result = _invoke(
        "replay", "--scenario", "high-vol-day", "--size", "small", "--json", "--no-mlflow"
    )
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload["passed"] is False
    checks = {c["name"]: c["passed"] for c in payload["scenarios"][0]["checks"]}
    assert checks["governor_tightened"] is False


def test_cli_stress_replay_unknown_scenario_exits_two(
    lab_home: LabHome, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Through the console entry point, which turns a user mistake into exit status 2.
    monkeypatch.setattr(cli, "app", _app())
    monkeypatch.setattr(sys, "argv", ["alphaloop", "stress", "replay", "--scenario", "nope"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "nope" in error and "cn-crash-2015" in error


def test_cli_stress_replay_without_a_scenario_is_a_user_error(lab_home: LabHome) -> None:
    result = _invoke("replay", "--json")
    assert result.exit_code != 0
    assert "--all" in str(result.exception)


def test_cli_stress_replay_index_only_data_exits_one_with_an_error_line(
    lab_home: LabHome, fixtures_dir: Path
) -> None:
    # One lot of the index costs more than the position limit: the old replay exited 0 with
    # every check passed on an empty book.
    index_file = fixtures_dir / "stress" / "sh000300.csv"
    result = _invoke(
        "replay", "--scenario", "cn-crash-2015", "--size", "small", "--json", "--no-mlflow",
        "--data", f"file:{index_file};market=cn",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload["passed"] is False
    checks = {c["name"]: c for c in payload["scenarios"][0]["checks"]}
    assert not any(c["passed"] for c in checks.values())
    assert "error: cn-crash-2015: no exposure at the stress start" in result.stderr
    assert "one lot of sh000300" in result.stderr and "position limit 300,000" in result.stderr
    assert checks["exposure"]["detail"]["why"] in result.stderr
