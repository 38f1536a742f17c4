"""One generation of the gene pool, as a pure function of (population, evaluations, rng).

The order of a generation
-------------------------
1. **Evaluate** every member (done by the caller, in parallel; results keyed by genome id).
2. **Cull** (the source rules): a member dies when its win rate < 45% or its Sharpe < 0.5
   (each the mean of the live and year-ago windows), or when its score stayed < 60 for two
   consecutive generations.
3. **Select** survivors: the best ``survivor_share`` of the population among those not culled,
   by score (tournament selection with elitism) or by NSGA-II over (score, drawdown,
   consistency).
4. **Breed** the rest: parents by tournament among survivors (all members when fewer than two
   survive), block crossover (hybrids) with probability ``crossover_rate``, else a parameter or
   a structural mutation; plus ``immigrants`` wild random genomes. No clones: a child whose id
   is already in the next population is mutated again, and replaced by an immigrant after a few
   tries.

Randomness comes only from the generator passed in, spawned by the caller from
``SeedSequence(seed).spawn`` by generation number, so the result never depends on how many
workers evaluated the genomes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from evolution import operators
from evolution.evaluate import Evaluation
from evolution.toolbox import nsga2_order
from genome.genes import Genome


class EvolutionConfig(FrozenConfig):
    """Settings of the gene pool's generations."""

    population: int = Field(64, ge=4, le=100_000)
    survivor_share: float = Field(0.5, gt=0.0, lt=1.0)
    elite: int = Field(2, ge=0, le=1000)
    tournament_size: int = Field(3, ge=2, le=32)
    crossover_rate: float = Field(0.4, ge=0.0, le=1.0)
    structural_rate: float = Field(0.35, ge=0.0, le=1.0)
    immigrants: int = Field(4, ge=0, le=10_000)
    selection: Literal["tournament", "nsga2"] = "tournament"
    cull_min_win_rate: float = Field(0.45, ge=0.0, le=1.0)
    cull_min_sharpe: float = Field(0.5, ge=-10.0, le=10.0)
    cull_min_score: float = Field(60.0, ge=0.0, le=100.0)
    cull_streak: int = Field(2, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> EvolutionConfig:
        if self.immigrants >= self.population:
            raise ValueError(
                f"immigrants ({self.immigrants}) must be fewer than population ({self.population})"
            )
        if self.elite > self.population:
            raise ValueError(f"elite ({self.elite}) exceeds population ({self.population})")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A genome in the population with its lineage and history."""

    genome: Genome
    parents: tuple[str, ...] = ()
    operator: str = "random"
    born: int = 0
    low_score_streak: int = 0

    @property
    def id(self) -> str:
        return self.genome.id


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationOutcome:
    """What a generation decided."""

    ranked: tuple[Member, ...]  # this generation's members, best first, streaks updated
    culled: frozenset[str]
    survivors: tuple[Member, ...]
    next_population: tuple[Member, ...]
    births: Mapping[str, int] = field(default_factory=dict)


def _mean_stat(evaluation: Evaluation, key: str) -> float:
    values = [float(window.stats.get(key, 0.0)) for window in evaluation.windows.values()]
    return float(np.mean(values)) if values else 0.0


def cull_reasons(evaluation: Evaluation, streak: int, config: EvolutionConfig) -> tuple[str, ...]:
    """Return why a member is culled (empty when it lives)."""
    reasons = []
    win_rate = _mean_stat(evaluation, "win_rate")
    sharpe = _mean_stat(evaluation, "sharpe")
    if win_rate < config.cull_min_win_rate:
        reasons.append(f"win rate {win_rate:.1%} < {config.cull_min_win_rate:.0%}")
    if sharpe < config.cull_min_sharpe:
        reasons.append(f"Sharpe {sharpe:.2f} < {config.cull_min_sharpe}")
    if streak >= config.cull_streak:
        reasons.append(f"score < {config.cull_min_score:g} for {streak} consecutive generations")
    return tuple(reasons)


def rank(members: Sequence[Member], evaluations: Mapping[str, Evaluation]) -> list[Member]:
    """Return members best first (score, then id for a stable order)."""
    return sorted(members, key=lambda m: (-evaluations[m.id].score, m.id))


def step(
    population: Sequence[Member],
    evaluations: Mapping[str, Evaluation],
    generation: int,
    config: EvolutionConfig,
    rng: np.random.Generator,
    banned: frozenset[str] = frozenset(),
) -> GenerationOutcome:
    """Cull, select and breed: return the outcome of ``generation`` and the next population.

    ``banned`` genomes (demoted or retired by their paper record or a user) are culled
    whatever they score, and never born again into the next population.
    """
    updated = []
    for member in population:
        score = evaluations[member.id].score
        streak = member.low_score_streak + 1 if score < config.cull_min_score else 0
        updated.append(
            Member(
                genome=member.genome,
                parents=member.parents,
                operator=member.operator,
                born=member.born,
                low_score_streak=streak,
            )
        )
    ranked = rank(updated, evaluations)
    culled = frozenset(
        m.id
        for m in ranked
        if m.id in banned or cull_reasons(evaluations[m.id], m.low_score_streak, config)
    )
    alive = [m for m in ranked if m.id not in culled]
    n_survivors = min(len(alive), max(config.elite, int(config.population * config.survivor_share)))
    if config.selection == "nsga2" and alive:
        objectives = [_objectives(evaluations[m.id]) for m in alive]
        order = nsga2_order(objectives, n_survivors)
        survivors = rank([alive[i] for i in order], evaluations)
    else:
        survivors = alive[:n_survivors]
    next_members: list[Member] = list(survivors)
    seen = {m.id for m in next_members} | set(banned)
    births: Counter[str] = Counter()
    pool = survivors if len(survivors) >= 2 else ranked
    pool_scores = [evaluations[m.id].score for m in pool]
    n_children = config.population - len(next_members) - config.immigrants
    while n_children > 0:
        first = pool[operators.tournament(pool_scores, 1, config.tournament_size, rng)[0]]
        children: list[tuple[Genome, tuple[str, ...], str]] = []
        if rng.random() < config.crossover_rate and len(pool) >= 2:
            second = pool[operators.tournament(pool_scores, 1, config.tournament_size, rng)[0]]
            if second.id != first.id:
                for child in operators.block_crossover(first.genome, second.genome):
                    children.append((child, (first.id, second.id), "crossover"))
        if not children:
            if rng.random() < config.structural_rate:
                child, _kind = operators.mutate_structure(first.genome, rng)
                children.append((child, (first.id,), "structural_mutation"))
            else:
                child = operators.mutate_parameters(first.genome, rng)
                children.append((child, (first.id,), "parameter_mutation"))
        for child, parents, operator in children:
            if n_children <= 0:
                break
            tries = 0
            while child.id in seen and tries < 5:
                child = operators.mutate_parameters(child, rng)
                tries += 1
            if child.id in seen:
                continue
            seen.add(child.id)
            next_members.append(
                Member(genome=child, parents=parents, operator=operator, born=generation + 1)
            )
            births[operator] += 1
            n_children -= 1
    while len(next_members) < config.population:
        wild = operators.immigrants(1, rng)[0]
        if wild.id in seen:
            continue
        seen.add(wild.id)
        next_members.append(Member(genome=wild, operator="immigrant", born=generation + 1))
        births["immigrant"] += 1
    return GenerationOutcome(
        ranked=tuple(ranked),
        culled=culled,
        survivors=tuple(survivors),
        next_population=tuple(next_members),
        births=dict(sorted(births.items())),
    )


def _objectives(evaluation: Evaluation) -> tuple[float, float, float]:
    drawdown = max(abs(w.stats.get("max_drawdown", 0.0)) for w in evaluation.windows.values())
    fitness = evaluation.fitness
    consistency = 100.0 - abs(fitness.live_score - fitness.year_ago_score)
    return (fitness.score, drawdown, consistency)


def initial_population(config: EvolutionConfig, rng: np.random.Generator) -> list[Member]:
    """Return ``config.population`` distinct random genomes (generation 0)."""
    members: list[Member] = []
    seen: set[str] = set()
    while len(members) < config.population:
        genome = operators.immigrants(1, rng)[0]
        if genome.id not in seen:
            seen.add(genome.id)
            members.append(Member(genome=genome, operator="random", born=0))
    return members


def generation_rng(seed: int, generation: int, stream: int = 0) -> np.random.Generator:
    """Return the generator of one generation (and stream), independent of everything else."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy=seed, spawn_key=(generation, stream))
    )
