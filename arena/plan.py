"""The plan stage of the arena's day: genome readings, persona selection, debate, targets.

:func:`plan_day` (driver, once per day ``D``): :func:`arena.perceive.perceive` reads the
daily bars up to the close of ``D-1`` only, and the genomes are compiled on that cut panel
alone (its last :data:`HISTORY_BARS` bars), so no bar of ``D`` or later can reach a
decision. Each genome is backtested over the last :data:`TRADE_BARS` of that history
(:func:`read_genome`); its **target weights** are the positions its backtest holds at the
close of ``D-1`` (value / equity) and its **regime statistics** (closed trades, win rate,
mean trade return, by the regime at entry) feed the debate's quant view. Each persona picks
genomes with :func:`arena.personas.select_genomes` among the champions, or, when none is
eligible for it that day, among the bootstrap genomes (every genome on probation trades
too); its budget is ``risk_budget x regime weight``, shared equally by its genomes (a
genome's weights are scaled to sum at most 1), each name capped at the risk limit's weight,
only the ``max_positions`` largest kept; each target's ``sources`` are the genomes whose
sleeves asked for the name, with their shares of its weight (the largest is its
``genome_id``). The synthesis account debates the aggressive targets
(:func:`arena.debate.run_debate`); the judge's verdict scales them, and the result is scaled
by the synthesis / aggressive risk budgets.

**Adjustments.** The daily review's adjustments in force on ``D`` (:mod:`arena.adjustments`)
change the personas' ``risk_budget`` / ``max_positions`` and tighten an account's governor
limits before anything is planned (:func:`arena.adjustments.effective_settings`); each
account's plan carries its limits (``risk``) and participation cap for the trade stage, and
its decision lists the adjustments under ``"adjustments"``. With none in force the plan is
the configured one, field for field.

**Kill switch.** While the lab is paused (:mod:`arena.kill_switch`), :func:`pause_plan`
turns the day's plan into one without targets or genome sleeves, carrying the pause (the
trade stage then asks for no order, or with ``flatten`` only the sells closing the
positions: :mod:`arena.trade`).

The result is plain values (:class:`DayPlan`: one :class:`AccountPlan` per account, each
with its decision payload and id), the input of the trade stage.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np

from arena.adjustments import AccountSettings, Adjustment, effective_settings
from arena.bootstrap import ArenaGenome
from arena.debate import DebateRecord, RegimeStats, TargetPosition, run_debate
from arena.kill_switch import Pause
from arena.memory import Episode
from arena.perceive import Perception, perceive, perception_cutoff
from arena.personas import PERSONA_NAMES, ArenaConfig, PersonaConfig, select_genomes
from arena.risk import RiskLimits
from genome.cache import IndicatorCache
from genome.compile import compile_and_backtest
from genome.regime import classify_regimes
from simulators.bars import Panel

# Bars of daily history a day is planned from (one year of warm-up + two of backtest).
HISTORY_BARS = 756


TRADE_BARS = 504


_REGIME_LABELS = ("bull", "bear", "range", "high_vol")


@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeReading:
    """What one genome says at the close of ``D-1``: target weights and regime statistics."""

    genome_id: str
    style: str
    source: str
    weights: Mapping[str, float]
    stats: Mapping[str, RegimeStats]


def read_genome(
    item: ArenaGenome, past: Panel, regimes: np.ndarray, cache: IndicatorCache
) -> GenomeReading:
    """Backtest ``item`` on ``past`` and read its positions at the last bar.

    ``regimes`` are ``classify_regimes(past)``; ``cache`` an indicator cache of ``past``.
    """
    start = max(0, past.n_bars - TRADE_BARS)
    if past.n_bars - start < 2:
        return GenomeReading(
            genome_id=item.genome.id, style=item.genome.style, source=item.source,
            weights={}, stats={},
        )  # fmt: skip
    result = compile_and_backtest(item.genome, past, cache=cache, start=start)
    equity = float(result.equity.iloc[-1])
    held = result.positions.iloc[-1]
    closes = past.close[-1]
    weights: dict[str, float] = {}
    if equity > 0:
        for column, symbol in enumerate(past.symbols):
            size = float(held.get(symbol, 0.0))
            price = float(closes[column])
            if size > 0 and math.isfinite(price) and price > 0:
                weights[symbol] = size * price / equity
    stats: dict[str, RegimeStats] = {}
    trades = result.trades
    if len(trades):
        closed = trades[trades["exit_reason"] != "open"]
        cost = closed["entry_price"].to_numpy(float) * closed["size"].to_numpy(float)
        pnl = closed["pnl"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(cost > 0, pnl / cost, 0.0)
        codes = regimes[start + closed["entry_idx"].to_numpy(int)]
        for code, label in enumerate(_REGIME_LABELS):
            mask = codes == code
            if mask.any():
                stats[label] = RegimeStats(
                    trades=int(mask.sum()),
                    win_rate=float((pnl[mask] > 0).mean()),
                    expected_return=float(np.nan_to_num(returns[mask]).mean()),
                )
    return GenomeReading(
        genome_id=item.genome.id, style=item.genome.style, source=item.source,
        weights=weights, stats=stats,
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountPlan:
    """One account's targets for the day and the decision chain behind them.

    ``pause`` is the lab's pause when the kill switch is on (:func:`pause_plan`): the account
    then places no order, or with ``flatten`` only the sells that close its positions.
    """

    account: str
    day: date
    regime: str
    targets: tuple[TargetPosition, ...]
    decision_id: str
    decision: Mapping[str, Any]
    pause: Pause | None = None
    risk: RiskLimits | None = None
    """The governor's limits when adjustments tightened them (``None``: ``config.risk``)."""
    participation_cap: float | None = None
    """The fill model's participation cap when an adjustment lowered it (``None``: the
    broker's)."""
    adjustments: tuple[Mapping[str, Any], ...] = ()
    """The adjustments in force for this account (:meth:`Adjustment.to_dict`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPlan:
    """Everything decided before the open of ``day`` (from bars up to ``D-1`` only)."""

    day: date
    perception: Perception
    accounts: Mapping[str, AccountPlan]
    debate: DebateRecord | None

    @property
    def regime(self) -> str:
        """Return the day's regime label."""
        return self.perception.regime.regime


