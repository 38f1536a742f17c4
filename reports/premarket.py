"""The day's pre-market plan: what each account means to trade, written before execution.

:func:`write_premarket_plan` is called by :func:`arena.day.run_arena_day` after the plan
stage and before the trade stage, and writes ``runs/<D>/premarket.json`` and
``premarket.md`` next to the daily report. Per account (:func:`premarket_plan`):

* ``candidates``: the genomes chosen for it, with source, style and sleeve (the share of
  equity each trades with; the synthesis account's are the aggressive sleeves at its budget);
* ``targets``: each name's target weight of equity and its **stop**: the governor's
  assumed stop ``previous close x (1 - assumed_stop_fraction)`` of the account's limits
  (:class:`arena.risk.RiskLimits`: the price at which an order without its own stop is
  counted to lose its risk);
* ``risk_budget``: the persona's risk budget the plan used (after adjustments), the regime
  weight and the budget invested (``risk_budget x regime weight``);
* ``adjustments``: the adjustments in force for the account (:mod:`arena.adjustments`);
* ``retrieved_memories``: the past episodes the decision consulted, read from the decision
  payload's ``"memories"`` key (the hook the experience memory fills; an empty list when no
  memory is wired);
* the synthesis account's verdict and confidence, with ``low-certainty`` under 0.6.

Nothing here reads the ledger; the plan is the :class:`arena.plan.DayPlan` values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alphaloop.files import atomic_write_text
from alphaloop.home import LabHome

__all__ = ["MEMORIES_KEY", "premarket_plan", "render_premarket", "write_premarket_plan"]

MEMORIES_KEY = "memories"
"""The decision-payload key the experience memory fills with the episodes it retrieved."""


def premarket_plan(
    plan: Any, prev_close: Mapping[str, float], config: Any, personas: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the pre-market plan of ``plan`` (an :class:`arena.plan.DayPlan`) as plain values.

    ``prev_close`` are the previous closes the stops are set from, ``config`` the
    :class:`arena.personas.ArenaConfig` and ``personas`` each account's persona as the plan
    used it (after adjustments: :func:`arena.adjustments.effective_settings`).
    """
    from reports.daily import certainty_label

    regime = plan.regime
    accounts: dict[str, Any] = {}
    for name, account in plan.accounts.items():
        decision = account.decision
        persona = personas[name]
        limits = account.risk if account.risk is not None else config.risk
        stop_fraction = limits.assumed_stop_fraction
        if name == "synthesis":
            sleeves = decision.get("sleeves") or {}
            candidates = [{"genome_id": gid, "sleeve": float(v)} for gid, v in sleeves.items()]
        else:
            candidates = [dict(item) for item in decision.get("genomes") or ()]
        targets = []
        for target in account.targets:
            close = prev_close.get(target.symbol)
            targets.append(
                {
                    "symbol": target.symbol,
                    "weight": target.weight,
                    "genome_id": target.genome_id,
                    "style": target.style,
                    "previous_close": close,
                    "stop": None if close is None else close * (1.0 - stop_fraction),
                }
            )
        entry: dict[str, Any] = {
            "candidates": candidates,
            "targets": targets,
            "risk_budget": {
                "risk_budget": persona.risk_budget,
                "regime_weight": persona.regime_weight(regime),
                "invested": persona.risk_budget * persona.regime_weight(regime),
                "max_positions": persona.max_positions,
                "max_position_weight": limits.max_position_weight,
                "participation_cap": account.participation_cap,
            },
            "adjustments": [dict(a) for a in account.adjustments],
            "retrieved_memories": list(decision.get(MEMORIES_KEY) or ()),
        }
        debate = decision.get("debate")
        if isinstance(debate, Mapping):
            confidence = float(debate.get("confidence", 0.0))
            entry["verdict"] = {
                "verdict": debate.get("verdict"),
                "confidence": confidence,
                "certainty": certainty_label(confidence) or "normal",
            }
        if account.pause is not None:
            entry["paused"] = account.pause.to_dict()
        accounts[name] = entry
    return {"date": plan.day.isoformat(), "regime": regime, "accounts": accounts}


def render_premarket(doc: Mapping[str, Any]) -> str:
    """Return the pre-market plan as Markdown."""
    lines = [f"# AlphaLoop arena: pre-market plan {doc['date']}", "", f"Regime: {doc['regime']}."]
    for name, entry in doc["accounts"].items():
        budget = entry["risk_budget"]
        lines += [
            "",
            f"## {name}",
            "",
            f"Risk budget {budget['risk_budget']:.2%} x regime weight "
            f"{budget['regime_weight']:.2f} = {budget['invested']:.2%} invested; at most "
            f"{budget['max_positions']} names, {budget['max_position_weight']:.0%} each.",
        ]
        if "paused" in entry:
            lines.append(f"Paused: {entry['paused'].get('reason')}.")
        if "verdict" in entry:
            verdict = entry["verdict"]
            mark = " (low-certainty)" if verdict["certainty"] == "low-certainty" else ""
            lines.append(
                f"Judge: {verdict['verdict']} at confidence {verdict['confidence']:.3f}{mark}."
            )
        lines += ["", "Candidates:", ""]
        lines += [
            f"- {c.get('genome_id')} {c.get('style', '')} sleeve {float(c['sleeve']):.2%}"
            for c in entry["candidates"]
        ] or ["- none"]
        lines += ["", "| symbol | target weight | previous close | stop |", "|---|---:|---:|---:|"]
        for t in entry["targets"]:
            close = "-" if t["previous_close"] is None else f"{t['previous_close']:.4g}"
            stop = "-" if t["stop"] is None else f"{t['stop']:.4g}"
            lines.append(f"| {t['symbol']} | {t['weight']:.2%} | {close} | {stop} |")
        if not entry["targets"]:
            lines.append("| (cash) | | | |")
        lines += ["", "Adjustments in force:", ""]
        lines += [
            f"- {a['id']}: {a['parameter']} {a['old_value']:.4g} -> {a['new_value']:.4g} "
            f"({a['reason']})"
            for a in entry["adjustments"]
        ] or ["- none"]
        lines += ["", "Retrieved memories:", ""]
        lines += [f"- {json.dumps(m, sort_keys=True)}" for m in entry["retrieved_memories"]] or [
            "- none"
        ]
    return "\n".join(lines) + "\n"


def write_premarket_plan(
    home: LabHome, plan: Any, market: Any, config: Any, personas: Mapping[str, Any]
) -> Path:
    """Write ``runs/<D>/premarket.json`` and ``premarket.md`` (atomically); return the JSON's
    path. ``market`` is the day's :class:`arena.market.DayMarket` (its previous closes)."""
    from reports.daily import run_dir_for

    folder = run_dir_for(home, plan.day)
    folder.mkdir(parents=True, exist_ok=True)
    doc = premarket_plan(plan, market.prev_close, config, personas)
    path = folder / "premarket.json"
    atomic_write_text(path, json.dumps(doc, sort_keys=True, indent=1, default=str))
    atomic_write_text(folder / "premarket.md", render_premarket(doc))
    return path
