"""Micro-benchmark: the SMA-cross population kernel against vectorbt and a bare numba loop.

**A micro-benchmark, not a path users run.** The SMA-cross population kernel
(:mod:`simulators.population`) scores one hard-coded strategy family; no production path
(fitness, the arena, the CLI) calls it. The speed of the genome fitness path that evolution
runs is measured by ``benchmarks/fitness_throughput.py``.

A population of SMA-cross variants (fast 5..50 x slow 20..200, step 5, fast < slow: 342
strategies) runs over one long seeded random-walk series, in the same process, through:

1. ours: :func:`simulators.population.simulate_sma_cross_population` (moving averages
   precomputed once per window, then one pass per strategy writing the equity curve, the
   trade records and the metrics; the timing includes the averages and the trade packing),
2. vectorbt: ``vbt.Portfolio.from_signals`` on the same signals and fill prices, column
   chunks of ``--vbt-chunk`` strategies (the timing covers the ``from_signals`` calls only),
3. a plain single-pass numba loop computing only the final value and the trade count (moving
   averages inline as running sums, everything in scalars, nothing stored).

It prints bar-evaluations per second (bars x strategies / seconds, best of ``--repeats``), the
ratios, the peak traced memory of each engine (tracemalloc: NumPy buffers included), the
process's maximum RSS, the numba compile (or cache-load) times, and whether the results agree:
final values equal across the three, trade counts equal to vectorbt's. Everything runs on one
thread (``numba.set_num_threads(1)``). The last line is
``ratio_vs_vectorbt=<x> ratio_vs_numba_loop=<y>`` (ours / vectorbt, ours / loop).

Usage::

    python benchmarks/backtest_throughput.py --quick     # 100,000 bars, well under a minute
    python benchmarks/backtest_throughput.py             # 1,000,000 bars (vectorbt: minutes)
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import njit

from simulators.population import (
    PopulationResult,
    moving_averages,
    simulate_sma_cross_population,
    sma_cross_grid,
)

INIT_CASH = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Best wall and CPU (this thread) times of an engine over its repeats, peak memory."""

    seconds: float
    cpu_seconds: float
    peak_bytes: int


