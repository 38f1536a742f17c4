"""Seconds per generation of genome evaluation on Ray, with 1 and 2 workers.

A population of random genomes (:func:`genome.random.random_genome`, seeded) is scored on a
seeded synthetic market (US rules, ``--assets`` symbols, history from ``--start`` to
``--as-of``) on the live and year-ago windows of ``--window`` bars, through the evaluator pool
the evolution session uses (:class:`evolution.distributed.RayEvaluatorPool`).

Evaluators run side by side: a 1-worker pool, a 2-worker pool (Ray is started with enough
logical CPUs that all pools exist at once; an idle actor uses no CPU) and, as the reference
measured in the same run, a plain :class:`~evolution.evaluate.GenomeEvaluator` in this process
(no Ray, one core). With ``--compare-routing`` a second 2-worker pool that cuts batches in id
order, ignoring which indicators genomes share (the pool's routing before it routed by
indicator), runs too.

1. Each evaluator first scores a warm-up population (another seed): actors start and fetch
   the market from the object store, numba is compiled or loaded in every actor, and the
   indicators that every population shares are cached, as in a session after its first
   generation. This start-up is timed and reported apart; Ray start is excluded too.
2. Then ``--generations`` fresh random populations are scored by all of them in turn (the
   order rotates), so a burst of load from other processes on a shared machine hits all of
   them alike. Seconds per generation is the median over those generations of one
   ``evaluate`` call from the driver. Fresh random genomes bring new indicator parameters, so
   this is the slow case of a session (offspring share more indicators with their parents).

It reports evaluations per second, core-milliseconds per genome (workers x wall), the CPU
milliseconds per genome spent inside ``evaluate_many`` in the actors (the work itself, nearly
blind to other processes' load), the indicators computed per generation, the parallel
efficiency ``t0 / (2 * t2)`` against the in-process single-core run ``t0`` (no Ray: what a
user gets without the pool; also per generation), the Ray-internal scaling ``t1 / (2 * t2)``
against the 1-worker pool (printed apart: the 1-worker pool already pays Ray's overhead, so
it flatters the pool), "work efficiency" (the ratio of the in-actor CPU milliseconds per
genome, which only duplicated indicator work moves) and the Ray overhead share: the share of
a pool's CPU time (workers x wall time) not spent inside ``evaluate_many``. The in-actor times
come back with every batch (:class:`evolution.distributed.PoolReport`). The machine's load
average is printed before and after: the numbers are only comparable at similar load, and on 2
cores shared with other work, 2 workers cannot get 2 full cores.

The last line is ``seconds_per_generation=<x> efficiency_2_workers=<y>`` (x = the 2-worker
seconds per generation, y = ``t0 / (2 * t2)`` against the in-process single-core run).

Usage::

    python benchmarks/generation.py --quick     # population 192, well under a minute
    python benchmarks/generation.py             # population 512 (the issue's target)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np


@dataclass(slots=True)
class Timings:
    """Per timed generation: driver wall seconds and what the actors reported."""

    label: str
    workers: int
    startup_seconds: float = 0.0
    generation_seconds: list[float] = field(default_factory=list)
    inside_seconds: list[float] = field(default_factory=list)
    inside_cpu_seconds: list[float] = field(default_factory=list)
    computed: list[int] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Median seconds per generation (robust to a burst of load from other processes)."""
        return statistics.median(self.generation_seconds)

    @property
    def best_seconds(self) -> float:
        """Fastest generation (the least disturbed by other processes)."""
        return min(self.generation_seconds)

    @property
    def overhead_share(self) -> float:
        """Share of the pool's CPU time (workers x wall) spent outside ``evaluate_many``."""
        busy = max(1, self.workers) * sum(self.generation_seconds)
        return max(0.0, 1.0 - sum(self.inside_seconds) / busy) if busy > 0 else 0.0


