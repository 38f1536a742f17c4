"""The arena's daily report, assembled from the stores: the inputs of :mod:`reports.daily`.

:func:`build_report_input` reads day ``D`` from the ledger's read methods
(:class:`arena.ledger.Ledger`: orders, fills, equity, risk events, decisions, genome days)
and the day's :class:`arena.market.DayMarket`, and returns the
:class:`reports.daily_input.DailyReportInput`: per account the day's figures
(:func:`account_metrics`, :func:`account_score`), its trades with their genomes, the
governor's cuts, the execution figures (shortfall against the arrival price, and against the
TWAP counterfactual of :func:`arena.intraday.twap_counterfactual`), the benchmark and
the market's volatility change. :func:`write_day_outputs` writes ``runs/<date>/``: the
report and the day's ledger rows as Parquet. A re-run of a committed day rewrites the same
files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import ConfigError
from alphaloop.files import atomic_write_text
from alphaloop.home import LabHome
from arena.intraday import (
    LIQUIDATION_SUFFIX,
    FixedProtections,
    shortfall_bps,
    twap_counterfactual,
)
from arena.ledger import (
    Ledger,
    OrderRecord,
)
from arena.market import (
    ArenaData,
    DayMarket,
    day_index,
    trading_days,
)
from arena.money import (
    MoneyUnits,
)
from arena.personas import PERSONA_NAMES
from simulators.bars import Panel
from simulators.metrics import annualised_sharpe, periods_per_year


def account_metrics(
    equity: Sequence[float],
    initial: float,
    wins: int,
    losses: int,
    trades: int,
    *,
    periods_per_year: float,
) -> dict[str, float | int | None]:
    """Return the report figures of an account from its close equities (oldest first).

    ``return`` is the last day's, ``max_drawdown`` over the whole history (from the initial
    capital), ``sharpe`` the annualised mean / std of daily returns
    (:func:`simulators.metrics.annualised_sharpe` over the market's ``periods_per_year``
    trading days: 365 on crypto; 0 with fewer than two),
    ``win_rate`` the share of the day's closing sells that made money (``None`` without any),
    and ``score`` the daily report's (:func:`account_score`: one formula for the
    ``--json`` summary and the report).
    """
    curve = np.asarray([initial, *equity], dtype=float)
    returns = curve[1:] / curve[:-1] - 1.0 if curve.size > 1 else np.array([])
    last = float(returns[-1]) if returns.size else 0.0
    peak = np.maximum.accumulate(curve)
    drawdown = float(np.max(1.0 - curve / peak)) if curve.size else 0.0
    sharpe = annualised_sharpe(returns, periods_per_year)
    closed = wins + losses
    win_rate = wins / closed if closed else None
    figures: dict[str, float | int | None] = {
        "equity": float(curve[-1]),
        "return": last,
        "trades": int(trades),
        "win_rate": win_rate,
        "max_drawdown": drawdown,
        "sharpe": sharpe,
    }
    figures["score"] = account_score(figures)
    return figures


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
    report_input: Any = None,
) -> dict[str, str | None]:
    """Write ``runs/<date>/``: the daily report (:mod:`reports.daily`) and ``summary.json``.

    The report (``summary.md``, ``report.html``, the orders/fills/equity/decisions Parquet and
    ``genomes.parquet``, the day's genome days)
    is built from the ledger by :func:`build_report_input`, so a re-run of a committed day
    rewrites the same files. ``data`` and ``market`` are the arena's market and the day's
    execution bars (both needed for the benchmark and the execution shortfall); ``market``
    is rebuilt from ``data`` when it has no minute bars but ``data`` has. ``report_input`` is
    the day's :class:`reports.daily_input.DailyReportInput` when the caller built it already
    (with the day's adjustments: :func:`arena.day.run_arena_day`).
    """
    from reports.daily import run_dir_for, write_daily_report, write_parquet_table

    folder = run_dir_for(home, day)
    folder.mkdir(parents=True, exist_ok=True)
    market = report_market(data, day, market)
    if report_input is None:
        report_input = build_report_input(home, data, market, summary)
    paths = write_daily_report(folder, report_input)
    # Beyond the report's four tables: the day's positions and risk events, money columns
    # named with their unit like the report's (reports.daily_input.PARQUET_COLUMNS).
    with Ledger(home.ledger_db) as ledger:
        for table in ("positions", "risk_events"):
            write_parquet_table(
                folder / f"{table}.parquet",
                table,
                _frame(ledger, table, day),
                currency=report_input.currency,
                money_digits=report_input.money_digits,
            )
    atomic_write_text(folder / "summary.json", json.dumps(summary, sort_keys=True, default=str))
    return {"markdown": str(paths.summary_md), "html": str(paths.report_html)}


def report_market(data: ArenaData, day: date, market: DayMarket | None) -> DayMarket:
    """Return the day's execution bars for its report: ``market``, rebuilt from ``data`` when
    it is missing or has no minute bars but ``data`` has."""
    if market is None or (not market.intraday and data.has_intraday):
        return data.day_market(day)
    return market


def _frame(ledger: Ledger, table: str, day: date) -> pd.DataFrame:
    """Return ``day``'s rows of a ledger table as stored (its columns on a day without rows)."""
    return pd.DataFrame(ledger.table_rows(table, day=day), columns=ledger.table_columns(table))


def _benchmark_history(daily: Panel, first: date, day: date) -> pd.Series:
    """Equal-weight index of the daily closes (base 100 the day before ``first``) up to ``day``.

    Each day's index return is the mean close-to-close return of the names quoted on both
    days, the same figure as :func:`arena.market.benchmark_return`.
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


def _fixed_protections(
    ledger: Ledger, account: str, day: date, orders: Sequence[OrderRecord]
) -> FixedProtections:
    """Return the protections that acted on ``account``'s ``day``, from its ledger records."""
    # A risk event's reason is "<kind>: <message>" (arena.trade); the freezes are kind freeze.
    freezes = [e for e in ledger.risk_events(account, day) if e.reason.startswith("freeze:")]
    breaker = next((e.at for e in freezes if e.rule != "daily_loss"), None)
    stop = next((e.at for e in freezes if e.rule == "daily_loss"), None)
    liquidations = tuple(
        (order.symbol, order.quantity)
        for order in orders
        if (order.decision_id or "").endswith(LIQUIDATION_SUFFIX)
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
    """Return the day's orders that filled as :class:`reports.daily_input.TradeRecord` objects.

    A buy is an open trade marked at the close of ``day``; a sell closes (part of) a holding:
    its entry price is the holding's average cost at the previous close (the ledger's cost
    basis, :meth:`Ledger.close_before`) and its entry time the last buy fill of the name
    before ``day``. PnL is net of the order's fees.
    """
    from reports.daily_input import TradeRecord

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
    """Build the :class:`reports.daily_input.DailyReportInput` of a committed day from the ledger.

    * equity history: each account's close equity of every committed day up to ``D``, the
      starting capital standing as the close of the trading day before the first one (the
      same curve :func:`reports.arena_day.account_metrics` scores);
    * benchmark: the equal-weight index of the data's daily closes over the same days;
    * ``slippage_bps``: the account's fill shortfall against the **arrival price = the open
      of the day's first execution bar** (first minute bar; the daily bar's open on
      daily-only data), so the overnight gap, which no schedule can change, is not counted;
    * ``twap_slippage_bps``: that shortfall minus the one the same parent orders would have
      had under TWAP (:func:`twap_counterfactual`); it is 0 when the policy is TWAP;
    * ``typical_trades``: mean fills per committed day over the last
      :data:`TYPICAL_TRADES_DAYS` days before ``D`` (0 without history);
    * ``genomes``: the day's genome days (:mod:`arena.review`) as plain
      :class:`reports.daily_input.GenomeRow` values, by (account, genome id);
    * ``currency``/``money_digits``: the accounts' book units (``MoneyUnits``, the same for
      the three), which name the Parquet money columns.
    """
    from reports.daily_input import GENOME_COLUMNS, AccountDay, DailyReportInput, GenomeRow

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
            slippage = shortfall_bps(fills, arrival, qdigits)
            twap = twap_counterfactual(
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
                    win_rate=None if win is None else float(win),
                    max_drawdown=float(figures["max_drawdown"]),
                    sharpe=float(figures["sharpe"]),
                    score=float(figures["score"]),
                    positions=positions,
                    typical_trades=typical,
                    slippage_bps=slippage,
                    twap_slippage_bps=slippage - shortfall_bps(twap, arrival, qdigits),
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
