"""The arena's day: perceive, plan, trade, close, review, in that order.

:func:`run_arena_day` is the day, a short function over the stages, each in its own module
and passing plain values:

1. **perceive** (:mod:`arena.perceive`): the daily bars up to the close of ``D-1``, the
   regime;
2. **plan** (:mod:`arena.plan`, driver, once): genome readings, persona selection, debate,
   targets per account (:func:`arena.plan.plan_day`), the kill switch's plan while paused;
3. **trade** (:mod:`arena.trade`, in each account): orders from the targets, the risk
   governor, execution over the day's bars (:mod:`arena.intraday`, :mod:`arena.parent_orders`,
   :mod:`arena.step`) on the day's :class:`arena.market.DayMarket`;
4. **close** (:mod:`arena.account`, in each account): mark, attribute, commit the day to the
   ledger in one transaction;
5. **review** (:mod:`arena.review`, driver): each genome's paper day against its shadow
   backtest, written to the ledger; then the day's episodes are stored in the experience
   memory (:func:`remember_day`, :mod:`arena.memory`), which the next days' debates recall
   (:func:`recall_for_day`, with the judge's weights of the week: :mod:`arena.judge`); the
   daily report is assembled by :mod:`reports.arena_day` from the ledger, and the review's
   adjustments for the next days are stored (:mod:`arena.adjustments`; the day's plan applied
   those in force on ``D``).

Before the trade stage the day's **pre-market plan** is written next to the report
(``runs/<D>/premarket.md`` and ``premarket.json``: :mod:`reports.premarket`); after it, on a
market with a lunch break, the **midday review** (``runs/<D>/midday.json`` / ``midday.md``:
:mod:`reports.midday`).

The accounts are reached through an :class:`Accounts` back end chosen once where the objects
are wired: :class:`LocalAccounts` (three :class:`arena.account.AccountBook` in this process)
or ``arena.actors.RayAccounts`` (one Ray actor each); the stages are the same code.

A day whose three accounts are committed is not run again (``already_committed``); a day
where only some accounts committed (a crash between two commits) runs the others only, from
the same plan, so the ledger ends as an uninterrupted run's. A committed day whose genome
days are missing (a crash between the commit and the review, a ``--force`` replacement) is
reviewed on the next run of the day, from the ledger and the data alone. A day is traded only
on a ledger that verifies (:func:`refuse_broken_ledger`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Protocol

from alphaloop.errors import ConfigError, DataSpecError
from alphaloop.home import LabHome
from arena.account import AccountBook
from arena.adjustments import (
    Adjustment,
    AdjustmentStore,
    adjustments_db,
    effective_settings,
    propose,
)
from arena.bootstrap import ArenaGenome, arena_genomes
from arena.judge import weights_for_day
from arena.kill_switch import read_pause
from arena.ledger import GenomeDay, Ledger
from arena.market import ArenaData, DayMarket, benchmark_return
from arena.memory import Contrast, Episode, MemoryStore, account_contrast, record_day
from arena.personas import PERSONA_NAMES, ArenaConfig
from arena.plan import AccountPlan, pause_plan, plan_day
from arena.review import review_committed_day
from arena.rules import BrokerRules
from arena.trade import AccountDayResult
from simulators.metrics import periods_per_year


class Accounts(Protocol):
    """Where the three accounts live (this process or Ray actors)."""

    def committed(self, day: date) -> dict[str, bool]:
        """Return, per account, whether ``day`` is committed."""
        ...

    def equity_before(self, day: date) -> dict[str, float]:
        """Return, per account, the equity at the last close before ``day``."""
        ...

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        """Trade and commit each account's day; return the results by account."""
        ...

    def close(self) -> None:
        """Release the accounts."""
        ...


class LocalAccounts:
    """The three accounts as :class:`AccountBook` objects in this process."""

    def __init__(
        self,
        home: LabHome,
        config: ArenaConfig,
        rules: BrokerRules,
        schedule: Any = None,
    ) -> None:
        self.books = {
            name: AccountBook(home.ledger_db, name, config, rules, schedule)
            for name in PERSONA_NAMES
        }

    def committed(self, day: date) -> dict[str, bool]:
        return {name: book.is_committed(day) for name, book in self.books.items()}

    def equity_before(self, day: date) -> dict[str, float]:
        return {name: book.equity_before(day) for name, book in self.books.items()}

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        return {
            name: self.books[name].run_day(plans[name], market, force=force)
            for name in PERSONA_NAMES
        }

    def close(self) -> None:
        for book in self.books.values():
            book.close()


