"""The weekly evolution report, and what the weekly and monthly reports share.

``alphaloop report weekly [--week YYYY-Www]`` calls :func:`write_weekly_report`, which reads
the gene-pool store and the arena ledger of the lab home (read-only), and writes under
``<lab home>/reports/weekly/<YYYY-Www>/``::

    report.md      the Markdown summary (charts named, not embedded)
    report.html    the same report as one self-contained page (PNG charts as data: URIs)
    summary.json   the headline figures (the ``--json`` object without the paths)

then logs the three files to MLflow (experiment ``alphaloop-reports``, one run per report,
driver side). The week's contents:

* **evolution**: the gene-pool sessions whose ``as_of`` day falls in the week. *Born*: the
  genomes whose lineage row (their first appearance in the store) belongs to one of those
  sessions, counted by operator (``random`` founders included). *Culled*: distinct genomes
  with a ``culled`` member row in them. *Ranking*: the last session's last generation by
  score. *Fitness trend*: best and median score of every generation of the week's sessions.
  *Lineage*: the ancestry (back to the founders) of the week's champions
  (:func:`week_champions`), drawn as a tree; the three best-ranked genomes when the week has no
  champion. *Promoted/demoted*: gate verdicts of the week with their reasons, every change of a
  genome's status between two consecutive member rows (sessions ordered by ``as_of``) whose
  later row is in the week, and the week's lifecycle moves, ranked
  ``culled = retired < demoted < alive < candidate < probation < champion``.
* **lifecycle** (:func:`lifecycle_section`): every transition decided in the week (its arena
  day, else its session's as-of day, else the UTC date it was stored), with who, why and its
  key figures, and the pool's status counts now.
* **paper against backtest** (:func:`paper_section`, :func:`paper_figures`): per genome with
  paper days in the week, the compounded pooled paper return against the backtest's
  expectation (``expected_daily_return`` x days) and the compounded same-day shadow return,
  the totals of the P&L's parts, its status now; a chart of the cumulative returns and the
  LiveFeedback records overlapping the week.
* **accounts** (each account of the ledger over its committed days in the week): return from
  the last close before the week (the initial cash before the first day) to the week's last
  close; trades = filled parent orders; win rate = share of the week's round trips
  (:func:`reports.biases.round_trips`) with a positive P&L; max drawdown and annualised Sharpe
  (252 days, ddof=1) of that equity curve; the benchmark is the equal-weight index of the
  market's daily closes over the same days (the arena's benchmark), when market data is given.
* **lessons**: :class:`reports.lessons.Lesson` values over the week's days with the
  thresholds of :class:`reports.lessons.LessonConfig`: ``over_trading`` (a day's trades above
  ``over_trading_ratio`` x the mean of up to 20 earlier committed days), ``high_vol_loss`` (a
  losing day in a regime of ``high_vol_regimes``; the regime is the one the day's decisions
  perceived), ``concentration`` (a position above ``max_position_weight`` of equity at the
  week's last close).

The gene pool is read only through :class:`PoolView`, i.e. the read methods of
:class:`evolution.store.GenePoolStore`, and the arena ledger only through :class:`LedgerView`,
i.e. the read methods of :class:`arena.ledger.Ledger` (no report writes SQL against either
store's tables; neither is written, though opening a file of an older schema migrates it, as
every open of a store does). A week with no committed arena day and nothing in the
gene pool (no session, lifecycle move or paper day) raises :class:`ReportDataMissing` (the CLI
exits 2); a week with only some of them says in its report what is missing.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.dates import DateFormatter, DayLocator

from alphaloop.errors import AlphaLoopError, ConfigError
from alphaloop.home import LabHome
from arena.ledger import Ledger
from evolution.store import GenePoolStore, PaperDayRecord
from reports.biases import RoundTrip, round_trips
from reports.decision_quality import decision_quality, decision_quality_section
from reports.html import (
    Block,
    BulletTree,
    Image,
    Paragraph,
    Section,
    Table,
    atomic_write_text,
    figure_to_data_uri,
    new_figure,
    render_html,
    render_markdown,
)
from reports.judge import judge_section
from reports.lessons import Lesson, LessonConfig
from reports.periods import Period, ReportFiles
from reports.tracking import log_report
from simulators.metrics import annualised_sharpe, daily_periods_per_year, max_drawdown

__all__ = [
    "LedgerView",
    "PoolView",
    "ReportDataMissing",
    "account_figures",
    "benchmark_history",
    "closes_frame",
    "jsonable",
    "lifecycle_directions",
    "lifecycle_section",
    "month_of",
    "paper_figures",
    "paper_section",
    "parse_month",
    "parse_week",
    "period_lessons",
    "week_champions",
    "week_of",
    "write_report_files",
    "write_weekly_report",
]

# The "usual" daily trade count of a day is the mean over this many earlier committed days.
TYPICAL_DAYS = 20
TOP_RANKED = 10
MAX_LINEAGE_NODES = 60
# Up or down a move goes: out of the pool < out of trading < evolving < the lifecycle's stages.
_STATUS_RANK = {
    "culled": 0, "retired": 0, "demoted": 1, "alive": 2, "candidate": 3, "probation": 4,
    "champion": 5,
}  # fmt: skip
# The figures a lifecycle move shows first (the rest stay in summary.json).
_KEY_FIGURES = (
    "z", "paper_days", "paper_return", "expected_daily_return", "cusum", "cusum_threshold",
    "divergence_streak", "paper_drawdown", "days_under_water", "profit_factor_out_of_sample",
    "deflated_sharpe", "max_drawdown",
)  # fmt: skip
MAX_KEY_FIGURES = 6
# The parts of a paper day's P&L against its expectation (arena.ledger.GenomeDay):
# execution_cost + governor_cuts + debate_scaling + residual == pnl - expected_pnl.
PAPER_PARTS = ("execution_cost", "governor_cuts", "debate_scaling", "residual")
_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ReportDataMissing(AlphaLoopError, LookupError):
    """The period has nothing to report (names the period and what is missing)."""


# --------------------------------------------------------------------------- periods


def week_of(day: date) -> Period:
    """Return the ISO week (Monday to Sunday) holding ``day``."""
    year, week, weekday = day.isocalendar()
    start = day - timedelta(days=weekday - 1)
    return Period(kind="week", label=f"{year}-W{week:02d}", start=start, end=start + timedelta(6))


def parse_week(text: str) -> Period:
    """Parse ``YYYY-Www`` (ISO week, e.g. ``2023-W22``).

    Raises
    ------
    ConfigError
        If ``text`` is not an ISO week that exists.
    """
    match = _WEEK.match(text.strip())
    if match is None:
        raise ConfigError(f"--week {text!r}: expected an ISO week YYYY-Www, e.g. 2023-W22")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise ConfigError(f"--week {text!r}: year {match[1]} has no ISO week {match[2]}") from None
    return week_of(monday)


def month_of(day: date) -> Period:
    """Return the calendar month holding ``day``."""
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period(
        kind="month",
        label=f"{start.year:04d}-{start.month:02d}",
        start=start,
        end=following - timedelta(days=1),
    )


def parse_month(text: str) -> Period:
    """Parse ``YYYY-MM`` (e.g. ``2023-06``).

    Raises
    ------
    ConfigError
        If ``text`` is not a month ``YYYY-MM`` with ``MM`` in 01..12.
    """
    match = _MONTH.match(text.strip())
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise ConfigError(f"--month {text!r}: expected a month YYYY-MM, e.g. 2023-06")
    return month_of(date(int(match[1]), int(match[2]), 1))


# --------------------------------------------------------------------------- reading
def _frame(ledger: Ledger, table: str) -> pd.DataFrame:
    """Return a ledger table's rows (:meth:`arena.ledger.Ledger.table_rows`) as a frame."""
    rows = ledger.table_rows(table)
    if not rows:
        return pd.DataFrame(columns=list(ledger.table_columns(table)))
    return pd.DataFrame(rows)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerView:
    """The arena ledger's rows a report needs, read once (money still in minor units).

    Read through :class:`arena.ledger.Ledger` only (its :meth:`~arena.ledger.Ledger.table_rows`
    export and its decision reader), never with SQL of its own: the ledger is the one read
    model of its tables. The frames hold the rows of committed days, by each table's key.
    """

    path: Path
    accounts: pd.DataFrame
    equity: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    positions: pd.DataFrame
    decisions: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> LedgerView:
        """Read the ledger at ``path`` (an empty view when the file does not exist)."""
        if not path.exists():
            empty = pd.DataFrame()
            return cls(
                path=path, accounts=empty, equity=empty, orders=empty, fills=empty,
                positions=empty, decisions={},
            )  # fmt: skip
        with Ledger(path) as ledger:
            decisions = {
                (account, decision_id): payload
                for account in ledger.accounts()
                for decision_id, payload in ledger.decisions(account).items()
            }
            return cls(
                path=path,
                accounts=_frame(ledger, "accounts"),
                equity=_frame(ledger, "equity"),
                orders=_frame(ledger, "orders"),
                fills=_frame(ledger, "fills"),
                positions=_frame(ledger, "positions"),
                decisions=decisions,
            )

    def account_names(self) -> list[str]:
        """Return the registered accounts, sorted."""
        return [] if self.accounts.empty else sorted(self.accounts["account"].astype(str))

    def digits(self) -> dict[str, tuple[int, int]]:
        """Return ``account -> (money_digits, quantity_digits)``."""
        return {
            str(row.account): (int(row.money_digits), int(row.quantity_digits))
            for row in self.accounts.itertuples(index=False)
        }

    def money(self, account: str) -> float:
        """Return the minor units per money unit of ``account``."""
        return 10.0 ** self.digits()[account][0]

    def days(self, period: Period | None = None) -> list[date]:
        """Return the committed days (of any account), in order; only the period's if given."""
        if self.equity.empty:
            return []
        days = sorted({date.fromisoformat(str(day)) for day in self.equity["day"]})
        return [day for day in days if period is None or period.contains(day)]

    def decision(self, account: str, decision_id: Any) -> dict[str, Any] | None:
        """Return the stored decision chain ``decision_id`` of ``account`` (or ``None``)."""
        if decision_id is None or (isinstance(decision_id, float) and math.isnan(decision_id)):
            return None
        return self.decisions.get((account, str(decision_id)))

    def trades_per_day(self, account: str) -> dict[date, int]:
        """Return ``day -> filled parent orders`` for every committed day of ``account``."""
        if self.equity.empty:
            return {}
        days = self.equity.loc[self.equity["account"] == account, "day"].astype(str)
        counts = dict.fromkeys((date.fromisoformat(day) for day in days), 0)
        if not self.orders.empty:
            mine = self.orders[(self.orders["account"] == account) & (self.orders["filled"] > 0)]
            for day, count in mine.groupby("day").size().items():
                parsed = date.fromisoformat(str(day))
                if parsed in counts:
                    counts[parsed] = int(count)
        return counts

    def round_trips(self) -> list[RoundTrip]:
        """Return every round trip of the ledger (:func:`reports.biases.round_trips`)."""
        return round_trips(self.fills, self.digits())

    def regimes(self) -> dict[date, str]:
        """Return the regime label each committed day's decisions perceived."""
        out: dict[date, str] = {}
        for payload in self.decisions.values():
            regime = (payload.get("perception") or {}).get("regime") or {}
            label = regime.get("regime") or regime.get("label")
            day = payload.get("day")
            if isinstance(label, str) and isinstance(day, str):
                out.setdefault(date.fromisoformat(day), label)
        return out


