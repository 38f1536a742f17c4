"""``alphaloop data check``: table, --json, exit codes; in-process and as a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.errors import DataSpecError

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "files"
runner = CliRunner()


def test_data_check_clean_folder_prints_table_and_exits_zero() -> None:
    result = runner.invoke(app, ["data", "check", f"{FILES / 'us_daily'};market=us"])
    assert result.exit_code == 0, result.output
    assert "AAPL" in result.output and "MSFT" in result.output and "OK" in result.output


def test_data_check_json_prints_one_json_object() -> None:
    result = runner.invoke(app, ["data", "check", str(FILES / "czsc_two_symbols.csv"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and set(data["bars"]) == {"000001.SH", "399001.SZ"}


def test_data_check_issue_under_raise_exits_one_and_lists_it() -> None:
    # The packaged data.yaml has non_positive: raise; the fixture has a negative open
    result = runner.invoke(app, ["data", "check", str(FILES / "defects.csv"), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [i["kind"] for i in data["issues"] if i["action"] == "raise"] == ["non_positive"]


def test_data_check_repairs_only_exits_zero_with_custom_config(tmp_path: Path) -> None:
    config = tmp_path / "data.yaml"
    config.write_text("quality:\n  non_positive: repair\n", encoding="utf-8")
    result = runner.invoke(
        app, ["data", "check", str(FILES / "defects.csv"), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert "non_positive" in result.output and "repair" in result.output


def test_data_check_bad_spec_raises_data_spec_error() -> None:
    result = runner.invoke(app, ["data", "check", "nonsense"])
    assert isinstance(result.exception, DataSpecError)


def test_data_check_as_subprocess_prints_json_and_exits_zero() -> None:
    command = Path(sys.executable).with_name("alphaloop")
    completed = subprocess.run(
        [
            str(command),
            "data",
            "check",
            str(FILES / "BTCUSDT_1h.csv") + ";market=crypto;stamp=open",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["market"] == "crypto" and data["freq"] == "1h"
    kinds = {issue["kind"] for issue in data["issues"]}
    assert {"outlier", "gap"} <= kinds


def test_data_check_names_the_market_it_inferred_or_warns_of_the_default(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("alphaloop")

    def check(spec: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(command), "data", "check", spec, "--json"], capture_output=True, text=True,
            timeout=120, env=dict(os.environ), check=False,
        )  # fmt: skip

    plain = check(str(FILES / "us_daily"))
    assert plain.returncode == 0, plain.stderr
    warned = [line for line in plain.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "market=none" in warned[0] and ";market=us" in warned[0]
    assert json.loads(plain.stdout)["market"] == "none"
    named = tmp_path / "sh600036_history.csv"
    named.write_bytes((FILES / "600036_em.csv").read_bytes())
    inferred = check(str(named))
    assert inferred.returncode == 0, inferred.stderr
    assert "warning:" not in inferred.stderr
    data = json.loads(inferred.stdout)
    assert data["market"] == "cn" and "market_inferred" in {i["kind"] for i in data["issues"]}