# The figures of a genome day in the ``arena run --json`` summary (``"genomes"``).
GENOME_SUMMARY_FIELDS = (
    "account", "genome_id", "source", "sleeve", "pnl", "expected_pnl", "paper_return",
    "expected_return", "execution_cost", "governor_cuts", "debate_scaling", "residual",
)  # fmt: skip


def _genome_summary(row: GenomeDay) -> dict[str, Any]:
    values = row.to_dict()
    return {name: values[name] for name in GENOME_SUMMARY_FIELDS}


def _summary(
    home: LabHome,
    day: date,
    market: DayMarket,
    config: ArenaConfig,
    already: bool,
    results: Mapping[str, AccountDayResult],
    genome_days: Sequence[GenomeDay] = (),
    *,
    periods: float,
) -> dict[str, Any]:
    from reports.arena_day import account_metrics

    iso = day.isoformat()
    accounts: dict[str, Any] = {}
    with Ledger(home.ledger_db) as ledger:
        registered = {record.account: record for record in ledger.account_records()}
        for name in PERSONA_NAMES:
            history = [e for d, e in ledger.equity_history(name) if d <= day]
            record = registered.get(name)
            scale = 10.0 ** (2 if record is None else record.units.money_digits)
            curve = [e.equity / scale for e in history]
            result = results.get(name)
            n_fills = len(ledger.fills(name, day))
            figures = account_metrics(
                curve,
                config.starting_capital,
                0 if result is None else result.wins,
                0 if result is None else result.losses,
                n_fills,
                periods_per_year=periods,
            )
            accounts[name] = figures
        risk = [
            {
                "account": name, "at": event.at.isoformat(), "order_id": event.order_id,
                "rule": event.rule, "reason": event.reason, "value": event.value,
                "limit_value": event.limit,
            }
            for name in sorted(registered)
            for event in ledger.risk_events(name, day)
        ]  # fmt: skip
        # The synthesis account's plan (the first of its day's chains) carries the perception.
        decision = next(iter(ledger.decisions("synthesis", day).values()), None)
    regime: Any = None
    if decision is not None:
        regime = decision.get("perception", {}).get("regime")
    return {
        "date": iso,
        "already_committed": already,
        "accounts": accounts,
        "benchmark": {"return": benchmark_return(market)},
        "regime": regime,
        "risk_events": risk,
        "genomes": [_genome_summary(row) for row in genome_days],
    }


def _refuse_unsafe_day(
    home: LabHome, data: ArenaData, day: date, *, force: bool, full_chain: bool
) -> None:
    """The day's start-up checks, in this order, on one open ledger (reads only, unless the
    verification moves its marks): not before the last committed day, not after a partially
    committed one, a ledger that verifies (:func:`refuse_broken_ledger`), data with every
    held symbol."""
    with Ledger(home.ledger_db) as ledger:
        _refuse_going_back(ledger, day, force=force)
        _refuse_skipping_a_partial_day(ledger, day)
        ledger.verify_before_trading(full_chain=full_chain)
        _refuse_data_without_holdings(ledger, data, day)


def _refuse_going_back(ledger: Ledger, day: date, *, force: bool) -> None:
    """Refuse to run a day before the ledger's last committed day (the books move forward
    only: a day inserted or recomputed there would change every later day's books)."""
    last = ledger.last_committed_day()
    if last is None or day >= last:
        return
    if force:
        raise ConfigError(
            f"arena day {day.isoformat()}: --force recomputes only the last committed day "
            f"{last.isoformat()}; later days are built on {day.isoformat()}'s books"
        )
    raise ConfigError(
        f"arena day {day.isoformat()}: before the last committed day {last.isoformat()} and "
        f"never run; the books move forward only (run a day after {last.isoformat()}, or "
        "replay the season in a new home)"
    )


def _refuse_skipping_a_partial_day(ledger: Ledger, day: date) -> None:
    """Refuse to run a day after one that only some accounts committed (a crash between two
    commits): the others would skip a trading day, a gap verification reports."""
    last = {name: ledger.last_committed_day(name) for name in PERSONA_NAMES}
    latest = max((d for d in last.values() if d is not None), default=None)
    if latest is None or day <= latest or all(d == latest for d in last.values()):
        return
    done = ", ".join(name for name, d in last.items() if d == latest)
    raise ConfigError(
        f"arena day {day.isoformat()}: {latest.isoformat()} is committed for {done} only; run "
        f"it first (alphaloop arena run --date {latest.isoformat()}) so that every account "
        "trades the same days"
    )


