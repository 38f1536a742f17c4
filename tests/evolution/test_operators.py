"""Variation operators: validity, bounds, hybrids, no clones, determinism, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from evolution import operators
from evolution.engine import EvolutionConfig, Member, generation_rng, initial_population, step
from evolution.evaluate import Evaluation, WindowResult
from evolution.fitness import Fitness
from genome.genes import Genome
from genome.random import numeric_genes, random_genome


@pytest.fixture
def population() -> list[Genome]:
    rng = np.random.default_rng(42)
    return [random_genome(rng) for _ in range(40)]


def test_parameter_mutation_keeps_structure_and_bounds(population) -> None:
    rng = np.random.default_rng(1)
    for genome in population:
        child = operators.mutate_parameters(genome, rng)
        before, after = numeric_genes(genome), numeric_genes(child)
        assert set(before) == set(after)  # same structure
        assert child.id != genome.id
        for gene in after.values():
            assert gene.low <= gene.value <= gene.high
        Genome.from_json(child.to_json())  # still valid


def test_structural_mutation_changes_structure_and_stays_valid(population) -> None:
    rng = np.random.default_rng(2)
    kinds = set()
    for genome in population:
        child, kind = operators.mutate_structure(genome, rng)
        kinds.add(kind)
        if kind != "none":
            assert child.id != genome.id
        Genome.from_json(child.to_json())
    assert {"swap_primitive", "change_exit", "change_sizing"} <= kinds


def test_block_crossover_takes_entry_of_one_parent_and_exits_of_the_other(population) -> None:
    first, second = population[0], population[1]
    children = operators.block_crossover(first, second)
    assert children
    for child in children:
        entry_parent = first if child.entry == first.entry else second
        exit_parent = second if entry_parent is first else first
        assert child.exits == exit_parent.exits and child.sizing == exit_parent.sizing
        assert child.style == entry_parent.style


def test_tournament_prefers_higher_scores_and_is_seeded() -> None:
    scores = [float(i) for i in range(20)]
    picks = operators.tournament(scores, 500, 3, np.random.default_rng(3))
    assert np.mean(picks) > 12  # random picks would average 9.5
    assert picks == operators.tournament(scores, 500, 3, np.random.default_rng(3))


def test_genotype_distance_is_zero_for_self_symmetric_and_bounded(population) -> None:
    a, b = population[0], population[1]
    assert operators.genotype_distance(a, a) == 0.0
    assert operators.genotype_distance(a, b) == operators.genotype_distance(b, a)
    assert 0.0 < operators.genotype_distance(a, b) <= 1.0
    near = operators.mutate_parameters(a, np.random.default_rng(0), rate=0.0, scale=0.01)
    assert operators.genotype_distance(a, near) < operators.genotype_distance(a, b)


def _fake_evaluation(genome: Genome, score: float) -> Evaluation:
    stats = {"sharpe": 1.0, "win_rate": 0.5, "max_drawdown": 0.1, "n_trades": 20.0}
    window = WindowResult(stats=stats, daily_returns=np.zeros(5))
    return Evaluation(
        genome_id=genome.id,
        windows={"live": window, "year_ago": window},
        fitness=Fitness(score=score, live_score=score, year_ago_score=score, overfit=False),
    )


def test_step_keeps_size_has_no_clones_and_records_lineage() -> None:
    config = EvolutionConfig(population=20, immigrants=3)
    population = initial_population(config, generation_rng(7, 0))
    evaluations = {m.id: _fake_evaluation(m.genome, 50.0 + i) for i, m in enumerate(population)}
    outcome = step(population, evaluations, 0, config, generation_rng(7, 1))
    ids = [m.id for m in outcome.next_population]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert outcome.births["immigrant"] == 3
    known = {m.id for m in population}
    for member in outcome.next_population:
        if member.operator in ("crossover", "parameter_mutation", "structural_mutation"):
            assert member.born == 1 and set(member.parents) <= known
    # Same inputs, same outcome; another generation number gives another outcome.
    again = step(population, evaluations, 0, config, generation_rng(7, 1))
    assert [m.id for m in again.next_population] == ids
    other = step(population, evaluations, 0, config, generation_rng(7, 2))
    assert [m.id for m in other.next_population] != ids


def test_step_culls_by_the_source_rules() -> None:
    config = EvolutionConfig(population=6, immigrants=1)
    population = initial_population(config, generation_rng(3, 0))
    evaluations = {m.id: _fake_evaluation(m.genome, 80.0) for m in population}
    loser = population[0]
    bad = {"sharpe": 0.2, "win_rate": 0.40, "max_drawdown": 0.1, "n_trades": 20.0}
    window = WindowResult(stats=bad, daily_returns=np.zeros(5))
    evaluations[loser.id] = Evaluation(
        genome_id=loser.id,
        windows={"live": window, "year_ago": window},
        fitness=evaluations[loser.id].fitness,
    )
    streaky = population[1]
    evaluations[streaky.id] = _fake_evaluation(streaky.genome, 55.0)
    first = step(population, evaluations, 0, config, generation_rng(3, 1))
    assert loser.id in first.culled and streaky.id not in first.culled  # one low score: warned
    carried = [m for m in first.ranked if m.id == streaky.id]
    second = step(
        carried + [m for m in first.ranked if m.id != streaky.id],
        evaluations,
        1,
        config,
        generation_rng(3, 2),
    )
    assert streaky.id in second.culled  # second consecutive score < 60


def test_members_and_evaluations_pickle_for_ray(population) -> None:
    member = Member(genome=population[0], parents=("a", "b"), operator="crossover", born=3)
    evaluation = _fake_evaluation(population[0], 42.0)
    assert pickle.loads(pickle.dumps(member)) == member
    restored = pickle.loads(pickle.dumps(evaluation))
    assert restored.fitness == evaluation.fitness and restored.genome_id == evaluation.genome_id
