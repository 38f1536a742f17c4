"""Random genomes and the flat numeric-gene view used by mutation and Optuna."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaloop.errors import GenomeError
from genome import (
    Exits,
    Genome,
    MACross,
    RSILevel,
    VolTarget,
    numeric_genes,
    random_genome,
    with_numeric_genes,
)
from genome.bounds import BOUNDS, REGIMES, STYLES
from genome.genes import CONDITION_TYPES, SIZING_TYPES

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=100, deadline=None)
@given(seed=seeds)
def test_random_genome_any_seed_is_valid_and_within_bounds(seed: int) -> None:
    genome = random_genome(np.random.default_rng(seed))
    # Rebuilding from plain data runs every check again, independent of how it was drawn.
    assert Genome.from_dict(genome.to_dict()) == genome
    for path, gene in numeric_genes(genome).items():
        assert gene.low <= gene.value <= gene.high, path
        assert isinstance(gene.value, int) == (gene.kind == "int"), path


def test_random_genome_same_seed_same_genome_other_seed_differs() -> None:
    first = [random_genome(np.random.default_rng(seed)).id for seed in range(30)]
    again = [random_genome(np.random.default_rng(seed)).id for seed in range(30)]
    assert first == again
    assert len(set(first)) == 30


def test_random_genome_population_covers_every_gene_option() -> None:
    rng = np.random.default_rng(11)
    population = [random_genome(rng) for _ in range(400)]
    kinds = {condition.KIND for genome in population for condition in genome.entry}
    assert kinds == set(CONDITION_TYPES)
    assert {genome.sizing.KIND for genome in population} == set(SIZING_TYPES)
    assert {genome.style for genome in population} == set(STYLES)
    assert {len(genome.entry) for genome in population} == {1, 2, 3}
    assert {genome.combine for genome in population} == {"and", "or"}
    assert {regime for genome in population for regime in genome.regimes} == set(REGIMES)
    trailing = {type(genome.exits.trailing).__name__ for genome in population}
    assert trailing == {"NoneType", "PctTrailing", "ATRTrailing"}


def test_random_genome_style_picks_first_condition_family() -> None:
    rng = np.random.default_rng(3)
    for genome in (random_genome(rng) for _ in range(200)):
        first = genome.entry[0]
        if genome.style == "mean_reversion":
            assert first.KIND in {"rsi_level", "bollinger_touch"}
            assert getattr(first, "side", "below") == "below"
        elif genome.style == "breakout":
            assert first.KIND in {"donchian_breakout", "volume_surge"}


def _example() -> Genome:
    return Genome(
        entry=(MACross(fast=10, slow=40), RSILevel(window=14, threshold=70.0, side="below")),
        exits=Exits(stop_loss=0.05, time_stop=20),
        sizing=VolTarget(target=0.15, window=20, max_positions=5),
    )


def test_numeric_genes_example_lists_paths_values_and_bounds() -> None:
    genes = numeric_genes(_example())
    assert list(genes) == [
        "entry[0].fast",
        "entry[0].slow",
        "entry[1].window",
        "entry[1].threshold",
        "exits.stop_loss",
        "exits.time_stop",
        "sizing.target",
        "sizing.window",
        "sizing.max_positions",
    ]
    assert genes["entry[1].threshold"] == (70.0, 5.0, 95.0, "float")
    bound = BOUNDS["ma_cross.slow"]
    assert genes["entry[0].slow"] == (40, bound.low, bound.high, "int")
    # Absent optional genes (take profit, trailing stop) are not numeric genes.
    assert "exits.take_profit" not in genes


def test_with_numeric_genes_same_values_returns_equal_genome() -> None:
    genome = random_genome(np.random.default_rng(8))
    values = {path: gene.value for path, gene in numeric_genes(genome).items()}
    assert with_numeric_genes(genome, values) == genome
    assert with_numeric_genes(genome, {}) == genome


def test_with_numeric_genes_out_of_range_values_are_clipped_and_rounded() -> None:
    changed = with_numeric_genes(
        _example(),
        {
            "entry[1].window": 1000.0,
            "entry[1].threshold": -3.0,
            "exits.stop_loss": 0.0512345678,
            "sizing.window": 17.6,
        },
    )
    genes = numeric_genes(changed)
    assert genes["entry[1].window"].value == BOUNDS["rsi_level.window"].high
    assert genes["entry[1].threshold"].value == BOUNDS["rsi_level.threshold"].low
    assert genes["exits.stop_loss"].value == 0.0512
    assert genes["sizing.window"].value == 18
    assert isinstance(genes["sizing.window"].value, int)


@pytest.mark.parametrize(
    ("fast", "slow", "expected"),
    [(50, 20, (20, 50)), (30, 30, (30, 31)), (100, 100, (100, 101)), (2, 2, (2, 5))],
    ids=["swap", "equal", "equal-at-fast-bound", "slow-clipped-first"],
)
def test_with_numeric_genes_crossed_windows_are_repaired(
    fast: int, slow: int, expected: tuple[int, int]
) -> None:
    changed = with_numeric_genes(_example(), {"entry[0].fast": fast, "entry[0].slow": slow})
    cross = changed.entry[0]
    assert isinstance(cross, MACross)
    assert (cross.fast, cross.slow) == expected


def test_with_numeric_genes_unknown_path_or_nan_raises() -> None:
    with pytest.raises(GenomeError, match=r"exits\.take_profit: not a numeric gene"):
        with_numeric_genes(_example(), {"exits.take_profit": 0.1})
    with pytest.raises(GenomeError, match=r"entry\[0\]\.fast: expected a finite number"):
        with_numeric_genes(_example(), {"entry[0].fast": math.nan})


@settings(max_examples=60, deadline=None)
@given(seed=seeds, data=st.data())
def test_with_numeric_genes_any_numbers_give_valid_genome(seed: int, data: st.DataObject) -> None:
    genome = random_genome(np.random.default_rng(seed))
    genes = numeric_genes(genome)
    values = {path: data.draw(st.floats(-1e4, 1e4, allow_nan=False), label=path) for path in genes}
    changed = with_numeric_genes(genome, values)
    assert Genome.from_json(changed.to_json()) == changed
    # Structure is untouched: only numbers move.
    assert [c.KIND for c in changed.entry] == [c.KIND for c in genome.entry]
    assert list(numeric_genes(changed)) == list(genes)
    assert (
        dataclasses.replace(changed, entry=genome.entry, exits=genome.exits, sizing=genome.sizing)
        == genome
    )
