"""Fitness under the arena's costs: a genome that cannot trade at the lab's capital scores so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evolution.evaluate import CostConfig, GenomeEvaluator, fitness_backtest_config
from genome.random import random_genome
from simulators.bars import Panel
from simulators.fill_model import FillParams

WINDOW = 120
N_BARS = 700
GENOME_SEED = 5  # a genome that trades often (82 round trips on the deep market)


def _panel(volume: float, seed: int = 5, n_assets: int = 4) -> Panel:
    """Return a frictionless-market random walk whose every bar trades ``volume`` shares."""
    rng = np.random.default_rng(seed)
    shape = (N_BARS, n_assets)
    close = 30.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, shape), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.006, shape))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.008, shape)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.008, shape)))
    index = pd.date_range("2021-01-04 16:00", periods=N_BARS, freq="D", tz="America/New_York")
    return Panel(
        symbols=tuple(f"S{i}" for i in range(n_assets)),
        index=index,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.full(shape, volume),
        tradable=np.ones(shape, dtype=bool),
        market="none",
    )


def _score(panel: Panel, cash: float) -> tuple[float, int]:
    genome = random_genome(np.random.default_rng(GENOME_SEED))
    evaluation = GenomeEvaluator(panel, window=WINDOW, costs=CostConfig(cash=cash)).evaluate(genome)
    return evaluation.score, evaluation.total_trades()


def test_cost_defaults_are_the_arena_fill_model() -> None:
    costs, arena = CostConfig(), FillParams()
    assert costs.half_spread_bps == arena.half_spread_bps
    assert costs.impact_coefficient == arena.impact_coefficient
    assert costs.participation_cap == arena.participation_cap
    config = fitness_backtest_config(_panel(1e6), costs)
    assert config.participation_cap == arena.participation_cap


@pytest.mark.xfail(
    strict=True,
    reason=(
        "fitness is scale-free (Sharpe, drawdown, win rate, profit factor): a capped account "
        "holding 0.02% of its equity is scored on its tiny positions' ratios. Under next-bar "
        "fills (the arena's price) this genome scores 22.2 at 1e4 and 30.7 at 1e8 (next-open: "
        "67.7 and 10.6); over genome seeds 0-29 large < small for 6 of 14 trading genomes, "
        "large > small for 6 (next-open: 6 and 5). Issue 13 item 2 needs a capacity term."
    ),
)
def test_fitness_thin_market_large_capital_scores_worse_than_small_capital() -> None:
    thin = _panel(volume=2_000.0)  # about 60,000 a bar: 10% of it is 6,000 of a 1e8 book
    small, small_trades = _score(thin, cash=10_000.0)
    large, large_trades = _score(thin, cash=100_000_000.0)
    assert small_trades >= 10, "the genome must trade to test anything"
    assert large < small
    assert large_trades > 0


def test_fitness_deep_market_score_does_not_depend_on_capital() -> None:
    deep = _panel(volume=1e18)  # impact below 1e-4 of the spread: capital changes nothing
    small, small_trades = _score(deep, cash=10_000.0)
    large, _ = _score(deep, cash=100_000_000.0)
    assert small_trades >= 10
    assert large == pytest.approx(small, abs=1e-3)


def test_packaged_fitness_capital_is_the_arena_starting_capital() -> None:
    from arena.personas import load_arena_config
    from evolution.session import load_session_config

    assert load_session_config().costs.cash == load_arena_config().starting_capital
