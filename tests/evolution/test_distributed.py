"""The Ray evaluator pool: indicator routing, exact results, and faults in mid-generation."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from evolution.distributed import LocalEvaluatorPool, RayEvaluatorPool, route
from evolution.evaluate import CostConfig, Evaluation
from evolution.fitness import FitnessConfig
from genome.cache import IndicatorCache
from genome.compile import compile_genome, indicator_keys
from genome.genes import Genome
from genome.random import random_genome
from simulators.bars import Panel
from simulators.synthetic import SyntheticSpec, generate_daily

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pausing_worker import pausing_worker

WINDOW = 120


@pytest.fixture(scope="module")
def panel() -> Panel:
    from evolution.evaluate import truncate_to

    market = generate_daily(SyntheticSpec(seed=5, assets=4, start="2021-01-01", end="2023-12-29"))
    return truncate_to(market, "2023-12-29")


@pytest.fixture(scope="module")
def genomes() -> list[Genome]:
    rng = np.random.default_rng(31)
    return [random_genome(rng) for _ in range(24)]


@pytest.fixture(scope="module")
def expected(panel: Panel, genomes: list[Genome]) -> dict[str, Evaluation]:
    return LocalEvaluatorPool(panel, **_settings()).evaluate(genomes)


def _settings() -> dict[str, Any]:
    return {
        "window": WINDOW,
        "fitness": FitnessConfig(window=WINDOW),
        "costs": CostConfig(),
    }


def _assert_same(got: Mapping[str, Evaluation], want: Mapping[str, Evaluation]) -> None:
    assert set(got) == set(want)
    for genome_id, evaluation in want.items():
        other = got[genome_id]
        assert other.fitness == evaluation.fitness, genome_id
        for name, window in evaluation.windows.items():
            assert dict(other.windows[name].stats) == dict(window.stats), (genome_id, name)
            np.testing.assert_array_equal(other.windows[name].daily_returns, window.daily_returns)


@pytest.fixture
def make_pool(panel: Panel, ray_cluster: None) -> Iterator[Callable[..., RayEvaluatorPool]]:
    pools: list[RayEvaluatorPool] = []

    def make(**options: Any) -> RayEvaluatorPool:
        pool = RayEvaluatorPool(panel, **{**_settings(), "workers": 2, **options})
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def _evaluate_in_thread(
    pool: RayEvaluatorPool, genomes: list[Genome]
) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["results"] = pool.evaluate(genomes)
        except BaseException as error:  # handed to the test thread
            out["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _wait_for_first_batch(pool: RayEvaluatorPool, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30.0
    while not pool.last_report.placement and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pool.last_report.placement, "no batch came back"
    assert thread.is_alive(), "the generation ended before the fault could be injected"


def _finish(thread: threading.Thread, out: dict[str, Any]) -> dict[str, Evaluation]:
    thread.join(timeout=60.0)
    assert not thread.is_alive(), "evaluate did not finish"
    if "error" in out:
        raise out["error"]
    results: dict[str, Evaluation] = out["results"]
    return results


# ------------------------------------------------------------------------------- routing
def test_indicator_keys_of_random_genomes_equal_what_compilation_caches(panel: Panel) -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        genome = random_genome(rng)
        cache = IndicatorCache(panel)
        compile_genome(genome, panel, cache)
        cached = {key for key in cache.keys() if key[0] != "signal"}
        assert indicator_keys(genome) == cached, genome


def test_route_any_input_order_same_balanced_partition(genomes: list[Genome]) -> None:
    forward = route(genomes, 3)
    backward = route(list(reversed(genomes)), 3)
    assert [[g.id for g in group] for group in forward] == [
        [g.id for g in group] for group in backward
    ]
    assert sorted(g.id for group in forward for g in group) == sorted(g.id for g in genomes)
    assert max(len(group) for group in forward) == -(-len(genomes) // 3)


def test_route_population_fewer_indicators_computed_than_id_order_split() -> None:
    rng = np.random.default_rng(2024)
    population = [random_genome(rng) for _ in range(256)]

    def computed(groups: list[list[Genome]]) -> int:
        return sum(len(set().union(*(indicator_keys(g) for g in group))) for group in groups)

    ordered = sorted(population, key=lambda genome: genome.id)
    halves = [ordered[:128], ordered[128:]]
    routed = route(population, 2)
    assert [len(group) for group in routed] == [128, 128]
    assert computed(routed) < computed(halves)


def test_route_known_homes_send_each_genome_to_the_actor_that_cached_its_indicators(
    genomes: list[Genome],
) -> None:
    for genome in genomes[:6]:
        for group in (0, 1):
            homes = {key: group for key in indicator_keys(genome)}
            routed = route([genome], 2, homes)
            assert [len(g) for g in routed] == [1 - group, group]
    homes = {}
    route(genomes, 2, homes)
    priced = {key for g in genomes for key in indicator_keys(g) if len(key) > 1}
    assert {key for key in priced if key[0] != "regimes"} <= set(homes)


# ------------------------------------------------------------------------------- results
def test_pool_two_workers_results_equal_local_pool_exactly(
    make_pool: Callable[..., RayEvaluatorPool],
    genomes: list[Genome],
    expected: dict[str, Evaluation],
) -> None:
    pool = make_pool()
    results = pool.evaluate(genomes + genomes[:5])  # duplicates are evaluated once
    _assert_same(results, expected)
    report = pool.last_report
    assert report.genomes == len(genomes)
    assert set(report.placement) == set(expected)
    assert len(pool.pids_used) == 2 and pool.nodes_used
    assert report.actor_seconds > 0 and report.actor_cpu_seconds > 0
    # A second generation of the same genomes is answered from warm caches on the same actors.
    pool.evaluate(genomes)
    assert pool.last_report.indicators_computed < report.indicators_computed


# ------------------------------------------------------------------------------- faults
def test_pool_worker_process_killed_mid_generation_same_results(
    make_pool: Callable[..., RayEvaluatorPool],
    genomes: list[Genome],
    expected: dict[str, Evaluation],
) -> None:
    pool = make_pool(worker=pausing_worker(0.4))
    before = {pid for _node, pid in pool.actor_info()}
    victim = sorted(before)[0]
    thread, out = _evaluate_in_thread(pool, genomes)
    _wait_for_first_batch(pool, thread)
    os.kill(victim, signal.SIGKILL)
    results = _finish(thread, out)
    _assert_same(results, expected)
    # Ray restarted the actor in a new process; its interrupted batch ran again somewhere.
    restarted = {pid for _node, pid in pool.actor_info()}
    assert victim not in restarted and len(restarted) == 2


def test_pool_actor_killed_for_good_mid_generation_completes_on_the_others(
    make_pool: Callable[..., RayEvaluatorPool],
    genomes: list[Genome],
    expected: dict[str, Evaluation],
) -> None:
    pool = make_pool(worker=pausing_worker(0.4))
    victim = pool.actors[0]
    thread, out = _evaluate_in_thread(pool, genomes)
    _wait_for_first_batch(pool, thread)
    ray.kill(victim, no_restart=True)
    results = _finish(thread, out)
    _assert_same(results, expected)
    report = pool.last_report
    assert report.actors_lost == 1 and report.rerun_batches >= 1
    assert victim not in pool.actors
    # The next generation runs on what is left (and a replacement, if one could start).
    _assert_same(pool.evaluate(genomes), expected)


def test_pool_stalled_actor_is_overtaken_and_results_are_unchanged(
    make_pool: Callable[..., RayEvaluatorPool],
    genomes: list[Genome],
    expected: dict[str, Evaluation],
) -> None:
    pool = make_pool(worker=pausing_worker(0.2), straggler_seconds=1.0)
    node_pids = pool.actor_info()
    victim = node_pids[0][1]
    thread, out = _evaluate_in_thread(pool, genomes)
    _wait_for_first_batch(pool, thread)
    # A frozen process looks like a node cut off from the network: alive, never answering.
    os.kill(victim, signal.SIGSTOP)
    try:
        results = _finish(thread, out)
        _assert_same(results, expected)
        assert pool.last_report.overtaken_batches >= 1
        # While it stays frozen, the next generation is routed around it.
        _assert_same(pool.evaluate(genomes), expected)
        assert pool.last_report.workers == 1
    finally:
        os.kill(victim, signal.SIGCONT)


def _kill_every_actor_on_a_full_cluster(
    pool: RayEvaluatorPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the pool's actors for good; the cluster has no free CPU to start another."""
    for handle in pool.actors:
        ray.kill(handle, no_restart=True)
    monkeypatch.setattr(ray, "available_resources", lambda: {"CPU": 0.0})


