"""The strategy DNA: genes, bounds, validation, JSON form, description, compilation.

Genomes are data, never code. Public entry points:

* :class:`Genome` and its components (:mod:`genome.genes`), :data:`SCHEMA_VERSION`;
* :data:`BOUNDS` (:mod:`genome.bounds`), the one table of numeric gene ranges;
* :func:`random_genome`, :func:`numeric_genes`, :func:`with_numeric_genes`
  (:mod:`genome.random`);
* :func:`classify_regimes` (:mod:`genome.regime`);
* :class:`IndicatorCache`, :func:`compile_genome`, :func:`compile_population`,
  :func:`compile_and_backtest` (:mod:`genome.cache`, :mod:`genome.compile`).

This package imports no Ray and no MLflow.
"""

from genome.bounds import BOUNDS, REGIMES, STYLES, Bound
from genome.cache import IndicatorCache
from genome.compile import (
    CompiledGenome,
    compile_and_backtest,
    compile_genome,
    compile_population,
)
from genome.genes import (
    SCHEMA_VERSION,
    ATRPct,
    ATRTrailing,
    BollingerTouch,
    CappedKelly,
    Condition,
    DonchianBreakout,
    Exits,
    FixedFraction,
    Genome,
    MACross,
    Momentum,
    PctTrailing,
    PriceVsMA,
    RSILevel,
    RVPercentile,
    Sizing,
    VolTarget,
    VolumeSurge,
)
from genome.random import NumericGene, numeric_genes, random_genome, with_numeric_genes
from genome.regime import RegimeSpec, classify_regimes

__all__ = [
    "BOUNDS",
    "REGIMES",
    "SCHEMA_VERSION",
    "STYLES",
    "ATRPct",
    "ATRTrailing",
    "BollingerTouch",
    "Bound",
    "CappedKelly",
    "CompiledGenome",
    "Condition",
    "DonchianBreakout",
    "Exits",
    "FixedFraction",
    "Genome",
    "IndicatorCache",
    "MACross",
    "Momentum",
    "NumericGene",
    "PctTrailing",
    "PriceVsMA",
    "RSILevel",
    "RVPercentile",
    "RegimeSpec",
    "Sizing",
    "VolTarget",
    "VolumeSurge",
    "classify_regimes",
    "compile_and_backtest",
    "compile_genome",
    "compile_population",
    "numeric_genes",
    "random_genome",
    "with_numeric_genes",
]
