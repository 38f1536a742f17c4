"""Driving the arena: one day, a season (replay ``A..B`` with weekly evolution), status.

The accounts are reached through an :class:`Accounts` back end chosen once where the objects
are wired: :class:`LocalAccounts` (three :class:`~arena.cycle.AccountBook` in this process)
or ``arena.actors.RayAccounts`` (one Ray actor each). Everything else is the same code.

A day whose three accounts are committed is not run again (``already_committed``); a day
where only some accounts committed (a crash between two commits) runs the others only, from
the same plan, so the ledger ends as an uninterrupted run's. After the commits the review
stage (:mod:`arena.review`) writes each account's genome days; a committed day whose genome
days are missing (a crash between the commit and the review, a ``--force`` replacement) is
reviewed on the next run of the day, from the ledger and the data alone. A season skips
committed days and so resumes where it stopped; its weekly evolution is keyed by its ``as_of``
day in the gene pool (``EvolutionSession(..., resume=True)`` continues an interrupted one).

The kill switch (:mod:`arena.kill_switch`) is read before each day is planned: while the lab is
paused the day's plan is :func:`arena.cycle.pause_plan`'s (no new orders; with ``flatten``
only the sells closing the positions) and is committed as any other day, its pause in the risk
events; every summary carries ``"paused"`` (the pause, or ``None``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alphaloop.errors import ConfigError, DataSpecError
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
from arena.bootstrap import ArenaGenome, arena_genomes, bootstrap_genomes
from arena.broker import BrokerRules, start_day
from arena.cycle import (
    AccountBook,
    AccountDayResult,
    AccountPlan,
    DayMarket,
    account_metrics,
    benchmark_return,
    day_index,
    day_market,
    liquidation_id,
    pause_plan,
    plan_day,
    trading_days,
)
from arena.intraday import FixedProtections, execute_day
from arena.kill_switch import read_pause
from arena.ledger import GenomeDay, Ledger, OrderRecord
from arena.money import MoneyUnits
from arena.personas import PERSONA_NAMES, ArenaConfig
from arena.review import day_sleeves, review_day
from genome.genes import Genome
from simulators.bars import Panel
from simulators.metrics import periods_per_year

__all__ = [
    "GENOME_SUMMARY_FIELDS",
    "Accounts",
    "ArenaData",
    "LocalAccounts",
    "account_score",
    "arena_status",
    "build_report_input",
    "load_arena_data",
    "refuse_broken_ledger",
    "replay_season",
    "review_committed_day",
    "run_arena_day",
]


# --------------------------------------------------------------------------- data
@dataclass(frozen=True, slots=True, kw_only=True)
class ArenaData:
    """The market the arena trades: the daily panel and where the day's own bars come from.

    Synthetic data generates each day's minute bars from its spec; real intraday data (bars
    of 1 minute to 1 hour) keeps its regular-hours bars in ``intraday`` and ``daily`` is their
    exact aggregate on the market's sessions (:mod:`simulators.intraday_market`); daily-only
    data has neither, and a day executes at its single daily bar.
    """

    daily: Panel
    spec: str
    synthetic: Any = None  # simulators.synthetic.SyntheticSpec for synthetic data
    intraday: Any = None  # simulators.intraday_market.IntradayMarket for real intraday data

    @property
    def has_intraday(self) -> bool:
        """Whether each day executes on its own intraday bars (not its single daily bar)."""
        return self.synthetic is not None or self.intraday is not None

    def minute_bars(self, day: date) -> Panel | None:
        """Return the intraday bars of ``day``, or ``None`` (daily-only data)."""
        if self.intraday is not None:
            return self.intraday.day_bars(day)
        if self.synthetic is None:
            return None
        from simulators.synthetic import generate_intraday

        return generate_intraday(self.synthetic, self.daily, day_index(self.daily, day))

    def rules(self) -> BrokerRules:
        """Return the market's broker rules."""
        return BrokerRules.from_market(self.daily.market)


def load_arena_data(spec: str | None, home: LabHome) -> ArenaData:
    """Load ``--data SPEC`` (the embedded synthetic market when ``None``)."""
    from simulators.data_spec import load_market, parse_data_spec

    parsed = parse_data_spec(spec)
    if parsed.kind == "synthetic":
        from simulators.synthetic import SyntheticSpec, generate_daily

        synthetic = SyntheticSpec.from_options(dict(parsed.options))
        # The minute bars are generated from this very panel, so it is built here, not cached.
        return ArenaData(daily=generate_daily(synthetic), spec=parsed.raw, synthetic=synthetic)
    from simulators.calendars import is_daily_or_slower

    panel = load_market(spec, home=home)
    if is_daily_or_slower(panel.freq):
        return ArenaData(daily=panel, spec=parsed.raw or str(spec))
    from simulators.intraday_market import aggregate_sessions

    try:
        market = aggregate_sessions(panel)
    except ValueError as exc:
        raise DataSpecError(f"--data {spec}: {exc}") from None
    return ArenaData(daily=market.daily, spec=parsed.raw or str(spec), intraday=market)


