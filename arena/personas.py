"""The arena's configuration: starting capital, the three personas, risk limits, the debate.

The defaults below are the ones written in the packaged ``alphaloop/configs/arena.yaml`` (a test
keeps them equal).
Paper only: ``broker`` accepts the single value ``paper``; naming any other broker, or adding a
``live`` (or any broker-credential) key, is a :class:`~alphaloop.errors.ConfigError` that says
so. There is no live broker adapter to configure.

A persona picks genomes with :func:`score_genome` / :func:`select_genomes`: a genome of a
preferred style, allowed in today's regime, scores its fitness times the persona's weight of
the regime; the best ``max_positions`` with a positive score are kept. Genomes on probation
(gate candidates earning promotion on paper) are chosen apart: every eligible one trades, on
``probation_share`` of the persona's budget each (``max_probation_share`` of it at most, shared
equally when more ask), and the champions (or the bootstrap set) share the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from alphaloop.config import FrozenConfig, load_config
from arena.adjustments import AdjustmentConfig
from arena.debate import DebateConfig
from arena.risk import RiskLimits
from genome.bounds import REGIMES, STYLES

__all__ = [
    "PERSONA_NAMES",
    "ArenaConfig",
    "GenomeCandidate",
    "PersonaConfig",
    "Personas",
    "load_arena_config",
    "score_genome",
    "select_genomes",
]

PERSONA_NAMES: tuple[str, ...] = ("aggressive", "conservative", "synthesis")
Style = Literal["trend", "mean_reversion", "breakout", "defensive"]
# Keys that would only make sense with a real broker; each is refused with a paper-only message.
_LIVE_KEYS: tuple[str, ...] = ("live", "live_broker", "broker_api", "api_key", "api_secret")
PAPER_ONLY = (
    "AlphaLoop Lab trades on paper only: the only broker is 'paper' and no live broker "
    "adapter exists"
)


class PersonaConfig(FrozenConfig):
    """One account's character.

    ``risk_budget`` is the share of equity the account may invest; ``preferred_styles`` the
    genome styles it trades; ``max_positions`` the most names it holds; ``regime_weights`` how
    much it trusts its genomes in each regime (0 = stand aside, 1 = full size).
    """

    risk_budget: float = Field(gt=0.0, le=1.5)
    preferred_styles: tuple[Style, ...]
    max_positions: int = Field(ge=1, le=200)
    regime_weights: dict[str, float]

    @field_validator("preferred_styles")
    @classmethod
    def _unique_styles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"needs at least one style of {', '.join(STYLES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"a style is listed twice: {list(value)}")
        return value

    @field_validator("regime_weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(REGIMES))
        missing = [regime for regime in REGIMES if regime not in value]
        if unknown or missing:
            raise ValueError(
                f"needs exactly the regimes {', '.join(REGIMES)} "
                f"(unknown: {unknown or 'none'}, missing: {missing or 'none'})"
            )
        for regime, weight in value.items():
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"weight of {regime} must be in [0, 1], got {weight}")
        if max(value.values()) <= 0.0:
            raise ValueError("at least one regime weight must be > 0, or the persona never trades")
        return {regime: float(value[regime]) for regime in REGIMES}

    def regime_weight(self, regime: str) -> float:
        """Return the weight of ``regime``; an ``unknown`` regime gets the smallest weight."""
        if regime in self.regime_weights:
            return self.regime_weights[regime]
        return min(self.regime_weights.values())


def _weights(bull: float, bear: float, range_: float, high_vol: float) -> dict[str, float]:
    return {"bull": bull, "bear": bear, "range": range_, "high_vol": high_vol}


class Personas(FrozenConfig):
    """The three accounts' personas."""

    aggressive: PersonaConfig = PersonaConfig(
        risk_budget=0.9,
        preferred_styles=("trend", "breakout"),
        max_positions=8,
        regime_weights=_weights(1.0, 0.5, 0.6, 0.4),
    )
    conservative: PersonaConfig = PersonaConfig(
        risk_budget=0.4,
        preferred_styles=("defensive", "mean_reversion"),
        max_positions=5,
        regime_weights=_weights(0.8, 0.3, 1.0, 0.2),
    )
    synthesis: PersonaConfig = PersonaConfig(
        risk_budget=0.65,
        preferred_styles=("trend", "breakout", "mean_reversion", "defensive"),
        max_positions=8,
        regime_weights=_weights(1.0, 0.4, 0.8, 0.3),
    )

    def get(self, name: str) -> PersonaConfig:
        """Return the persona of account ``name``."""
        if name not in PERSONA_NAMES:
            raise KeyError(f"no persona {name!r}; the accounts are {', '.join(PERSONA_NAMES)}")
        persona: PersonaConfig = getattr(self, name)
        return persona


