"""``benchmarks/reflection.py``'s season rule and arms, without running a season.

The season must hold both regimes by the market's true labels (counted here straight from
:func:`simulators.synthetic.regime_path`), and the off arm must put the memory rule out of
reach of any season the benchmark runs.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pandas as pd

from alphaloop.home import LabHome
from arena.debate import DebateConfig
from arena.market import load_arena_data, trading_days
from arena.personas import load_arena_config
from simulators.synthetic import SyntheticSpec, regime_path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reflection.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reflection_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def _calendar(spec: str, tmp_path: Path) -> list:
    return trading_days(load_arena_data(spec, LabHome(tmp_path / "home").ensure()).daily)


def _labels(spec: str) -> dict:
    labels = regime_path(SyntheticSpec.from_spec_string(spec))
    sessions = (labels.index.tz_localize(None) - pd.Timedelta(minutes=1)).date
    return dict(zip(sessions, (str(r) for r in labels), strict=True))


def test_the_season_is_the_latest_window_holding_both_regimes(tmp_path: Path) -> None:
    spec = bench.market_spec(400, regime=True)
    calendar = _calendar(spec, tmp_path)
    first, last = bench.season_window(spec, calendar, 120, need=10)
    assert last - first + 1 == 120 and last <= len(calendar) - 6
    label = _labels(spec)
    counts = Counter(label[d] for d in calendar[first : last + 1])
    assert counts["bull"] >= 10 and counts["high_vol"] >= 10
    # Latest: every window ending later (up to the data's last week) lacks one of them.
    for end in range(last + 1, len(calendar) - 5):
        later = Counter(label[d] for d in calendar[end - 119 : end + 1])
        assert later["bull"] < 10 or later["high_vol"] < 10
    # Control: the benchmark's first rule (the last 120 days) holds no such mix here.
    tail = Counter(label[d] for d in calendar[len(calendar) - 125 : len(calendar) - 5])
    assert tail["bull"] < 10 or tail["high_vol"] < 10


def test_a_market_without_such_a_window_is_skipped(tmp_path: Path) -> None:
    # Seed 402's regime path holds 5 high_vol days in all (early on): no 120-day window.
    spec = bench.market_spec(402, regime=True)
    assert bench.season_window(spec, _calendar(spec, tmp_path), 120, need=10) is None
    assert bench.season_window(spec, _calendar(spec, tmp_path), 120, need=3) is not None


def test_the_off_arm_puts_the_memory_rule_out_of_reach_and_the_on_arm_is_packaged() -> None:
    off = load_arena_config(overrides=bench.ARMS["off"])
    assert not off.adjustments.enabled
    assert off.debate.memory_min_days == off.debate.memory_k >= 1000 > 120
    on = load_arena_config(overrides=bench.ARMS["on"])
    assert on == load_arena_config() and on.debate.memory_k == DebateConfig().memory_k