def closes_frame(panel: Any) -> pd.DataFrame:
    """Return a :class:`simulators.bars.Panel`'s closes indexed by trading day."""
    from arena.market import trading_days

    return pd.DataFrame(
        np.asarray(panel.close, dtype=np.float64),
        index=pd.Index(trading_days(panel)),
        columns=list(panel.symbols),
    )


def benchmark_history(closes: pd.DataFrame, days: Sequence[date]) -> pd.Series | None:
    """Return the equal-weight index (100 at the close before ``days[0]``) over ``days``.

    Each day's move is the mean close-to-close return of the names quoted on both days
    (the arena's benchmark). ``None`` when a day is not in ``closes``.
    """
    if not days:
        return None
    position = {day: index for index, day in enumerate(closes.index)}
    if any(day not in position for day in days) or position[days[0]] == 0:
        return None
    values = closes.to_numpy(dtype=np.float64)
    first = position[days[0]]
    index = [closes.index[first - 1]]
    levels = [100.0]
    for day in days:
        row = position[day]
        before, after = values[row - 1], values[row]
        ok = np.isfinite(before) & np.isfinite(after) & (before > 0) & (after > 0)
        move = float(np.mean(after[ok] / before[ok] - 1.0)) if ok.any() else 0.0
        index.append(day)
        levels.append(levels[-1] * (1.0 + move))
    return pd.Series(levels, index=pd.Index(index), dtype=np.float64)


def _sharpe(curve: np.ndarray, periods: float) -> float:
    if curve.size < 3:
        return 0.0
    return annualised_sharpe(curve[1:] / curve[:-1] - 1.0, periods)


