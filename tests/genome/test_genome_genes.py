"""The genome as data: validation naming the gene, canonical JSON, id, description, pickle."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaloop.errors import GenomeError
from genome import (
    ATRTrailing,
    BollingerTouch,
    Exits,
    FixedFraction,
    Genome,
    MACross,
    PctTrailing,
    RSILevel,
    VolTarget,
    VolumeSurge,
    numeric_genes,
    random_genome,
    with_numeric_genes,
)

EXAMPLE_TEXT = (
    "Buy when EMA(12) crosses above EMA(48) and RSI(14) < 70; exit on a 2.5 x ATR(14) trailing "
    "stop or after 20 bars; size to 15% annual volatility, at most 5 positions; trades only in "
    "bull and range regimes"
)


def example_genome() -> Genome:
    return Genome(
        entry=(
            MACross(ma="ema", fast=12, slow=48, direction="above"),
            RSILevel(window=14, threshold=70, side="below"),
        ),
        combine="and",
        exits=Exits(trailing=ATRTrailing(multiple=2.5, window=14), time_stop=20),
        sizing=VolTarget(target=0.15, window=20, max_positions=5),
        regimes=("bull", "range"),
        style="trend",
    )


def example_dict() -> dict[str, Any]:
    return json.loads(example_genome().to_json())


# --------------------------------------------------------------------------- description
def test_describe_known_genome_reads_as_the_issue_example() -> None:
    assert example_genome().describe() == EXAMPLE_TEXT


def test_describe_other_genes_name_every_rule() -> None:
    genome = Genome(
        entry=(BollingerTouch(window=20, width=2, band="lower"), VolumeSurge(window=10)),
        combine="or",
        exits=Exits(
            opposite_signal=True,
            stop_loss=0.05,
            take_profit=0.2,
            trailing=PctTrailing(pct=0.08),
        ),
        sizing=FixedFraction(fraction=0.1, max_positions=8),
        regimes=("high_vol",),
        style="mean_reversion",
    )
    assert genome.describe() == (
        "Buy when close touches the lower Bollinger band (20 bars, 2 sd) or volume exceeds "
        "2 x its 10-bar average; exit on the opposite signal, a 5% stop loss, a 20% take "
        "profit or an 8% trailing stop; invest 10% of equity per position, at most 8 "
        "positions; trades only in the high-volatility regime"
    )


# --------------------------------------------------------------------------- JSON and id
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_json_round_trip_random_genome_is_exact(seed: int) -> None:
    genome = random_genome(np.random.default_rng(seed))
    text = genome.to_json()
    back = Genome.from_json(text)
    assert back == genome
    assert back.to_json() == text
    assert back.id == genome.id
    assert Genome.from_json(genome.to_json(indent=2)) == genome


def test_id_is_short_sha256_of_canonical_json() -> None:
    genome = example_genome()
    assert genome.id == hashlib.sha256(genome.to_json().encode()).hexdigest()[:16]
    assert re.fullmatch(r"[0-9a-f]{16}", genome.id)


def test_id_same_genes_other_input_forms_is_stable() -> None:
    first = example_genome()
    # Same genes given as a float, a NumPy integer and another regime order: same genome.
    second = dataclasses.replace(
        first,
        entry=(
            MACross(ma="ema", fast=np.int64(12), slow=48, direction="above"),
            RSILevel(window=14, threshold=70.0, side="below"),
        ),
        regimes=("range", "bull"),
    )
    assert second == first
    assert second.id == first.id
    assert second.to_json() == first.to_json()


def test_id_any_numeric_gene_change_changes_id() -> None:
    genome = example_genome()
    ids = {genome.id}
    for path, gene in numeric_genes(genome).items():
        step = 1 if gene.kind == "int" else (gene.high - gene.low) / 100
        new_value = gene.value + step if gene.value + step <= gene.high else gene.value - step
        changed = with_numeric_genes(genome, {path: new_value})
        assert numeric_genes(changed)[path].value != gene.value, path
        assert changed.id not in ids, path
        ids.add(changed.id)


@pytest.mark.parametrize(
    "change",
    [
        {"combine": "or"},
        {"style": "breakout"},
        {"regimes": ("bull",)},
        {"exits": Exits(trailing=ATRTrailing(multiple=2.5, window=14))},
        {
            "exits": Exits(
                trailing=ATRTrailing(multiple=2.5, window=14), time_stop=20, opposite_signal=True
            )
        },
        {"sizing": FixedFraction(fraction=0.15, max_positions=5)},
        {
            "entry": (
                MACross(ma="sma", fast=12, slow=48),
                RSILevel(window=14, threshold=70, side="below"),
            )
        },
        {
            "entry": (
                RSILevel(window=14, threshold=70, side="below"),
                MACross(ma="ema", fast=12, slow=48),
            )
        },
    ],
    ids=["combine", "style", "regimes", "drop-time-stop", "opposite", "sizing", "ma", "order"],
)
def test_id_structural_or_categorical_change_changes_id(change: dict[str, Any]) -> None:
    genome = example_genome()
    assert dataclasses.replace(genome, **change).id != genome.id


# --------------------------------------------------------------------------- pickle
def test_pickle_round_trip_keeps_genome_and_id() -> None:
    genomes = [example_genome(), *(random_genome(np.random.default_rng(s)) for s in range(20))]
    for genome in genomes:
        back = pickle.loads(pickle.dumps(genome, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == genome
        assert back.id == genome.id
        assert back.to_json() == genome.to_json()
        assert hash(back) == hash(genome)


def test_genome_is_immutable() -> None:
    genome = example_genome()
    with pytest.raises(dataclasses.FrozenInstanceError):
        genome.combine = "or"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        genome.entry[0].fast = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- validation
def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("entry", 1, "window"),
            500,
            r"entry\[1\]\.window = 500 is out of bounds: allowed "
            r"integer in \[2, 50\]",
        ),
        (("entry", 1, "window"), 14.5, r"entry\[1\]\.window: expected integer in \[2, 50\]"),
        (("entry", 1, "window"), True, r"entry\[1\]\.window: expected integer"),
        (
            ("entry", 1, "threshold"),
            99.0,
            r"entry\[1\]\.threshold = 99\.0 is out of bounds: "
            r"allowed number in \[5, 95\]",
        ),
        (("entry", 1, "threshold"), "70", r"entry\[1\]\.threshold: expected number"),
        (
            ("entry", 0, "fast"),
            60,
            r"entry\[0\]\.fast = 60 must be smaller than "
            r"entry\[0\]\.slow = 48",
        ),
        (("entry", 0, "ma"), "wma", r"entry\[0\]\.ma: expected one of sma, ema; got 'wma'"),
        (("entry", 0, "kind"), "macd", r"entry\[0\]\.kind: expected one of price_vs_ma"),
        (("entry", 0, "colour"), "red", r"entry\[0\]\.colour: unknown key"),
        (
            ("exits", "trailing", "multiple"),
            9.0,
            r"exits\.trailing\.multiple = 9\.0 is out of "
            r"bounds: allowed number in \[0\.5, 8\]",
        ),
        (("exits", "trailing", "kind"), "chandelier", r"exits\.trailing\.kind: expected one of"),
        (("exits", "stop_loss"), 0.9, r"exits\.stop_loss = 0\.9 is out of bounds"),
        (("exits", "stop_loss"), -0.1, r"exits\.stop_loss = -0\.1 is out of bounds"),
        (
            ("exits", "time_stop"),
            0,
            r"exits\.time_stop = 0 is out of bounds: allowed integer "
            r"in \[1, 500\]",
        ),
        (("exits", "opposite_signal"), "yes", r"exits\.opposite_signal: expected true or false"),
        (
            ("sizing", "target"),
            2.0,
            r"sizing\.target = 2\.0 is out of bounds: allowed number "
            r"in \[0\.02, 1\]",
        ),
        (("sizing", "max_positions"), 0, r"sizing\.max_positions = 0 is out of bounds"),
        (("sizing", "kind"), "martingale", r"sizing\.kind: expected one of fixed_fraction"),
        (("combine",), "xor", r"combine: expected one of and, or; got 'xor'"),
        (("regimes",), [], r"regimes: expected a non-empty list"),
        (
            ("regimes",),
            ["bull", "moon"],
            r"regimes\[1\]: expected one of bull, bear, range, "
            r"high_vol; got 'moon'",
        ),
        (("regimes",), ["bull", "bull"], r"regimes: duplicated regime"),
        (
            ("style",),
            "yolo",
            r"style: expected one of trend, mean_reversion, breakout, "
            r"defensive; got 'yolo'",
        ),
        (("schema_version",), 2, r"schema_version: unsupported version 2"),
        (("entry",), [], r"entry: expected 1 to 3 conditions, got 0"),
        (("risk",), 1, r"genome\.risk: unknown key"),
    ],
)
def test_validation_bad_gene_error_names_gene_and_range(
    path: tuple[Any, ...], value: Any, expected: str
) -> None:
    data = _set(example_dict(), path, value)
    with pytest.raises(GenomeError, match=expected):
        Genome.from_dict(data)


def test_validation_nan_gene_is_rejected_with_its_path() -> None:
    data = example_dict()
    data["entry"][1]["threshold"] = float("nan")
    with pytest.raises(GenomeError, match=r"entry\[1\]\.threshold: expected number"):
        Genome.from_dict(data)


def test_validation_four_conditions_are_rejected() -> None:
    data = example_dict()
    data["entry"] = data["entry"] * 2
    with pytest.raises(GenomeError, match=r"entry: expected 1 to 3 conditions, got 4"):
        Genome.from_dict(data)


def test_validation_missing_key_is_named() -> None:
    data = example_dict()
    del data["exits"]["time_stop"]
    with pytest.raises(GenomeError, match=r"exits\.time_stop: missing key"):
        Genome.from_dict(data)


def test_validation_no_exit_that_can_fire_is_rejected() -> None:
    with pytest.raises(GenomeError, match=r"exits: no exit rule can fire"):
        Genome(entry=(VolumeSurge(),), exits=Exits(opposite_signal=True), sizing=VolTarget())
    # The same exits are fine when there is a directional condition to mirror.
    Genome(entry=(MACross(),), exits=Exits(opposite_signal=True), sizing=VolTarget())


def test_validation_built_in_python_names_the_gene() -> None:
    with pytest.raises(GenomeError, match=r"entry\[0\]\.window = 1 is out of bounds"):
        Genome(entry=(BollingerTouch(window=1),), exits=Exits(time_stop=5), sizing=VolTarget())
    with pytest.raises(GenomeError, match=r"entry\[0\]: expected a component of kind"):
        Genome(entry=({"kind": "rsi_level"},), exits=Exits(time_stop=5), sizing=VolTarget())  # type: ignore[arg-type]


def test_from_json_malformed_text_raises_genome_error() -> None:
    with pytest.raises(GenomeError, match=r"genome: not valid JSON"):
        Genome.from_json("{not json")
    with pytest.raises(GenomeError, match=r"genome: expected a JSON object, got list"):
        Genome.from_json("[1, 2]")


# --------------------------------------------------------------------------- genomes are data
def test_genome_package_never_evaluates_code() -> None:
    package = Path(__file__).resolve().parents[2] / "genome"
    sources = {path.name: path.read_text(encoding="utf-8") for path in package.rglob("*.py")}
    assert sources, "genome package not found"
    for name, text in sources.items():
        for forbidden in (r"\beval\(", r"\bexec\(", r"\bcompile\(", r"__import__", r"importlib"):
            assert not re.search(forbidden, text), f"{name} uses {forbidden}"
