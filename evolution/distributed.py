"""The Ray edge of evaluation: long-lived evaluator actors, market data put once.

Each actor holds the panel (fetched once from the object store), one indicator cache and warm
numba code, and evaluates batches of genomes. Evaluation is pure, so results are merged by
genome id and neither completion order, routing nor the number of workers changes anything.
Without a named cluster (``RAY_ADDRESS``, ``--ray-address``) a private local Ray is started
with ``workers`` CPUs (:mod:`alphaloop.ray_session`).

Routing (:func:`route`)
    A population uses a few hundred distinct indicators (SMA(37), RSI(9), ...), each costing
    about as much as one genome's backtest. Every indicator key has a home actor (a stable
    hash of the key); a genome goes to the actor that is home to most of its indicators, under
    an equal-share cap. So an indicator is computed by one actor instead of by all of them,
    and stays warm in that actor's cache for the next generations, which reuse most of them.

Scheduling (:meth:`RayEvaluatorPool.evaluate`)
    Each actor's genomes are cut into batches of shrinking size (a third of what is left,
    down to a few genomes), and two batches are queued on each actor at a time, so it never
    waits for the driver. An idle actor then takes batches from the end of the longest queue
    (losing cache affinity for those only), so a slow actor never holds up the generation.

Faults
    Actors restart (``max_restarts``) and Ray re-runs the interrupted task on the restarted
    actor (``max_task_retries``; safe, the work is idempotent). When an actor is gone for good
    (an ``ActorDiedError`` after its retries, e.g. its node removed), the pool drops it,
    re-queues its batches for the live actors, and starts a replacement when the cluster has a
    free CPU. An actor that stalls (its node lost but not yet declared dead, or a restart
    waiting for resources) is overtaken: once no other work is left, its batch is also run on
    an idle actor, the first result wins and the late one is ignored, so nothing is counted
    twice. Actors are spread over the cluster's nodes (``SPREAD``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import time
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ObjectLostError, RayActorError

from alphaloop.errors import AlphaLoopError
from evolution.evaluate import CostConfig, Evaluation, GenomeEvaluator
from evolution.fitness import FitnessConfig
from genome.cache import CacheKey
from genome.compile import indicator_keys
from genome.genes import Genome
from simulators.bars import Panel

# Errors after which a batch is run again elsewhere: the actor (or the node holding its result)
# is gone; the batch itself did nothing wrong. Any other error is a real failure and is raised.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (RayActorError, ObjectLostError)
# Batch sizes (see _split): each takes a third of an actor's remaining genomes, down to a few
# genomes (~10 ms of work): ~10 tasks per actor and generation, small ones last.
BATCH_SHARE = 3
MIN_BATCH = 4
# Batches queued on an actor at once: the next one waits there while one runs, so the task
# round trip (~1-2 ms) never leaves the actor idle.
PIPELINE = 2


def ensure_ray(workers: int, *, address: str | None = None) -> dict[str, Any]:
    """Join the cluster the user named, or start a private local Ray; return a description.

    The cluster is named by ``address`` or ``RAY_ADDRESS`` (``ray job submit`` sets it), never
    found by discovery (:func:`alphaloop.ray_session.connect_ray` has the rules); a private
    Ray gets ``workers`` CPUs. The description has ``started`` (this call started Ray) and
    ``address`` (``"local"``, ``"existing"`` or the named address).
    """
    from alphaloop.ray_session import connect_ray

    env_vars = {k: v for k, v in os.environ.items() if k == "ALPHALOOP_HOME"}
    # Under `ray job submit` the job's runtime env already reaches every actor, and Ray refuses
    # to merge a driver env var the job also sets: pass only what the job does not.
    job = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
    job_vars = (job.get("runtime_env") or {}).get("env_vars") or {}
    env_vars = {k: v for k, v in env_vars.items() if k not in job_vars}
    session = connect_ray(
        address=address,
        num_cpus=max(1, workers),
        runtime_env={"env_vars": env_vars} if env_vars else None,
    )
    return {"started": session.started, "address": session.address}


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one actor returns for one batch.

    Attributes
    ----------
    evaluations:
        Results keyed by genome id.
    node_id, pid:
        Where the batch ran.
    seconds, cpu_seconds:
        Wall and CPU (thread) time spent inside
        :meth:`~evolution.evaluate.GenomeEvaluator.evaluate_many`.
    indicators_computed:
        Cache misses (indicators and condition signals computed) during the batch.
    """

    evaluations: dict[str, Evaluation]
    node_id: str
    pid: int
    seconds: float
    cpu_seconds: float
    indicators_computed: int


