"""The weekly stress-test replay: scenarios through the arena's accounts, in a sandbox, checked.

:func:`replay` builds each named scenario (:mod:`simulators.scenarios`), then drives the three
paper accounts (today's :class:`~arena.personas.ArenaConfig` limits, the genomes of a snapshot
of today's gene pool) through :func:`~arena.plan.plan_day`,
:meth:`~simulators.scenarios.Scenario.day_market` and
:meth:`~arena.account.AccountBook.run_day` with the day's :class:`arena.conditions.DayConditions`
wired by :func:`arena.conditions.wire_day` (the daily arena's wiring; a faulty broker gateway,
the halts and stale feeds as market-condition adapters): a few warm-up days, then the stress
days. Every check of the scenario becomes one line
``{"name", "passed", "detail"}`` with the figures in ``detail``.

Sandbox
-------
Everything is written under ``<lab home>/stress/<date>/``: ``sandbox/gene_pool.sqlite`` (a
snapshot of the arena's gene pool made with SQLite's online backup API, so a pool being written
is copied consistently), ``sandbox/<scenario>/ledger.sqlite`` (a fresh ledger per scenario),
``manual_orders/``, ``report.md``, ``report.html`` and ``result.json``. The arena's ledger and
gene pool are opened read-only for the snapshot and never written.

Exposure
--------
A check on an empty book passes vacuously, so the accounts go into the stress exposed:

* **Seed.** On each warm-up day (from the first; or on the first stress day for the
  scenarios whose faults must meet the orders that build the book: ``data-outage``,
  ``broker-faults``) an account whose book *and* plan invest less than ``min_exposure`` of its
  persona's risk budget trades the **seed book** instead of its plan: equal weights over the
  names tradable that day, ``risk_budget / n`` each, capped at the risk limit's
  ``max_position_weight``. The governor still checks every order (on a high-volatility day it
  halves the size limits, so the book may stay well under the budget), and the book fills over
  the warm-up days within the participation caps.
* **Hold.** From the day after the first seed on, every name held keeps at least its weight at
  the previous close (the plan may add, not sell): if the plan sold the book at the open, the
  stress would test nothing. Only the protections (circuit breaker, daily-loss stop) take risk
  off. ``hold_book: false`` in ``alphaloop/configs/stress.yaml`` replays the plans as they are.

The seeded accounts and each account's gross exposure at the stress start are in the result
(``accounts.<name>.seeded``, ``exposure_at_start``).

No vacuous pass
---------------
Seeding can still leave a book empty: on an index-only file (CSI 300, SSE Composite) one lot
of 100 units of the index costs more than the position limit, so no order is ever sent. Every
scenario therefore ends with the check :data:`EXPOSURE_CHECK` (:func:`check_exposure`): each
account's gross exposure is at least :data:`EXPOSURE_FLOOR` of its equity at the stress start
(or, for the scenarios that build the book on the first stress day, at that day's close); an
account under the floor fails it with why (the names one lot of which costs more than the
position limit, an index named as such; else its orders, fills, vetoes and rejects). The
scenario's own checks need that book (``ledger_verify`` needs fills instead): while the
precondition is not met each of them reports ``passed: false`` with ``detail.precondition``
saying why, so the scenario and the replay fail. The replay never trades an index as if it were
a share or a fund: replay the constituents' daily bars (or an index fund's) instead.

Real intraday bars
------------------
With intraday ``--data`` (1 minute to 1 hour; :mod:`simulators.scenarios`) ``cn-crash-2015``
and ``cn-circuit-breaker-2016`` execute every replayed day on the data's own bars of that
session, through the same :func:`~arena.market.day_market` (one bar's volatility spread over
the scheduled session's bar intervals, as the arena's day on the same data) and executor as the
synthetic minutes. The breaker's halts are then the ones found in the bars
(``HaltWindow.source == "data"``), and the checks read them so:

* ``exchange_halt_respected``: no fill at a bar inside a halt, as on synthetic days. A halt
  the file prints bars for (without volume) must be seen (a ``halt`` incident); a halt with no
  bar of the day inside it (the session simply stops at the 7% breaker, as real files do) can
  neither be seen nor traded in and is listed with ``bars_inside: 0``. A day the exchange is
  known to have closed early (``StressDay.published_close_halt``) whose bars show no closing
  halt fails the check: the file does not record the breaker.
* ``circuit_breaker_froze_within_3_min``: a freeze is due by the first bar at or after the
  crash minute plus the latency (on synthetic minutes: that minute); when the day's bars end
  first (the exchange closed the market) the day is listed in ``bars_ended_before_due``.
* ``daily_loss_within_limit``: the bars an ideal seller could sell into exclude the halts
  found in the data, and there is no bar after a closing halt.

The result names, per scenario, what it executed on (``execution``) and, per stress day, the
halts used and their source (``halts``, :func:`halts_used`); both checks carry the same as one
line (``detail.halts_used``) for the report.

MLflow
------
:func:`arena.tracking.log_stress_run` (driver side only) writes one run in the experiment
``alphaloop-stress``: params (scenarios, seed, size, config hash), metrics per scenario and
account, the report folder as artifacts.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from alphaloop.config import FrozenConfig, load_config
from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from arena.account import AccountBook
from arena.bootstrap import arena_genomes
from arena.conditions import DayAdapters, DayConditions, FeedFault, Halt, wire_day
from arena.debate import TargetPosition
from arena.gateway import BrokerFaults
from arena.ledger import Ledger
from arena.market import DayMarket, trading_days
from arena.money import quantity_to_float
from arena.personas import PERSONA_NAMES, ArenaConfig, load_arena_config
from arena.plan import AccountPlan, plan_day
from arena.rules import BrokerRules
from arena.trade import AccountDayResult
from simulators.bars import Panel
from simulators.scenarios import SCENARIOS, HaltWindow, Scenario, StressDay, build_scenario

__all__ = [
    "EXPOSURE_CHECK",
    "EXPOSURE_FLOOR",
    "STRESS_EXPERIMENT",
    "AccountRun",
    "ScenarioRun",
    "StressConfig",
    "check_exposure",
    "evaluate_checks",
    "halts_used",
    "load_stress_config",
    "replay",
    "run_scenario",
    "snapshot_database",
]

STRESS_EXPERIMENT = "alphaloop-stress"
# A limit-down close within this relative distance of the limit price is a locked limit (the
# fill model's own tolerance).
_LOCK_TOLERANCE = 1e-6
EXPOSURE_CHECK = "exposure"
"""Name of the check every scenario ends with (:func:`check_exposure`)."""
EXPOSURE_FLOOR = 0.01
"""Gross exposure (share of equity) under which an account holds no book: the checks cannot
pass on it (one lot of a 10-unit share on the cn market is 0.1% of the starting capital)."""
# Index codes as data files name them: SSE 000xxx with an SSE mark (sh000001, sh.000300,
# 000001.SH, 000300.XSHG: SSE Composite, CSI 300), SZSE 399xxx (399300), and the bare CSI 300
# code. A bare 000001 is Ping An Bank on the SZSE, not the SSE Composite.
_INDEX_SYMBOL = re.compile(
    r"^(?:sh\.?000\d{3}|000\d{3}\.(?:sh|xshg)|(?:sz\.?)?399\d{3}(?:\.(?:sz|xshe))?|000300)"
    r"(?![0-9])",
    re.IGNORECASE,
)


class StressConfig(FrozenConfig):
    """The stress replay's settings (``alphaloop/configs/stress.yaml``)."""

    size: Literal["small", "full"] = "full"
    """Scenario size: ``small`` (tests: few names, short history, few days) or ``full``."""
    seed: int = Field(default=0, ge=0)
    """Root seed of every scenario."""
    slippage_allowance: float = Field(default=0.015, ge=0.0, lt=1.0)
    """Loss beyond ``max_daily_loss`` allowed for executing the stop's sales (spread, impact,
    the participation cap spreading them over minutes), as a fraction of equity."""
    min_exposure: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of the persona's risk budget below which the seed day seeds the book."""
    hold_book: bool = True
    """After the seed day, each name held keeps at least its weight at the previous close."""


