"""The daily report's input: plain, validated values, and the units of its Parquet columns.

:class:`DailyReportInput` (one per trading day: per account an :class:`AccountDay`, its
trades as :class:`TradeRecord`, the genome days as :class:`GenomeRow`, the day's ledger rows
as frames) is what :mod:`reports.arena_day` assembles from the stores and what
:mod:`reports.daily` renders and :mod:`reports.lessons` reads; every value is checked on
construction (:class:`ReportInputError`). :data:`PARQUET_COLUMNS` classifies every column
of the Parquet files by unit (money in minor or currency units, prices, other), so a money
column always says its unit in its name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import AlphaLoopError

# ``DailyReportInput.date`` shadows the type inside the class body; annotations there use this.
CalendarDate = date


PARQUET_TABLES: tuple[str, ...] = ("orders", "fills", "equity", "decisions")


# The columns of ``genomes.parquet``: every GenomeRow field, in order.
GENOME_COLUMNS: tuple[str, ...] = (
    "account", "genome_id", "source", "sleeve", "allocation", "pnl", "expected_pnl",
    "paper_return", "expected_return", "execution_cost", "governor_cuts", "debate_scaling",
    "residual", "avg_slippage_bps", "fill_ratio", "order_reject_count", "risk_block_count",
    "turnover",
)  # fmt: skip


# The kinds of money column in a Parquet file (see PARQUET_COLUMNS).
MINOR_UNITS = "minor"


CURRENCY_UNITS = "currency"


PRICE = "price"


def _classify(
    plain: str, *, minor: str = "", currency: str = "", price: str = ""
) -> Mapping[str, str | None]:
    kinds: dict[str, str | None] = dict.fromkeys(plain.split())
    for kind, names in ((MINOR_UNITS, minor), (CURRENCY_UNITS, currency), (PRICE, price)):
        kinds.update(dict.fromkeys(names.split(), kind))
    return MappingProxyType(kinds)


# Every column of every Parquet file under ``runs/<date>/``, by file, with its money kind
# (None: not money: ids, text, times, quantities, counts, fractions, basis points). Money
# columns are stored as ``<name>_<currency>`` (CURRENCY_UNITS, PRICE) or
# ``<name>_<currency>_minor`` (MINOR_UNITS), currency in lower case; the others keep their
# names. A column missing here is refused (ReportInputError), so a new column is classified
# before it is written; tests/arena/test_daily_report_wiring.py checks the ledger's columns.
PARQUET_COLUMNS: Mapping[str, Mapping[str, str | None]] = MappingProxyType(
    {
        "orders": _classify(
            "account order_id seq day symbol side quantity filled status reason decision_id "
            "genomes",
            minor="filled_notional commission taxes",
        ),
        "fills": _classify(
            "fill_id account seq order_id day at symbol side quantity remaining genomes",
            minor="notional commission taxes",
            price="price",
        ),
        "equity": _classify(
            "account day",
            minor="cash market_value equity realised_pnl commission_paid taxes_paid",
        ),
        "decisions": _classify("account day decision_id payload"),
        "positions": _classify(
            "account day symbol quantity sellable genomes",
            minor="cost_basis value",
            price="price",
        ),
        "risk_events": _classify("account day seq at order_id rule reason value limit_value"),
        "genomes": _classify(
            "account genome_id source sleeve paper_return expected_return avg_slippage_bps "
            "fill_ratio order_reject_count risk_block_count turnover",
            currency="allocation pnl expected_pnl execution_cost governor_cuts debate_scaling "
            "residual",
        ),
    }
)


class ReportInputError(AlphaLoopError, ValueError):
    """The input of a report is malformed (names the field and the account or trade)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ReportInputError(message)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRecord:
    """One trade of the day with the decision chain that led to it."""

    account: str
    symbol: str
    side: str
    quantity: float
    entry_time: datetime
    exit_time: datetime | None
    entry_price: float
    exit_price: float | None
    pnl: float
    genome_id: str
    decision: dict[str, Any]

    def __post_init__(self) -> None:
        where = f"TradeRecord({self.account!r}, {self.symbol!r})"
        _require(self.side in ("buy", "sell"), f"{where}: side {self.side!r} not buy/sell")
        _require(_finite(self.quantity) and self.quantity > 0, f"{where}: quantity must be > 0")
        _require(
            _finite(self.entry_price) and self.entry_price > 0,
            f"{where}: entry_price must be a positive number",
        )
        _require(
            (self.exit_time is None) == (self.exit_price is None),
            f"{where}: exit_time and exit_price must be both set or both None",
        )
        if self.exit_price is not None:
            _require(
                _finite(self.exit_price) and self.exit_price > 0,
                f"{where}: exit_price must be a positive number",
            )
        _require(_finite(self.pnl), f"{where}: pnl must be finite (got {self.pnl!r})")
        _require(isinstance(self.decision, Mapping), f"{where}: decision must be a dict")

    @property
    def closed(self) -> bool:
        """Whether the trade has an exit (otherwise its PnL is marked to market)."""
        return self.exit_time is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountDay:
    """One paper account's figures at the close of the day (see the module docstring)."""

    name: str
    equity_history: pd.Series
    day_return: float
    trades_today: int
    win_rate: float | None
    """Share of the closed trades to date that made money; ``None`` when no trade closed
    (the report then shows no win rate)."""
    max_drawdown: float
    sharpe: float
    score: float
    positions: dict[str, float]
    typical_trades: float
    slippage_bps: float
    twap_slippage_bps: float
    trades: tuple[TradeRecord, ...] = ()

    def __post_init__(self) -> None:
        where = f"AccountDay {self.name!r}"
        _require(bool(self.name), "AccountDay.name must not be empty")
        _require(
            isinstance(self.equity_history, pd.Series) and len(self.equity_history) > 0,
            f"{where}: equity_history must be a non-empty pandas Series",
        )
        _require(
            bool(np.isfinite(self.equity_history.to_numpy(dtype=np.float64)).all()),
            f"{where}: equity_history has non-finite values",
        )
        for name in ("day_return", "sharpe", "typical_trades", "slippage_bps"):
            value = getattr(self, name)
            _require(_finite(value), f"{where}: {name} must be finite (got {value!r})")
        _require(
            _finite(self.twap_slippage_bps),
            f"{where}: twap_slippage_bps must be finite (got {self.twap_slippage_bps!r})",
        )
        _require(self.trades_today >= 0, f"{where}: trades_today must be >= 0")
        _require(self.typical_trades >= 0, f"{where}: typical_trades must be >= 0")
        _require(
            self.win_rate is None or (_finite(self.win_rate) and 0.0 <= self.win_rate <= 1.0),
            f"{where}: win_rate must be in [0, 1] (got {self.win_rate!r})",
        )
        _require(
            _finite(self.max_drawdown) and 0.0 <= self.max_drawdown <= 1.0,
            f"{where}: max_drawdown must be in [0, 1] (got {self.max_drawdown!r})",
        )
        _require(
            _finite(self.score) and 0.0 <= self.score <= 100.0,
            f"{where}: score must be in [0, 100] (got {self.score!r})",
        )
        for symbol, weight in self.positions.items():
            _require(_finite(weight), f"{where}: position {symbol!r} weight is not finite")
        for trade in self.trades:
            _require(
                trade.account == self.name,
                f"{where}: trade in {trade.symbol!r} belongs to account {trade.account!r}",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeRow:
    """One genome's day in one account: paper P&L against its shadow backtest.

    Plain values of the arena's review (``arena.review``, where each figure is defined):
    money in the account currency, ``sleeve`` the share of the account's equity the genome
    traded with, ``allocation`` that share in money; ``pnl - expected_pnl`` is
    ``execution_cost + governor_cuts + debate_scaling + residual``.
    """

    account: str
    genome_id: str
    source: str
    sleeve: float
    allocation: float
    pnl: float
    expected_pnl: float
    paper_return: float
    expected_return: float
    execution_cost: float
    governor_cuts: float
    debate_scaling: float
    residual: float
    avg_slippage_bps: float = 0.0
    fill_ratio: float = 1.0
    order_reject_count: int = 0
    risk_block_count: int = 0
    turnover: float = 0.0

    def __post_init__(self) -> None:
        where = f"GenomeRow({self.account!r}, {self.genome_id!r})"
        _require(bool(self.account) and bool(self.genome_id), f"{where}: names must be set")
        for name in GENOME_COLUMNS[3:]:
            value = getattr(self, name)
            _require(_finite(value), f"{where}: {name} must be finite (got {value!r})")
        _require(self.sleeve > 0, f"{where}: sleeve must be > 0 (got {self.sleeve!r})")


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyReportInput:
    """Everything the daily report shows (see the module docstring)."""

    date: date
    accounts: tuple[AccountDay, ...]
    benchmark_history: pd.Series
    benchmark_return: float
    regime: dict[str, Any]
    risk_events: tuple[dict[str, Any], ...]
    orders: pd.DataFrame
    fills: pd.DataFrame
    decisions: pd.DataFrame
    equity: pd.DataFrame
    volatility_change: float | None
    periods_per_year: float
    """Bars a year of the benchmark's history (``simulators.metrics.periods_per_year`` of the
    market: 365 on crypto), for its Sharpe ratio; no default, so no market gets another's."""
    genomes: tuple[GenomeRow, ...] = ()
    execution_bars: str = ""
    """How the day executed: its intraday bar size (``"1min"``, ``"5min"``...) when every
    order ran through the day's own bars, ``"daily"`` when the data has daily bars only (each
    order filled at the day's single bar; the intraday protections could act only at its
    close), ``""`` when not known (reports written before this field)."""
    currency: str = "USD"
    """The account currency (``arena.money.MoneyUnits.currency``): the unit the Parquet files'
    money columns are named with. ``"USD"``, the currency of ``market=none``, by default."""
    adjustments_in_force: tuple[Mapping[str, Any], ...] = ()
    """The adjustments the day's plan applied (:meth:`arena.adjustments.Adjustment.to_dict`)."""
    adjustments_made: tuple[Mapping[str, Any], ...] = ()
    """The adjustments the day's review stored for the next days (same dicts)."""
    money_digits: int = 2
    """Decimal places of one minor unit of the currency: the ledger's rows in ``orders``,
    ``fills`` and ``equity`` hold money as integer minor units (``MoneyUnits.money_digits``)."""

    def __post_init__(self) -> None:
        _require(isinstance(self.date, date), "DailyReportInput.date must be a datetime.date")
        keys = [(row.account, row.genome_id) for row in self.genomes]
        _require(len(set(keys)) == len(keys), f"DailyReportInput: duplicate genome rows {keys}")
        names = [account.name for account in self.accounts]
        _require(len(set(names)) == len(names), f"DailyReportInput: duplicate accounts {names}")
        _require(
            isinstance(self.benchmark_history, pd.Series),
            "DailyReportInput.benchmark_history must be a pandas Series",
        )
        _require(
            _finite(self.benchmark_return),
            f"DailyReportInput.benchmark_return must be finite (got {self.benchmark_return!r})",
        )
        for name in PARQUET_TABLES:
            _require(
                isinstance(getattr(self, name), pd.DataFrame),
                f"DailyReportInput.{name} must be a pandas DataFrame",
            )
            _require_classified(name, getattr(self, name), f"DailyReportInput.{name}")
        _require_units(self.currency, self.money_digits, "DailyReportInput")
        _require(self.periods_per_year > 0, "DailyReportInput.periods_per_year must be positive")

    @property
    def day(self) -> CalendarDate:
        """The trading day as a plain ``date`` (a ``datetime`` is cut to its date)."""
        return self.date.date() if isinstance(self.date, datetime) else self.date


def _stored_names(frame: pd.DataFrame) -> list[str]:
    # A named index is written as a column too.
    return [str(c) for c in frame.columns] + [str(n) for n in frame.index.names if n is not None]


def _require_classified(table: str, frame: pd.DataFrame, where: str) -> None:
    known = PARQUET_COLUMNS[table]
    unknown = [name for name in _stored_names(frame) if name not in known]
    _require(
        not unknown,
        f"{where}: column(s) {unknown} of {table}.parquet have no unit in "
        "reports.daily_input.PARQUET_COLUMNS; classify each as money (minor units, currency units, "
        "price) or not money there",
    )


def _require_units(currency: str, money_digits: int, where: str) -> None:
    _require(
        isinstance(currency, str) and currency.isascii() and currency.isalnum(),
        f"{where}: currency must be a non-empty code such as 'CNY' (got {currency!r})",
    )
    _require(
        isinstance(money_digits, int)
        and not isinstance(money_digits, bool)
        and 0 <= money_digits <= 12,
        f"{where}: money_digits must be an integer in [0, 12] (got {money_digits!r})",
    )
