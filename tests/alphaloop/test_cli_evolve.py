"""Smoke runs of ``alphaloop evolve``, ``pool list/show/export`` and ``backtest --genome``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphaloop.cli import app

DATA = "synthetic:seed=5,assets=5,start=2020-01-01,end=2023-12-29"


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("evolve-home")
    old = os.environ.get("ALPHALOOP_HOME")
    os.environ["ALPHALOOP_HOME"] = str(home)
    try:
        out = _invoke(
            "evolve",
            "--data",
            DATA,
            "--as-of",
            "2023-12-29",
            "--generations",
            "2",
            "--population",
            "8",
            "--seed",
            "1",
            "--workers",
            "0",
            "--json",
        )
    finally:
        if old is None:
            os.environ.pop("ALPHALOOP_HOME")
        else:
            os.environ["ALPHALOOP_HOME"] = old
    return home, json.loads(out)


def test_cli_evolve_json_has_the_contract_fields(evolved) -> None:
    _, result = evolved
    assert {
        "session_id",
        "generations",
        "champions",
        "mlflow_experiment_id",
        "mlflow_parent_run_id",
    } <= set(result)
    assert [g["generation"] for g in result["generations"]] == [0, 1]
    for g in result["generations"]:
        assert {
            "generation",
            "best_score",
            "median_score",
            "diversity",
            "births",
            "culled",
            "promoted",
        } <= set(g)
    assert result["champions"], "the final generation's gate candidates are reported"
    for champion in result["champions"]:
        assert {"id", "description", "live", "year_ago", "gate"} <= set(champion)
        assert isinstance(champion["gate"]["passed"], bool) and champion["gate"]["reasons"]
    assert result["mlflow_parent_run_id"]


def test_cli_pool_list_show_export_and_backtest_genome(evolved, monkeypatch, tmp_path) -> None:
    home, result = evolved
    monkeypatch.setenv("ALPHALOOP_HOME", str(home))
    listed = json.loads(_invoke("pool", "list", "--json"))
    assert len(listed) >= 8 and {row["status"] for row in listed} <= {"alive", "culled", "champion"}
    culled = json.loads(_invoke("pool", "list", "--status", "culled", "--json"))
    assert all(row["status"] == "culled" for row in culled)

    genome_id = result["champions"][0]["id"]
    shown = json.loads(_invoke("pool", "show", genome_id[:10], "--json"))
    assert shown["genome_id"] == genome_id
    assert shown["description"] == result["champions"][0]["description"]
    assert shown["lineage"][0]["genome_id"] == genome_id and shown["stats"]
    assert shown["verdicts"], "the gate verdict is stored with its reasons"

    _invoke("pool", "export", "--out", str(tmp_path / "catalog"))
    strategies = json.loads((tmp_path / "catalog" / "strategies.json").read_text())
    generations = json.loads((tmp_path / "catalog" / "generations.json").read_text())
    assert strategies["schema_version"] == 1 and strategies["kind"] == "alphaloop.strategy_catalog"
    assert {r["id"] for r in strategies["records"]} == {row["genome_id"] for row in listed}
    assert [r["generation"] for r in generations["records"]] == [0, 1]

    by_id = json.loads(_invoke("backtest", "--data", DATA, "--genome", genome_id, "--json"))
    genome_file = tmp_path / "genome.json"
    genome_file.write_text(json.dumps(shown["genome"]))
    by_file = json.loads(
        _invoke("backtest", "--data", DATA, "--genome", str(genome_file), "--json")
    )
    assert by_id["final_equity"] == by_file["final_equity"]
    assert by_id["strategy"] == f"genome:{genome_id}"
    assert {"final_equity", "total_return", "sharpe", "max_drawdown", "n_trades", "trades"} <= set(
        by_id
    )


def _run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALPHALOOP_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_bad_inputs_exit_2_with_a_clear_message(evolved, tmp_path) -> None:
    home, _ = evolved
    missing = _run_cli("pool", "show", "ffffffffffff", home=home)
    assert missing.returncode == 2 and "ffffffffffff" in missing.stderr
    early = _run_cli(
        "evolve",
        "--data",
        DATA,
        "--as-of",
        "2020-06-30",
        "--generations",
        "1",
        "--population",
        "8",
        "--workers",
        "0",
        "--no-mlflow",
        home=tmp_path / "h",
    )
    assert early.returncode == 2 and "--as-of 2020-06-30" in early.stderr
    late = _run_cli(
        "evolve", "--data", DATA, "--as-of", "2031-01-02", "--generations", "1",
        "--population", "8", "--workers", "0", "--no-mlflow", home=tmp_path / "late",
    )  # fmt: skip
    lines = late.stderr.strip().splitlines()
    assert late.returncode == 2 and lines[-1].startswith("error: --as-of 2031-01-02: after")
    assert "data's last day" in lines[-1] and not (tmp_path / "late" / "gene_pool.sqlite").exists()
    bad_status = _run_cli("pool", "list", "--status", "zombie", home=home)
    assert bad_status.returncode == 2 and "alive, culled, candidate" in bad_status.stderr
    bad_genome = tmp_path / "bad.json"
    bad_genome.write_text('{"schema_version": 1, "entry": []}')
    broken = _run_cli("backtest", "--data", DATA, "--genome", str(bad_genome), home=home)
    assert broken.returncode == 2 and str(bad_genome) in broken.stderr