# --------------------------------------------------------------------------- back ends
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
    """The three accounts as :class:`AccountBook` objects in this process.

    ``fail_after`` (tests only) raises ``RuntimeError`` after that many accounts committed,
    to simulate a crash in the middle of a day.
    """

    def __init__(
        self,
        home: LabHome,
        config: ArenaConfig,
        rules: BrokerRules,
        schedule: Any = None,
        *,
        fail_after: int | None = None,
    ) -> None:
        self.books = {
            name: AccountBook(home.ledger_db, name, config, rules, schedule)
            for name in PERSONA_NAMES
        }
        self.fail_after = fail_after

    def committed(self, day: date) -> dict[str, bool]:
        return {name: book.is_committed(day) for name, book in self.books.items()}

    def equity_before(self, day: date) -> dict[str, float]:
        return {name: book.equity_before(day) for name, book in self.books.items()}

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        out = {}
        for count, name in enumerate(PERSONA_NAMES):
            if self.fail_after is not None and count >= self.fail_after:
                raise RuntimeError(f"injected crash after {count} account(s) committed")
            out[name] = self.books[name].run_day(plans[name], market, force=force)
        return out

    def close(self) -> None:
        for book in self.books.values():
            book.close()


# --------------------------------------------------------------------------- one day
# The figures of a genome day in the ``arena run --json`` summary (``"genomes"``).
GENOME_SUMMARY_FIELDS = (
    "account", "genome_id", "source", "sleeve", "pnl", "expected_pnl", "paper_return",
    "expected_return", "execution_cost", "governor_cuts", "debate_scaling", "residual",
)  # fmt: skip


def _genomes_by_id(
    home: LabHome, chosen: Sequence[ArenaGenome] | None, needed: set[str]
) -> dict[str, Genome]:
    """Return the genomes of ``needed`` ids: the day's, else the arena's, bootstrap or pool."""
    found = {item.genome.id: item.genome for item in chosen or ()}
    if needed - set(found):
        # A review re-derived after a crash: the genomes the plan read, looked up by id.
        for item in [*arena_genomes(home), *bootstrap_genomes()]:
            found.setdefault(item.genome.id, item.genome)
    missing = sorted(needed - set(found))
    if missing and home.gene_pool_db.exists():
        from evolution.store import GenePoolStore

        with GenePoolStore(home.gene_pool_db) as store:
            for genome_id in missing:
                stored = store.genome(genome_id)
                if stored is not None and stored["genome_id"] == genome_id:
                    found[genome_id] = Genome.from_json(str(stored["genome_json"]))
    return {genome_id: found[genome_id] for genome_id in sorted(needed) if genome_id in found}


def review_committed_day(
    home: LabHome,
    data: ArenaData,
    day: date,
    *,
    market: DayMarket | None = None,
    genomes: Sequence[ArenaGenome] | None = None,
) -> list[GenomeDay]:
    """Write the genome days of every account committed but not reviewed on ``day``.

    Crash-only: the review is derived from the ledger and the data, so the same call
    finishes a review a crash interrupted. ``market`` is the day's execution bars (rebuilt
    with the minute bars when it has none and the data has them); ``genomes`` the day's
    genomes (looked up by id in the arena's, the bootstrap set and the gene pool otherwise).

    Returns
    -------
    list of GenomeDay
        Every stored genome day of ``day``, by (account, genome id).
    """
    with Ledger(home.ledger_db) as ledger:
        pending = [
            name
            for name in PERSONA_NAMES
            if ledger.is_committed(name, day) and not ledger.is_reviewed(name, day)
        ]
        if pending:
            if market is None or (not market.intraday and data.has_intraday):
                market = day_market(data.daily, day, data.minute_bars(day))
            needed = {s.genome_id for name in pending for s in day_sleeves(ledger, name, day)}
            rows = review_day(
                ledger, day, daily=data.daily, market=market, rules=data.rules(),
                genomes=_genomes_by_id(home, genomes, needed), accounts=pending,
            )  # fmt: skip
            for name in pending:
                ledger.write_genome_days(name, day, [r for r in rows if r.account == name])
        return ledger.genome_days(start=day, end=day)


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
            # The daily report's score, so the JSON and the report agree.
            figures["score"] = account_score(figures)
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