def _misses(evaluator: GenomeEvaluator) -> int:
    compile_cache = evaluator._compile_cache
    extra = compile_cache.misses if compile_cache is not evaluator.cache else 0
    return evaluator.cache.misses + extra


#: Ray options of the evaluator actors: evaluation is pure, so restarts and retries are safe.
ACTOR_OPTIONS: dict[str, Any] = {
    "num_cpus": 1,
    "max_restarts": 2,
    "max_task_retries": 2,
    "scheduling_strategy": "SPREAD",
}


class EvaluatorWorker:
    """Evaluates genome batches on one panel (the body of an evaluator actor)."""

    def __init__(
        self,
        panel: Panel,
        window: int,
        fitness: FitnessConfig,
        costs: CostConfig,
    ) -> None:
        self.evaluator = GenomeEvaluator(panel, window=window, fitness=fitness, costs=costs)
        self.node_id = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()

    def describe(self) -> tuple[str, int]:
        """Return ``(node_id, pid)`` of this actor (also tells that it has started)."""
        return self.node_id, self.pid

    def evaluate_batch(self, genomes: Sequence[Genome]) -> BatchResult:
        """Evaluate ``genomes``; return the results with where and how long it took."""
        misses = _misses(self.evaluator)
        started, started_cpu = time.perf_counter(), time.thread_time()
        evaluations = self.evaluator.evaluate_many(genomes)
        return BatchResult(
            evaluations=evaluations,
            node_id=self.node_id,
            pid=self.pid,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.thread_time() - started_cpu,
            indicators_computed=_misses(self.evaluator) - misses,
        )


# ------------------------------------------------------------------------------- routing
def _stable_hash(value: object) -> int:
    # Python's hash() of strings changes per process; routing must not.
    return zlib.crc32(repr(value).encode("utf-8"))


# Relative cost of computing one indicator, by key kind (50 assets x 781 bars; a condition's
# own signal ~0.05). Routing weighs shared indicators by what recomputing them would cost.
INDICATOR_COST: dict[str, float] = {
    "prev": 3.0,
    "rv_pct": 2.0,
    "kelly": 0.8,
    "rv": 0.3,
    "atr_pct": 0.3,
}
DEFAULT_INDICATOR_COST = 0.1


def _routing_keys(genome: Genome) -> list[CacheKey]:
    # Keys without parameters (returns, regimes...) are shared by almost every genome: each
    # actor computes them once, so they must not pull genomes towards one actor.
    return sorted(
        (key for key in indicator_keys(genome) if len(key) > 1 and key[0] != "regimes"), key=repr
    )


