"""The synthesis judge's persona weights, learnt weekly from each persona's attributed record.

Plain Python (no Ray, no MLflow). The judge (:func:`arena.debate.run_debate`) weighs the
conservative view's objections by the weights ``(w_a, w_c)`` (aggressive, conservative;
``w_a + w_c = 1``): the risk it judges is ``min(1, risk x 2 w_c)``, so at the neutral
weights ``(0.5, 0.5)`` the judge is the rule of :mod:`arena.debate` unchanged, and a judge
that learnt to trust the aggressive view lets more of its proposal through.

**The weekly rule** (:func:`next_weights`). The weights a day uses are those of its ISO week
(Monday ``M``). They are computed once, on the first arena day of the week, from the week
before (``[M - 7, M - 1]``): each persona's **attributed record** is the sum of its committed
per-genome attribution (:meth:`arena.ledger.Ledger.attribution`) over that week divided by its
equity at the close before the week's first committed day, ``r_a`` and ``r_c``. With
``edge = r_a - r_c``::

    target = clip(0.5 + edge / (2 x band), floor, cap)
    w_a    = clip(w_a_before + rate x (target - w_a_before), floor, cap)
    w_c    = 1 - w_a

``band`` (``DebateConfig.judge_band``) is the weekly difference of returns that moves the
target to a bound, ``rate`` how far the weights move towards it in a week, ``floor`` and
``cap`` the bounds (so that no view is ever silenced). A week in which either persona has no
committed day carries the weights over unchanged (``basis.reason`` says so). The first week
starts at the neutral weights. Each week's weights are stored with their basis (the two
records, the edge, the target) in the memory store (:class:`arena.memory.MemoryStore`), the
history the weekly report shows (:mod:`reports.judge`). A replay of the same season computes
the same weights (they depend on the ledger alone).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from arena.ledger import Ledger
from arena.memory import JudgeWeights, MemoryStore

__all__ = ["NEUTRAL", "next_weights", "persona_record", "week_start", "weights_for_day"]

NEUTRAL = 0.5


def week_start(day: date) -> date:
    """Return the Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def persona_record(ledger: Ledger, account: str, start: date, end: date) -> float | None:
    """Return ``account``'s attributed return over ``[start, end]`` (``None``: no day there).

    The sum of the attributed P&L over the committed days of the period divided by the
    equity at the close before the first of them (the initial cash before the first day).
    """
    days = [d for d in ledger.committed_days(account) if start <= d <= end]
    if not days:
        return None
    rows = ledger.attribution(account, start=days[0], end=days[-1])
    pnl = sum(row.pnl_float for row in rows)
    scale = 10.0 ** ledger.money_digits(account)
    before = [e for d, e in ledger.equity_history(account) if d < days[0]]
    base = before[-1].equity if before else ledger.account_record(account).initial_cash
    base_money = base / scale
    return pnl / base_money if base_money > 0 else None


def next_weights(
    before: tuple[float, float],
    record_aggressive: float | None,
    record_conservative: float | None,
    *,
    floor: float,
    cap: float,
    rate: float,
    band: float,
) -> tuple[float, float, dict[str, Any]]:
    """Return the new ``(w_a, w_c)`` and the basis of the update (module docstring)."""
    w_a = before[0]
    if record_aggressive is None or record_conservative is None:
        basis = {
            "reason": "a persona has no committed day in the week: weights carried over",
            "aggressive_record": record_aggressive,
            "conservative_record": record_conservative,
        }
        return w_a, 1.0 - w_a, basis
    edge = record_aggressive - record_conservative
    target = min(max(NEUTRAL + edge / (2.0 * band), floor), cap)
    new_a = min(max(w_a + rate * (target - w_a), floor), cap)
    basis = {
        "reason": "weekly update from the attributed records",
        "aggressive_record": record_aggressive,
        "conservative_record": record_conservative,
        "edge": edge,
        "target": target,
        "previous_aggressive": w_a,
    }
    return new_a, 1.0 - new_a, basis


def weights_for_day(
    store: MemoryStore,
    ledger: Ledger,
    day: date,
    *,
    floor: float,
    cap: float,
    rate: float,
    band: float,
) -> JudgeWeights:
    """Return the judge weights of ``day``'s week, computing and storing them if missing.

    Only days before ``day``'s week are read (the week before it), so the weights a day
    uses never depend on that day or a later one.
    """
    monday = week_start(day)
    history = store.judge_weights()
    for item in history:
        if item.effective_from == monday:
            return item
    earlier = [item for item in history if item.effective_from < monday]
    if not earlier and not any(
        d < monday for a in ledger.accounts() for d in ledger.committed_days(a)
    ):
        weights = JudgeWeights(
            effective_from=monday, aggressive=NEUTRAL, conservative=NEUTRAL,
            basis={"reason": "first week: neutral weights"},
        )  # fmt: skip
        store.write_judge_weights(weights)
        return weights
    previous = (earlier[-1].aggressive, earlier[-1].conservative) if earlier else (NEUTRAL, NEUTRAL)
    start, end = monday - timedelta(days=7), monday - timedelta(days=1)
    accounts = set(ledger.accounts())
    ra = persona_record(ledger, "aggressive", start, end) if "aggressive" in accounts else None
    rc = persona_record(ledger, "conservative", start, end) if "conservative" in accounts else None
    w_a, w_c, basis = next_weights(previous, ra, rc, floor=floor, cap=cap, rate=rate, band=band)
    basis = {**basis, "week": [start.isoformat(), end.isoformat()]}
    weights = JudgeWeights(effective_from=monday, aggressive=w_a, conservative=w_c, basis=basis)
    store.write_judge_weights(weights)
    return weights
