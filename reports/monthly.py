"""The monthly report: best and worst trades, biases, principles, direction of evolution.

``alphaloop report monthly [--month YYYY-MM]`` calls :func:`write_monthly_report`, which reads
the arena ledger and the gene-pool store of the lab home (read-only) and writes
``report.md``, ``report.html`` and ``summary.json`` under
``<lab home>/reports/monthly/<YYYY-MM>/``, then logs them to MLflow (experiment
``alphaloop-reports``; see :mod:`reports.weekly` for what both reports share). Contents:

* **the accounts' month**, as in the weekly report (return, trades, win rate, drawdown,
  Sharpe, against the benchmark, equity chart);
* **top five and bottom five trades**: the round trips (:func:`reports.biases.round_trips`,
  one per sell order, at the ledger's average cost) whose sell filled in the month, by P&L; each
  with the decision chain its exit order points to and the one of its (first) entry order;
* **biases** per account with their figures (:mod:`reports.biases`): over-trading, chasing
  (needs the market's closes) and the disposition effect;
* **principles**: one plain rule per detected bias and per kind of lesson of the month
  (:func:`principles`);
* **direction of evolution**: for each gene-pool session as of a day of the month, its last
  generation: the survivors (members not culled; the whole population when every member was
  culled, said so), their style shares, the mean of every numeric gene over them
  (:func:`gene_values`) and the operators that produced them;
* **lifecycle**: the month's lifecycle moves (:func:`reports.weekly.lifecycle_section`), with
  its promotions (moves to ``champion``) and demotions (moves to ``demoted``) in the summary.

Everything from the gene pool is read through :class:`reports.weekly.PoolView` (the store's
read methods). A month with no committed arena day and nothing in the gene pool (no session,
lifecycle move or paper day) raises :class:`reports.weekly.ReportDataMissing`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.home import LabHome
from reports.biases import (
    BiasConfig,
    BuyRecord,
    ChasingFinding,
    DispositionFinding,
    OverTradingFinding,
    RoundTrip,
    chasing,
    disposition,
    over_trading,
)
from reports.decision_quality import decision_quality, decision_quality_section
from reports.html import (
    Block,
    BulletTree,
    Image,
    Paragraph,
    Section,
    Table,
    figure_to_data_uri,
    new_figure,
)
from reports.lessons import Lesson, LessonConfig
from reports.periods import Period
from reports.weekly import (
    LedgerView,
    PoolView,
    ReportDataMissing,
    accounts_section,
    jsonable,
    lessons_section,
    lifecycle_section,
    log_report,
    period_genome_days,
    period_lessons,
    report_folder,
    write_report_files,
)

__all__ = [
    "TRADES_SHOWN",
    "ReportDataMissing",
    "buys_of",
    "gene_values",
    "principles",
    "select_trades",
    "write_monthly_report",
]

TRADES_SHOWN = 5
# Parameters shown in the direction table: the ones most genomes carry.
MAX_PARAMETERS_SHOWN = 16
_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


# --------------------------------------------------------------------------- trades
def select_trades(
    trips: Sequence[RoundTrip], count: int = TRADES_SHOWN
) -> tuple[list[RoundTrip], list[RoundTrip]]:
    """Return the ``count`` best round trips (highest P&L first) and worst (lowest first).

    Ties are broken by exit time, account and exit order id, so the choice is the same on
    every run.
    """
    key = [(trip.exit_time, trip.account, trip.exit_order_id) for trip in trips]
    order = sorted(range(len(trips)), key=lambda k: (-trips[k].pnl, key[k]))
    worst = sorted(range(len(trips)), key=lambda k: (trips[k].pnl, key[k]))
    return [trips[k] for k in order[:count]], [trips[k] for k in worst[:count]]


def _decision_id(view: LedgerView, account: str, order_id: str) -> str | None:
    orders = view.orders
    found = orders[(orders["account"] == account) & (orders["order_id"] == order_id)]
    if found.empty:
        return None
    value = found["decision_id"].iloc[0]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _trade_json(view: LedgerView, trip: RoundTrip) -> dict[str, Any]:
    exit_id = _decision_id(view, trip.account, trip.exit_order_id)
    entry_id = _decision_id(view, trip.account, trip.entry_order_ids[0])
    return {
        "account": trip.account,
        "symbol": trip.symbol,
        "quantity": trip.quantity,
        "entry_time": trip.entry_time.isoformat(),
        "exit_time": trip.exit_time.isoformat(),
        "entry_price": trip.entry_price,
        "exit_price": trip.exit_price,
        "pnl": trip.pnl,
        "return": trip.return_,
        "fees": trip.fees,
        "holding_days": trip.holding_days,
        "exit_order_id": trip.exit_order_id,
        "entry_order_ids": list(trip.entry_order_ids),
        "exit_decision_id": exit_id,
        "entry_decision_id": entry_id,
        "exit_decision": view.decision(trip.account, exit_id),
        "entry_decision": view.decision(trip.account, entry_id),
    }


def _trade_blocks(trade: Mapping[str, Any]) -> tuple[Block, ...]:
    row = (
        trade["account"],
        trade["symbol"],
        f"{trade['quantity']:g}",
        f"{trade['entry_price']:.4g} at {trade['entry_time']}",
        f"{trade['exit_price']:.4g} at {trade['exit_time']}",
        f"{trade['holding_days']:.2f}",
        f"{trade['pnl']:+,.2f}",
        f"{trade['return']:+.2%}",
    )
    headers = ("account", "symbol", "quantity", "entry", "exit", "held (days)", "P&L", "return")
    blocks: list[Block] = [Table(headers=headers, rows=(row,), numeric=frozenset({2, 5, 6, 7}))]
    for side in ("exit", "entry"):
        payload = trade[f"{side}_decision"]
        blocks.append(
            Paragraph(text=f"Decision chain of the {side} ({trade[f'{side}_decision_id']}):")
        )
        blocks.append(
            BulletTree(value=payload)
            if payload
            else Paragraph(text="No decision chain is stored for this order.", note=True)
        )
    return tuple(blocks)


def _trades_sections(
    best: Sequence[Mapping[str, Any]], worst: Sequence[Mapping[str, Any]], total: int
) -> list[Section]:
    if not total:
        return [
            Section(
                title="Top and bottom trades",
                blocks=(Paragraph(text="No round trip was closed this month."),),
            )
        ]
    sections = [
        Section(
            title="Top and bottom trades",
            blocks=(
                Paragraph(
                    text=f"{total} round trip(s) closed this month (a sell order against the "
                    "holding's average cost, the ledger's convention; P&L net of all fees)."
                ),
            ),
        )
    ]
    for title, trades in (("Top trades", best), ("Bottom trades", worst)):
        sections.append(Section(title=title, blocks=(), level=2))
        for rank, trade in enumerate(trades, start=1):
            sections.append(
                Section(
                    title=f"#{rank} {trade['account']} {trade['symbol']} {trade['pnl']:+,.2f}",
                    blocks=_trade_blocks(trade),
                    level=3,
                )
            )
    return sections


# --------------------------------------------------------------------------- biases
def buys_of(view: LedgerView, account: str, period: Period) -> list[BuyRecord]:
    """Return ``account``'s filled buy orders of the period with their average fill price."""
    orders = view.orders
    if orders.empty:
        return []
    mine = orders[
        (orders["account"] == account) & (orders["side"] == "buy") & (orders["filled"] > 0)
    ]
    money_digits, quantity_digits = view.digits()[account]
    out = []
    for row in mine.itertuples(index=False):
        day = date.fromisoformat(str(row.day))
        if not period.contains(day):
            continue
        quantity = int(row.filled) / 10.0**quantity_digits
        price = int(row.filled_notional) / 10.0**money_digits / quantity
        out.append(
            BuyRecord(
                account=account, symbol=str(row.symbol), day=day, price=price,
                order_id=str(row.order_id),
            )
        )  # fmt: skip
    return out