def _refuse_going_back(home: LabHome, day: date, *, force: bool) -> None:
    """Refuse to run a day before the ledger's last committed day (the books move forward
    only: a day inserted or recomputed there would change every later day's books)."""
    # Read-only: an account of the day may be committing right now.
    last = Ledger.peek_last_committed_day(home.ledger_db)
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


def _refuse_skipping_a_partial_day(home: LabHome, day: date) -> None:
    """Refuse to run a day after one that only some accounts committed (a crash between two
    commits): the others would skip a trading day, a gap verification reports."""
    with Ledger(home.ledger_db) as ledger:
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


def _refuse_data_without_holdings(home: LabHome, data: ArenaData, day: date) -> None:
    """Refuse to run a day on data that lacks a symbol an account holds (its position could
    not be marked, sold or valued: the books would be wrong from this day on)."""
    known = set(data.daily.symbols)
    missing: dict[str, list[str]] = {}
    with Ledger(home.ledger_db) as ledger:
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
            f"symbol(s) the accounts of {home.ledger_db} hold: {held}; run the arena on data "
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
    :func:`arena.cycle.pause_plan`'s plan; ``"paused"`` is the pause (``None``: not paused).
    """
    home.ensure()
    committed = accounts.committed(day)
    already = all(committed.values()) and not force
    if not already:
        _refuse_going_back(home, day, force=force)
        _refuse_skipping_a_partial_day(home, day)
        refuse_broken_ledger(home, full_chain=full_chain)
        _refuse_data_without_holdings(home, data, day)
    market = day_market(data.daily, day, None if already else data.minute_bars(day))
    results: dict[str, AccountDayResult] = {}
    chosen = list(genomes) if genomes is not None else None
    pause = None
    if not already:
        equities = accounts.equity_before(day)
        chosen = chosen if chosen is not None else arena_genomes(home)
        plan = plan_day(data.daily, day, chosen, config, equities)
        # The kill switch, read as late as possible: a pause set during a season stops the
        # next day it plans.
        pause = read_pause(home)
        if pause is not None:
            plan = pause_plan(plan, pause)
        results = accounts.run(plan.accounts, market, force=force)
    genome_days = review_committed_day(home, data, day, market=market, genomes=chosen)
    summary = _summary(
        home, day, market, config, already, results, genome_days,
        periods=periods_per_year("1D", data.daily.market),
    )  # fmt: skip
    if already:
        pause = read_pause(home)
    summary["paused"] = None if pause is None else pause.to_dict()
    report: dict[str, str | None] = {"markdown": None, "html": None}
    if write_report:
        report = write_day_outputs(home, day, summary, data=data, market=market)
    summary["report"] = report
    return summary


# --------------------------------------------------------------------------- outputs
# The report's "typical" daily trade count is the mean over this many committed days before D.
TYPICAL_TRADES_DAYS = 20
# Market-volatility change into D: realised volatility of the equal-weight index over the last
# VOL_SHORT_DAYS returns against the VOL_LONG_DAYS returns before them.
VOL_SHORT_DAYS = 5
VOL_LONG_DAYS = 20
# A win rate is undefined on a day without a closing sell; the score then counts it as neutral.
NEUTRAL_WIN_RATE = 0.5


def write_day_outputs(
    home: LabHome,
    day: date,
    summary: Mapping[str, Any],
    *,
    data: ArenaData,
    market: DayMarket | None = None,
) -> dict[str, str | None]:
    """Write ``runs/<date>/``: the daily report (:mod:`reports.daily`) and ``summary.json``.

    The report (``summary.md``, ``report.html``, the orders/fills/equity/decisions Parquet and
    ``genomes.parquet``, the day's genome days)
    is built from the ledger by :func:`build_report_input`, so a re-run of a committed day
    rewrites the same files. ``data`` and ``market`` are the arena's market and the day's
    execution bars (both needed for the benchmark and the execution shortfall); ``market``
    is rebuilt from ``data`` when it has no minute bars but ``data`` has.
    """
    from reports.daily import run_dir_for, write_daily_report, write_parquet_table

    folder = run_dir_for(home, day)
    folder.mkdir(parents=True, exist_ok=True)
    if market is None or (not market.intraday and data.has_intraday):
        market = day_market(data.daily, day, data.minute_bars(day))
    report_input = build_report_input(home, data, market, summary)
    paths = write_daily_report(folder, report_input)
    # Beyond the report's four tables: the day's positions and risk events, money columns
    # named with their unit like the report's (reports.daily.PARQUET_COLUMNS).
    with Ledger(home.ledger_db) as ledger:
        for table in ("positions", "risk_events"):
            write_parquet_table(
                folder / f"{table}.parquet",
                table,
                _frame(ledger, table, day),
                currency=report_input.currency,
                money_digits=report_input.money_digits,
            )
    _atomic_write(folder / "summary.json", json.dumps(summary, sort_keys=True, default=str))
    return {"markdown": str(paths.summary_md), "html": str(paths.report_html)}


def _frame(ledger: Ledger, table: str, day: date) -> pd.DataFrame:
    """Return ``day``'s rows of a ledger table as stored (its columns on a day without rows)."""
    return pd.DataFrame(ledger.table_rows(table, day=day), columns=ledger.table_columns(table))


def _benchmark_history(daily: Panel, first: date, day: date) -> pd.Series:
    """Equal-weight index of the daily closes (base 100 the day before ``first``) up to ``day``.

    Each day's index return is the mean close-to-close return of the names quoted on both
    days, the same figure as :func:`arena.cycle.benchmark_return`.
    """
    days = trading_days(daily)
    start = max(0, day_index(daily, first) - 1)
    stop = day_index(daily, day)
    levels = [100.0]
    for index in range(start + 1, stop + 1):
        before = daily.close[index - 1]
        after = daily.close[index]
        ok = np.isfinite(before) & np.isfinite(after) & (before > 0) & (after > 0)
        move = float(np.mean(after[ok] / before[ok] - 1.0)) if ok.any() else 0.0
        levels.append(levels[-1] * (1.0 + move))
    return pd.Series(levels, index=pd.Index(days[start : stop + 1]), dtype=np.float64)


def _volatility_change(daily: Panel, day: date) -> float | None:
    """Relative change of the equal-weight index's realised volatility into ``day``."""
    stop = day_index(daily, day)
    start = stop - VOL_SHORT_DAYS - VOL_LONG_DAYS
    if start < 0:
        return None
    closes = daily.close[start : stop + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = closes[1:] / closes[:-1] - 1.0
    index = np.array([np.nanmean(row) if np.isfinite(row).any() else 0.0 for row in moves])
    long_vol = float(np.std(index[:VOL_LONG_DAYS], ddof=1))
    short_vol = float(np.std(index[VOL_LONG_DAYS:], ddof=1))
    if not (long_vol > 0 and math.isfinite(short_vol)):
        return None
    return short_vol / long_vol - 1.0


def _shortfall_bps(fills: Sequence[Any], arrival: Mapping[str, float], qdigits: int) -> float:
    """Execution shortfall of ``fills`` against ``arrival`` prices, bps of arrival value.

    Positive = a cost: buys above and sells below the arrival price. Prices only: commissions
    and taxes are the same whichever schedule trades, so they are left out.
    """
    cost = value = 0.0
    for fill in fills:
        reference = arrival.get(fill.symbol)
        if reference is None or not reference > 0:
            continue
        quantity = fill.quantity / 10.0**qdigits
        sign = 1.0 if fill.side == "buy" else -1.0
        cost += sign * (float(fill.price) - reference) * quantity
        value += reference * quantity
    return 1e4 * cost / value if value > 0 else 0.0


def _twap_fills(
    ledger: Ledger,
    account: str,
    day: date,
    orders: Sequence[OrderRecord],
    market: DayMarket,
    rules: BrokerRules,
    fixed: FixedProtections,
) -> list[Any]:
    """Re-run the day's parent orders with the TWAP schedule; return the fills it would get.

    The same executor as the account's day (:func:`arena.intraday.execute_day`): the books
    restart from the close before ``day``, the planned orders go in at the open in their
    ledger order, and the protections that acted that day are taken as they happened
    (``fixed``: the breaker's freeze time, the daily-loss stop's time and its liquidation
    orders), so with a TWAP policy this gives the ledger's fills exactly.
    """
    state = start_day(ledger.restore_state(account, before=day), day)
    planned = [
        (order.symbol, order.side, order.quantity)
        for order in orders
        if not (order.decision_id or "").endswith(_LIQUIDATION_SUFFIX)
        and order.symbol in market.bars
    ]
    decision = next((order.decision_id for order in orders if order.decision_id), None)
    outcome = execute_day(
        state,
        planned,  # type: ignore[arg-type]
        market,
        rules,
        decision_id=decision,
        schedule=None,
        fixed=fixed,
    )
    return list(outcome.fills)


_LIQUIDATION_SUFFIX = liquidation_id("")


def _fixed_protections(
    ledger: Ledger, account: str, day: date, orders: Sequence[OrderRecord]
) -> FixedProtections:
    """Return the protections that acted on ``account``'s ``day``, from its ledger records."""
    # A risk event's reason is "<kind>: <message>" (arena.cycle); the freezes are kind freeze.
    freezes = [e for e in ledger.risk_events(account, day) if e.reason.startswith("freeze:")]
    breaker = next((e.at for e in freezes if e.rule != "daily_loss"), None)
    stop = next((e.at for e in freezes if e.rule == "daily_loss"), None)
    liquidations = tuple(
        (order.symbol, order.quantity)
        for order in orders
        if (order.decision_id or "").endswith(_LIQUIDATION_SUFFIX)
    )
    return FixedProtections(
        buy_freeze_at=None if breaker is None else pd.Timestamp(breaker).to_pydatetime(),
        stop_at=None if stop is None else pd.Timestamp(stop).to_pydatetime(),
        liquidations=liquidations,
    )


def _genome_for(decision: Mapping[str, Any], symbol: str) -> str:
    for target in decision.get("targets") or ():
        if isinstance(target, Mapping) and target.get("symbol") == symbol:
            return str(target.get("genome_id") or "-")
    # A name sold out of the book is in no target of the day: no genome asked for it.
    return "- (exit)"


def _trades(
    ledger: Ledger,
    account: str,
    day: date,
    market: DayMarket,
    fills: Sequence[Any],
    orders: Sequence[OrderRecord],
    units: MoneyUnits,
) -> tuple[Any, ...]:
    """Return the day's orders that filled as :class:`reports.daily.TradeRecord` objects.

    A buy is an open trade marked at the close of ``day``; a sell closes (part of) a holding:
    its entry price is the holding's average cost at the previous close (the ledger's cost
    basis, :meth:`Ledger.close_before`) and its entry time the last buy fill of the name
    before ``day``. PnL is net of the order's fees.
    """
    from reports.daily import TradeRecord

    money = 10.0**units.money_digits
    qdigits = units.quantity_digits
    held_before = {held.symbol: held for held in ledger.close_before(account, day).positions}
    records = []
    for order in orders:
        if order.filled <= 0:
            continue
        own = [f for f in fills if f.order_id == order.order_id]
        if not own:
            continue
        quantity = sum(f.quantity for f in own) / 10.0**qdigits
        price = sum(float(f.price) * f.quantity for f in own) / sum(f.quantity for f in own)
        fees = (order.commission + order.taxes) / money
        decision = ledger.decision(account, order.decision_id) if order.decision_id else None
        decision = decision or {}
        symbol = order.symbol
        if order.side == "buy":
            mark = market.close.get(symbol, price)
            records.append(
                TradeRecord(
                    account=account,
                    symbol=symbol,
                    side="buy",
                    quantity=quantity,
                    entry_time=own[0].at,
                    exit_time=None,
                    entry_price=price,
                    exit_price=None,
                    pnl=(mark - price) * quantity - fees,
                    genome_id=_genome_for(decision, symbol),
                    decision=decision,
                )
            )
            continue
        before = held_before.get(symbol)
        cost = price
        if before is not None and before.quantity > 0:
            cost = (before.cost_basis / money) / (before.quantity / 10.0**qdigits)
        bought = ledger.last_buy_at(account, symbol, before=day)
        entry_time = bought if bought is not None else own[0].at
        records.append(
            TradeRecord(
                account=account,
                symbol=symbol,
                side="sell",
                quantity=quantity,
                entry_time=entry_time,
                exit_time=own[-1].at,
                entry_price=cost,
                exit_price=price,
                pnl=(price - cost) * quantity - fees,
                genome_id=_genome_for(decision, symbol),
                decision=decision,
            )
        )
    return tuple(records)


def account_score(figures: Mapping[str, Any]) -> float:
    """Return :func:`reports.daily.score_account` of an account's ``arena run`` figures.

    A day without a closing sell has no win rate; it counts as :data:`NEUTRAL_WIN_RATE`.
    """
    from reports.daily import score_account

    win = figures.get("win_rate")
    return score_account(
        float(figures["return"]),
        float(figures["sharpe"]),
        float(figures["max_drawdown"]),
        NEUTRAL_WIN_RATE if win is None else float(win),
    )


def build_report_input(
    home: LabHome, data: ArenaData, market: DayMarket, summary: Mapping[str, Any]
) -> Any:
    """Build the :class:`reports.daily.DailyReportInput` of a committed day from the ledger.

    * equity history: each account's close equity of every committed day up to ``D``, the
      starting capital standing as the close of the trading day before the first one (the
      same curve :func:`arena.cycle.account_metrics` scores);
    * benchmark: the equal-weight index of the data's daily closes over the same days;
    * ``slippage_bps``: the account's fill shortfall against the **arrival price = the open
      of the day's first execution bar** (first minute bar; the daily bar's open on
      daily-only data), so the overnight gap, which no schedule can change, is not counted;
    * ``twap_slippage_bps``: that shortfall minus the one the same parent orders would have
      had under TWAP (:func:`_twap_fills`); it is 0 when the policy is TWAP;
    * ``typical_trades``: mean fills per committed day over the last
      :data:`TYPICAL_TRADES_DAYS` days before ``D`` (0 without history);
    * ``genomes``: the day's genome days (:mod:`arena.review`) as plain
      :class:`reports.daily.GenomeRow` values, by (account, genome id);
    * ``currency``/``money_digits``: the accounts' book units (``MoneyUnits``, the same for
      the three), which name the Parquet money columns.
    """
    from reports.daily import GENOME_COLUMNS, AccountDay, DailyReportInput, GenomeRow

    day = date.fromisoformat(str(summary["date"]))
    rules = data.rules()
    arrival = {symbol: float(bars[0].open) for symbol, bars in market.bars.items() if bars}
    accounts = []
    with Ledger(home.ledger_db) as ledger:
        first = day
        for name in PERSONA_NAMES:
            days = [d for d, _ in ledger.equity_history(name) if d <= day]
            if days:
                first = min(first, days[0])
        all_days = trading_days(data.daily)
        before_first = all_days[max(0, all_days.index(first) - 1)]
        for name in PERSONA_NAMES:
            figures = summary["accounts"][name]
            record = ledger.account_record(name)
            money = 10.0**record.units.money_digits
            qdigits = record.units.quantity_digits
            history = [(d, e.equity / money) for d, e in ledger.equity_history(name) if d <= day]
            equity_history = pd.Series(
                [record.initial_cash / money, *(e for _, e in history)],
                index=pd.Index([before_first, *(d for d, _ in history)]),
                dtype=np.float64,
            )
            fills = ledger.fills(name, day)
            orders = ledger.orders(name, day)
            slippage = _shortfall_bps(fills, arrival, qdigits)
            twap = _twap_fills(
                ledger, name, day, orders, market, rules,
                _fixed_protections(ledger, name, day, orders),
            )  # fmt: skip
            counts = ledger.daily_fill_counts(name, before=day, limit=TYPICAL_TRADES_DAYS)
            typical = float(np.mean([n for _, n in counts])) if counts else 0.0
            equity_now = float(equity_history.iloc[-1])
            positions = {
                held.symbol: held.value / money / equity_now
                for held in ledger.positions(name, day)
                if equity_now > 0
            }
            win = figures["win_rate"]
            accounts.append(
                AccountDay(
                    name=name,
                    equity_history=equity_history,
                    day_return=float(figures["return"]),
                    trades_today=int(figures["trades"]),
                    win_rate=NEUTRAL_WIN_RATE if win is None else float(win),
                    max_drawdown=float(figures["max_drawdown"]),
                    sharpe=float(figures["sharpe"]),
                    score=float(figures["score"]),
                    positions=positions,
                    typical_trades=typical,
                    slippage_bps=slippage,
                    twap_slippage_bps=slippage - _shortfall_bps(twap, arrival, qdigits),
                    trades=_trades(ledger, name, day, market, fills, orders, record.units),
                )
            )
        genome_rows = tuple(
            GenomeRow(**{name: getattr(row, name) for name in GENOME_COLUMNS})
            for row in ledger.genome_days(start=day, end=day)
        )
        tables = {
            table: _frame(ledger, table, day)
            for table in ("orders", "fills", "decisions", "equity")
        }
        books = {ledger.account_record(name).units for name in PERSONA_NAMES}
    if len(books) != 1:
        raise ConfigError(
            f"the arena's accounts keep their books in different units ({books}): a daily "
            "report names its money columns with one currency"
        )
    (book,) = books
    regime = dict(summary.get("regime") or {"regime": "unknown"})
    risk_events = tuple(dict(event) for event in summary.get("risk_events", ()))
    return DailyReportInput(
        date=day,
        accounts=tuple(accounts),
        benchmark_history=_benchmark_history(data.daily, first, day),
        benchmark_return=float(summary["benchmark"]["return"]),
        regime=regime,
        risk_events=risk_events,
        orders=tables["orders"],
        fills=tables["fills"],
        decisions=tables["decisions"],
        equity=tables["equity"],
        volatility_change=_volatility_change(data.daily, day),
        periods_per_year=periods_per_year("1D", data.daily.market),
        genomes=genome_rows,
        execution_bars=_execution_bars(market),
        currency=book.currency,
        money_digits=book.money_digits,
    )


def _execution_bars(market: DayMarket) -> str:
    """``"daily"`` or the bar size the day executed on (``DailyReportInput.execution_bars``)."""
    if not market.intraday:
        return "daily"
    stamps = sorted({bar.at for bars in market.bars.values() for bar in bars})
    if len(stamps) < 2:
        return "intraday"
    step = min(b - a for a, b in pairwise(stamps))
    minutes = int(step.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes}min"


def _atomic_write(path: Path, text: str) -> None:
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


# --------------------------------------------------------------------------- season
def season_days(data: ArenaData, start: date, end: date) -> list[date]:
    """Return the trading days of the data in ``[start, end]`` that have an earlier bar."""
    days = trading_days(data.daily)
    return [d for d in days[1:] if start <= d <= end]


def replay_season(
    accounts: Accounts,
    data: ArenaData,
    start: date,
    end: date,
    *,
    home: LabHome,
    config: ArenaConfig,
    evolve_weekday: int | None = 4,
    evolve: Callable[[date], dict[str, Any]] | None = None,
    on_day: Callable[[dict[str, Any]], None] | None = None,
    write_report: bool = True,
    close: Callable[[date], Any] | None = None,
) -> dict[str, Any]:
    """Run every trading day in ``[start, end]``, skipping committed ones; evolve weekly.

    Parameters
    ----------
    evolve_weekday:
        Weekday (Monday 0 ... Sunday 6) after whose close the gene pool evolves; ``None``
        never evolves.
    evolve:
        ``as_of day -> summary``: the weekly evolution (see :func:`weekly_evolution`).
    on_day:
        Called with each day's summary (progress).
    close:
        ``day -> LoopDay``: closes the loop after each day (:func:`closed_loop`): the day's
        paper record into the gene pool, then promotions and demotions. ``None`` leaves the
        pool alone (an open loop).
    """
    days = season_days(data, start, end)
    if not days:
        raise ConfigError(f"arena replay: no trading day of {data.spec} between {start} and {end}")
    # The ledger as found is verified once in full; each day then re-links only the days
    # committed after the last verified one (the season's own).
    refuse_broken_ledger(home)
    ran = skipped = 0
    paused_days: list[str] = []
    evolutions: list[dict[str, Any]] = []
    loop_days: list[Any] = []
    for day in days:
        summary = run_arena_day(
            accounts, data, day, home=home, config=config, write_report=write_report,
            full_chain=False,
        )  # fmt: skip
        if summary["already_committed"]:
            skipped += 1
        else:
            ran += 1
            if summary["paused"] is not None:
                paused_days.append(summary["date"])
        if close is not None:
            loop_day = close(day)
            loop_days.append(loop_day)
            summary["loop"] = {"transitions": list(loop_day.transitions)}
        if on_day is not None:
            on_day(summary)
        if evolve is not None and evolve_weekday is not None and day.weekday() == evolve_weekday:
            evolutions.append(evolve(day))
    with Ledger(home.ledger_db) as ledger:
        last = ledger.last_committed_day()
    return {
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "days": len(days),
        "ran": ran,
        "skipped": skipped,
        "evolutions": evolutions,
        "last_committed": None if last is None else last.isoformat(),
        "loop": None if close is None else _loop_summary(loop_days),
        "paused_days": paused_days,
        "paused": _paused(home),
    }


def _paused(home: LabHome) -> dict[str, Any] | None:
    pause = read_pause(home)
    return None if pause is None else pause.to_dict()


def _loop_summary(days: Sequence[Any]) -> dict[str, Any]:
    from arena.loop import loop_summary

    return loop_summary(days)


def closed_loop(home: LabHome, data: ArenaData, *, promotion: Any = None) -> Callable[[date], Any]:
    """Return the season's loop closer: after each day, :func:`arena.loop.close_loop`.

    It reads the day's genome days (the review's records in the ledger) and applies the
    lifecycle of ``promotion`` (the packaged ``evolution.yaml``'s ``promotion:`` by default).
    """
    from arena.loop import close_loop
    from evolution.session import load_session_config

    config = promotion if promotion is not None else load_session_config().promotion
    periods = periods_per_year(data.daily.freq, data.daily.market)
    calibrations: dict[tuple[str, str], Any] = {}  # the stand-ins', kept across the days

    def close(day: date) -> Any:
        with Ledger(home.ledger_db) as ledger:
            rows = ledger.genome_days(start=day, end=day)
        # Promotions and demotions change the statuses an evolution session works on: not
        # while one runs on this home (alphaloop.locks).
        with store_lock(home, "gene_pool", purpose=f"closing the loop of {day.isoformat()}"):
            return close_loop(
                home, day, rows, config=config, periods_per_year=periods,
                config_hash=config.stable_hash(), daily=data.daily, calibrations=calibrations,
            )  # fmt: skip

    return close


def weekly_evolution(
    home: LabHome,
    data: ArenaData,
    *,
    generations: int = 5,
    population: int = 16,
    seed: int = 0,
    window: int | None = None,
    holdout: int | None = None,
    track: bool = False,
    config: Any = None,
) -> Callable[[date], dict[str, Any]]:
    """Return the season's weekly evolution: a small ``EvolutionSession`` as of the day.

    Each week continues the pool's living population (one living pool: lineage and the trial
    registry span the weeks), with enough generations (default 5) that mutants and hybrids are
    born and scored. The session is identified by (seed, config, data, as_of) and resumed when
    it exists, so a season interrupted during an evolution continues it rather than starting a
    second one. ``config`` (a ``SessionConfig``) replaces the small default configuration.
    """

    def evolve(day: date) -> dict[str, Any]:
        from evolution.session import EvolutionSession, load_session_config

        session_config = config
        if session_config is None:
            overrides: dict[str, Any] = {
                "evolution": {"population": population, "elite": 2, "immigrants": 2},
                "refine": {"top": 1, "trials": 4},
                "gate_top": 2,
            }
            if window is not None:
                overrides["fitness"] = {"window": window}
            if holdout is not None:
                overrides["holdout"] = holdout
            session_config = load_session_config(overrides=overrides)
        session = EvolutionSession(
            home=home, panel=data.daily, data_spec=data.spec, as_of=day.isoformat(),
            seed=seed, config=session_config, workers=0, track=track,
        )  # fmt: skip
        try:
            summary = session.run(generations, resume=True)
        finally:
            session.close()
        births: dict[str, int] = {}
        for generation in summary.get("generations", ()):
            for operator, count in generation.get("births", {}).items():
                births[operator] = births.get(operator, 0) + int(count)
        return {
            "as_of": day.isoformat(),
            "session": summary.get("session_id"),
            "generations": len(summary.get("generations", ())),
            "births": dict(sorted(births.items())),
            "passed_gate": sum(int(g.get("promoted", 0)) for g in summary.get("generations", ())),
        }

    return evolve


# --------------------------------------------------------------------------- status
def arena_status(home: LabHome) -> dict[str, Any]:
    """Return the last committed day, each account's equity there and the pause (``arena
    status``; ``"paused"``: :meth:`arena.kill_switch.Pause.to_dict`, ``None`` when not paused).

    ``"partial"`` is ``None``, or, when only some accounts committed the last day (a crash
    between two commits), ``{"day", "committed", "missing"}``: the day is not complete until
    ``arena run --date DAY`` commits the missing accounts.
    """
    path = home.ledger_db
    accounts: dict[str, Any] = {}
    last_day: str | None = None
    if not path.exists():
        # Reading never creates the ledger.
        return {
            "ledger": str(path), "last_committed": last_day, "partial": None,
            "accounts": accounts, "paused": _paused(home),
        }  # fmt: skip
    with Ledger(path) as ledger:
        registered = {record.account: record for record in ledger.account_records()}
        closes = ledger.last_equities()
    for name, (day, snapshot) in closes.items():
        record = registered[name]
        scale = 10.0**record.units.money_digits
        equity = snapshot.equity / scale
        initial = record.initial_cash / scale
        accounts[name] = {
            "day": day.isoformat(),
            "equity": equity,
            "cash": snapshot.cash / scale,
            "total_return": equity / initial - 1.0 if initial > 0 else math.nan,
        }
        last_day = day.isoformat() if last_day is None or day.isoformat() > last_day else last_day
    # A day some accounts committed and others not (a crash between two commits): partial.
    names = sorted(set(PERSONA_NAMES) | set(registered))
    behind = [name for name in names if name not in accounts or accounts[name]["day"] != last_day]
    partial = None
    if last_day is not None and behind:
        partial = {
            "day": last_day,
            "committed": [name for name in names if name not in behind],
            "missing": behind,
        }
    return {
        "ledger": str(path), "last_committed": last_day, "partial": partial,
        "accounts": accounts, "paused": _paused(home),
    }  # fmt: skip