def route(
    genomes: Sequence[Genome], n_actors: int, homes: dict[CacheKey, int] | None = None
) -> list[list[Genome]]:
    """Split ``genomes`` into ``n_actors`` groups so that genomes sharing indicators meet.

    Every indicator key has a home group: where it was first placed (``homes``, kept across
    generations, so that an actor's warm cache keeps receiving the genomes that read it), else
    a stable hash of the key. A genome joins the group that is home to the largest cost
    (:data:`INDICATOR_COST`) of its indicators, ties broken by a stable hash of its id, and no
    group takes more than ``ceil(len(genomes) / n_actors)`` genomes. Genomes are placed in id
    order, so the result depends only on the genomes, ``n_actors`` and ``homes``.

    Parameters
    ----------
    genomes:
        Distinct genomes.
    n_actors:
        Number of groups (at least 1).
    homes:
        Indicator key -> group index, updated in place with the homes of new keys.

    Returns
    -------
    list of list of Genome
        ``n_actors`` groups, each in id order.
    """
    n_actors = max(1, n_actors)
    homes = {} if homes is None else homes
    groups: list[list[Genome]] = [[] for _ in range(n_actors)]
    if n_actors == 1:
        groups[0] = sorted(genomes, key=lambda genome: genome.id)
        return groups
    cap = math.ceil(len(genomes) / n_actors)
    for genome in sorted(genomes, key=lambda genome: genome.id):
        keys = _routing_keys(genome)
        votes = [0.0] * n_actors
        for key in keys:
            home = homes.get(key)
            if home is None or home >= n_actors:
                home = _stable_hash(key) % n_actors
            votes[home] += INDICATOR_COST.get(str(key[0]), DEFAULT_INDICATOR_COST)
        tie = _stable_hash(genome.id) % n_actors
        order = sorted(range(n_actors), key=lambda a: (-votes[a], (a - tie) % n_actors))
        target = next(a for a in order if len(groups[a]) < cap)
        groups[target].append(genome)
        for key in keys:
            homes.setdefault(key, target)
    return groups


