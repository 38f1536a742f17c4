"""Seconds per generation of genome evaluation on Ray, with 1 and 2 workers.

A population of random genomes (:func:`genome.random.random_genome`, seeded) is scored on a
seeded synthetic market (US rules, ``--assets`` symbols, history from ``--start`` to
``--as-of``) on the live and year-ago windows of ``--window`` bars, through the evaluator pool
the evolution session uses (:class:`evolution.distributed.RayEvaluatorPool`).

Three evaluators run side by side: a 1-worker pool, a 2-worker pool (Ray started with three
logical CPUs so both pools exist at once) and, as the reference measured in the same run, a
plain :class:`~evolution.evaluate.GenomeEvaluator` in this process (no Ray, one core).

1. Each evaluator first scores a warm-up population (another seed): actors start and fetch
   the market from the object store, numba is compiled or loaded in every actor, and the
   indicators that every population shares are cached, as in a session after its first
   generation. This start-up is timed and reported apart; Ray start is excluded too.
2. Then ``--generations`` fresh random populations are scored by all three in turn (the order
   rotates), so a burst of load from other processes on a shared machine hits all of them
   alike. Seconds per generation is the median over those generations of one ``evaluate``
   call from the driver. Fresh random genomes bring new indicator parameters, so this is the
   slow case of a session (offspring share more indicators with their parents).

It reports evaluations per second, core-milliseconds per genome, the parallel efficiency
``t1 / (2 * t2)`` and the Ray overhead share: the share of a pool's CPU time (workers x wall
time) not spent inside :meth:`evolution.evaluate.GenomeEvaluator.evaluate_many` in its actors.
That in-actor time is measured by a Ray ``worker_process_setup_hook`` that wraps
``evaluate_many`` with a timer in each worker process (benchmark instrumentation only; the
evaluator itself is unchanged). The machine's load average is printed before and after: the
numbers are only comparable at similar load, and on 2 cores shared with other work, 2 workers
cannot get 2 full cores.

The last line is ``seconds_per_generation=<x> efficiency_2_workers=<y>`` (x = the 2-worker
seconds per generation).

Usage::

    python benchmarks/generation.py --quick     # population 192, well under a minute
    python benchmarks/generation.py             # population 512 (the issue's target)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

TIMING_DIR_ENV = "ALPHALOOP_BENCH_TIMING_DIR"


@dataclass(slots=True)
class Timings:
    """Wall seconds of each timed generation and the seconds spent inside ``evaluate_many``."""

    workers: int
    startup_seconds: float = 0.0
    generation_seconds: list[float] = field(default_factory=list)
    inside_seconds: list[float] = field(default_factory=list)

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


def _time_evaluate_many_in_worker() -> None:
    """Ray worker setup hook: log the wall time of every ``evaluate_many`` call to a file.

    Runs in each Ray worker process before any actor is made there. One line per call, in a
    file named after the process id, so the driver can add up the time spent evaluating.
    """
    import os
    import time

    from evolution import evaluate

    folder = os.environ.get(TIMING_DIR_ENV)
    if not folder:
        return
    original = evaluate.GenomeEvaluator.evaluate_many

    def timed(self: Any, genomes: Any) -> Any:
        started = time.perf_counter()
        out = original(self, genomes)
        elapsed = time.perf_counter() - started
        with open(os.path.join(folder, f"{os.getpid()}.log"), "a", encoding="utf-8") as handle:
            handle.write(f"{elapsed!r}\n")
        return out

    evaluate.GenomeEvaluator.evaluate_many = timed  # type: ignore[method-assign]


def _inside_seconds(folder: Path) -> float:
    """Return the evaluate time logged so far and clear the logs."""
    total = 0.0
    for path in folder.glob("*.log"):
        total += sum(float(line) for line in path.read_text(encoding="utf-8").split())
        path.unlink()
    return total


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
    args = parser.parse_args(argv)
    if args.quick:
        args.population, args.generations = 192, 3

    import ray

    from evolution.evaluate import CostConfig, GenomeEvaluator, truncate_to
    from evolution.fitness import FitnessConfig
    from simulators.synthetic import SyntheticSpec, generate_daily

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

    from evolution.distributed import RayEvaluatorPool

    with tempfile.TemporaryDirectory(prefix="alphaloop-bench-") as folder:
        timing_dir = Path(folder)
        env = {TIMING_DIR_ENV: folder}
        if os.environ.get("ALPHALOOP_HOME"):
            env["ALPHALOOP_HOME"] = os.environ["ALPHALOOP_HOME"]
        # Three logical CPUs: the 1-worker and the 2-worker pools live side by side (an idle
        # actor uses no CPU), so their generations can alternate and meet the same load.
        ray_start, _ = _timed(
            lambda: ray.init(
                address="local",
                num_cpus=3,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={
                    "env_vars": env,
                    "worker_process_setup_hook": _time_evaluate_many_in_worker,
                },
            )
        )
        print(f"ray start: {ray_start:.2f} s (excluded)")
        runs = {0: Timings(0), 1: Timings(1), 2: Timings(2)}
        pools: dict[int, Any] = {}
        try:
            # Reference without Ray, in this process, on one core (workers = 0).
            local = GenomeEvaluator(panel, **settings)
            pools[0] = local
            runs[0].startup_seconds = _timed(lambda: local.evaluate_many(warmup))[0]
            for workers in (1, 2):
                # Actors start, fetch the market, compile/load numba, cache shared indicators.
                def start(workers: int = workers) -> Any:
                    pool = RayEvaluatorPool(panel, workers=workers, **settings)
                    pool.evaluate(warmup)
                    return pool

                runs[workers].startup_seconds, pools[workers] = _timed(start)
            _inside_seconds(timing_dir)
            for number, genomes in enumerate(generations):
                for workers in ((0, 1, 2) * 2)[number % 3 : number % 3 + 3]:
                    pool = pools[workers]
                    evaluate = pool.evaluate_many if workers == 0 else pool.evaluate
                    seconds, results = _timed(partial(evaluate, genomes))
                    if len(results) != len({genome.id for genome in genomes}):
                        raise RuntimeError(f"{workers} workers: {len(results)} results")
                    runs[workers].generation_seconds.append(seconds)
                    inside = _inside_seconds(timing_dir)
                    runs[workers].inside_seconds.append(seconds if workers == 0 else inside)
        finally:
            for workers in (1, 2):
                if workers in pools:
                    pools[workers].close()
            ray.shutdown()

    for workers in (0, 1, 2):
        run = runs[workers]
        label = "no Ray, 1 core" if workers == 0 else f"{workers} Ray worker(s)"
        each = ", ".join(f"{s:.3f}" for s in run.generation_seconds)
        print(
            f"{label}: {run.seconds:.3f} s/generation (median of: {each}), "
            f"{args.population / run.seconds:.0f} evaluations/s, "
            f"{1e3 * max(1, workers) * run.seconds / args.population:.2f} core-ms/genome"
            + (f", ray overhead share {run.overhead_share:.1%}" if workers else "")
            + f"; start-up + warm-up generation {run.startup_seconds:.2f} s (excluded)"
        )
    t1, t2 = runs[1].seconds, runs[2].seconds
    efficiency = t1 / (2.0 * t2)
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(
        f"speed-up 2 vs 1 worker: {t1 / t2:.2f}x; "
        f"2 workers vs no Ray: {runs[0].seconds / t2:.2f}x; "
        f"targets: <= 2 s/generation ({'met' if t2 <= 2.0 else 'NOT met'}), "
        f"efficiency >= 80% ({'met' if efficiency >= 0.8 else 'NOT met'})"
    )
    best = runs[1].best_seconds / (2.0 * runs[2].best_seconds)
    print(
        f"best generations: 1 worker {runs[1].best_seconds:.3f} s, "
        f"2 workers {runs[2].best_seconds:.3f} s, efficiency {best:.3f}"
    )
    print(f"seconds_per_generation={t2:.3f} efficiency_2_workers={efficiency:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