def load_stress_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> StressConfig:
    """Load the packaged ``stress.yaml``, the user file ``path`` over it, then ``overrides``.

    Raises
    ------
    ConfigError
        Naming the file and the key on any bad value.
    """
    return load_config(StressConfig, path, default_name="stress.yaml", overrides=overrides)


# --------------------------------------------------------------------------- sandbox
def snapshot_database(source: Path, target: Path) -> bool:
    """Copy SQLite file ``source`` to ``target`` with the online backup API (read-only source).

    Returns ``False`` (and copies nothing) when ``source`` does not exist.
    """
    if not source.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    # mode=ro: the snapshot can never write to the arena's file (not even a journal).
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
    writer = sqlite3.connect(str(target))
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()
    return True


# --------------------------------------------------------------------------- the run
@dataclass(slots=True, kw_only=True)
class AccountRun:
    """One account's day in a scenario: the executor's result and what it traded on."""

    account: str
    day: date
    stress: bool
    result: AccountDayResult
    start_positions: dict[str, float]
    seeded: bool = False


@dataclass(slots=True, kw_only=True)
class ScenarioRun:
    """Everything a scenario's replay produced (the checks and the report read it)."""

    scenario: Scenario
    config: StressConfig
    arena: ArenaConfig
    rules: BrokerRules
    ledger_path: Path
    manual_dir: Path
    markets: dict[date, DayMarket] = field(default_factory=dict)
    conditions: dict[date, DayConditions] = field(default_factory=dict)
    days: list[AccountRun] = field(default_factory=list)
    exposure: dict[str, float] = field(default_factory=dict)
    built_exposure: dict[str, float] = field(default_factory=dict)
    seeded: dict[str, bool] = field(default_factory=dict)
    manual_files: list[Path] = field(default_factory=list)

    def stress_runs(self, account: str | None = None) -> list[AccountRun]:
        """Return the stress-day runs (of ``account``), in day order."""
        return [r for r in self.days if r.stress and (account is None or r.account == account)]


#: Turns a day's conditions into the executor's adapters (:func:`arena.conditions.wire_day`).
Wiring = Callable[[DayConditions], DayAdapters]


def _conditions(item: StressDay | None) -> DayConditions:
    if item is None:
        return DayConditions()
    broker = None
    if item.broker_faults is not None:
        rates = item.broker_faults
        broker = BrokerFaults(
            reject_rate=rates.reject_rate,
            timeout_rate=rates.timeout_rate,
            seed=rates.seed,
            max_retries=rates.max_retries,
            backoff_minutes=rates.backoff_minutes,
            timeout_filled_share=rates.timeout_filled_share,
        )
    return DayConditions(
        halts=tuple(Halt(h.start, h.end, h.reason) for h in item.halts),
        feed_faults=tuple(
            FeedFault(f.start, f.end, symbols=f.symbols, backup=f.backup) for f in item.feed_faults
        ),
        broker_faults=broker,
        force_regime=item.force_regime,
    )


def _seed_plan(
    plan: AccountPlan,
    arena: ArenaConfig,
    daily: Panel,
    row: int,
    minimum: float,
    *,
    held: float = 0.0,
) -> tuple[AccountPlan, bool]:
    """Return the plan with the seed book when it and the book invest too little.

    ``held`` is the book's gross exposure at the previous close.
    """
    persona = arena.personas.get(plan.account)
    planned = sum(t.weight for t in plan.targets)
    if max(planned, held) >= minimum * persona.risk_budget:
        return plan, False
    names = [s for k, s in enumerate(daily.symbols) if daily.tradable[row, k]]
    if not names:
        return plan, False
    weight = min(persona.risk_budget / len(names), arena.risk.max_position_weight)
    targets = tuple(
        TargetPosition(symbol=s, weight=weight, genome_id="stress-seed", style="seed")
        for s in names
    )
    decision = dict(plan.decision)
    decision["stress_seed"] = {
        "why": f"the plan invests {planned:.1%} of equity, under {minimum:.0%} of the "
        f"{persona.risk_budget:.0%} risk budget: equal weights seed the book",
        "weight": weight,
        "names": names,
    }
    decision["targets"] = [
        {"symbol": t.symbol, "weight": t.weight, "genome_id": t.genome_id, "style": t.style}
        for t in targets
    ]
    seeded = replace(
        plan, targets=targets, decision=decision, decision_id=f"{plan.decision_id}-seed"
    )
    return seeded, True


def _hold_plan(plan: AccountPlan, book: AccountBook, prices: Mapping[str, float]) -> AccountPlan:
    """Return the plan with every held name kept at least at its weight at the previous close."""
    books = book.cash_and_positions()
    held = {s: q for s, q in books["positions"].items() if q > 0 and s in prices}
    equity = books["cash"] + sum(q * prices[s] for s, q in held.items())
    if not held or equity <= 0:
        return plan
    wanted = {t.symbol: t for t in plan.targets}
    targets = []
    kept = []
    for symbol in sorted(set(wanted) | set(held)):
        weight = held.get(symbol, 0.0) * prices.get(symbol, 0.0) / equity
        target = wanted.get(symbol)
        if target is not None and target.weight >= weight:
            targets.append(target)
            continue
        kept.append(symbol)
        targets.append(
            TargetPosition(
                symbol=symbol, weight=weight,
                genome_id=target.genome_id if target else "stress-hold",
                style=target.style if target else "hold",
            )
        )  # fmt: skip
    decision = dict(plan.decision)
    decision["stress_hold"] = {
        "why": "stress replay: the book held at the stress start stays exposed; only the "
        "protections (breaker, daily-loss stop) may take risk off",
        "kept": kept,
    }
    decision["targets"] = [
        {"symbol": t.symbol, "weight": t.weight, "genome_id": t.genome_id, "style": t.style}
        for t in targets
    ]
    return replace(
        plan, targets=tuple(targets), decision=decision, decision_id=f"{plan.decision_id}-hold"
    )


def _gross_exposure(book: AccountBook, prices: Mapping[str, float]) -> float:
    books = book.cash_and_positions()
    gross = sum(abs(q) * prices.get(s, 0.0) for s, q in books["positions"].items())
    equity = books["cash"] + sum(q * prices.get(s, 0.0) for s, q in books["positions"].items())
    return gross / equity if equity > 0 else 0.0


