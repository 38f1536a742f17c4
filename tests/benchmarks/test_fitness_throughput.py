"""Smoke test of ``benchmarks/fitness_throughput.py``: it runs and its engines agree.

Not a timing test: the ratio is printed, never checked (benchmarks are not pass/fail).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fitness_throughput.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fitness_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_fitness_benchmark_tiny_run_prints_ratio_and_identity_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = _load()
    argv = ["--genomes", "6", "--assets", "3", "--bars", "300", "--check-genomes", "4",
            "--memory-genomes", "2", "--vbt-chunk", "4"]  # fmt: skip
    status = module.main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 0, "\n".join(lines)
    identity = [line for line in lines if "identity where the models coincide" in line]
    assert identity and identity[0].endswith("ok")
    assert lines[-1].startswith("ratio_vs_vectorbt=")
    float(lines[-1].split("=", 1)[1])


def test_fitness_benchmark_comparison_config_has_no_impact_and_no_cap() -> None:
    module = _load()
    panel = module.make_market(seed=1, assets=2, bars=100)
    config = module.comparison_config(panel)
    assert config.impact_coefficient == 0.0 and config.participation_cap is None
    assert config.half_spread_bps == 0.0 and config.market == "crypto"
    assert panel.n_bars == 100
