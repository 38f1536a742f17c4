"""A small lab home for the operations tests (metrics, status, backup): built once, copied.

Four arena days of a small synthetic market (2023-05-25 to 2023-05-30) with risk limits tight
enough that the governor raises risk events, and one small evolution after the close of
2023-05-26, so the home has a ledger with committed and reviewed days, a gene pool with a
committed generation, and everything the exporter reads. ``build_ops_home`` takes about a
minute on one core.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

from alphaloop.home import LabHome

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
START, END = date(2023, 5, 25), date(2023, 5, 30)
EVOLVE_DAY = date(2023, 5, 26)
# Tight enough that the governor clips orders and the circuit breaker freezes buys.
RISK = {"risk": {"max_trade_risk": 0.003, "position_drop_threshold": 0.02}}


def build_ops_home(root: Path) -> LabHome:
    """Build the operations home in ``root`` (a new folder) and return it."""
    from arena.day import LocalAccounts
    from arena.market import load_arena_data
    from arena.personas import load_arena_config
    from arena.season import replay_season, weekly_evolution

    home = LabHome(root).ensure()
    config = load_arena_config(overrides=RISK)
    data = load_arena_data(SPEC, home)
    evolve = weekly_evolution(home, data, generations=2, population=8, window=60)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        replay_season(
            accounts, data, START, END, home=home, config=config,
            evolve=lambda day: evolve(day) if day == EVOLVE_DAY else {},
            write_report=False,
        )  # fmt: skip
    finally:
        accounts.close()
    return home


def stop_process(process: subprocess.Popen[str], *, timeout: float = 30.0) -> None:
    """Stop a server the test started (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