def run_scenario(
    scenario: Scenario,
    *,
    folder: Path,
    genomes: Sequence[Any],
    arena: ArenaConfig,
    config: StressConfig,
    schedule: Any = None,
    wiring: Wiring = wire_day,
) -> ScenarioRun:
    """Replay ``scenario`` through fresh accounts in ``folder/sandbox/<name>/`` (no checks).

    Each day's conditions go through ``wiring`` (:func:`arena.conditions.wire_day`, as in the
    daily arena); the checks read the conditions themselves (``ScenarioRun.conditions``).
    """
    sandbox = folder / "sandbox" / scenario.name
    if sandbox.exists():
        shutil.rmtree(sandbox)  # a re-run of the same day replays from scratch
    sandbox.mkdir(parents=True)
    rules = BrokerRules.from_market(scenario.market)
    run = ScenarioRun(
        scenario=scenario, config=config, arena=arena, rules=rules,
        ledger_path=sandbox / "ledger.sqlite", manual_dir=folder / "manual_orders",
    )  # fmt: skip
    books = {
        name: AccountBook(run.ledger_path, name, arena, rules, schedule) for name in PERSONA_NAMES
    }
    daily = scenario.daily
    all_days = trading_days(daily)
    # Seeded on the first warm-up day (the book then fills over the warm-up days, within the
    # participation caps), or on the first stress day when the faults must meet its orders.
    seed_day = scenario.stress_days[0].day if scenario.build_book else scenario.warmup[0]
    try:
        for day in scenario.days:
            item = scenario.stress_day(day)
            conditions = _conditions(item)
            adapters = wiring(conditions)
            market = scenario.day_market(day)
            equities = {name: book.equity_before(day) for name, book in books.items()}
            plan = plan_day(daily, day, genomes, arena, equities)
            if day == scenario.stress_days[0].day:
                for name, book in books.items():
                    run.exposure[name] = _gross_exposure(book, market.prev_close)
            for name, book in books.items():
                account_plan = plan.accounts[name]
                seeded = False
                if seed_day <= day and (item is None or day == seed_day):
                    # Warm-up (and a build day): seed whenever the book and the plan are thin
                    # (a stop in the warm-up may have emptied the book).
                    held = _gross_exposure(book, market.prev_close)
                    account_plan, seeded = _seed_plan(
                        account_plan, arena, daily, all_days.index(day), config.min_exposure,
                        held=held,
                    )  # fmt: skip
                    run.seeded[name] = run.seeded.get(name, False) or seeded
                if not seeded and day > seed_day and config.hold_book:
                    account_plan = _hold_plan(account_plan, book, market.prev_close)
                start_positions = dict(book.cash_and_positions()["positions"])
                result = book.run_day(account_plan, market, adapters=adapters)
                if day == scenario.stress_days[0].day:
                    # The book a build-book scenario's faults met (check_exposure).
                    run.built_exposure[name] = _gross_exposure(book, market.close)
                run.days.append(
                    AccountRun(
                        account=name, day=day, stress=item is not None, result=result,
                        start_positions=start_positions, seeded=seeded,
                    )
                )  # fmt: skip
            if item is not None:
                run.markets[day] = market
                run.conditions[day] = conditions
    finally:
        for book in books.values():
            book.close()
    run.manual_files = _write_manual_orders(run)
    return run


# --------------------------------------------------------------------------- manual orders
_MANUAL_FIELDS = ("account", "day", "symbol", "side", "quantity", "limit_price",
                  "idempotency_key", "reason")  # fmt: skip


def _write_manual_orders(run: ScenarioRun) -> list[Path]:
    """Write one CSV and one JSON instruction file per account-day with manual orders."""
    from reports.html import atomic_write_text

    written: list[Path] = []
    for item in run.days:
        orders = tuple(getattr(item.result, "manual_orders", ()) or ())
        if not orders:
            continue
        rows = [
            {
                "account": item.account, "day": item.day.isoformat(), "symbol": o.symbol,
                "side": o.side, "quantity": o.quantity, "limit_price": o.limit_price,
                "idempotency_key": o.idempotency_key, "reason": o.reason,
            }
            for o in orders
        ]  # fmt: skip
        stem = f"{run.scenario.name}-{item.account}-{item.day.isoformat()}"
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_MANUAL_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        csv_path = run.manual_dir / f"{stem}.csv"
        json_path = run.manual_dir / f"{stem}.json"
        atomic_write_text(csv_path, buffer.getvalue())
        atomic_write_text(json_path, json.dumps(rows, indent=2, sort_keys=True) + "\n")
        written.extend([csv_path, json_path])
    return written


# --------------------------------------------------------------------------- figures
def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def _risk_events(result: AccountDayResult, kind: str) -> list[Any]:
    return [e for e in result.risk_events if _reason_kind(e.reason) == kind]


def _fill_units(fill: Any, run: ScenarioRun) -> float:
    return quantity_to_float(fill.quantity, run.rules.units.quantity_digits)


def _curve(item: AccountRun) -> list[tuple[datetime, float]]:
    return list(getattr(item.result, "intraday_equity", ()) or ())


