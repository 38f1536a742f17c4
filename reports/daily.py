"""The arena's daily report: Markdown summary, self-contained HTML and Parquet artifacts.

The arena's daily cycle fills one :class:`DailyReportInput` after it has committed day ``D``
and calls :func:`write_daily_report`; nothing here reads the ledger, Ray or MLflow, so the
report is a pure function of its input (plus the files it writes)::

    from reports.daily import (
        AccountDay, DailyReportInput, TradeRecord, run_dir_for, score_account,
        write_daily_report,
    )

    trade = TradeRecord(account="synthesis", symbol="AAA", side="buy", quantity=100.0,
                        entry_time=t0, exit_time=None, entry_price=10.0, exit_price=None,
                        pnl=35.0, genome_id="g-1a2b", decision=debate_record.to_dict())
    account = AccountDay(
        name="synthesis", equity_history=equity,            # pd.Series, one value per day, D last
        day_return=r, trades_today=3, win_rate=w, max_drawdown=m, sharpe=s,
        score=score_account(r, s, m, w), positions={"AAA": 0.18},
        typical_trades=2.0, slippage_bps=6.5, twap_slippage_bps=-1.2, trades=(trade,),
    )
    data = DailyReportInput(
        date=day, accounts=(aggressive, conservative, account),
        benchmark_history=index_close, benchmark_return=b,
        regime={"label": "high_vol", "index_volatility": 0.31, ...},
        risk_events=({"account": "aggressive", "rule": "max_weight", "reason": "..."},),
        orders=orders, fills=fills, decisions=decisions, equity=equity_frame,
        volatility_change=0.35,
    )
    paths = write_daily_report(run_dir_for(LabHome.resolve(), day), data)

Field meanings (all fractions are plain floats: 0.012 = 1.2%):

* ``AccountDay.equity_history``: equity at the close of each committed day, ``D`` included, indexed
  by date; ``day_return`` the return of ``D``; ``win_rate`` in [0, 1] (``None``: no closed trade);
  ``max_drawdown`` a positive fraction; ``sharpe`` annualised; ``score`` in [0, 100] (use
  :func:`score_account`); ``positions`` weights of equity at the close; ``typical_trades`` the usual
  daily trade count (e.g. the mean of the last 20 committed days, 0 when there is no history);
  ``slippage_bps`` the execution shortfall against the arrival price and ``twap_slippage_bps`` the
  shortfall minus that of a TWAP of the same orders, both in basis points with positive = worse.
* ``TradeRecord.pnl``: realised PnL of a closed trade, mark-to-market PnL of an open one
  (``exit_time``/``exit_price`` ``None``); ``decision`` the decision chain (proposal,
  objections, quant, verdict, ...) as a JSON-ready dict.
* ``DailyReportInput.benchmark_history``: the benchmark's level (any base) on the same days;
  ``regime``: ``{"label": ..., <inputs>}`` (a plain ``RegimeReading`` dict, where the label
  is under ``"regime"``, works too); ``risk_events``: flat dicts shown as a table (with a
  line above it saying the lab was paused, and why, when one has ``rule`` ``kill_switch``);
  ``volatility_change``: the relative change of market volatility into ``D`` (0.35 = +35%) or
  ``None``; ``orders``/``fills``/``decisions``/``equity``: the day's rows, written as they are;
  ``genomes``: the review's genome days (:class:`GenomeRow`, one per account and genome).
* ``DailyReportInput.currency``/``money_digits``: the account currency and the decimal places
  of its minor unit (``arena.money.MoneyUnits``), which name the Parquet money columns.

Files under ``run_dir`` (each written atomically: temporary file + rename):
``summary.md``, ``report.html``, ``orders.parquet``, ``fills.parquet``, ``equity.parquet``,
``decisions.parquet``, ``genomes.parquet`` (one row per :class:`GenomeRow`, the columns of
:data:`GENOME_COLUMNS`). The Parquet files round-trip through ``pandas.read_parquet``; the only
changes are that an object column holding dicts, lists or tuples (a decision chain), or
scalars of mixed types, is written as JSON text (``json.dumps(..., sort_keys=True)``),
non-string column names become strings, and money columns carry their unit in their name.

Units in the Parquet files (:data:`PARQUET_COLUMNS` classifies every column of every file; a
column it does not list is refused with :class:`ReportInputError`): money in integer minor
units of the account currency (the ledger's rows) is stored as ``<name>_<currency>_minor``
(``cash`` -> ``cash_cny_minor``: fen), money in currency units and prices (currency units per
whole unit of the asset) as ``<name>_<currency>`` (``allocation`` -> ``allocation_usd``,
``price`` -> ``price_cny``), the currency in lower case; every other column (ids, text, times,
quantities, counts, fractions, ``_bps``) keeps its name. The schema metadata key
:data:`UNITS_METADATA_KEY` (``"alphaloop.units"``) holds JSON ``{stored name: unit}``, the unit
``"CNY"`` or, for minor units, ``"0.01 CNY"``. The in-memory frames, ``summary.md`` and
``report.html`` keep the bare names.

Score (0-100), :func:`score_account`: the weighted sum of four parts in [0, 1]::

    100 * (0.35 * (1 + tanh(day_return / 0.02)) / 2      # a +2% day gives 0.88
         + 0.35 * (1 + tanh(sharpe / 2)) / 2             # Sharpe 2 gives 0.88
         + 0.15 * 1 / (1 + max_drawdown / 0.10)          # a 10% drawdown gives 0.5
         + 0.15 * win_rate)

It is strictly increasing in the return and the Sharpe ratio, decreasing in the drawdown,
increasing in the win rate, and always within [0, 100]. A flat day with Sharpe 0, no drawdown
and a 50% win rate scores 57.5.

The benchmark row of the table uses the same formula with the share of up days of its history
as its "win rate"; its Sharpe and drawdown come from its history (``periods_per_year`` bars a
year: the market's, 365 on crypto).
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alphaloop.home import LabHome
from arena.debate import LOW_CERTAINTY, certainty_label
from reports.daily_input import (
    GENOME_COLUMNS,
    MINOR_UNITS,
    PARQUET_COLUMNS,
    PARQUET_TABLES,
    DailyReportInput,
    TradeRecord,
    _finite,
    _require,
    _require_classified,
    _require_units,
    _stored_names,
)
from reports.html import (
    Block,
    BulletTree,
    Image,
    Paragraph,
    Section,
    Table,
    atomic_write_bytes,
    atomic_write_text,
    figure_to_data_uri,
    new_figure,
    render_html,
    render_markdown,
)
from reports.lessons import Lesson, LessonConfig, adjustments, detect_lessons, regime_label
from simulators.metrics import annualised_sharpe
from simulators.metrics import max_drawdown as _max_drawdown

__all__ = [
    "LOW_CERTAINTY",
    "UNITS_METADATA_KEY",
    "DailyReportPaths",
    "best_and_worst_trades",
    "build_sections",
    "certainty_label",
    "report_title",
    "run_dir_for",
    "score_account",
    "trade_record_rows",
    "write_daily_report",
    "write_parquet_table",
]


"""Money as an integer count of minor units of the account currency (the ledger's rows)."""
"""Money as a float in currency units (the genome days)."""
"""A price in currency units per whole unit of the asset (decimal text on the ledger's rows)."""
# The schema-metadata key of a Parquet file's money units: JSON ``{stored column: unit}``.
UNITS_METADATA_KEY = "alphaloop.units"


# Score weights and scales (see the module docstring).
_WEIGHT_RETURN = 0.35
_WEIGHT_SHARPE = 0.35
_WEIGHT_DRAWDOWN = 0.15
_WEIGHT_WIN_RATE = 0.15
_RETURN_SCALE = 0.02
_SHARPE_SCALE = 2.0
_DRAWDOWN_SCALE = 0.10

# Positions shown in the table and the chart: the largest by absolute weight.
_MAX_POSITIONS_SHOWN = 15
_BENCHMARK_COLOR = "#222222"
_ACCOUNT_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyReportPaths:
    """Where :func:`write_daily_report` put each file."""

    run_dir: Path
    summary_md: Path
    report_html: Path
    orders: Path
    fills: Path
    equity: Path
    decisions: Path
    genomes: Path

    def all(self) -> tuple[Path, ...]:
        """Return every file written (not the folder)."""
        return (
            self.summary_md,
            self.report_html,
            self.orders,
            self.fills,
            self.equity,
            self.decisions,
            self.genomes,
        )


# --------------------------------------------------------------------------- figures
def score_account(day_return: float, sharpe: float, max_drawdown: float, win_rate: float) -> float:
    """Return the day's score in [0, 100] (formula in the module docstring).

    Raises
    ------
    ReportInputError
        If a figure is not finite, the drawdown is negative or the win rate is outside [0, 1].
    """
    for name, value in (
        ("day_return", day_return),
        ("sharpe", sharpe),
        ("max_drawdown", max_drawdown),
        ("win_rate", win_rate),
    ):
        _require(_finite(value), f"score_account: {name} must be finite (got {value!r})")
    _require(max_drawdown >= 0.0, f"score_account: max_drawdown must be >= 0 ({max_drawdown})")
    _require(0.0 <= win_rate <= 1.0, f"score_account: win_rate must be in [0, 1] ({win_rate})")
    parts = (
        _WEIGHT_RETURN * (1.0 + math.tanh(day_return / _RETURN_SCALE)) / 2.0
        + _WEIGHT_SHARPE * (1.0 + math.tanh(sharpe / _SHARPE_SCALE)) / 2.0
        + _WEIGHT_DRAWDOWN / (1.0 + max_drawdown / _DRAWDOWN_SCALE)
        + _WEIGHT_WIN_RATE * win_rate
    )
    # Rounding can push the sum a hair past 1 at the saturated ends.
    return float(min(100.0, max(0.0, 100.0 * parts)))


def _history_returns(history: pd.Series) -> np.ndarray:
    values = history.to_numpy(dtype=np.float64)
    if values.size < 2:
        return np.empty(0)
    return values[1:] / values[:-1] - 1.0


def _history_sharpe(history: pd.Series, periods: float) -> float:
    return annualised_sharpe(_history_returns(history), periods)


def _drawdown_curve(history: pd.Series) -> pd.Series:
    values = history.astype(np.float64)
    return values / values.cummax() - 1.0


def best_and_worst_trades(
    data: DailyReportInput,
) -> tuple[TradeRecord | None, TradeRecord | None]:
    """Return the trades with the highest and the lowest PnL across all accounts.

    Ties go to the first trade in account order, then in each account's trade order, so the
    choice is the same on every run. Both are ``None`` on a day without trades; with one trade
    it is both the best and the worst.
    """
    trades = [trade for account in data.accounts for trade in account.trades]
    if not trades:
        return None, None
    best = trades[0]
    worst = trades[0]
    for trade in trades[1:]:
        if trade.pnl > best.pnl:
            best = trade
        if trade.pnl < worst.pnl:
            worst = trade
    return best, worst


# --------------------------------------------------------------------------- formatting
def _percent(value: float, signed: bool = False) -> str:
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if value is None:
        return ""
    return str(value)


def _time(value: datetime | None) -> str:
    return "open" if value is None else pd.Timestamp(value).isoformat()


def report_title(data: DailyReportInput) -> str:
    """Return the report's title (the same in Markdown and HTML)."""
    return f"AlphaLoop arena: daily report {data.day.isoformat()}"


def run_dir_for(home: LabHome, day: date) -> Path:
    """Return the run folder of ``day`` under the lab home (``runs/<YYYY-MM-DD>``)."""
    return home.runs / day.isoformat()


# --------------------------------------------------------------------------- sections
def _accounts_section(data: DailyReportInput) -> Section:
    headers = (
        "account",
        "return",
        "trades",
        "win rate",
        "max drawdown",
        "Sharpe",
        "score",
        "equity",
    )
    rows = [
        (
            account.name,
            _percent(account.day_return, signed=True),
            str(account.trades_today),
            "-" if account.win_rate is None else _percent(account.win_rate),
            _percent(account.max_drawdown),
            f"{account.sharpe:.2f}",
            f"{account.score:.1f}",
            f"{float(account.equity_history.iloc[-1]):,.2f}",
        )
        for account in data.accounts
    ]
    history = data.benchmark_history
    returns = _history_returns(history)
    up_share = float(np.mean(returns > 0)) if returns.size else 0.5
    bench_sharpe = _history_sharpe(history, data.periods_per_year)
    bench_drawdown = _max_drawdown(history.to_numpy(dtype=np.float64)) if len(history) else 0.0
    bench_score = score_account(data.benchmark_return, bench_sharpe, bench_drawdown, up_share)
    rows.append(
        (
            "benchmark",
            _percent(data.benchmark_return, signed=True),
            "-",
            _percent(up_share) + " (up days)",
            _percent(bench_drawdown),
            f"{bench_sharpe:.2f}",
            f"{bench_score:.1f}",
            f"{float(history.iloc[-1]):,.2f}" if len(history) else "-",
        )
    )
    blocks: list[Block] = [
        Table(headers=headers, rows=tuple(rows), numeric=frozenset(range(1, 8))),
        Paragraph(
            text=(
                "Return is the day's; win rate, max drawdown and Sharpe are to date. "
                "Score 0-100 = 35% return, 35% Sharpe, 15% drawdown, 15% win rate. "
                "A day without a closed trade has no win rate (shown -; the score counts "
                "it as 50%). The benchmark's win rate is its share of up days."
            ),
            note=True,
        ),
    ]
    return Section(title="Accounts against the benchmark", blocks=tuple(blocks))


def _trade_blocks(trade: TradeRecord, data: DailyReportInput) -> tuple[Block, ...]:
    headers = ("account", "symbol", "side", "quantity", "entry", "exit", "PnL", "genome")
    entry = f"{trade.entry_price:.4g} at {_time(trade.entry_time)}"
    exit_text = (
        f"{trade.exit_price:.4g} at {_time(trade.exit_time)}"
        if trade.exit_price is not None
        else "open (marked to market)"
    )
    row = (
        trade.account,
        trade.symbol,
        trade.side,
        f"{trade.quantity:g}",
        entry,
        exit_text,
        f"{trade.pnl:+,.2f}",
        trade.genome_id,
    )
    if not trade.decision:
        return (
            Table(headers=headers, rows=(row,), numeric=frozenset({3, 6})),
            Paragraph(text="No decision chain was recorded with this trade.", note=True),
        )
    return (
        Table(headers=headers, rows=(row,), numeric=frozenset({3, 6})),
        Paragraph(text="Trade record:"),
        Table(headers=("step", "record"), rows=trade_record_rows(trade, data)),
    )


def _target_of(targets: Any, symbol: str) -> Mapping[str, Any] | None:
    for target in targets or ():
        if isinstance(target, Mapping) and target.get("symbol") == symbol:
            return target
    return None


def _weight_text(target: Mapping[str, Any] | None) -> str:
    if target is None:
        return "no target (the name was sold out of the book)"
    return (
        f"{float(target.get('weight', 0.0)):.2%} of equity, genome {target.get('genome_id')} "
        f"({target.get('style')})"
    )


def trade_record_rows(trade: TradeRecord, data: DailyReportInput) -> tuple[tuple[str, str], ...]:
    """Return a trade's decision chain as the rows of a readable trade record.

    Proposal, objections, quant validation, verdict with confidence (``low-certainty``
    under :data:`LOW_CERTAINTY`), size, risk figures, execution quality, outcome, lessons
    and the adjustments in force, one row each (a non-synthesis account has no debate: its
    proposal is its plan's target); the raw chain stays in ``decisions.parquet``.
    """
    decision = trade.decision
    raw_debate = decision.get("debate")
    debate: Mapping[str, Any] | None = raw_debate if isinstance(raw_debate, Mapping) else None
    chain: Mapping[str, Any] = debate if debate is not None else decision
    rows: list[tuple[str, str]] = []
    proposal = _target_of(chain.get("proposal") or decision.get("targets"), trade.symbol)
    who = "the aggressive account's proposal" if debate is not None else "the plan's target"
    rows.append(("proposal", f"{who}: {_weight_text(proposal)}"))
    objections = chain.get("objections") or () if debate is not None else ()
    if objections:
        texts = [
            f"{o.get('topic')} ({o.get('level')}, severity {float(o.get('severity', 0)):.2f}): "
            f"{o.get('message')}"
            for o in objections
            if isinstance(o, Mapping)
        ]
        rows.append(("objections", " | ".join(texts)))
    else:
        rows.append(("objections", "none (no debate for this account)"))
    quant = chain.get("quant") if debate is not None else None
    if isinstance(quant, Mapping):
        rows.append(
            (
                "quant validation",
                f"{quant.get('message', '')} (sample {quant.get('sample_size')}, win rate "
                f"{float(quant.get('win_rate', 0.0)):.0%}, mean trade "
                f"{float(quant.get('expected_return', 0.0)):+.2%})",
            )
        )
    if debate is not None and "verdict" in debate:
        confidence = float(debate.get("confidence", 0.0))
        label = certainty_label(confidence)
        rows.append(
            (
                "verdict",
                f"{debate['verdict']} at confidence {confidence:.3f}"
                + (f" [{label}]" if label else "")
                + f", scale {float(debate.get('scale', 1.0)):.2f}"
                + (f" ({debate['rule']})" if debate.get("rule") else ""),
            )
        )
    final = _target_of(decision.get("targets"), trade.symbol)
    rows.append(
        ("size", f"{trade.side} {trade.quantity:g} {trade.symbol}; target {_weight_text(final)}")
    )
    cuts = [
        event
        for event in data.risk_events
        if event.get("account") == trade.account
        and trade.symbol in f"{event.get('reason', '')} {event.get('order_id', '')}"
    ]
    cut_text = "; ".join(f"{e.get('rule')}: {e.get('reason')}" for e in cuts) or "no cut"
    rows.append(("risk figures", f"governor on this name: {cut_text}"))
    account = next((a for a in data.accounts if a.name == trade.account), None)
    if account is not None:
        rows.append(
            (
                "execution quality",
                f"{trade.account}'s shortfall {account.slippage_bps:+.1f} bps against the "
                f"arrival price, {account.twap_slippage_bps:+.1f} bps against TWAP",
            )
        )
    cost = trade.entry_price * trade.quantity
    outcome = "closed" if trade.exit_price is not None else "open, marked at the close"
    rows.append(
        ("outcome", f"{outcome}: P&L {trade.pnl:+,.2f} ({trade.pnl / cost:+.2%} of entry value)")
    )
    lessons = [lesson.detail for lesson in detect_lessons(data) if lesson.account == trade.account]
    rows.append(("lessons", "; ".join(lessons) or "none for this account"))
    adjusted = [a for a in data.adjustments_in_force if a.get("account") == trade.account]
    if adjusted:
        rows.append(("adjustments in force", "; ".join(_adjustment_text(a) for a in adjusted)))
    return tuple(rows)


def _adjustment_text(record: Mapping[str, Any]) -> str:
    return (
        f"{record['id']}: {record['parameter']} {float(record['old_value']):.4g} -> "
        f"{float(record['new_value']):.4g} ({record['reason']})"
    )


def _adjustments_table(records: Sequence[Mapping[str, Any]]) -> Table:
    rows = tuple(
        (
            str(r["id"]),
            str(r["account"]),
            str(r["parameter"]),
            f"{float(r['old_value']):.4g}",
            f"{float(r['new_value']):.4g}",
            str(r["expires_day"]),
            str(r["reason"]),
        )
        for r in records
    )
    return Table(
        headers=("id", "account", "parameter", "configured", "applied", "until", "reason"),
        rows=rows,
        numeric=frozenset({3, 4}),
    )


def _adjustment_sections(data: DailyReportInput, advice: Sequence[str]) -> list[Section]:
    tomorrow: list[Block] = [BulletTree(value=list(advice))]
    if data.adjustments_made:
        tomorrow.append(Paragraph(text="Stored, applied from the next trading day:"))
        tomorrow.append(_adjustments_table(data.adjustments_made))
    in_force: Block = (
        _adjustments_table(data.adjustments_in_force)
        if data.adjustments_in_force
        else Paragraph(text="None: today's plan used the configured settings.")
    )
    return [
        Section(title="Adjustments in force today", blocks=(in_force,)),
        Section(title="Tomorrow's adjustments", blocks=tuple(tomorrow)),
    ]


def _trades_sections(data: DailyReportInput) -> list[Section]:
    best, worst = best_and_worst_trades(data)
    if best is None or worst is None:
        return [Section(title="Best and worst trade", blocks=(Paragraph(text="No trade today."),))]
    sections = [Section(title="Best and worst trade", blocks=())]
    if best is worst:
        sections.append(
            Section(
                title="The only trade (best and worst)",
                blocks=_trade_blocks(best, data),
                level=3,
            )
        )
        return sections
    sections.append(Section(title="Best trade", blocks=_trade_blocks(best, data), level=3))
    sections.append(Section(title="Worst trade", blocks=_trade_blocks(worst, data), level=3))
    return sections


def _lessons_section(lessons: Sequence[Lesson]) -> Section:
    if not lessons:
        return Section(title="Lessons", blocks=(Paragraph(text="No detector fired today."),))
    rows = tuple((lesson.kind, lesson.account, lesson.detail) for lesson in lessons)
    return Section(
        title="Lessons", blocks=(Table(headers=("lesson", "account", "detail"), rows=rows),)
    )


def _execution_section(data: DailyReportInput) -> Section:
    rows = []
    for account in data.accounts:
        if account.trades_today == 0:
            verdict = "no trade"
        elif account.twap_slippage_bps < 0:
            verdict = "better than TWAP"
        elif account.twap_slippage_bps > 0:
            verdict = "worse than TWAP"
        else:
            verdict = "same as TWAP"
        rows.append(
            (
                account.name,
                str(account.trades_today),
                f"{account.slippage_bps:+.1f}",
                f"{account.twap_slippage_bps:+.1f}",
                verdict,
            )
        )
    headers = ("account", "trades", "shortfall vs arrival (bps)", "vs TWAP (bps)", "against TWAP")
    blocks: list[Paragraph | Table] = []
    if data.execution_bars == "daily":
        blocks.append(Paragraph(text=DAILY_ONLY_NOTE))
    elif data.execution_bars:
        blocks.append(
            Paragraph(
                text=f"Every order executed through the day's own {data.execution_bars} bars.",
                note=True,
            )
        )
    blocks.append(Table(headers=headers, rows=tuple(rows), numeric=frozenset({1, 2, 3})))
    blocks.append(Paragraph(text="Basis points of traded value; positive = a cost.", note=True))
    return Section(title="Execution shortfall against TWAP", blocks=tuple(blocks))


DAILY_ONLY_NOTE = (
    "Daily bars only: every order filled at the day's single bar, so the intraday protections "
    "(circuit breaker, daily-loss stop) could act only at that bar's close, after every order "
    "had filled, and slicing an order could not change its price. Give intraday bars "
    "(1 minute to 1 hour) for the day to execute bar by bar."
)


def _money(value: float) -> str:
    return f"{value:+,.2f}"


def _genomes_section(data: DailyReportInput) -> Section:
    title = "Genomes: paper vs shadow backtest"
    if not data.genomes:
        return Section(title=title, blocks=(Paragraph(text="No genome traded today."),))
    headers = (
        "account", "genome", "source", "sleeve", "P&L", "expected P&L", "execution",
        "governor cuts", "debate", "residual",
    )  # fmt: skip
    rows = tuple(
        (
            row.account, row.genome_id, row.source, _percent(row.sleeve), _money(row.pnl),
            _money(row.expected_pnl), _money(row.execution_cost), _money(row.governor_cuts),
            _money(row.debate_scaling), _money(row.residual),
        )
        for row in data.genomes
    )  # fmt: skip
    return Section(
        title=title,
        blocks=(
            Table(headers=headers, rows=rows, numeric=frozenset(range(3, 10))),
            Paragraph(
                text=(
                    "P&L is the genome's attributed paper P&L of the day; expected P&L its "
                    "sleeve of the account times the day's return of its backtest over the "
                    "same daily bars. P&L - expected P&L = execution (fills against the open, "
                    "fees) + governor cuts + debate (synthesis) + residual."
                ),
                note=True,
            ),
        ),
    )


def _genomes_frame(data: DailyReportInput) -> pd.DataFrame:
    rows = [{name: getattr(row, name) for name in GENOME_COLUMNS} for row in data.genomes]
    frame = pd.DataFrame(rows, columns=list(GENOME_COLUMNS))
    for name in ("order_reject_count", "risk_block_count"):
        frame[name] = frame[name].astype(np.int64)
    for name in GENOME_COLUMNS[3:]:
        if name not in ("order_reject_count", "risk_block_count"):
            frame[name] = frame[name].astype(np.float64)
    return frame


def _market_section(data: DailyReportInput) -> Section:
    label = regime_label(data.regime)
    inputs = tuple(
        (str(key), _number(value))
        for key, value in data.regime.items()
        if key not in ("label", "regime")
    )
    change = data.volatility_change
    change_text = "unknown" if change is None else _percent(change, signed=True)
    blocks: list[Block] = [
        Paragraph(text=f"Regime: {label}. Change in market volatility: {change_text}.")
    ]
    if inputs:
        blocks.append(Table(headers=("regime input", "value"), rows=inputs, numeric=frozenset({1})))
    return Section(title="Market", blocks=tuple(blocks))


def _risk_section(data: DailyReportInput) -> Section:
    if not data.risk_events:
        return Section(title="Risk events", blocks=(Paragraph(text="No risk event today."),))
    keys: list[str] = []
    for event in data.risk_events:
        keys.extend(str(key) for key in event if str(key) not in keys)
    rows = tuple(tuple(_number(event.get(key)) for key in keys) for event in data.risk_events)
    blocks: list[Block] = []
    paused = [
        e for e in data.risk_events if e.get("rule") == "kill_switch" and not e.get("order_id")
    ]
    if paused:
        accounts = ", ".join(sorted({str(e.get("account")) for e in paused}))
        blocks.append(
            Paragraph(
                text=f"The lab was paused by the kill switch ({accounts}): {_pause_text(paused[0])}"
            )
        )
    blocks.append(Table(headers=tuple(keys), rows=rows))
    return Section(title="Risk events", blocks=tuple(blocks))


def _pause_text(event: Mapping[str, Any]) -> str:
    # The account's event reads "<kind>: kill switch: '<reason>' (paused since T by WHO); <the
    # account's figures>": the lab-wide part is the line's.
    reason = str(event.get("reason") or "")
    start = reason.find("(paused since ")
    end = reason.find(")", start) if start >= 0 else -1
    return reason[: end + 1] if end >= 0 else reason


def _shown_symbols(data: DailyReportInput) -> list[str]:
    largest: dict[str, float] = {}
    for account in data.accounts:
        for symbol, weight in account.positions.items():
            if weight != 0.0:
                largest[symbol] = max(largest.get(symbol, 0.0), abs(weight))
    ranked = sorted(largest, key=lambda symbol: (-largest[symbol], symbol))
    return ranked[:_MAX_POSITIONS_SHOWN]


def _positions_section(data: DailyReportInput, symbols: list[str]) -> Section:
    if not symbols:
        return Section(title="Positions at the close", blocks=(Paragraph(text="All in cash."),))
    headers = ("symbol", *(account.name for account in data.accounts))
    rows = tuple(
        (
            symbol,
            *(_percent(account.positions.get(symbol, 0.0)) for account in data.accounts),
        )
        for symbol in symbols
    )
    numeric = frozenset(range(1, len(headers)))
    blocks: list[Block] = [Table(headers=headers, rows=rows, numeric=numeric)]
    total = len(
        {
            symbol
            for account in data.accounts
            for symbol, weight in account.positions.items()
            if weight != 0.0
        }
    )
    if total > len(symbols):
        blocks.append(
            Paragraph(text=f"The {len(symbols)} largest of {total} positions.", note=True)
        )
    return Section(title="Positions at the close (weight of equity)", blocks=tuple(blocks))


# --------------------------------------------------------------------------- charts
def _plot_index(history: pd.Series) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(pd.to_datetime(history.index))
    return index.tz_localize(None) if index.tz is not None else index


def _marker(history: pd.Series) -> str | None:
    # Short histories are a few points: markers keep a one-day curve visible.
    return "o" if len(history) <= 30 else None


def _color(position: int) -> str:
    return _ACCOUNT_COLORS[position % len(_ACCOUNT_COLORS)]


def _equity_chart(data: DailyReportInput) -> str:
    figure = new_figure()
    axes = figure.add_subplot()
    for position, account in enumerate(data.accounts):
        history = account.equity_history.astype(np.float64)
        axes.plot(
            _plot_index(history),
            100.0 * history.to_numpy() / float(history.iloc[0]),
            label=account.name,
            color=_color(position),
            marker=_marker(history),
            markersize=3,
            linewidth=1.6,
        )
    bench = data.benchmark_history.astype(np.float64)
    if len(bench) and float(bench.iloc[0]) != 0.0:
        axes.plot(
            _plot_index(bench),
            100.0 * bench.to_numpy() / float(bench.iloc[0]),
            label="benchmark",
            color=_BENCHMARK_COLOR,
            linestyle="--",
            marker=_marker(bench),
            markersize=3,
            linewidth=1.4,
        )
    axes.set_title("Equity against the benchmark (rebased to 100)")
    axes.set_ylabel("value (start = 100)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    figure.autofmt_xdate()
    return figure_to_data_uri(figure)


def _drawdown_chart(data: DailyReportInput) -> str:
    figure = new_figure(height=3.2)
    axes = figure.add_subplot()
    for position, account in enumerate(data.accounts):
        curve = _drawdown_curve(account.equity_history)
        axes.plot(
            _plot_index(curve),
            100.0 * curve.to_numpy(),
            label=account.name,
            color=_color(position),
            marker=_marker(curve),
            markersize=3,
            linewidth=1.4,
        )
    if len(data.benchmark_history):
        curve = _drawdown_curve(data.benchmark_history)
        axes.plot(
            _plot_index(curve),
            100.0 * curve.to_numpy(),
            label="benchmark",
            color=_BENCHMARK_COLOR,
            linestyle="--",
            linewidth=1.2,
        )
    axes.set_title("Drawdown from the running peak")
    axes.set_ylabel("drawdown (%)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=9)
    figure.autofmt_xdate()
    return figure_to_data_uri(figure)


def _positions_chart(data: DailyReportInput, symbols: list[str]) -> str:
    count = len(data.accounts)
    figure = new_figure(height=max(2.5, 0.25 * len(symbols) * max(count, 1) ** 0.5 + 1.2))
    axes = figure.add_subplot()
    band = 0.8 / max(count, 1)
    rows = np.arange(len(symbols), dtype=np.float64)
    for position, account in enumerate(data.accounts):
        weights = [100.0 * account.positions.get(symbol, 0.0) for symbol in symbols]
        axes.barh(
            rows + (position - (count - 1) / 2.0) * band,
            weights,
            height=band,
            label=account.name,
            color=_color(position),
        )
    axes.set_yticks(rows, symbols)
    axes.invert_yaxis()
    axes.axvline(0.0, color="#555555", linewidth=0.8)
    axes.set_xlabel("weight of equity (%)")
    axes.set_title("Positions at the close")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    return figure_to_data_uri(figure)


def _chart_section(data: DailyReportInput, symbols: list[str]) -> Section:
    blocks: list[Block] = [
        Image(data_uri=_equity_chart(data), caption="Equity curves against the benchmark"),
        Image(data_uri=_drawdown_chart(data), caption="Drawdowns"),
    ]
    if symbols:
        blocks.append(Image(data_uri=_positions_chart(data, symbols), caption="Positions"))
    return Section(title="Charts", blocks=tuple(blocks))


def build_sections(
    data: DailyReportInput,
    lessons: Sequence[Lesson],
    advice: Sequence[str],
    *,
    charts: bool = True,
) -> list[Section]:
    """Return the report's sections (rendered by :mod:`reports.html` to Markdown and HTML).

    ``charts=False`` leaves the (HTML-only) chart section out, for the Markdown summary.
    """
    symbols = _shown_symbols(data)
    sections = [_accounts_section(data)]
    if charts:
        sections.append(_chart_section(data, symbols))
    sections.append(_market_section(data))
    sections.extend(_trades_sections(data))
    sections.append(_lessons_section(lessons))
    sections.extend(_adjustment_sections(data, advice))
    sections.append(_execution_section(data))
    sections.append(_genomes_section(data))
    sections.append(_positions_section(data, symbols))
    sections.append(_risk_section(data))
    return sections


# --------------------------------------------------------------------------- files
def _json_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _storable(column: pd.Series) -> pd.Series:
    # Nested values (a decision chain) are always JSON text: pyarrow would store dicts as
    # structs that gain the union of every row's keys, which changes what a reader gets back.
    if any(isinstance(value, Mapping | list | tuple) for value in column):
        return column.map(_json_text)
    try:
        pa.array(column, from_pandas=True)
        return column
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        # Mixed scalar types (e.g. str and int in one column): keep them readable as JSON text.
        return column.map(_json_text)


def _money_columns(
    table: str, names: Sequence[str], currency: str, money_digits: int
) -> tuple[dict[str, str], dict[str, str]]:
    """Return ``(bare name -> stored name, stored name -> unit)`` of the money columns."""
    code = currency.upper()
    minor = f"{Decimal(1).scaleb(-money_digits)} {code}"
    renames: dict[str, str] = {}
    units: dict[str, str] = {}
    for name in names:
        kind = PARQUET_COLUMNS[table][name]
        if kind is None:
            continue
        stored = f"{name}_{code.lower()}" + ("_minor" if kind == MINOR_UNITS else "")
        renames[name] = stored
        units[stored] = minor if kind == MINOR_UNITS else code
    return renames, units


def _parquet_bytes(table: str, frame: pd.DataFrame, currency: str, money_digits: int) -> bytes:
    ready = frame.copy()
    ready.columns = [str(column) for column in ready.columns]
    _require_classified(table, ready, f"{table}.parquet")
    for column in ready.columns:
        if ready[column].dtype == object:
            ready[column] = _storable(ready[column])
    renames, units = _money_columns(table, _stored_names(ready), currency, money_digits)
    ready = ready.rename(columns=renames)
    ready.index = ready.index.set_names(
        [None if name is None else renames.get(str(name), name) for name in ready.index.names]
    )
    with warnings.catch_warnings():
        # pyarrow < 26 reads a tz-aware column through Series.values, which pandas 3 deprecates;
        # pandas' own to_parquet silences the same warning (pandas GH#68426, arrow#51302).
        warnings.filterwarnings(
            "ignore", r"(Series|DatetimeIndex)\.values returning an ndarray that drops timezone"
        )
        arrow = pa.Table.from_pandas(ready)
    metadata = dict(arrow.schema.metadata or {})
    metadata[UNITS_METADATA_KEY.encode()] = json.dumps(units, sort_keys=True).encode()
    buffer = io.BytesIO()
    pq.write_table(arrow.replace_schema_metadata(metadata), buffer)
    return buffer.getvalue()


def write_parquet_table(
    path: Path, table: str, frame: pd.DataFrame, *, currency: str, money_digits: int = 2
) -> None:
    """Write ``frame`` atomically as the Parquet file ``table`` of a day's folder.

    Each money column is stored under its name with its unit (``cash`` ->
    ``cash_cny_minor``, ``price`` -> ``price_cny``; the rule in the module docstring), and the
    schema metadata key :data:`UNITS_METADATA_KEY` holds ``{stored name: unit}``.

    Parameters
    ----------
    path:
        The file to write (``runs/<date>/<table>.parquet``).
    table:
        One of :data:`PARQUET_COLUMNS`: which columns are money, and of which kind.
    frame:
        The rows, in the in-memory (bare) column names.
    currency:
        The account currency (``"CNY"``, ``"USD"``).
    money_digits:
        Decimal places of one minor unit (the ledger's integer money).

    Raises
    ------
    ReportInputError
        If ``table`` is unknown, a column of ``frame`` is not in ``PARQUET_COLUMNS[table]``, or
        the currency or the digits are malformed.
    """
    _require(
        table in PARQUET_COLUMNS,
        f"write_parquet_table: unknown table {table!r} (tables: {', '.join(PARQUET_COLUMNS)})",
    )
    _require_units(currency, money_digits, f"{table}.parquet")
    atomic_write_bytes(Path(path), _parquet_bytes(table, frame, currency, money_digits))


def write_daily_report(
    run_dir: Path, data: DailyReportInput, *, config: LessonConfig | None = None
) -> DailyReportPaths:
    """Write the day's report and artifacts under ``run_dir``; return their paths.

    Every file is written atomically, the Parquet files first and ``report.html`` last, so a
    crash leaves the previous version of a file or the new one, never a torn file; writing
    the same day again replaces the files.

    Parameters
    ----------
    run_dir:
        The day's folder, usually :func:`run_dir_for` ``(home, day)``; created if missing.
    data:
        The day's figures.
    config:
        Lesson thresholds; the defaults of :class:`reports.lessons.LessonConfig` when ``None``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = DailyReportPaths(
        run_dir=run_dir,
        summary_md=run_dir / "summary.md",
        report_html=run_dir / "report.html",
        orders=run_dir / "orders.parquet",
        fills=run_dir / "fills.parquet",
        equity=run_dir / "equity.parquet",
        decisions=run_dir / "decisions.parquet",
        genomes=run_dir / "genomes.parquet",
    )
    currency, digits = data.currency, data.money_digits
    for name in PARQUET_TABLES:
        frame = getattr(data, name)
        write_parquet_table(
            getattr(paths, name), name, frame, currency=currency, money_digits=digits
        )
    write_parquet_table(
        paths.genomes, "genomes", _genomes_frame(data), currency=currency, money_digits=digits
    )
    lessons = detect_lessons(data, config)
    advice = adjustments(data, lessons, config)
    title = report_title(data)
    atomic_write_text(
        paths.summary_md,
        render_markdown(title, build_sections(data, lessons, advice, charts=False)),
    )
    atomic_write_text(paths.report_html, render_html(title, build_sections(data, lessons, advice)))
    return paths
