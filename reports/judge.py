"""The weekly report's section on the synthesis judge's persona weights (:mod:`arena.judge`).

:func:`judge_section` reads the weights' history from the home's memory store
(:class:`arena.memory.MemoryStore`, read only through its public reader) and shows the
weights in force during the week, the update that produced them (each persona's attributed
record of the week before, the edge and the target) and the weights the next week will use
when they are already computed. A home without a memory store, or a week before the first
weights, says so in one paragraph.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alphaloop.home import LabHome
from arena.memory import JudgeWeights, MemoryStore
from reports.html import Block, Paragraph, Section, Table
from reports.periods import Period

__all__ = ["judge_section"]

TITLE = "The judge's persona weights"


def _pct(value: Any, signed: bool = True) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _history(home: LabHome) -> list[JudgeWeights]:
    if not home.memory_db.exists():
        return []
    with MemoryStore(home.memory_db) as store:
        return store.judge_weights()


def judge_section(home: LabHome, period: Period) -> tuple[Section, dict[str, Any]]:
    """Return the section and its ``--json`` part: ``{"in_force": [...], "next": ...}``."""
    history = _history(home)
    in_force = [w for w in history if period.start <= w.effective_from <= period.end]
    earlier = [w for w in history if w.effective_from < period.start]
    if earlier and not any(w.effective_from == period.start for w in in_force):
        in_force.insert(0, earlier[-1])
    upcoming = [w for w in history if w.effective_from > period.end]
    following = next(
        (w for w in upcoming if w.effective_from <= period.end + timedelta(days=7)), None
    )
    data = {
        "in_force": [w.to_dict() for w in in_force],
        "next": None if following is None else following.to_dict(),
    }
    if not in_force:
        text = f"No judge weights were in force in {period.describe()} (no arena day yet)."
        return Section(title=TITLE, blocks=(Paragraph(text=text),)), data
    rows = []
    for weights in [*in_force, *([following] if following else [])]:
        basis = weights.basis
        rows.append(
            (
                weights.effective_from.isoformat(),
                f"{weights.aggressive:.3f}",
                f"{weights.conservative:.3f}",
                _pct(basis.get("aggressive_record")),
                _pct(basis.get("conservative_record")),
                _pct(basis.get("edge")),
                str(basis.get("reason", "")),
            )
        )
    blocks: list[Block] = [
        Paragraph(
            text="The judge weighs the conservative view's objections by 2 x its weight "
            "(1x at the neutral 0.5); the weights move each week towards the persona with "
            "the better attributed record, within the configured floor and cap "
            "(docs/memory.md). The last row is next week's when already computed."
        ),
        Table(
            headers=(
                "from",
                "aggressive",
                "conservative",
                "aggressive record",
                "conservative record",
                "edge",
                "why",
            ),
            rows=tuple(rows),
            numeric=frozenset({1, 2, 3, 4, 5}),
        ),
    ]
    return Section(title=TITLE, blocks=tuple(blocks)), data