def account_figures(run: ScenarioRun) -> dict[str, dict[str, Any]]:
    """Return per account: ``loss`` over the stress days, ``max_drawdown`` intraday, exposure,
    and the orders and fills of the stress days (``stress_orders``, ``stress_fills``).

    ``loss`` is ``1 - equity at the last stress close / equity at the close before the first
    stress day`` (positive: money lost); ``max_drawdown`` is the largest fall of the intraday
    equity from its running peak through the stress days (the start equity included).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in PERSONA_NAMES:
        runs = run.stress_runs(name)
        if not runs:
            continue
        start = float(runs[0].result.previous_equity)
        end = float(runs[-1].result.equity)
        peak, worst = start, 0.0
        for item in runs:
            values = [v for _, v in _curve(item)] or [float(item.result.equity)]
            for value in values:
                peak = max(peak, value)
                worst = max(worst, 1.0 - value / peak if peak > 0 else 0.0)
        out[name] = {
            "loss": 1.0 - end / start if start > 0 else 0.0,
            "max_drawdown": worst,
            "start_equity": start,
            "end_equity": end,
            "exposure_at_start": run.exposure.get(name, 0.0),
            "seeded": run.seeded.get(name, False),
            "stress_orders": sum(len(item.result.orders) for item in runs),
            "stress_fills": sum(len(item.result.fills) for item in runs),
        }
    return out


# --------------------------------------------------------------------------- checks
Check = dict[str, Any]


def _check(name: str, passed: bool, detail: Mapping[str, Any]) -> Check:
    return {"name": name, "passed": bool(passed), "detail": dict(detail)}


def _expected_crash(market: DayMarket, threshold: float) -> datetime | None:
    """Return the first minute the equal-weight market is down more than ``threshold``."""
    for snapshot in market.snapshots:
        moves = [
            price / market.prev_close[s] - 1.0
            for s, price in snapshot.prices.items()
            if s in market.prev_close and market.prev_close[s] > 0
        ]
        if moves and -(sum(moves) / len(moves)) > threshold:
            return snapshot.time.to_pydatetime()
    return None


def check_circuit_breaker(run: ScenarioRun) -> Check:
    """Each trigger froze within the latency, no buy filled after a freeze, none was missed.

    "Missed": on a day the equal-weight market of the day's bars fell more than
    ``crash_threshold``, each account froze by the first bar stamped at or after the crash
    minute plus ``freeze_latency_minutes`` (:func:`_freeze_deadline`). On bars every minute
    that is the crash minute plus the latency; where a real file has no bars (a halt it
    prints nothing for, the lunch break) the freeze is due at the first bar after; when the
    day's bars end first (the exchange closed the market: a halt found in the data) nothing
    can fill after them, and the day is listed in ``bars_ended_before_due`` instead of
    failing. ``halts_used`` names the halts of each stress day and their source.
    """
    limits = run.arena.risk
    latency = float(limits.freeze_latency_minutes)
    freezes: list[dict[str, Any]] = []
    problems: list[str] = []
    ended: list[dict[str, Any]] = []
    expected_days = 0
    for item in run.stress_runs():
        market = run.markets[item.day]
        expected = _expected_crash(market, limits.crash_threshold)
        triggers = [
            e
            for e in _risk_events(item.result, "trigger")
            if e.rule in ("market_crash", "position_drop")
        ]
        frozen = [
            e
            for e in _risk_events(item.result, "freeze")
            if e.rule in ("market_crash", "position_drop")
        ]
        if expected is not None:
            expected_days += 1
        for trigger, freeze in zip(triggers, frozen, strict=False):
            minutes = (freeze.at - trigger.at).total_seconds() / 60.0
            late_buys = [
                f.fill_id for f in item.result.fills if f.side == "buy" and f.at > freeze.at
            ]
            freezes.append(
                {
                    "account": item.account, "day": item.day.isoformat(), "rule": trigger.rule,
                    "trigger": trigger.at.isoformat(), "freeze": freeze.at.isoformat(),
                    "latency_minutes": minutes, "buy_fills_after_freeze": len(late_buys),
                }
            )  # fmt: skip
            if minutes > latency:
                problems.append(f"{item.account} {item.day}: froze {minutes:g} min after trigger")
            if late_buys:
                problems.append(f"{item.account} {item.day}: {len(late_buys)} buy fill(s) after "
                                "the freeze")  # fmt: skip
        if expected is not None:
            first_freeze = min((e.at for e in frozen), default=None)
            deadline = _freeze_deadline(market, expected, latency)
            if first_freeze is None and deadline is None:
                # The day's bars end before the freeze was due: nothing could fill after them.
                ended.append(
                    {"account": item.account, "day": item.day.isoformat(),
                     "market_crash": expected.isoformat(),
                     "last_bar": market.snapshots[-1].time.isoformat(),
                     "halts": [_halt_row(h) for h in _stress_halts(run, item.day)]}
                )  # fmt: skip
            elif first_freeze is None:
                problems.append(
                    f"{item.account} {item.day}: market down more than "
                    f"{limits.crash_threshold:.0%} at {expected.time()} but no freeze"
                )
            elif deadline is not None and first_freeze > deadline:
                problems.append(
                    f"{item.account} {item.day}: market crash at {expected.time()}, freeze only "
                    f"at {first_freeze.time()}"
                )
    if not freezes and not problems:
        problems.append("no circuit-breaker trigger on any stress day: nothing was checked")
    return _check(
        "circuit_breaker_froze_within_3_min",
        not problems,
        {"latency_limit_minutes": latency, "crash_threshold": limits.crash_threshold,
         "days_with_market_crash": expected_days, "freezes": freezes,
         "bars_ended_before_due": ended, "halts_used": _halts_used(run), "problems": problems},
    )  # fmt: skip


def _freeze_deadline(market: DayMarket, crash: datetime, latency: float) -> datetime | None:
    """Return the bar by which a freeze is due after the market crash at ``crash``.

    The first bar stamped at or after ``crash + latency``: on bars every minute that is
    ``crash + latency``; where the data have no bar (a halt a real file prints nothing for)
    the lab can act at the first bar after it. ``None``: the day's bars end first (the
    exchange closed the market, or the file stops).
    """
    due = crash + timedelta(minutes=latency)
    for snapshot in market.snapshots:
        stamp = snapshot.time.to_pydatetime()
        if stamp >= due:
            return stamp
    return None


def _stress_halts(run: ScenarioRun, day: date) -> tuple[HaltWindow, ...]:
    item = run.scenario.stress_day(day)
    return item.halts if item is not None else ()


def _halt_row(halt: HaltWindow) -> dict[str, Any]:
    return {"start": halt.start.isoformat(), "end": halt.end.isoformat(), "source": halt.source,
            "closes_session": halt.closes_session, "reason": halt.reason}  # fmt: skip


def halts_used(scenario: Scenario) -> list[dict[str, Any]]:
    """Return per stress day the exchange halts the replay used, and where they came from.

    ``source`` ``scenario``: planted at the published times in a synthetic day; ``data``:
    found in the real bars (:func:`simulators.session_halts.find_halts`).
    ``published_close_halt``: on real data, when the exchange is known to have closed the
    market that day.
    """
    return [
        {"day": item.day.isoformat(), "halts": [_halt_row(h) for h in item.halts],
         "published_close_halt": None if item.published_close_halt is None
         else item.published_close_halt.isoformat()}
        for item in scenario.stress_days
        if item.halts or item.published_close_halt is not None
    ]  # fmt: skip


def _halts_used(run: ScenarioRun) -> str:
    """One line for the report: each stress day's halts (``HH:MM-HH:MM``) and their source."""
    parts = []
    for item in run.scenario.stress_days:
        if not item.halts and item.published_close_halt is None:
            continue
        windows = ", ".join(
            f"{h.label} ({'from the data' if h.source == 'data' else 'scenario'})"
            for h in item.halts
        ) or "none in the data"  # fmt: skip
        parts.append(f"{item.day.isoformat()}: {windows}")
    return "; ".join(parts) or "none"


def _sellable_bar(bar: Any, rules: BrokerRules, halts: Sequence[Halt]) -> bool:
    if not bar.tradable or not (bar.volume > 0):
        return False
    for halt in halts:
        if halt.start < bar.at <= halt.end:
            return False
    pct = rules.limit_pct(bar.symbol, bar.day)
    if pct is not None and bar.prev_close is not None:
        floor = bar.prev_close * (1.0 - pct)
        if bar.close <= floor * (1.0 + _LOCK_TOLERANCE):
            return False  # a locked limit-down: no buyer
    return True


def _loss_parts(run: ScenarioRun, item: AccountRun) -> dict[str, Any]:
    """Decompose the day's worst intraday loss (see :func:`check_daily_loss`)."""
    result = item.result
    curve = _curve(item)
    start = float(result.previous_equity)
    limit = run.arena.risk.max_daily_loss
    if not curve or start <= 0:
        return {"account": item.account, "day": item.day.isoformat(), "worst_loss": 0.0,
                "allowed": limit, "passed": True, "note": "no intraday equity"}  # fmt: skip
    times = [t for t, _ in curve]
    values = [v for _, v in curve]
    worst_at = min(range(len(values)), key=lambda k: (values[k], k))
    worst_loss = max(0.0, 1.0 - values[worst_at] / start)
    gap = max(0.0, 1.0 - values[0] / start)
    # From the first minute the loss was beyond the limit the stop could act: the loss already
    # there beyond limit and gap is the overshoot of that minute; from then to the worst minute
    # an ideal seller could sell at most the participation cap of each bar it may sell into.
    beyond = next((k for k, v in enumerate(values) if 1.0 - v / start > limit), None)
    overshoot = 0.0
    liquidation = 0.0
    unsold: dict[str, float] = {}
    if beyond is not None and beyond <= worst_at:
        overshoot = max(0.0, (1.0 - values[beyond] / start) - limit - gap)
        liquidation, unsold = _ideal_liquidation(run, item, times[beyond], times[worst_at])
        liquidation /= start
    allowance = run.config.slippage_allowance
    allowed = limit + allowance + gap + overshoot + liquidation
    return {
        "account": item.account,
        "day": item.day.isoformat(),
        "worst_loss": worst_loss,
        "worst_at": times[worst_at].isoformat(),
        "limit_passed_at": None if beyond is None else times[beyond].isoformat(),
        "max_daily_loss": limit,
        "slippage_allowance": allowance,
        "gap_loss": gap,
        "overshoot_loss": overshoot,
        "unsellable_loss": liquidation,
        "unsold_at_worst": unsold,
        "allowed": allowed,
        "passed": worst_loss <= allowed + 1e-12,
    }


