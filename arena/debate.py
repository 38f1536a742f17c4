"""The synthesis account's debate: propose, object, validate, judge. Rule-based, no LLM.

:func:`run_debate` is a pure function of its inputs (same inputs, same record, bit for bit):

1. **Proposal**: the aggressive account's target positions (weights of equity, with the genome
   id, style and signal behind each).
2. **Objections** (the conservative view): always four, each with its figures and a severity
   in ``[0, 1]`` (labelled low / medium / high):

   * ``volatility``: the targets' annualised volatility assuming perfect correlation
     (``sum(|w_i| * vol_i)``, the conservative bound) against ``vol_limit``;
   * ``drawdown``: the weighted mean of the targets' maximum drawdowns over the last year
     against ``drawdown_limit`` (the worst name is reported too);
   * ``concentration``: the largest target weight against ``concentration_limit`` (the
     Herfindahl index and the effective number of names are reported);
   * ``liquidity``: the largest order as a share of the name's average daily turnover
     against ``participation_limit``.

   With ``ratio = figure / limit`` the severity is ``clip(ratio - 0.5, 0, 1)``: nothing below
   half the limit, 0.5 at the limit, 1 at one and a half times it.
3. **Quant validation**: each genome's backtest trades in the day's regime (the "similar
   regime"); when that regime has fewer than ``min_trades`` trades, or the regime is unknown,
   all regimes pooled, flagged ``pooled``. The win rate and the expected (mean) trade return
   are averaged with the targets' absolute weights; the sample is the sum of trades.
4. **Judge**: with ``risk`` = the largest severity and ``s = n / (n + min_trades)``:

   ==========================================================  =======  =====================
   condition (the first that holds)                            verdict  confidence
   ==========================================================  =======  =====================
   ``n < min_trades``                                          drop     ``1 - s``
   ``win_rate < min_win_rate`` or ``expected <= min_expected``  drop     ``s``
   ``risk >= drop_risk``                                       drop     ``risk``
   ``risk >= reduce_risk``                                     reduce   ``s*max(risk, 1-risk)``
   otherwise                                                   execute  ``s * (1 - risk)``
   ==========================================================  =======  =====================

   A reduced proposal is scaled by ``max(1 - risk, min_scale)``; a dropped one by 0. A scaled
   target keeps its genome ``sources``, so the day's P&L can still be attributed to them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from arena.ledger import GenomeShares, validate_shares
from arena.perceive import Perception

__all__ = [
    "DebateConfig",
    "DebateRecord",
    "Objection",
    "QuantValidation",
    "RegimeStats",
    "TargetPosition",
    "run_debate",
]

Verdict = Literal["execute", "reduce", "drop"]
SeverityLevel = Literal["low", "medium", "high"]
RULE_VERSION = 1


class DebateConfig(FrozenConfig):
    """Thresholds of the conservative view and of the judge (see the module docstring)."""

    vol_limit: float = Field(default=0.25, gt=0.0)
    drawdown_limit: float = Field(default=0.20, gt=0.0, le=1.0)
    concentration_limit: float = Field(default=0.30, gt=0.0, le=1.0)
    participation_limit: float = Field(default=0.05, gt=0.0, le=1.0)
    min_trades: int = Field(default=30, ge=1)
    min_win_rate: float = Field(default=0.45, ge=0.0, le=1.0)
    min_expected_return: float = 0.0
    reduce_risk: float = Field(default=0.34, gt=0.0, le=1.0)
    drop_risk: float = Field(default=0.9, gt=0.0, le=1.0)
    min_scale: float = Field(default=0.1, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_order(self) -> DebateConfig:
        if self.reduce_risk >= self.drop_risk:
            raise ValueError(
                f"reduce_risk ({self.reduce_risk}) must be below drop_risk ({self.drop_risk})"
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

    topic: Literal["volatility", "drawdown", "concentration", "liquidity"]
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
class QuantValidation:
    """The quant view: the proposal's genomes in regimes like today's."""

    regime: str
    sample_size: int
    win_rate: float
    expected_return: float
    evidence: tuple[GenomeEvidence, ...]
    message: str


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

    def __post_init__(self) -> None:
        if self.verdict not in ("execute", "reduce", "drop"):
            raise ValueError(f"verdict must be execute, reduce or drop, got {self.verdict!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if len(self.objections) < 3:
            raise ValueError("a debate needs at least three objections")

    @property
    def record_id(self) -> str:
        """Return a content hash of the record (16 hex digits)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (plain types only)."""
        return _plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DebateRecord:
        """Rebuild a record from :meth:`to_dict` output (e.g. after a JSON round trip)."""
        quant = dict(data["quant"])
        quant["evidence"] = tuple(GenomeEvidence(**item) for item in quant["evidence"])
        return cls(
            **{
                **dict(data),
                "proposal": tuple(TargetPosition(**item) for item in data["proposal"]),
                "objections": tuple(
                    Objection(**{**item, "detail": dict(item["detail"])})
                    for item in data["objections"]
                ),
                "quant": QuantValidation(**quant),
                "targets": tuple(TargetPosition(**item) for item in data["targets"]),
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


# --------------------------------------------------------------------------- the debate
def _severity(ratio: float) -> float:
    return min(max(ratio - 0.5, 0.0), 1.0)


def _level(severity: float) -> SeverityLevel:
    if severity < 1.0 / 3.0:
        return "low"
    return "medium" if severity < 2.0 / 3.0 else "high"


def _objection(
    topic: Literal["volatility", "drawdown", "concentration", "liquidity"],
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
    return (volatility, drawdown, concentration, liquidity)


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


def _judge(
    objections: Sequence[Objection], quant: QuantValidation, cfg: DebateConfig
) -> tuple[Verdict, float, float, str]:
    risk = max(o.severity for o in objections)
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


def run_debate(
    *,
    proposal: Sequence[TargetPosition],
    perception: Perception,
    backtest_stats: Mapping[str, Mapping[str, RegimeStats]],
    equity: float,
    config: DebateConfig | None = None,
    account: str = "synthesis",
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
    regime = perception.regime.regime
    objections = _objections(targets, perception, float(equity), cfg)
    quant = _quant(targets, backtest_stats, regime, cfg)
    verdict, confidence, scale, rule = _judge(objections, quant, cfg)
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
        targets=tuple(t.scaled(scale) for t in targets),
        rule=rule,
        config_hash=cfg.stable_hash(),
    )