def _populations(seed: int, size: int, count: int) -> list[list[Any]]:
    from genome.random import random_genome

    root = np.random.SeedSequence(seed)
    out = []
    for child in root.spawn(count):
        rng = np.random.default_rng(child)
        out.append([random_genome(rng) for _ in range(size)])
    return out


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _id_order_routing(genomes: Sequence[Any], n_actors: int) -> list[list[Any]]:
    """Cut genomes in id order into equal groups (ignores shared indicators)."""
    ordered = sorted(genomes, key=lambda genome: genome.id)
    size = -(-len(ordered) // max(1, n_actors))
    return [ordered[i * size : (i + 1) * size] for i in range(max(1, n_actors))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="population 192, 3 generations")
    parser.add_argument("--population", type=int, default=512)
    parser.add_argument("--generations", type=int, default=6, help="timed generations")
    parser.add_argument("--assets", type=int, default=50)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--start", default="2021-01-01", help="first day of the market")
    parser.add_argument("--as-of", default="2023-12-29", help="the as-of date D")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--compare-routing",
        action="store_true",
        help="also time 2 workers whose batches ignore shared indicators (id order)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.population, args.generations = 192, 3

    import ray

    from evolution.distributed import RayEvaluatorPool
    from evolution.evaluate import CostConfig, GenomeEvaluator, truncate_to
    from evolution.fitness import FitnessConfig
    from simulators.synthetic import SyntheticSpec, generate_daily

    class IdOrderPool(RayEvaluatorPool):
        """The pool with batches cut in id order (the reference for indicator routing)."""

        def _route(self, genomes: Sequence[Any], n_actors: int) -> list[list[Any]]:
            return _id_order_routing(genomes, n_actors)

    load_before = os.getloadavg()
    spec = SyntheticSpec(
        seed=args.seed, assets=args.assets, start=args.start, end=args.as_of, market="us"
    )
    panel = truncate_to(generate_daily(spec), args.as_of)
    fitness = FitnessConfig.model_validate({"window": args.window})
    costs = CostConfig.model_validate({})
    settings: dict[str, Any] = {"window": args.window, "fitness": fitness, "costs": costs}
    warmup, *generations = _populations(args.seed, args.population, 1 + args.generations)
    print(
        f"market: {panel.n_assets} assets x {panel.n_bars} bars ({args.start}..{args.as_of}), "
        f"windows 2 x {args.window} bars; population {args.population}, "
        f"{args.generations} timed generations (+1 warm-up); cpus {os.cpu_count()}"
    )
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")

    runs = {
        "local": Timings("no Ray, 1 core", 0),
        "1": Timings("1 Ray worker", 1),
        "2": Timings("2 Ray workers", 2),
    }
    kinds: dict[str, Any] = {"1": RayEvaluatorPool, "2": RayEvaluatorPool}
    if args.compare_routing:
        runs["2-id"] = Timings("2 Ray workers, id-order batches", 2)
        kinds["2-id"] = IdOrderPool
    env = {"ALPHALOOP_HOME": os.environ["ALPHALOOP_HOME"]} if "ALPHALOOP_HOME" in os.environ else {}
    # Enough logical CPUs for every pool's actors to live side by side, so their generations
    # can alternate and meet the same load.
    ray_start, _ = _timed(
        lambda: ray.init(
            address="local",
            num_cpus=sum(run.workers for run in runs.values()),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": env},
        )
    )
    print(f"ray start: {ray_start:.2f} s (excluded)")
    pools: dict[str, Any] = {}
    try:
        # Reference without Ray, in this process, on one core.
        local = GenomeEvaluator(panel, **settings)
        pools["local"] = local
        runs["local"].startup_seconds = _timed(lambda: local.evaluate_many(warmup))[0]
        for name, kind in kinds.items():
            # Actors start, fetch the market, compile/load numba, cache shared indicators.
            def start(kind: Any = kind, workers: int = runs[name].workers) -> Any:
                pool = kind(panel, workers=workers, **settings)
                pool.evaluate(warmup)
                return pool

            runs[name].startup_seconds, pools[name] = _timed(start)
        names = list(runs)
        for number, genomes in enumerate(generations):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                pool = pools[name]
                evaluate = pool.evaluate_many if name == "local" else pool.evaluate
                misses = local.cache.misses + local._compile_cache.misses
                cpu = time.process_time()
                seconds, results = _timed(partial(evaluate, genomes))
                if len(results) != len({genome.id for genome in genomes}):
                    raise RuntimeError(f"{name}: {len(results)} results")
                run = runs[name]
                run.generation_seconds.append(seconds)
                if name == "local":
                    run.inside_seconds.append(seconds)
                    run.inside_cpu_seconds.append(time.process_time() - cpu)
                    run.computed.append(local.cache.misses + local._compile_cache.misses - misses)
                else:
                    report = pool.last_report
                    run.inside_seconds.append(report.actor_seconds)
                    run.inside_cpu_seconds.append(report.actor_cpu_seconds)
                    run.computed.append(report.indicators_computed)
    finally:
        for name, pool in pools.items():
            if name != "local":
                pool.close()
        ray.shutdown()

    population = args.population
    for run in runs.values():
        each = ", ".join(f"{s:.3f}" for s in run.generation_seconds)
        cpu_ms = 1e3 * sum(run.inside_cpu_seconds) / (population * len(run.inside_cpu_seconds))
        print(
            f"{run.label}: {run.seconds:.3f} s/generation (median of: {each}), "
            f"{population / run.seconds:.0f} evaluations/s, "
            f"{1e3 * max(1, run.workers) * run.seconds / population:.2f} core-ms/genome, "
            f"{cpu_ms:.2f} cpu-ms/genome inside evaluate_many, "
            f"{statistics.mean(run.computed):.0f} indicators+signals computed/generation"
            + (f", ray overhead share {run.overhead_share:.1%}" if run.workers else "")
            + f"; start-up + warm-up generation {run.startup_seconds:.2f} s (excluded)"
        )
    t0, t1, t2 = runs["local"].seconds, runs["1"].seconds, runs["2"].seconds
    # Against the in-process single-core run: the pool must beat what one core does without
    # Ray, not a 1-worker pool that already pays Ray's overhead.
    efficiency = t0 / (2.0 * t2)
    ray_scaling = t1 / (2.0 * t2)
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(
        f"speed-up 2 vs 1 worker: {t1 / t2:.2f}x; "
        f"2 workers vs no Ray: {t0 / t2:.2f}x; "
        f"efficiency vs the in-process single-core run t0/(2 t2): {efficiency:.3f}; "
        f"Ray-internal scaling t1/(2 t2) vs the 1-worker pool: {ray_scaling:.3f}; "
        f"targets: <= 2 s/generation ({'met' if t2 <= 2.0 else 'NOT met'}), "
        f"efficiency >= 80% ({'met' if efficiency >= 0.8 else 'NOT met'})"
    )
    if args.compare_routing:
        print(
            f"id-order batches: efficiency {t0 / (2.0 * runs['2-id'].seconds):.3f} "
            f"(indicator routing: {efficiency:.3f})"
        )
    paired = statistics.median(
        one / (2.0 * two)
        for one, two in zip(
            runs["local"].generation_seconds, runs["2"].generation_seconds, strict=True
        )
    )
    work = sum(runs["1"].inside_cpu_seconds) / sum(runs["2"].inside_cpu_seconds)
    print(
        f"efficiency per generation (no Ray vs 2 workers, back to back), median: {paired:.3f}; "
        f"work efficiency (cpu-ms/genome inside evaluate_many, 1 worker / 2 workers): {work:.3f}"
    )
    best = runs["local"].best_seconds / (2.0 * runs["2"].best_seconds)
    print(
        f"best generations: no Ray {runs['local'].best_seconds:.3f} s, "
        f"1 worker {runs['1'].best_seconds:.3f} s, "
        f"2 workers {runs['2'].best_seconds:.3f} s, efficiency {best:.3f}"
    )
    print(f"seconds_per_generation={t2:.3f} efficiency_2_workers={efficiency:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