def _ideal_liquidation(
    run: ScenarioRun, item: AccountRun, t_from: datetime, t_to: datetime
) -> tuple[float, dict[str, float]]:
    """Return the loss an immediate liquidation from ``t_from`` still takes by ``t_to``.

    The book held at ``t_from`` is sold on the first bar after ``t_from`` each name may be
    sold into (tradable, with volume, not in a halt, not locked limit-down), at that bar's
    close; quantities bought today on a T+1 market cannot be sold. What selling in size costs
    (spread, impact, the participation cap that spreads the sale over minutes) is the stated
    slippage allowance's, not excused here. The loss is each sale's (and, at ``t_to``, each
    unsold unit's) fall from the price at ``t_from``. Returns the loss in money and the units
    still unsold at ``t_to``.
    """
    market = run.markets[item.day]
    halts = run.conditions[item.day].halts
    held = dict(item.start_positions)
    bought: dict[str, float] = {}
    for fill in item.result.fills:
        if fill.at > t_from:
            continue
        units = _fill_units(fill, run)
        held[fill.symbol] = held.get(fill.symbol, 0.0) + (units if fill.side == "buy" else -units)
        if fill.side == "buy":
            bought[fill.symbol] = bought.get(fill.symbol, 0.0) + units
    loss = 0.0
    unsold: dict[str, float] = {}
    for symbol, quantity in sorted(held.items()):
        if quantity <= 0 or symbol not in market.bars:
            continue
        bars = market.bars[symbol]
        reference = next((b.close for b in bars if b.at >= t_from), bars[-1].close)
        stuck = min(quantity, bought.get(symbol, 0.0)) if run.rules.t_plus_one else 0.0
        left = quantity - stuck
        last = reference
        for bar in bars:
            if not (t_from < bar.at <= t_to):
                continue
            last = bar.close if bar.tradable else last
            if left > 0 and _sellable_bar(bar, run.rules, halts):
                loss += left * max(0.0, reference - bar.close)
                left = 0.0
        remaining = stuck + left
        if remaining > 0:
            loss += remaining * max(0.0, reference - last)
            unsold[symbol] = remaining
    return loss, unsold


def check_daily_loss(run: ScenarioRun) -> Check:
    """Each account's worst intraday loss of each stress day stayed within what is allowed.

    ``allowed = max_daily_loss + slippage_allowance + gap_loss + overshoot_loss +
    unsellable_loss``: the gap is the loss already there at the first minute the account could
    act; the overshoot is how far the loss was beyond the limit (and the gap) at the first
    minute it passed the limit (the stop acts from the next minute); the unsellable part is
    what an immediate liquidation from that minute would still have lost by the worst minute
    (:func:`_ideal_liquidation`: the next bar's move, and the quantities that could not be
    sold: bought today under T+1, suspended or locked limit-down names, halts). Executing the
    liquidation in size (spread, impact, the participation cap) must fit in the allowance.
    """
    parts = [_loss_parts(run, item) for item in run.stress_runs()]
    failed = [p for p in parts if not p["passed"]]
    return _check(
        "daily_loss_within_limit",
        bool(parts) and not failed,
        {"days": parts, "failed": [f"{p['account']} {p['day']}" for p in failed]},
    )


def check_stale_data(run: ScenarioRun) -> Check:
    """No order sent or filled on stale data; every outage said so (an incident)."""
    problems: list[str] = []
    windows: list[dict[str, Any]] = []
    working = 0
    for item in run.stress_runs():
        conditions = run.conditions[item.day]
        children = tuple(getattr(item.result, "child_orders", ()) or ())
        incidents = tuple(getattr(item.result, "incidents", ()) or ())
        working += len(children)
        for fault in conditions.feed_faults:

            def inside(at: datetime, fault: FeedFault = fault) -> bool:
                return fault.start < at <= fault.end

            covered = [c for c in children if inside(c.at) and fault.covers(c.symbol)]
            fills = [f for f in item.result.fills if inside(f.at) and fault.covers(f.symbol)]
            stale_sends = [c for c in children if getattr(c, "stale", False)]
            kind = "backup_source" if fault.backup else "stale_pause"
            said = [i for i in incidents if i.kind == kind]
            windows.append(
                {"account": item.account, "day": item.day.isoformat(),
                 "start": fault.start.isoformat(), "end": fault.end.isoformat(),
                 "backup": fault.backup, "orders_sent_inside": len(covered),
                 "fills_inside": len(fills), "sends_on_stale_data": len(stale_sends),
                 "incidents": [i.detail for i in said]}
            )  # fmt: skip
            if not fault.backup and (covered or fills):
                problems.append(f"{item.account} {item.day}: {len(covered)} send(s), "
                                f"{len(fills)} fill(s) while the feed was stale")  # fmt: skip
            if stale_sends:
                problems.append(f"{item.account} {item.day}: {len(stale_sends)} send(s) "
                                "decided on stale prices")  # fmt: skip
            if not said:
                problems.append(f"{item.account} {item.day}: no {kind} incident for the outage")
    if not windows:
        problems.append("no feed outage on any stress day: nothing was checked")
    if working == 0:
        problems.append("no order was working on the stress days: nothing was checked")
    return _check(
        "no_order_on_stale_data", not problems,
        {"orders_sent": working, "windows": windows, "problems": problems},
    )  # fmt: skip


