"""Throughput of the genome fitness path against vectorbt ``Portfolio.from_signals``.

The path users run: a population of genomes drawn as the evolution draws its immigrants
(:func:`evolution.operators.immigrants` through the session's DEAP toolbox,
:func:`evolution.toolbox.make_toolbox`, one seeded ``numpy`` Generator) is scored on a seeded
synthetic market (``--assets`` x ``--bars`` daily bars, crypto rules: fractional sizes and a
0.1% taker fee, so vectorbt's ``fees`` is the same model) in the same process, one thread
(``numba.set_num_threads(1)``), by two engines:

1. **ours**, the fitness path of :class:`evolution.evaluate.GenomeEvaluator` on the whole
   panel: per genome :func:`genome.compile.compile_genome` (indicators from one
   :class:`genome.cache.IndicatorCache` shared by the population, computed cold in the timed
   run: they are charged to ours), then :func:`simulators.backtest.run_backtest_arrays` (the
   exact kernel with the market's rules, next-bar fills, the genome's sizing, ``max_positions``,
   stop loss, take profit, trailing and time stops) and its metrics. Configured as fitness is
   (:func:`evolution.evaluate.fitness_backtest_config`) **without** impact and participation
   cap (``impact_coefficient=0``, ``participation_cap=None``, no spread), the setting where
   vectorbt's model coincides with ours.
2. **vectorbt**, in its best configuration: the same entries, exits, stops and fee, given as
   precomputed arrays (our compiled signals: the indicator and signal work is *not* charged to
   vectorbt), ``--vbt-chunk`` genomes per ``from_signals`` call, each genome a group of
   ``--assets`` columns sharing its cash (``cash_sharing=True``, ``call_seq="auto"``: sells
   first), signals shifted one bar with ``price`` the bars' reference prices (fitness's
   ``fill="next-bar"``: the next bar's VWAP proxy ``(O + H + L + C) / 4``), ``open/high/low``
   for the stops, ``sl_stop``/``tp_stop``/``sl_trail`` read at the entry bar, the genome's
   fraction as ``size_type="percent"``. vectorbt has no time stop and one stop-loss level per
   column (fixed or trailing): where a genome has both, the trailing one is given. Only the
   ``from_signals`` calls are timed.

Both engines' numba code is compiled (or loaded from the cache) on a tiny input first (80
bars: every genome through ours, one chunk through vectorbt); those times are printed apart.
Times are **thread CPU time** (``time.thread_time``: the machine is shared, wall time includes
waiting for a core) and wall time, best of ``--repeats``.
Throughput is bar-evaluations (genomes x assets x bars) per CPU second, on one core.
Peak memory is the ``tracemalloc`` peak of each engine on the first ``--memory-genomes``
genomes, in a separate untimed run (tracing slows every allocation; NumPy buffers are traced,
numba's internal allocations are not), and the process's maximum RSS.

**Identity where the models coincide.** In the same run, for the first ``--check-genomes``
genomes without a time stop and without both a fixed and a trailing stop loss, every asset is
run as its own one-asset account (all-in, the same fee, no impact, no cap) by our
:func:`simulators.backtest.run_backtest_arrays` and by vectorbt (independent columns,
``size=inf``; a stop is switched off on a bar with a due exit, as our open order comes first:
the rule of ``tests/simulators/test_parity_vectorbt.py``); the final values must agree to
``1e-9`` relative. The multi-asset comparison above does not coincide exactly (vectorbt sizes a
percentage of the cash, not of the equity; ``max_positions`` and time stops are ours only), so
its final values are printed as a distribution, not checked.

The last line is ``ratio_vs_vectorbt=<x>``: our bar-evaluations per thread-CPU second over
vectorbt's. Exit status 1 if the identity check fails.

Usage::

    python benchmarks/fitness_throughput.py --quick   # 64 genomes, 20 assets, 1,000 bars
    python benchmarks/fitness_throughput.py           # 512 genomes, 50 assets, 2,500 bars
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd

from evolution.evaluate import CostConfig, fitness_backtest_config
from evolution.toolbox import make_toolbox
from genome.cache import IndicatorCache
from genome.compile import CompiledGenome, compile_genome
from genome.genes import Genome
from simulators.backtest import (
    BacktestConfig,
    prepare_panel,
    run_backtest_arrays,
)
from simulators.bars import Panel
from simulators.fill_model import reference_prices
from simulators.synthetic import SyntheticSpec, generate_daily

FEE = 0.001  # the crypto market's taker commission (simulators.market_rules)
#: Fitness's fill (evolution.evaluate.fitness_backtest_config): an order signalled at the
#: close of bar t executes over bar t + 1 at its reference price.
FILL = "next-bar"
CASH = 1_000_000.0
REL = 1e-9


def make_market(seed: int, assets: int, bars: int) -> Panel:
    """Return ``assets`` x ``bars`` seeded synthetic daily bars under crypto rules."""
    end = (pd.Timestamp("2015-01-01") + pd.Timedelta(days=bars - 1)).date().isoformat()
    panel = generate_daily(
        SyntheticSpec(seed=seed, assets=assets, start="2015-01-01", end=end, market="crypto")
    )
    return panel.slice_bars(0, min(bars, panel.n_bars))


def draw_genomes(count: int, seed: int) -> list[Genome]:
    """Return ``count`` genomes drawn as the evolution draws immigrants."""
    toolbox = make_toolbox()
    genomes: list[Genome] = toolbox.immigrants(count, np.random.default_rng(seed))
    return genomes


def comparison_config(panel: Panel) -> BacktestConfig:
    """Return fitness's backtest settings with no spread, impact or cap (vectorbt's model)."""
    costs = CostConfig(
        cash=CASH, half_spread_bps=0.0, impact_coefficient=0.0, participation_cap=None
    )
    return fitness_backtest_config(panel, costs)


# --------------------------------------------------------------------------- ours
def run_ours(
    panel: Panel, genomes: Sequence[Genome], config: BacktestConfig
) -> tuple[np.ndarray, float]:
    """Score every genome on the whole panel; return final values and kernel CPU seconds."""
    cache = IndicatorCache(panel)
    prepared = prepare_panel(panel, config)
    finals = np.empty(len(genomes))
    kernel = 0.0
    configs: dict[int, BacktestConfig] = {}
    for k, genome in enumerate(genomes):
        compiled = compile_genome(genome, panel, cache)
        cfg = configs.get(compiled.max_positions)
        if cfg is None:
            cfg = config.model_copy(update={"max_positions": compiled.max_positions})
            configs[compiled.max_positions] = cfg
        start = time.thread_time()
        result = run_backtest_arrays(
            panel, prepared=prepared, config=cfg, **compiled.backtest_kwargs()
        )
        kernel += time.thread_time() - start
        finals[k] = result.metrics["final_equity"]
    return finals, kernel


# --------------------------------------------------------------------------- vectorbt
def fill_prices(panel: Panel) -> np.ndarray:
    """Return the price our kernel fills due orders at, given to vectorbt as ``price``.

    Fitness fills at the next bar's reference price (``fill="next-bar"``:
    :func:`simulators.fill_model.reference_prices`, the bar's VWAP proxy), so vectorbt's
    one-bar-shifted signals are priced with the same array.
    """
    return np.asarray(reference_prices(panel.open, panel.high, panel.low, panel.close))


def _shift(values: np.ndarray, fill: Any) -> np.ndarray:
    out = np.empty_like(values)
    out[0] = fill
    out[1:] = values[:-1]
    return out


def _stop_grid(value: float | np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if value is None:
        return np.full(shape, np.nan)
    return np.broadcast_to(np.asarray(value, dtype=float), shape)


def vbt_inputs(compiled: Sequence[CompiledGenome], shape: tuple[int, int]) -> dict[str, Any]:
    """Return vectorbt's arrays for genomes side by side (columns: genome-major)."""
    entries, exits, sl, tp, trail, size = [], [], [], [], [], []
    for c in compiled:
        entries.append(_shift(c.entries, False))
        exits.append(_shift(c.exits, False))
        # Our stops and size are read at the signal bar; vectorbt reads them at the order bar.
        trailing = c.tsl_stop is not None
        stop = _stop_grid(c.tsl_stop if trailing else c.sl_stop, shape)
        sl.append(_shift(np.ascontiguousarray(stop), np.nan))
        trail.append(np.full(shape, trailing))
        tp.append(_shift(np.ascontiguousarray(_stop_grid(c.tp_stop, shape)), np.nan))
        size.append(_shift(np.ascontiguousarray(c.size), 0.0))
    return {
        "entries": np.hstack(entries),
        "exits": np.hstack(exits),
        "sl_stop": np.hstack(sl),
        "sl_trail": np.hstack(trail),
        "tp_stop": np.hstack(tp),
        "size": np.hstack(size),
    }


