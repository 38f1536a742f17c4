"""The loop closes through the arena: paper days flow into the gene pool and decide promotions.

After each committed arena day the driver calls :func:`close_loop`:

1. the day's genome days (the review stage's records in the ledger: allocation, attributed
   P&L, the shadow backtest's return, execution figures) are copied into the gene-pool store
   (``paper_days``), and the LiveFeedback records of the ISO week they fall in are rebuilt
   (``feedback``; one per genome, account and week, :mod:`evolution.feedback`);
2. every champion that had no sleeve in any account (a **sat-out day**, not paused) is
   backtested over the day as the review backtests the genomes it trades
   (:func:`arena.review.shadow_returns`) and the return stored (``shadow_days``);
3. a genome on probation or a champion with no gate figures (a champion of a schema-1 pool)
   gets its expectation calibrated once, from the plan's backtest of the bars before its first
   paper day, stored with the reason (``expectations``);
4. every genome on probation and every champion is judged on its whole paper record so far by
   :func:`evolution.lifecycle.decide` (promotion after the paper stage, demotion on a CUSUM
   crossing, divergence or a drawdown budget); each move is a stored transition with its
   reasons and figures, made by ``system`` on that day (a champion's record includes its
   sat-out days, read by the CUSUM only: :mod:`evolution.lifecycle`); a genome on probation
   is promoted only if its paper days also beat those of its incumbents, the full sleeves
   beside it in the same accounts on the same days (:func:`incumbent_record`);
5. every bootstrap stand-in that traded the day (:mod:`arena.bootstrap`) is judged like a
   champion on the days it traded, against the expectation of the plan's backtest before its
   first paper day: a decayed one is added to the pool as demoted and trades no more, so the
   persona it stood in for holds cash in its styles until a champion is promoted
   (:func:`_judge_stand_ins`).

The next day's plan reads the pool again (:func:`arena.bootstrap.arena_genomes`), so a
demoted champion stops trading the next morning and a promoted one trades on a full sleeve.
Only the driver writes the gene-pool store; it is plain Python (no Ray, no MLflow). Re-running a
day rewrites the same paper days and feedback and decides nothing twice (a genome moves at most
once per arena day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from alphaloop.home import LabHome
from arena.bootstrap import BOOTSTRAP_GENOMES
from arena.market import day_index
from arena.plan import HISTORY_BARS, TRADE_BARS
from arena.review import shadow_returns
from evolution.feedback import DayFigures, LiveFeedback, summarise
from evolution.lifecycle import Expectation, PaperDay, PromotionConfig, calibrate, decide
from evolution.store import SYSTEM_ACTOR, GenePoolStore, PaperDayRecord, TransitionRecord
from genome.compile import compile_and_backtest
from genome.genes import Genome
from simulators.bars import Panel

__all__ = ["LoopDay", "close_loop", "incumbent_record", "loop_summary", "paper_record", "week_of"]

# The bootstrap stand-ins by genome id (judged by the loop like champions).
STAND_INS: dict[str, Genome] = {g.id: g for g in BOOTSTRAP_GENOMES.values()}
STAND_IN_NAMES: dict[str, str] = {g.id: name for name, g in BOOTSTRAP_GENOMES.items()}

# The review's figures kept with each paper day (beside allocation, pnl and shadow return).
_FIGURES = (
    "expected_pnl",
    "execution_cost",
    "governor_cuts",
    "debate_scaling",
    "residual",
    "avg_slippage_bps",
    "fill_ratio",
    "order_reject_count",
    "risk_block_count",
    "turnover",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopDay:
    """What closing the loop on one day did (for the day's and the season's summaries)."""

    day: str
    paper_days: int
    feedback: int
    transitions: tuple[dict[str, Any], ...]
    # The day's moves stored by an earlier close of the same day (a replay run again on the
    # same home): not decided again, still part of the season's record.
    recorded: tuple[dict[str, Any], ...] = ()


def week_of(day: date) -> tuple[date, date]:
    """Return the Monday and Sunday of ``day``'s ISO week (a feedback period)."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _records(genome_days: Sequence[Any]) -> list[PaperDayRecord]:
    out = []
    for row in genome_days:
        if not row.allocation > 0:
            continue
        out.append(
            PaperDayRecord(
                genome_id=row.genome_id,
                account=row.account,
                day=str(row.day),
                allocation=float(row.allocation),
                pnl=float(row.pnl),
                shadow_return=float(row.expected_return),
                figures={
                    **{name: float(getattr(row, name)) for name in _FIGURES},
                    # What the sleeve traded as (the incumbents of a challenger are the full
                    # sleeves beside it; a bootstrap stand-in is judged by the loop too).
                    "probation": float(row.source == "probation"),
                    "bootstrap": float(str(row.source).startswith("bootstrap:")),
                },
            )
        )
    return out


