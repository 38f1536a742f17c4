"""The lab's Prometheus metrics: a collector that reads the home's stores on every scrape.

:class:`LabCollector` is a ``prometheus_client`` custom collector: each ``collect()`` takes one
read-only :func:`alphaloop.observe.read_lab` snapshot (no store lock, nothing written) and
turns it into metric families. Nothing is cached between scrapes, so what Prometheus stores is
what the ledger said at that moment. A home that does not exist, or a store that cannot be
read, still gives a valid exposition: ``alphaloop_up`` and ``alphaloop_store_up`` say what was
read, and the series of what was not are left out (never a made-up zero, never an HTTP 500).

Names follow the Prometheus conventions: the ``alphaloop_`` prefix, base units (seconds,
ratios; money in the account currency), ``_total`` on counters, labels of bounded sets only
(account, rule, kind, status, regime, store, scenario): never a genome or an order id.
:data:`METRICS` lists every family with its type and labels; the dashboard test checks its
queries against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alphaloop.home import LabHome
from alphaloop.observe import REGIMES, LabSnapshot, read_lab

__all__ = ["METRICS", "LabCollector", "snapshot_metrics"]

#: ``name -> (type, labels, help)`` of every family the collector can expose (counters by
#: their family name; their sample is ``<name>_total``).
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "alphaloop_up": ("gauge", (), "1 when every store of the home that exists was read."),
    "alphaloop_store_up": (
        "gauge",
        ("store",),
        "1 when the store exists and was read, 0 when it exists and could not be read.",
    ),
    "alphaloop_store_present": ("gauge", ("store",), "1 when the store exists in the home."),
    "alphaloop_scrape_duration_seconds": (
        "gauge",
        (),
        "Seconds this scrape took to read the stores.",
    ),
    "alphaloop_account_equity": (
        "gauge",
        ("account",),
        "Equity at the last committed close, account currency.",
    ),
    "alphaloop_account_cash": (
        "gauge",
        ("account",),
        "Cash at the last committed close, account currency.",
    ),
    "alphaloop_account_initial_cash": (
        "gauge",
        ("account",),
        "The account's initial cash, account currency.",
    ),
    "alphaloop_account_drawdown_ratio": (
        "gauge",
        ("account",),
        "1 - equity / peak close (initial cash included) at the last committed close.",
    ),
    "alphaloop_account_max_drawdown_ratio": (
        "gauge",
        ("account",),
        "The largest drawdown ratio over the account's committed closes.",
    ),
    "alphaloop_account_daily_pnl": (
        "gauge",
        ("account",),
        "Equity change of the last committed day, account currency.",
    ),
    "alphaloop_account_last_day_timestamp_seconds": (
        "gauge",
        ("account",),
        "The account's last committed trading day (00:00 UTC), Unix time.",
    ),
    "alphaloop_account_days": ("counter", ("account",), "Committed trading days."),
    "alphaloop_orders": ("counter", ("account",), "Orders over the committed days."),
    "alphaloop_fills": ("counter", ("account",), "Fills over the committed days."),
    "alphaloop_order_rejects": (
        "counter",
        ("account",),
        "Orders that ended rejected, over the committed days.",
    ),
    "alphaloop_risk_events": (
        "counter",
        ("account", "rule", "kind"),
        "Risk events over the committed days, by the rule that raised them and what the "
        "governor did (veto, clip, freeze, ...).",
    ),
    "alphaloop_execution_shortfall_ratio": (
        "gauge",
        ("account",),
        "Last reviewed day's fill shortfall against the arrival price / traded value "
        "(positive = a cost).",
    ),
    "alphaloop_paper_backtest_divergence_ratio": (
        "gauge",
        ("account",),
        "Last reviewed day's (paper P&L - shadow backtest P&L) / allocation over the genomes.",
    ),
    "alphaloop_regime": (
        "gauge",
        ("regime",),
        "1 for the regime the last committed day was read as, 0 for the others.",
    ),
    "alphaloop_pool_genomes": ("gauge", ("status",), "Genomes of the gene pool by status."),
    "alphaloop_pool_paused_genomes": ("gauge", (), "Genomes carrying the pause flag."),
    "alphaloop_generation_best_score": (
        "gauge",
        (),
        "Best score of the last committed generation.",
    ),
    "alphaloop_generation_median_score": (
        "gauge",
        (),
        "Median score of the last committed generation.",
    ),
    "alphaloop_generation_size": ("gauge", (), "Members of the last committed generation."),
    "alphaloop_generation_committed_timestamp_seconds": (
        "gauge",
        (),
        "When the last generation was committed, Unix time.",
    ),
    "alphaloop_last_committed_day_timestamp_seconds": (
        "gauge",
        (),
        "The latest committed trading day over the accounts (00:00 UTC), Unix time.",
    ),
    "alphaloop_last_commit_timestamp_seconds": (
        "gauge",
        (),
        "When the latest account day was committed, Unix time.",
    ),
    "alphaloop_last_commit_age_seconds": (
        "gauge",
        (),
        "Seconds since the latest account day was committed.",
    ),
    "alphaloop_stress_passed": ("gauge", (), "1 when the last stress replay passed every check."),
    "alphaloop_stress_scenario_passed": (
        "gauge",
        ("scenario",),
        "1 when the scenario passed in the last stress replay.",
    ),
    "alphaloop_stress_day_timestamp_seconds": (
        "gauge",
        (),
        "The date of the last stress replay (00:00 UTC), Unix time.",
    ),
    "alphaloop_alerts": (
        "counter",
        ("rule",),
        "Alert records in the home, by the rule that raised them (alphaloop/alerts.py).",
    ),
    "alphaloop_paused": ("gauge", (), "1 while the kill switch pauses the lab."),
    "alphaloop_paused_flatten": ("gauge", (), "1 while the pause flattens positions."),
    "alphaloop_paused_since_timestamp_seconds": (
        "gauge",
        (),
        "When the current pause began, Unix time.",
    ),
}

_STORES = ("ledger", "gene_pool", "stress", "alerts")


def _midnight(day: object) -> float:
    return datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp()


class _Families:
    """Families built lazily from :data:`METRICS` (only those with a sample are yielded)."""

    def __init__(self) -> None:
        self._made: dict[str, Metric] = {}

    def add(self, name: str, value: float, *labels: str) -> None:
        kind, names, text = METRICS[name]
        if len(labels) != len(names):
            raise ValueError(f"{name}: labels {names}, got {labels}")
        family = self._made.get(name)
        if family is None:
            make: Callable[..., Metric] = (
                CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            )
            family = make(name, text, labels=list(names))
            self._made[name] = family
        family.add_metric(list(labels), float(value))  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._made.values())


def snapshot_metrics(snapshot: LabSnapshot, *, duration: float = 0.0) -> list[Metric]:
    """Return the metric families of ``snapshot`` (see :data:`METRICS`)."""
    out = _Families()
    out.add("alphaloop_up", 1.0 if snapshot.ok else 0.0)
    out.add("alphaloop_scrape_duration_seconds", duration)
    for store in _STORES:
        if store not in snapshot.stores:  # the read failed before it looked
            continue
        present = snapshot.stores[store]
        out.add("alphaloop_store_present", 1.0 if present else 0.0, store)
        if present:
            out.add("alphaloop_store_up", 0.0 if store in snapshot.errors else 1.0, store)
    for name, view in sorted(snapshot.accounts.items()):
        out.add("alphaloop_account_equity", view.equity, name)
        out.add("alphaloop_account_cash", view.cash, name)
        out.add("alphaloop_account_initial_cash", view.initial_cash, name)
        out.add("alphaloop_account_drawdown_ratio", view.drawdown, name)
        out.add("alphaloop_account_max_drawdown_ratio", view.max_drawdown, name)
        out.add("alphaloop_account_daily_pnl", view.daily_pnl, name)
        out.add("alphaloop_account_last_day_timestamp_seconds", _midnight(view.last_day), name)
        out.add("alphaloop_account_days", view.days, name)
        out.add("alphaloop_orders", view.orders, name)
        out.add("alphaloop_fills", view.fills, name)
        out.add("alphaloop_order_rejects", view.rejects, name)
        for rule, kinds in view.risk_events.items():
            for kind, count in kinds.items():
                out.add("alphaloop_risk_events", count, name, rule, kind)
        if view.shortfall is not None:
            out.add("alphaloop_execution_shortfall_ratio", view.shortfall, name)
        if view.divergence is not None:
            out.add("alphaloop_paper_backtest_divergence_ratio", view.divergence, name)
    if snapshot.regime is not None:
        for regime in dict.fromkeys((*REGIMES, snapshot.regime)):
            out.add("alphaloop_regime", 1.0 if regime == snapshot.regime else 0.0, regime)
    if "ledger" not in snapshot.errors and snapshot.stores.get("ledger"):
        last_day = snapshot.last_day
        if last_day is not None:
            out.add("alphaloop_last_committed_day_timestamp_seconds", _midnight(last_day))
        committed = snapshot.last_committed_at
        if committed is not None:
            out.add("alphaloop_last_commit_timestamp_seconds", committed.timestamp())
            age = (snapshot.read_at - committed).total_seconds()
            out.add("alphaloop_last_commit_age_seconds", max(age, 0.0))
    for status, count in snapshot.pool.items():
        if status == "paused":
            out.add("alphaloop_pool_paused_genomes", count)
        else:
            out.add("alphaloop_pool_genomes", count, status)
    generation = snapshot.generation
    if generation is not None:
        out.add("alphaloop_generation_size", generation.size)
        out.add(
            "alphaloop_generation_committed_timestamp_seconds", generation.committed_at.timestamp()
        )
        if generation.best_score is not None:
            out.add("alphaloop_generation_best_score", generation.best_score)
        if generation.median_score is not None:
            out.add("alphaloop_generation_median_score", generation.median_score)
    stress = snapshot.stress
    if stress is not None:
        out.add("alphaloop_stress_passed", 1.0 if stress.passed else 0.0)
        out.add("alphaloop_stress_day_timestamp_seconds", _midnight(stress.date))
        for scenario, passed in sorted(stress.scenarios.items()):
            out.add("alphaloop_stress_scenario_passed", 1.0 if passed else 0.0, scenario)
    if snapshot.stores.get("alerts") and "alerts" not in snapshot.errors:
        for rule, count in sorted(snapshot.alert_totals.items()):
            out.add("alphaloop_alerts", count, rule)
    pause = snapshot.pause
    out.add("alphaloop_paused", 0.0 if pause is None else 1.0)
    out.add("alphaloop_paused_flatten", 1.0 if pause is not None and pause["flatten"] else 0.0)
    if pause is not None:
        since = datetime.fromisoformat(pause["since"])
        out.add("alphaloop_paused_since_timestamp_seconds", since.timestamp())
    return list(out)


class LabCollector(Collector):
    """A ``prometheus_client`` collector of one lab home, read afresh on each scrape.

    Parameters
    ----------
    home:
        The lab home (it need not exist yet).
    clock:
        Returns the scrape's time (default: the UTC wall clock); the age metrics use it.
    """

    def __init__(self, home: LabHome, *, clock: Callable[[], datetime] | None = None) -> None:
        self.home = home
        self._clock = clock or (lambda: datetime.now(UTC))

    def describe(self) -> list[Metric]:
        # Empty: the registry must not call collect() at registration (that would read the
        # stores once for nothing); the families are known only when a scrape reads them.
        return []

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        now = self._clock()
        try:
            snapshot = read_lab(self.home, now=now)
        except Exception as exc:  # a scrape reports a failed read; it never answers 500
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            snapshot = LabSnapshot(home=self.home.root, read_at=now, stores={}, errors={"lab": why})
        yield from snapshot_metrics(snapshot, duration=time.perf_counter() - started)
