"""Evaluations per second against the number of Ray workers, and the parallel efficiency.

For each worker count k (1, 2, then doubling up to ``os.cpu_count()``, the count itself last;
or ``--workers 1,2,4``) a private local Ray is started with exactly k CPUs (never a running
cluster: a shared machine's other Ray would skew the point), an evaluator pool of k actors
(:class:`evolution.distributed.RayEvaluatorPool`, what ``alphaloop evolve`` uses) is built on
one seeded synthetic market and warmed up on a population of its own (actors start, fetch the
market, load numba, cache the indicators every population shares; timed apart and excluded).
Then the same ``--repeats`` fresh random populations (the same for every k) are evaluated one
``evaluate`` call each; the point's rate is the population size over the median seconds of a
call.

Efficiency of point k is ``rate_k / (k * rate_1)``: 1.0 is perfect scaling, measured against
the 1-worker point of the same run. The machine's cores and load average are printed before
and after; on a machine shared with other work, k workers cannot get k full cores, so compare
runs only at similar load.

The last line is ``workers=<list> evals_per_sec=<list> efficiency=<list>``.

Usage::

    python benchmarks/scaling.py --quick              # small population, under a minute
    python benchmarks/scaling.py                      # population 512, 1..cpu_count workers
    python benchmarks/scaling.py --workers 1,2,4,8,16 # on a larger machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def default_worker_counts(cpus: int) -> list[int]:
    """Return 1, 2, then doubling below ``cpus``, and ``cpus`` itself (distinct, sorted).

    Parameters
    ----------
    cpus:
        The machine's logical CPUs.
    """
    counts = {1}
    k = 2
    while k < cpus:
        counts.add(k)
        k *= 2
    counts.add(max(1, cpus))
    if cpus >= 2:
        counts.add(2)
    return sorted(counts)


def efficiencies(workers: Sequence[int], rates: Sequence[float]) -> list[float]:
    """Return ``rate_k / (k * rate_1)`` per point (the first point must be 1 worker).

    Parameters
    ----------
    workers, rates:
        Worker counts and their evaluations per second, in the same order.
    """
    if not workers or workers[0] != 1:
        raise ValueError(f"the first point must be 1 worker, got {list(workers)}")
    base = rates[0]
    return [rate / (k * base) if base > 0 else 0.0 for k, rate in zip(workers, rates, strict=True)]


def _populations(seed: int, size: int, count: int) -> list[list[Any]]:
    from genome.random import random_genome

    out = []
    for child in np.random.SeedSequence(seed).spawn(count):
        rng = np.random.default_rng(child)
        out.append([random_genome(rng) for _ in range(size)])
    return out


def _point(
    workers: int, panel: Any, settings: dict[str, Any], warmup: list[Any], timed: list[list[Any]]
) -> tuple[float, float, list[float], set[int]]:
    """Time one worker count on a private Ray; return start-up, median seconds, all, pids."""
    import ray

    from evolution.distributed import RayEvaluatorPool

    env = {"ALPHALOOP_HOME": os.environ["ALPHALOOP_HOME"]} if "ALPHALOOP_HOME" in os.environ else {}
    ray.init(
        address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
        configure_logging=False, runtime_env={"env_vars": env},
    )  # fmt: skip
    try:
        started = time.perf_counter()
        pool = RayEvaluatorPool(panel, workers=workers, **settings)
        pool.evaluate(warmup)
        startup = time.perf_counter() - started
        seconds = []
        for genomes in timed:
            started = time.perf_counter()
            results = pool.evaluate(genomes)
            seconds.append(time.perf_counter() - started)
            if len(results) != len({g.id for g in genomes}):
                raise RuntimeError(f"{workers} workers: {len(results)} results for {len(genomes)}")
        pids = set(pool.pids_used)
        pool.close()
        return startup, statistics.median(seconds), seconds, pids
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="population 256, small market")
    parser.add_argument("--workers", default=None, help="comma-separated worker counts")
    parser.add_argument("--population", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="timed populations per point")
    parser.add_argument("--assets", type=int, default=30)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--start", default="2021-01-01")
    parser.add_argument("--as-of", default="2023-12-29")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.population, args.repeats, args.assets, args.window = 256, 3, 10, 120
    cpus = os.cpu_count() or 1
    if args.workers:
        counts = sorted({int(k) for k in args.workers.split(",")})
        if counts[0] != 1:
            counts = [1, *counts]  # efficiency is measured against one worker
    else:
        counts = default_worker_counts(cpus)

    from evolution.evaluate import CostConfig, truncate_to
    from evolution.fitness import FitnessConfig
    from simulators.synthetic import SyntheticSpec, generate_daily

    spec = SyntheticSpec(
        seed=args.seed, assets=args.assets, start=args.start, end=args.as_of, market="us"
    )
    panel = truncate_to(generate_daily(spec), args.as_of)
    settings: dict[str, Any] = {
        "window": args.window,
        "fitness": FitnessConfig.model_validate({"window": args.window}),
        "costs": CostConfig.model_validate({}),
    }
    warmup, *timed = _populations(args.seed, args.population, 1 + args.repeats)
    load = os.getloadavg()
    print(f"machine: {cpus} logical cpus, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"market: {panel.n_assets} assets x {panel.n_bars} bars, windows 2 x {args.window}; "
        f"population {args.population}, {args.repeats} timed populations per point (+1 warm-up)"
    )
    rates = []
    for k in counts:
        startup, median, seconds, pids = _point(k, panel, settings, warmup, timed)
        rate = args.population / median
        rates.append(rate)
        runs = " ".join(f"{s:.2f}" for s in seconds)
        print(
            f"workers {k:>3}: {rate:8.1f} evals/s (median {median:.3f} s; runs {runs}; "
            f"start-up {startup:.1f} s excluded; {len(pids)} worker processes)"
        )
    effs = efficiencies(counts, rates)
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"workers={counts} evals_per_sec={[round(r, 1) for r in rates]} "
        f"efficiency={[round(e, 3) for e in effs]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