def run_vbt(panel: Panel, genomes: Sequence[Genome], chunk_size: int) -> tuple[np.ndarray, float]:
    """Run the genomes' signals through ``from_signals``; return final values and CPU seconds.

    The signals are compiled and laid out for vectorbt before its timer starts, a chunk at a
    time (all 512 genomes' arrays at once would take gigabytes).
    """
    import vectorbt as vbt

    cache = IndicatorCache(panel)
    shape = (panel.n_bars, panel.n_assets)
    finals = []
    cpu = 0.0
    for first in range(0, len(genomes), chunk_size):
        part = genomes[first : first + chunk_size]
        chunk = vbt_inputs([compile_genome(g, panel, cache) for g in part], shape)
        tile = (1, len(part))
        start = time.thread_time()
        portfolio = vbt.Portfolio.from_signals(
            close=np.tile(panel.close, tile),
            price=np.tile(fill_prices(panel), tile),
            open=np.tile(panel.open, tile),
            high=np.tile(panel.high, tile),
            low=np.tile(panel.low, tile),
            size_type="percent",
            fees=FEE,
            init_cash=CASH,
            cash_sharing=True,
            group_by=np.repeat(np.arange(len(part)), panel.n_assets),
            call_seq="auto",
            accumulate=False,
            freq="1D",
            **chunk,
        )
        values = np.asarray(portfolio.final_value())
        cpu += time.thread_time() - start
        finals.append(values)
    return np.concatenate(finals), cpu


