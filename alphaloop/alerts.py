"""Alerts: rules over the lab's stores, records in the home, an optional webhook.

:func:`evaluate_alerts` reads the ledger, the gene pool and the last stress replay through
their own read APIs and returns the :class:`Alert` records the rules of ``ops.yaml``
(:class:`alphaloop.ops_config.AlertsConfig`) raise for one trading day:

``daily_loss``
    An account whose day lost more than ``daily_loss`` of its previous close (the initial cash
    before its first day). One per account and day.
``drawdown``
    An account whose close is more than ``drawdown`` below its peak close (initial cash
    included). One per account and day.
``missing_day``
    The day not committed for every account (the arena day failed, or was never run).
``failed_step``
    A step of ``alphaloop daily`` failed (the routine passes its failures in).
``stress_failed``
    The last stress replay failed a check. One per replay date.
``stale_data``
    The data's last bar more than ``stale_data_days`` days before today. One per last bar.
``low_confidence``
    ``low_confidence.streak`` verdict days in a row on which the judge's confidence (the
    synthesis account's debate, :mod:`arena.debate`) was under ``low_confidence.below``.
    One per streak (keyed by its first day), however long it lasts.
``promotion``, ``demotion``
    A genome's lifecycle move of the day in the gene pool (to ``probation`` or ``champion``;
    to ``demoted``).

An alert's id is a content hash of its rule and key (the key holds the day where the rule is
per day), so :meth:`OpsStore.record_alerts` evaluating the same day twice stores nothing new.
The records live in ``<home>/ops.sqlite`` (:class:`alphaloop.alert_store.OpsStore`, with a
schema version; the daily runbook's step records are in the same file).
:func:`deliver_alerts` POSTs each undelivered alert as one JSON object to
``alerts.webhook.url`` (the only egress: a URL the user configured); every attempt is
recorded, a failing webhook never raises, and an undelivered alert is tried again on the
next evaluation until ``max_attempts``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from alphaloop.alert_store import RULES, Alert, OpsStore, alert_counts, ops_db, read_alerts
from alphaloop.home import LabHome
from alphaloop.observe import read_stress
from alphaloop.ops_config import AlertsConfig, WebhookConfig

__all__ = [
    "RULES",
    "Alert",
    "OpsStore",
    "alert_counts",
    "deliver_alerts",
    "evaluate_alerts",
    "ops_db",
    "read_alerts",
]

PROMOTED = ("probation", "champion")
DEMOTED = ("demoted",)


# --------------------------------------------------------------------------- rules
def _account_alerts(ledger: Any, day: date, rules: AlertsConfig) -> list[Alert]:
    out: list[Alert] = []
    iso = day.isoformat()
    for record in ledger.account_records():
        name = record.account
        history = [(d, e) for d, e in ledger.equity_history(name) if d <= day]
        if not history or history[-1][0] != day:
            continue
        initial = record.initial_cash
        scale = 10.0**record.units.money_digits
        equity = history[-1][1].equity
        before = history[-2][1].equity if len(history) > 1 else initial
        if rules.daily_loss is not None and before > 0:
            loss = 1.0 - equity / before
            if loss > rules.daily_loss:
                out.append(
                    Alert(
                        day=day, rule="daily_loss", key=f"{iso}:{name}", severity="critical",
                        subject=name,
                        message=f"{name} lost {loss:.2%} on {iso} (threshold "
                        f"{rules.daily_loss:.2%}): equity {before / scale:,.2f} -> "
                        f"{equity / scale:,.2f}",
                        detail={"loss": loss, "threshold": rules.daily_loss},
                    )
                )  # fmt: skip
        if rules.drawdown is not None:
            peak = max([initial, *(e.equity for _, e in history)])
            drawdown = 1.0 - equity / peak if peak > 0 else 0.0
            if drawdown > rules.drawdown:
                out.append(
                    Alert(
                        day=day, rule="drawdown", key=f"{iso}:{name}", severity="warning",
                        subject=name,
                        message=f"{name} is {drawdown:.2%} below its peak close on {iso} "
                        f"(threshold {rules.drawdown:.2%})",
                        detail={"drawdown": drawdown, "threshold": rules.drawdown},
                    )
                )  # fmt: skip
    return out


def _missing_day(ledger: Any, day: date) -> list[Alert]:
    from arena.personas import PERSONA_NAMES

    iso = day.isoformat()
    missing = [
        name for name in PERSONA_NAMES if not any(d == day for d, _ in ledger.equity_history(name))
    ]
    if not missing:
        return []
    return [
        Alert(
            day=day, rule="missing_day", key=iso, severity="critical", subject="arena",
            message=f"{iso} is not committed for {', '.join(missing)}",
            detail={"accounts": missing},
        )
    ]  # fmt: skip


def _low_confidence(ledger: Any, day: date, rules: AlertsConfig) -> list[Alert]:
    streak_rule = rules.low_confidence
    if streak_rule is None:
        return []
    verdicts: list[tuple[str, float]] = []  # (day, confidence) of each verdict day up to `day`
    for payload in ledger.decisions("synthesis").values():
        debate = payload.get("debate")
        if isinstance(debate, dict) and "confidence" in debate and "date" in debate:
            if str(debate["date"]) <= day.isoformat():
                verdicts.append((str(debate["date"]), float(debate["confidence"])))
    verdicts.sort()
    run: list[tuple[str, float]] = []
    for entry in reversed(verdicts):
        if entry[1] >= streak_rule.below:
            break
        run.append(entry)
    if len(run) < streak_rule.streak or not verdicts or verdicts[-1][0] != day.isoformat():
        return []
    start = run[-1][0]
    return [
        Alert(
            day=day, rule="low_confidence", key=f"synthesis:{start}", severity="warning",
            subject="synthesis",
            message=f"{len(run)} verdict day(s) in a row with confidence under "
            f"{streak_rule.below} since {start} (last {run[0][1]:.2f})",
            detail={"since": start, "days": len(run), "below": streak_rule.below,
                    "confidences": [c for _, c in reversed(run)]},
        )
    ]  # fmt: skip


def _lifecycle(home: LabHome, day: date) -> list[Alert]:
    from evolution.store import GenePoolStore

    if not home.gene_pool_db.is_file():
        return []
    iso = day.isoformat()
    with GenePoolStore(home.gene_pool_db) as store:
        moves = store.transitions_between(iso, iso)
    out: list[Alert] = []
    for move in moves:
        if move.get("kind") != "status":
            continue
        to = str(move["to_status"])
        rule = "promotion" if to in PROMOTED else "demotion" if to in DEMOTED else None
        if rule is None:
            continue
        genome = str(move["genome_id"])
        out.append(
            Alert(
                day=day, rule=rule, key=f"{genome}:{move['from_status']}:{to}:{move['seq']}",
                severity="info", subject=genome,
                message=f"{genome}: {move['from_status']} -> {to} on {iso}: {move['reason']}",
                detail={"from": move["from_status"], "to": to, "reason": move["reason"]},
            )
        )  # fmt: skip
    return out


def _stress(home: LabHome, day: date) -> list[Alert]:
    view = read_stress(home)
    if view is None or view.passed:
        return []
    failed = sorted(name for name, ok in view.scenarios.items() if not ok)
    when = view.date.isoformat()
    return [
        Alert(
            day=day, rule="stress_failed", key=when, severity="critical", subject="stress",
            message=f"the stress replay of {when} failed: {', '.join(failed) or 'a check'}",
            detail={"stress_date": when, "failed": failed},
        )
    ]  # fmt: skip


def evaluate_alerts(
    home: LabHome,
    day: date,
    rules: AlertsConfig,
    *,
    data_last_day: date | None = None,
    today: date | None = None,
    failed_steps: Mapping[str, str] | None = None,
) -> list[Alert]:
    """Return the alerts ``rules`` raise for trading day ``day`` (reads only).

    Parameters
    ----------
    data_last_day:
        The market data's last bar (the ``stale_data`` rule; ``None`` skips it).
    today:
        The calendar day the data's age is measured at (default: today, UTC).
    failed_steps:
        ``step -> why`` of the daily routine's failed steps (``failed_step``).
    """
    from arena.ledger import Ledger

    out: list[Alert] = []
    iso = day.isoformat()
    if rules.failed_step:
        for step, why in sorted((failed_steps or {}).items()):
            out.append(
                Alert(
                    day=day, rule="failed_step", key=f"{iso}:{step}", severity="critical",
                    subject=step, message=f"daily step {step} of {iso} failed: {why}",
                    detail={"step": step, "error": why},
                )
            )  # fmt: skip
    if home.ledger_db.is_file():
        with Ledger(home.ledger_db) as ledger:
            out += _account_alerts(ledger, day, rules)
            if rules.missing_day:
                out += _missing_day(ledger, day)
            out += _low_confidence(ledger, day, rules)
    elif rules.missing_day:
        out.append(
            Alert(
                day=day, rule="missing_day", key=iso, severity="critical", subject="arena",
                message=f"{iso} is not committed: the home has no ledger",
            )
        )  # fmt: skip
    if rules.stress_failed:
        out += _stress(home, day)
    if rules.stale_data_days is not None and data_last_day is not None:
        now = today or datetime.now(UTC).date()
        age = (now - data_last_day).days
        if age > rules.stale_data_days:
            last = data_last_day.isoformat()
            out.append(
                Alert(
                    day=day, rule="stale_data", key=last, severity="warning", subject="data",
                    message=f"the data's last bar is {last}, {age} day(s) before {now} "
                    f"(threshold {rules.stale_data_days})",
                    detail={"last_bar": last, "age_days": age},
                )
            )  # fmt: skip
    if rules.lifecycle:
        out += _lifecycle(home, day)
    return out


# --------------------------------------------------------------------------- webhook
def _post(url: str, payload: Mapping[str, Any], timeout_s: float) -> None:
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


def deliver_alerts(
    store: OpsStore, webhook: WebhookConfig, *, now: datetime | None = None
) -> dict[str, Any]:
    """POST each undelivered alert to ``webhook.url``; record every attempt; never raise.

    Returns ``{"url", "delivered", "failed", "errors"}`` (``failed``: alerts still undelivered
    after this run's attempts; ``errors``: the last error of each, by alert id).
    """
    if webhook.url is None:
        return {"url": None, "delivered": 0, "failed": 0, "errors": {}}
    delivered, errors = 0, {}
    for row in store.undelivered(webhook.max_attempts):
        payload = {key: row[key] for key in row if key != "delivery"}
        tries = min(webhook.attempts_per_run, webhook.max_attempts - row["delivery"]["attempts"])
        for _ in range(tries):
            at = now or datetime.now(UTC)
            try:
                _post(webhook.url, payload, webhook.timeout_s)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                store.record_attempt(row["alert_id"], error=why, now=at)
                errors[row["alert_id"]] = why
                continue
            store.record_attempt(row["alert_id"], error=None, now=at)
            errors.pop(row["alert_id"], None)
            delivered += 1
            break
    return {"url": webhook.url, "delivered": delivered, "failed": len(errors), "errors": errors}