def check_duplicate_fill(run: ScenarioRun) -> Check:
    """No child order (idempotency key) filled more than it asked for; no duplicate fill id."""
    problems: list[str] = []
    keys = timeouts = suppressed = 0
    duplicated: dict[str, float] = {}
    for item in run.stress_runs():
        result = item.result
        children = tuple(getattr(result, "child_orders", ()) or ())
        fill_keys = dict(getattr(result, "fill_keys", {}) or {})
        incidents = tuple(getattr(result, "incidents", ()) or ())
        timeouts += sum(1 for i in incidents if i.kind == "broker_timeout")
        suppressed += sum(1 for i in incidents if i.kind == "duplicate_suppressed")
        asked: dict[str, int] = {}
        for child in children:
            if child.outcome != "resent_duplicate":
                asked.setdefault(child.key, child.quantity)
        filled: dict[str, int] = {}
        for fill in result.fills:
            key = fill_keys.get(fill.fill_id)
            if key is None:
                continue
            filled[key] = filled.get(key, 0) + fill.quantity
        keys += len(filled)
        for key, units in filled.items():
            if units > asked.get(key, 0):
                duplicated[key] = quantity_to_float(
                    units - asked.get(key, 0), run.rules.units.quantity_digits
                )
        ids = [f.fill_id for f in result.fills]
        if len(ids) != len(set(ids)):
            problems.append(f"{item.account} {item.day}: a fill id appears twice")
    if duplicated:
        problems.append(f"{len(duplicated)} child order(s) filled beyond their quantity")
    if timeouts == 0:
        problems.append("no broker time-out happened: nothing was checked")
    if keys == 0:
        problems.append("no child order filled on the stress days: nothing was checked")
    return _check(
        "no_duplicate_fill", not problems,
        {"keys_filled": keys, "broker_timeouts": timeouts, "duplicates_suppressed": suppressed,
         "over_filled_keys": duplicated, "problems": problems},
    )  # fmt: skip


def check_manual_orders(run: ScenarioRun) -> Check:
    """Every child the broker refused after the retries has a manual-order instruction file."""
    problems: list[str] = []
    expected = []
    for item in run.stress_runs():
        for order in tuple(getattr(item.result, "manual_orders", ()) or ()):
            expected.append((item, order))
    found = 0
    for item, order in expected:
        stem = f"{run.scenario.name}-{item.account}-{item.day.isoformat()}"
        path = run.manual_dir / f"{stem}.csv"
        rows: list[dict[str, str]] = []
        if path.exists():
            with path.open(newline="", encoding="utf-8") as stream:
                rows = list(csv.DictReader(stream))
        match = [
            r for r in rows
            if r.get("idempotency_key") == order.idempotency_key and r.get("symbol") == order.symbol
            and r.get("side") == order.side and float(r.get("quantity") or 0) > 0
            and float(r.get("limit_price") or 0) > 0
        ]  # fmt: skip
        if match:
            found += 1
        else:
            problems.append(f"no instruction for {order.idempotency_key} in {path.name}")
    if not expected:
        problems.append("no child order was handed to a person: no manual-order file written")
    return _check(
        "manual_order_written", not problems,
        {"manual_orders": len(expected), "files": [str(p) for p in run.manual_files],
         "found": found, "problems": problems},
    )  # fmt: skip


def check_tightened(run: ScenarioRun) -> Check:
    """Each account's governor tightened the limits on every high-volatility stress day."""
    rows = []
    problems = []
    for item in run.stress_runs():
        if run.conditions[item.day].force_regime != "high_vol":
            continue
        events = _risk_events(item.result, "tighten")
        rows.append({"account": item.account, "day": item.day.isoformat(),
                     "tightened_at": [e.at.isoformat() for e in events],
                     "factor": [e.value for e in events]})  # fmt: skip
        if not events:
            problems.append(f"{item.account} {item.day}: limits not tightened")
    if not rows:
        problems.append("no high-volatility stress day: nothing was checked")
    return _check("governor_tightened", not problems, {"days": rows, "problems": problems})


def check_halts(run: ScenarioRun) -> Check:
    """No fill at a bar inside an exchange halt; each halt with bars inside was seen.

    The halts are the stress day's (:func:`halts_used`): planted at the published times in a
    synthetic day, whose halted minutes still print bars with volume, or found in the real
    bars. A halt with no bar of the day inside it (a real file's session that simply stops at
    the 7% breaker) cannot be seen by the executor, nor traded in: it is listed with
    ``bars_inside: 0``. On real data a day the exchange is known to have closed early
    (``published_close_halt``) must show that closing halt in its bars, else the check fails:
    the file does not record the breaker, so there is nothing to check it against.
    """
    rows = []
    problems = []
    for item in run.stress_runs():
        incidents = tuple(getattr(item.result, "incidents", ()) or ())
        times = [s.time.to_pydatetime() for s in run.markets[item.day].snapshots]
        for halt in _stress_halts(run, item.day):
            inside = [f.fill_id for f in item.result.fills if halt.start < f.at <= halt.end]
            bars_inside = sum(1 for t in times if halt.start < t <= halt.end)
            seen = any(i.kind == "halt" and halt.start < i.time <= halt.end for i in incidents)
            rows.append({"account": item.account, "day": item.day.isoformat(),
                         "start": halt.start.isoformat(), "end": halt.end.isoformat(),
                         "source": halt.source, "closes_session": halt.closes_session,
                         "bars_inside": bars_inside, "fills_inside": len(inside),
                         "incident": seen})  # fmt: skip
            if inside:
                problems.append(f"{item.account} {item.day}: {len(inside)} fill(s) inside the "
                                f"halt {halt.start.time()}-{halt.end.time()}")  # fmt: skip
            if not seen and bars_inside:
                problems.append(f"{item.account} {item.day}: halt at {halt.start.time()} not seen")
    for stress in run.scenario.stress_days:
        published = stress.published_close_halt
        if published is None or any(h.closes_session for h in stress.halts):
            continue
        last = stress.minute.index[-1]
        problems.append(
            f"{stress.day}: the exchange closed the market at {published.strftime('%H:%M')} "
            f"(published), but the data show no closing halt (trades until the bar of "
            f"{last.strftime('%H:%M')}): the file does not record the breaker, so the halt "
            "cannot be checked"
        )
    if not rows and not problems:
        problems.append("no exchange halt on any stress day: nothing was checked")
    return _check(
        "exchange_halt_respected", not problems,
        {"halts": rows, "halts_used": _halts_used(run), "problems": problems},
    )  # fmt: skip


def check_ledger(run: ScenarioRun) -> Check:
    """``ledger verify`` of the sandbox ledger passes."""
    with Ledger(run.ledger_path) as ledger:
        report = ledger.verify(calendar=list(run.scenario.days)).to_dict()
    problems = [] if report["fills_checked"] else ["no fill in the sandbox ledger: nothing "
                                                   "was checked"]  # fmt: skip
    return _check(
        "ledger_verify", bool(report["ok"]) and not problems,
        {"ledger": str(run.ledger_path), "days_checked": report["days_checked"],
         "fills_checked": report["fills_checked"], "issues": report["issues"][:20],
         "problems": problems},
    )  # fmt: skip


def tripped_limits(run: ScenarioRun) -> list[dict[str, Any]]:
    """Return every limit that tripped on the stress days, with its time (oldest first)."""
    out: list[dict[str, Any]] = []
    for item in run.stress_runs():
        for event in item.result.risk_events:
            kind = _reason_kind(event.reason)
            if kind in ("trigger", "tighten", "veto"):
                out.append({"account": item.account, "day": item.day.isoformat(),
                            "time": event.at.isoformat(), "kind": kind, "rule": event.rule,
                            "value": event.value, "limit": event.limit})  # fmt: skip
        for incident in tuple(getattr(item.result, "incidents", ()) or ()):
            if incident.kind in ("daily_loss_stop", "halt"):
                out.append({"account": item.account, "day": item.day.isoformat(),
                            "time": incident.time.isoformat(), "kind": incident.kind,
                            "rule": incident.kind, "value": None, "limit": None})  # fmt: skip
    out.sort(key=lambda r: (r["time"], r["account"], r["rule"]))
    return out


