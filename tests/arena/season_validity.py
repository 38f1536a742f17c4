"""Shared by the season validity tests (``tests/arena/test_season_validity*.py``).

Research validity of the closed loop, measured on season replays (the suite's share). The long
version, with more seeds and the issue's targets, is ``benchmarks/season.py``; its figures are
reported with the work, not asserted here. The suite runs the same experiment on the first six
seeds (300..305) of a driftless synthetic market with a strong planted breakout edge
(``edge_strength=12``), in three files so that ``pytest -n 2 --dist loadfile`` can run them on
different workers (one file held one worker for about 9 minutes):

* ``test_season_validity.py``: **decaying edge** (``edge_until`` = the break): the pool evolves
  before the break and the living trend/breakout genome that exploits the edge most (the highest
  backtest Sharpe ratio among those not over-fit with a fitness score of at least 50) is set up
  as a champion with the expectation the gate stores (the promotion path is tested in
  ``tests/arena/test_loop.py``); the arena trades 10 days before and 20 after the break with
  the loop closed; and the control, the **stable edge**: the same champion set-up on the twin
  market without the break;
* ``test_season_validity_driftless.py``: **driftless market**: seasons with weekly evolution,
  the real gate and a short paper stage; the control shows a gate that ignores the number of
  trials lets noise reach champion;
* ``test_season_validity_full.py``: **full season** (one seed): weekly evolution, the real gate
  and the default paper stage on the decaying market: the bootstrap stand-ins that exploit the
  edge are demoted after the break and trade no more, while on the stable twin none is demoted
  in those 20 days (the control). Whether closing the loop earns more than leaving it open is
  measured over 12 seeds by the benchmark (too long for the suite).

A seed whose evolution leaves no living genome has no champion to demote and is left out of the
demotion rates (counted, and at most two of six may be).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SEEDS = range(300, 306)
_NAME = "alphaloop_season_benchmark"


def season_module() -> ModuleType:
    """Return ``benchmarks/season.py`` as a module (loaded once per process)."""
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "season.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
