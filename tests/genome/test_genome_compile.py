"""Compilation: causal signals, shared indicator cache, filters, and the backtester hand-off."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from alphaloop.errors import GenomeError
from genome import (
    ATRTrailing,
    BollingerTouch,
    CappedKelly,
    DonchianBreakout,
    Exits,
    FixedFraction,
    Genome,
    IndicatorCache,
    MACross,
    Momentum,
    PctTrailing,
    PriceVsMA,
    RSILevel,
    RVPercentile,
    VolTarget,
    VolumeSurge,
    compile_and_backtest,
    compile_genome,
    compile_population,
    random_genome,
)
from genome import primitives as prim
from genome.compile import CompiledGenome, condition_signal
from genome.genes import ATRPct
from genome.regime import REGIME_CODES
from simulators.backtest import BacktestConfig
from simulators.bars import Panel
from simulators.own_bars import OwnBars


def genome_of(*conditions: Any, **changes: Any) -> Genome:
    base = Genome(
        entry=tuple(conditions),
        exits=Exits(time_stop=10),
        sizing=FixedFraction(fraction=0.2, max_positions=5),
    )
    return dataclasses.replace(base, **changes)


def array_fields(compiled: CompiledGenome) -> dict[str, np.ndarray]:
    names = ("entries", "exits", "size", "tsl_stop")
    return {n: getattr(compiled, n) for n in names if isinstance(getattr(compiled, n), np.ndarray)}


# Every condition kind, both sides, windows short enough to warm up on a 360-bar panel.
EVERY_CONDITION = (
    PriceVsMA(ma="sma", window=20, side="above"),
    PriceVsMA(ma="ema", window=30, side="below"),
    MACross(ma="sma", fast=5, slow=20, direction="above"),
    MACross(ma="ema", fast=8, slow=21, direction="below"),
    RSILevel(window=14, threshold=40.0, side="below"),
    RSILevel(window=7, threshold=60.0, side="above"),
    BollingerTouch(window=20, width=1.0, band="lower"),
    BollingerTouch(window=20, width=1.0, band="upper"),
    DonchianBreakout(window=20, side="high"),
    DonchianBreakout(window=15, side="low"),
    Momentum(window=10, threshold=0.02, side="above"),
    Momentum(window=10, threshold=-0.02, side="below"),
    VolumeSurge(window=10, multiple=1.3),
    ATRPct(window=14, threshold=0.02, side="below"),
    ATRPct(window=14, threshold=0.02, side="above"),
    RVPercentile(window=10, lookback=60, threshold=0.5, side="below"),
    RVPercentile(window=10, lookback=60, threshold=0.5, side="above"),
)


# --------------------------------------------------------------------------- look-ahead
@pytest.mark.parametrize("condition", EVERY_CONDITION, ids=lambda c: f"{c.KIND}")
def test_condition_signal_truncated_future_bars_past_signal_unchanged(
    condition: Any, panel_factory: Callable[..., Panel]
) -> None:
    panel = panel_factory(seed=9, n_bars=360, n_assets=5)
    full = condition_signal(condition, IndicatorCache(panel))
    assert full.any(), "the condition never fires: the check would be vacuous"
    for stop in (30, 65, 120, 250):
        truncated = condition_signal(condition, IndicatorCache(panel.slice_bars(0, stop)))
        np.testing.assert_array_equal(truncated, full[:stop], err_msg=f"stop={stop}")


def test_compile_random_genomes_truncated_future_bars_past_arrays_unchanged(
    panel_factory: Callable[..., Panel],
) -> None:
    panel = panel_factory(seed=2, n_bars=360, n_assets=5)
    rng = np.random.default_rng(2024)
    genomes = [random_genome(rng) for _ in range(60)]
    full = compile_population(genomes, panel)
    assert sum(compiled.entries.any() for compiled in full.values()) > 20
    for stop in (90, 180, 300):
        short = panel.slice_bars(0, stop)
        truncated = compile_population(genomes, short)
        for genome in genomes:
            before, after = array_fields(full[genome.id]), array_fields(truncated[genome.id])
            assert before.keys() == after.keys()
            for name, array in before.items():
                np.testing.assert_array_equal(
                    after[name], array[:stop], err_msg=f"{genome.describe()}: {name} at {stop}"
                )


# --------------------------------------------------------------------------- cache
def test_indicator_cache_second_genome_same_primitive_is_not_recomputed(panel: Panel) -> None:
    cache = IndicatorCache(panel)
    first = genome_of(PriceVsMA(ma="sma", window=20, side="above"))
    second = genome_of(BollingerTouch(window=20, width=2.0, band="lower"), RSILevel())
    compile_genome(first, panel, cache)
    sma_key = ("sma", "close", 20)
    assert sma_key in cache
    shared = cache.sma("close", 20)
    hits = cache.hits
    compile_genome(second, panel, cache)
    assert cache.computed[sma_key] == 1
    assert cache.hits > hits
    assert cache.sma("close", 20) is shared
    assert all(count == 1 for count in cache.computed.values())


def test_indicator_cache_population_computes_each_key_once(panel: Panel) -> None:
    rng = np.random.default_rng(5)
    genomes = [random_genome(rng) for _ in range(40)]
    cache = IndicatorCache(panel)
    compile_population(genomes, panel, cache)
    misses = cache.misses
    again = compile_population(genomes, panel, cache)
    assert cache.misses == misses
    assert all(count == 1 for count in cache.computed.values())
    fresh = compile_population(genomes, panel)
    for genome_id, compiled in again.items():
        for name, array in array_fields(compiled).items():
            np.testing.assert_array_equal(array, array_fields(fresh[genome_id])[name])


def test_indicator_cache_arrays_are_read_only(panel: Panel) -> None:
    array = IndicatorCache(panel).rsi(14)
    with pytest.raises(ValueError, match="read-only"):
        array[0, 0] = 1.0


def test_indicator_cache_over_memory_limit_evicts_oldest(panel: Panel) -> None:
    one = panel.close.nbytes
    cache = IndicatorCache(panel, max_bytes=2 * one)
    for window in (5, 6, 7):
        cache.sma("close", window)
    assert ("sma", "close", 5) not in cache
    assert ("sma", "close", 7) in cache
    assert cache.nbytes <= 2 * one


def test_compile_cache_of_other_panel_is_rejected(panel: Panel) -> None:
    other = panel.slice_bars(0, 100)
    with pytest.raises(GenomeError, match="another panel"):
        compile_genome(genome_of(RSILevel()), panel, IndicatorCache(other))


# --------------------------------------------------------------------------- semantics
def test_compile_ma_cross_fires_only_on_crossing_bar(panel: Panel) -> None:
    compiled = compile_genome(genome_of(MACross(ma="sma", fast=5, slow=20)), panel)
    # On each asset's own bars, held over its suspended rows: the row before an own bar
    # holds the asset's previous bar's averages.
    own = OwnBars.of(panel.tradable)
    fast = own.apply(lambda c: prim.sma(c, 5), panel.close)
    slow = own.apply(lambda c: prim.sma(c, 20), panel.close)
    with np.errstate(invalid="ignore"):
        above = fast > slow
    expected = np.zeros_like(above)
    expected[1:] = above[1:] & ~above[:-1] & np.isfinite(slow[:-1])
    expected &= panel.tradable
    assert expected.any()
    np.testing.assert_array_equal(compiled.entries, expected)


def test_compile_and_or_combine_signals(panel: Panel) -> None:
    first, second = PriceVsMA(window=20), RSILevel(window=14, threshold=55.0, side="below")
    cache = IndicatorCache(panel)
    a, b = condition_signal(first, cache), condition_signal(second, cache)
    both = compile_genome(genome_of(first, second, combine="and"), panel, cache)
    either = compile_genome(genome_of(first, second, combine="or"), panel, cache)
    np.testing.assert_array_equal(both.entries, a & b & panel.tradable)
    np.testing.assert_array_equal(either.entries, (a | b) & panel.tradable)
    assert either.entries.sum() > both.entries.sum() > 0


def test_compile_untradable_bars_never_enter(panel: Panel) -> None:
    compiled = compile_genome(genome_of(RSILevel(threshold=95.0, side="below")), panel)
    assert not compiled.entries[~panel.tradable].any()
    assert compiled.entries[panel.tradable].mean() > 0.9


def test_compile_regime_filter_blocks_other_regimes(panel: Panel) -> None:
    genome = genome_of(RSILevel(threshold=95.0, side="below"), regimes=("bull", "range"))
    cache = IndicatorCache(panel)
    compiled = compile_genome(genome, panel, cache)
    codes = cache.regimes()
    allowed = np.isin(codes, [REGIME_CODES["bull"], REGIME_CODES["range"]])
    assert allowed.any() and (~allowed).any()
    assert not compiled.entries[~allowed].any()
    everywhere = compile_genome(
        dataclasses.replace(genome, regimes=("bull", "bear", "range", "high_vol")), panel, cache
    )
    np.testing.assert_array_equal(compiled.entries, everywhere.entries & allowed[:, None])


def test_compile_opposite_signal_mirrors_entry(panel: Panel) -> None:
    entry = MACross(ma="ema", fast=5, slow=20, direction="above")
    genome = genome_of(entry, VolumeSurge(), exits=Exits(opposite_signal=True))
    compiled = compile_genome(genome, panel)
    cache = IndicatorCache(panel)
    np.testing.assert_array_equal(compiled.exits, condition_signal(entry.mirror(), cache))
    assert compiled.exits.any()
    assert not (compiled.entries & compiled.exits).any()
    plain = compile_genome(genome_of(entry), panel)
    assert not plain.exits.any()


def test_compile_stops_and_sizes_become_backtest_inputs(panel: Panel) -> None:
    genome = genome_of(
        RSILevel(threshold=95.0, side="below"),
        exits=Exits(
            stop_loss=0.05,
            take_profit=0.2,
            trailing=ATRTrailing(multiple=2.0, window=14),
            time_stop=7,
        ),
        sizing=VolTarget(target=0.1, window=20, max_positions=4),
    )
    compiled = compile_genome(genome, panel)
    assert (compiled.sl_stop, compiled.tp_stop, compiled.time_stop) == (0.05, 0.2, 7)
    assert compiled.max_positions == 4
    # Indicators count each asset's own bars (asset 1 is suspended on bars 100-109).
    own = OwnBars.of(panel.tradable)
    expected_tsl = own.apply(
        lambda h, lo, c: 2.0 * prim.atr(h, lo, c, 14) / c, panel.high, panel.low, panel.close
    )
    np.testing.assert_allclose(compiled.tsl_stop, expected_tsl)
    sigma = own.apply(lambda c: prim.realised_volatility(c, 20), panel.close) * np.sqrt(252.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_size = np.nan_to_num(np.minimum(1.0, 0.1 / sigma) / 4, nan=0.0)
    np.testing.assert_allclose(compiled.size, expected_size)
    assert not compiled.entries[compiled.size == 0.0].any()
    assert not compiled.entries[~np.isfinite(expected_tsl)].any()
    pct = compile_genome(
        dataclasses.replace(genome, exits=Exits(trailing=PctTrailing(pct=0.1))), panel
    )
    assert pct.tsl_stop == 0.1


def test_compile_capped_kelly_is_clipped_to_cap(panel: Panel) -> None:
    genome = genome_of(
        RSILevel(threshold=95.0, side="below"),
        sizing=CappedKelly(window=30, cap=0.25, max_positions=3),
    )
    size = compile_genome(genome, panel).size
    own = OwnBars.of(panel.tradable)  # indicators count each asset's own bars
    returns = prim.simple_returns(own.compress(panel.close))
    mean = own.expand(prim.sma(returns, 30))
    sd = own.expand(prim.rolling_std(returns, 30, 1))
    expected = np.nan_to_num(np.clip(mean / sd**2, 0.0, 0.25), nan=0.0)
    np.testing.assert_allclose(size, expected)
    assert size.max() == 0.25 and (size == 0.0).any()


def test_compiled_genome_pickles(panel: Panel) -> None:
    compiled = compile_genome(random_genome(np.random.default_rng(1)), panel)
    back = pickle.loads(pickle.dumps(compiled))
    assert back.genome_id == compiled.genome_id
    np.testing.assert_array_equal(back.entries, compiled.entries)


# --------------------------------------------------------------------------- backtest
def test_compile_and_backtest_runs_genome_with_its_position_limit(panel: Panel) -> None:
    genome = genome_of(
        RSILevel(window=5, threshold=60.0, side="below"),
        exits=Exits(stop_loss=0.05, time_stop=5),
        sizing=FixedFraction(fraction=0.3, max_positions=2),
    )
    result = compile_and_backtest(genome, panel, BacktestConfig(cash=1e6))
    assert result.strategy == f"genome:{genome.id}"
    assert result.params["exits.time_stop"] == 5
    assert len(result.trades) > 10
    held = (result.positions.to_numpy() > 0).sum(axis=1)
    assert held.max() == 2
    assert result.config.max_positions == 2
    assert set(result.trades["exit_reason"]) >= {"time_stop"}


def test_compile_and_backtest_window_trades_only_inside_it(panel: Panel) -> None:
    genome = genome_of(
        RSILevel(window=5, threshold=60.0, side="below"),
        exits=Exits(time_stop=3),
        sizing=FixedFraction(fraction=0.3, max_positions=2),
    )
    whole = compile_genome(genome, panel)
    result = compile_and_backtest(genome, panel, start=200, stop=300)
    assert len(result.equity) == 100
    assert result.equity.index[0] == panel.index[200]
    window = whole.slice_bars(200, 300)
    # The window keeps the warmed-up signals of the whole history, not a cold restart.
    np.testing.assert_array_equal(window.entries, whole.entries[200:300])
    cold = compile_genome(genome, panel.slice_bars(200, 300))
    assert not np.array_equal(cold.entries, window.entries)
    assert len(result.trades) > 5
    with pytest.raises(GenomeError, match=r"bars 300:200 are not inside"):
        compile_and_backtest(genome, panel, start=300, stop=200)


def test_condition_signals_equal_their_numpy_expressions(panel: Panel) -> None:
    # The one-pass signal kernels give the booleans of the plain NumPy expressions over the
    # cached indicators, for every condition type and side (NaN warm-up bars never signal).
    from genome import genes

    cache = IndicatorCache(panel)
    close, tradable = panel.close, panel.tradable

    def before(values: np.ndarray) -> np.ndarray:
        out = np.full(values.shape, np.nan)
        out[1:] = values[:-1]
        return out

    with np.errstate(invalid="ignore"):
        fast, slow = cache.sma("close", 5), cache.sma("close", 20)
        spread = fast - slow
        middle, deviation = cache.sma("close", 20), cache.std("close", 20)
        volume_average = cache.previous("sma_volume", 10)
        cases = [
            (genes.PriceVsMA(ma="sma", window=30, side="above"), close > cache.sma("close", 30)),
            (genes.PriceVsMA(ma="sma", window=30, side="below"), close < cache.sma("close", 30)),
            (
                genes.MACross(ma="sma", fast=5, slow=20, direction="above"),
                (spread > 0.0) & (before(spread) <= 0.0),
            ),
            (
                genes.MACross(ma="sma", fast=5, slow=20, direction="below"),
                (spread < 0.0) & (before(spread) >= 0.0),
            ),
            (genes.RSILevel(window=14, threshold=40.0, side="below"), cache.rsi(14) < 40.0),
            (genes.RSILevel(window=14, threshold=60.0, side="above"), cache.rsi(14) > 60.0),
            (
                genes.BollingerTouch(window=20, width=1.5, band="lower"),
                close <= middle - 1.5 * deviation,
            ),
            (
                genes.BollingerTouch(window=20, width=1.5, band="upper"),
                close >= middle + 1.5 * deviation,
            ),
            (
                genes.DonchianBreakout(window=15, side="high"),
                close > cache.previous("max_high", 15),
            ),
            (
                genes.DonchianBreakout(window=15, side="low"),
                close < cache.previous("min_low", 15),
            ),
            (
                genes.Momentum(window=10, threshold=0.01, side="above"),
                cache.rate_of_change(10) > 0.01,
            ),
            (
                genes.Momentum(window=10, threshold=-0.01, side="below"),
                cache.rate_of_change(10) < -0.01,
            ),
            (
                genes.VolumeSurge(window=10, multiple=1.3),
                (volume_average > 0.0) & (panel.volume > 1.3 * volume_average),
            ),
            (genes.ATRPct(window=14, threshold=0.02, side="above"), cache.atr_pct(14) > 0.02),
            (genes.ATRPct(window=14, threshold=0.02, side="below"), cache.atr_pct(14) < 0.02),
            (
                genes.RVPercentile(window=10, lookback=60, threshold=0.3, side="below"),
                cache.rv_percentile(10, 60) <= 0.3,
            ),
            (
                genes.RVPercentile(window=10, lookback=60, threshold=0.7, side="above"),
                cache.rv_percentile(10, 60) >= 0.7,
            ),
        ]
    for condition, expected in cases:
        signal = condition_signal(condition, cache)
        assert np.array_equal(signal, expected & tradable), condition
        assert signal.any(), condition  # the case exercises firing bars, not only False ones
