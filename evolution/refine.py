"""Optuna refinement of the numeric genes of the best genomes.

A seeded TPE study searches the numeric genes of one genome (structure fixed) to maximise its
score on the **year-ago** window only; the best trial becomes a new genome (lineage operator
``optuna``) that is kept only if it is **not worse on the live window**, which the study never
saw. Every trial counts toward the session's number of trials (for the deflated Sharpe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
from pydantic import Field

from alphaloop.config import FrozenConfig
from alphaloop.errors import GenomeError
from evolution.evaluate import Evaluation, GenomeEvaluator
from genome.bounds import BOUNDS
from genome.genes import Genome
from genome.random import numeric_genes, with_numeric_genes


class RefineConfig(FrozenConfig):
    top: int = Field(2, ge=0, le=100, description="genomes refined per generation")
    trials: int = Field(8, ge=1, le=10_000)
    every: int = Field(1, ge=1, le=1000, description="refine every N generations")


@dataclass(frozen=True, slots=True)
class Refinement:
    parent_id: str
    genome: Genome
    evaluation: Evaluation
    accepted: bool
    trials: int
    trial_evaluations: tuple[Evaluation, ...]


def refine(
    genome: Genome,
    baseline: Evaluation,
    evaluator: GenomeEvaluator,
    *,
    trials: int,
    seed: int,
) -> Refinement:
    """Refine one genome; see the module docstring."""
    genes = numeric_genes(genome)
    evaluations: list[Evaluation] = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    for _ in range(trials):
        trial = study.ask()
        values: dict[str, float] = {}
        for path, gene in sorted(genes.items()):
            log = _is_log(genome, path) and gene.low > 0
            if gene.kind == "int":
                values[path] = trial.suggest_int(path, int(gene.low), int(gene.high), log=log)
            else:
                values[path] = trial.suggest_float(path, gene.low, gene.high, log=log)
        try:
            candidate = with_numeric_genes(genome, values)
        except GenomeError:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        evaluation = evaluator.evaluate(candidate)
        evaluations.append(evaluation)
        study.tell(trial, evaluation.fitness.year_ago_score)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return Refinement(genome.id, genome, baseline, False, trials, tuple(evaluations))
    best_values = dict(study.best_trial.params)
    refined = with_numeric_genes(genome, best_values)
    evaluation = evaluator.evaluate(refined)
    accepted = (
        refined.id != genome.id
        and evaluation.fitness.year_ago_score > baseline.fitness.year_ago_score
        and evaluation.fitness.live_score >= baseline.fitness.live_score
    )
    return Refinement(genome.id, refined, evaluation, accepted, trials, tuple(evaluations))


def _is_log(genome: Genome, path: str) -> bool:
    from evolution.operators import _bounds_key

    key = _bounds_key(genome, path)
    return bool(key is not None and BOUNDS[key].log)


def refine_seed(seed: int, generation: int, index: int) -> int:
    """Return the TPE seed of one refinement (a pure function of its position)."""
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(generation, 1000 + index))
    return int(sequence.generate_state(1)[0])