def _day_figures(record: PaperDayRecord) -> DayFigures:
    figures = record.figures
    events = []
    if figures.get("order_reject_count", 0):
        events.append(f"{int(figures['order_reject_count'])} order(s) rejected")
    if figures.get("risk_block_count", 0):
        events.append(f"{int(figures['risk_block_count'])} risk block(s)")
    return DayFigures(
        day=record.day,
        allocation=record.allocation,
        pnl=record.pnl,
        avg_slippage_bps=float(figures.get("avg_slippage_bps", 0.0)),
        fill_ratio=float(figures.get("fill_ratio", 1.0)),
        order_reject_count=int(figures.get("order_reject_count", 0)),
        risk_block_count=int(figures.get("risk_block_count", 0)),
        turnover=float(figures.get("turnover", 0.0)),
        events=tuple(events),
    )


def _executed(pnl: float, turnover: float, shadow: float) -> bool:
    # A sleeve the accounts held and traded none of while its backtest moved: no evidence.
    return not (pnl == 0.0 and turnover == 0.0 and shadow != 0.0)


def incumbent_record(store: GenePoolStore, genome_id: str, *, until: str) -> list[PaperDay]:
    """Return, per day the challenger ``genome_id`` had a sleeve, its incumbents' pooled paper
    day: the other genomes with a full sleeve (not on probation, by the paper day's flag or,
    for records without it, by the genome's status now) in the accounts that traded the
    challenger that day (:mod:`evolution.lifecycle`, challenger against incumbent). Days the
    incumbents did not execute are left out, as in :func:`paper_record`."""
    accounts: dict[str, set[str]] = {}
    for row in store.paper_days(genome_id, until=until):
        accounts.setdefault(row.day, set()).add(row.account)
    if not accounts:
        return []
    on_probation = {str(r["genome_id"]) for r in store.list_genomes("probation")}
    pooled: dict[str, list[float]] = {}
    for row in store.paper_days(since=min(accounts), until=until):
        if row.genome_id == genome_id or row.account not in accounts.get(row.day, ()):
            continue
        flag = row.figures.get("probation")
        if flag or (flag is None and row.genome_id in on_probation):
            continue
        total = pooled.setdefault(row.day, [0.0, 0.0, 0.0, 0.0])
        total[0] += row.allocation
        total[1] += row.pnl
        total[2] += row.allocation * row.shadow_return
        total[3] += abs(float(row.figures.get("turnover", 0.0)))
    return [
        PaperDay(day=day, allocation=a, pnl=p, shadow_return=sh / a)
        for day, (a, p, sh, turnover) in sorted(pooled.items())
        if _executed(p, turnover, sh / a)
    ]


def paper_record(
    store: GenePoolStore, genome_id: str, *, until: str, sat_out: bool = False
) -> list[PaperDay]:
    """Return a genome's paper days up to ``until``, pooled over the accounts, by day.

    A day the accounts held and traded none of the genome (no attributed P&L, no turnover)
    while its shadow backtest moved is **not executed**: its sleeve was too small for a lot or
    the minimum trade, or the governor left nothing of it. Such a day is no evidence about
    the genome's paper trading; it is left out, or with ``sat_out`` (a champion's record)
    read as a sat-out day (:meth:`PaperDay.sat_out`), as are the days it had no sleeve.
    """
    pooled: dict[str, list[float]] = {}
    for row in store.paper_days(genome_id, until=until):
        total = pooled.setdefault(row.day, [0.0, 0.0, 0.0, 0.0])
        total[0] += row.allocation
        total[1] += row.pnl
        total[2] += row.allocation * row.shadow_return
        total[3] += abs(float(row.figures.get("turnover", 0.0)))
    days: dict[str, PaperDay] = {}
    for day, (a, p, s, turnover) in pooled.items():
        shadow = s / a
        if not _executed(p, turnover, shadow):
            if sat_out:
                days[day] = PaperDay.sat_out(day, shadow)
            continue
        days[day] = PaperDay(day=day, allocation=a, pnl=p, shadow_return=shadow)
    if sat_out:
        for day, value in store.shadow_days(genome_id, until=until):
            days.setdefault(day, PaperDay.sat_out(day, value))
    return [days[day] for day in sorted(days)]