def account_figures(
    view: LedgerView,
    account: str,
    period: Period,
    trips: Sequence[RoundTrip],
    bench: pd.Series | None,
) -> dict[str, Any] | None:
    """Return an account's figures over the period (module docstring), ``None`` without days.

    The result holds ``equity`` (a Series, start point included) besides the JSON figures.
    """
    mine = view.equity[view.equity["account"] == account]
    days = [date.fromisoformat(str(day)) for day in mine["day"]]
    money = view.money(account)
    values = mine["equity"].to_numpy(dtype=np.float64) / money
    inside = [k for k, day in enumerate(days) if period.contains(day)]
    if not inside:
        return None
    first = inside[0]
    initial = float(
        view.accounts.loc[view.accounts["account"] == account, "initial_cash"].iloc[0] / money
    )
    start_value = values[first - 1] if first > 0 else initial
    start_day = days[first - 1] if first > 0 else period.start - timedelta(days=1)
    curve = np.array([start_value, *(values[k] for k in inside)], dtype=np.float64)
    equity = pd.Series(curve, index=pd.Index([start_day, *(days[k] for k in inside)]))
    closed = [trip for trip in trips if trip.account == account]
    counts = view.trades_per_day(account)
    total = float(curve[-1] / curve[0] - 1.0) if curve[0] > 0 else 0.0
    bench_return = None if bench is None else float(bench.iloc[-1] / bench.iloc[0] - 1.0)
    return {
        "equity": equity,
        "start_equity": float(curve[0]),
        "end_equity": float(curve[-1]),
        "days": len(inside),
        "return": total,
        "trades": int(sum(counts.get(days[k], 0) for k in inside)),
        "round_trips": len(closed),
        "win_rate": (sum(trip.pnl > 0 for trip in closed) / len(closed)) if closed else None,
        "max_drawdown": max_drawdown(curve),
        # Annualised over the account's own calendar: 365 days when it trades weekends.
        "sharpe": _sharpe(curve, daily_periods_per_year(days)),
        "pnl": float(sum(trip.pnl for trip in closed)),
        "vs_benchmark": None if bench_return is None else total - bench_return,
    }