# --------------------------------------------------------------------------- identity
@numba.njit
def _no_stop_on_exit_bar(context, due_exit):  # type: ignore[no-untyped-def]
    if due_exit[context.i, context.col]:
        return np.nan, False
    return context.curr_stop, context.curr_trail


def identity_check(panel: Panel, compiled: Sequence[CompiledGenome]) -> tuple[int, int, float]:
    """Return (columns checked, columns equal, worst relative gap) on one-asset accounts."""
    import vectorbt as vbt

    config = BacktestConfig(cash=CASH, fill=FILL, market="crypto", sizing="all-in", max_positions=1)
    singles = [panel.select([symbol]) for symbol in panel.symbols]
    prepared = [prepare_panel(single, config) for single in singles]
    ours: list[float] = []
    for c in compiled:
        for column, single in enumerate(singles):
            result = run_backtest_arrays(
                single,
                c.entries[:, column : column + 1],
                c.exits[:, column : column + 1],
                config=config,
                sl_stop=c.sl_stop,
                tp_stop=c.tp_stop,
                tsl_stop=(
                    c.tsl_stop[:, column : column + 1]
                    if isinstance(c.tsl_stop, np.ndarray)
                    else c.tsl_stop
                ),
                prepared=prepared[column],
            )
            ours.append(result.metrics["final_equity"])
    shape = (panel.n_bars, panel.n_assets)
    inputs = vbt_inputs(compiled, shape)
    inputs.pop("size")
    tile = (1, len(compiled))
    portfolio = vbt.Portfolio.from_signals(
        close=np.tile(panel.close, tile),
        price=np.tile(fill_prices(panel), tile),
        open=np.tile(panel.open, tile),
        high=np.tile(panel.high, tile),
        low=np.tile(panel.low, tile),
        size=np.inf,
        fees=FEE,
        init_cash=CASH,
        accumulate=False,
        stop_entry_price="fillprice",
        adjust_sl_func_nb=_no_stop_on_exit_bar,
        adjust_sl_args=(inputs["exits"],),
        freq="1D",
        **inputs,
    )
    theirs = np.asarray(portfolio.final_value())
    mine = np.asarray(ours)
    gaps = np.abs(mine - theirs) / np.abs(theirs)
    return len(mine), int(np.sum(gaps <= REL)), float(gaps.max())


# --------------------------------------------------------------------------- driver
def _best(runs: int, call: Callable[[], tuple[Any, float]]) -> tuple[Any, float, float, float]:
    """Return (result, best thread CPU s, best wall s, inner CPU s of the best run)."""
    best_cpu = best_wall = np.inf
    inner_best = 0.0
    result: Any = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.thread_time()
        result, inner = call()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        if cpu < best_cpu:
            best_cpu, best_wall, inner_best = cpu, wall, inner
    return result, best_cpu, best_wall, inner_best