def _decision_id(account: str, day: date, payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{account}-{day.isoformat()}-{digest}"


def sleeves(
    persona: PersonaConfig,
    main: Sequence[str],
    probation: Sequence[str],
    regime: str,
    config: ArenaConfig,
) -> dict[str, float]:
    """Return each chosen genome's sleeve: the share of equity it trades with today.

    The persona's budget is ``risk_budget x regime weight``. Each probation genome gets
    ``probation_share`` of it (all of them together at most ``max_probation_share``, shared
    equally when more ask); the main genomes share the rest equally, or the whole budget when
    none is on probation.
    """
    budget = persona.risk_budget * persona.regime_weight(regime)
    each = 0.0
    if probation:
        each = min(config.probation_share, config.max_probation_share / len(probation)) * budget
    rest = budget - each * len(probation)
    out = {gid: rest / len(main) for gid in main}
    out.update({gid: each for gid in probation})
    return out


def _blend(
    persona: PersonaConfig,
    chosen: Mapping[str, float],
    readings: Mapping[str, GenomeReading],
    max_weight: float,
) -> tuple[TargetPosition, ...]:
    if not chosen:
        return ()
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, str, str]] = {}
    parts: dict[str, dict[str, float]] = {}
    for genome_id, sleeve in chosen.items():
        reading = readings[genome_id]
        gross = sum(reading.weights.values())
        scale = 1.0 / gross if gross > 1.0 else 1.0
        for symbol, weight in sorted(reading.weights.items()):
            part = sleeve * weight * scale
            totals[symbol] = totals.get(symbol, 0.0) + part
            if part > 0:
                by_genome = parts.setdefault(symbol, {})
                by_genome[genome_id] = by_genome.get(genome_id, 0.0) + part
            if symbol not in best or part > best[symbol][0]:
                best[symbol] = (part, genome_id, reading.style)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    kept = [(s, min(w, max_weight)) for s, w in ranked[: persona.max_positions] if w > 0]
    return tuple(
        TargetPosition(
            symbol=s, weight=w, genome_id=best[s][1], style=best[s][2],
            sources=_sources(parts[s]),
        )
        for s, w in sorted(kept)
    )  # fmt: skip