# --------------------------------------------------------------------------- gene pool
@dataclass(frozen=True, slots=True, kw_only=True)
class PoolView:
    """The gene pool as the reports read it: through :class:`evolution.store.GenePoolStore`.

    Every query is one of the store's read methods (the store is the one read model of its
    tables). A missing ``gene_pool.sqlite`` reads as an empty pool and is never created.
    """

    path: Path

    @contextmanager
    def _store(self) -> Iterator[GenePoolStore | None]:
        if not self.path.exists():
            yield None
            return
        with GenePoolStore(self.path) as store:
            yield store

    def sessions(self, period: Period | None = None) -> list[dict[str, Any]]:
        """Return the sessions (by ``as_of`` then creation), only the period's if given.

        Each row has ``session_id``, ``as_of``, ``created_at``, ``data_spec`` and ``day`` (the
        as-of day as a :class:`datetime.date`).
        """
        with self._store() as store:
            if store is None:
                return []
            if period is None:
                rows = store.sessions_as_of()
            else:
                rows = store.sessions_as_of(period.start.isoformat(), period.end.isoformat())
        for row in rows:
            row["day"] = date.fromisoformat(str(row["as_of"])[:10])
        return rows

    def births(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Return the genomes first recorded in these sessions, counted by operator."""
        with self._store() as store:
            return {} if store is None else store.births_by_operator(session_ids)

    def culled(self, session_ids: Sequence[str]) -> list[str]:
        """Return the distinct genomes with a culled member row in these sessions."""
        return self.members_with_status(session_ids, "culled")

    def members_with_status(self, session_ids: Sequence[str], status: str) -> list[str]:
        """Return the distinct genomes with a member row of ``status`` in these sessions."""
        with self._store() as store:
            return [] if store is None else store.member_genome_ids(session_ids, status)

    def generations(self, session_id: str) -> list[dict[str, Any]]:
        """Return the session's generation statistics, in order."""
        with self._store() as store:
            return [] if store is None else store.generation_stats(session_id)

    def final_population(self, session_id: str) -> list[dict[str, Any]]:
        """Return the session's last committed generation, best score first."""
        with self._store() as store:
            return [] if store is None else store.ranked_population(session_id)

    def verdicts(self, session_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return the gate verdicts of these sessions (:meth:`GenePoolStore.gate_verdicts`)."""
        with self._store() as store:
            return [] if store is None else store.gate_verdicts(session_ids)

    def member_histories(self, session_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return every member row of the genomes of these sessions, in lived order."""
        with self._store() as store:
            return [] if store is None else store.member_histories(session_ids)

    def lineage_nodes(self, roots: Sequence[str]) -> list[dict[str, Any]]:
        """Return the ancestry of ``roots`` (breadth first, at most ``MAX_LINEAGE_NODES``)."""
        with self._store() as store:
            return [] if store is None else store.ancestry(roots, limit=MAX_LINEAGE_NODES)

    def transitions(
        self, period: Period | None = None, *, until: date | None = None
    ) -> list[dict[str, Any]]:
        """Return the lifecycle moves of the period (or all up to ``until``), oldest first.

        A move belongs to the day it was decided on
        (:meth:`GenePoolStore.transitions_between`, ``effective_day``).
        """
        with self._store() as store:
            if store is None:
                return []
            if period is not None:
                return store.transitions_between(period.start.isoformat(), period.end.isoformat())
            return store.transitions_between(None, None if until is None else until.isoformat())

    def paper_days(self, period: Period) -> list[PaperDayRecord]:
        """Return the period's paper days (by genome, day, account)."""
        with self._store() as store:
            if store is None:
                return []
            return store.paper_days_between(period.start.isoformat(), period.end.isoformat())

    def feedback(self, period: Period) -> list[dict[str, Any]]:
        """Return the LiveFeedback records whose period overlaps ``period``."""
        with self._store() as store:
            if store is None:
                return []
            return store.feedback_between(period.start.isoformat(), period.end.isoformat())

    def genome_state(self, genome_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return ``id -> {status, paused, expectation}`` now (gate figures of its candidacy)."""
        with self._store() as store:
            if store is None:
                return {}
            out: dict[str, dict[str, Any]] = {}
            for genome_id in genome_ids:
                found = store.status_of(genome_id)
                out[genome_id] = {
                    "status": None if found is None else found[0],
                    "paused": False if found is None else found[1],
                    "expectation": store.expectation_figures(genome_id),
                }
            return out

    def status_counts(self) -> dict[str, int]:
        """Return how many genomes hold each status now, and how many are paused."""
        with self._store() as store:
            return {} if store is None else store.status_counts()

    def has_data(self, period: Period) -> bool:
        """Return whether the period has a session, a lifecycle move or a paper day."""
        return bool(self.sessions(period) or self.transitions(period) or self.paper_days(period))


# --------------------------------------------------------------------------- lessons
def period_lessons(
    view: LedgerView, period: Period, config: LessonConfig | None = None
) -> list[Lesson]:
    """Return the period's lessons (module docstring), by account then day."""
    config = config or LessonConfig()
    regimes = view.regimes()
    found: list[Lesson] = []
    for account in view.account_names():
        counts = view.trades_per_day(account)
        ordered = sorted(counts)
        mine = view.equity[view.equity["account"] == account]
        money = view.money(account)
        equity = {
            date.fromisoformat(str(row.day)): float(row.equity) / money
            for row in mine.itertuples(index=False)
        }
        initial = float(
            view.accounts.loc[view.accounts["account"] == account, "initial_cash"].iloc[0]
        )
        previous = initial / money
        for position, day in enumerate(ordered):
            value = equity[day]
            day_return = value / previous - 1.0 if previous > 0 else 0.0
            previous = value
            if not period.contains(day):
                continue
            history = [counts[d] for d in ordered[max(0, position - TYPICAL_DAYS) : position]]
            usual = float(np.mean(history)) if history else 0.0
            if usual > 0 and counts[day] > config.over_trading_ratio * usual:
                found.append(
                    Lesson(
                        kind="over_trading",
                        account=account,
                        detail=f"{day.isoformat()}: {account} traded {counts[day]} times against "
                        f"a usual {usual:.3g} (limit {config.over_trading_ratio:g}x)",
                        figures={
                            "day": day.isoformat(),
                            "trades": float(counts[day]),
                            "typical_trades": usual,
                        },
                    )
                )
            label = regimes.get(day, "unknown")
            if label in config.high_vol_regimes and day_return < -config.high_vol_min_loss:
                found.append(
                    Lesson(
                        kind="high_vol_loss",
                        account=account,
                        detail=f"{day.isoformat()}: {account} lost {-day_return:.2%} in a "
                        f"{label} regime",
                        figures={"day": day.isoformat(), "day_return": day_return, "regime": label},
                    )
                )
        inside = [day for day in ordered if period.contains(day)]
        if inside and not view.positions.empty:
            last = inside[-1].isoformat()
            held = view.positions[
                (view.positions["account"] == account) & (view.positions["day"] == last)
            ]
            if not held.empty and equity[inside[-1]] > 0:
                weights = held["value"].to_numpy(dtype=np.float64) / money / equity[inside[-1]]
                top = int(np.argmax(weights))
                if weights[top] > config.max_position_weight:
                    symbol = str(held["symbol"].iloc[top])
                    found.append(
                        Lesson(
                            kind="concentration",
                            account=account,
                            detail=f"{last}: {account} holds {symbol} at {weights[top]:.1%} of "
                            f"equity (threshold {config.max_position_weight:.0%})",
                            figures={"symbol": symbol, "weight": float(weights[top])},
                        )
                    )
    return found


# --------------------------------------------------------------------------- charts
def _color(position: int) -> str:
    return _COLORS[position % len(_COLORS)]


def _plot_dates(index: pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime([str(value) for value in index]))


def equity_chart(curves: Mapping[str, pd.Series], bench: pd.Series | None, title: str) -> str:
    """Return a PNG data URI of equity curves (rebased to 100) against the benchmark."""
    figure = new_figure()
    axes = figure.add_subplot()
    for position, (name, curve) in enumerate(curves.items()):
        axes.plot(
            _plot_dates(curve.index),
            100.0 * curve.to_numpy() / float(curve.iloc[0]),
            label=name,
            color=_color(position),
            marker="o",
            markersize=3,
        )
    if bench is not None:
        axes.plot(
            _plot_dates(bench.index),
            100.0 * bench.to_numpy() / float(bench.iloc[0]),
            label="benchmark",
            color="#222222",
            linestyle="--",
        )
    axes.set_title(title)
    axes.set_ylabel("value (start = 100)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    figure.autofmt_xdate()
    return figure_to_data_uri(figure)


def _trend_chart(points: Sequence[dict[str, Any]]) -> str:
    figure = new_figure()
    axes = figure.add_subplot()
    steps = np.arange(len(points))
    axes.plot(steps, [p["best"] for p in points], marker="o", label="best", color=_color(0))
    axes.plot(steps, [p["median"] for p in points], marker="s", label="median", color=_color(1))
    axes.set_xticks(steps, [f"{p['as_of']}\ng{p['generation']}" for p in points], fontsize=7)
    axes.set_ylabel("score")
    axes.set_title("Fitness per generation (session as-of day, generation)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    return figure_to_data_uri(figure)


def _lineage_chart(nodes: Sequence[dict[str, Any]], roots: Sequence[str]) -> str:
    depth_max = max(node["depth"] for node in nodes)
    by_depth: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        by_depth[node["depth"]].append(node["genome_id"])
    place: dict[str, tuple[float, float]] = {}
    for depth, ids in by_depth.items():
        for rank, genome_id in enumerate(sorted(ids)):
            place[genome_id] = (float(depth_max - depth), rank - (len(ids) - 1) / 2.0)
    height = max(3.0, 0.45 * max(len(ids) for ids in by_depth.values()) + 1.5)
    figure = new_figure(width=10.0, height=height)
    axes = figure.add_subplot()
    operators = sorted({node["operator"] for node in nodes})
    colors = {operator: _color(k) for k, operator in enumerate(operators)}
    for node in nodes:
        x, y = place[node["genome_id"]]
        for parent in node["parents"]:
            if parent in place:
                px, py = place[parent]
                axes.plot([px, x], [py, y], color="#999999", linewidth=0.8, zorder=1)
    for node in nodes:
        x, y = place[node["genome_id"]]
        is_root = node["genome_id"] in roots
        axes.scatter(
            [x], [y], s=140 if is_root else 60, color=colors[node["operator"]], zorder=2,
            edgecolors="black" if is_root else "none",
        )  # fmt: skip
        axes.annotate(
            node["genome_id"][:8], (x, y), textcoords="offset points", xytext=(0, 7),
            ha="center", fontsize=7,
        )  # fmt: skip
    for operator in operators:
        axes.scatter([], [], color=colors[operator], label=operator)
    axes.set_xticks(
        range(depth_max + 1),
        [f"-{depth_max - k}" if k < depth_max else "0" for k in range(depth_max + 1)],
    )
    axes.set_xlabel("generations of ancestry (0 = the genome shown, circled)")
    axes.set_yticks([])
    axes.set_title("Lineage (parents on the left, colour = operator of birth)")
    axes.legend(loc="best", fontsize=8)
    return figure_to_data_uri(figure)


# --------------------------------------------------------------------------- output


def _no_charts(sections: Sequence[Section]) -> list[Section]:
    return [
        Section(
            title=section.title,
            blocks=tuple(block for block in section.blocks if not isinstance(block, Image)),
            level=section.level,
        )
        for section in sections
    ]


def jsonable(value: Any) -> Any:
    """Return ``value`` as JSON-ready data (dates as ISO text, NaN and inf as ``None``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value


def write_report_files(
    folder: Path, title: str, sections: Sequence[Section], headline: Mapping[str, Any]
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``summary.json`` atomically under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        folder=folder,
        markdown=folder / "report.md",
        html=folder / "report.html",
        summary=folder / "summary.json",
    )
    atomic_write_text(files.summary, json.dumps(jsonable(headline), indent=2, sort_keys=True))
    atomic_write_text(files.markdown, render_markdown(title, _no_charts(sections)))
    atomic_write_text(files.html, render_html(title, sections))
    return files


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def accounts_section(
    view: LedgerView, period: Period, trips: Sequence[RoundTrip], closes: pd.DataFrame | None
) -> tuple[Section, dict[str, Any], float | None]:
    """Return the accounts' section (table and equity chart), their figures, the benchmark."""
    days = view.days(period)
    bench = None if closes is None else benchmark_history(closes, days)
    bench_return = None if bench is None else float(bench.iloc[-1] / bench.iloc[0] - 1.0)
    figures: dict[str, Any] = {}
    rows = []
    for account in view.account_names():
        found = account_figures(view, account, period, trips, bench)
        if found is None:
            continue
        figures[account] = found
        rows.append(
            (
                account,
                _percent(found["return"], signed=True),
                str(found["trades"]),
                str(found["round_trips"]),
                _percent(found["win_rate"]),
                _percent(found["max_drawdown"]),
                f"{found['sharpe']:.2f}",
                _percent(found["vs_benchmark"], signed=True),
                f"{found['end_equity']:,.2f}",
            )
        )
    if not rows:
        section = Section(
            title="The accounts",
            blocks=(
                Paragraph(
                    text=f"No arena day was committed in {period.describe()} (ledger {view.path})."
                ),
            ),
        )
        return section, figures, bench_return
    headers = ("account", "return", "trades", "round trips", "win rate", "max drawdown",
               "Sharpe", "vs benchmark", "equity")  # fmt: skip
    blocks: list[Block] = [
        Table(headers=headers, rows=tuple(rows), numeric=frozenset(range(1, 9))),
        Paragraph(
            text=(
                f"{len(days)} committed day(s). Benchmark (equal-weight index of the market): "
                f"{_percent(bench_return, signed=True)}. Trades are filled parent orders; the "
                "win rate is over the round trips closed in the period; Sharpe is annualised."
            ),
            note=True,
        ),
        Image(
            data_uri=equity_chart(
                {name: values["equity"] for name, values in figures.items()},
                bench,
                f"Equity over {period.label} (rebased to 100)",
            ),
            caption="Equity of the accounts against the benchmark",
        ),
    ]
    return Section(title="The accounts", blocks=tuple(blocks)), figures, bench_return


def lessons_section(lessons: Sequence[Lesson], period: Period) -> Section:
    """Return the lessons as a table (or a sentence when none fired)."""
    if not lessons:
        return Section(
            title="Lessons",
            blocks=(Paragraph(text=f"No lesson detector fired in {period.kind} {period.label}."),),
        )
    rows = tuple((lesson.kind, lesson.account, lesson.detail) for lesson in lessons)
    return Section(
        title="Lessons", blocks=(Table(headers=("lesson", "account", "detail"), rows=rows),)
    )


# --------------------------------------------------------------------------- evolution
def _status_changes(pool: PoolView, week_ids: set[str]) -> list[dict[str, Any]]:
    rows = pool.member_histories(sorted(week_ids))
    changes = []
    previous: dict[str, dict[str, Any]] = {}
    for row in rows:
        before = previous.get(row["genome_id"])
        previous[row["genome_id"]] = row
        if before is None or row["session_id"] not in week_ids:
            continue
        if before["status"] != row["status"]:
            changes.append(
                {
                    "genome_id": row["genome_id"],
                    "from": before["status"],
                    "to": row["status"],
                    "as_of": str(row["as_of"])[:10],
                    "generation": int(row["generation"]),
                    "direction": "promoted"
                    if _STATUS_RANK[row["status"]] > _STATUS_RANK[before["status"]]
                    else "demoted",
                }
            )
    return changes


def evolution_sections(
    pool: PoolView, period: Period, moves: Sequence[Mapping[str, Any]] = ()
) -> tuple[list[Section], dict[str, Any]]:
    """Return the week's evolution sections and their headline figures.

    ``moves`` are the week's lifecycle moves (:meth:`PoolView.transitions`): their genomes
    count as promoted or demoted beside the gate verdicts and the member status changes.
    """
    sessions = pool.sessions(period)
    if not sessions:
        text = f"No gene-pool session has an as-of day in {period.describe()} ({pool.path})."
        return [Section(title="Evolution", blocks=(Paragraph(text=text),))], {"sessions": 0}
    ids = [str(s["session_id"]) for s in sessions]
    births = pool.births(ids)
    culled = pool.culled(ids)
    points = []
    for session in sessions:
        for stats in pool.generations(str(session["session_id"])):
            points.append(
                {
                    "as_of": session["day"].isoformat(),
                    "generation": stats["generation"],
                    "best": float(stats["best_score"]),
                    "median": float(stats["median_score"]),
                }
            )
    ranking = pool.final_population(ids[-1])[:TOP_RANKED]
    champions = week_champions(pool, period, ids)
    verdicts = pool.verdicts(ids)
    changes = _status_changes(pool, set(ids))
    sessions_text = ", ".join(
        f"{s['day'].isoformat()} ({str(s['session_id'])[:8]})" for s in sessions
    )
    born_total = sum(births.values())
    blocks: list[Block] = [
        Paragraph(
            text=f"{len(sessions)} session(s) as of a day in the week: {sessions_text}. "
            f"{born_total} genome(s) born, {len(culled)} culled, {len(champions)} champion(s)."
        ),
        Table(
            headers=("operator", "born"),
            rows=tuple((operator, str(count)) for operator, count in births.items()),
            numeric=frozenset({1}),
        ),
    ]
    sections = [Section(title="Evolution: born and culled", blocks=tuple(blocks))]
    sections.append(
        Section(
            title="Ranking",
            blocks=(
                Paragraph(
                    text=f"The last session's last generation ({sessions[-1]['day'].isoformat()}),"
                    " best score first."
                ),
                Table(
                    headers=("genome", "score", "status", "style", "operator", "description"),
                    rows=tuple(
                        (
                            str(row["genome_id"]),
                            f"{float(row['score']):.1f}",
                            str(row["status"]),
                            str(row["style"]),
                            str(row["operator"]),
                            str(row["description"]),
                        )
                        for row in ranking
                    ),
                    numeric=frozenset({1}),
                ),
            ),
        )
    )
    trend_rows = tuple(
        (p["as_of"], str(p["generation"]), f"{p['best']:.1f}", f"{p['median']:.1f}") for p in points
    )
    sections.append(
        Section(
            title="Fitness trend",
            blocks=(
                Table(
                    headers=("session as of", "generation", "best", "median"),
                    rows=trend_rows,
                    numeric=frozenset({1, 2, 3}),
                ),
                Image(data_uri=_trend_chart(points), caption="Best and median score"),
            ),
        )
    )
    roots = champions[:3] or [str(row["genome_id"]) for row in ranking[:3]]
    nodes = pool.lineage_nodes(roots)
    lineage_blocks: list[Block] = [
        Paragraph(
            text=(
                "Champions of the week: " + ", ".join(champions)
                if champions
                else "No champion this week: the lineage of the three best-ranked genomes."
            )
        ),
        BulletTree(
            value={
                node["genome_id"]: f"{node['operator']} of {', '.join(node['parents']) or '-'}"
                for node in nodes
            }
        ),
    ]
    if nodes:
        lineage_blocks.append(
            Image(data_uri=_lineage_chart(nodes, roots), caption="Lineage of the week's leaders")
        )
    sections.append(Section(title="Lineage", blocks=tuple(lineage_blocks)))
    verdict_rows = tuple(
        (
            str(v["genome_id"]),
            str(v["as_of"])[:10],
            str(v["generation"]),
            "passed" if v["passed"] else "held back",
            "; ".join(v["reasons"]),
        )
        for v in verdicts
    )
    change_rows = tuple(
        (c["genome_id"], c["as_of"], str(c["generation"]), f"{c['from']} -> {c['to']}",
         c["direction"])
        for c in changes
    )  # fmt: skip
    up, down = lifecycle_directions(moves)
    promoted = sorted(
        {str(v["genome_id"]) for v in verdicts if v["passed"]}
        | {c["genome_id"] for c in changes if c["direction"] == "promoted"}
        | up
    )
    demoted = sorted({c["genome_id"] for c in changes if c["direction"] == "demoted"} | down)
    gate_blocks: list[Block] = [
        Paragraph(
            text=f"Promoted: {', '.join(promoted) or 'none'}. "
            f"Demoted: {', '.join(demoted) or 'none'}."
            + (" Lifecycle moves included (see Lifecycle)." if moves else "")
        ),
        Table(headers=("genome", "as of", "generation", "gate", "reasons"), rows=verdict_rows)
        if verdict_rows
        else Paragraph(text="No gate verdict this week."),
        Table(headers=("genome", "as of", "generation", "status", "change"), rows=change_rows)
        if change_rows
        else Paragraph(text="No status change this week."),
    ]
    sections.append(Section(title="Promoted and demoted", blocks=tuple(gate_blocks)))
    headline = {
        "sessions": len(sessions),
        "session_ids": ids,
        "births": births,
        "born": born_total,
        "culled": len(culled),
        "champions": champions,
        "promoted": promoted,
        "demoted": demoted,
        "best_score": max((p["best"] for p in points), default=None),
        "ranking": [
            {
                "genome_id": str(r["genome_id"]),
                "score": float(r["score"]),
                "status": str(r["status"]),
                "description": str(r["description"]),
            }
            for r in ranking
        ],
    }
    return sections, headline


# --------------------------------------------------------------------------- lifecycle
def lifecycle_directions(moves: Sequence[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """Return the genomes moved up and down by status moves (``_STATUS_RANK``)."""
    up: set[str] = set()
    down: set[str] = set()
    for move in moves:
        if move["kind"] != "status":
            continue
        before, after = _STATUS_RANK[move["from_status"]], _STATUS_RANK[move["to_status"]]
        (up if after > before else down).add(str(move["genome_id"]))
    return up, down


def week_champions(pool: PoolView, period: Period, session_ids: Sequence[str]) -> list[str]:
    """Return the genomes that were champion at some time in the period, sorted.

    Champion when the period began (its status moves decided before the first day) or
    promoted to champion in it; on stores upgraded from schema 1, also the genomes with a
    ``champion`` member row in the period's sessions.
    """
    status: dict[str, str] = {}
    found: set[str] = set(pool.members_with_status(session_ids, "champion"))
    start = period.start.isoformat()
    for move in pool.transitions(until=period.end):
        if move["kind"] != "status":
            continue
        genome_id = str(move["genome_id"])
        if move["effective_day"] < start:
            status[genome_id] = str(move["to_status"])
        elif move["to_status"] == "champion":
            found.add(genome_id)
    found.update(genome_id for genome_id, now in status.items() if now == "champion")
    return sorted(found)


def _key_figures(figures: Mapping[str, Any]) -> str:
    numeric = {
        key: float(value)
        for key, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    keys = [key for key in _KEY_FIGURES if key in numeric] or sorted(numeric)
    return ", ".join(f"{key} {numeric[key]:.4g}" for key in keys[:MAX_KEY_FIGURES]) or "-"


def _move_text(move: Mapping[str, Any]) -> str:
    if move["kind"] == "status":
        return f"{move['from_status']} -> {move['to_status']}"
    return f"{move['kind']} ({move['to_status']})"


def lifecycle_section(
    pool: PoolView, period: Period, moves: Sequence[Mapping[str, Any]]
) -> tuple[Section, dict[str, Any]]:
    """Return the period's lifecycle moves as a section, and their headline figures.

    A move belongs to the day it was decided on (``effective_day``): its arena day, else its
    session's as-of day, else the UTC date it was stored (a user's command).
    """
    counts = pool.status_counts()
    paused = counts.pop("paused", 0)
    pool_text = (
        "The pool now: "
        + ", ".join(f"{count} {status}" for status, count in counts.items() if count)
        + f" ({paused} paused)."
        if any(counts.values())
        else "The pool holds no genome."
    )
    headline = {
        "transitions": [
            {
                "seq": int(move["seq"]),
                "day": str(move["effective_day"]),
                "genome_id": str(move["genome_id"]),
                "kind": str(move["kind"]),
                "from": str(move["from_status"]),
                "to": str(move["to_status"]),
                "actor": str(move["actor"]),
                "reason": str(move["reason"]),
                "figures": dict(move["figures"]),
            }
            for move in moves
        ],
        "status_counts": {**counts, "paused": paused},
    }
    if not moves:
        text = f"Lifecycle moves in {period.kind} {period.label}: none. {pool_text}"
        return Section(title="Lifecycle", blocks=(Paragraph(text=text),)), headline
    rows = tuple(
        (
            str(move["effective_day"]),
            str(move["genome_id"]),
            _move_text(move),
            str(move["actor"]),
            str(move["reason"]),
            _key_figures(move["figures"]),
        )
        for move in moves
    )
    blocks: tuple[Block, ...] = (
        Paragraph(text=f"{len(moves)} lifecycle move(s) decided in the {period.kind}. {pool_text}"),
        Table(headers=("day", "genome", "move", "by", "reason", "key figures"), rows=rows),
        Paragraph(
            text="The day is the arena day a move was decided on, else its session's as-of day, "
            "else the day it was stored (a user's command); every figure is in summary.json.",
            note=True,
        ),
    )
    return Section(title="Lifecycle", blocks=blocks), headline


def paper_figures(days: Sequence[PaperDayRecord], expectation: Mapping[str, Any]) -> dict[str, Any]:
    """Return one genome's paper record over ``days`` against its backtest's expectation.

    Each day is pooled over the accounts that traded the genome: its paper return is
    ``sum(pnl) / sum(allocation)`` and its shadow return the allocation-weighted mean of the
    accounts' shadow returns (as the lifecycle judges it, :func:`arena.loop.paper_record`).
    ``paper_return`` and ``shadow_return`` compound those daily returns; ``expected_return``
    is the gate's ``expected_daily_return`` x the paper days (``None`` without gate figures).
    The totals of ``pnl``, ``expected_pnl`` and :data:`PAPER_PARTS` are summed over accounts
    and days (account currency).
    """
    pooled: dict[str, list[float]] = {}
    totals = dict.fromkeys(("allocation", "pnl", "expected_pnl", *PAPER_PARTS), 0.0)
    for row in days:
        day = pooled.setdefault(row.day, [0.0, 0.0, 0.0])
        day[0] += row.allocation
        day[1] += row.pnl
        day[2] += row.allocation * row.shadow_return
        totals["allocation"] += row.allocation
        totals["pnl"] += row.pnl
        for key in ("expected_pnl", *PAPER_PARTS):
            totals[key] += float(row.figures.get(key, 0.0))
    ordered = sorted(pooled)
    paper = np.array([pooled[d][1] / pooled[d][0] for d in ordered], dtype=np.float64)
    shadow = np.array([pooled[d][2] / pooled[d][0] for d in ordered], dtype=np.float64)
    mu = expectation.get("expected_daily_return")
    expected_daily = float(mu) if isinstance(mu, int | float) else None
    return {
        "days": len(ordered),
        "first_day": ordered[0] if ordered else None,
        "last_day": ordered[-1] if ordered else None,
        "accounts": sorted({row.account for row in days}),
        "paper_return": float(np.prod(1.0 + paper) - 1.0),
        "shadow_return": float(np.prod(1.0 + shadow) - 1.0),
        "expected_daily_return": expected_daily,
        "expected_return": None if expected_daily is None else expected_daily * len(ordered),
        "daily": {
            "day": ordered,
            "paper": [float(x) for x in paper],
            "shadow": [float(x) for x in shadow],
        },
        **{key: float(value) for key, value in totals.items() if key != "allocation"},
    }


def _money(value: float) -> str:
    return f"{value:+,.2f}"


def paper_section(pool: PoolView, period: Period) -> tuple[Section, list[dict[str, Any]]]:
    """Return "Paper against backtest": one row per genome with paper days in the period."""
    days = pool.paper_days(period)
    if not days:
        text = f"Paper days of a genome in {period.kind} {period.label}: none."
        return Section(title="Paper against backtest", blocks=(Paragraph(text=text),)), []
    by_genome: dict[str, list[PaperDayRecord]] = defaultdict(list)
    for row in days:
        by_genome[row.genome_id].append(row)
    state = pool.genome_state(sorted(by_genome))
    records = []
    for genome_id in sorted(by_genome):
        now = state.get(genome_id, {})
        figures = paper_figures(by_genome[genome_id], now.get("expectation") or {})
        status = now.get("status") or "unknown"
        records.append(
            {
                "genome_id": genome_id,
                "status": status,
                "paused": bool(now.get("paused")),
                **figures,
            }
        )
    rows = tuple(
        (
            str(r["genome_id"]),
            str(r["status"]) + (" (paused)" if r["paused"] else ""),
            str(r["days"]),
            _percent(r["paper_return"], signed=True),
            _percent(r["expected_return"], signed=True),
            _percent(r["shadow_return"], signed=True),
            _money(r["pnl"]),
            *(_money(r[key]) for key in PAPER_PARTS),
        )
        for r in records
    )
    headers = ("genome", "status now", "paper days", "paper return", "expected", "shadow",
               "P&L", "execution cost", "governor cuts", "debate scaling", "residual")  # fmt: skip
    blocks: list[Block] = [
        Table(headers=headers, rows=rows, numeric=frozenset(range(2, 11))),
        Paragraph(
            text="Paper return: the compounded daily sum(pnl) / sum(allocation) over the accounts "
            "that traded the genome. Expected: the gate's expected daily return x the paper days. "
            "Shadow: the compounded same-day backtest return (allocation-weighted over the "
            "accounts). Execution cost, governor cuts, debate scaling and residual (account "
            "currency, summed) add up to P&L minus the expected P&L.",
            note=True,
        ),
        Image(
            data_uri=_paper_chart(records, f"Paper against shadow backtest, {period.label}"),
            caption="Cumulative paper (solid) and shadow backtest (dashed) return per genome",
        ),
    ]
    feedback = pool.feedback(period)
    if feedback:
        feedback_rows = tuple(
            (
                str(f["genome_id"]), str(f["account"]), f"{f['period_start']}..{f['period_end']}",
                str(f["days"]), _percent(float(f["total_return"]), signed=True),
                _percent(float(f["max_drawdown"])), f"{float(f['avg_slippage_bps']):.1f}",
                f"{float(f['fill_ratio']):.0%}", str(f["order_reject_count"]),
                str(f["risk_block_count"]),
            )
            for f in feedback
        )  # fmt: skip
        feedback_headers = ("genome", "account", "period", "days", "return", "max drawdown",
                            "slippage (bps)", "fill ratio", "rejects", "risk blocks")  # fmt: skip
        blocks.append(Paragraph(text="LiveFeedback records of the genomes overlapping the period:"))
        blocks.append(
            Table(headers=feedback_headers, rows=feedback_rows, numeric=frozenset(range(3, 10)))
        )
    return Section(title="Paper against backtest", blocks=tuple(blocks)), records


def _paper_chart(records: Sequence[Mapping[str, Any]], title: str) -> str:
    figure = new_figure()
    axes = figure.add_subplot()
    for position, record in enumerate(records):
        daily = record["daily"]
        when = pd.DatetimeIndex(pd.to_datetime(daily["day"]))
        color = _color(position)
        paper = 100.0 * (np.cumprod(1.0 + np.asarray(daily["paper"])) - 1.0)
        shadow = 100.0 * (np.cumprod(1.0 + np.asarray(daily["shadow"])) - 1.0)
        label = str(record["genome_id"])[:8]
        axes.plot(when, paper, color=color, marker="o", markersize=3, label=f"{label} paper")
        axes.plot(when, shadow, color=color, linestyle="--", label=f"{label} shadow")
    axes.axhline(0.0, color="#999999", linewidth=0.8)
    axes.xaxis.set_major_locator(DayLocator())
    axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    axes.set_title(title)
    axes.set_ylabel("cumulative return (%)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.autofmt_xdate()
    return figure_to_data_uri(figure)


# --------------------------------------------------------------------------- weekly
def default_week(home: LabHome, today: date | None = None) -> Period:
    """Return the ISO week of the last committed arena day, else of ``today``."""
    days = LedgerView.load(home.ledger_db).days()
    return week_of(days[-1] if days else (today or date.today()))


def report_folder(home: LabHome, period: Period) -> Path:
    """Return ``reports/weekly/<YYYY-Www>`` or ``reports/monthly/<YYYY-MM>`` of the home."""
    kind = "weekly" if period.kind == "week" else "monthly"
    return home.reports / kind / period.label


def _metrics(headline: Mapping[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key in ("sessions", "born", "culled", "best_score", "benchmark_return"):
        value = headline.get(key)
        if isinstance(value, int | float):
            metrics[key] = float(value)
    for key in ("transitions", "paper"):
        if isinstance(headline.get(key), list):
            metrics[f"{key}_count"] = float(len(headline[key]))
    for account, figures in (headline.get("accounts") or {}).items():
        for key, value in figures.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[f"{account}.{key}"] = float(value)
    return metrics


def period_genome_days(home: LabHome, period: Period) -> list[Any]:
    """Return the genome days of the period (none without a ledger)."""
    if not home.ledger_db.exists():
        return []
    with Ledger(home.ledger_db) as ledger:
        return list(ledger.genome_days(start=period.start, end=period.end))


def write_weekly_report(
    home: LabHome,
    period: Period,
    *,
    closes: pd.DataFrame | None = None,
    lesson_config: LessonConfig | None = None,
    track: bool = True,
) -> dict[str, Any]:
    """Write the week's report (module docstring) and return its ``--json`` object.

    Parameters
    ----------
    home:
        The lab home (its gene pool, ledger and ``reports/`` folder).
    period:
        The ISO week (:func:`parse_week`, :func:`week_of`).
    closes:
        Daily closes of the arena's market (:func:`closes_frame`) for the benchmark; the
        benchmark is ``n/a`` when ``None``.
    lesson_config:
        Lesson thresholds; the defaults when ``None``.
    track:
        Log the report to MLflow (``mlflow_run_id`` is ``None`` when ``False``).

    Raises
    ------
    ReportDataMissing
        If the week has no gene-pool session and no committed arena day.
    """
    view = LedgerView.load(home.ledger_db)
    pool = PoolView(path=home.gene_pool_db)
    if not view.days(period) and not pool.has_data(period):
        raise ReportDataMissing(
            f"no data for {period.describe()}: no committed arena day in {home.ledger_db} "
            f"and no gene-pool session as of a day in it, lifecycle move or paper day in "
            f"{home.gene_pool_db}"
        )
    trips = [
        trip for trip in view.round_trips() if period.contains(trip.exit_time.date())
    ] if not view.fills.empty else []  # fmt: skip
    moves = pool.transitions(period)
    evolution, evolution_headline = evolution_sections(pool, period, moves)
    lifecycle, lifecycle_headline = lifecycle_section(pool, period, moves)
    paper, paper_records = paper_section(pool, period)
    accounts, figures, bench_return = accounts_section(view, period, trips, closes)
    lessons = period_lessons(view, period, lesson_config)
    judge, judge_json = judge_section(home, period)  # issue 15: the judge's persona weights
    quality = decision_quality(view, trips, period_genome_days(home, period))
    sections = [
        *evolution, lifecycle, paper, accounts, judge, lessons_section(lessons, period),
        decision_quality_section(quality),
    ]  # fmt: skip
    up, down = lifecycle_directions(moves)
    accounts_json = {
        name: {key: value for key, value in values.items() if key != "equity"}
        for name, values in figures.items()
    }
    headline: dict[str, Any] = {
        "kind": "weekly",
        "period": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        **evolution_headline,
        "promoted": sorted(set(evolution_headline.get("promoted", ())) | up),
        "demoted": sorted(set(evolution_headline.get("demoted", ())) | down),
        **lifecycle_headline,
        "paper": paper_records,
        "arena_days": [day.isoformat() for day in view.days(period)],
        "accounts": accounts_json,
        "benchmark_return": bench_return,
        "judge_weights": judge_json,
        "lessons": [
            {"kind": lesson.kind, "account": lesson.account, "detail": lesson.detail}
            for lesson in lessons
        ],
        "decision_quality": quality,
    }
    title = f"AlphaLoop weekly report {period.label} ({period.start}..{period.end})"
    files = write_report_files(report_folder(home, period), title, sections, headline)
    run_id = log_report(home, "weekly", period, files, _metrics(headline)) if track else None
    return {
        **jsonable(headline),
        "markdown": str(files.markdown),
        "html": str(files.html),
        "summary": str(files.summary),
        "mlflow_run_id": run_id,
    }
