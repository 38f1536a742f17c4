"""The Ray edge of evaluation: long-lived evaluator actors, market data put once.

Each actor holds the panel (fetched once from the object store), one indicator cache and warm
numba code, and evaluates batches of genomes. Batches are sized for at least ~10 ms of work
(one genome on two windows already takes that); results are merged by genome id, so neither
completion order nor the number of workers changes anything. Without a running cluster a local
Ray is started with ``workers`` CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import ray
from ray.util import ActorPool

from evolution.evaluate import CostConfig, Evaluation, GenomeEvaluator
from evolution.fitness import FitnessConfig
from genome.genes import Genome
from simulators.bars import Panel


def ensure_ray(workers: int) -> dict[str, Any]:
    """Connect to a running Ray cluster, or start a local one; return a description."""
    if ray.is_initialized():
        return {"started": False, "address": "existing"}
    runtime_env = {"env_vars": {k: v for k, v in os.environ.items() if k == "ALPHALOOP_HOME"}}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], runtime_env=runtime_env, log_to_driver=False)
        return {"started": False, "address": os.environ["RAY_ADDRESS"]}
    try:
        ray.init(address="auto", runtime_env=runtime_env, log_to_driver=False)
        return {"started": False, "address": "auto"}
    except (ConnectionError, RuntimeError):
        pass
    ray.init(
        num_cpus=max(1, workers),
        include_dashboard=False,
        runtime_env=runtime_env,
        log_to_driver=False,
        configure_logging=False,
    )
    return {"started": True, "address": "local"}


@ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)
class EvaluatorActor:
    """Evaluates genome batches on one panel; evaluation is pure, so retries are safe."""

    def __init__(
        self, panel: Panel, window: int, fitness: FitnessConfig, costs: CostConfig
    ) -> None:
        self.evaluator = GenomeEvaluator(panel, window=window, fitness=fitness, costs=costs)
        self.node_id = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()

    def evaluate_batch(self, genomes: Sequence[Genome]) -> tuple[dict[str, Evaluation], str, int]:
        return self.evaluator.evaluate_many(genomes), self.node_id, self.pid


class RayEvaluatorPool:
    """A pool of ``workers`` evaluator actors over one panel.

    Parameters
    ----------
    panel:
        Bars up to the as-of date (put in the object store once).
    workers:
        Number of actors (one CPU each).
    """

    def __init__(
        self,
        panel: Panel,
        *,
        workers: int,
        window: int,
        fitness: FitnessConfig,
        costs: CostConfig,
    ) -> None:
        self.ray_info = ensure_ray(workers)
        self.workers = max(1, workers)
        # Held for the pool's lifetime: a restarted actor re-reads its constructor arguments.
        self.panel_ref = ray.put(panel)
        self.actors = [
            EvaluatorActor.remote(self.panel_ref, window, fitness, costs)
            for _ in range(self.workers)
        ]
        self.nodes_used: set[str] = set()
        self.pids_used: set[int] = set()

    def evaluate(self, genomes: Iterable[Genome]) -> dict[str, Evaluation]:
        todo = list({genome.id: genome for genome in genomes}.values())
        if not todo:
            return {}
        n_batches = min(len(todo), 4 * self.workers)
        size = -(-len(todo) // n_batches)
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        pool = ActorPool(self.actors)
        results: dict[str, Evaluation] = {}
        for evaluations, node_id, pid in pool.map_unordered(
            lambda actor, batch: actor.evaluate_batch.remote(batch), batches
        ):
            results.update(evaluations)
            self.nodes_used.add(node_id)
            self.pids_used.add(pid)
        return results

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


class LocalEvaluatorPool:
    """The same interface without Ray (``--workers 0``): evaluation in this process."""

    def __init__(
        self, panel: Panel, *, window: int, fitness: FitnessConfig, costs: CostConfig
    ) -> None:
        self.evaluator = GenomeEvaluator(panel, window=window, fitness=fitness, costs=costs)
        self.workers = 0
        self.ray_info = {"started": False, "address": "none"}
        self.nodes_used: set[str] = set()
        self.pids_used: set[int] = {os.getpid()}

    def evaluate(self, genomes: Iterable[Genome]) -> dict[str, Evaluation]:
        return self.evaluator.evaluate_many(genomes)

    def close(self) -> None:
        return None
