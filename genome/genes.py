"""The strategy genome: frozen, validated, versioned data with a content-hash id.

A genome is *data*, never code: its genes name indicator primitives and numbers from the bounds
table (:mod:`genome.bounds`); :mod:`genome.compile` is the only thing that turns them into
signals. The JSON form is canonical (sorted keys, no spaces, floats for float genes), so
``Genome.from_json(genome.to_json()) == genome`` and the id (a short sha256 of that JSON) is the
same on every machine.

Structure::

    Genome
      entry:    1 to 3 conditions (PriceVsMA, MACross, RSILevel, BollingerTouch,
                DonchianBreakout, Momentum, VolumeSurge, ATRPct, RVPercentile)
      combine:  "and" | "or"
      exits:    Exits(opposite_signal, stop_loss, take_profit, trailing, time_stop)
                trailing: PctTrailing | ATRTrailing | None
      sizing:   FixedFraction | VolTarget | CappedKelly   (each with max_positions)
      regimes:  allowed subset of ("bull", "bear", "range", "high_vol")
      style:    "trend" | "mean_reversion" | "breakout" | "defensive"

Validation happens when a :class:`Genome` is built; every :class:`~alphaloop.errors.GenomeError`
names the gene by its path (``entry[1].window``, ``exits.trailing.multiple``, ``sizing.target``)
and its allowed range.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np

from alphaloop.errors import GenomeError
from genome.bounds import (
    BOUNDS,
    CHOICES,
    COMBINERS,
    MAX_CONDITIONS,
    MIN_CONDITIONS,
    REGIMES,
    STYLES,
)

SCHEMA_VERSION = 1

MAType: TypeAlias = Literal["sma", "ema"]
Side: TypeAlias = Literal["above", "below"]
Band: TypeAlias = Literal["lower", "upper"]
BreakoutSide: TypeAlias = Literal["high", "low"]
Combiner: TypeAlias = Literal["and", "or"]
Regime: TypeAlias = Literal["bull", "bear", "range", "high_vol"]
Style: TypeAlias = Literal["trend", "mean_reversion", "breakout", "defensive"]


# --------------------------------------------------------------------------- formatting
def _num(value: float) -> str:
    return f"{value:g}"


def _pct(value: float) -> str:
    return f"{value * 100:.4g}%"


def _article(phrase: str) -> str:
    # "an" before numbers spoken with a vowel sound: 8, 11, 18, 80-89, 8.5...
    whole = phrase.split("%")[0].split(".")[0].split(" ")[0]
    vowel = whole.startswith("8") or whole in {"11", "18"}
    return f"{'an' if vowel else 'a'} {phrase}"


def _ordinal(value: int) -> str:
    if 10 <= value % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{value}{suffix}"


def _join(parts: list[str], last: str) -> str:
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {last} {parts[-1]}"


# --------------------------------------------------------------------------- components
class _Component:
    """Mixin of every genome component: type normalisation and the bounds-table key."""

    __slots__ = ()
    KIND: ClassVar[str]

    def __post_init__(self) -> None:
        # Normalise acceptable numeric types so the canonical JSON (and the id) does not depend
        # on whether a float gene was given as 70 or 70.0, or as a NumPy scalar. Unacceptable
        # types are left alone for Genome validation to report with the gene's path.
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            bound = BOUNDS.get(f"{self.KIND}.{item.name}")
            value = getattr(self, item.name)
            if bound is None or value is None or isinstance(value, bool | np.bool_):
                continue
            if bound.kind == "float" and isinstance(value, int | float | np.integer | np.floating):
                object.__setattr__(self, item.name, float(value))
            elif bound.kind == "int" and isinstance(value, int | np.integer):
                object.__setattr__(self, item.name, int(value))
            elif (
                bound.kind == "int"
                and isinstance(value, float | np.floating)
                and math.isfinite(value)
                and float(value).is_integer()
            ):
                object.__setattr__(self, item.name, int(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceVsMA(_Component):
    """True while the close is above (or below) its simple or exponential moving average."""

    KIND: ClassVar[str] = "price_vs_ma"
    ma: MAType = "sma"
    window: int = 50
    side: Side = "above"

    def describe(self) -> str:
        """Return the condition in words."""
        return f"close is {self.side} {self.ma.upper()}({self.window})"

    def mirror(self) -> PriceVsMA:
        """Return the opposite condition (the close on the other side of the average)."""
        return dataclasses.replace(self, side=_flip_side(self.side))


@dataclass(frozen=True, slots=True, kw_only=True)
class MACross(_Component):
    """True on the bar where the fast average crosses above (or below) the slow one."""

    KIND: ClassVar[str] = "ma_cross"
    ma: MAType = "ema"
    fast: int = 12
    slow: int = 48
    direction: Side = "above"

    def describe(self) -> str:
        """Return the condition in words."""
        name = self.ma.upper()
        return f"{name}({self.fast}) crosses {self.direction} {name}({self.slow})"

    def mirror(self) -> MACross:
        """Return the opposite cross."""
        return dataclasses.replace(self, direction=_flip_side(self.direction))


@dataclass(frozen=True, slots=True, kw_only=True)
class RSILevel(_Component):
    """True while Wilder's RSI is below (or above) a threshold."""

    KIND: ClassVar[str] = "rsi_level"
    window: int = 14
    threshold: float = 30.0
    side: Side = "below"

    def describe(self) -> str:
        """Return the condition in words."""
        sign = "<" if self.side == "below" else ">"
        return f"RSI({self.window}) {sign} {_num(self.threshold)}"

    def mirror(self) -> RSILevel:
        """Return the opposite level: RSI < 30 mirrors to RSI > 70."""
        return dataclasses.replace(
            self, side=_flip_side(self.side), threshold=100.0 - self.threshold
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BollingerTouch(_Component):
    """True when the close is at or beyond the lower (or upper) Bollinger band."""

    KIND: ClassVar[str] = "bollinger_touch"
    window: int = 20
    width: float = 2.0
    band: Band = "lower"

    def describe(self) -> str:
        """Return the condition in words."""
        return (
            f"close touches the {self.band} Bollinger band "
            f"({self.window} bars, {_num(self.width)} sd)"
        )

    def mirror(self) -> BollingerTouch:
        """Return the touch of the other band."""
        return dataclasses.replace(self, band="upper" if self.band == "lower" else "lower")


@dataclass(frozen=True, slots=True, kw_only=True)
class DonchianBreakout(_Component):
    """True when the close breaks the highest high (or lowest low) of the previous bars."""

    KIND: ClassVar[str] = "donchian_breakout"
    window: int = 20
    side: BreakoutSide = "high"

    def describe(self) -> str:
        """Return the condition in words."""
        direction = "above" if self.side == "high" else "below"
        return f"close breaks {direction} the {self.window}-bar {self.side}"

    def mirror(self) -> DonchianBreakout:
        """Return the breakout on the other side of the channel."""
        return dataclasses.replace(self, side="low" if self.side == "high" else "high")


@dataclass(frozen=True, slots=True, kw_only=True)
class Momentum(_Component):
    """True while the rate of change over ``window`` bars is above (or below) a threshold."""

    KIND: ClassVar[str] = "momentum"
    window: int = 20
    threshold: float = 0.0
    side: Side = "above"

    def describe(self) -> str:
        """Return the condition in words."""
        return f"the {self.window}-bar rate of change is {self.side} {_pct(self.threshold)}"

    def mirror(self) -> Momentum:
        """Return the opposite momentum: ROC > 5% mirrors to ROC < -5%."""
        return dataclasses.replace(self, side=_flip_side(self.side), threshold=-self.threshold)


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSurge(_Component):
    """True when volume exceeds ``multiple`` times its average over the previous bars."""

    KIND: ClassVar[str] = "volume_surge"
    window: int = 20
    multiple: float = 2.0

    def describe(self) -> str:
        """Return the condition in words."""
        return f"volume exceeds {_num(self.multiple)} x its {self.window}-bar average"

    def mirror(self) -> None:
        """Return ``None``: a filter has no opposite signal."""
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ATRPct(_Component):
    """Volatility filter: true while ATR as a fraction of the close is below (or above) a level."""

    KIND: ClassVar[str] = "atr_pct"
    window: int = 14
    threshold: float = 0.03
    side: Side = "below"

    def describe(self) -> str:
        """Return the condition in words."""
        return f"ATR({self.window}) is {self.side} {_pct(self.threshold)} of the close"

    def mirror(self) -> None:
        """Return ``None``: a filter has no opposite signal."""
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RVPercentile(_Component):
    """Volatility filter: true while realised volatility ranks below (or above) a percentile.

    The rank of today's ``window``-bar realised volatility among its last ``lookback`` values
    (today included) is compared with ``threshold`` (a fraction in [0, 1]).
    """

    KIND: ClassVar[str] = "rv_percentile"
    window: int = 20
    lookback: int = 252
    threshold: float = 0.8
    side: Side = "below"

    def describe(self) -> str:
        """Return the condition in words."""
        rank = _ordinal(round(self.threshold * 100))
        return (
            f"{self.window}-bar realised volatility is {self.side} its {rank} percentile "
            f"of the last {self.lookback} bars"
        )

    def mirror(self) -> None:
        """Return ``None``: a filter has no opposite signal."""
        return None


Condition: TypeAlias = (
    PriceVsMA
    | MACross
    | RSILevel
    | BollingerTouch
    | DonchianBreakout
    | Momentum
    | VolumeSurge
    | ATRPct
    | RVPercentile
)
CONDITION_TYPES: dict[str, type[Any]] = {
    cls.KIND: cls
    for cls in (
        PriceVsMA,
        MACross,
        RSILevel,
        BollingerTouch,
        DonchianBreakout,
        Momentum,
        VolumeSurge,
        ATRPct,
        RVPercentile,
    )
}
# Conditions that point a direction (and so have an opposite signal); the rest are filters.
DIRECTIONAL_KINDS: frozenset[str] = frozenset(
    {"price_vs_ma", "ma_cross", "rsi_level", "bollinger_touch", "donchian_breakout", "momentum"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PctTrailing(_Component):
    """Trailing stop ``pct`` below the highest price since entry."""

    KIND: ClassVar[str] = "pct_trailing"
    pct: float = 0.1

    def describe(self) -> str:
        """Return the stop in words."""
        return _article(f"{_pct(self.pct)} trailing stop")


@dataclass(frozen=True, slots=True, kw_only=True)
class ATRTrailing(_Component):
    """Trailing stop ``multiple`` x ATR(``window``) below the highest price since entry.

    Compiled to a fraction of the price per bar (``multiple * ATR / close``), which the
    backtester reads at entry.
    """

    KIND: ClassVar[str] = "atr_trailing"
    multiple: float = 3.0
    window: int = 14

    def describe(self) -> str:
        """Return the stop in words."""
        return _article(f"{_num(self.multiple)} x ATR({self.window}) trailing stop")


Trailing: TypeAlias = PctTrailing | ATRTrailing
TRAILING_TYPES: dict[str, type[Any]] = {cls.KIND: cls for cls in (PctTrailing, ATRTrailing)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Exits(_Component):
    """The exit rules; a position closes on whichever fires first.

    Parameters
    ----------
    opposite_signal:
        Exit when the mirrored entry rule fires (see :meth:`Genome.opposite_conditions`).
    stop_loss, take_profit:
        Fractions of the entry price, or ``None`` for no such exit.
    trailing:
        A trailing stop in percent or in ATR multiples, or ``None``.
    time_stop:
        Exit after this many bars in the position, or ``None``.
    """

    KIND: ClassVar[str] = "exits"
    opposite_signal: bool = False
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing: Trailing | None = None
    time_stop: int | None = None

    def describe(self) -> str:
        """Return the exit rules in words, e.g. ``"exit on a 5% stop loss or after 20 bars"``."""
        parts: list[str] = []
        if self.opposite_signal:
            parts.append("the opposite signal")
        if self.stop_loss is not None:
            parts.append(_article(f"{_pct(self.stop_loss)} stop loss"))
        if self.take_profit is not None:
            parts.append(_article(f"{_pct(self.take_profit)} take profit"))
        if self.trailing is not None:
            parts.append(self.trailing.describe())
        timed = f"after {self.time_stop} bars" if self.time_stop is not None else ""
        if not parts:
            return f"exit {timed}" if timed else "never exit"
        if timed:
            return f"exit on {', '.join(parts)} or {timed}"
        return f"exit on {_join(parts, 'or')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedFraction(_Component):
    """Invest ``fraction`` of equity in each new position."""

    KIND: ClassVar[str] = "fixed_fraction"
    fraction: float = 0.1
    max_positions: int = 10

    def describe(self) -> str:
        """Return the sizing rule in words."""
        return (
            f"invest {_pct(self.fraction)} of equity per position, "
            f"at most {self.max_positions} positions"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VolTarget(_Component):
    """Size each position to a target annual volatility within an equal slot of equity.

    A position's weight is ``min(1, target / sigma) / max_positions`` where ``sigma`` is the
    asset's annualised realised volatility over ``window`` bars: volatile assets get less than
    their slot, and the book never exceeds 100% of equity.
    """

    KIND: ClassVar[str] = "vol_target"
    target: float = 0.15
    window: int = 20
    max_positions: int = 5

    def describe(self) -> str:
        """Return the sizing rule in words."""
        return (
            f"size to {_pct(self.target)} annual volatility, at most {self.max_positions} positions"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CappedKelly(_Component):
    """Size each position by the Kelly fraction of the asset's recent returns, capped.

    The fraction is ``mean(r) / var(r)`` of the asset's bar returns over ``window`` bars,
    clipped to ``[0, cap]``: an asset with a negative recent drift gets no position.
    """

    KIND: ClassVar[str] = "capped_kelly"
    window: int = 60
    cap: float = 0.2
    max_positions: int = 5

    def describe(self) -> str:
        """Return the sizing rule in words."""
        return (
            f"size by the {self.window}-bar Kelly fraction capped at {_pct(self.cap)} of equity, "
            f"at most {self.max_positions} positions"
        )


Sizing: TypeAlias = FixedFraction | VolTarget | CappedKelly
SIZING_TYPES: dict[str, type[Any]] = {
    cls.KIND: cls for cls in (FixedFraction, VolTarget, CappedKelly)
}


def _flip_side(side: Side) -> Side:
    return "below" if side == "above" else "above"


# --------------------------------------------------------------------------- validation
def _check_number(value: Any, key: str, path: str, optional: bool = False) -> None:
    bound = BOUNDS[key]
    if value is None and optional:
        return
    if bound.kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, float) and math.isfinite(value)
    if not ok:
        raise GenomeError(f"{path}: expected {bound.describe()}, got {value!r}")
    if not bound.low <= value <= bound.high:
        raise GenomeError(f"{path} = {value!r} is out of bounds: allowed {bound.describe()}")


def _check_choice(value: Any, allowed: tuple[str, ...], path: str) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise GenomeError(f"{path}: expected one of {', '.join(allowed)}; got {value!r}")


def _check_leaf(component: Any, path: str) -> None:
    """Check every numeric and categorical field of one component against the tables."""
    for item in dataclasses.fields(component):
        key = f"{component.KIND}.{item.name}"
        value = getattr(component, item.name)
        where = f"{path}.{item.name}"
        if key in BOUNDS:
            _check_number(value, key, where, optional=component.KIND == "exits")
        elif key in CHOICES:
            _check_choice(value, CHOICES[key], where)


def _check_kind(value: Any, types: dict[str, type[Any]], path: str) -> None:
    if not isinstance(value, tuple(types.values())):
        raise GenomeError(
            f"{path}: expected a component of kind {', '.join(types)}; got {type(value).__name__}"
        )


# --------------------------------------------------------------------------- genome
@dataclass(frozen=True, slots=True, kw_only=True)
class Genome:
    """One strategy: validated, immutable, picklable data with a content-hash :attr:`id`.

    Raises
    ------
    GenomeError
        When any gene is malformed or out of bounds; the message names the gene's path.
    """

    entry: tuple[Condition, ...]
    combine: Combiner = "and"
    exits: Exits
    sizing: Sizing
    regimes: tuple[Regime, ...] = REGIMES  # type: ignore[assignment]
    style: Style = "trend"
    schema_version: int = SCHEMA_VERSION
    _id: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if isinstance(self.entry, list):
            object.__setattr__(self, "entry", tuple(self.entry))
        if isinstance(self.regimes, list | set | frozenset):
            object.__setattr__(self, "regimes", tuple(self.regimes))
        self._validate()
        # Regimes are a set; store them in canonical order so the id ignores input order.
        ordered = tuple(regime for regime in REGIMES if regime in self.regimes)
        object.__setattr__(self, "regimes", ordered)
        digest = hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()
        object.__setattr__(self, "_id", digest[:16])

    # ------------------------------------------------------------------ identity
    @property
    def id(self) -> str:
        """Return the content hash: the first 16 hex digits of sha256 of :meth:`to_json`."""
        return self._id

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        if self.schema_version != SCHEMA_VERSION or isinstance(self.schema_version, bool):
            raise GenomeError(
                f"schema_version: unsupported version {self.schema_version!r} "
                f"(this code reads version {SCHEMA_VERSION})"
            )
        if not isinstance(self.entry, tuple) or not (
            MIN_CONDITIONS <= len(self.entry) <= MAX_CONDITIONS
        ):
            count = len(self.entry) if isinstance(self.entry, tuple) else type(self.entry).__name__
            raise GenomeError(
                f"entry: expected {MIN_CONDITIONS} to {MAX_CONDITIONS} conditions, got {count}"
            )
        for index, condition in enumerate(self.entry):
            path = f"entry[{index}]"
            _check_kind(condition, CONDITION_TYPES, path)
            _check_leaf(condition, path)
            if isinstance(condition, MACross) and condition.fast >= condition.slow:
                raise GenomeError(
                    f"{path}.fast = {condition.fast} must be smaller than "
                    f"{path}.slow = {condition.slow}"
                )
        _check_choice(self.combine, COMBINERS, "combine")
        if not isinstance(self.exits, Exits):
            raise GenomeError(f"exits: expected Exits, got {type(self.exits).__name__}")
        if not isinstance(self.exits.opposite_signal, bool):
            raise GenomeError(
                f"exits.opposite_signal: expected true or false, got {self.exits.opposite_signal!r}"
            )
        _check_leaf(self.exits, "exits")
        if self.exits.trailing is not None:
            _check_kind(self.exits.trailing, TRAILING_TYPES, "exits.trailing")
            _check_leaf(self.exits.trailing, "exits.trailing")
        if not self._has_live_exit():
            raise GenomeError(
                "exits: no exit rule can fire; set stop_loss, take_profit, trailing or "
                "time_stop, or opposite_signal with a directional entry condition"
            )
        _check_kind(self.sizing, SIZING_TYPES, "sizing")
        _check_leaf(self.sizing, "sizing")
        if not isinstance(self.regimes, tuple) or not self.regimes:
            raise GenomeError(
                f"regimes: expected a non-empty list of {', '.join(REGIMES)}; got {self.regimes!r}"
            )
        for index, regime in enumerate(self.regimes):
            _check_choice(regime, REGIMES, f"regimes[{index}]")
        if len(set(self.regimes)) != len(self.regimes):
            raise GenomeError(f"regimes: duplicated regime in {list(self.regimes)}")
        _check_choice(self.style, STYLES, "style")

    def _has_live_exit(self) -> bool:
        exits = self.exits
        if any(
            value is not None
            for value in (exits.stop_loss, exits.take_profit, exits.trailing, exits.time_stop)
        ):
            return True
        return exits.opposite_signal and bool(self.opposite_conditions())

    # ------------------------------------------------------------------ semantics
    def opposite_conditions(self) -> tuple[Condition, ...]:
        """Return the mirrored directional entry conditions (filters have no opposite).

        The opposite signal is these conditions joined by the genome's own combiner: for
        ``EMA(12) crosses above EMA(48) and RSI(14) < 70`` it is
        ``EMA(12) crosses below EMA(48) and RSI(14) > 30``.
        """
        mirrored = (condition.mirror() for condition in self.entry)
        return tuple(condition for condition in mirrored if condition is not None)

    @property
    def max_positions(self) -> int:
        """Return the most positions the strategy holds at once."""
        return self.sizing.max_positions

    def describe(self) -> str:
        """Return the strategy in plain language.

        Example: ``"Buy when EMA(12) crosses above EMA(48) and RSI(14) < 70; exit on a
        2.5 x ATR(14) trailing stop or after 20 bars; size to 15% annual volatility, at most 5
        positions; trades only in bull and range regimes"``.
        """
        conditions = f" {self.combine} ".join(c.describe() for c in self.entry)
        names = [regime.replace("high_vol", "high-volatility") for regime in self.regimes]
        if len(names) == len(REGIMES):
            regimes = "trades in every regime"
        elif len(names) == 1:
            regimes = f"trades only in the {names[0]} regime"
        else:
            regimes = f"trades only in {_join(names, 'and')} regimes"
        return (
            f"Buy when {conditions}; {self.exits.describe()}; {self.sizing.describe()}; {regimes}"
        )

    # ------------------------------------------------------------------ JSON form
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready mapping (polymorphic components carry a ``kind`` key)."""
        return {
            "schema_version": self.schema_version,
            "entry": [_component_to_dict(c, tagged=True) for c in self.entry],
            "combine": self.combine,
            "exits": _component_to_dict(self.exits, tagged=False),
            "sizing": _component_to_dict(self.sizing, tagged=True),
            "regimes": list(self.regimes),
            "style": self.style,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """Return the canonical JSON (sorted keys; compact unless ``indent`` is given)."""
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=separators, indent=indent, allow_nan=False
        )

    @classmethod
    def from_dict(cls, data: Any) -> Genome:
        """Build and validate a genome from :meth:`to_dict` output.

        Raises
        ------
        GenomeError
            On an unknown or missing key, an unknown component kind, or any invalid gene.
        """
        if not isinstance(data, dict):
            raise GenomeError(f"genome: expected a JSON object, got {type(data).__name__}")
        _check_keys(data, ("schema_version", "entry", "combine", "exits", "sizing",
                           "regimes", "style"), "genome")  # fmt: skip
        version = data["schema_version"]
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise GenomeError(
                f"schema_version: unsupported version {version!r} "
                f"(this code reads version {SCHEMA_VERSION})"
            )
        entry = data["entry"]
        if not isinstance(entry, list):
            raise GenomeError(f"entry: expected a list of conditions, got {type(entry).__name__}")
        conditions = tuple(
            _component_from_dict(item, CONDITION_TYPES, f"entry[{index}]")
            for index, item in enumerate(entry)
        )
        exits_data = data["exits"]
        if not isinstance(exits_data, dict):
            raise GenomeError(f"exits: expected an object, got {type(exits_data).__name__}")
        _check_keys(exits_data, tuple(f.name for f in dataclasses.fields(Exits)), "exits")
        trailing_data = exits_data["trailing"]
        trailing = (
            None
            if trailing_data is None
            else _component_from_dict(trailing_data, TRAILING_TYPES, "exits.trailing")
        )
        exits = Exits(**{**exits_data, "trailing": trailing})
        sizing = _component_from_dict(data["sizing"], SIZING_TYPES, "sizing")
        regimes = data["regimes"]
        if not isinstance(regimes, list):
            raise GenomeError(f"regimes: expected a list, got {type(regimes).__name__}")
        return cls(
            entry=conditions,
            combine=data["combine"],
            exits=exits,
            sizing=sizing,
            regimes=tuple(regimes),
            style=data["style"],
            schema_version=version,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Genome:
        """Parse and validate a genome from JSON.

        Raises
        ------
        GenomeError
            On malformed JSON or any invalid gene.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GenomeError(f"genome: not valid JSON: {exc}") from None
        except RecursionError:
            raise GenomeError("genome: JSON nested too deeply to be a genome") from None
        try:
            return cls.from_dict(data)
        except RecursionError:
            raise GenomeError("genome: nested too deeply to be a genome") from None


def _component_to_dict(component: Any, *, tagged: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": component.KIND} if tagged else {}
    for item in dataclasses.fields(component):
        value = getattr(component, item.name)
        out[item.name] = (
            _component_to_dict(value, tagged=True) if isinstance(value, _Component) else value
        )
    return out


def _check_keys(data: dict[str, Any], expected: tuple[str, ...], path: str) -> None:
    unknown = sorted(set(data) - set(expected))
    if unknown:
        raise GenomeError(
            f"{path}.{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(expected))}"
        )
    missing = [key for key in expected if key not in data]
    if missing:
        raise GenomeError(f"{path}.{missing[0]}: missing key")


def _component_from_dict(data: Any, types: dict[str, type[Any]], path: str) -> Any:
    if not isinstance(data, dict):
        raise GenomeError(f"{path}: expected an object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in types:
        raise GenomeError(f"{path}.kind: expected one of {', '.join(types)}; got {kind!r}")
    component_type = types[kind]
    names = tuple(item.name for item in dataclasses.fields(component_type))
    _check_keys(data, ("kind", *names), path)
    return component_type(**{name: data[name] for name in names})