def random_walk(n_bars: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return a seeded geometric random walk as consistent ``open, high, low, close``."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_bars)))
    gap = np.exp(rng.normal(0.0, 0.002, n_bars))
    open_ = np.empty(n_bars)
    open_[0] = 100.0 * gap[0]
    open_[1:] = close[:-1] * gap[1:]
    wick = np.abs(rng.normal(0.0, 0.003, (2, n_bars)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    return open_, high, low, close


@njit(cache=True, fastmath=False)
def final_values_loop_nb(
    close: np.ndarray,
    open_: np.ndarray,
    fast_windows: np.ndarray,
    slow_windows: np.ndarray,
    fill_next_open: bool,
    init_cash: float,
    final_value: np.ndarray,
    n_trades: np.ndarray,
) -> None:
    """Simulate each SMA-cross pair in one pass with scalars only; store the final value."""
    n_bars = close.shape[0]
    for k in range(fast_windows.shape[0]):
        fast_window = fast_windows[k]
        slow_window = slow_windows[k]
        longest = max(fast_window, slow_window)
        fast_sum = 0.0
        slow_sum = 0.0
        cash = init_cash
        size = 0.0
        is_long = False
        pending = 0
        trades = 0
        previous_gt = False
        previous_lt = False
        for t in range(n_bars):
            price = close[t]
            fast_sum += price
            slow_sum += price
            if t >= fast_window:
                fast_sum -= close[t - fast_window]
            if t >= slow_window:
                slow_sum -= close[t - slow_window]
            if pending > 0:
                size = cash / open_[t]
                # Spend no more than the cash, as the engines do (rare: an ulp too much).
                while size * open_[t] > cash:
                    size = np.nextafter(size, 0.0)
                cash -= size * open_[t]
                is_long = True
            elif pending < 0:
                cash += size * open_[t]
                size = 0.0
                is_long = False
                trades += 1
            pending = 0
            if t < longest - 1:
                continue
            fast_value = fast_sum / fast_window
            slow_value = slow_sum / slow_window
            gt = fast_value > slow_value
            lt = fast_value < slow_value
            if t >= longest:
                if is_long:
                    if lt and not previous_lt:
                        if not fill_next_open:
                            cash += size * price
                            size = 0.0
                            is_long = False
                            trades += 1
                        elif t + 1 < n_bars:
                            pending = -1
                elif gt and not previous_gt:
                    if not fill_next_open:
                        size = cash / price
                        while size * price > cash:
                            size = np.nextafter(size, 0.0)
                        cash -= size * price
                        is_long = True
                    elif t + 1 < n_bars:
                        pending = 1
            previous_gt = gt
            previous_lt = lt
        final_value[k] = cash + size * close[n_bars - 1]
        n_trades[k] = trades


def cross_signals(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the entry and exit signals ``(T, K)`` of averages ``(T, K)`` (NaN compares False)."""
    gt = fast > slow
    lt = fast < slow
    entries = np.zeros(fast.shape, dtype=bool)
    exits = np.zeros(fast.shape, dtype=bool)
    entries[1:] = gt[1:] & (fast[:-1] <= slow[:-1])
    exits[1:] = lt[1:] & (fast[:-1] >= slow[:-1])
    return entries, exits


def run_vectorbt(
    close: np.ndarray,
    open_: np.ndarray,
    pairs: np.ndarray,
    chunk: int,
    fill_next_open: bool,
) -> tuple[float, float, int, np.ndarray, np.ndarray]:
    """Run vectorbt over column chunks.

    Return the wall and CPU seconds spent in ``from_signals``, the peak memory traced during
    a ``from_signals`` call (when tracemalloc is on), the final values and the closed-trade
    counts.
    """
    import vectorbt as vbt

    windows = np.unique(pairs)
    averages = moving_averages(close, windows.tolist())
    rows = {int(w): i for i, w in enumerate(windows)}
    price = open_ if fill_next_open else close
    finals = np.empty(pairs.shape[0])
    closed = np.empty(pairs.shape[0], dtype=np.int64)
    seconds = 0.0
    cpu_seconds = 0.0
    peak = 0
    for first in range(0, pairs.shape[0], chunk):
        part = pairs[first : first + chunk]
        fast = np.ascontiguousarray(averages[[rows[int(f)] for f in part[:, 0]]].T)
        slow = np.ascontiguousarray(averages[[rows[int(s)] for s in part[:, 1]]].T)
        entries, exits = cross_signals(fast, slow)
        del fast, slow
        if fill_next_open:
            # A signal at t becomes an order at t + 1 filled at that bar's open.
            entries = np.vstack([np.zeros((1, part.shape[0]), dtype=bool), entries[:-1]])
            exits = np.vstack([np.zeros((1, part.shape[0]), dtype=bool), exits[:-1]])
        max_orders = int(entries.sum() + exits.sum()) + 1
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        cpu_start = time.thread_time()
        portfolio = vbt.Portfolio.from_signals(
            close=close[:, None],
            entries=entries,
            exits=exits,
            price=price[:, None],
            size=np.inf,
            fees=0.0,
            direction="longonly",
            accumulate=False,
            init_cash=INIT_CASH,
            max_orders=max_orders,
            freq="1D",
        )
        seconds += time.perf_counter() - start
        cpu_seconds += time.thread_time() - cpu_start
        peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
        # final_value() is rebuilt from returns (off by rounding): take the last value itself.
        finals[first : first + part.shape[0]] = np.asarray(portfolio.value())[-1]
        closed[first : first + part.shape[0]] = np.asarray(portfolio.trades.closed.count())
        del portfolio, entries, exits
    return seconds, cpu_seconds, peak, finals, closed


def best_of(repeats: int, action: Callable[[], Any]) -> tuple[Timing, Any]:
    """Run ``action`` ``repeats`` times; return the best time, the peak traced memory, a result."""
    best = float("inf")
    best_cpu = float("inf")
    peak = 0
    result = None
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        cpu_start = time.thread_time()
        result = action()
        best_cpu = min(best_cpu, time.thread_time() - cpu_start)
        best = min(best, time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return Timing(best, best_cpu, peak), result


def compile_times(fill_next_open: bool) -> dict[str, float]:
    """Time the first call of every kernel on a tiny input (compilation or cache load)."""
    open_, _, _, close = random_walk(64, seed=0)
    pairs = np.array([[2, 5]], dtype=np.int64)
    times = {}
    start = time.perf_counter()
    simulate_sma_cross_population(
        close, open_, pairs, fill="next-open" if fill_next_open else "close", keep_equity=True
    )
    times["ours (moving averages + chunk kernel)"] = time.perf_counter() - start
    start = time.perf_counter()
    final_values_loop_nb(
        close, open_, pairs[:, 0], pairs[:, 1], fill_next_open, INIT_CASH, np.empty(1),
        np.empty(1, dtype=np.int64),
    )  # fmt: skip
    times["numba loop"] = time.perf_counter() - start
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 bars (under a minute)")
    parser.add_argument("--bars", type=int, default=None, help="override the number of bars")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fill", choices=("next-open", "close"), default="next-open")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of ours and the loop")
    parser.add_argument("--vbt-repeats", type=int, default=None)
    parser.add_argument(
        "--vbt-chunk",
        type=int,
        default=None,
        help="vectorbt columns per call (default: 8,000,000 bar-evaluations a call, as its "
        "value() needs about 80 bytes per bar-evaluation)",
    )
    parser.add_argument("--chunk", type=int, default=8, help="our strategies per kernel call")
    args = parser.parse_args(argv)

    n_bars = args.bars or (100_000 if args.quick else 1_000_000)
    vbt_repeats = args.vbt_repeats or (2 if args.quick else 1)
    vbt_chunk = args.vbt_chunk or max(1, 8_000_000 // n_bars)
    fill_next_open = args.fill == "next-open"
    numba.set_num_threads(1)

    pairs = sma_cross_grid(range(5, 51, 5), range(20, 201, 5))
    n_strategies = pairs.shape[0]
    open_, _, _, close = random_walk(n_bars, args.seed)
    evaluations = n_bars * n_strategies
    print(
        f"bars={n_bars:,} strategies={n_strategies} windows={np.unique(pairs).size} "
        f"fill={args.fill} threads={numba.get_num_threads()} evaluations={evaluations:,}"
    )

    for name, seconds in compile_times(fill_next_open).items():
        print(f"first call (numba compile or cache load) {name}: {seconds:.2f} s")

    equity_checked = np.zeros(n_strategies, dtype=bool)
    last_equity = np.empty(n_strategies)

    def consume(first: int, equity: np.ndarray) -> None:
        # Read the curve so that it is really produced: its last value is checked below.
        last_equity[first : first + equity.shape[0]] = equity[:, -1]
        equity_checked[first : first + equity.shape[0]] = True

    def ours() -> PopulationResult:
        return simulate_sma_cross_population(
            close, open_, pairs, fill=args.fill, chunk_size=args.chunk, on_chunk=consume
        )

    ours_timing, result = best_of(args.repeats, ours)
    start = time.perf_counter()
    moving_averages(close, np.unique(pairs).tolist())
    averages_seconds = time.perf_counter() - start

    finals_loop = np.empty(n_strategies)
    trades_loop = np.empty(n_strategies, dtype=np.int64)

    def loop() -> None:
        final_values_loop_nb(
            close, open_, pairs[:, 0].copy(), pairs[:, 1].copy(), fill_next_open, INIT_CASH,
            finals_loop, trades_loop,
        )  # fmt: skip

    loop_timing, _ = best_of(args.repeats, loop)

    # vectorbt compiles its kernels on first use: warm it up on a tiny problem, untimed.
    start = time.perf_counter()
    run_vectorbt(close[:300], open_[:300], pairs[:2], vbt_chunk, fill_next_open)
    vbt_warmup = time.perf_counter() - start
    print(f"first call (numba compile or cache load) vectorbt: {vbt_warmup:.2f} s")
    vbt_best = float("inf")
    vbt_best_cpu = float("inf")
    vbt_peak = 0
    for _ in range(vbt_repeats):
        tracemalloc.start()
        seconds, cpu_seconds, call_peak, finals_vbt, closed_vbt = run_vectorbt(
            close, open_, pairs, vbt_chunk, fill_next_open
        )
        vbt_peak = max(vbt_peak, call_peak)
        tracemalloc.stop()
        vbt_best = min(vbt_best, seconds)
        vbt_best_cpu = min(vbt_best_cpu, cpu_seconds)
    vbt_timing = Timing(vbt_best, vbt_best_cpu, vbt_peak)

    timings = {"ours": ours_timing, "vectorbt": vbt_timing, "numba loop": loop_timing}
    rates = {name: evaluations / timing.seconds for name, timing in timings.items()}
    cpu_rates = {name: evaluations / timing.cpu_seconds for name, timing in timings.items()}
    print(
        f"vectorbt: {vbt_chunk} columns per from_signals call; its memory is the peak above "
        "the inputs during one call (signals, value() and trade counting excluded)"
    )
    for name, timing in timings.items():
        print(
            f"{name:>10}: wall {timing.seconds:8.3f} s = {rates[name] / 1e6:7.1f} M "
            f"bar-evaluations/s (thread CPU {timing.cpu_seconds:8.3f} s = "
            f"{cpu_rates[name] / 1e6:7.1f} M/s), peak traced memory "
            f"{timing.peak_bytes / 2**20:7.1f} MiB"
        )
    print(f"ours: moving averages of {np.unique(pairs).size} windows take {averages_seconds:.3f} s "
          f"of it; {int(result.n_trades.sum()):,} trade records produced")  # fmt: skip
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {max_rss:.0f} MiB")

    same_loop = np.array_equal(result.final_value, finals_loop)
    # vectorbt spends cash / price and snaps the cash to 0 where our engines step the size
    # down an ulp when size * price > cash: its finals agree to rounding, not bit for bit.
    relative = float(np.abs(result.final_value / finals_vbt - 1.0).max())
    bitwise_vbt = int((result.final_value == finals_vbt).sum())
    same_vbt = relative <= 1e-9
    trades_vbt = np.array_equal(result.n_trades, closed_vbt)
    trades_loop_same = np.array_equal(result.n_trades, trades_loop)
    curves = bool(equity_checked.all()) and np.array_equal(last_equity, result.final_value)
    print(f"final values: ours=loop bit for bit {same_loop}; ours=vectorbt within 1e-9 "
          f"{same_vbt} (max relative difference {relative:.1e}, {bitwise_vbt}/{n_strategies} "
          "bit for bit)")  # fmt: skip
    print(f"trade counts identical: ours=vectorbt {trades_vbt}, ours=loop {trades_loop_same}; "
          f"equity curves produced and ending at the final values: {curves}")  # fmt: skip
    ok = same_loop and same_vbt and trades_vbt and trades_loop_same and curves
    if not ok:
        print("RESULTS DIFFER", file=sys.stderr)
    print(
        f"ratios on thread CPU time: vs vectorbt "
        f"{cpu_rates['ours'] / cpu_rates['vectorbt']:.2f}, vs numba loop "
        f"{cpu_rates['ours'] / cpu_rates['numba loop']:.3f}"
    )
    ratio_vbt = rates["ours"] / rates["vectorbt"]
    ratio_loop = rates["ours"] / rates["numba loop"]
    print(
        "micro-benchmark: the SMA-cross population kernel, which no production path runs "
        "(the genome fitness path: benchmarks/fitness_throughput.py)"
    )
    print(f"ratio_vs_vectorbt={ratio_vbt:.2f} ratio_vs_numba_loop={ratio_loop:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
