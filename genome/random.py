"""Random genomes and a flat view of numeric genes, for the evolution operators.

* :func:`random_genome` draws a genome that is valid by construction (initial populations and
  wild immigrants). The style is drawn first and picks the first condition's family, so a
  "mean_reversion" genome starts from an oversold signal rather than a breakout.
* :func:`numeric_genes` flattens every numeric gene to ``path -> (value, low, high, kind)``
  and :func:`with_numeric_genes` writes new values back (clipped and rounded to the bounds),
  so DEAP and Optuna can mutate numbers without knowing the genome's structure.

All randomness comes from the ``numpy.random.Generator`` passed in: the same generator state
gives the same genome.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from alphaloop.errors import GenomeError
from genome.bounds import BOUNDS, MAX_CONDITIONS, REGIMES, STYLES, Bound, GeneKind
from genome.genes import (
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


class NumericGene(NamedTuple):
    """One numeric gene: its value and its allowed range."""

    value: float
    low: float
    high: float
    kind: GeneKind


# --------------------------------------------------------------------------- drawing numbers
def draw(rng: np.random.Generator, key: str, low: float | None = None) -> Any:
    """Draw a value of gene ``key`` (uniform, or log-uniform for log genes), rounded.

    ``low`` raises the lower limit (e.g. a slow average above the fast one).
    """
    bound = BOUNDS[key]
    lowest = bound.low if low is None else max(bound.low, low)
    if bound.log and lowest > 0:
        raw = math.exp(rng.uniform(math.log(lowest), math.log(bound.high)))
    else:
        raw = rng.uniform(lowest, bound.high)
    value = bound.clip(raw)
    return max(value, bound.clip(lowest)) if bound.kind == "int" else value


def _side(rng: np.random.Generator) -> Any:
    return "above" if rng.random() < 0.5 else "below"


def _ma(rng: np.random.Generator) -> Any:
    return "sma" if rng.random() < 0.5 else "ema"


def _price_vs_ma(rng: np.random.Generator) -> PriceVsMA:
    return PriceVsMA(ma=_ma(rng), window=draw(rng, "price_vs_ma.window"), side=_side(rng))


def _ma_cross(rng: np.random.Generator) -> MACross:
    fast = draw(rng, "ma_cross.fast")
    slow = draw(rng, "ma_cross.slow", low=fast + 1)
    return MACross(ma=_ma(rng), fast=fast, slow=slow, direction=_side(rng))


def _rsi_level(rng: np.random.Generator) -> RSILevel:
    return RSILevel(
        window=draw(rng, "rsi_level.window"),
        threshold=draw(rng, "rsi_level.threshold"),
        side=_side(rng),
    )


def _bollinger(rng: np.random.Generator) -> BollingerTouch:
    return BollingerTouch(
        window=draw(rng, "bollinger_touch.window"),
        width=draw(rng, "bollinger_touch.width"),
        band="lower" if rng.random() < 0.5 else "upper",
    )


def _donchian(rng: np.random.Generator) -> DonchianBreakout:
    return DonchianBreakout(
        window=draw(rng, "donchian_breakout.window"), side="high" if rng.random() < 0.5 else "low"
    )


def _momentum(rng: np.random.Generator) -> Momentum:
    return Momentum(
        window=draw(rng, "momentum.window"),
        threshold=draw(rng, "momentum.threshold"),
        side=_side(rng),
    )


def _volume_surge(rng: np.random.Generator) -> VolumeSurge:
    return VolumeSurge(
        window=draw(rng, "volume_surge.window"), multiple=draw(rng, "volume_surge.multiple")
    )


def _atr_pct(rng: np.random.Generator) -> ATRPct:
    return ATRPct(
        window=draw(rng, "atr_pct.window"),
        threshold=draw(rng, "atr_pct.threshold"),
        side=_side(rng),
    )


def _rv_percentile(rng: np.random.Generator) -> RVPercentile:
    return RVPercentile(
        window=draw(rng, "rv_percentile.window"),
        lookback=draw(rng, "rv_percentile.lookback"),
        threshold=draw(rng, "rv_percentile.threshold"),
        side=_side(rng),
    )


def _oversold_rsi(rng: np.random.Generator) -> RSILevel:
    return RSILevel(
        window=draw(rng, "rsi_level.window"),
        threshold=float(round(rng.uniform(10.0, 40.0), 1)),
        side="below",
    )


def _lower_band(rng: np.random.Generator) -> BollingerTouch:
    return dataclasses.replace(_bollinger(rng), band="lower")


def _upside_breakout(rng: np.random.Generator) -> DonchianBreakout:
    return dataclasses.replace(_donchian(rng), side="high")


def _calm_filter(rng: np.random.Generator) -> RVPercentile:
    return dataclasses.replace(_rv_percentile(rng), side="below")


ConditionMaker = Callable[[np.random.Generator], Condition]
ANY_CONDITION: tuple[ConditionMaker, ...] = (
    _price_vs_ma,
    _ma_cross,
    _rsi_level,
    _bollinger,
    _donchian,
    _momentum,
    _volume_surge,
    _atr_pct,
    _rv_percentile,
)
# The first condition of each style comes from its family.
STYLE_FAMILIES: dict[str, tuple[ConditionMaker, ...]] = {
    "trend": (_price_vs_ma, _ma_cross, _momentum),
    "mean_reversion": (_oversold_rsi, _lower_band),
    "breakout": (_upside_breakout, _volume_surge),
    "defensive": (_price_vs_ma, _calm_filter),
}


def _pick(rng: np.random.Generator, makers: tuple[ConditionMaker, ...]) -> Condition:
    return makers[int(rng.integers(len(makers)))](rng)


def random_exits(rng: np.random.Generator) -> Exits:
    """Draw exit rules; each rule is present with some probability, at least one always."""
    stop_loss = draw(rng, "exits.stop_loss") if rng.random() < 0.5 else None
    take_profit = draw(rng, "exits.take_profit") if rng.random() < 0.3 else None
    trailing: PctTrailing | ATRTrailing | None = None
    roll = rng.random()
    if roll < 0.25:
        trailing = PctTrailing(pct=draw(rng, "pct_trailing.pct"))
    elif roll < 0.5:
        trailing = ATRTrailing(
            multiple=draw(rng, "atr_trailing.multiple"), window=draw(rng, "atr_trailing.window")
        )
    # A genome whose only exit is an opposite signal of pure filters would never exit, so a
    # genome drawn with no stop at all gets a time stop.
    time_stop = draw(rng, "exits.time_stop") if rng.random() < 0.6 else None
    if stop_loss is None and take_profit is None and trailing is None and time_stop is None:
        time_stop = draw(rng, "exits.time_stop")
    return Exits(
        opposite_signal=bool(rng.random() < 0.5),
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing=trailing,
        time_stop=time_stop,
    )


def random_sizing(rng: np.random.Generator) -> Sizing:
    """Draw one of the three sizing rules with its maximum number of positions."""
    roll = int(rng.integers(3))
    if roll == 0:
        return FixedFraction(
            fraction=draw(rng, "fixed_fraction.fraction"),
            max_positions=draw(rng, "fixed_fraction.max_positions"),
        )
    if roll == 1:
        return VolTarget(
            target=draw(rng, "vol_target.target"),
            window=draw(rng, "vol_target.window"),
            max_positions=draw(rng, "vol_target.max_positions"),
        )
    return CappedKelly(
        window=draw(rng, "capped_kelly.window"),
        cap=draw(rng, "capped_kelly.cap"),
        max_positions=draw(rng, "capped_kelly.max_positions"),
    )


def random_regimes(rng: np.random.Generator) -> tuple[Any, ...]:
    """Draw the allowed regimes: all of them half of the time, else a random non-empty subset."""
    if rng.random() < 0.5:
        return REGIMES
    chosen = rng.random(len(REGIMES)) < 0.5
    if not chosen.any():
        chosen[int(rng.integers(len(REGIMES)))] = True
    return tuple(regime for regime, keep in zip(REGIMES, chosen, strict=True) if keep)


def random_condition(rng: np.random.Generator) -> Condition:
    """Draw one entry condition of any kind."""
    return _pick(rng, ANY_CONDITION)


def random_genome(rng: np.random.Generator) -> Genome:
    """Draw a random genome, valid by construction.

    Parameters
    ----------
    rng:
        The only source of randomness.
    """
    style = STYLES[int(rng.integers(len(STYLES)))]
    conditions = [_pick(rng, STYLE_FAMILIES[style])]
    extra = int(rng.integers(MAX_CONDITIONS))  # 0, 1 or 2 more
    conditions += [random_condition(rng) for _ in range(extra)]
    exits = random_exits(rng)
    if not any(condition.mirror() is not None for condition in conditions):
        # Filters have no opposite; asking for one would only clutter the description.
        exits = dataclasses.replace(exits, opposite_signal=False)
    return Genome(
        entry=tuple(conditions),
        combine="and" if rng.random() < 0.7 else "or",
        exits=exits,
        sizing=random_sizing(rng),
        regimes=random_regimes(rng),
        style=style,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- numeric view
def _numeric_slots(genome: Genome) -> list[tuple[str, Any, str, str]]:
    """Return ``(path, component, field, bounds key)`` of every present numeric gene."""
    slots: list[tuple[str, Any, str, str]] = []

    def visit(component: Any, path: str) -> None:
        for item in dataclasses.fields(component):
            value = getattr(component, item.name)
            key = f"{component.KIND}.{item.name}"
            if key in BOUNDS and value is not None:
                slots.append((f"{path}.{item.name}", component, item.name, key))
            elif dataclasses.is_dataclass(value):
                visit(value, f"{path}.{item.name}")

    for index, condition in enumerate(genome.entry):
        visit(condition, f"entry[{index}]")
    visit(genome.exits, "exits")
    visit(genome.sizing, "sizing")
    return slots


def numeric_genes(genome: Genome) -> dict[str, NumericGene]:
    """Return every numeric gene that is present: ``path -> (value, low, high, kind)``.

    Paths read like ``entry[1].window``, ``exits.trailing.multiple``, ``sizing.target``.
    Absent optional genes (no stop loss...) are not listed; adding or removing them is a
    structural change.
    """
    genes: dict[str, NumericGene] = {}
    for path, component, name, key in _numeric_slots(genome):
        bound: Bound = BOUNDS[key]
        genes[path] = NumericGene(getattr(component, name), bound.low, bound.high, bound.kind)
    return genes


def with_numeric_genes(genome: Genome, values: Mapping[str, float]) -> Genome:
    """Return a copy of ``genome`` with some numeric genes replaced.

    Values are clipped to their bounds and rounded (integers to the nearest whole number,
    floats to the gene's decimals). A moving-average cross whose fast window ends up not
    below its slow window is repaired: the two are swapped, or the slow one is moved one
    bar above the fast one (or the fast one bar below when the slow one is at its bound).

    Raises
    ------
    GenomeError
        On a path that is not a numeric gene of this genome, or a non-finite value.
    """
    slots = {path: (component, name, key) for path, component, name, key in _numeric_slots(genome)}
    updates: dict[str, dict[str, Any]] = {}
    for path, raw in values.items():
        if path not in slots:
            raise GenomeError(
                f"{path}: not a numeric gene of genome {genome.id}; known: {', '.join(slots)}"
            )
        if not isinstance(raw, int | float | np.integer | np.floating) or not math.isfinite(raw):
            raise GenomeError(f"{path}: expected a finite number, got {raw!r}")
        _, name, key = slots[path]
        owner = path.rsplit(".", 1)[0]
        updates.setdefault(owner, {})[name] = BOUNDS[key].clip(float(raw))

    def rebuilt(component: Any, path: str) -> Any:
        changes: dict[str, Any] = dict(updates.get(path, {}))
        for item in dataclasses.fields(component):
            value = getattr(component, item.name)
            if dataclasses.is_dataclass(value):
                changes[item.name] = rebuilt(value, f"{path}.{item.name}")
        if isinstance(component, MACross):
            fast = changes.get("fast", component.fast)
            slow = changes.get("slow", component.slow)
            changes["fast"], changes["slow"] = _repair_cross(fast, slow)
        return dataclasses.replace(component, **changes) if changes else component

    entry = tuple(rebuilt(condition, f"entry[{i}]") for i, condition in enumerate(genome.entry))
    return dataclasses.replace(
        genome,
        entry=entry,
        exits=rebuilt(genome.exits, "exits"),
        sizing=rebuilt(genome.sizing, "sizing"),
    )


def _repair_cross(fast: int, slow: int) -> tuple[int, int]:
    # Both are already inside their own bounds, and fast <= 100 < slow's upper bound, so a
    # swap or a one-bar step always lands inside the bounds again.
    if fast > slow:
        return slow, fast
    if fast == slow:
        return fast, slow + 1
    return fast, slow