class ArenaConfig(FrozenConfig):
    """Everything the daily arena is configured by (``alphaloop/configs/arena.yaml``)."""

    # At least one minor unit (0.01 in every market's currency: arena.money.MoneyUnits) and at
    # most a trillion, so every amount of the exact-money ledger fits an int64 with room for
    # the positions' value (a capital of 1e30 overflowed it; one of 0.001 rounded to 0).
    starting_capital: float = Field(default=1_000_000.0, ge=0.01, le=1e12, allow_inf_nan=False)
    broker: Literal["paper"] = "paper"
    personas: Personas = Personas()
    risk: RiskLimits = RiskLimits()
    debate: DebateConfig = DebateConfig()
    adjustments: AdjustmentConfig = AdjustmentConfig()
    probation_share: float = Field(
        default=0.05,
        gt=0.0,
        le=0.5,
        description="share of a persona's budget each probation genome trades with",
    )
    max_probation_share: float = Field(
        default=0.3, gt=0.0, le=1.0, description="most of a persona's budget probation takes"
    )

    @model_validator(mode="before")
    @classmethod
    def _paper_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            live = sorted(str(key) for key in data if str(key).lower() in _LIVE_KEYS)
            if live:
                raise ValueError(f"key {live[0]!r} is not allowed: {PAPER_ONLY}")
            broker = data.get("broker", "paper")
            if broker != "paper":
                raise ValueError(f"broker {broker!r} is not allowed: {PAPER_ONLY}")
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> ArenaConfig:
        invested = 1.0 - self.risk.min_cash_fraction
        for name in PERSONA_NAMES:
            persona = self.personas.get(name)
            if persona.risk_budget > invested + 1e-12:
                raise ValueError(
                    f"personas.{name}.risk_budget ({persona.risk_budget}) exceeds what the cash "
                    f"floor leaves to invest (1 - risk.min_cash_fraction = {invested:g})"
                )
            if persona.risk_budget > self.risk.max_gross_leverage:
                raise ValueError(
                    f"personas.{name}.risk_budget ({persona.risk_budget}) exceeds "
                    f"risk.max_gross_leverage ({self.risk.max_gross_leverage})"
                )
        aggressive = self.personas.aggressive.risk_budget
        conservative = self.personas.conservative.risk_budget
        synthesis = self.personas.synthesis.risk_budget
        if not conservative <= synthesis <= aggressive:
            raise ValueError(
                "risk budgets must satisfy conservative <= synthesis <= aggressive, got "
                f"{conservative} / {synthesis} / {aggressive}"
            )
        return self


def load_arena_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> ArenaConfig:
    """Load the packaged ``arena.yaml``, the user file ``path`` over it, then ``overrides``.

    Raises
    ------
    ConfigError
        Naming the file and the key on any bad value, or the paper-only rule.
    """
    return load_config(ArenaConfig, path, default_name="arena.yaml", overrides=overrides)


# --------------------------------------------------------------------------- genome choice
@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeCandidate:
    """What a persona needs to know of a gene-pool genome to pick it.

    ``fitness`` is the gene pool's score (higher is better; 0-100 in the lab's scoring).
    ``bootstrap`` marks a genome of the bootstrap set, which a persona trades only while no
    champion is eligible for it (:mod:`arena.bootstrap`).
    """

    genome_id: str
    style: str
    regimes: tuple[str, ...]
    fitness: float
    probation: bool = False
    bootstrap: bool = False


def score_genome(persona: PersonaConfig, candidate: GenomeCandidate, regime: str) -> float:
    """Return the persona's score of ``candidate`` in ``regime`` (0 = not eligible).

    Eligible: a preferred style and, when the regime is known, allowed by the genome. The
    score is ``max(fitness, 0) * regime weight``.
    """
    if candidate.style not in persona.preferred_styles:
        return 0.0
    if regime in REGIMES and regime not in candidate.regimes:
        return 0.0
    return max(candidate.fitness, 0.0) * persona.regime_weight(regime)


def select_genomes(
    persona: PersonaConfig,
    candidates: Sequence[GenomeCandidate],
    regime: str,
    *,
    limit: int | None = None,
) -> list[GenomeCandidate]:
    """Return up to ``limit`` (default ``max_positions``) eligible candidates, best score first
    (ties by id)."""
    scored = [(score_genome(persona, c, regime), c) for c in candidates]
    kept = [item for item in scored if item[0] > 0.0]
    kept.sort(key=lambda item: (-item[0], item[1].genome_id))
    return [candidate for _, candidate in kept[: persona.max_positions if limit is None else limit]]
