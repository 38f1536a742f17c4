"""Crafted files give one ``error:`` line and exit 2, never a traceback (issue 14 item 8):
a binary YAML config, a deeply nested YAML or genome JSON, a binary genome file, and a
starting capital below one minor unit or absurdly large."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alphaloop.config import load_config, packaged_config
from alphaloop.errors import ConfigError, GenomeError
from arena.personas import ArenaConfig
from genome.genes import Genome

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALPHALOOP_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("crafted")
    files = {
        "binary": folder / "binary.yaml",
        "deep_yaml": folder / "deep.yaml",
        "deep_json": folder / "deep.json",
    }
    files["binary"].write_bytes(bytes(range(128, 256)) * 3)
    files["deep_yaml"].write_text("[" * 20_000 + "]" * 20_000)
    files["deep_json"].write_text('{"x":' * 20_000 + "1" + "}" * 20_000)
    return files


def test_binary_and_deeply_nested_configs_are_one_error_line(
    tmp_path: Path, crafted: dict[str, Path]
) -> None:
    binary = _cli("evolve", "--config", str(crafted["binary"]), home=tmp_path / "a")
    _one_error_line(binary, str(crafted["binary"]), "not UTF-8")
    deep = _cli("evolve", "--config", str(crafted["deep_yaml"]), home=tmp_path / "b")
    _one_error_line(deep, str(crafted["deep_yaml"]), "nested too deeply")


def test_binary_and_deeply_nested_genome_files_are_one_error_line(
    tmp_path: Path, crafted: dict[str, Path]
) -> None:
    deep = _cli("backtest", "--genome", str(crafted["deep_json"]), home=tmp_path / "a")
    _one_error_line(deep, str(crafted["deep_json"]), "nested too deeply")
    binary = _cli("backtest", "--genome", str(crafted["binary"]), home=tmp_path / "b")
    _one_error_line(binary, str(crafted["binary"]), "not valid JSON")
    with pytest.raises(GenomeError, match="nested too deeply"):
        Genome.from_json(crafted["deep_json"].read_text())


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("1e30", False), ("1e13", False), ("0.001", False), ("0.0", False), ("nan", False),
     ("0.01", True), ("2500000", True), ("1e12", True)],
)  # fmt: skip
def test_starting_capital_must_be_a_minor_unit_to_a_trillion(
    tmp_path: Path, value: str, accepted: bool
) -> None:
    text = packaged_config("arena.yaml").read_text(encoding="utf-8")
    lines = [
        f"starting_capital: {value}" if line.startswith("starting_capital:") else line
        for line in text.splitlines()
    ]
    assert any(line == f"starting_capital: {value}" for line in lines)
    path = tmp_path / "arena.yaml"
    path.write_text("\n".join(lines) + "\n")
    if accepted:
        assert load_config(ArenaConfig, path).starting_capital == float(value)
    else:
        with pytest.raises(ConfigError, match="starting_capital"):
            load_config(ArenaConfig, path)
