"""The synthesis account's debate: propose, object, validate, judge. Rule-based, no LLM.

:func:`run_debate` is a pure function of its inputs (same inputs, same record, bit for bit):

1. **Proposal**: the aggressive account's target positions (weights of equity, with the genome
   id, style and signal behind each).
2. **Objections** (the conservative view): five topics are weighed, each with its figures
   and a severity in ``[0, 1]`` (labelled low / medium / high); only those whose severity
   exceeds ``raise_min_severity`` are raised (the strongest alone when none does):

   * ``volatility``: the targets' annualised volatility assuming perfect correlation
     (``sum(|w_i| * vol_i)``, the conservative bound) against ``vol_limit``;
   * ``drawdown``: the weighted mean of the targets' maximum drawdowns over the last year
     against ``drawdown_limit`` (the worst name is reported too);
   * ``concentration``: the largest target weight against ``concentration_limit`` (the
     Herfindahl index and the effective number of names are reported);
   * ``liquidity``: the largest order as a share of the name's average daily turnover
     against ``participation_limit``;
   * ``falling``: the weighted mean current drawdown of the targets from their one-year
     high against ``current_drawdown_limit``.

   With ``ratio = figure / limit`` the severity is ``clip(ratio - 0.5, 0, 1)``: nothing below
   half the limit, 0.5 at the limit, 1 at one and a half times it.

   **Rounds**: while a raised objection reaches ``reduce_risk`` the proposal is revised to
   answer it (:func:`_revise`) and objected to again, for at most ``max_rounds`` revisions;
   the judge judges the last revision. Every round is recorded (:class:`DebateRound`).
3. **Quant validation**: each genome's backtest trades in the day's regime (the "similar
   regime"); when that regime has fewer than ``min_trades`` trades, or the regime is unknown,
   all regimes pooled, flagged ``pooled``. The win rate and the expected (mean) trade return
   are averaged with the targets' absolute weights; the sample is the sum of trades. The
   quant view also recalls the ``memory_k`` most similar past days of the experience memory
   (known before the day: :func:`arena.memory.nearest_days`) and cites what the proposal's
   styles returned in them (:class:`MemoryEvidence`).
4. **Judge**: with ``risk`` = the largest severity times ``2 x`` the conservative persona's
   weight (:mod:`arena.judge`; 1x at the neutral weights), capped at 1, and
   ``s = n / (n + min_trades)``:

   ==========================================================  =======  =====================
   condition (the first that holds)                            verdict  confidence
   ==========================================================  =======  =====================
   ``n < min_trades``                                          drop     ``1 - s``
   ``win_rate < min_win_rate`` or ``expected <= min_expected``  drop     ``s``
   ``risk >= drop_risk``                                       drop     ``risk``
   ``risk >= reduce_risk``                                     reduce   ``s*max(risk, 1-risk)``
   otherwise                                                   execute  ``s * (1 - risk)``
   ==========================================================  =======  =====================

   A reduced proposal is scaled by ``max(1 - risk, min_scale)``; a dropped one by 0. Then the
   memory rule, on what the similar past days say **beyond the usual**: with at least
   ``memory_min_days`` similar days of the proposal's styles and a contrast ``c`` (their mean
   return minus the styles' mean over every past day) whose ``|t| >= memory_min_t``,
   ``factor = clip(1 + c / memory_loss_tolerance, memory_floor, memory_cap)``: below 1, when
   the similar days lost money, it shrinks the scale and the confidence (an execute becomes
   a reduce); above 1, when they made money, it restores the scale, at most to the
   proposal's size (``docs/memory.md``). A scaled target keeps its genome ``sources``, so the
   day's P&L can still be attributed to them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from arena.ledger import GenomeShares, validate_shares
from arena.memory import Episode, Neighbour, context_of, contrast_of, nearest_days
from arena.perceive import Perception

__all__ = [
    "LOW_CERTAINTY",
    "DebateConfig",
    "DebateRecord",
    "DebateRound",
    "MemoryEvidence",
    "Objection",
    "QuantValidation",
    "RegimeStats",
    "Revision",
    "StyleMemory",
    "TargetPosition",
    "certainty_label",
    "run_debate",
]

Verdict = Literal["execute", "reduce", "drop"]
SeverityLevel = Literal["low", "medium", "high"]
Topic = Literal["volatility", "drawdown", "concentration", "liquidity", "falling"]
TOPICS: tuple[str, ...] = ("volatility", "drawdown", "concentration", "liquidity", "falling")
# 2: objections chosen by their figures, revision rounds, memory and judge weights.
# 3: the memory rule on the contrast with every past day (both ways); drawdown caps
#    answered once against the original proposal.
RULE_VERSION = 3


class DebateConfig(FrozenConfig):
    """Thresholds of the conservative view and of the judge (see the module docstring)."""

    vol_limit: float = Field(default=0.25, gt=0.0)
    drawdown_limit: float = Field(default=0.20, gt=0.0, le=1.0)
    concentration_limit: float = Field(default=0.30, gt=0.0, le=1.0)
    participation_limit: float = Field(default=0.05, gt=0.0, le=1.0)
    min_trades: int = Field(default=30, ge=1)
    # A floor against genomes whose rare wins carry everything; above it the expected
    # trade return decides (breakout and trend edges win 30-45% of their trades).
    min_win_rate: float = Field(default=0.25, ge=0.0, le=1.0)
    min_expected_return: float = 0.0
    reduce_risk: float = Field(default=0.34, gt=0.0, le=1.0)
    drop_risk: float = Field(default=0.9, gt=0.0, le=1.0)
    min_scale: float = Field(default=0.1, gt=0.0, le=1.0)
    current_drawdown_limit: float = Field(default=0.10, gt=0.0, le=1.0)
    raise_min_severity: float = Field(default=0.0, ge=0.0, lt=1.0)
    max_rounds: int = Field(default=2, ge=0, le=10)
    revision_target: float = Field(default=0.8, gt=0.0, le=1.0)
    memory_k: int = Field(default=12, ge=1, le=1000)
    memory_min_days: int = Field(default=5, ge=1)
    memory_loss_tolerance: float = Field(default=0.01, gt=0.0)
    memory_floor: float = Field(default=0.25, gt=0.0, le=1.0)
    memory_cap: float = Field(default=2.0, ge=1.0, le=10.0)
    memory_min_t: float = Field(default=1.0, ge=0.0)
    judge_floor: float = Field(default=0.2, ge=0.0, le=0.5)
    judge_cap: float = Field(default=0.8, ge=0.5, le=1.0)
    judge_rate: float = Field(default=0.5, gt=0.0, le=1.0)
    judge_band: float = Field(default=0.02, gt=0.0)

    @model_validator(mode="after")
    def _check_order(self) -> DebateConfig:
        if self.reduce_risk >= self.drop_risk:
            raise ValueError(
                f"reduce_risk ({self.reduce_risk}) must be below drop_risk ({self.drop_risk})"
            )
        if self.memory_min_days > self.memory_k:
            raise ValueError(
                f"memory_min_days ({self.memory_min_days}) must not exceed memory_k "
                f"({self.memory_k}): the memory rule could never apply"
            )
        return self


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True, kw_only=True)
class TargetPosition:
    """One target of a proposal: ``weight`` of equity in ``symbol`` because of ``genome_id``.

    ``signal`` is the genome's signal strength behind the target (``1.0`` a plain entry).
    ``genome_id`` is the largest contributor; ``sources`` are all the genomes whose sleeves
    asked for the name, each with its share of the weight (``(genome_id, share)``, shares
    > 0 summing to 1, sorted by genome id; :func:`arena.ledger.validate_shares`). A target
    built without sources stands for ``genome_id`` alone (:attr:`shares`).
    """

    symbol: str
    weight: float
    genome_id: str
    style: str
    signal: float = 1.0
    sources: GenomeShares = ()

    def __post_init__(self) -> None:
        for name in ("weight", "signal"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"target {self.symbol}: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"target {self.symbol}: {name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.symbol or not self.genome_id:
            raise ValueError("a target needs a symbol and a genome id")
        # Lists after a JSON round trip (DebateRecord.from_dict) become the canonical tuples.
        sources = validate_shares(self.sources, f"target {self.symbol} sources")
        if sources and self.genome_id not in dict(sources):
            raise ValueError(
                f"target {self.symbol}: genome {self.genome_id} is not among its sources "
                f"{[g for g, _ in sources]}"
            )
        object.__setattr__(self, "sources", sources)

    @property
    def shares(self) -> GenomeShares:
        """Return the genome shares of the target (``((genome_id, 1.0),)`` without sources)."""
        return self.sources or ((self.genome_id, 1.0),)

    def scaled(self, factor: float) -> TargetPosition:
        """Return the target with its weight multiplied by ``factor`` (same sources)."""
        return TargetPosition(
            symbol=self.symbol,
            weight=self.weight * factor,
            genome_id=self.genome_id,
            style=self.style,
            signal=self.signal,
            sources=self.sources,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RegimeStats:
    """Backtest statistics of one genome's trades in one regime.

    ``win_rate`` is the share of winning trades and ``expected_return`` the mean trade
    return (after costs), over ``trades`` trades.
    """

    trades: int
    win_rate: float
    expected_return: float

    def __post_init__(self) -> None:
        if isinstance(self.trades, bool) or not isinstance(self.trades, int) or self.trades < 0:
            raise ValueError(f"RegimeStats.trades must be an integer >= 0, got {self.trades!r}")
        if not 0.0 <= self.win_rate <= 1.0:
            raise ValueError(f"RegimeStats.win_rate must be in [0, 1], got {self.win_rate!r}")
        if not math.isfinite(self.expected_return):
            raise ValueError("RegimeStats.expected_return must be finite")


# --------------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True, kw_only=True)
class Objection:
    """One objection of the conservative view, with its figures."""

    topic: Topic
    severity: float
    level: SeverityLevel
    figure: float
    limit: float
    symbol: str | None
    detail: Mapping[str, float]
    message: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"objection severity must be in [0, 1], got {self.severity}")
        # Unknown figures (NaN) are left out of the detail: a record holds finite numbers only.
        clean = {str(k): float(v) for k, v in dict(self.detail).items() if math.isfinite(v)}
        object.__setattr__(self, "detail", MappingProxyType(clean))


@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeEvidence:
    """One genome's backtest evidence in the regime used."""

    genome_id: str
    regime_used: str
    pooled: bool
    trades: int
    win_rate: float
    expected_return: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StyleMemory:
    """What the proposal's ``style`` returned (paper, per day) in the most similar past days.

    ``baseline_return`` and ``baseline_sd`` are the mean and population standard deviation
    of the style's return over **every** past day the memory holds for the decision (the
    similar ones included), over ``baseline_days`` days (``None``/0 in records written before
    the contrast rule).
    """

    style: str
    days: int
    mean_return: float
    baseline_days: int = 0
    baseline_return: float | None = None
    baseline_sd: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEvidence:
    """The quant view's recall: the ``k`` most similar past days (:mod:`arena.memory`).

    ``sample_days`` counts the retrieved days on which a style of the proposal traded;
    ``expected_return`` is the styles' mean returns weighted by the proposal's weight in each
    (``None`` without a sample). ``contrast`` is the same weighted mean of each style's
    similar-days mean minus its baseline (every past day), and ``t_stat`` the contrast over
    its standard error ``sqrt(sum(v_s^2 sd_s^2 / n_s))`` (``v_s`` the style's share of the
    weight, ``sd_s`` its baseline deviation, ``n_s`` its similar days); both ``None`` without
    a sample (and in records written before the contrast rule).
    """

    k: int
    episode_ids: tuple[str, ...]
    days: tuple[str, ...]
    distances: tuple[float, ...]
    styles: tuple[StyleMemory, ...]
    sample_days: int
    expected_return: float | None
    message: str
    contrast: float | None = None
    t_stat: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantValidation:
    """The quant view: the proposal's genomes in regimes like today's, and its memory."""

    regime: str
    sample_size: int
    win_rate: float
    expected_return: float
    evidence: tuple[GenomeEvidence, ...]
    message: str
    memory: MemoryEvidence | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    """One change the proposer made to answer an objection: ``symbol``'s weight moved."""

    topic: Topic
    symbol: str
    before: float
    after: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DebateRound:
    """One round: the objections raised on the round's proposal and the revisions they caused.

    ``considered`` is every topic's severity, raised or not; the last round has no revision.
    """

    number: int
    gross_weight: float
    considered: Mapping[str, float]
    objections: tuple[Objection, ...]
    revisions: tuple[Revision, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "considered", MappingProxyType(dict(self.considered)))