def _refuse_data_without_holdings(ledger: Ledger, data: ArenaData, day: date) -> None:
    """Refuse to run a day on data that lacks a symbol an account holds (its position could
    not be marked, sold or valued: the books would be wrong from this day on)."""
    known = set(data.daily.symbols)
    missing: dict[str, list[str]] = {}
    for name in PERSONA_NAMES:
        last = ledger.last_committed_day(name)
        if last is None or last >= day:
            continue
        for position in ledger.positions(name, last):
            if position.quantity != 0 and position.symbol not in known:
                missing.setdefault(position.symbol, []).append(f"{name} ({last.isoformat()})")
    if missing:
        held = "; ".join(
            f"{symbol} held by {', '.join(who)}" for symbol, who in sorted(missing.items())
        )
        raise DataSpecError(
            f"arena day {day.isoformat()}: --data {data.spec} has no bars for {len(missing)} "
            f"symbol(s) the accounts of {ledger.path} hold: {held}; run the arena on data "
            "that includes them (the data the accounts traded)"
        )


def refuse_broken_ledger(home: LabHome, *, full_chain: bool = True) -> None:
    """Refuse to trade on a ledger that fails verification (every trading command's start-up).

    :meth:`arena.ledger.Ledger.verify_before_trading` with the ledger's own recorded days as
    the calendar: the hash chain in full (``full_chain=False``: only after the last verified
    day, for the days of a season after its start-up check), the other checks from the last
    verified day on.

    Raises
    ------
    arena.ledger.LedgerBroken
        One line naming the first broken day and ``alphaloop ledger verify --json`` (the CLI
        prints it as its ``error:`` line and exits with status 2); nothing is written.
    """
    if not home.ledger_db.exists():
        return
    with Ledger(home.ledger_db) as ledger:
        ledger.verify_before_trading(full_chain=full_chain)


def recall_for_day(
    home: LabHome, day: date, config: ArenaConfig
) -> tuple[list[Episode], tuple[float, float]]:
    """Return the memory a decision on ``day`` may see (episodes known before ``day``) and
    the judge's weights for ``day``'s week (:func:`arena.judge.weights_for_day`)."""
    debate = config.debate
    with MemoryStore(home.memory_db) as store, Ledger(home.ledger_db) as ledger:
        weights = weights_for_day(
            store, ledger, day, floor=debate.judge_floor, cap=debate.judge_cap,
            rate=debate.judge_rate, band=debate.judge_band,
        )  # fmt: skip
        episodes = store.episodes(kind="day", before=day)
    return episodes, (weights.aggressive, weights.conservative)


def remember_day(
    home: LabHome, day: date, *, genomes: Sequence[ArenaGenome] | None, force: bool
) -> int:
    """Store the committed days' episodes in the memory (:func:`arena.memory.record_day`):
    after the review, from the ledger alone. Every committed day up to ``day`` that the
    memory lacks is recorded, in order (a home from before the memory, or a write a crash
    lost); a day already remembered is not written again unless it was just recomputed
    (``force``: ``day`` itself). Returns the number of days recorded."""
    genes = {item.genome.id: item.genome.to_dict() for item in genomes or ()}
    recorded = 0
    with MemoryStore(home.memory_db) as store, Ledger(home.ledger_db) as ledger:
        committed = sorted({d for a in ledger.accounts() for d in ledger.committed_days(a)})
        for past in (d for d in committed if d <= day):
            again = force and past == day
            if record_day(store, ledger, past, genes=genes, force=again) is not None:
                recorded += 1
    return recorded