def check_limits_tripped(run: ScenarioRun) -> Check:
    """Each crash day shows the limits that tripped (a lab's own limit, not only a halt)."""
    events = tripped_limits(run)
    crash_days = [d.day.isoformat() for d in run.scenario.stress_days if d.crash]
    own = {(e["day"]) for e in events if e["kind"] in ("trigger", "daily_loss_stop")}
    missing = [d for d in crash_days if d not in own]
    problems = [f"{d}: a crash day on which no limit of the lab tripped" for d in missing]
    if not crash_days:
        problems.append("no crash day in the scenario: nothing was checked")
    return _check(
        "limits_tripped", not problems,
        {"crash_days": crash_days, "tripped": events[:200], "problems": problems},
    )  # fmt: skip


_CHECKS: dict[str, Callable[[ScenarioRun], Check]] = {
    "circuit_breaker_froze_within_3_min": check_circuit_breaker,
    "daily_loss_within_limit": check_daily_loss,
    "no_order_on_stale_data": check_stale_data,
    "no_duplicate_fill": check_duplicate_fill,
    "manual_order_written": check_manual_orders,
    "governor_tightened": check_tightened,
    "exchange_halt_respected": check_halts,
    "ledger_verify": check_ledger,
    "limits_tripped": check_limits_tripped,
}


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _looks_like_index(symbol: str) -> bool:
    return _INDEX_SYMBOL.match(symbol) is not None


def _build_runs(run: ScenarioRun, account: str) -> list[AccountRun]:
    """Return the account's days on which the replay builds its book (seed and warm-up)."""
    first = run.scenario.stress_days[0].day
    if run.scenario.build_book:
        return [r for r in run.days if r.account == account and r.day == first]
    return [r for r in run.days if r.account == account and not r.stress]


def _dear_lots(run: ScenarioRun, account: str) -> tuple[list[dict[str, Any]], int]:
    """Return the names one lot of which costs more than the account's position limit.

    The limit is ``max_position_weight`` of the equity at the stress start (the seed book's cap
    per name), scaled by the governor's tightening when it tightened on a day the book is
    built. Returns the rows and the number of names priced at the stress start.
    """
    first = run.scenario.stress_days[0].day
    prices = {s: p for s, p in run.markets[first].prev_close.items() if p > 0}
    runs = run.stress_runs(account)
    equity = float(runs[0].result.previous_equity) if runs else run.arena.starting_capital
    limit = run.arena.risk.max_position_weight * equity
    factors = [
        float(e.value)
        for r in _build_runs(run, account)
        for e in _risk_events(r.result, "tighten")
        if e.value is not None and 0 < e.value < 1
    ]
    factor = min(factors, default=1.0)
    lot = quantity_to_float(run.rules.lot_units, run.rules.units.quantity_digits)
    rows = []
    for symbol, price in sorted(prices.items()):
        cost = lot * price
        if cost > limit * factor:
            rows.append({"symbol": symbol, "lot": lot, "price": price, "lot_cost": cost,
                         "position_limit": limit, "tighten_factor": factor, "equity": equity,
                         "index": _looks_like_index(symbol)})  # fmt: skip
    return rows, len(prices)


def _why_unexposed(run: ScenarioRun, account: str) -> tuple[str, list[dict[str, Any]]]:
    """Return why ``account`` holds no book, and the names too dear for one lot."""
    dear, priced = _dear_lots(run, account)
    weight = run.arena.risk.max_position_weight
    parts = []
    for row in dear[:3]:
        text = (f"one lot of {row['symbol']} ({row['lot']:g} units at {row['price']:,.2f}) costs "
                f"{_money(row['lot_cost'])} > the position limit ")  # fmt: skip
        if row["lot_cost"] > row["position_limit"]:
            text += (f"{_money(row['position_limit'])} (max_position_weight {weight:.0%} of "
                     f"equity {_money(row['equity'])})")  # fmt: skip
        else:
            text += (f"{_money(row['position_limit'] * row['tighten_factor'])} (tightened "
                     f"x{row['tighten_factor']:g} on the high-volatility days)")  # fmt: skip
        parts.append(text)
    if len(dear) > 3:
        parts.append(f"and {len(dear) - 3} more name(s)")
    if dear and len(dear) == priced:
        why = "no name can be bought in one lot within the position limit: " + "; ".join(parts)
        indices = [row["symbol"] for row in dear if row["index"]]
        if indices:
            why += (f"; {', '.join(indices)} looks like an index, not an instrument the accounts "
                    "can hold (the replay does not invent a fund tracking it): replay its "
                    "constituents' daily bars, or an index fund's (ETF's)")  # fmt: skip
        return why, dear
    runs = _build_runs(run, account)
    orders = [o for r in runs for o in r.result.orders]
    fills = sum(len(r.result.fills) for r in runs)
    vetoes: dict[str, int] = {}
    for r in runs:
        for event in _risk_events(r.result, "veto"):
            vetoes[event.rule] = vetoes.get(event.rule, 0) + 1
    rejects: dict[str, int] = {}
    for order in orders:
        if order.reason:
            rejects[order.reason] = rejects.get(order.reason, 0) + 1
    days = "the first stress day" if run.scenario.build_book else "the warm-up days"
    if not orders:
        why = (f"no order was sent on {days} (the plans and the seed book asked for nothing "
               "that could be bought)")  # fmt: skip
    else:
        why = f"{len(orders)} order(s) and {fills} fill(s) on {days}"
        if vetoes:
            why += "; vetoes: " + ", ".join(f"{k} x{v}" for k, v in sorted(vetoes.items()))
        if rejects:
            why += "; orders ended: " + ", ".join(f"{k} x{v}" for k, v in sorted(rejects.items()))
        if fills:
            why += "; the book was sold again before the stress start"
    if parts:
        why += "; " + "; ".join(parts)
    return why, dear


def check_exposure(run: ScenarioRun) -> Check:
    """Every account goes into the stress with a book: gross exposure >= :data:`EXPOSURE_FLOOR`.

    A book in place at the stress start is measured at the close before the first stress day;
    a book built on the first stress day (``data-outage``, ``broker-faults``) at that day's
    close. An account under the floor fails the check with why (:func:`_why_unexposed`); the
    scenario's other checks then fail too (:func:`evaluate_checks`).
    """
    built = run.scenario.build_book
    accounts: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    whys: dict[str, list[str]] = {}
    for name in PERSONA_NAMES:
        runs = run.stress_runs(name)
        if not runs:
            continue
        exposure = run.built_exposure.get(name, 0.0) if built else run.exposure.get(name, 0.0)
        row: dict[str, Any] = {
            "exposure": exposure, "exposure_at_start": run.exposure.get(name, 0.0),
            "seeded": run.seeded.get(name, False),
            "stress_orders": sum(len(r.result.orders) for r in runs),
            "stress_fills": sum(len(r.result.fills) for r in runs),
        }  # fmt: skip
        if built:
            row["exposure_after_build"] = exposure
        if exposure < EXPOSURE_FLOOR:
            why, dear = _why_unexposed(run, name)
            row["why"] = why
            row["lots_above_limit"] = dear
            whys.setdefault(why, []).append(f"{name} {exposure:.1%}")
            problems.append(f"{name}: gross exposure {exposure:.1%} < {EXPOSURE_FLOOR:.0%}: {why}")
        accounts[name] = row
    if not accounts:
        problems.append("no account ran the stress days: nothing was checked")
    where = "at the close of the first stress day" if built else "at the stress start"
    summary = None
    if whys:
        summary = "; ".join(
            f"no exposure {where} for {', '.join(names)} (floor {EXPOSURE_FLOOR:.0%}): {why}"
            for why, names in whys.items()
        ) + ": the stress would test an empty book, so its checks fail"  # fmt: skip
    elif problems:
        summary = problems[0]
    return _check(
        EXPOSURE_CHECK, not problems,
        {"floor": EXPOSURE_FLOOR, "measured": where, "accounts": accounts,
         "unexposed": [n for n, r in accounts.items() if "why" in r], "why": summary,
         "problems": problems},
    )  # fmt: skip