def _calibration(
    genome: Genome, daily: Panel, first_day: str, config: PromotionConfig
) -> tuple[Expectation, int] | None:
    """Return the expectation of ``genome`` from the plan's backtest before ``first_day``
    and the number of bars it read (None with fewer than 3).

    Its returns are those of the plan's backtest (:func:`arena.plan.read_genome`'s code path:
    the :data:`HISTORY_BARS` bars before ``first_day``, its first paper day, trading the last
    :data:`TRADE_BARS`), the expectation :func:`evolution.lifecycle.calibrate` of them.
    """
    index = day_index(daily, date.fromisoformat(first_day))
    first = max(0, index - HISTORY_BARS)
    panel = daily.slice_bars(first, index)
    start = max(0, panel.n_bars - TRADE_BARS)
    if panel.n_bars - start < 3:
        return None
    equity = compile_and_backtest(genome, panel, start=start).equity.to_numpy(dtype=float)
    returns = equity[1:] / equity[:-1] - 1.0
    return calibrate(genome.id, returns, config), panel.n_bars - start


def _calibrated(
    store: GenePoolStore,
    genome_id: str,
    daily: Panel,
    first_day: str,
    config: PromotionConfig,
) -> Expectation | None:
    """Calibrate (:func:`_calibration`) and store the expectation of a trading genome
    without gate figures."""
    stored = store.genome(genome_id)
    if stored is None:
        return None
    calibration = _calibration(
        Genome.from_json(str(stored["genome_json"])), daily, first_day, config
    )
    if calibration is None:
        return None
    expectation, bars = calibration
    store.write_expectation(
        genome_id, expectation.as_dict(), day=first_day,
        reason=f"calibrated by the loop on the plan's backtest of the {bars} "
        f"bars before its first paper day {first_day}: the pool holds no gate figures for it",
    )  # fmt: skip
    return expectation