def _split(genomes: list[Genome], share: int = BATCH_SHARE) -> list[list[Genome]]:
    """Cut one actor's genomes into batches of shrinking size (guided self-scheduling).

    Each batch takes ``1 / share`` of what is left (at least :data:`MIN_BATCH`): few tasks,
    and small last batches, so actors finish together (an idle actor steals from the end).
    """
    batches = []
    start = 0
    while start < len(genomes):
        left = len(genomes) - start
        size = max(MIN_BATCH, -(-left // share))
        if left - size < MIN_BATCH:
            size = left
        batches.append(genomes[start : start + size])
        start += size
    return batches


# ------------------------------------------------------------------------------- the pool
class EvaluatorPoolError(AlphaLoopError, RuntimeError):
    """Every evaluator actor is gone and none could be started: the generation cannot finish.

    An :class:`~alphaloop.errors.AlphaLoopError` (the CLI's one ``error:`` line, exit 2): the
    cause is the cluster (its nodes died, or it has no free CPU for a replacement), not the
    lab, and the committed generations are kept (``evolve --resume`` continues).
    """


@dataclass(slots=True)
class PoolReport:
    """How one :meth:`RayEvaluatorPool.evaluate` call went.

    Attributes
    ----------
    genomes, batches:
        Distinct genomes evaluated and batches they were cut into.
    workers:
        Live actors at the start of the call.
    wall_seconds:
        Driver wall time of the call.
    actor_seconds, actor_cpu_seconds:
        Wall and CPU time inside ``evaluate_many`` summed over the accepted batches.
    indicators_computed:
        Cache misses in the accepted batches (indicators and condition signals computed).
    rerun_batches:
        Batches run again after their actor failed.
    overtaken_batches:
        Batches of a stalled actor also run on an idle one (the first answer is kept).
    ignored_results:
        Late duplicate results thrown away (a batch already answered).
    actors_lost, actors_started:
        Actors dropped for good, and replacements started, during the call.
    placement:
        Genome id -> ``(node_id, pid)`` of the accepted result.
    """

    genomes: int = 0
    batches: int = 0
    workers: int = 0
    wall_seconds: float = 0.0
    actor_seconds: float = 0.0
    actor_cpu_seconds: float = 0.0
    indicators_computed: int = 0
    rerun_batches: int = 0
    overtaken_batches: int = 0
    ignored_results: int = 0
    actors_lost: int = 0
    actors_started: int = 0
    placement: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def overhead_share(self) -> float:
        """Return the share of ``workers x wall`` not spent inside ``evaluate_many``."""
        busy = max(1, self.workers) * self.wall_seconds
        return max(0.0, 1.0 - self.actor_seconds / busy) if busy > 0 else 0.0


_SERIALS = itertools.count()


@dataclass(slots=True, eq=False)
class _Worker:
    handle: Any
    serial: int = field(default_factory=lambda: next(_SERIALS))
    ready: bool = True
    starting_ref: Any = None
    # Overtaken by a speculative copy of its batch: no new work until it answers again.
    suspect: bool = False
    # Tasks sent and not answered (this call's batches and earlier calls' leftovers).
    inflight: int = 0
    # After an "unavailable" answer (restarting): no new work before this perf_counter time.
    retry_after: float = 0.0
    queue: deque[int] = field(default_factory=deque)


@dataclass(slots=True)
class _Flight:
    worker: _Worker
    batch: int
    started: float


class RayEvaluatorPool:
    """A pool of ``workers`` evaluator actors over one panel (see the module docstring).

    Parameters
    ----------
    panel:
        Bars up to the as-of date (put in the object store once).
    workers:
        Number of actors (one CPU each).
    window, fitness, costs:
        Evaluation settings, as for :class:`~evolution.evaluate.GenomeEvaluator`.
    straggler_seconds:
        A batch in flight longer than this (and than 5x the median batch) while an actor sits
        idle with nothing else to do is run on that actor too.
    worker:
        The actors' class (:class:`EvaluatorWorker`, or a subclass of it), made a Ray actor
        with :data:`ACTOR_OPTIONS`.

    Attributes
    ----------
    nodes_used, pids_used:
        Node ids and worker pids whose results were used (accumulated; a caller may reset
        them between generations).
    last_report:
        :class:`PoolReport` of the latest :meth:`evaluate` call.
    ray_info:
        How Ray was reached (:func:`ensure_ray`).
    """

    def __init__(
        self,
        panel: Panel,
        *,
        workers: int,
        window: int,
        fitness: FitnessConfig,
        costs: CostConfig,
        straggler_seconds: float = 10.0,
        worker: type[EvaluatorWorker] = EvaluatorWorker,
    ) -> None:
        self.ray_info = ensure_ray(workers)
        self.workers = max(1, workers)
        self.straggler_seconds = straggler_seconds
        # Held for the pool's lifetime: a restarted actor re-reads its constructor arguments.
        self.panel_ref = ray.put(panel)
        self._actor_args = (self.panel_ref, window, fitness, costs)
        self._actor_class: Any = ray.remote(**ACTOR_OPTIONS)(worker)
        self._workers: list[_Worker] = [
            _Worker(self._actor_class.remote(*self._actor_args)) for _ in range(self.workers)
        ]
        # Tasks left running when a call returned (a stalled actor's): their answers are
        # ignored, but an answer shows that the actor works again.
        self._leftover: dict[Any, _Worker] = {}
        # Indicator key -> index of the routable actor whose cache holds it (see route()).
        self._homes: dict[CacheKey, int] = {}
        self._homes_for: list[int] = []
        self.nodes_used: set[str] = set()
        self.pids_used: set[int] = set()
        self.last_report = PoolReport()

    @property
    def actors(self) -> list[Any]:
        """Return the handles of the actors the pool still uses."""
        return [worker.handle for worker in self._workers]

    def actor_info(self) -> list[tuple[str, int]]:
        """Return ``(node_id, pid)`` of every live, started actor (waits for them to start)."""
        workers = [worker for worker in self._workers if worker.ready]
        return list(ray.get([worker.handle.describe.remote() for worker in workers]))

    # -------------------------------------------------------------------------- evaluate
    def evaluate(self, genomes: Iterable[Genome]) -> dict[str, Evaluation]:
        """Score ``genomes`` on the actors; return the results keyed by genome id."""
        todo = list({genome.id: genome for genome in genomes}.values())
        started = time.perf_counter()
        self._collect_leftovers()
        workers = self._routable()
        report = PoolReport(genomes=len(todo), workers=len(workers))
        self.last_report = report
        if not todo:
            return {}
        batches: list[list[Genome]] = []
        if [worker.serial for worker in workers] != self._homes_for:
            # Another set of actors: the old homes point at caches that are gone or moved.
            self._homes = {}
            self._homes_for = [worker.serial for worker in workers]
        for worker, group in zip(workers, self._route(todo, len(workers)), strict=True):
            for batch in _split(group):
                worker.queue.append(len(batches))
                batches.append(batch)
        report.batches = len(batches)
        results: dict[str, Evaluation] = {}
        answered: set[int] = set()
        orphans: deque[int] = deque()
        flights: dict[Any, _Flight] = {}
        durations: list[float] = []
        try:
            while len(answered) < len(batches):
                self._dispatch(batches, answered, orphans, flights, durations)
                waiting = list(flights) + list(self._leftover) + self._starting_refs()
                if not waiting:
                    if not self._workers:
                        raise EvaluatorPoolError(
                            f"Ray ({self.ray_info['address']}): every evaluator actor of the "
                            f"pool died ({report.actors_lost} lost, {report.actors_started} "
                            "started) and the cluster has no free CPU for another, with "
                            f"{len(batches) - len(answered)} of {len(batches)} batches to "
                            "run; check the cluster (ray status), then resume (alphaloop "
                            "evolve --resume, or --workers 0 to evaluate without Ray)"
                        )
                    time.sleep(0.05)  # every actor is cooling down after an error
                    continue
                ready, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
                for ref in ready:
                    if ref in self._leftover:
                        self._leftover_done(ref)
                    elif ref in flights:
                        self._land(
                            ref,
                            flights.pop(ref),
                            answered,
                            orphans,
                            flights,
                            results,
                            durations,
                            report,
                        )
                    else:
                        self._started(ref, report)
        finally:
            for worker in self._workers:
                worker.queue.clear()
            for ref, flight in flights.items():
                # Still running on a stalled actor: leave it, ignore its answer later.
                self._leftover[ref] = flight.worker
        report.wall_seconds = time.perf_counter() - started
        return results

    def _route(self, genomes: Sequence[Genome], n_actors: int) -> list[list[Genome]]:
        # A method so that a benchmark can compare with routing that ignores indicators.
        return route(genomes, n_actors, self._homes)

    def _routable(self) -> list[_Worker]:
        live = [worker for worker in self._workers if worker.ready and not worker.suspect]
        if live:
            return live
        # Every actor has stalled: nothing better to do than queue work behind them and wait.
        for worker in self._workers:
            worker.suspect = False
        return [worker for worker in self._workers if worker.ready] or list(self._workers)

    def _starting_refs(self) -> list[Any]:
        return [w.starting_ref for w in self._workers if not w.ready and w.starting_ref]

    def _dispatch(
        self,
        batches: list[list[Genome]],
        answered: set[int],
        orphans: deque[int],
        flights: dict[Any, _Flight],
        durations: list[float],
    ) -> None:
        """Keep every actor fed: its own batches, orphans, then stolen or stalled ones.

        Up to :data:`PIPELINE` batches are queued on an actor so it never waits for the driver
        between batches; it takes from others only once idle, so stolen work goes where it
        starts at once.
        """
        now = time.perf_counter()
        for worker in self._workers:
            if not worker.ready or worker.suspect or worker.retry_after > now:
                continue
            while worker.inflight < PIPELINE:
                batch = self._next_batch(worker, answered, orphans, flights, durations)
                if batch is None:
                    break
                if any(flight.batch == batch for flight in flights.values()):
                    self.last_report.overtaken_batches += 1
                ref = worker.handle.evaluate_batch.remote(batches[batch])
                worker.inflight += 1
                flights[ref] = _Flight(worker=worker, batch=batch, started=time.perf_counter())

    def _next_batch(
        self,
        worker: _Worker,
        answered: set[int],
        orphans: deque[int],
        flights: dict[Any, _Flight],
        durations: list[float],
    ) -> int | None:
        for queue in (worker.queue, orphans):
            while queue:
                batch = queue.popleft()
                if batch not in answered:
                    return batch
        if worker.inflight:
            return None
        others = [w for w in self._workers if w is not worker and w.queue]
        if others:
            # Steal from the end of the longest queue: its owner reaches it last.
            return max(others, key=lambda w: len(w.queue)).queue.pop()
        # Nothing left to start: run a stalled batch here too (first answer wins).
        now = time.perf_counter()
        limit = max(self.straggler_seconds, 5.0 * statistics.median(durations or [0.0]))
        for flight in sorted(flights.values(), key=lambda f: f.started):
            if flight.batch in answered or now - flight.started <= limit:
                continue
            if sum(1 for f in flights.values() if f.batch == flight.batch) == 1:
                flight.worker.suspect = True
                return flight.batch
        return None

    def _land(
        self,
        ref: Any,
        flight: _Flight,
        answered: set[int],
        orphans: deque[int],
        flights: dict[Any, _Flight],
        results: dict[str, Evaluation],
        durations: list[float],
        report: PoolReport,
    ) -> None:
        worker = flight.worker
        worker.inflight -= 1
        worker.suspect = False
        try:
            outcome: BatchResult = ray.get(ref)
        except RETRYABLE_ERRORS as error:
            worker.retry_after = time.perf_counter() + 1.0
            if flight.batch not in answered and not any(
                f.batch == flight.batch for f in flights.values()
            ):
                orphans.append(flight.batch)
                report.rerun_batches += 1
            if _gone_for_good(error):
                self._drop(worker, orphans, report)
            return
        if flight.batch in answered:
            report.ignored_results += 1
            return
        answered.add(flight.batch)
        durations.append(time.perf_counter() - flight.started)
        results.update(outcome.evaluations)
        report.actor_seconds += outcome.seconds
        report.actor_cpu_seconds += outcome.cpu_seconds
        report.indicators_computed += outcome.indicators_computed
        where = (outcome.node_id, outcome.pid)
        for genome_id in outcome.evaluations:
            report.placement[genome_id] = where
        self.nodes_used.add(outcome.node_id)
        self.pids_used.add(outcome.pid)

    def _drop(self, worker: _Worker, orphans: deque[int], report: PoolReport) -> None:
        """Forget a dead actor, hand its queue to the others, start a replacement if possible."""
        if worker not in self._workers:
            return
        self._workers.remove(worker)
        orphans.extend(worker.queue)
        worker.queue.clear()
        report.actors_lost += 1
        try:
            free = ray.available_resources().get("CPU", 0.0)
        except Exception:  # a replacement is optional: never fail the generation for it
            free = 0.0
        if free >= 1.0:
            handle = self._actor_class.remote(*self._actor_args)
            # Not given work until it has started: it may never be scheduled.
            self._workers.append(
                _Worker(handle, ready=False, starting_ref=handle.describe.remote())
            )
            report.actors_started += 1

    def _started(self, ref: Any, report: PoolReport) -> None:
        worker = next(w for w in self._workers if w.starting_ref == ref)
        worker.starting_ref = None
        try:
            ray.get(ref)
        except RETRYABLE_ERRORS:
            self._workers.remove(worker)
            return
        worker.ready = True

    def _collect_leftovers(self) -> None:
        if not self._leftover:
            return
        ready, _ = ray.wait(list(self._leftover), num_returns=len(self._leftover), timeout=0)
        for ref in ready:
            self._leftover_done(ref)

    def _leftover_done(self, ref: Any) -> None:
        """Free the actor of a task whose batch was already answered (its result is ignored)."""
        worker = self._leftover.pop(ref)
        worker.inflight -= 1
        try:
            ray.get(ref)
        except RETRYABLE_ERRORS as error:
            worker.retry_after = time.perf_counter() + 1.0
            if _gone_for_good(error) and worker in self._workers:
                self._workers.remove(worker)
            return
        except Exception:  # a late duplicate's failure changes nothing already answered
            return
        worker.suspect = False

    def close(self) -> None:
        """Kill the actors, and the local Ray if the pool started it (the pool is done)."""
        for worker in self._workers:
            ray.kill(worker.handle)
        self._workers = []
        self._leftover = {}
        if self.ray_info["started"]:
            ray.shutdown()


def _gone_for_good(error: Exception) -> bool:
    # ActorUnavailableError means "restarting or unreachable for now": it may come back.
    from ray.exceptions import ActorUnavailableError

    return isinstance(error, RayActorError) and not isinstance(error, ActorUnavailableError)


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
