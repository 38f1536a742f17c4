"""The thin DEAP adapter: creator classes made at import, a toolbox with our operators.

Genomes are our own frozen dataclasses; DEAP sees an ``Individual``: a one-element list holding
the genome, with a single-objective fitness (the 0-100 score) and a three-objective fitness for
NSGA-II (score up, drawdown down, consistency up). The classes are created here, at module
import, so that they exist in every Ray worker that unpickles them (DEAP issues #110, #323).

Randomness: every registered operator takes an explicit ``numpy`` Generator; DEAP's NSGA-II
selection is deterministic given its input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deap import base, creator, tools

from evolution import operators
from genome.genes import Genome

if not hasattr(creator, "AlphaLoopFitness"):
    creator.create("AlphaLoopFitness", base.Fitness, weights=(1.0,))
if not hasattr(creator, "AlphaLoopMultiFitness"):
    creator.create("AlphaLoopMultiFitness", base.Fitness, weights=(1.0, -1.0, 1.0))
if not hasattr(creator, "AlphaLoopIndividual"):
    creator.create(
        "AlphaLoopIndividual",
        list,
        fitness=creator.AlphaLoopFitness,
        multi=creator.AlphaLoopMultiFitness,
    )

Individual: Any = creator.AlphaLoopIndividual


def individual(genome: Genome) -> Any:
    """Wrap a genome as a DEAP individual."""
    return Individual([genome])


def make_toolbox() -> base.Toolbox:
    """Return a toolbox with the lab's operators registered under DEAP's usual names."""
    toolbox = base.Toolbox()
    toolbox.register("immigrants", operators.immigrants)
    toolbox.register("mutate_parameters", operators.mutate_parameters)
    toolbox.register("mutate_structure", operators.mutate_structure)
    toolbox.register("mate", operators.block_crossover)
    toolbox.register("select_tournament", operators.tournament)
    toolbox.register("select_nsga2", tools.selNSGA2)
    toolbox.register("select_best", tools.selBest)
    return toolbox


def nsga2_order(objectives: Sequence[tuple[float, float, float]], k: int) -> list[int]:
    """Return the indices of the ``k`` individuals NSGA-II keeps (score, drawdown, consistency)."""
    population = []
    for index, values in enumerate(objectives):
        ind = Individual([index])
        ind.multi.values = values
        ind.fitness = ind.multi  # selNSGA2 reads .fitness
        population.append(ind)
    chosen = tools.selNSGA2(population, k)
    return [int(ind[0]) for ind in chosen]