def _judge_stand_ins(
    store: GenePoolStore,
    day: str,
    records: Sequence[PaperDayRecord],
    daily: Panel,
    config: PromotionConfig,
    calibrations: dict[tuple[str, str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Judge the bootstrap stand-ins that traded on ``day`` as champions; demote the decayed.

    A stand-in the pool does not hold is an incumbent like a champion: its expectation is
    calibrated from the plan's backtest before its first paper day (:func:`_calibration`,
    recomputed each day: the same figures every time), its record is the days it traded, and
    :func:`evolution.lifecycle.decide` applies a champion's demotion rules. A demoted one is
    added to the pool as demoted (:meth:`GenePoolStore.demote_stand_in`) and does not trade
    again (:func:`arena.bootstrap.arena_genomes`). ``calibrations`` keeps the calibrations by
    (genome, first paper day) across the days of one season (the same bars give the same
    figures, so it only saves the backtests).
    """
    cache = {} if calibrations is None else calibrations
    moves: list[dict[str, Any]] = []
    for genome_id in sorted({r.genome_id for r in records if r.figures.get("bootstrap")}):
        genome = STAND_INS.get(genome_id)
        if genome is None or store.status_of(genome_id) is not None:
            continue  # not a bootstrap genome, or the pool holds it (judged under its status)
        days = paper_record(store, genome_id, until=day)
        if not days or days[-1].day != day:
            continue
        key = (genome_id, days[0].day)
        if key not in cache:
            cache[key] = _calibration(genome, daily, days[0].day, config)
        if cache[key] is None:
            continue
        expectation, bars = cache[key]
        decision = decide("champion", days, expectation, config)
        if decision.to_status != "demoted":
            continue
        name = STAND_IN_NAMES[genome_id]
        figures = {**decision.figures, **expectation.as_dict(), "calibration_bars": float(bars)}
        reason = f"bootstrap stand-in {name} {decision.reason}"
        store.demote_stand_in(
            genome_json=genome.to_json(), description=genome.describe(), style=genome.style,
            move=TransitionRecord(
                genome_id=genome_id, from_status="champion", to_status="demoted",
                reason=reason, figures=figures, day=day,
            ),
        )  # fmt: skip
        moves.append(
            {"genome_id": genome_id, "from": "champion", "to": "demoted", "reason": reason}
        )
    return moves


def _record_sat_out(store: GenePoolStore, daily: Panel, day: date, traded: set[str]) -> int:
    """Backtest over ``day`` the champions that had no sleeve on it and store the returns."""
    iso = day.isoformat()
    sat_out: dict[str, Genome] = {}
    for row in store.list_genomes("champion"):
        genome_id = str(row["genome_id"])
        if genome_id in traded or row.get("paused"):
            continue
        stored = store.genome(genome_id)
        if stored is not None:
            sat_out[genome_id] = Genome.from_json(str(stored["genome_json"]))
    if not sat_out:
        return 0
    returns = shadow_returns(sat_out, daily, day)
    store.write_shadow_days([(gid, iso, returns[gid]) for gid in sorted(sat_out)])
    return len(sat_out)


def _rebuild_feedback(
    store: GenePoolStore,
    genomes: Sequence[str],
    day: date,
    *,
    periods_per_year: float,
    config_hash: str,
) -> list[LiveFeedback]:
    monday, sunday = week_of(day)
    out = []
    for genome_id in sorted(set(genomes)):
        by_account: dict[str, list[DayFigures]] = {}
        for row in store.paper_days(genome_id, since=monday.isoformat(), until=sunday.isoformat()):
            by_account.setdefault(row.account, []).append(_day_figures(row))
        for account, days in sorted(by_account.items()):
            out.append(
                summarise(
                    genome_id, account, days, periods_per_year=periods_per_year,
                    config_hash=config_hash,
                )
            )  # fmt: skip
    return out


def close_loop(
    home: LabHome,
    day: date,
    genome_days: Sequence[Any],
    *,
    config: PromotionConfig,
    periods_per_year: float,
    config_hash: str = "",
    daily: Panel | None = None,
    calibrations: dict[tuple[str, str], Any] | None = None,
) -> LoopDay:
    """Record ``day``'s genome days in the pool and apply the lifecycle (module docstring).

    ``genome_days`` are the review's records of the day (``arena.review.GenomeDay``);
    ``daily`` (the bars through ``day``) backtests the champions that sat the day out. Without
    it a champion is judged on the days it traded only. ``calibrations`` (a dict the caller
    keeps across a season's days) saves recomputing the stand-ins' calibrations.
    """
    iso = day.isoformat()
    records = _records(genome_days)
    moves: list[dict[str, Any]] = []
    if not home.gene_pool_db.exists():
        return LoopDay(day=iso, paper_days=0, feedback=0, transitions=())
    with GenePoolStore(home.gene_pool_db) as store:
        if records:
            store.write_paper_days(records)
        feedback = _rebuild_feedback(
            store, [r.genome_id for r in records], day,
            periods_per_year=periods_per_year, config_hash=config_hash,
        )  # fmt: skip
        if feedback:
            store.write_feedback(feedback)
        if daily is not None:
            _record_sat_out(store, daily, day, {r.genome_id for r in records})
        for status in ("probation", "champion"):
            for row in store.list_genomes(status):
                genome_id = str(row["genome_id"])
                expectation = Expectation.from_figures(store.expectation_figures(genome_id))
                days = paper_record(store, genome_id, until=iso, sat_out=status == "champion")
                if expectation is None and daily is not None and days and not row.get("paused"):
                    expectation = _calibrated(store, genome_id, daily, days[0].day, config)
                elapsed = None
                if status == "probation":
                    # Arena days with a sleeve, executed or not (its probation's length).
                    sleeved = sorted({r.day for r in store.paper_days(genome_id, until=iso)})
                    elapsed = len(sleeved)
                    if expectation is None or not sleeved or sleeved[-1] != iso:
                        continue
                elif expectation is None or not days or days[-1].day != iso:
                    continue  # judged on the days it traded; no gate figures, no judgement
                moves_so_far = store.transitions(genome_id)
                if moves_so_far and moves_so_far[-1]["day"] == iso:
                    continue  # at most one move a day: closing the day again decides nothing
                incumbents = (
                    incumbent_record(store, genome_id, until=iso) if status == "probation" else ()
                )
                decision = decide(
                    status, days, expectation, config, elapsed=elapsed, incumbents=incumbents
                )
                if decision.to_status is None:
                    continue
                move = TransitionRecord(
                    genome_id=genome_id,
                    from_status=status,
                    to_status=decision.to_status,
                    reason=decision.reason,
                    figures=decision.figures,
                    day=iso,
                )
                store.transition(move)
                moves.append(
                    {
                        "genome_id": genome_id,
                        "from": status,
                        "to": decision.to_status,
                        "reason": decision.reason,
                    }
                )
        if daily is not None:
            moves += _judge_stand_ins(store, iso, records, daily, config, calibrations)
        decided = {(m["genome_id"], m["to"]) for m in moves}
        recorded = tuple(
            {"genome_id": m["genome_id"], "from": m["from_status"], "to": m["to_status"],
             "reason": m["reason"]}
            for m in store.transitions_between(iso, iso)
            if m["day"] == iso and m["kind"] == "status" and m["actor"] == SYSTEM_ACTOR
            and (m["genome_id"], m["to_status"]) not in decided
        )  # fmt: skip
    return LoopDay(
        day=iso, paper_days=len(records), feedback=len(feedback), transitions=tuple(moves),
        recorded=recorded,
    )  # fmt: skip


def loop_summary(days: Sequence[LoopDay]) -> dict[str, Any]:
    """Return the season's loop figures: promotions and demotions with their days (those
    decided now and those a previous run of the same days stored)."""
    moves = [dict(move, day=d.day) for d in days for move in (*d.recorded, *d.transitions)]
    return {
        "paper_days": sum(d.paper_days for d in days),
        "promoted": [m for m in moves if m["to"] == "champion"],
        "demoted": [m for m in moves if m["to"] == "demoted"],
        "transitions": moves,
    }