def run_arena_day(
    accounts: Accounts,
    data: ArenaData,
    day: date,
    *,
    home: LabHome,
    config: ArenaConfig,
    genomes: Sequence[ArenaGenome] | None = None,
    force: bool = False,
    write_report: bool = True,
    full_chain: bool = True,
) -> dict[str, Any]:
    """Run (or recognise as committed) trading day ``day``; return the ``--json`` object.

    After the accounts committed the day, its review writes the genome days
    (:func:`review_committed_day`, also for a committed day whose review a crash lost); the
    summary's ``"genomes"`` lists them (:data:`GENOME_SUMMARY_FIELDS`). A day is traded only
    on a ledger that verifies (:func:`refuse_broken_ledger`; ``full_chain=False`` re-links
    only the days after the last verified one: :func:`replay_season` after its own check).
    While the lab is paused (the flag is read here, once per day) the day trades
    :func:`arena.plan.pause_plan`'s plan; ``"paused"`` is the pause (``None``: not paused).
    """
    home.ensure()
    committed = accounts.committed(day)
    already = all(committed.values()) and not force
    if not already:
        _refuse_unsafe_day(home, data, day, force=force, full_chain=full_chain)
    market = data.day_market(day, intraday=not already)
    results: dict[str, AccountDayResult] = {}
    chosen = list(genomes) if genomes is not None else None
    pause = None
    in_force = _adjustments_in_force(home, day, config)
    participation = data.rules().participation_cap
    if not already:
        equities = accounts.equity_before(day)
        chosen = chosen if chosen is not None else arena_genomes(home)
        episodes, weights = recall_for_day(home, day, config)
        plan = plan_day(
            data.daily, day, chosen, config, equities,
            memory=episodes, judge_weights=weights,
            adjustments=in_force, participation_cap=participation,
        )  # fmt: skip
        # The kill switch, read as late as possible: a pause set during a season stops the
        # next day it plans.
        pause = read_pause(home)
        if pause is not None:
            plan = pause_plan(plan, pause)
        if write_report:
            from reports.premarket import write_premarket_plan

            settings = effective_settings(config, in_force, day, participation_cap=participation)
            personas = {name: item.persona for name, item in settings.items()}
            write_premarket_plan(home, plan, market, config, personas)
        results = accounts.run(plan.accounts, market, force=force)
        if write_report:
            from reports.midday import write_midday_review

            write_midday_review(home, day, market, data.daily.market)
    genome_days = review_committed_day(home, data, day, market=market, genomes=chosen)
    remember_day(home, day, genomes=chosen, force=force and not already)
    summary = _summary(
        home, day, market, config, already, results, genome_days,
        periods=periods_per_year("1D", data.daily.market),
    )  # fmt: skip
    if already:
        pause = read_pause(home)
    summary["paused"] = None if pause is None else pause.to_dict()
    report_input = None
    if config.adjustments.enabled:
        report_input, made = _store_adjustments(home, data, day, market, summary, config)
        summary["adjustments"] = {
            "in_force": [record.id for record in in_force],
            "made": [record.id for record in made],
        }
    report: dict[str, str | None] = {"markdown": None, "html": None}
    if write_report:
        from reports.arena_day import write_day_outputs

        report = write_day_outputs(
            home, day, summary, data=data, market=market, report_input=report_input
        )
    summary["report"] = report
    return summary


def _adjustments_in_force(home: LabHome, day: date, config: ArenaConfig) -> list[Adjustment]:
    """The stored adjustments that apply to ``day``'s plan (none while they are off)."""
    path = adjustments_db(home)
    if not config.adjustments.enabled or not path.exists():
        return []
    with AdjustmentStore(path) as store:
        return store.in_force(day)


def _memory_evidence(home: LabHome, day: date, k: int) -> dict[str, Contrast | None]:
    """Per account, how its day return in the ``k`` remembered days most like ``day`` (by
    ``day``'s own context, the regime inputs the day was planned with, the latest a review
    knows) compared with every remembered day up to ``day`` (:func:`account_contrast`)."""
    with MemoryStore(home.memory_db) as store:
        episodes = store.episodes(kind="day", before=day + timedelta(days=1))
    today = next((e for e in episodes if e.day == day), None)
    if today is None:
        return {}
    after = day + timedelta(days=1)
    accounts = sorted({a for e in episodes for a in (e.outcome.get("accounts") or {})})
    return account_contrast(episodes, today.context, after, k, accounts)


def _store_adjustments(
    home: LabHome,
    data: ArenaData,
    day: date,
    market: DayMarket,
    summary: Mapping[str, Any],
    config: ArenaConfig,
) -> tuple[Any, list[Adjustment]]:
    """Store the adjustments of ``day``'s review (from the ledger: a re-run stores the same);
    return the report input they came from (with the adjustments in force and made) and them."""
    from dataclasses import replace

    from reports.arena_day import build_report_input, report_market
    from reports.lessons import LessonConfig, detect_lessons

    report_input = build_report_input(home, data, report_market(data, day, market), summary)
    thresholds = LessonConfig()
    debate = config.debate
    made = propose(
        day,
        detect_lessons(report_input, thresholds),
        report_input.volatility_change,
        config,
        participation_cap=data.rules().participation_cap,
        vol_rise_threshold=thresholds.vol_rise_threshold,
        min_risk_scale=thresholds.min_risk_scale,
        high_vol_risk_scale=thresholds.high_vol_risk_scale,
        evidence=_memory_evidence(home, day, debate.memory_k),
        min_days=debate.memory_min_days,
        min_t=debate.memory_min_t,
    )
    with AdjustmentStore(adjustments_db(home)) as store:
        store.replace_day(day, made)
        in_force = store.in_force(day)
    report_input = replace(
        report_input,
        adjustments_in_force=tuple(r.to_dict() for r in in_force),
        adjustments_made=tuple(r.to_dict() for r in made),
    )
    return report_input, made
