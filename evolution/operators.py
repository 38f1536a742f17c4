"""Variation operators on genomes: pure functions of a genome and a ``numpy`` Generator.

DEAP's own operators draw from the global ``random`` module; these take the generator they
use, so a generation's offspring depend only on (seed, generation) whatever the number of
workers. :mod:`evolution.toolbox` registers them in a DEAP toolbox.

Every operator returns valid genomes: a structural change that would break a genome's
invariants (say, dropping the only exit) is retried with another change, and after a few
failed tries the parent is returned unchanged (the no-clone rule then replaces it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

from alphaloop.errors import GenomeError
from genome.bounds import BOUNDS
from genome.genes import Genome
from genome.random import (
    numeric_genes,
    random_condition,
    random_exits,
    random_genome,
    random_regimes,
    random_sizing,
    with_numeric_genes,
)

MAX_CONDITIONS = 3
STRUCTURAL_KINDS = (
    "swap_primitive",
    "add_condition",
    "drop_condition",
    "change_exit",
    "change_sizing",
    "change_regimes",
    "flip_combiner",
)
_TRIES = 8


def mutate_parameters(
    genome: Genome, rng: np.random.Generator, *, rate: float = 0.35, scale: float = 0.15
) -> Genome:
    """Perturb numeric genes with a Gaussian step of ``scale`` x their range (log range if log).

    At least one gene moves. Values are clipped to their bounds by the genome itself.
    """
    genes = numeric_genes(genome)
    if not genes:
        return genome
    paths = sorted(genes)
    chosen = [path for path in paths if rng.random() < rate]
    if not chosen:
        chosen = [paths[int(rng.integers(len(paths)))]]
    updates: dict[str, float] = {}
    for path in chosen:
        gene = genes[path]
        key = _bounds_key(genome, path)
        log = BOUNDS[key].log if key is not None else False
        if log and gene.low > 0:
            low, high = math.log(gene.low), math.log(gene.high)
            value = math.exp(
                math.log(max(gene.value, gene.low)) + rng.normal(0, scale) * (high - low)
            )
        else:
            value = gene.value + rng.normal(0, scale) * (gene.high - gene.low)
        if gene.kind == "int" and round(value) == gene.value:
            value = gene.value + (1 if rng.random() < 0.5 else -1)
        updates[path] = value
    return with_numeric_genes(genome, updates)


def _bounds_key(genome: Genome, path: str) -> str | None:
    owner_path, name = path.rsplit(".", 1)
    component: object = genome
    for part in owner_path.split("."):
        if "[" in part:
            field_name, index = part[:-1].split("[")
            component = getattr(component, field_name)[int(index)]
        else:
            component = getattr(component, part)
    kind = getattr(component, "KIND", None)
    return f"{kind}.{name}" if kind is not None else None


def mutate_structure(genome: Genome, rng: np.random.Generator) -> tuple[Genome, str]:
    """Apply one structural change; return the child and the kind of change made."""
    for _ in range(_TRIES):
        kind = STRUCTURAL_KINDS[int(rng.integers(len(STRUCTURAL_KINDS)))]
        try:
            child = _structural(genome, kind, rng)
        except GenomeError:
            continue
        if child is not None and child.id != genome.id:
            return child, kind
    return genome, "none"


def _structural(genome: Genome, kind: str, rng: np.random.Generator) -> Genome | None:
    entry = list(genome.entry)
    if kind == "swap_primitive":
        entry[int(rng.integers(len(entry)))] = random_condition(rng)
        return dataclasses.replace(genome, entry=tuple(entry))
    if kind == "add_condition":
        if len(entry) >= MAX_CONDITIONS:
            return None
        entry.insert(int(rng.integers(len(entry) + 1)), random_condition(rng))
        return dataclasses.replace(genome, entry=tuple(entry))
    if kind == "drop_condition":
        if len(entry) <= 1:
            return None
        del entry[int(rng.integers(len(entry)))]
        return dataclasses.replace(genome, entry=tuple(entry))
    if kind == "change_exit":
        return dataclasses.replace(genome, exits=random_exits(rng))
    if kind == "change_sizing":
        return dataclasses.replace(genome, sizing=random_sizing(rng))
    if kind == "change_regimes":
        return dataclasses.replace(genome, regimes=random_regimes(rng))
    if kind == "flip_combiner":
        if len(entry) == 1:
            return None
        return dataclasses.replace(genome, combine="or" if genome.combine == "and" else "and")
    raise ValueError(f"unknown structural mutation {kind!r}")


def block_crossover(first: Genome, second: Genome) -> tuple[Genome, ...]:
    """Return the hybrids of two parents: the entry of one with the exits and sizing of the other.

    The hybrid keeps the style and regimes of its entry parent (a trend entry with a
    mean-reversion exit is still a trend entry). A hybrid that would be invalid is left out.
    """
    children: list[Genome] = []
    for entry_parent, exit_parent in ((first, second), (second, first)):
        try:
            child = dataclasses.replace(
                entry_parent, exits=exit_parent.exits, sizing=exit_parent.sizing
            )
        except GenomeError:
            continue
        children.append(child)
    return tuple(children)


def immigrants(count: int, rng: np.random.Generator) -> list[Genome]:
    """Return ``count`` wild random genomes."""
    return [random_genome(rng) for _ in range(count)]


def tournament(scores: Sequence[float], k: int, size: int, rng: np.random.Generator) -> list[int]:
    """Return ``k`` indices chosen by tournaments of ``size`` (ties to the lower index)."""
    n = len(scores)
    if n == 0:
        return []
    values = np.asarray(scores, dtype=float)
    picks = []
    for _ in range(k):
        aspirants = rng.integers(n, size=min(size, n))
        best = aspirants[np.lexsort((aspirants, -values[aspirants]))[0]]
        picks.append(int(best))
    return picks


# --------------------------------------------------------------------------- diversity
def genotype_distance(first: Genome, second: Genome) -> float:
    """Return a distance in [0, 1] between two genomes (0 for the same genome).

    Half structure, half numbers: the Jaccard distance of their sets of (component kind,
    sizing kind, exit kinds, regimes) plus the mean normalised difference of the numeric genes
    they share by path, with genes present in only one counting as 1.
    """
    if first.id == second.id:
        return 0.0
    set_a, set_b = _structure(first), _structure(second)
    jaccard = 1.0 - len(set_a & set_b) / max(1, len(set_a | set_b))
    genes_a, genes_b = numeric_genes(first), numeric_genes(second)
    paths = set(genes_a) | set(genes_b)
    total = 0.0
    # Sorted: a set's order depends on the process's string-hash seed, and a float sum's last
    # bits on the order, so the same genomes would give a different diversity on another worker.
    for path in sorted(paths):
        a, b = genes_a.get(path), genes_b.get(path)
        if a is None or b is None or _bounds_key(first, path) != _bounds_key(second, path):
            total += 1.0
        else:
            total += abs(a.value - b.value) / max(1e-12, a.high - a.low)
    numeric = total / max(1, len(paths))
    return 0.5 * jaccard + 0.5 * numeric


def _structure(genome: Genome) -> set[str]:
    items = {f"entry:{condition.KIND}" for condition in genome.entry}
    items.add(f"combine:{genome.combine}")
    items.add(f"sizing:{genome.sizing.KIND}")
    exits = genome.exits
    for name in ("opposite_signal", "stop_loss", "take_profit", "trailing", "time_stop"):
        value = getattr(exits, name)
        if value:
            items.add(f"exit:{getattr(value, 'KIND', name)}")
    items.update(f"regime:{regime}" for regime in genome.regimes)
    return items


def mean_pairwise(
    items: Sequence[Genome], distance: Callable[[Genome, Genome], float], max_pairs: int = 2000
) -> float:
    """Return the mean pairwise distance (over the first ``max_pairs`` pairs, deterministic)."""
    total, count = 0.0, 0
    for a, b in combinations(items, 2):
        total += distance(a, b)
        count += 1
        if count >= max_pairs:
            break
    return total / count if count else 0.0


def mean_return_correlation(returns: np.ndarray) -> float:
    """Return the mean off-diagonal correlation of daily returns ``(T, K)`` (NaN-safe)."""
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        return 0.0
    active = matrix[:, matrix.std(axis=0) > 0]
    if active.shape[1] < 2:
        return 0.0
    corr = np.corrcoef(active, rowvar=False)
    mask = ~np.eye(corr.shape[0], dtype=bool)
    return float(np.nanmean(corr[mask]))