@dataclass(frozen=True, slots=True, kw_only=True)
class DebateRecord:
    """The whole decision chain, stored with every order (``to_dict`` / ``from_dict``)."""

    date: str
    account: str
    regime: str
    equity: float
    proposal: tuple[TargetPosition, ...]
    objections: tuple[Objection, ...]
    quant: QuantValidation
    verdict: Verdict
    confidence: float
    scale: float
    targets: tuple[TargetPosition, ...]
    rule: str
    config_hash: str
    rule_version: int = RULE_VERSION
    rounds: tuple[DebateRound, ...] = ()
    revised: tuple[TargetPosition, ...] = ()
    judge_weights: Mapping[str, float] = field(
        default_factory=lambda: {"aggressive": 0.5, "conservative": 0.5}
    )

    def __post_init__(self) -> None:
        if self.verdict not in ("execute", "reduce", "drop"):
            raise ValueError(f"verdict must be execute, reduce or drop, got {self.verdict!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if not self.objections:
            raise ValueError("a debate needs at least one objection")
        object.__setattr__(self, "judge_weights", MappingProxyType(dict(self.judge_weights)))

    @property
    def record_id(self) -> str:
        """Return a content hash of the record (16 hex digits)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (plain types only), with the verdict's ``certainty`` label."""
        out: dict[str, Any] = _plain(self)
        out["certainty"] = certainty_label(self.confidence) or "normal"
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DebateRecord:
        """Rebuild a record from :meth:`to_dict` output (e.g. after a JSON round trip)."""
        data = {key: value for key, value in data.items() if key != "certainty"}  # derived
        quant = dict(data["quant"])
        quant["evidence"] = tuple(GenomeEvidence(**item) for item in quant["evidence"])
        memory = quant.get("memory")
        if memory is not None:
            quant["memory"] = MemoryEvidence(
                **{
                    **memory,
                    "episode_ids": tuple(memory["episode_ids"]),
                    "days": tuple(memory["days"]),
                    "distances": tuple(memory["distances"]),
                    "styles": tuple(StyleMemory(**item) for item in memory["styles"]),
                }
            )

        def objection(item: Mapping[str, Any]) -> Objection:
            return Objection(**{**item, "detail": dict(item["detail"])})

        rounds = tuple(
            DebateRound(
                number=item["number"],
                gross_weight=item["gross_weight"],
                considered=dict(item["considered"]),
                objections=tuple(objection(o) for o in item["objections"]),
                revisions=tuple(Revision(**r) for r in item["revisions"]),
            )
            for item in data.get("rounds", ())
        )
        return cls(
            **{
                **dict(data),
                "proposal": tuple(TargetPosition(**item) for item in data["proposal"]),
                "objections": tuple(objection(item) for item in data["objections"]),
                "quant": QuantValidation(**quant),
                "targets": tuple(TargetPosition(**item) for item in data["targets"]),
                "rounds": rounds,
                "revised": tuple(TargetPosition(**item) for item in data.get("revised", ())),
            }
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a debate record cannot hold a non-finite number")
    return value


LOW_CERTAINTY = 0.6
"""A verdict whose confidence is below this is labelled ``low-certainty`` (chain and reports)."""


def certainty_label(confidence: float | None) -> str:
    """Return ``"low-certainty"`` for a confidence under :data:`LOW_CERTAINTY`, else ``""``."""
    if confidence is None or not math.isfinite(confidence):
        return ""
    return "low-certainty" if confidence < LOW_CERTAINTY else ""


# --------------------------------------------------------------------------- the debate
def _severity(ratio: float) -> float:
    return min(max(ratio - 0.5, 0.0), 1.0)


def _level(severity: float) -> SeverityLevel:
    if severity < 1.0 / 3.0:
        return "low"
    return "medium" if severity < 2.0 / 3.0 else "high"


def _objection(
    topic: Topic,
    figure: float,
    limit: float,
    symbol: str | None,
    detail: dict[str, float],
    what: str,
) -> Objection:
    severity = _severity(figure / limit)
    level = _level(severity)
    where = f" ({symbol})" if symbol else ""
    return Objection(
        topic=topic,
        severity=severity,
        level=level,
        figure=figure,
        limit=limit,
        symbol=symbol,
        detail=detail,
        message=f"{what}{where} is {figure:.2%} against a limit of {limit:.2%}: {level} concern",
    )


def _finite_or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) else fallback


def _objections(
    targets: Sequence[TargetPosition], perception: Perception, equity: float, cfg: DebateConfig
) -> tuple[Objection, ...]:
    risks = {t.symbol: perception.asset(t.symbol) for t in targets}
    weights = {t.symbol: abs(t.weight) for t in targets}
    total = sum(weights.values())
    # Unknown figures are taken at their worst plausible value: a name we cannot measure is
    # not a name we may call safe.
    vols = {s: _finite_or(risks[s].volatility, 2.0 * cfg.vol_limit) for s in risks}
    falls = {s: _finite_or(risks[s].max_drawdown, 1.0) for s in risks}
    ordered = sorted(risks)

    portfolio_vol = sum(weights[s] * vols[s] for s in ordered)
    loudest = max(ordered, key=lambda s: (weights[s] * vols[s], s))
    volatility = _objection(
        "volatility",
        portfolio_vol,
        cfg.vol_limit,
        loudest,
        {"gross_weight": total, "largest_contribution": weights[loudest] * vols[loudest]},
        "volatility of the targets at correlation 1",
    )

    mean_fall = sum(weights[s] * falls[s] for s in ordered) / total if total > 0 else 0.0
    worst = max(ordered, key=lambda s: (falls[s], s))
    drawdown = _objection(
        "drawdown",
        mean_fall,
        cfg.drawdown_limit,
        worst,
        {"worst_max_drawdown": falls[worst], "worst_current_drawdown": risks[worst].drawdown},
        "weighted maximum drawdown over the last year",
    )

    largest = max(ordered, key=lambda s: (weights[s], s))
    hhi = sum((weights[s] / total) ** 2 for s in ordered) if total > 0 else 0.0
    concentration = _objection(
        "concentration",
        weights[largest],
        cfg.concentration_limit,
        largest,
        {"herfindahl": hhi, "effective_names": 1.0 / hhi if hhi > 0 else 0.0},
        "largest single-name weight",
    )

    participation = {}
    for s in ordered:
        turnover = risks[s].avg_turnover
        notional = weights[s] * equity
        participation[s] = (
            notional / turnover if math.isfinite(turnover) and turnover > 0 else math.inf
        )
    thinnest = max(ordered, key=lambda s: (participation[s], s))
    # An unmeasurable turnover counts as twice the limit (severity 1.5 -> clipped to 1).
    worst_share = _finite_or(participation[thinnest], 2.0 * cfg.participation_limit)
    liquidity = _objection(
        "liquidity",
        worst_share,
        cfg.participation_limit,
        thinnest,
        {"notional": weights[thinnest] * equity, "avg_turnover": risks[thinnest].avg_turnover},
        "largest order as a share of average daily turnover",
    )
    # Names still falling from their high: the weighted current drawdown (unknown = the
    # worst plausible, a full fall).
    current = {s: _finite_or(risks[s].drawdown, 1.0) for s in risks}
    mean_current = sum(weights[s] * current[s] for s in ordered) / total if total > 0 else 0.0
    deepest = max(ordered, key=lambda s: (current[s], s))
    falling = _objection(
        "falling",
        mean_current,
        cfg.current_drawdown_limit,
        deepest,
        {"deepest_current_drawdown": current[deepest]},
        "weighted current drawdown from the one-year high",
    )
    return (volatility, drawdown, concentration, liquidity, falling)


def _raised(candidates: Sequence[Objection], cfg: DebateConfig) -> tuple[Objection, ...]:
    """Return the objections worth raising: severity above ``raise_min_severity``, or the
    single most severe one when none is (the judge always has a risk figure)."""
    raised = tuple(o for o in candidates if o.severity > cfg.raise_min_severity)
    if raised:
        return raised
    return (max(candidates, key=lambda o: (o.severity, -TOPICS.index(o.topic))),)


def _revise(
    targets: Sequence[TargetPosition],
    objections: Sequence[Objection],
    perception: Perception,
    equity: float,
    cfg: DebateConfig,
    original: Mapping[str, float] | None = None,
) -> tuple[tuple[TargetPosition, ...], tuple[Revision, ...]]:
    """Return the proposal revised to answer every objection at ``reduce_risk`` or above.

    Each answer brings its figure to ``revision_target`` x its limit: ``volatility`` scales
    every name; ``concentration`` caps each weight; ``liquidity`` caps each order's share of
    turnover; ``drawdown`` and ``falling`` cap each name whose own (maximum / current)
    drawdown ``d`` is above the target ``g`` at ``g / d`` of its weight in the **original**
    proposal (``original``: symbol -> absolute weight; the targets' own weights when
    ``None``). A name takes the smallest factor any answer asks of it.

    The drawdown answers are caps on the original weight, not factors on the current one,
    because their figures are weighted means of per-name properties that no resizing
    changes: a later round raises the same objection again, and a factor applied to the
    already-cut weight would cut the name again in every round (two rounds took a name to
    ``(g / d) ** 2`` of its weight, 2% of it for a name 60% below its high). As caps they
    answer once: a second round asks nothing more of a name already at its cap.
    """
    factor = {t.symbol: 1.0 for t in targets}
    topic_of: dict[str, str] = {}

    def cut(symbol: str, value: float, topic: str) -> None:
        if value < factor[symbol] - 1e-12:
            factor[symbol] = max(value, 0.0)
            topic_of[symbol] = topic

    for objection in objections:
        if objection.severity < cfg.reduce_risk:
            continue
        goal = cfg.revision_target * objection.limit
        for target in targets:
            risk = perception.asset(target.symbol)
            weight = abs(target.weight)
            if objection.topic == "volatility" and objection.figure > 0:
                cut(target.symbol, goal / objection.figure, "volatility")
            elif objection.topic == "concentration" and weight > goal:
                cut(target.symbol, goal / weight, "concentration")
            elif objection.topic == "liquidity":
                turnover = risk.avg_turnover
                share = (
                    weight * equity / turnover if math.isfinite(turnover) and turnover > 0 else 0
                )
                if not (math.isfinite(turnover) and turnover > 0):
                    cut(target.symbol, 0.5, "liquidity")
                elif share > goal:
                    cut(target.symbol, goal / share, "liquidity")
            elif objection.topic in ("drawdown", "falling"):
                own = risk.max_drawdown if objection.topic == "drawdown" else risk.drawdown
                own = _finite_or(own, 1.0)
                base = weight if original is None else original.get(target.symbol, weight)
                if own > goal and weight > 0:
                    cut(target.symbol, (goal / own) * base / weight, objection.topic)
    revised = tuple(t.scaled(factor[t.symbol]) for t in targets)
    revisions = tuple(
        Revision(topic=topic_of[t.symbol], symbol=t.symbol, before=t.weight, after=r.weight)  # type: ignore[arg-type]
        for t, r in zip(targets, revised, strict=True)
        if t.symbol in topic_of
    )
    return revised, revisions


def _rounds(
    proposal: tuple[TargetPosition, ...], perception: Perception, equity: float, cfg: DebateConfig
) -> tuple[tuple[TargetPosition, ...], tuple[DebateRound, ...]]:
    """Return the final proposal and the rounds: object, revise, object again, up to
    ``max_rounds`` revisions; stop early when nothing reaches ``reduce_risk`` or a revision
    changes nothing."""
    current = proposal
    original = {t.symbol: abs(t.weight) for t in proposal}
    rounds: list[DebateRound] = []
    for number in range(cfg.max_rounds + 1):
        candidates = _objections(current, perception, equity, cfg)
        raised = _raised(candidates, cfg)
        revisions: tuple[Revision, ...] = ()
        revised = current
        if number < cfg.max_rounds and max(o.severity for o in raised) >= cfg.reduce_risk:
            revised, revisions = _revise(current, raised, perception, equity, cfg, original)
        rounds.append(
            DebateRound(
                number=number,
                gross_weight=sum(abs(t.weight) for t in current),
                considered={o.topic: o.severity for o in candidates},
                objections=raised,
                revisions=revisions,
            )
        )
        if not revisions:
            break
        current = revised
    return current, tuple(rounds)


def _quant(
    targets: Sequence[TargetPosition],
    stats: Mapping[str, Mapping[str, RegimeStats]],
    regime: str,
    cfg: DebateConfig,
) -> QuantValidation:
    evidence: dict[str, GenomeEvidence] = {}
    for genome_id in sorted({t.genome_id for t in targets}):
        per_regime = stats.get(genome_id, {})
        own = per_regime.get(regime)
        if own is not None and own.trades >= cfg.min_trades:
            used, pooled, trades = regime, False, own.trades
            win_rate, expected = own.win_rate, own.expected_return
        else:
            trades = sum(item.trades for item in per_regime.values())
            used, pooled = "all", True
            if trades > 0:
                win_rate = sum(i.trades * i.win_rate for i in per_regime.values()) / trades
                expected = sum(i.trades * i.expected_return for i in per_regime.values()) / trades
            else:
                win_rate, expected = 0.0, 0.0
        evidence[genome_id] = GenomeEvidence(
            genome_id=genome_id,
            regime_used=used,
            pooled=pooled,
            trades=trades,
            win_rate=win_rate,
            expected_return=expected,
        )
    weight_of: dict[str, float] = {}
    for target in targets:
        weight_of[target.genome_id] = weight_of.get(target.genome_id, 0.0) + abs(target.weight)
    total = sum(weight_of.values())
    ids = sorted(evidence)
    if total > 0:
        win_rate = sum(weight_of[g] * evidence[g].win_rate for g in ids) / total
        expected = sum(weight_of[g] * evidence[g].expected_return for g in ids) / total
    else:
        win_rate = expected = 0.0
    sample = sum(evidence[g].trades for g in ids)
    pooled_note = (
        " (some pooled over all regimes)" if any(e.pooled for e in evidence.values()) else ""
    )
    return QuantValidation(
        regime=regime,
        sample_size=sample,
        win_rate=win_rate,
        expected_return=expected,
        evidence=tuple(evidence[g] for g in ids),
        message=f"in {regime} regimes{pooled_note}: win rate {win_rate:.1%}, expected trade "
        f"return {expected:+.2%} over {sample} trades",
    )


def _recall(
    targets: Sequence[TargetPosition],
    perception: Perception,
    memory: Sequence[Episode],
    cfg: DebateConfig,
) -> MemoryEvidence:
    """Return the proposal's styles' outcomes in the ``memory_k`` most similar past days."""
    day = date.fromisoformat(perception.date)
    regime = perception.regime
    context = context_of(
        {name: getattr(regime, name) for name in ("trend_return", "index_volatility",
                                                  "vol_percentile", "breadth")}
    )  # fmt: skip
    # The baseline: every past day the recall could draw from (the same eligibility).
    everything = nearest_days(memory, context, day, len(memory))
    neighbours = everything[: cfg.memory_k]
    weight_of: dict[str, float] = {}
    for target in targets:
        weight_of[target.style] = weight_of.get(target.style, 0.0) + abs(target.weight)

    def returns(found: Sequence[Neighbour], style: str) -> list[float]:
        return [
            float(n.episode.outcome["styles"][style])
            for n in found
            if style in (n.episode.outcome.get("styles") or {})
        ]

    styles: list[StyleMemory] = []
    for style in sorted(weight_of):
        found = contrast_of(returns(neighbours, style), returns(everything, style))
        if found is not None:
            styles.append(
                StyleMemory(
                    style=style,
                    days=found.days,
                    mean_return=found.similar,
                    baseline_days=found.baseline_days,
                    baseline_return=found.baseline,
                    baseline_sd=found.baseline_sd,
                )
            )
    sample = sum(
        1
        for n in neighbours
        if any(s in (n.episode.outcome.get("styles") or {}) for s in weight_of)
    )
    known = sum(weight_of[m.style] for m in styles)
    expected = (
        math.fsum(weight_of[m.style] * m.mean_return for m in styles) / known if known > 0 else None
    )
    contrast = t_stat = None
    if known > 0:
        share = {m.style: weight_of[m.style] / known for m in styles}
        contrast = math.fsum(
            share[m.style] * (m.mean_return - (m.baseline_return or 0.0)) for m in styles
        )
        se = math.sqrt(math.fsum(share[m.style] ** 2 * (m.baseline_sd or 0.0) ** 2 / m.days
                                 for m in styles))  # fmt: skip
        t_stat = (
            contrast / se if se > 0 else (0.0 if contrast == 0 else math.copysign(1e9, contrast))
        )
    if not neighbours:
        message = "memory: no past day to compare with yet"
    elif not styles:
        message = f"memory: in the {len(neighbours)} most similar days, none traded these styles"
    else:
        parts = ", ".join(
            f"{m.style} entries returned {m.mean_return:+.2%} on average ({m.days} days; "
            f"{m.baseline_return or 0.0:+.2%} over all {m.baseline_days} past days)"
            for m in styles
        )
        message = f"memory: in the {len(neighbours)} most similar days, {parts}"
    return MemoryEvidence(
        k=cfg.memory_k,
        episode_ids=tuple(n.episode.episode_id for n in neighbours),
        days=tuple(n.episode.day.isoformat() for n in neighbours),
        distances=tuple(n.distance for n in neighbours),
        styles=tuple(styles),
        sample_days=sample,
        expected_return=expected,
        message=message,
        contrast=contrast,
        t_stat=t_stat,
    )


def _judge(
    objections: Sequence[Objection],
    quant: QuantValidation,
    cfg: DebateConfig,
    conservative_weight: float = 0.5,
) -> tuple[Verdict, float, float, str]:
    # The conservative view's weight scales its objections (arena.judge): 1x at 0.5.
    risk = min(max(o.severity for o in objections) * 2.0 * conservative_weight, 1.0)
    n = quant.sample_size
    sample_weight = n / (n + cfg.min_trades)
    if n < cfg.min_trades:
        return "drop", 1.0 - sample_weight, 0.0, f"sample of {n} trades < {cfg.min_trades}"
    if quant.win_rate < cfg.min_win_rate or quant.expected_return <= cfg.min_expected_return:
        return (
            "drop",
            sample_weight,
            0.0,
            f"no edge: win rate {quant.win_rate:.1%} (min {cfg.min_win_rate:.1%}), expected "
            f"{quant.expected_return:+.2%} (must exceed {cfg.min_expected_return:+.2%})",
        )
    if risk >= cfg.drop_risk:
        return "drop", risk, 0.0, f"risk {risk:.2f} >= {cfg.drop_risk:.2f}"
    if risk >= cfg.reduce_risk:
        scale = max(1.0 - risk, cfg.min_scale)
        return (
            "reduce",
            sample_weight * max(risk, 1.0 - risk),
            scale,
            f"risk {risk:.2f} in [{cfg.reduce_risk:.2f}, {cfg.drop_risk:.2f}): scale {scale:.2f}",
        )
    return "execute", sample_weight * (1.0 - risk), 1.0, f"risk {risk:.2f} < {cfg.reduce_risk:.2f}"


def _memory_rule(
    verdict: Verdict,
    confidence: float,
    scale: float,
    rule: str,
    quant: QuantValidation,
    cfg: DebateConfig,
) -> tuple[Verdict, float, float, str]:
    """Resize by what the similar past days say beyond the usual (docs/memory.md).

    With at least ``memory_min_days`` similar days on which the proposal's styles traded and
    a contrast ``c`` (similar days minus every past day, :class:`MemoryEvidence`) with
    ``|t| >= memory_min_t``: ``factor = clip(1 + c / memory_loss_tolerance, memory_floor,
    memory_cap)``. Below 1, and only when the similar days themselves lost money (``m < 0``),
    it multiplies the scale and the confidence and an ``execute`` becomes a ``reduce``;
    above 1, and only when they made money (``m > 0``), it multiplies the scale, at most
    back to the proposal's size (scale 1). Cutting a style that still paid in days like
    these, only less than usual, gives up its profit (seed 401 of the reflection benchmark's
    plain-edge market, before this condition: the memory cut on 41 days and the account
    ended 88,079 below the one without memory and adjustments); a drop stays a drop.
    What every day says alike (the style's unconditional edge) is the quant view's and the
    evolution's to judge, not the memory's: the memory answers "is today different?".
    """
    memory = quant.memory
    if (
        verdict == "drop"
        or memory is None
        or memory.expected_return is None
        or memory.contrast is None
        or memory.t_stat is None
        or memory.sample_days < cfg.memory_min_days
        or abs(memory.t_stat) < cfg.memory_min_t
    ):
        return verdict, confidence, scale, rule
    factor = min(max(1.0 + memory.contrast / cfg.memory_loss_tolerance, cfg.memory_floor),
                 cfg.memory_cap)  # fmt: skip
    said = (
        f"memory: {memory.sample_days} similar days returned {memory.expected_return:+.2%}, "
        f"{memory.contrast:+.2%} against all past days (t {memory.t_stat:+.1f})"
    )
    if factor < 1.0 and memory.expected_return < 0.0:
        return (
            "reduce",
            confidence * factor,
            scale * factor,
            f"{rule}; {said}: size and confidence x {factor:.2f}",
        )
    if factor > 1.0 and memory.expected_return > 0.0 and scale < 1.0:
        grown = min(1.0, scale * factor)
        return verdict, confidence, grown, f"{rule}; {said}: size x {grown / scale:.2f}"
    return verdict, confidence, scale, rule


def run_debate(
    *,
    proposal: Sequence[TargetPosition],
    perception: Perception,
    backtest_stats: Mapping[str, Mapping[str, RegimeStats]],
    equity: float,
    config: DebateConfig | None = None,
    account: str = "synthesis",
    memory: Sequence[Episode] = (),
    judge_weights: tuple[float, float] = (0.5, 0.5),
) -> DebateRecord:
    """Run the synthesis account's debate over the aggressive ``proposal``.

    Parameters
    ----------
    proposal:
        The aggressive account's targets (at least one).
    perception:
        The day's perception: regime and per-asset risk figures (every target's symbol).
    backtest_stats:
        ``genome_id -> regime -> RegimeStats`` from the genomes' backtests.
    equity:
        The synthesis account's equity, to size the orders for the liquidity objection.
    config:
        Thresholds; the defaults of :class:`DebateConfig` when ``None``.
    account:
        Account the record is written for.
    memory:
        Past episodes (:class:`arena.memory.Episode`); only day episodes known before the
        perception's date are recalled (:func:`arena.memory.nearest_days`).
    judge_weights:
        The judge's ``(aggressive, conservative)`` persona weights (:mod:`arena.judge`).

    Raises
    ------
    ValueError
        On an empty proposal, a duplicated symbol or a non-positive equity.
    KeyError
        When a target's symbol is not in the perception.
    """
    cfg = config or DebateConfig()
    targets = tuple(proposal)
    if not targets:
        raise ValueError("run_debate: the proposal has no target")
    symbols = [t.symbol for t in targets]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"run_debate: a symbol appears twice in the proposal: {symbols}")
    if not (math.isfinite(equity) and equity > 0):
        raise ValueError(f"run_debate: equity must be finite and > 0, got {equity!r}")
    w_a, w_c = (float(judge_weights[0]), float(judge_weights[1]))
    if not (0.0 <= w_c <= 1.0 and abs(w_a + w_c - 1.0) <= 1e-9):
        raise ValueError(
            f"run_debate: judge weights must be in [0, 1] and sum to 1, got {judge_weights}"
        )
    regime = perception.regime.regime
    revised, rounds = _rounds(targets, perception, float(equity), cfg)
    objections = rounds[-1].objections
    quant = _quant(revised, backtest_stats, regime, cfg)
    recall = _recall(revised, perception, memory, cfg)
    quant = replace(quant, memory=recall, message=f"{quant.message}; {recall.message}")
    verdict, confidence, scale, rule = _judge(objections, quant, cfg, w_c)
    verdict, confidence, scale, rule = _memory_rule(verdict, confidence, scale, rule, quant, cfg)
    if len(rounds) > 1:
        rule = f"after {len(rounds) - 1} revision round(s): {rule}"
    return DebateRecord(
        date=perception.date,
        account=account,
        regime=regime,
        equity=float(equity),
        proposal=targets,
        objections=objections,
        quant=quant,
        verdict=verdict,
        confidence=min(max(confidence, 0.0), 1.0),
        scale=scale,
        targets=tuple(t.scaled(scale) for t in revised),
        rule=rule,
        config_hash=cfg.stable_hash(),
        rounds=rounds,
        revised=revised,
        judge_weights={"aggressive": w_a, "conservative": w_c},
    )
