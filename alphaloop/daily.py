"""The daily runbook: one trading day's routine, step by step, idempotent and resumable.

:func:`run_daily` runs the steps of :data:`DAILY_STEPS` in order for one trading day:

``arena_day``
    What ``alphaloop arena run`` does (:func:`arena.day.run_arena_day` under the ledger's
    lock, then the closed loop and the day's MLflow run): the pre-market plan, the debate,
    trading, the close and the post-close review (the review stage of the arena day), the
    day's report.
``weekly_evolution``
    On ``daily.evolution_weekday``: the season's weekly evolution
    (:func:`arena.season.weekly_evolution`, as of the day; resumed when it exists).
``weekly_report``
    On ``daily.weekly_report_weekday``: ``alphaloop report weekly`` of the day's ISO week.
``monthly_report``
    On the last trading day of the month (``daily.month_end_report``): ``report monthly``.
``stress``
    On ``daily.stress_weekday``: the weekly stress replay (``alphaloop stress replay``).
``alerts``
    Always, last: the alert rules over the stores (:mod:`alphaloop.alerts`), including the
    routine's own failed steps, and the webhook.

Each finished step is recorded in ``<home>/ops.sqlite`` (table ``daily_steps``, keyed by day
and step, one transaction written after the step): a re-run skips the steps recorded done
(``skipped``), so re-running a done day changes nothing, and a routine killed between two
steps resumes at the first step not recorded. A step killed half-way relies on its own
idempotence (the arena day's ``already committed``, the evolution's resume, a report or a
stress replay rewritten whole). A step that raises is recorded ``failed`` (and run again on
the next run of the day); the later steps still run and the alerts step raises a
``failed_step`` alert. The alerts step runs again, although done, when an earlier step ran
in this run (it reads what they wrote) or when its rules find something not stored yet (data
gone stale since, an alert the webhook has not received): its records are keyed, so nothing
doubles, and a done day with nothing new is left as it was. Steps
are plain values (:class:`Step`): a caller may run its own list.
"""

from __future__ import annotations

import calendar
import fcntl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from alphaloop.ops_config import OpsConfig

__all__ = [
    "DAILY_STEPS",
    "DailyContext",
    "Step",
    "StepOutcome",
    "is_month_end",
    "run_daily",
]


