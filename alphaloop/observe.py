"""What an operator watches: one read-only snapshot of a lab home's stores.

:func:`read_lab` reads the arena's ledger, the gene pool, the kill switch's flag and the last
stress replay through their own read APIs (:class:`arena.ledger.Ledger`,
:class:`evolution.store.GenePoolStore`, :func:`arena.kill_switch.read_pause`, the replay's
``result.json``) and returns a :class:`LabSnapshot`: the numbers the exporter
(:mod:`alphaloop.metrics`), ``alphaloop status`` and later a supervision page or alert rules
show. It never writes: a store that does not exist is reported absent, never created, and no
store lock is taken (SQLite lets readers in beside a writer; a scrape must never make an
``arena run`` wait). A store that cannot be read is reported in :attr:`LabSnapshot.errors`
(one line naming the store and why) and the rest of the snapshot is still filled.

The alert records of :mod:`alphaloop.alerts` (``<home>/ops.sqlite``, read through
:func:`alphaloop.alert_store.read_alerts`) are in :attr:`LabSnapshot.alerts`: the newest
:data:`ALERTS_SHOWN`, newest day first, each ``alert_id``, ``day``, ``rule``, ``key``,
``severity``, ``subject``, ``message``, ``detail``, ``raised_at`` and ``delivery``
(``attempts``, ``delivered_at``, ``last_error``); :attr:`LabSnapshot.alert_totals` counts
them all per rule.

Definitions (per account, from the ledger's committed days):

``equity``, ``cash``
    At the account's last committed close, in the account currency.
``drawdown``
    ``1 - equity / max(initial cash, every close so far)``: 0 at a new high.
``max_drawdown``
    The largest ``drawdown`` over the account's closes.
``daily_pnl``
    ``equity(last close) - equity(close before)`` (the initial cash before the first day).
``orders``, ``fills``, ``rejects``
    Totals over the committed days; ``rejects`` the orders that ended ``rejected``.
``risk_events``
    Totals over the committed days, ``rule -> kind -> count``: the rule that raised the event
    and what the governor did (``veto``, ``clip``, ``freeze`` ...: the prefix of the stored
    reason, :data:`arena.risk.EVENT_KINDS`; ``other`` for a reason without one).
``shortfall``
    The last reviewed day's execution shortfall against the arrival price as a ratio of the
    traded value: the review's per-genome ``avg_slippage_bps`` weighted by each genome day's
    traded value (``turnover x allocation``) over the day's traded value; ``None`` without
    fills that day.
``divergence``
    The last reviewed day's paper-versus-backtest gap:
    ``sum(pnl - expected_pnl) / sum(allocation)`` over the account's genome days (positive =
    the paper account did better than its shadow backtests); ``None`` before the first review.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alphaloop.home import LabHome

__all__ = [
    "REGIMES",
    "AccountView",
    "GenerationView",
    "LabSnapshot",
    "StressView",
    "read_lab",
    "read_stress",
]

#: How many alert records (newest first) a snapshot carries; the totals count them all.
ALERTS_SHOWN = 100

#: The regimes a day can be read as (:data:`genome.bounds.REGIMES` and ``unknown``).
REGIMES: tuple[str, ...] = ("bull", "bear", "range", "high_vol", "unknown")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """One paper account at its last committed close (module docstring for each figure)."""

    account: str
    last_day: date
    committed_at: datetime | None
    equity: float
    cash: float
    initial_cash: float
    drawdown: float
    max_drawdown: float
    daily_pnl: float
    days: int
    orders: int
    fills: int
    rejects: int
    risk_events: dict[str, dict[str, int]]
    reviewed_day: date | None
    shortfall: float | None
    divergence: float | None

    @property
    def total_return(self) -> float:
        """Return ``equity / initial cash - 1`` (NaN without initial cash)."""
        return self.equity / self.initial_cash - 1.0 if self.initial_cash > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (dates as ISO text)."""
        return {
            "account": self.account,
            "last_day": self.last_day.isoformat(),
            "committed_at": None if self.committed_at is None else self.committed_at.isoformat(),
            "equity": self.equity,
            "cash": self.cash,
            "initial_cash": self.initial_cash,
            "total_return": self.total_return,
            "drawdown": self.drawdown,
            "max_drawdown": self.max_drawdown,
            "daily_pnl": self.daily_pnl,
            "days": self.days,
            "orders": self.orders,
            "fills": self.fills,
            "rejects": self.rejects,
            "risk_events": {rule: dict(kinds) for rule, kinds in self.risk_events.items()},
            "reviewed_day": None if self.reviewed_day is None else self.reviewed_day.isoformat(),
            "shortfall": self.shortfall,
            "divergence": self.divergence,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationView:
    """The gene pool's last committed generation (the newest by commit time)."""

    session_id: str
    generation: int
    committed_at: datetime
    size: int
    best_score: float | None
    median_score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "generation": self.generation,
            "committed_at": self.committed_at.isoformat(),
            "size": self.size,
            "best_score": self.best_score,
            "median_score": self.median_score,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StressView:
    """The last stress replay (``<home>/stress/<date>/result.json``, the newest date)."""

    date: date
    passed: bool
    scenarios: dict[str, bool]
    written_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "passed": self.passed,
            "scenarios": dict(self.scenarios),
            "written_at": self.written_at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LabSnapshot:
    """Everything :func:`read_lab` read, at ``read_at`` (UTC)."""

    home: Path
    read_at: datetime
    stores: dict[str, bool]
    accounts: dict[str, AccountView] = field(default_factory=dict)
    regime: str | None = None
    pool: dict[str, int] = field(default_factory=dict)
    generation: GenerationView | None = None
    pause: dict[str, Any] | None = None
    stress: StressView | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_totals: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def last_day(self) -> date | None:
        """Return the latest last committed day over the accounts (``None`` before any)."""
        return max((view.last_day for view in self.accounts.values()), default=None)

    @property
    def last_committed_at(self) -> datetime | None:
        """Return when the latest committed account day was written (``None`` before any)."""
        times = [v.committed_at for v in self.accounts.values() if v.committed_at is not None]
        return max(times, default=None)

    @property
    def ok(self) -> bool:
        """Return whether every store that exists was read."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``alphaloop status --json``)."""
        last_day = self.last_day
        committed = self.last_committed_at
        return {
            "home": str(self.home),
            "read_at": self.read_at.isoformat(),
            "ok": self.ok,
            "stores": dict(self.stores),
            "last_day": None if last_day is None else last_day.isoformat(),
            "last_committed_at": None if committed is None else committed.isoformat(),
            "accounts": {name: view.to_dict() for name, view in self.accounts.items()},
            "regime": self.regime,
            "pool": dict(self.pool),
            "generation": None if self.generation is None else self.generation.to_dict(),
            "paused": self.pause,
            "stress": None if self.stress is None else self.stress.to_dict(),
            "alerts": [dict(alert) for alert in self.alerts],
            "alert_totals": dict(self.alert_totals),
            "errors": dict(self.errors),
        }


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _drawdowns(initial: float, curve: list[float]) -> tuple[float, float]:
    """Return (drawdown at the last close, the largest drawdown) of ``curve``."""
    peak, worst, now = initial, 0.0, 0.0
    for value in curve:
        peak = max(peak, value)
        now = 1.0 - value / peak if peak > 0 else 0.0
        worst = max(worst, now)
    return now, worst


def _event_kind(reason: str, kinds: tuple[str, ...]) -> str:
    # The ledger stores the governor's event as "<kind>: <message>" (arena/risk.py).
    prefix = reason.split(":", 1)[0].strip()
    return prefix if prefix in kinds else "other"


def _read_ledger(path: Path) -> tuple[dict[str, AccountView], str | None]:
    from arena.ledger import Ledger
    from arena.risk import EVENT_KINDS

    with Ledger(path) as ledger:
        records = {record.account: record for record in ledger.account_records()}
        days = ledger.table_rows("days")
        orders = ledger.table_rows("orders")
        events = ledger.table_rows("risk_events")
        histories = {name: ledger.equity_history(name) for name in records}
        reviewed: dict[str, tuple[date, list[Any]]] = {}
        for name in records:
            reviewed_days = [date.fromisoformat(r["day"]) for r in days if r["account"] == name]
            for day in sorted(reviewed_days, reverse=True):
                if ledger.is_reviewed(name, day):
                    reviewed[name] = (day, ledger.genome_days(name, start=day, end=day))
                    break
        last = max((day for history in histories.values() for day, _ in history[-1:]), default=None)
        decision = (
            None if last is None else next(iter(ledger.decisions("synthesis", last).values()), None)
        )
    regime: str | None = None
    if decision is not None:
        reading = decision.get("perception", {}).get("regime")
        regime = reading.get("regime") if isinstance(reading, dict) else None
    views: dict[str, AccountView] = {}
    for name, record in records.items():
        history = histories[name]
        if not history:
            continue
        scale = 10.0**record.units.money_digits
        curve = [snapshot.equity / scale for _, snapshot in history]
        initial = record.initial_cash / scale
        drawdown, worst = _drawdowns(initial, curve)
        own_days = [r for r in days if r["account"] == name]
        committed = max((str(r["committed_at"]) for r in own_days), default=None)
        own_orders = [r for r in orders if r["account"] == name]
        counted = Counter(
            (str(r["rule"]), _event_kind(str(r["reason"]), EVENT_KINDS))
            for r in events
            if r["account"] == name
        )
        risk: dict[str, dict[str, int]] = {}
        for (rule, kind), count in sorted(counted.items()):
            risk.setdefault(rule, {})[kind] = count
        day_reviewed, genome_days = reviewed.get(name, (None, []))
        traded = [g.turnover * g.allocation for g in genome_days]
        value = sum(traded)
        allocation = sum(g.allocation for g in genome_days)
        shortfall = (
            sum(g.avg_slippage_bps / 1e4 * t for g, t in zip(genome_days, traded, strict=True))
            / value
            if value > 0
            else None
        )
        divergence = (
            sum(g.pnl - g.expected_pnl for g in genome_days) / allocation
            if allocation > 0
            else None
        )
        views[name] = AccountView(
            account=name,
            last_day=history[-1][0],
            committed_at=None if committed is None else _utc(committed),
            equity=curve[-1],
            cash=history[-1][1].cash / scale,
            initial_cash=initial,
            drawdown=drawdown,
            max_drawdown=worst,
            # In minor units first, so that the difference is exact before the one division.
            daily_pnl=(
                history[-1][1].equity
                - (history[-2][1].equity if len(history) > 1 else record.initial_cash)
            )
            / scale,
            days=len(own_days),
            orders=sum(int(r["n_orders"]) for r in own_days),
            fills=sum(int(r["n_fills"]) for r in own_days),
            rejects=sum(1 for r in own_orders if r["status"] == "rejected"),
            risk_events=risk,
            reviewed_day=day_reviewed,
            shortfall=shortfall,
            divergence=divergence,
        )
    return views, regime


def _read_pool(path: Path) -> tuple[dict[str, int], GenerationView | None]:
    from evolution.store import GenePoolStore

    with GenePoolStore(path) as store:
        counts = store.status_counts()
        generations = store.all_generations()
        newest = max(
            generations,
            key=lambda g: (g["committed_at"], g["session_id"], g["generation"]),
            default=None,
        )
        members = (
            []
            if newest is None
            else store.population(str(newest["session_id"]), int(newest["generation"]))
        )
    if newest is None:
        return counts, None
    scores = [float(m["score"]) for m in members if math.isfinite(float(m["score"]))]
    view = GenerationView(
        session_id=str(newest["session_id"]),
        generation=int(newest["generation"]),
        committed_at=datetime.fromtimestamp(float(newest["committed_at"]), UTC),
        size=len(members),
        best_score=max(scores) if scores else None,
        median_score=statistics.median(scores) if scores else None,
    )
    return counts, view


def _read_stress(folder: Path) -> StressView | None:
    found: list[tuple[date, Path]] = []
    if folder.is_dir():
        for child in folder.iterdir():
            try:
                day = date.fromisoformat(child.name)
            except ValueError:
                continue
            if (child / "result.json").is_file():
                found.append((day, child / "result.json"))
    if not found:
        return None
    day, path = max(found)
    result = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(result, dict) or not isinstance(result.get("passed"), bool):
        raise ValueError(f"{path}: no boolean 'passed'")
    scenarios = {
        str(s["name"]): bool(s["passed"])
        for s in result.get("scenarios", [])
        if isinstance(s, dict) and "name" in s and "passed" in s
    }
    written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return StressView(date=day, passed=result["passed"], scenarios=scenarios, written_at=written)


def read_stress(home: LabHome) -> StressView | None:
    """Return ``home``'s last stress replay (``None`` before the first).

    Raises
    ------
    ValueError
        If its ``result.json`` has no boolean ``passed``.
    """
    return _read_stress(home.stress)


def _why(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def read_lab(home: LabHome, *, now: datetime | None = None) -> LabSnapshot:
    """Read ``home``'s stores once, read-only, and return what an operator watches.

    Parameters
    ----------
    home:
        The lab home; it need not exist (every store is then absent).
    now:
        The snapshot's time (UTC; default: the clock).
    """
    from alphaloop.alert_store import alert_counts, ops_db, read_alerts
    from arena.kill_switch import read_pause

    read_at = now or datetime.now(UTC)
    stores = {
        "ledger": home.ledger_db.is_file(),
        "gene_pool": home.gene_pool_db.is_file(),
        "stress": home.stress.is_dir(),
    }
    errors: dict[str, str] = {}
    accounts: dict[str, AccountView] = {}
    regime: str | None = None
    pool: dict[str, int] = {}
    generation: GenerationView | None = None
    stress: StressView | None = None
    if stores["ledger"]:
        try:
            accounts, regime = _read_ledger(home.ledger_db)
        except Exception as exc:  # a store that cannot be read is reported, not raised
            errors["ledger"] = f"{home.ledger_db}: {_why(exc)}"
    if stores["gene_pool"]:
        try:
            pool, generation = _read_pool(home.gene_pool_db)
        except Exception as exc:
            errors["gene_pool"] = f"{home.gene_pool_db}: {_why(exc)}"
    try:
        stress = _read_stress(home.stress)
    except Exception as exc:
        errors["stress"] = f"{home.stress}: {_why(exc)}"
    alerts: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    stores["alerts"] = ops_db(home).is_file()
    if stores["alerts"]:
        try:
            every = read_alerts(home)
        except Exception as exc:
            errors["alerts"] = f"{ops_db(home)}: {_why(exc)}"
        else:
            alerts, totals = every[:ALERTS_SHOWN], alert_counts(every)
    pause = read_pause(home)
    return LabSnapshot(
        home=home.root,
        read_at=read_at,
        stores=stores,
        accounts=accounts,
        regime=regime,
        pool=pool,
        generation=generation,
        pause=None if pause is None else pause.to_dict(),
        stress=stress,
        alerts=alerts,
        alert_totals=totals,
        errors=errors,
    )
