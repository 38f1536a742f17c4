"""Decision quality of the synthesis account's judge, for the weekly and monthly reports.

:func:`decision_quality` reads a period's closed round trips of the synthesis account
(:func:`reports.biases.round_trips`) and, through each trip's entry orders, the decision
chain that opened it (the plan's ``debate``: verdict and confidence). The event scored is
**"the executed verdict's trade made money"** (the round trip's P&L, net of fees, > 0); a
trip opened by several decisions takes the confidence of its last entry order's chain.

* **Reliability table**: the trips by confidence bin (:data:`BINS`: ``[0, 0.2)`` ...
  ``[0.8, 1.0]``), each with its count, mean confidence and the share that made money (a
  calibrated judge's share equals its mean confidence);
* **Brier score**: ``mean((confidence - made_money)^2)`` over the trips (0 is perfect; 0.25 is
  a constant 0.5);
* **decision accuracy**: the share of trips where ``confidence >= 0.5`` and ``made money``
  agree;
* **value the debate adds**: the sum over the period's synthesis genome days of the
  attribution's ``debate_scaling`` part (:mod:`arena.review`: the P&L the judge's scaling of
  the aggressive targets changed, against the same targets at the synthesis budget), beside
  the synthesis and the aggressive account's P&L on those days;
* ``low_certainty``: the trips whose verdict's confidence was under
  :data:`reports.daily.LOW_CERTAINTY` (labelled ``low-certainty``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from reports.html import Block, Paragraph, Section, Table

__all__ = ["BINS", "decision_quality", "decision_quality_section"]

BINS: tuple[tuple[float, float], ...] = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))


def _bin(confidence: float) -> int:
    for index, (low, high) in enumerate(BINS):
        if low <= confidence < high:
            return index
    return len(BINS) - 1


def _confidence(view: Any, trip: Any) -> float | None:
    orders = view.orders
    if orders.empty:
        return None
    found = None
    for order_id in trip.entry_order_ids:
        rows = orders[(orders["account"] == trip.account) & (orders["order_id"] == order_id)]
        if rows.empty:
            continue
        decision = view.decision(trip.account, rows.iloc[-1]["decision_id"]) or {}
        debate = decision.get("debate")
        if isinstance(debate, Mapping) and "confidence" in debate:
            found = float(debate["confidence"])
    return found


def decision_quality(
    view: Any, trips: Sequence[Any], genome_days: Sequence[Any] = ()
) -> dict[str, Any]:
    """Return the period's decision-quality figures (module docstring) as plain values.

    ``view`` is the report's :class:`reports.weekly.LedgerView`, ``trips`` the period's closed
    round trips, ``genome_days`` the period's genome days (``account``, ``pnl``,
    ``debate_scaling``).
    """
    from reports.daily import LOW_CERTAINTY

    scored = []
    for trip in trips:
        if trip.account != "synthesis":
            continue
        confidence = _confidence(view, trip)
        if confidence is None or not math.isfinite(confidence):
            continue
        scored.append((confidence, 1.0 if trip.pnl > 0 else 0.0, trip))
    table = []
    for index, (low, high) in enumerate(BINS):
        inside = [(c, y) for c, y, _ in scored if _bin(c) == index]
        table.append(
            {
                "bin": f"[{low:.1f}, {high:.1f}{']' if index == len(BINS) - 1 else ')'}",
                "trades": len(inside),
                "mean_confidence": (sum(c for c, _ in inside) / len(inside)) if inside else None,
                "made_money": (sum(y for _, y in inside) / len(inside)) if inside else None,
            }
        )
    brier = sum((c - y) ** 2 for c, y, _ in scored) / len(scored) if scored else None
    accuracy = (
        sum(1 for c, y, _ in scored if (c >= 0.5) == (y > 0)) / len(scored) if scored else None
    )
    synthesis = [row for row in genome_days if row.account == "synthesis"]
    aggressive = [row for row in genome_days if row.account == "aggressive"]
    return {
        "trades": len(scored),
        "reliability": table,
        "brier": brier,
        "accuracy": accuracy,
        "debate_value": math.fsum(float(row.debate_scaling) for row in synthesis)
        if synthesis
        else None,
        "synthesis_pnl": math.fsum(float(row.pnl) for row in synthesis),
        "aggressive_pnl": math.fsum(float(row.pnl) for row in aggressive),
        "low_certainty": [
            {
                "symbol": trip.symbol,
                "exit": trip.exit_time.isoformat(),
                "confidence": c,
                "pnl": trip.pnl,
                "label": "low-certainty",
            }
            for c, _, trip in scored
            if c < LOW_CERTAINTY
        ],
    }


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def decision_quality_section(figures: Mapping[str, Any]) -> Section:
    """Return the report section of :func:`decision_quality`'s figures."""
    title = "Decision quality (the synthesis judge)"
    if not figures["trades"]:
        return Section(
            title=title,
            blocks=(Paragraph(text="No closed synthesis trade with a verdict in the period."),),
        )
    rows = tuple(
        (
            row["bin"], str(row["trades"]),
            "-" if row["mean_confidence"] is None else f"{row['mean_confidence']:.3f}",
            _fraction(row["made_money"]),
        )
        for row in figures["reliability"]
    )  # fmt: skip
    value = figures["debate_value"]
    blocks: list[Block] = [
        Table(
            headers=("confidence", "trades", "mean confidence", "made money"),
            rows=rows,
            numeric=frozenset({1, 2, 3}),
        ),
        Paragraph(
            text=(
                f"Brier score {figures['brier']:.4f} over {figures['trades']} trades "
                f"(0 perfect, 0.25 a constant 0.5); decision accuracy "
                f"{_fraction(figures['accuracy'])}. Debate value: "
                + ("-" if value is None else f"{value:+,.2f}")
                + f" (synthesis P&L {figures['synthesis_pnl']:+,.2f}, aggressive "
                f"{figures['aggressive_pnl']:+,.2f})."
            )
        ),
    ]
    low = figures["low_certainty"]
    if low:
        blocks.append(
            Table(
                headers=("symbol", "exit", "confidence", "P&L", "label"),
                rows=tuple(
                    (
                        t["symbol"],
                        t["exit"],
                        f"{t['confidence']:.3f}",
                        f"{t['pnl']:+,.2f}",
                        t["label"],
                    )
                    for t in low
                ),
            )
        )
    return Section(title=title, blocks=tuple(blocks))