@dataclass(slots=True, kw_only=True)
class DailyContext:
    """What the steps of one day share: the home, the day, the data, the settings."""

    home: LabHome
    day: date
    market: Any  # arena.market.ArenaData
    ops: OpsConfig
    arena_config: Any  # arena.personas.ArenaConfig
    local: bool = False
    track: bool = True
    today: date | None = None
    failed: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def trading_days(self) -> list[date]:
        """Return the data's trading days."""
        from arena.market import trading_days

        return list(trading_days(self.market.daily))


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``due(ctx)`` is ``None`` when due, else why not; ``run(ctx)`` its summary."""

    name: str
    due: Callable[[DailyContext], str | None]
    run: Callable[[DailyContext], dict[str, Any]]
    #: Run again, although done, when an earlier step ran in this run (the alerts: they
    #: read what the other steps wrote).
    after_changes: bool = False
    #: Run again, although done, when this says there is something new to do (the alerts: a
    #: finding not stored yet, such as data gone stale since, or an alert still undelivered).
    recheck: Callable[[DailyContext], bool] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepOutcome:
    """What became of a step: ``done``, ``skipped`` (already done), ``not due``, ``failed``."""

    name: str
    status: str
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def line(self) -> str:
        """Return the summary line ``step <name>: ...``."""
        if self.status == "skipped":
            return f"step {self.name}: skipped (already done)"
        if self.status == "not due":
            return f"step {self.name}: not due ({self.reason})"
        if self.status == "failed":
            return f"step {self.name}: failed: {self.reason}"
        note = self.detail.get("note")
        return f"step {self.name}: done" + (f" ({note})" if note else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "detail": dict(self.detail),
        }


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _always(ctx: DailyContext) -> str | None:
    return None


def _on_weekday(weekday: int | None, ctx: DailyContext) -> str | None:
    if weekday is None:
        return "never (weekday null in the config)"
    if ctx.day.weekday() != weekday:
        today = _WEEKDAYS[ctx.day.weekday()]
        return f"due on {_WEEKDAYS[weekday]}s; {ctx.day.isoformat()} is a {today}"
    return None


def is_month_end(day: date, trading_days: Sequence[date]) -> bool:
    """Return whether ``day`` is the last trading day of its month.

    From the data's calendar when it goes on past the month; when ``day`` is the data's last
    day of its month and the data stops there, the weekdays left in the month decide
    (an exchange holiday at the month's end is not known then).
    """
    later = [d for d in trading_days if d > day]
    if any(d.month == day.month and d.year == day.year for d in later):
        return False
    if later:
        return True
    last = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
    rest = (day + timedelta(days=n) for n in range(1, (last - day).days + 1))
    return not any(d.weekday() < 5 for d in rest)


# --------------------------------------------------------------------------- steps
def _accounts(ctx: DailyContext) -> Any:
    """Wire the accounts as ``arena run`` does (:func:`alphaloop.arena_accounts.open_accounts`)."""
    from alphaloop.arena_accounts import open_accounts

    return open_accounts(ctx.local, ctx.home, ctx.arena_config, ctx.market)


def _arena_day(ctx: DailyContext) -> dict[str, Any]:
    from alphaloop.locks import store_lock
    from arena.day import refuse_broken_ledger, run_arena_day
    from arena.season import closed_loop

    home, day = ctx.home, ctx.day
    # As `arena run`: one writer of the ledger from the checks to the MLflow run.
    with store_lock(home, "ledger", purpose=f"daily --date {day.isoformat()}"):
        refuse_broken_ledger(home)
        with _accounts(ctx) as accounts:
            summary = run_arena_day(accounts, ctx.market, day, home=home, config=ctx.arena_config)
        loop_day = closed_loop(home, ctx.market)(day)
        run_id = None
        if ctx.track and not summary["already_committed"]:
            from arena.tracking import log_arena_day

            run_id = log_arena_day(home, summary, data_spec=ctx.market.spec)
    already = bool(summary["already_committed"])
    note = "already committed" if already else "committed"
    if summary["paused"] is not None and not already:
        note += " while paused (flatten)" if summary["paused"]["flatten"] else " while paused"
    return {
        "note": note,
        "already_committed": already,
        "accounts": {n: f["equity"] for n, f in summary["accounts"].items()},
        "transitions": list(loop_day.transitions),
        "report": summary["report"],
        "paused": summary["paused"],
        "mlflow_run_id": run_id,
    }


def _evolution(ctx: DailyContext) -> dict[str, Any]:
    from arena.season import weekly_evolution

    settings = ctx.ops.daily.evolution
    evolve = weekly_evolution(
        ctx.home, ctx.market, generations=settings.generations,
        population=settings.population, seed=settings.seed, window=settings.window,
        holdout=settings.holdout, track=ctx.track,
    )  # fmt: skip
    week = evolve(ctx.day)
    return {**week, "note": f"{week['generations']} generation(s), {week['passed_gate']} gated"}


def _closes(ctx: DailyContext) -> Any:
    from reports.weekly import closes_frame

    return closes_frame(ctx.market.daily)


def _weekly_report(ctx: DailyContext) -> dict[str, Any]:
    from reports.weekly import week_of, write_weekly_report

    result = write_weekly_report(ctx.home, week_of(ctx.day), closes=_closes(ctx), track=ctx.track)
    return {"note": f"{result['period']}: {result['markdown']}", **_report(result)}


def _monthly_report(ctx: DailyContext) -> dict[str, Any]:
    from reports.monthly import write_monthly_report
    from reports.weekly import month_of

    result = write_monthly_report(ctx.home, month_of(ctx.day), closes=_closes(ctx), track=ctx.track)
    return {"note": f"{result['period']}: {result['markdown']}", **_report(result)}


def _report(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result.get(key) for key in ("period", "markdown", "html", "mlflow_run_id")}


def _stress(ctx: DailyContext) -> dict[str, Any]:
    from arena.stress import load_stress_config, replay
    from simulators.scenarios import SCENARIOS

    settings = ctx.ops.daily.stress
    names = list(settings.scenarios) or list(SCENARIOS)
    result = replay(
        names, home=ctx.home, config=load_stress_config(), arena_config=ctx.arena_config,
        size=settings.size, run_date=ctx.day, track=ctx.track,
    )  # fmt: skip
    failed = [s["name"] for s in result["scenarios"] if not s["passed"]]
    return {
        "note": "passed" if result["passed"] else f"FAILED: {', '.join(failed)}",
        "passed": result["passed"],
        "scenarios": {s["name"]: s["passed"] for s in result["scenarios"]},
        "report": result["report"],
    }


def _alerts(ctx: DailyContext) -> dict[str, Any]:
    from alphaloop.alerts import OpsStore, deliver_alerts

    rules = ctx.ops.alerts
    found = _find_alerts(ctx)
    with OpsStore(ctx.home) as store:
        new = store.record_alerts(found)
        delivery = deliver_alerts(store, rules.webhook)
    by_rule: dict[str, int] = {}
    for alert in found:
        by_rule[alert.rule] = by_rule.get(alert.rule, 0) + 1
    note = f"{len(found)} alert(s), {len(new)} new" + (
        f"; webhook: {delivery['delivered']} delivered, {delivery['failed']} failed"
        if delivery["url"]
        else ""
    )
    return {
        "note": note,
        "alerts": [a.alert_id for a in found],
        "new": new,
        "by_rule": by_rule,
        "webhook": delivery,
    }


def _find_alerts(ctx: DailyContext) -> list[Any]:
    from alphaloop.alerts import evaluate_alerts

    days = ctx.trading_days
    return evaluate_alerts(
        ctx.home, ctx.day, ctx.ops.alerts, data_last_day=days[-1] if days else None,
        today=ctx.today, failed_steps=ctx.failed,
    )  # fmt: skip


def _new_alerts(ctx: DailyContext) -> bool:
    """Whether the rules find an alert not stored yet, or one waits for the webhook."""
    from alphaloop.alert_store import read_alerts

    stored = {row["alert_id"]: row for row in read_alerts(ctx.home)}
    if any(alert.alert_id not in stored for alert in _find_alerts(ctx)):
        return True
    webhook = ctx.ops.alerts.webhook
    return webhook.url is not None and any(
        row["delivery"]["delivered_at"] is None
        and row["delivery"]["attempts"] < webhook.max_attempts
        for row in stored.values()
    )


def _due_evolution(ctx: DailyContext) -> str | None:
    return _on_weekday(ctx.ops.daily.evolution_weekday, ctx)


def _due_weekly_report(ctx: DailyContext) -> str | None:
    return _on_weekday(ctx.ops.daily.weekly_report_weekday, ctx)


def _due_stress(ctx: DailyContext) -> str | None:
    return _on_weekday(ctx.ops.daily.stress_weekday, ctx)


def _due_month_end(ctx: DailyContext) -> str | None:
    if not ctx.ops.daily.month_end_report:
        return "off (month_end_report false in the config)"
    if not is_month_end(ctx.day, ctx.trading_days):
        return f"{ctx.day.isoformat()} is not the last trading day of its month"
    return None


#: The routine, in order (the alerts step last: it sees what the others did).
DAILY_STEPS: tuple[Step, ...] = (
    Step("arena_day", _always, _arena_day),
    Step("weekly_evolution", _due_evolution, _evolution),
    Step("weekly_report", _due_weekly_report, _weekly_report),
    Step("monthly_report", _due_month_end, _monthly_report),
    Step("stress", _due_stress, _stress),
    Step("alerts", _always, _alerts, after_changes=True, recheck=_new_alerts),
)


@contextmanager
def _routine_lock(home: LabHome, day: date) -> Iterator[None]:
    """One routine per home at a time (a second one stops with an error line)."""
    folder = home.root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "daily.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{folder / 'daily.lock'}: another alphaloop daily runs on this home; "
                f"run it again when that one ended (day {day.isoformat()})"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _why(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def run_daily(
    ctx: DailyContext,
    steps: Sequence[Step] = DAILY_STEPS,
    *,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> dict[str, Any]:
    """Run ``steps`` for ``ctx.day``, skipping those recorded done; return the summary.

    The summary: ``date``, ``steps`` (each :meth:`StepOutcome.to_dict`), ``already_done``
    (every step was done or not due before this run) and ``ok`` (no step failed).
    """
    from alphaloop.alerts import OpsStore

    home, day = ctx.home.ensure(), ctx.day
    outcomes: list[StepOutcome] = []
    with _routine_lock(home, day):
        with OpsStore(home) as store:
            records = store.step_records(day)
        for step in steps:
            record = records.get(step.name)
            changed = any(o.status in ("done", "failed") for o in outcomes)
            if (
                record is not None
                and record["status"] == "done"
                and not (step.after_changes and changed)
                and not (step.recheck is not None and step.recheck(ctx))
            ):
                outcome = StepOutcome(name=step.name, status="skipped", detail=record["detail"])
            elif (why_not := step.due(ctx)) is not None:
                outcome = StepOutcome(name=step.name, status="not due", reason=why_not)
            else:
                try:
                    detail = step.run(ctx)
                except Exception as exc:  # a failed step is recorded; the day goes on
                    ctx.failed[step.name] = _why(exc)
                    outcome = StepOutcome(name=step.name, status="failed", reason=_why(exc))
                    status, stored = "failed", {"error": _why(exc)}
                else:
                    ctx.results[step.name] = detail
                    outcome = StepOutcome(name=step.name, status="done", detail=detail)
                    status, stored = "done", detail
                with OpsStore(home) as store:
                    store.record_step(day, step.name, status, stored, now=datetime.now(UTC))
            outcomes.append(outcome)
            if on_step is not None:
                on_step(outcome)
    return {
        "date": day.isoformat(),
        "steps": [o.to_dict() for o in outcomes],
        "already_done": all(o.status in ("skipped", "not due") for o in outcomes),
        "ok": not any(o.status == "failed" for o in outcomes),
    }