def _maybe(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def _bias_rows(
    found: Sequence[tuple[OverTradingFinding, ChasingFinding | None, DispositionFinding]],
    config: BiasConfig,
) -> tuple[tuple[str, ...], ...]:
    rows = []
    for over, chase, held in found:
        rows.append(
            (
                "over-trading",
                over.account,
                "yes" if over.detected else "no",
                f"{over.mean_per_day:.2f} trades/day (median {over.median_per_day:g}, max "
                f"{over.max_per_day}); {len(over.over_days)} day(s) above "
                f"{config.over_trading_ratio:g}x the mean; limit {config.max_trades_per_day:g}"
                "/day",
            )
        )
        if chase is None:
            rows.append(("chasing", over.account, "n/a", "no market closes to assess buys"))
        else:
            rows.append(
                (
                    "chasing",
                    chase.account,
                    "yes" if chase.detected else "no",
                    f"{chase.chasing_buys} of {chase.assessed_buys} assessed buys after a rise > "
                    f"{config.chase_threshold:.0%} over {config.chase_lookback_days} days "
                    f"(mean {_maybe(chase.mean_prior_move_chasing, '+.2%')}); "
                    f"{config.chase_outcome_days}-day outcome "
                    f"{_maybe(chase.mean_outcome_chasing, '+.2%')} vs "
                    f"{_maybe(chase.mean_outcome_other, '+.2%')} for the other buys",
                )
            )
        rows.append(
            (
                "disposition",
                held.account,
                "yes" if held.detected else "no",
                f"losers held {_maybe(held.mean_hold_losers, '.2f')} days ({held.losers}) vs "
                f"winners {_maybe(held.mean_hold_winners, '.2f')} days ({held.winners})",
            )
        )
    return tuple(rows)


def _holding_chart(found: Sequence[DispositionFinding]) -> str:
    figure = new_figure(height=3.2)
    axes = figure.add_subplot()
    positions = np.arange(len(found), dtype=np.float64)
    winners = [item.mean_hold_winners or 0.0 for item in found]
    losers = [item.mean_hold_losers or 0.0 for item in found]
    axes.bar(positions - 0.2, winners, width=0.4, label="winning round trips", color="#2ca02c")
    axes.bar(positions + 0.2, losers, width=0.4, label="losing round trips", color="#d62728")
    axes.set_xticks(positions, [item.account for item in found])
    axes.set_ylabel("mean holding time (days)")
    axes.set_title("Holding time of winners and losers")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    return figure_to_data_uri(figure)


def _trades_per_day_chart(counts: Mapping[str, Mapping[date, int]]) -> str:
    figure = new_figure(height=3.2)
    axes = figure.add_subplot()
    for position, (account, per_day) in enumerate(counts.items()):
        days = sorted(per_day)
        axes.plot(
            pd.DatetimeIndex([pd.Timestamp(day) for day in days]),
            [per_day[day] for day in days],
            marker="o",
            markersize=3,
            label=account,
            color=_COLORS[position % len(_COLORS)],
        )
    axes.set_ylabel("trades (filled orders)")
    axes.set_title("Trades per day")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    figure.autofmt_xdate()
    return figure_to_data_uri(figure)


def principles(
    found: Sequence[tuple[OverTradingFinding, ChasingFinding | None, DispositionFinding]],
    lessons: Sequence[Lesson],
    config: BiasConfig | None = None,
) -> list[str]:
    """Return the month's rules in plain words: one per detected bias and kind of lesson."""
    config = config or BiasConfig()
    rules: list[str] = []
    for over, chase, held in found:
        if over.detected:
            cap = max(1, math.ceil(over.mean_per_day))
            rules.append(
                f"{over.account}: trade at most {cap} time(s) a day; it averaged "
                f"{over.mean_per_day:.2f} trades a day and went above "
                f"{config.over_trading_ratio:g}x its usual count on {len(over.over_days)} day(s)."
            )
        if chase is not None and chase.detected:
            rules.append(
                f"{chase.account}: do not buy a name that rose more than "
                f"{config.chase_threshold:.0%} over the prior {config.chase_lookback_days} days; "
                f"its {chase.chasing_buys} such buy(s) returned "
                f"{_maybe(chase.mean_outcome_chasing, '+.2%')} over "
                f"{config.chase_outcome_days} days against "
                f"{_maybe(chase.mean_outcome_other, '+.2%')} for its other buys."
            )
        if held.detected and held.mean_hold_winners is not None:
            rules.append(
                f"{held.account}: cut losers as fast as winners; losing round trips were held "
                f"{_maybe(held.mean_hold_losers, '.2f')} days against "
                f"{held.mean_hold_winners:.2f} for winners: close a loser after at most "
                f"{held.mean_hold_winners:.2f} days."
            )
    kinds = Counter((lesson.kind, lesson.account) for lesson in lessons)
    for (kind, account), count in sorted(kinds.items()):
        if kind == "high_vol_loss":
            rules.append(
                f"{account}: lost on {count} high-volatility day(s): shrink risk while the "
                "regime is high-volatility."
            )
        elif kind == "concentration":
            rules.append(f"{account}: keep every position within the concentration limit.")
        elif kind == "over_trading" and not any(
            over.account == account and over.detected for over, _, _ in found
        ):
            rules.append(
                f"{account}: {count} day(s) traded well above the usual count: keep to it."
            )
    if not rules:
        rules.append("No bias crossed its threshold and no lesson fired: keep the current rules.")
    return rules


# --------------------------------------------------------------------------- evolution
def gene_values(genome: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Return the numeric genes of a genome's JSON form as ``dotted.name -> value``.

    A mapping with a ``kind`` names its genes under that kind (``entry.rsi.window``,
    ``sizing.vol_target.target``); booleans, strings, ``null`` and ``schema_version`` are
    not genes. A name that occurs twice in one genome (two conditions of the same kind)
    gets the mean of its values.
    """
    sums: dict[str, list[float]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            base = f"{path}.{value['kind']}" if isinstance(value.get("kind"), str) else path
            for key, item in value.items():
                if key in ("kind", "schema_version"):
                    continue
                walk(item, f"{base}.{key}" if base else str(key))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            sums.setdefault(path, []).append(float(value))

    walk(genome, prefix)
    return {key: float(np.mean(values)) for key, values in sorted(sums.items())}


def _direction(pool: PoolView, period: Period) -> tuple[list[dict[str, Any]], list[Section]]:
    sessions = pool.sessions(period)
    if not sessions:
        text = f"No gene-pool session has an as-of day in {period.describe()} ({pool.path})."
        return [], [Section(title="Direction of evolution", blocks=(Paragraph(text=text),))]
    rows: list[dict[str, Any]] = []
    for session in sessions:
        population = pool.final_population(str(session["session_id"]))
        survivors = [member for member in population if member["status"] != "culled"]
        group = survivors or population
        styles = Counter(str(member["style"]) for member in group)
        genes: dict[str, list[float]] = {}
        for member in group:
            for key, value in gene_values(json.loads(member["genome_json"])).items():
                genes.setdefault(key, []).append(value)
        rows.append(
            {
                "as_of": session["day"].isoformat(),
                "session_id": str(session["session_id"]),
                "population": len(population),
                "survivors": len(survivors),
                "basis": "survivors" if survivors else "whole population (all culled)",
                "styles": {k: v / len(group) for k, v in sorted(styles.items())} if group else {},
                "operators": dict(sorted(Counter(str(m["operator"]) for m in survivors).items())),
                "genes": {key: float(np.mean(values)) for key, values in sorted(genes.items())},
                "gene_counts": {key: len(values) for key, values in sorted(genes.items())},
            }
        )
    all_styles = sorted({style for row in rows for style in row["styles"]})
    style_table = Table(
        headers=("session as of", "population", "survivors", "basis", *all_styles),
        rows=tuple(
            (
                row["as_of"],
                str(row["population"]),
                str(row["survivors"]),
                row["basis"],
                *(f"{row['styles'].get(style, 0.0):.0%}" for style in all_styles),
            )
            for row in rows
        ),
        numeric=frozenset({1, 2, *range(4, 4 + len(all_styles))}),
    )
    carried = Counter(key for row in rows for key in row["genes"])
    shown = sorted(carried, key=lambda key: (-carried[key], key))[:MAX_PARAMETERS_SHOWN]
    gene_table = Table(
        headers=("gene (mean)", *(row["as_of"] for row in rows)),
        rows=tuple(
            (key, *(_maybe(row["genes"].get(key), ".4g") for row in rows)) for key in sorted(shown)
        ),
        numeric=frozenset(range(1, len(rows) + 1)),
    )
    operator_rows = tuple(
        (
            row["as_of"],
            ", ".join(f"{name} {count}" for name, count in row["operators"].items())
            or "no survivor",
        )
        for row in rows
    )
    first, last = rows[0], rows[-1]
    shifts = [
        f"{style} {last['styles'].get(style, 0.0) - first['styles'].get(style, 0.0):+.0%}"
        for style in all_styles
    ]
    blocks: list[Block] = [
        Paragraph(
            text=f"From {first['as_of']} to {last['as_of']} the style shares moved: "
            + ", ".join(shifts)
            + "."
        ),
        style_table,
        Image(data_uri=_style_chart(rows, all_styles), caption="Style shares per session"),
        Paragraph(text="Mean gene values of the survivors (the genes most genomes carry):"),
        gene_table,
        Table(headers=("session as of", "operators of the survivors"), rows=operator_rows),
    ]
    return rows, [Section(title="Direction of evolution", blocks=tuple(blocks))]


def _style_chart(rows: Sequence[Mapping[str, Any]], styles: Sequence[str]) -> str:
    figure = new_figure(height=3.2)
    axes = figure.add_subplot()
    bottom = np.zeros(len(rows))
    labels = [row["as_of"] for row in rows]
    for position, style in enumerate(styles):
        shares = np.array([100.0 * row["styles"].get(style, 0.0) for row in rows])
        axes.bar(labels, shares, bottom=bottom, label=style, color=_COLORS[position % 7])
        bottom += shares
    axes.set_ylabel("share of the survivors (%)")
    axes.set_title("Style shares per session")
    axes.legend(loc="best", fontsize=8)
    return figure_to_data_uri(figure)


# --------------------------------------------------------------------------- monthly
def write_monthly_report(
    home: LabHome,
    period: Period,
    *,
    closes: pd.DataFrame | None = None,
    bias_config: BiasConfig | None = None,
    lesson_config: LessonConfig | None = None,
    track: bool = True,
) -> dict[str, Any]:
    """Write the month's report (module docstring) and return its ``--json`` object.

    Parameters
    ----------
    home:
        The lab home.
    period:
        The month (:func:`reports.weekly.parse_month`).
    closes:
        Daily closes of the arena's market (:func:`reports.weekly.closes_frame`): the
        benchmark and the chasing detector need them (``n/a`` without).
    bias_config, lesson_config:
        Thresholds; the defaults when ``None``.
    track:
        Log the report to MLflow (``mlflow_run_id`` is ``None`` when ``False``).

    Raises
    ------
    ReportDataMissing
        If the month has no committed arena day and no gene-pool session.
    """
    config = bias_config or BiasConfig()
    view = LedgerView.load(home.ledger_db)
    pool = PoolView(path=home.gene_pool_db)
    if not view.days(period) and not pool.has_data(period):
        raise ReportDataMissing(
            f"no data for {period.describe()}: no committed arena day in {home.ledger_db} "
            f"and no gene-pool session as of a day in it, lifecycle move or paper day in "
            f"{home.gene_pool_db}"
        )
    all_trips = view.round_trips() if not view.fills.empty else []
    trips = [trip for trip in all_trips if period.contains(trip.exit_time.date())]
    best, worst = select_trades(trips)
    best_json = [_trade_json(view, trip) for trip in best]
    worst_json = [_trade_json(view, trip) for trip in worst]
    accounts, figures, bench_return = accounts_section(view, period, trips, closes)

    found = []
    counts: dict[str, dict[date, int]] = {}
    for account in view.account_names():
        per_day = {
            day: n for day, n in view.trades_per_day(account).items() if period.contains(day)
        }
        if not per_day:
            continue
        counts[account] = per_day
        mine = [trip for trip in trips if trip.account == account]
        chase = (
            None
            if closes is None
            else chasing(account, buys_of(view, account, period), closes, config)
        )
        found.append(
            (over_trading(account, per_day, config), chase, disposition(account, mine, config))
        )
    lessons = period_lessons(view, period, lesson_config)
    rules = principles(found, lessons, config)
    direction, direction_sections = _direction(pool, period)
    moves = pool.transitions(period)
    lifecycle, lifecycle_headline = lifecycle_section(pool, period, moves)
    status_moves = [move for move in moves if move["kind"] == "status"]

    bias_blocks: list[Block]
    if found:
        bias_blocks = [
            Table(
                headers=("bias", "account", "detected", "figures"), rows=_bias_rows(found, config)
            ),
            Image(data_uri=_trades_per_day_chart(counts), caption="Trades per day"),
            Image(
                data_uri=_holding_chart([held for _, _, held in found]),
                caption="Holding time of winning and losing round trips",
            ),
        ]
    else:
        bias_blocks = [Paragraph(text=f"No arena day was committed in {period.describe()}.")]
    quality = decision_quality(view, trips, period_genome_days(home, period))
    sections = [
        accounts,
        *_trades_sections(best_json, worst_json, len(trips)),
        Section(title="Biases", blocks=tuple(bias_blocks)),
        lessons_section(lessons, period),
        Section(title="Principles the month suggests", blocks=(BulletTree(value=rules),)),
        *direction_sections,
        lifecycle,
        decision_quality_section(quality),
    ]
    biases_json = {
        over.account: {
            "over_trading": over.figures(),
            "chasing": None if chase is None else chase.figures(),
            "disposition": held.figures(),
        }
        for over, chase, held in found
    }
    headline: dict[str, Any] = {
        "kind": "monthly",
        "period": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "arena_days": [day.isoformat() for day in view.days(period)],
        "round_trips": len(trips),
        "decision_quality": quality,
        "pnl": float(sum(trip.pnl for trip in trips)),
        "top_trades": best_json,
        "bottom_trades": worst_json,
        "accounts": {
            name: {key: value for key, value in values.items() if key != "equity"}
            for name, values in figures.items()
        },
        "benchmark_return": bench_return,
        "biases": biases_json,
        "lessons": [
            {"kind": lesson.kind, "account": lesson.account, "detail": lesson.detail}
            for lesson in lessons
        ],
        "principles": rules,
        "direction": direction,
        "sessions": len(direction),
        **lifecycle_headline,
        "promotions": sorted(
            {str(m["genome_id"]) for m in status_moves if m["to_status"] == "champion"}
        ),
        "demotions": sorted(
            {str(m["genome_id"]) for m in status_moves if m["to_status"] == "demoted"}
        ),
    }
    title = f"AlphaLoop monthly report {period.label}"
    files = write_report_files(report_folder(home, period), title, sections, headline)
    run_id = None
    if track:
        metrics: dict[str, float] = {
            "round_trips": float(len(trips)),
            "pnl": headline["pnl"],
            "sessions": float(len(direction)),
            "transitions_count": float(len(moves)),
            "biases_detected": float(
                sum(
                    over.detected + (chase is not None and chase.detected) + held.detected
                    for over, chase, held in found
                )
            ),
        }
        if bench_return is not None:
            metrics["benchmark_return"] = bench_return
        for name, values in headline["accounts"].items():
            for key in ("return", "max_drawdown", "sharpe", "trades"):
                if isinstance(values.get(key), int | float):
                    metrics[f"{name}.{key}"] = float(values[key])
        run_id = log_report(home, "monthly", period, files, metrics)
    return {
        **jsonable(headline),
        "markdown": str(files.markdown),
        "html": str(files.html),
        "summary": str(files.summary),
        "mlflow_run_id": run_id,
    }
