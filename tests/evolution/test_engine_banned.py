"""The engine culls banned (demoted or retired) genomes and never breeds them again."""

from __future__ import annotations

import numpy as np

from evolution.engine import EvolutionConfig, Member, generation_rng, initial_population, step
from evolution.evaluate import Evaluation, WindowResult
from evolution.fitness import Fitness


def _evaluation(gid: str, score: float) -> Evaluation:
    stats = {"sharpe": 2.0, "win_rate": 0.6, "n_trades": 20.0, "max_drawdown": 0.05}
    window = WindowResult(stats=stats, daily_returns=np.zeros(3))
    return Evaluation(
        genome_id=gid,
        windows={"live": window, "year_ago": window},
        fitness=Fitness(score=score, live_score=score, year_ago_score=score, overfit=False),
    )


def test_step_culls_a_banned_member_and_does_not_breed_it_back() -> None:
    config = EvolutionConfig(population=8, immigrants=1, cull_min_score=0.0)
    population = initial_population(config, generation_rng(1, 0))
    evaluations = {m.id: _evaluation(m.id, 90.0 - i) for i, m in enumerate(population)}
    best = population[0].id
    free = step(population, evaluations, 0, config, generation_rng(1, 1))
    assert best not in free.culled and best in {m.id for m in free.next_population}
    banned = step(
        population, evaluations, 0, config, generation_rng(1, 1), banned=frozenset({best})
    )
    assert best in banned.culled
    assert best not in {m.id for m in banned.next_population}
    assert len(banned.next_population) == config.population
    assert all(isinstance(m, Member) for m in banned.next_population)
