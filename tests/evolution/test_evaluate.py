"""The fast genome evaluator: same numbers as compiling on the whole history and backtesting
each window with :func:`simulators.backtest.run_backtest`, by a shorter and pandas-free path."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import GenomeError
from evolution.evaluate import (
    COMPILE_LOOKBACK,
    STAT_KEYS,
    CostConfig,
    GenomeEvaluator,
    RowWindowCache,
    WindowResult,
    fitness_backtest_config,
)
from evolution.fitness import FitnessConfig, combine
from genome.cache import IndicatorCache
from genome.compile import CompiledGenome, compile_genome
from genome.genes import ATRTrailing, CappedKelly, FixedFraction, Genome, PctTrailing, VolTarget
from genome.random import random_genome
from simulators.backtest import run_backtest, run_backtest_arrays
from simulators.bars import Panel

WINDOW = 120
N_BARS = 700


def make_panel(seed: int, market: str = "us", n_assets: int = 5, scale: float = 1.0) -> Panel:
    """Return a calendar-daily random-walk panel, long enough for a year-ago window.

    The last asset lists late (NaN prices, not tradable before bar 200, inside the compiled
    bars) and asset 1 is suspended for ten bars of the year-ago window.
    """
    rng = np.random.default_rng(seed)
    shape = (N_BARS, n_assets)
    close = scale * 30.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, shape), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.006, shape))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.008, shape)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.008, shape)))
    volume = np.round(1e5 * np.exp(rng.normal(0.0, 0.6, shape)))
    tradable = np.ones(shape, dtype=bool)
    for array in (open_, high, low, close):
        array[:200, -1] = np.nan
        array[250:260, 1] = array[249, 1]
    volume[:200, -1] = 0.0
    volume[250:260, 1] = 0.0
    tradable[:200, -1] = False
    tradable[250:260, 1] = False
    index = pd.date_range("2021-01-04 16:00", periods=N_BARS, freq="D", tz="America/New_York")
    return Panel(
        symbols=tuple(f"60000{i}" for i in range(n_assets)),
        index=index,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        tradable=tradable,
        market=market,
    )


def population(seed: int, size: int) -> list[Genome]:
    rng = np.random.default_rng(seed)
    return [random_genome(rng) for _ in range(size)]


def reference_windows(evaluator: GenomeEvaluator, genome: Genome) -> dict[str, WindowResult]:
    """The evaluator as it was: compile on the whole history, run_backtest on window views."""
    panel = evaluator.panel
    compiled = compile_genome(genome, panel, IndicatorCache(panel))
    config = evaluator.backtest_config.model_copy(update={"max_positions": compiled.max_positions})
    out = {}
    for name in ("live", "year_ago"):
        start, stop = evaluator.windows.bounds(name)
        window = compiled.slice_bars(start, stop)
        result = run_backtest(
            panel.slice_bars(start, stop), config=config, **window.backtest_kwargs()
        )
        equity = result.equity.to_numpy(dtype=float)
        returns = np.diff(equity) / equity[:-1]
        stats = {key: float(result.metrics.get(key, 0.0)) for key in STAT_KEYS}
        out[name] = WindowResult(stats=stats, daily_returns=returns)
    return out


@pytest.mark.parametrize(("market", "seed"), [("us", 1), ("cn", 2), ("crypto", 3)])
def test_evaluator_random_genomes_equal_full_history_run_backtest_bit_for_bit(
    market: str, seed: int
) -> None:
    panel = make_panel(seed, market)
    fitness = FitnessConfig(window=WINDOW, min_trades=3)
    evaluator = GenomeEvaluator(panel, window=WINDOW, fitness=fitness)
    genomes = population(seed, 40)
    results = evaluator.evaluate_many(genomes)
    traded = 0
    for genome in genomes:
        evaluation = results[genome.id]
        expected = reference_windows(evaluator, genome)
        for name, window in expected.items():
            got = evaluation.windows[name]
            assert got.stats == window.stats, (genome.id, name)
            assert got.daily_returns.tobytes() == window.daily_returns.tobytes()
        traded += evaluation.total_trades() > 0
        assert evaluation.fitness == combine(
            expected["live"].stats, expected["year_ago"].stats, fitness
        )
    assert traded >= len(genomes) // 2  # the comparison covers genomes that really trade


def test_row_window_compile_random_genomes_equal_whole_history_compile() -> None:
    panel = make_panel(4)
    evaluator = GenomeEvaluator(panel, window=WINDOW)
    start = evaluator.compile_start
    assert 0 < start == evaluator.windows.year_ago[0] - COMPILE_LOOKBACK
    row_cache = RowWindowCache(IndicatorCache(panel), start)
    full_cache = IndicatorCache(panel)
    genomes = population(4, 150)
    seen: set[str] = set()
    for genome in genomes:
        seen.update(type(condition).__name__ for condition in genome.entry)
        seen.add(type(genome.sizing).__name__)
        seen.add(type(genome.exits.trailing).__name__)
        # The first COMPILE_LOOKBACK rows only feed the compiler's look-back; the windows
        # read the rows after them, and those must be exactly the whole-history ones.
        short = compile_genome(genome, row_cache.panel, row_cache)
        short = short.slice_bars(COMPILE_LOOKBACK, row_cache.panel.n_bars)
        whole = compile_genome(genome, panel, full_cache)
        whole = whole.slice_bars(evaluator.windows.year_ago[0], panel.n_bars)
        assert_same_compiled(short, whole)
    # Every primitive, sizing and trailing stop went through the comparison.
    kinds = {"PriceVsMA", "MACross", "RSILevel", "BollingerTouch", "DonchianBreakout"}
    kinds |= {"Momentum", "VolumeSurge", "ATRPct", "RVPercentile"}
    kinds |= {c.__name__ for c in (FixedFraction, VolTarget, CappedKelly)}
    kinds |= {ATRTrailing.__name__, PctTrailing.__name__, "NoneType"}
    assert kinds <= seen


def assert_same_compiled(short: CompiledGenome, whole: CompiledGenome) -> None:
    assert short.entries.tobytes() == whole.entries.tobytes()
    assert short.exits.tobytes() == whole.exits.tobytes()
    assert short.size.tobytes() == whole.size.tobytes()
    if isinstance(whole.tsl_stop, np.ndarray):
        assert isinstance(short.tsl_stop, np.ndarray)
        assert short.tsl_stop.tobytes() == whole.tsl_stop.tobytes()
    else:
        assert short.tsl_stop == whole.tsl_stop
    assert (short.sl_stop, short.tp_stop, short.time_stop, short.max_positions) == (
        whole.sl_stop,
        whole.tp_stop,
        whole.time_stop,
        whole.max_positions,
    )


def test_row_window_cache_indicators_come_from_the_whole_history() -> None:
    panel = make_panel(5)
    full = IndicatorCache(panel)
    rows = RowWindowCache(full, 300)
    assert rows.panel.n_bars == panel.n_bars - 300
    # An EMA has infinite memory: computed on the short panel it would differ.
    assert rows.ema("close", 50).tobytes() == full.ema("close", 50)[300:].tobytes()
    assert rows.regimes().tobytes() == full.regimes()[300:].tobytes()
    assert ("ema", "close", 50) in full and ("ema", "close", 50) not in rows


def test_row_window_cache_other_computation_raises_genome_error_naming_key() -> None:
    rows = RowWindowCache(IndicatorCache(make_panel(6)), 300)
    with pytest.raises(GenomeError, match="'new_indicator'"):
        rows.get(("new_indicator", 5), lambda: np.zeros(3))


def test_evaluator_same_inputs_same_results_and_keyed_by_id() -> None:
    panel = make_panel(7)
    genomes = population(7, 12)
    first = GenomeEvaluator(panel, window=WINDOW).evaluate_many(genomes)
    second = GenomeEvaluator(panel, window=WINDOW).evaluate_many(list(reversed(genomes)))
    assert list(first) == [genome.id for genome in genomes]
    assert set(first) == set(second)
    for genome_id, evaluation in first.items():
        assert evaluation.genome_id == genome_id
        other = second[genome_id]
        assert evaluation.fitness == other.fitness
        for name in ("live", "year_ago"):
            assert evaluation.windows[name].stats == other.windows[name].stats
            assert np.array_equal(
                evaluation.windows[name].daily_returns, other.windows[name].daily_returns
            )


def test_evaluation_pickle_round_trip_keeps_everything() -> None:
    evaluator = GenomeEvaluator(make_panel(8), window=WINDOW)
    evaluation = evaluator.evaluate(population(8, 1)[0])
    copy = pickle.loads(pickle.dumps(evaluation))
    assert copy.genome_id == evaluation.genome_id and copy.fitness == evaluation.fitness
    assert copy.windows["live"].stats == evaluation.windows["live"].stats
    assert np.array_equal(
        copy.windows["live"].daily_returns, evaluation.windows["live"].daily_returns
    )
    assert len(copy.windows["live"].daily_returns) == WINDOW - 1


def test_evaluator_costs_always_on_even_for_a_frictionless_panel() -> None:
    panel = make_panel(9, market="none")
    costs = CostConfig(cash=250_000.0, slippage=0.001)
    evaluator = GenomeEvaluator(panel, window=WINDOW, costs=costs)
    config = fitness_backtest_config(panel, costs)
    assert config.slippage == 0.001 and config.cash == 250_000.0
    # Fractional sizes and no fees, as the arena trades a frictionless market; slippage on.
    assert config.market == "none"
    assert evaluator.backtest_config == config


def test_fitness_trades_a_frictionless_market_whose_price_exceeds_the_cash() -> None:
    # One share costs more than the account: whole shares could never buy it; the arena
    # (fractional on this market) does, and so must fitness.
    rich = make_panel(9, market="none", scale=1e6)
    assert float(np.nanmin(rich.close)) > CostConfig().cash
    entries = np.zeros((rich.n_bars, rich.n_assets), dtype=bool)
    entries[5, 0] = True
    exits = np.zeros_like(entries)
    exits[20, 0] = True
    config = fitness_backtest_config(rich, CostConfig())
    result = run_backtest_arrays(rich, entries, exits, config=config)
    assert result.metrics["n_trades"] == 1.0
    # The control: whole shares (US rules) cannot buy one.
    whole = config.model_copy(update={"market": "us"})
    assert run_backtest_arrays(rich, entries, exits, config=whole).metrics["n_trades"] == 0.0