def _with_precondition(check: Check, exposure: Check) -> Check:
    """Fail ``check`` when the book it needs was never there (``detail.precondition``)."""
    detail = check["detail"]
    if check["name"] == "ledger_verify":
        met = not detail.get("problems")
        detail["precondition"] = {"needs": "fills", "met": met,
                                  "why": None if met else detail["problems"][0]}  # fmt: skip
        return check
    met = bool(exposure["passed"])
    why = None if met else exposure["detail"]["why"]
    detail["precondition"] = {"needs": "exposure", "met": met,
                              "accounts": exposure["detail"]["unexposed"], "why": why}  # fmt: skip
    if not met:
        check["passed"] = False
        detail.setdefault("problems", []).append(f"precondition not met: {why}")
    return check


def evaluate_checks(run: ScenarioRun) -> list[Check]:
    """Return the scenario's checks, in the scenario's order, then :data:`EXPOSURE_CHECK`.

    Every check but ``ledger_verify`` needs the accounts' books (:func:`check_exposure`); on an
    empty book it reports ``passed: false`` with ``detail.precondition`` saying why.
    """
    exposure = check_exposure(run)
    checks = [_with_precondition(_CHECKS[name](run), exposure) for name in run.scenario.checks]
    return [*checks, exposure]


# --------------------------------------------------------------------------- the replay
def replay(
    names: Sequence[str],
    *,
    home: LabHome,
    data_spec: str | None = None,
    config: StressConfig | None = None,
    arena_config: ArenaConfig | None = None,
    seed: int | None = None,
    size: str | None = None,
    run_date: date | None = None,
    track: bool = True,
    on_scenario: Callable[[str], None] | None = None,
    wiring: Wiring = wire_day,
) -> dict[str, Any]:
    """Replay the scenarios ``names`` in a sandbox and return the ``stress replay --json`` object.

    Parameters
    ----------
    names:
        Scenario names (:data:`simulators.scenarios.SCENARIOS`).
    home:
        The lab home (its ledger and gene pool are only read).
    data_spec:
        ``--data``: real bars for the scenarios that can replay them: daily or intraday
        (1 minute to 1 hour) for ``cn-crash-2015``, intraday for ``cn-circuit-breaker-2016``
        (:func:`simulators.scenarios.build_scenario`).
    config, arena_config:
        The stress settings and the arena's (default: the packaged ``stress.yaml`` and
        ``arena.yaml`` of ``alphaloop/configs/``).
    seed, size:
        Override the config's seed and size.
    run_date:
        The ``stress/<date>/`` folder (default: today).
    track:
        Write the MLflow run.
    on_scenario:
        Called with each scenario's name when it is done (progress).
    wiring:
        How each day's conditions become the executor's adapters (default: the daily arena's
        :func:`arena.conditions.wire_day`; every protection runs).

    Raises
    ------
    ConfigError
        On an unknown scenario name (nothing is run).
    DataSpecError
        If ``data_spec`` cannot be loaded or a scenario cannot replay it (no scenario is
        replayed).
    """
    config = config or load_stress_config()
    updates: dict[str, Any] = {}
    if seed is not None:
        updates["seed"] = seed
    if size is not None:
        updates["size"] = size
    if updates:
        config = StressConfig.model_validate({**config.model_dump(), **updates})
    arena_config = arena_config or load_arena_config()
    chosen = list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in SCENARIOS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown stress scenario(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known: {', '.join(SCENARIOS)}"
        )
    folder = home.stress / (run_date or date.today()).isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    sandbox_home = LabHome(folder / "sandbox")
    sandbox_home.root.mkdir(parents=True, exist_ok=True)
    snapshot = snapshot_database(home.gene_pool_db, sandbox_home.gene_pool_db)
    if not snapshot:
        sandbox_home.gene_pool_db.unlink(missing_ok=True)
    genomes = arena_genomes(sandbox_home)
    data: Panel | None = None
    if data_spec:
        from simulators.data_spec import load_market

        data = load_market(data_spec, home=home)
    from rl_exec.registry import load_registered_policy

    schedule = load_registered_policy(home)
    runs: list[ScenarioRun] = []
    scenarios: list[dict[str, Any]] = []
    # Every scenario is built before any runs: data a scenario cannot replay stops the replay
    # (DataSpecError) before anything is replayed.
    built = [build_scenario(n, size=config.size, seed=config.seed, data=data) for n in chosen]
    for name, scenario in zip(chosen, built, strict=True):
        run = run_scenario(
            scenario, folder=folder, genomes=genomes, arena=arena_config, config=config,
            schedule=schedule, wiring=wiring,
        )  # fmt: skip
        checks = evaluate_checks(run)
        runs.append(run)
        scenarios.append(
            {
                "name": name,
                "title": scenario.title,
                "market": scenario.market,
                "source": scenario.source,
                "execution": scenario.execution,
                "halts": halts_used(scenario),
                "passed": all(c["passed"] for c in checks),
                "checks": checks,
                "accounts": account_figures(run),
                "stress_days": [d.day.isoformat() for d in scenario.stress_days],
                "warmup_days": [d.isoformat() for d in scenario.warmup],
                "book": "built on the first stress day"
                if scenario.build_book
                else "in place at the stress start",
                "limits_tripped": tripped_limits(run),
            }
        )
        if on_scenario is not None:
            on_scenario(name)
    from reports.stress import write_stress_report

    result: dict[str, Any] = {
        "date": folder.name,
        "seed": config.seed,
        "size": config.size,
        "config_hash": config.stable_hash(),
        "arena_config_hash": arena_config.stable_hash(),
        "genomes": sorted({g.source for g in genomes}),
        "gene_pool_snapshot": str(sandbox_home.gene_pool_db) if snapshot else None,
        "passed": all(s["passed"] for s in scenarios),
        "scenarios": scenarios,
    }
    paths = write_stress_report(folder, result, runs)
    for entry in scenarios:
        entry["report"] = str(paths["html"])
    result["report"] = {"markdown": str(paths["markdown"]), "html": str(paths["html"])}
    from reports.html import atomic_write_text

    atomic_write_text(
        folder / "result.json", json.dumps(_clean(result), sort_keys=True, indent=2) + "\n"
    )
    if track:
        from arena.tracking import log_stress_run

        result["mlflow_run_id"] = log_stress_run(
            home, result, folder, experiment_name=STRESS_EXPERIMENT
        )
    else:
        result["mlflow_run_id"] = None
    return result


def _clean(value: Any) -> Any:
    from alphaloop.jsonout import clean

    return clean(value)