def test_pool_with_every_actor_dead_and_no_room_raises_an_alphaloop_error_naming_ray(
    make_pool: Callable[..., RayEvaluatorPool],
    genomes: list[Genome],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alphaloop.errors import AlphaLoopError
    from evolution.distributed import EvaluatorPoolError

    pool = make_pool(workers=1)
    _kill_every_actor_on_a_full_cluster(pool, monkeypatch)
    with pytest.raises(EvaluatorPoolError) as caught:
        pool.evaluate(genomes)
    # An AlphaLoopError: the CLI prints it as one error line and exits with status 2.
    assert isinstance(caught.value, AlphaLoopError)
    message = str(caught.value)
    assert message.startswith("Ray (existing): every evaluator actor of the pool died")
    assert "1 lost" in message and "batches to run" in message and "--resume" in message


def test_evolve_whose_evaluator_actors_all_die_is_one_error_line_exit_2(
    ray_cluster: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    from alphaloop import cli

    evaluate = RayEvaluatorPool.evaluate

    def dying(self: RayEvaluatorPool, todo: Any) -> dict[str, Evaluation]:
        _kill_every_actor_on_a_full_cluster(self, monkeypatch)
        return evaluate(self, todo)

    monkeypatch.setattr(RayEvaluatorPool, "evaluate", dying)
    monkeypatch.setattr(
        sys, "argv",
        ["alphaloop", "evolve", "--data", "synthetic:seed=5,assets=3,start=2021-01-01,"
         "end=2023-12-29", "--generations", "1", "--population", "4", "--window", "40",
         "--workers", "1", "--no-mlflow"],
    )  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: Ray (existing): every evaluator actor of the pool died")
    assert not any("Traceback" in line for line in err)