def _peak(call: Callable[[], object]) -> int:
    """Return the tracemalloc peak of one call (untimed: tracing slows allocations)."""
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--genomes", type=int, default=512)
    parser.add_argument("--assets", type=int, default=50)
    parser.add_argument("--bars", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--vbt-chunk", type=int, default=16, help="genomes per from_signals call")
    parser.add_argument("--check-genomes", type=int, default=16)
    parser.add_argument("--memory-genomes", type=int, default=32, help="genomes of the memory run")
    parser.add_argument("--quick", action="store_true", help="64 genomes, 20 assets, 1,000 bars")
    args = parser.parse_args(argv)
    if args.quick:
        args.genomes, args.assets, args.bars, args.check_genomes = 64, 20, 1000, 8
    numba.set_num_threads(1)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cpus={os.cpu_count()}")

    panel = make_market(args.seed, args.assets, args.bars)
    genomes = draw_genomes(args.genomes, args.seed)
    config = comparison_config(panel)
    evaluations = len(genomes) * panel.n_assets * panel.n_bars
    print(
        f"market: {panel.n_assets} assets x {panel.n_bars} bars ({panel.market}); "
        f"{len(genomes)} genomes; {evaluations:,} bar-evaluations per engine"
    )

    # Compile (or load from numba's cache) on a tiny input, timed apart: every genome once,
    # so each indicator kernel any of them uses is loaded before the timed run.
    tiny = panel.slice_bars(0, 80)
    start = time.perf_counter()
    run_ours(tiny, genomes, comparison_config(tiny))
    ours_compile = time.perf_counter() - start
    start = time.perf_counter()
    run_vbt(tiny, genomes[: args.vbt_chunk], args.vbt_chunk)
    vbt_compile = time.perf_counter() - start
    print(f"compile/cache load (excluded): ours {ours_compile:.2f} s, vectorbt {vbt_compile:.2f} s")

    ours_finals, ours_cpu, ours_wall, kernel_cpu = _best(
        args.repeats, lambda: run_ours(panel, genomes, config)
    )
    # vectorbt's inputs are built outside its timing (its best configuration): only the
    # from_signals calls count, the inner time.
    vbt_finals, _vbt_total, vbt_wall, vbt_cpu = _best(
        args.repeats, lambda: run_vbt(panel, genomes, args.vbt_chunk)
    )
    few = genomes[: args.memory_genomes]
    ours_peak = _peak(lambda: run_ours(panel, few, config))
    vbt_peak = _peak(lambda: run_vbt(panel, few, args.vbt_chunk))

    ours_rate = evaluations / ours_cpu
    vbt_rate = evaluations / vbt_cpu
    kernel_rate = evaluations / kernel_cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        f"ours (compile + kernel + metrics): {ours_cpu:.2f} CPU s ({ours_wall:.2f} wall), "
        f"{ours_rate / 1e6:.1f} M bar-evaluations/CPU-s, "
        f"{1e3 * ours_cpu / len(genomes):.2f} CPU-ms/genome; kernel + metrics alone "
        f"{kernel_cpu:.2f} CPU s ({kernel_rate / 1e6:.1f} M/s); "
        f"peak traced {ours_peak / 2**20:.0f} MiB ({len(few)} genomes, untimed run)"
    )
    print(
        f"vectorbt (from_signals only, {args.vbt_chunk} genomes a call): {vbt_cpu:.2f} CPU s "
        f"({vbt_wall:.2f} wall), {vbt_rate / 1e6:.1f} M bar-evaluations/CPU-s; "
        f"peak traced {vbt_peak / 2**20:.0f} MiB (the same genomes, inputs included)"
    )
    print(f"process max RSS {rss:.0f} MiB")
    gap = np.abs(ours_finals - vbt_finals) / CASH
    print(
        "multi-asset final values (models differ: percent of cash vs of equity, "
        f"max_positions, time stops): |ours - vectorbt| / cash median {np.median(gap):.2e}, "
        f"max {gap.max():.2e}"
    )

    cache = IndicatorCache(panel)
    eligible = []
    for genome in genomes:
        if len(eligible) == args.check_genomes:
            break
        c = compile_genome(genome, panel, cache)
        if c.time_stop is None and not (c.sl_stop is not None and c.tsl_stop is not None):
            eligible.append(c)
    checked, equal, worst = identity_check(panel, eligible)
    ok = checked > 0 and equal == checked
    print(
        f"identity where the models coincide ({len(eligible)} genomes x {panel.n_assets} "
        f"one-asset accounts, all-in, fee {FEE}): {equal}/{checked} final values within "
        f"{REL:g} relative (worst {worst:.1e}): {'ok' if ok else 'FAILED'}"
    )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"kernel_ratio_vs_vectorbt={kernel_rate / vbt_rate:.2f} (kernel + metrics alone)")
    print(f"ratio_vs_vectorbt={ours_rate / vbt_rate:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