def _sources(parts: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    # Each sleeve's part of the name over their sum: the cap on the name's weight scales
    # every part alike, so the shares are those of the uncapped weight.
    total = math.fsum(parts.values())
    return tuple((genome_id, part / total) for genome_id, part in sorted(parts.items()))


def plan_day(
    daily: Panel,
    day: date,
    genomes: Sequence[ArenaGenome],
    config: ArenaConfig,
    equities: Mapping[str, float],
    *,
    memory: Sequence[Episode] = (),
    judge_weights: tuple[float, float] = (0.5, 0.5),
    adjustments: Sequence[Adjustment] = (),
    participation_cap: float | None = None,
) -> DayPlan:
    """Decide every account's targets for ``day`` from the bars up to the close of ``D-1``.

    Parameters
    ----------
    daily:
        The daily panel (it may hold later bars: they are cut off first).
    day:
        The trading day to plan.
    genomes:
        The genomes the arena may trade (:func:`arena.bootstrap.arena_genomes`).
    config:
        The arena configuration.
    equities:
        Each account's equity at the close of ``D-1`` (the synthesis account's sizes the
        debate's liquidity objection).
    memory, judge_weights:
        The experience memory and the judge's persona weights, passed to the debate
        (:func:`arena.debate.run_debate`).
    adjustments:
        The stored adjustments; those in force on ``day`` apply (module docstring).
    participation_cap:
        The broker's participation cap (the base of a ``participation_cap`` adjustment).
    """
    perception = perceive(daily, day)
    past = daily.truncate_after(perception_cutoff(daily, day))
    past = past.slice_bars(max(0, past.n_bars - HISTORY_BARS), past.n_bars)
    regime = perception.regime.regime
    candidates = [item.candidate() for item in genomes]
    by_id = {item.genome.id: item for item in genomes}
    settings = effective_settings(config, adjustments, day, participation_cap=participation_cap)
    personas = {name: settings[name].persona for name in PERSONA_NAMES}
    chosen: dict[str, dict[str, float]] = {}
    for name in PERSONA_NAMES:
        persona = personas[name]
        champions = [c for c in candidates if not c.probation and not c.bootstrap]
        trial = [c for c in candidates if c.probation]
        # The bootstrap genomes of the persona's styles stand in only when no champion is
        # eligible for it today.
        picked = [c.genome_id for c in select_genomes(persona, champions, regime)] or [
            c.genome_id
            for c in select_genomes(persona, [c for c in candidates if c.bootstrap], regime)
        ]
        # Every eligible genome on probation trades (it needs a paper record), best first.
        on_probation = [
            c.genome_id for c in select_genomes(persona, trial, regime, limit=len(trial))
        ]
        chosen[name] = sleeves(persona, picked, on_probation, regime, config)
    needed = sorted({gid for ids in chosen.values() for gid in ids})
    cache = IndicatorCache(past)
    codes = classify_regimes(past)
    readings = {gid: read_genome(by_id[gid], past, codes, cache) for gid in needed}
    perception_summary = {
        "as_of": perception.as_of,
        "regime": perception.to_dict()["regime"],
    }
    plans: dict[str, AccountPlan] = {}
    targets = {
        name: _blend(
            personas[name], chosen[name], readings, settings[name].risk.max_position_weight
        )
        for name in ("aggressive", "conservative")
    }
    for name in ("aggressive", "conservative"):
        payload = {
            "account": name,
            "day": day.isoformat(),
            "perception": perception_summary,
            "genomes": [
                {
                    "genome_id": gid,
                    "source": by_id[gid].source,
                    "style": by_id[gid].genome.style,
                    "sleeve": sleeve,
                }
                for gid, sleeve in chosen[name].items()
            ],
            "targets": [_target_dict(t) for t in targets[name]],
        }
        _note_adjustments(payload, settings[name])
        plans[name] = AccountPlan(
            account=name, day=day, regime=regime, targets=targets[name],
            decision_id=_decision_id(name, day, payload), decision=payload,
            **_trade_settings(settings[name], config),
        )  # fmt: skip
    debate: DebateRecord | None = None
    synthesis_payload: dict[str, Any] = {
        "account": "synthesis",
        "day": day.isoformat(),
        "perception": perception_summary,
    }
    synthesis_targets: tuple[TargetPosition, ...] = ()
    if targets["aggressive"]:
        equity = float(equities.get("synthesis", config.starting_capital))
        debate = run_debate(
            proposal=targets["aggressive"],
            perception=perception,
            backtest_stats={gid: dict(r.stats) for gid, r in readings.items()},
            equity=equity if equity > 0 else config.starting_capital,
            config=config.debate,
            account="synthesis",
            memory=memory,
            judge_weights=judge_weights,
        )
        ratio = personas["synthesis"].risk_budget / personas["aggressive"].risk_budget
        synthesis_targets = tuple(t.scaled(ratio) for t in debate.targets if t.weight * ratio > 0)
        active = any(item.adjustments for item in settings.values())
        synthesis_targets = _within_settings(synthesis_targets, settings["synthesis"], active)
        synthesis_payload["debate"] = debate.to_dict()
        synthesis_payload["budget_ratio"] = ratio
        # The aggressive sleeves at the synthesis budget, before the judge's verdict scales them.
        synthesis_payload["sleeves"] = {
            gid: sleeve * ratio for gid, sleeve in chosen["aggressive"].items()
        }
    else:
        synthesis_payload["debate"] = None
        synthesis_payload["note"] = "no aggressive proposal: nothing to debate, hold cash"
    synthesis_payload["targets"] = [_target_dict(t) for t in synthesis_targets]
    _note_adjustments(synthesis_payload, settings["synthesis"])
    plans["synthesis"] = AccountPlan(
        account="synthesis", day=day, regime=regime, targets=synthesis_targets,
        decision_id=_decision_id("synthesis", day, synthesis_payload),
        decision=synthesis_payload, **_trade_settings(settings["synthesis"], config),
    )  # fmt: skip
    return DayPlan(day=day, perception=perception, accounts=plans, debate=debate)


def _note_adjustments(payload: dict[str, Any], settings: AccountSettings) -> None:
    # Only when one is in force: a plan without adjustments keeps its payload (and its id).
    if settings.adjustments:
        payload["adjustments"] = [record.to_dict() for record in settings.adjustments]


def _trade_settings(settings: AccountSettings, config: ArenaConfig) -> dict[str, Any]:
    return {
        "risk": None if settings.risk is config.risk else settings.risk,
        "participation_cap": settings.participation_cap,
        "adjustments": tuple(record.to_dict() for record in settings.adjustments),
    }


def _within_settings(
    targets: tuple[TargetPosition, ...], settings: AccountSettings, active: bool
) -> tuple[TargetPosition, ...]:
    """Apply the synthesis account's name cap and position count to the debate's targets
    (the aggressive persona's, scaled by the budget ratio) while any adjustment is in force:
    a cut of the aggressive budget raises the ratio, and the scaled names must stay within the
    synthesis limits. With none in force the configured ratio (< 1) keeps them there."""
    if not active:
        return targets
    cap = settings.risk.max_position_weight
    capped = [replace(t, weight=min(t.weight, cap)) for t in targets]
    ranked = sorted(capped, key=lambda t: (-t.weight, t.symbol))[: settings.persona.max_positions]
    return tuple(sorted(ranked, key=lambda t: t.symbol))


def pause_plan(plan: DayPlan, pause: Pause) -> DayPlan:
    """Return ``plan`` as the paused lab trades it: no targets, no sleeves, the pause carried.

    Each account's decision keeps the perception and records the pause
    (``"decision": "pause"`` or ``"flatten"``, ``"kill_switch"``: the pause) and what the plan
    would have traded (``"suspended_targets"``); its ``genomes`` (or the synthesis
    ``sleeves``) are empty, so no genome is reviewed on a day it did not trade, and its
    ``targets`` are empty, so the order rule closes every position (``flatten``) and the
    account asks for nothing otherwise (:meth:`AccountBook.run_day`).
    """
    if pause.flatten:
        why = "the lab is paused (kill switch, flatten): close every position, buy nothing"
    else:
        why = "the lab is paused (kill switch): no new orders, positions kept"
    accounts: dict[str, AccountPlan] = {}
    for name, account in plan.accounts.items():
        payload: dict[str, Any] = {
            "account": name,
            "day": plan.day.isoformat(),
            "perception": account.decision.get("perception"),
            "decision": pause.mode,
            "why": why,
            "kill_switch": pause.to_dict(),
            "suspended_targets": [_target_dict(t) for t in account.targets],
            "genomes": [],
            "targets": [],
        }
        if name == "synthesis":
            payload["debate"] = None
        accounts[name] = replace(
            account, targets=(), decision=payload, pause=pause,
            decision_id=_decision_id(name, plan.day, payload),
        )  # fmt: skip
    return replace(plan, accounts=accounts, debate=None)


def _target_dict(target: TargetPosition) -> dict[str, Any]:
    return {
        "symbol": target.symbol,
        "weight": target.weight,
        "genome_id": target.genome_id,
        "style": target.style,
        "sources": dict(target.sources),
    }
