"""The exact-money SQLite ledger: one transaction per committed day, rebuilt from its fills.

One file (the arena puts it at ``LabHome.ledger_db``) holds every account's books:

=========== ==========================================================================
accounts    name, book units, T+1 flag, initial cash
days        the committed (account, day) pairs: a day is in the ledger iff its row is;
            ``attributed`` says whether its P&L was attributed to genomes
orders      every order of the day in its final state, with its decision id and genomes
fills       every fill (``fill_id`` is the primary key: a duplicate raises), with genomes
positions   end-of-day snapshot of each holding with its mark price, value and genomes
equity      end-of-day cash, market value, equity, realised PnL, fees and taxes
decisions   the decision chains (JSON) the orders point to
risk        the risk governor's events of the day
attribution the day's P&L of each account per genome, minor units
genome_days the review stage's record of each genome trading in an account on a day
            (:class:`GenomeDay`, written by :meth:`Ledger.write_genome_days`)
=========== ==========================================================================

A day is written by :meth:`Ledger.commit_day` in one ``BEGIN IMMEDIATE ... COMMIT``: any
error rolls it back and leaves the file as it was. The books are never read back from the
snapshots: :meth:`Ledger.restore_state` replays the committed fills (crash-only recovery: the
same code path at start-up and after a crash) and refuses to start if the replay disagrees
with the last snapshot. :meth:`Ledger.verify` replays every day and reports each difference,
duplicate or gap. The money policy is in ``docs/ledger.md``.

**Schema versions.** ``meta.schema_version`` is the file's version. Opening a file walks the
migrations from its version up to :data:`SCHEMA_VERSION` in the same transaction that creates
the tables (a new file is created at version 1 and walks the same steps, so a new and a
migrated file have one schema); the version is written last. A file of a newer version than
this code refuses to open. Version 2 adds the ``genomes`` columns (JSON ``{genome_id:
share}``, ``'{}'`` on rows migrated from version 1 or without a genome), ``days.attributed``
(0 on migrated days) and the ``attribution`` table. Version 3 adds ``days.reviewed`` (1 once
the review stage wrote the day's genome days, 0 on migrated days) and the ``genome_days``
table. Version 4 adds the hash chain (``days.chain_hash``, ``days.review_hash``, computed for
the days already stored by the migration itself) and indexes on ``(account, day)``.

**Tamper evidence.** Each committed account-day stores a SHA-256 over every row its commit
wrote (its ``days`` row, orders, fills, positions, equity, decisions, risk events and
attribution; the account's registration too on its first day), serialised canonically and
chained to the hash of the account's previous committed day (:data:`CHAIN_GENESIS` before
the first), in the commit's own transaction: a day is committed with its hash or not at all.
The review's genome days get their own hash (``review_hash``) when the review writes them.
:meth:`Ledger.verify` recomputes every link; :meth:`Ledger.verify_before_trading` is the
start-up check of the trading commands (the chain in full, the other checks from the last day
it verified on). The scheme is in ``docs/ledger.md``.

**Attribution** (:func:`attribute_day`, the only implementation). For each symbol held at the
previous close, held at today's close or traded today, the day's P&L in minor units is::

    value at today's close - value at the previous close (0 if not held)
    - buy notional - buy commission - buy taxes + sell notional - sell commission - sell taxes

Cash changes only by fills, so these sum over the symbols to ``equity(D) - equity(D-1)``
exactly (checked: :class:`arena.book.InvariantViolation` otherwise). A symbol's P&L is
split among genomes by the shares of today's target for the symbol when a target names it,
otherwise by the shares stored with the previous close's position (it is being exited on
their behalf), otherwise it goes to :data:`UNATTRIBUTED`. The split is in integer minor
units by the largest-remainder method (:func:`split_minor`), so the parts sum exactly.
Orders, fills and closing positions of a symbol carry the same shares.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from alphaloop.errors import AlphaLoopError
from arena.book import (
    AccountState,
    InvariantViolation,
    Position,
    Valuation,
    apply_fill,
    open_account,
    start_day,
)
from arena.events import FillEvent, OrderFilled, OrderPartiallyFilled, RiskVeto
from arena.money import MoneyUnits, money_from_float, money_to_float, notional_minor
from arena.orders import (
    DuplicateFill,
    FillSequenceError,
    InvalidTransition,
    Order,
    OrderStatus,
    apply_fill_to_order,
    transition,
)

__all__ = [
    "CHAIN_GENESIS",
    "GENOME_DAY_GRID",
    "READABLE_TABLES",
    "SCHEMA_VERSION",
    "UNATTRIBUTED",
    "AccountRecord",
    "DayAlreadyCommitted",
    "DayAttribution",
    "DayClose",
    "DecisionRecord",
    "EquitySnapshot",
    "GenomeAttribution",
    "GenomeDay",
    "GenomeShares",
    "Ledger",
    "LedgerBroken",
    "LedgerCorrupted",
    "LedgerError",
    "OrderRecord",
    "PositionSnapshot",
    "RiskEventRecord",
    "SymbolPnl",
    "VerifyIssue",
    "VerifyReport",
    "attribute_day",
    "snapshots_from",
    "split_minor",
    "to_grid",
    "validate_shares",
]

SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    money_digits INTEGER NOT NULL,
    price_digits INTEGER NOT NULL,
    quantity_digits INTEGER NOT NULL,
    t_plus_one INTEGER NOT NULL,
    initial_cash INTEGER NOT NULL CHECK (initial_cash >= 0)
);
CREATE TABLE IF NOT EXISTS days (
    account TEXT NOT NULL REFERENCES accounts (account),
    day TEXT NOT NULL,
    committed_at TEXT NOT NULL,
    n_orders INTEGER NOT NULL,
    n_fills INTEGER NOT NULL,
    PRIMARY KEY (account, day)
);
CREATE TABLE IF NOT EXISTS orders (
    account TEXT NOT NULL REFERENCES accounts (account),
    order_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    day TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    filled INTEGER NOT NULL CHECK (filled >= 0),
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    filled_notional INTEGER NOT NULL,
    commission INTEGER NOT NULL,
    taxes INTEGER NOT NULL,
    decision_id TEXT,
    PRIMARY KEY (account, order_id),
    UNIQUE (account, seq)
);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (account),
    seq INTEGER NOT NULL,
    order_id TEXT NOT NULL,
    day TEXT NOT NULL,
    at TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    price TEXT NOT NULL,
    notional INTEGER NOT NULL,
    commission INTEGER NOT NULL,
    taxes INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    UNIQUE (account, seq),
    FOREIGN KEY (account, order_id) REFERENCES orders (account, order_id)
);
CREATE TABLE IF NOT EXISTS positions (
    account TEXT NOT NULL REFERENCES accounts (account),
    day TEXT NOT NULL,
    symbol TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    sellable INTEGER NOT NULL,
    cost_basis INTEGER NOT NULL,
    price TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (account, day, symbol)
);
CREATE TABLE IF NOT EXISTS equity (
    account TEXT NOT NULL REFERENCES accounts (account),
    day TEXT NOT NULL,
    cash INTEGER NOT NULL,
    market_value INTEGER NOT NULL,
    equity INTEGER NOT NULL,
    realised_pnl INTEGER NOT NULL,
    commission_paid INTEGER NOT NULL,
    taxes_paid INTEGER NOT NULL,
    PRIMARY KEY (account, day)
);
CREATE TABLE IF NOT EXISTS decisions (
    account TEXT NOT NULL REFERENCES accounts (account),
    day TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (account, decision_id)
);
CREATE TABLE IF NOT EXISTS risk_events (
    account TEXT NOT NULL REFERENCES accounts (account),
    day TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    order_id TEXT,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    value REAL,
    limit_value REAL,
    PRIMARY KEY (account, day, seq)
);
"""
# Version k of the file is version k - 1 plus _MIGRATIONS[k]. _SCHEMA above is version 1 and
# is never edited: new files are created at version 1 and migrated like old ones.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE orders ADD COLUMN genomes TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE fills ADD COLUMN genomes TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE positions ADD COLUMN genomes TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE days ADD COLUMN attributed INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE attribution (
            account TEXT NOT NULL REFERENCES accounts (account),
            day TEXT NOT NULL,
            genome_id TEXT NOT NULL,
            pnl INTEGER NOT NULL,
            PRIMARY KEY (account, day, genome_id)
        )""",
    ),
    3: (
        "ALTER TABLE days ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE genome_days (
            account TEXT NOT NULL REFERENCES accounts (account),
            day TEXT NOT NULL,
            genome_id TEXT NOT NULL,
            source TEXT NOT NULL,
            sleeve REAL NOT NULL,
            allocation REAL NOT NULL,
            pnl REAL NOT NULL,
            paper_return REAL NOT NULL,
            expected_return REAL NOT NULL,
            expected_pnl REAL NOT NULL,
            execution_cost REAL NOT NULL,
            governor_cuts REAL NOT NULL,
            debate_scaling REAL NOT NULL,
            residual REAL NOT NULL,
            avg_slippage_bps REAL NOT NULL,
            fill_ratio REAL NOT NULL,
            order_reject_count INTEGER NOT NULL,
            risk_block_count INTEGER NOT NULL,
            turnover REAL NOT NULL,
            PRIMARY KEY (account, day, genome_id)
        )""",
    ),
    4: (
        "ALTER TABLE days ADD COLUMN chain_hash TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE days ADD COLUMN review_hash TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX orders_by_day ON orders (account, day)",
        "CREATE INDEX fills_by_day ON fills (account, day)",
        "CREATE INDEX decisions_by_day ON decisions (account, day)",
    ),
}
# A migration that needs more than SQL runs its step after its statements, in the same
# transaction: version 4 hashes the days already stored. A later migration that adds a column
# to a chained table (or changes a stored value) changes the days' hashes, so its step must
# verify the old chain and hash the days again (``_chain_stored_days``).
_MIGRATION_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {
    4: lambda conn: _chain_stored_days(conn),
}
# Children first: the order rows of a day are deleted after the fills that point to them.
_DAY_TABLES = (
    "fills", "orders", "positions", "equity", "decisions", "risk_events", "attribution",
    "genome_days", "days",
)  # fmt: skip
# The tables a day's commit writes, hashed into the day's link of the chain; the ``days``
# columns that change after the commit (the review's mark and hash) or hold the hash are not.
_CHAINED_TABLES = (
    "days", "orders", "fills", "positions", "equity", "decisions", "risk_events", "attribution",
)  # fmt: skip
_UNCHAINED_DAY_COLUMNS = frozenset({"reviewed", "chain_hash", "review_hash"})
#: The previous hash of an account's first committed day (64 zeros: a fixed constant).
CHAIN_GENESIS = "0" * 64
# The first line of every hashed text: the serialisation's version.
_CHAIN_FORMAT = "alphaloop-ledger-chain/1"
_REVIEW_FORMAT = "alphaloop-ledger-review/1"
# meta key of the last day :meth:`Ledger.verify_before_trading` verified for an account.
_VERIFIED_KEY = "verified:"
# The columns of a genome day, in GenomeDay's field order (the table's after the key).
_GENOME_DAY_COLUMNS = (
    "account", "day", "genome_id", "source", "sleeve", "allocation", "pnl", "paper_return",
    "expected_return", "expected_pnl", "execution_cost", "governor_cuts", "debate_scaling",
    "residual", "avg_slippage_bps", "fill_ratio", "order_reject_count", "risk_block_count",
    "turnover",
)  # fmt: skip
# The tables :meth:`Ledger.table_rows` exports, each with the key its rows come in: a stable
# order that does not depend on which account committed first (e.g. Ray actors in parallel).
READABLE_TABLES: dict[str, tuple[str, ...]] = {
    "accounts": ("account",),
    "days": ("account", "day"),
    "orders": ("account", "seq"),
    "fills": ("account", "seq"),
    "positions": ("account", "day", "symbol"),
    "equity": ("account", "day"),
    "decisions": ("account", "day", "decision_id"),
    "risk_events": ("account", "day", "seq"),
    "attribution": ("account", "day", "genome_id"),
    "genome_days": ("account", "day", "genome_id"),
}
# Where a symbol's P&L goes when no target and no previous position names a genome.
UNATTRIBUTED = "unattributed"
# (genome_id, share) pairs: shares > 0 summing to 1, sorted by genome id.
GenomeShares = tuple[tuple[str, float], ...]
_SHARES_TOLERANCE = 1e-9


def apply_schema(
    conn: sqlite3.Connection,
    *,
    schema: str,
    migrations: Mapping[int, Sequence[str]],
    latest: int,
    refuse: Callable[[str], Exception],
    steps: Mapping[int, Callable[[sqlite3.Connection], None]] | None = None,
) -> None:
    """Create a store's tables if missing, then migrate it to schema version ``latest``.

    The one migration routine of the lab's SQLite stores (the ledger, the experience memory):
    ``schema`` (version 1, ``CREATE ... IF NOT EXISTS`` statements) runs first, a new file is
    marked version 1 in its ``meta`` table, then each ``migrations[v]`` (and ``steps[v]``, a
    Python step) for ``v`` above the file's version, the version written after each. A
    version this code does not know raises ``refuse(found)``. Run it inside the opening
    transaction: a crash mid-migration leaves the old version intact. ``conn`` must return
    rows by name (``sqlite3.Row``).
    """
    for statement in schema.split(";"):
        if statement.strip():
            conn.execute(statement)
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if found is None:
        # A new file: the statements above created version 1.
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        version = 1
    else:
        try:
            version = int(found["value"])
        except ValueError:
            version = -1
        if not 1 <= version <= latest:
            raise refuse(str(found["value"]))
    for target in range(version + 1, latest + 1):
        for statement in migrations[target]:
            conn.execute(statement)
        if steps is not None and target in steps:
            steps[target](conn)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(target),))


class LedgerError(AlphaLoopError, RuntimeError):
    """The ledger was asked for something inconsistent (unknown account, day out of order).

    An :class:`~alphaloop.errors.AlphaLoopError`, so a command that meets one prints its
    one-line message and exits 2 instead of a traceback (a home whose accounts started with
    another capital than the config's, a corrupted ledger)."""


class DayAlreadyCommitted(LedgerError):
    """The (account, day) is already committed; use :meth:`Ledger.replace_day` to force."""


class LedgerCorrupted(LedgerError):
    """Replaying the fills does not give the committed snapshots."""


class LedgerBroken(LedgerCorrupted, AlphaLoopError):
    """The ledger fails verification, so a trading command refuses to start.

    An :class:`~alphaloop.errors.AlphaLoopError`: the CLI prints its one-line message (the
    first broken day and how to inspect it) and exits with status 2. ``report`` is the
    :class:`VerifyReport` that failed.
    """

    def __init__(self, message: str, report: VerifyReport) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSnapshot:
    """A holding at the end of a day, with its mark (``value = quantity * price``, rounded)."""

    symbol: str
    quantity: int
    sellable: int
    cost_basis: int
    price: Decimal
    value: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EquitySnapshot:
    """The account at the end of a day, minor units (``equity = cash + market_value``)."""

    cash: int
    market_value: int
    equity: int
    realised_pnl: int
    commission_paid: int
    taxes_paid: int

    def __post_init__(self) -> None:
        if self.equity != self.cash + self.market_value:
            raise ValueError(
                f"EquitySnapshot: equity {self.equity} != cash {self.cash} + market value "
                f"{self.market_value}"
            )


def snapshots_from(
    state: AccountState, valuation: Valuation
) -> tuple[tuple[PositionSnapshot, ...], EquitySnapshot]:
    """Return the end-of-day position snapshots and equity snapshot of ``state``.

    Parameters
    ----------
    state:
        The books at the close.
    valuation:
        ``arena.book.mark_to_market(state, closes)``.
    """
    marks = {symbol: (price, value) for symbol, _, price, value in valuation.marks}
    positions = []
    for held in state.positions:
        if held.symbol not in marks:
            raise ValueError(f"snapshots_from: valuation has no mark for {held.symbol!r}")
        price, value = marks[held.symbol]
        positions.append(
            PositionSnapshot(
                symbol=held.symbol,
                quantity=held.quantity,
                sellable=held.sellable,
                cost_basis=held.cost_basis,
                price=price,
                value=value,
            )
        )
    equity = EquitySnapshot(
        cash=state.cash,
        market_value=valuation.market_value,
        equity=valuation.equity,
        realised_pnl=state.realised_pnl,
        commission_paid=state.commission_paid,
        taxes_paid=state.taxes_paid,
    )
    return tuple(positions), equity


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """A decision chain (debate, verdict, confidence...) stored as canonical JSON."""

    decision_id: str
    payload: Mapping[str, Any]

    def to_json(self) -> str:
        """Return the payload as canonical JSON (sorted keys, no NaN)."""
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------- attribution
def validate_shares(shares: Sequence[Sequence[Any]], where: str = "shares") -> GenomeShares:
    """Return ``shares`` as canonical ``(genome_id, share)`` tuples, or raise ``ValueError``.

    Shares must be finite and > 0, genome ids non-empty and unique, sorted by genome id, and
    the shares must sum to 1 within 1e-9. Empty shares (no genome) are allowed.
    """
    pairs: list[tuple[str, float]] = []
    for item in shares:
        if len(item) != 2:
            raise ValueError(f"{where}: expected (genome_id, share) pairs, got {item!r}")
        genome_id, share = item
        if not isinstance(genome_id, str) or not genome_id:
            raise ValueError(f"{where}: genome id must be a non-empty string, got {genome_id!r}")
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise ValueError(f"{where}: share of {genome_id} must be a number, got {share!r}")
        if not (math.isfinite(share) and share > 0):
            raise ValueError(f"{where}: share of {genome_id} must be finite and > 0, got {share}")
        pairs.append((genome_id, float(share)))
    ids = [g for g, _ in pairs]
    if ids != sorted(set(ids)):
        raise ValueError(f"{where}: genome ids must be unique and sorted, got {ids}")
    if pairs and abs(math.fsum(s for _, s in pairs) - 1.0) > _SHARES_TOLERANCE:
        raise ValueError(f"{where}: shares must sum to 1, got {math.fsum(s for _, s in pairs)}")
    return tuple(pairs)


def split_minor(amount: int, shares: GenomeShares) -> tuple[tuple[str, int], ...]:
    """Split ``amount`` minor units among genomes by ``shares``; the parts sum to it exactly.

    Largest remainder on the magnitude: each genome gets the floor of ``|amount| x share /
    sum(shares)`` (exact rational arithmetic on the binary shares), and the units left over go
    one each to the largest fractional remainders, ties to the smaller genome id; the sign of
    ``amount`` is then applied to every part (a loss is split exactly like the same gain).
    Without shares the whole amount goes to :data:`UNATTRIBUTED`.

    Returns
    -------
    tuple of (genome_id, part)
        In the order of ``shares`` (sorted by genome id).
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"split_minor: amount must be an int of minor units, got {amount!r}")
    shares = validate_shares(shares)
    if not shares:
        return ((UNATTRIBUTED, amount),)
    magnitude = abs(amount)
    weights = [Fraction(share) for _, share in shares]
    total = sum(weights, Fraction(0))
    quotas = [magnitude * weight / total for weight in weights]
    parts = [q.numerator // q.denominator for q in quotas]
    left = magnitude - sum(parts)
    ranked = sorted(range(len(shares)), key=lambda k: (parts[k] - quotas[k], shares[k][0]))
    for k in ranked[:left]:
        parts[k] += 1
    sign = -1 if amount < 0 else 1
    ids = [genome_id for genome_id, _ in shares]
    return tuple((genome_id, sign * part) for genome_id, part in zip(ids, parts, strict=True))


def _shares_json(shares: GenomeShares) -> str:
    return json.dumps(dict(shares), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _shares_from_json(text: str, where: str) -> GenomeShares:
    try:
        loaded = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: genomes {text!r} is not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{where}: genomes {text!r} is not a JSON object")
    return validate_shares(sorted(loaded.items()), where)


@dataclass(frozen=True, slots=True, kw_only=True)
class DayClose:
    """An account's books at a committed close, as the ledger stored them.

    ``day`` is ``None`` before the first committed day (the opening books: the initial cash
    only). ``genomes`` are the stored shares of each position (``symbol -> shares``; a
    position migrated from schema 1 has none).
    """

    day: date | None
    cash: int
    equity: int
    positions: tuple[PositionSnapshot, ...] = ()
    genomes: tuple[tuple[str, GenomeShares], ...] = ()

    def shares_of(self, symbol: str) -> GenomeShares:
        """Return the stored shares of the position in ``symbol`` (``()`` if none)."""
        return dict(self.genomes).get(symbol, ())


AttributionBasis = Literal["target", "position", "unattributed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolPnl:
    """One symbol's P&L of the day and its split among genomes (minor units).

    ``basis`` says where the shares came from: today's ``target``, the previous close's
    ``position``, or none (``unattributed``: the whole P&L goes to :data:`UNATTRIBUTED`).
    """

    symbol: str
    pnl: int
    basis: AttributionBasis
    shares: GenomeShares
    parts: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", validate_shares(self.shares, f"{self.symbol} shares"))
        if (self.basis == "unattributed") != (not self.shares):
            raise ValueError(f"{self.symbol}: basis {self.basis} with shares {self.shares}")
        if sum(part for _, part in self.parts) != self.pnl:
            raise InvariantViolation(
                f"{self.symbol}: genome parts {self.parts} do not sum to its P&L {self.pnl}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class DayAttribution:
    """An account's day P&L per symbol and per genome (:func:`attribute_day`).

    The symbols' P&L sums exactly to ``equity - previous_equity`` (checked here).
    """

    previous_equity: int
    equity: int
    symbols: tuple[SymbolPnl, ...]

    def __post_init__(self) -> None:
        names = [s.symbol for s in self.symbols]
        if names != sorted(set(names)):
            raise ValueError(f"DayAttribution: symbols must be unique and sorted, got {names}")
        total = sum(s.pnl for s in self.symbols)
        if total != self.equity - self.previous_equity:
            raise InvariantViolation(
                f"DayAttribution: symbol P&L sums to {total}, the equity moved by "
                f"{self.equity - self.previous_equity}"
            )

    @property
    def pnl(self) -> int:
        """Return the account's day P&L (``equity - previous_equity``), minor units."""
        return self.equity - self.previous_equity

    def by_genome(self) -> tuple[tuple[str, int], ...]:
        """Return ``(genome_id, pnl)`` summed over the symbols, sorted by genome id."""
        totals: dict[str, int] = {}
        for symbol in self.symbols:
            for genome_id, part in symbol.parts:
                totals[genome_id] = totals.get(genome_id, 0) + part
        return tuple(sorted(totals.items()))

    def shares_of(self, symbol: str) -> GenomeShares:
        """Return the shares ``symbol``'s orders, fills and position carry (``()`` if none)."""
        for item in self.symbols:
            if item.symbol == symbol:
                return item.shares
        return ()

    def target_shares(self) -> dict[str, GenomeShares]:
        """Return the shares taken from today's targets, by symbol."""
        return {s.symbol: s.shares for s in self.symbols if s.basis == "target"}


def attribute_day(
    *,
    previous: DayClose,
    orders: Sequence[Order],
    fills: Sequence[FillEvent],
    positions: Sequence[PositionSnapshot],
    equity: EquitySnapshot,
    targets: Mapping[str, GenomeShares],
) -> DayAttribution:
    """Attribute an account's day P&L to symbols and genomes (the rule of the module docstring).

    Parameters
    ----------
    previous:
        The books at the previous close (:meth:`Ledger.close_before`).
    orders:
        The day's orders (their symbols get shares even when nothing filled).
    fills, positions, equity:
        The day's fills and closing snapshots (:func:`snapshots_from`).
    targets:
        Today's target shares by symbol (``TargetPosition.shares``).

    Raises
    ------
    InvariantViolation
        If the cash did not change by the fills alone, or the position values do not sum to
        the market value (the symbols' P&L would not add up to the equity change).
    """
    flows: dict[str, int] = {}
    for fill in fills:
        signed = fill.notional if fill.side == "sell" else -fill.notional
        flows[fill.symbol] = flows.get(fill.symbol, 0) + signed - fill.commission - fill.taxes
    if previous.cash + sum(flows.values()) != equity.cash:
        raise InvariantViolation(
            f"attribute_day: previous cash {previous.cash} + fill cash flows "
            f"{sum(flows.values())} != closing cash {equity.cash}: cash moved outside the fills"
        )
    closing = {p.symbol: p.value for p in positions}
    opening = {p.symbol: p.value for p in previous.positions}
    if sum(closing.values()) != equity.market_value:
        raise InvariantViolation(
            f"attribute_day: position values sum to {sum(closing.values())}, the market value "
            f"is {equity.market_value}"
        )
    symbols = set(closing) | set(opening) | set(flows) | {o.symbol for o in orders}
    rows = []
    for symbol in sorted(symbols):
        pnl = closing.get(symbol, 0) - opening.get(symbol, 0) + flows.get(symbol, 0)
        basis: AttributionBasis
        shares = validate_shares(targets.get(symbol, ()), f"target {symbol}")
        if shares:
            basis = "target"
        elif previous.shares_of(symbol):
            basis, shares = "position", previous.shares_of(symbol)
        else:
            basis = "unattributed"
        rows.append(
            SymbolPnl(
                symbol=symbol, pnl=pnl, basis=basis, shares=shares,
                parts=split_minor(pnl, shares),
            )
        )  # fmt: skip
    return DayAttribution(
        previous_equity=previous.equity, equity=equity.equity, symbols=tuple(rows)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeAttribution:
    """One committed ``attribution`` row: ``genome_id``'s share of ``account``'s ``day`` P&L.

    ``pnl`` is in minor units of the account currency (``money_digits`` places).
    """

    account: str
    day: date
    genome_id: str
    pnl: int
    money_digits: int

    @property
    def pnl_float(self) -> float:
        """Return the P&L in currency units as a float (reports and research only)."""
        return money_to_float(self.pnl, self.money_digits)


# --------------------------------------------------------------------------- genome days
# The review's money figures are float64 multiples of this step (2**-20 of a currency unit,
# about 1e-4 of a cent): sums and differences of such numbers below 2**32 are exact in float64,
# so a genome day's four parts add up to ``pnl - expected_pnl`` exactly, not to within an ulp.
GENOME_DAY_GRID = 2.0**-20
_GRID_SCALE = 2**20
# The largest magnitude a genome day's money figure may have for the sums to stay exact.
_GRID_LIMIT = 2.0**30
_GENOME_DAY_MONEY = (
    "pnl", "expected_pnl", "execution_cost", "governor_cuts", "debate_scaling", "residual"
)  # fmt: skip


def to_grid(value: float) -> float:
    """Return ``value`` rounded (half to even) to a multiple of :data:`GENOME_DAY_GRID`."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"to_grid: {value!r} is not finite")
    return round(number * _GRID_SCALE) / _GRID_SCALE


@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeDay:
    """One genome's day in one account: its paper result against its shadow backtest.

    Written by the review stage (:func:`arena.review.review_day`, where every figure is
    defined) through :meth:`Ledger.write_genome_days`. Money is float in the account currency;
    the money figures (``pnl``, ``expected_pnl`` and the four parts) are multiples of
    :data:`GENOME_DAY_GRID`, so these invariants hold exactly (checked here)::

        execution_cost + governor_cuts + debate_scaling + residual == pnl - expected_pnl
        paper_return == pnl / allocation

    and ``expected_pnl`` is ``allocation * expected_return`` rounded to the grid.
    """

    account: str
    day: date
    genome_id: str
    source: str
    sleeve: float
    allocation: float
    pnl: float
    paper_return: float
    expected_return: float
    expected_pnl: float
    execution_cost: float
    governor_cuts: float
    debate_scaling: float
    residual: float
    avg_slippage_bps: float
    fill_ratio: float
    order_reject_count: int
    risk_block_count: int
    turnover: float

    def __post_init__(self) -> None:
        where = f"GenomeDay({self.account}, {self.day}, {self.genome_id})"
        if not (isinstance(self.account, str) and self.account):
            raise ValueError(f"{where}: account must be a non-empty string")
        if not (isinstance(self.genome_id, str) and self.genome_id):
            raise ValueError(f"{where}: genome_id must be a non-empty string")
        if not isinstance(self.source, str):
            raise ValueError(f"{where}: source must be a string, got {self.source!r}")
        if isinstance(self.day, datetime) or not isinstance(self.day, date):
            raise ValueError(f"{where}: day must be a date, got {self.day!r}")
        for name in ("order_reject_count", "risk_block_count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}")
        for name in (
            "sleeve", "allocation", "paper_return", "expected_return", "avg_slippage_bps",
            "fill_ratio", "turnover", *_GENOME_DAY_MONEY,
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{where}: {name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not (self.sleeve > 0 and self.allocation > 0):
            raise ValueError(
                f"{where}: sleeve {self.sleeve} and allocation {self.allocation} must be > 0"
            )
        for name in _GENOME_DAY_MONEY:
            value = getattr(self, name)
            if abs(value) > _GRID_LIMIT or to_grid(value) != value:
                raise ValueError(
                    f"{where}: {name} {value!r} is not a multiple of GENOME_DAY_GRID below "
                    f"{_GRID_LIMIT:g} in magnitude (use to_grid)"
                )
        parts = self.execution_cost + self.governor_cuts + self.debate_scaling + self.residual
        if parts != self.pnl - self.expected_pnl:
            raise InvariantViolation(
                f"{where}: the parts sum to {parts!r}, pnl - expected_pnl is "
                f"{self.pnl - self.expected_pnl!r}"
            )
        if self.paper_return != self.pnl / self.allocation:
            raise ValueError(
                f"{where}: paper_return {self.paper_return!r} != pnl / allocation "
                f"{self.pnl / self.allocation!r}"
            )
        if abs(self.expected_pnl - self.allocation * self.expected_return) > GENOME_DAY_GRID:
            raise ValueError(
                f"{where}: expected_pnl {self.expected_pnl!r} is not allocation x "
                f"expected_return {self.allocation * self.expected_return!r}"
            )
        if not 0.0 <= self.fill_ratio <= 1.0:
            raise ValueError(f"{where}: fill_ratio must be in [0, 1], got {self.fill_ratio}")
        if self.turnover < 0:
            raise ValueError(f"{where}: turnover must be >= 0, got {self.turnover}")

    @property
    def difference(self) -> float:
        """Return ``pnl - expected_pnl`` (exact: the sum of the four parts)."""
        return self.pnl - self.expected_pnl

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the day as ISO text)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _GENOME_DAY_COLUMNS}
        out["day"] = self.day.isoformat()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord:
    """A registered account: its book units, T+1 flag and initial cash (minor units)."""

    account: str
    units: MoneyUnits
    t_plus_one: bool
    initial_cash: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """One committed order in its final state, as the ledger stored it (quantities in units)."""

    order_id: str
    seq: int
    symbol: str
    side: str
    quantity: int
    filled: int
    status: str
    reason: str
    filled_notional: int
    commission: int
    taxes: int
    decision_id: str | None
    genomes: GenomeShares


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskEventRecord:
    """One committed risk event (``order_id``: the request the governor checked, or ``None``)."""

    seq: int
    at: datetime
    order_id: str | None
    rule: str
    reason: str
    value: float | None
    limit: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyIssue:
    """One thing :meth:`Ledger.verify` found wrong.

    ``kind`` is one of ``cash_mismatch``, ``position_mismatch``, ``totals_mismatch``,
    ``snapshot_inconsistent``, ``fill_inconsistent``, ``order_mismatch``, ``duplicate_fill``,
    ``sequence_gap``, ``day_gap``, ``orphan_row``, ``replay_error``, ``attribution_mismatch``,
    ``genome_day_mismatch``, ``chain_mismatch`` (a day's rows, or its link to the previous
    day, are not what its commit hashed), ``decision_mismatch``, ``risk_event_invalid``,
    ``order_state_invalid``, ``mark_mismatch``.
    """

    kind: str
    account: str
    day: date | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "kind": self.kind,
            "account": self.account,
            "day": None if self.day is None else self.day.isoformat(),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """Result of :meth:`Ledger.verify`: ``ok`` iff no issue was found.

    ``days_unattributed`` counts the committed days without a genome attribution (days
    migrated from schema 1, or committed without one): they are not an issue.
    ``days_checked`` counts the days whose rows were checked one by one (every committed day
    in a full verification; in :meth:`Ledger.verify_before_trading` only the days after the
    last verified one), ``days_chained`` the days whose hash link was recomputed (always
    every day). ``chain_heads`` holds each account's last committed day and its stored hash
    (``(account, day, hash)``): a copy kept elsewhere shows a rewritten or truncated chain.
    """

    accounts: tuple[str, ...]
    days_checked: int
    fills_checked: int
    issues: tuple[VerifyIssue, ...] = field(default_factory=tuple)
    days_unattributed: int = 0
    days_chained: int = 0
    chain_heads: tuple[tuple[str, date, str], ...] = ()

    @property
    def ok(self) -> bool:
        """True when the ledger replays to its snapshots without gap or duplicate."""
        return not self.issues

    def first_broken(self) -> dict[str, VerifyIssue]:
        """Return, per account with an issue, its issue of the earliest day.

        An issue without a day (a number gap, a duplicate fill id) counts as the account's
        first only when the account has no issue with a day. Of the earliest day's issues the
        first that says what is wrong is taken, a ``chain_mismatch`` (which says only that the
        day changed) when there is no other.
        """
        first: dict[str, VerifyIssue] = {}
        for issue in sorted(self.issues, key=_issue_order):
            first.setdefault(issue.account, issue)
        return dict(sorted(first.items()))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form printed by ``alphaloop ledger verify --json``.

        ``first_broken`` maps each account with an issue to the ISO day of its earliest issue
        (``null`` if its issues have no day); ``chain_heads`` maps each account to its last
        committed day and that day's hash.
        """
        return {
            "ok": self.ok,
            "accounts": list(self.accounts),
            "days_checked": self.days_checked,
            "days_chained": self.days_chained,
            "fills_checked": self.fills_checked,
            "days_unattributed": self.days_unattributed,
            "first_broken": {
                account: None if issue.day is None else issue.day.isoformat()
                for account, issue in self.first_broken().items()
            },
            "chain_heads": {
                account: {"day": day.isoformat(), "hash": digest}
                for account, day, digest in self.chain_heads
            },
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def refusal(self, path: str | Path, *, inspect: str) -> str:
        """Return the one-line refusal of a trading command on this failed report.

        It names the ledger, the first broken day of each broken account (with the earliest
        one's issue) and ``inspect``, the command that lists every issue.
        """
        ordered = sorted(self.first_broken().values(), key=_issue_order)
        lead = ordered[0]
        where = "no day" if lead.day is None else lead.day.isoformat()
        detail = " ".join(lead.detail.split())
        if len(detail) > 160:
            detail = detail[:157] + "..."
        others = ", ".join(
            f"{i.account} {'no day' if i.day is None else i.day.isoformat()}" for i in ordered[1:]
        )
        return (
            f"ledger {path} fails verification ({len(self.issues)} issue(s)): first broken day "
            f"{lead.account} {where} ({lead.kind}: {detail})"
            + (f"; also broken: {others}" if others else "")
            + f"; nothing was traded; inspect with `{inspect}`"
        )


def _issue_order(issue: VerifyIssue) -> tuple[bool, date, bool]:
    return (issue.day is None, issue.day or date.min, issue.kind == "chain_mismatch")


# --------------------------------------------------------------------------- row helpers
def _fill_from_row(row: sqlite3.Row) -> FillEvent:
    kind = OrderFilled if int(row["remaining"]) == 0 else OrderPartiallyFilled
    return kind(
        account=row["account"],
        at=datetime.fromisoformat(row["at"]),
        order_id=row["order_id"],
        fill_id=row["fill_id"],
        fill_seq=int(row["seq"]),
        day=date.fromisoformat(row["day"]),
        symbol=row["symbol"],
        side=row["side"],
        quantity=int(row["quantity"]),
        price=Decimal(row["price"]),
        notional=int(row["notional"]),
        commission=int(row["commission"]),
        taxes=int(row["taxes"]),
        remaining=int(row["remaining"]),
    )


class _ReplayCheckpoints:
    """The books after fill rows a restore folded, per ledger file and account (this process).

    :meth:`Ledger.restore_state` folds :func:`arena.book.apply_fill` over every committed fill
    of the account, and the arena restores the same books several times a day (the account,
    the review, the TWAP counterfactual), so a season's replays grew with the square of its
    length. The fold is pure: the books after a sequence of fill rows depend on the opening
    books and those rows only. A restore whose rows begin with rows folded before (equal in
    every column as SQLite returns them, from equal opening books) starts from the books they
    gave and folds only the rows after them. Any other restore (a changed, deleted or tampered
    fill among them, another file) folds from the opening books, so every restore gives the
    books, and raises the errors, of a replay from scratch.
    """

    KEEP_PAIRS = 16  # (file, account) pairs remembered; the least recently used goes first
    KEEP_POINTS = 8  # prefixes remembered per pair (the longest)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (file, account) -> (opening books, the longest rows folded, {prefix length: books})
        self._entries: dict[
            tuple[str, str], tuple[AccountState, list[tuple[Any, ...]], dict[int, AccountState]]
        ] = {}

    def clear(self) -> None:
        """Forget every checkpoint (the next restores fold from the opening books)."""
        with self._lock:
            self._entries.clear()

    def fold(self, path: str, opening: AccountState, rows: Sequence[sqlite3.Row]) -> AccountState:
        """Return ``opening`` after every fill of ``rows`` (the ledger's fill rows, in order)."""
        key = (path, opening.account)
        values = [tuple(row) for row in rows]
        with self._lock:
            entry = self._entries.pop(key, None)
        folded: list[tuple[Any, ...]] = []
        points: dict[int, AccountState] = {}
        if entry is not None and entry[0] == opening:
            folded, points = entry[1], entry[2]
        start, state = 0, opening
        for length in sorted(points, reverse=True):
            if length <= len(values) and values[:length] == folded[:length]:
                start, state = length, points[length]
                break
        for row in rows[start:]:
            state = apply_fill(state, _fill_from_row(row))
        if values[: len(folded)] == folded:  # these rows extend the ones folded before
            kept = values
        elif folded[: len(values)] == values:  # they begin them
            kept = folded
        else:  # the ledger changed: keep the prefixes it still has
            kept = values
            points = {length: books for length, books in points.items() if length <= start}
        points = dict(points)
        points[len(values)] = state
        points = {length: points[length] for length in sorted(points)[-self.KEEP_POINTS :]}
        with self._lock:
            self._entries[key] = (opening, kept, points)
            while len(self._entries) > self.KEEP_PAIRS:
                del self._entries[next(iter(self._entries))]
        return state


_REPLAYS = _ReplayCheckpoints()


# --------------------------------------------------------------------------- the chain
def _blob(value: object) -> object:
    if isinstance(value, bytes):
        return {"blob": value.hex()}
    raise TypeError(f"ledger chain: cannot serialise {type(value).__name__} {value!r}")


def _row_line(table: str, row: Sequence[Any]) -> str:
    # Values exactly as SQLite returns them: integers and text as stored, REALs by their
    # shortest round-trip repr (exact for float64), NULL as null, a BLOB as hex.
    return json.dumps([table, *row], separators=(",", ":"), default=_blob)


def _sorted_columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    names = [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]
    if table == "days":
        names = [n for n in names if n not in _UNCHAINED_DAY_COLUMNS]
    return tuple(sorted(names))


def _chain_columns(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Return the hashed columns of each chained table (and ``accounts``), sorted by name."""
    return {table: _sorted_columns(conn, table) for table in ("accounts", *_CHAINED_TABLES)}


def _day_lines(
    conn: sqlite3.Connection,
    columns: Mapping[str, tuple[str, ...]],
    account: str,
    day: str | None = None,
    *,
    after: str = "",
) -> dict[str, list[str]]:
    """Return the canonical lines of ``account``'s rows in the chained tables, by ISO day.

    ``day``: that day's only; ``after``: only the days after that ISO day.
    """
    out: dict[str, list[str]] = {}
    for table in _CHAINED_TABLES:
        names = columns[table]
        at = names.index("day")
        sql = f"SELECT {', '.join(names)} FROM {table} WHERE account = ? AND day > ?"
        params: list[Any] = [account, after]
        if day is not None:
            sql += " AND day = ?"
            params.append(day)
        for row in conn.execute(sql, params):
            out.setdefault(str(row[at]), []).append(_row_line(table, tuple(row)))
    return out


def _account_line(
    conn: sqlite3.Connection, columns: Mapping[str, tuple[str, ...]], account: str
) -> list[str]:
    names = columns["accounts"]
    rows = conn.execute(
        f"SELECT {', '.join(names)} FROM accounts WHERE account = ?", (account,)
    ).fetchall()
    return [_row_line("accounts", tuple(r)) for r in rows]


def _link(previous: str, columns: Mapping[str, tuple[str, ...]], lines: Sequence[str]) -> str:
    """Return the hash of a day: its sorted row lines chained to ``previous``."""
    digest = hashlib.sha256(f"{_CHAIN_FORMAT}\n{previous}\n".encode())
    digest.update(json.dumps(dict(columns), sort_keys=True, separators=(",", ":")).encode())
    for line in sorted(lines):
        digest.update(b"\n")
        digest.update(line.encode())
    return digest.hexdigest()


def _review_columns(conn: sqlite3.Connection) -> tuple[str, ...]:
    return _sorted_columns(conn, "genome_days")


def _review_lines(
    conn: sqlite3.Connection,
    names: tuple[str, ...],
    account: str,
    day: str | None = None,
    *,
    after: str = "",
) -> dict[str, list[str]]:
    """Return the canonical lines of ``account``'s genome days (after ``after``), by ISO day."""
    at = names.index("day")
    sql = f"SELECT {', '.join(names)} FROM genome_days WHERE account = ? AND day > ?"
    params: list[Any] = [account, after]
    if day is not None:
        sql += " AND day = ?"
        params.append(day)
    out: dict[str, list[str]] = {}
    for row in conn.execute(sql, params):
        out.setdefault(str(row[at]), []).append(_row_line("genome_days", tuple(row)))
    return out


def _review_link(account: str, day: str, names: tuple[str, ...], lines: Sequence[str]) -> str:
    """Return the hash of a reviewed day's genome days (``''`` is an unreviewed day's)."""
    digest = hashlib.sha256(f"{_REVIEW_FORMAT}\n{account}\n{day}\n".encode())
    digest.update(json.dumps(list(names), separators=(",", ":")).encode())
    for line in sorted(lines):
        digest.update(b"\n")
        digest.update(line.encode())
    return digest.hexdigest()


def _chain_stored_days(conn: sqlite3.Connection) -> None:
    """Hash every stored day of every account in order (migration 4, in its transaction)."""
    columns = _chain_columns(conn)
    review_names = _review_columns(conn)
    accounts = [r[0] for r in conn.execute("SELECT account FROM accounts ORDER BY account")]
    for account in accounts:
        lines = _day_lines(conn, columns, account)
        reviews = _review_lines(conn, review_names, account)
        previous = CHAIN_GENESIS
        days = conn.execute(
            "SELECT day, reviewed FROM days WHERE account = ? ORDER BY day", (account,)
        ).fetchall()
        for k, (day, reviewed) in enumerate(days):
            own = lines.get(day, []) + (_account_line(conn, columns, account) if k == 0 else [])
            previous = _link(previous, columns, own)
            review = _review_link(account, day, review_names, reviews.get(day, []))
            conn.execute(
                "UPDATE days SET chain_hash = ?, review_hash = ? WHERE account = ? AND day = ?",
                (previous, review if reviewed else "", account, day),
            )


class Ledger:
    """The SQLite ledger of every paper account (one file; safe to reopen after a crash).

    Parameters
    ----------
    path:
        The database file (created with its schema when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened and closed explicitly below.
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60.0)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA synchronous = FULL")
        # A file already at this code's schema opens without the write lock, so reading the
        # ledger (a status, a check before the day) never waits behind an account's commit;
        # any other file is created or migrated under it.
        if self._stored_version() != SCHEMA_VERSION:
            with self._transaction():
                self._migrate()

    def _stored_version(self) -> int | None:
        try:
            found = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:  # a new file (no meta table yet)
            return None
        try:
            return None if found is None else int(found["value"])
        except ValueError:
            return None

    def _migrate(self) -> None:
        # Inside the opening transaction: a crash mid-migration leaves the old version intact.
        apply_schema(
            self._conn,
            schema=_SCHEMA,
            migrations=_MIGRATIONS,
            steps=_MIGRATION_STEPS,
            latest=SCHEMA_VERSION,
            refuse=lambda found: LedgerError(
                f"{self.path}: ledger schema version {found}, this code reads versions 1 to "
                f"{SCHEMA_VERSION} (a newer AlphaLoop wrote this file?)"
            ),
        )

    def schema_version(self) -> int:
        """Return the file's schema version (:data:`SCHEMA_VERSION` once opened)."""
        row = self._query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0]["value"])

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so the "already committed?" check and
        # the writes see the same database even with several actors on one file.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    # ------------------------------------------------------------------ accounts
    def ensure_account(self, state: AccountState) -> None:
        """Register ``state``'s account (its units, T+1 flag and initial cash) once.

        Raises
        ------
        LedgerError
            If the account exists with different units, T+1 flag or initial cash.
        """
        units = state.units
        wanted = (
            units.currency,
            units.money_digits,
            units.price_digits,
            units.quantity_digits,
            int(state.t_plus_one),
            state.initial_cash,
        )
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT currency, money_digits, price_digits, quantity_digits, t_plus_one, "
                "initial_cash FROM accounts WHERE account = ?",
                (state.account,),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO accounts (account, currency, money_digits, price_digits, "
                    "quantity_digits, t_plus_one, initial_cash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (state.account, *wanted),
                )
            elif tuple(row) != wanted and tuple(row)[:-1] == wanted[:-1]:
                scale = 10**units.money_digits
                raise LedgerError(
                    f"{self.path}: account {state.account!r} started with "
                    f"{row[-1] / scale:,.2f} {units.currency}, the configuration says "
                    f"{state.initial_cash / scale:,.2f}: a home keeps its starting capital; "
                    "use another --home for another capital, or set starting_capital back"
                )
            elif tuple(row) != wanted:
                raise LedgerError(
                    f"{self.path}: account {state.account!r} exists with (currency, digits, "
                    f"t_plus_one, initial_cash) = {tuple(row)}, not {wanted}"
                )

    def accounts(self) -> list[str]:
        """Return the registered account names, sorted."""
        return [r["account"] for r in self._query("SELECT account FROM accounts ORDER BY account")]

    def opening_state(self, account: str) -> AccountState:
        """Return the account as it was before its first day (its initial cash only).

        Raises
        ------
        LedgerError
            If the account is not registered.
        """
        record = self.account_record(account)
        return open_account(
            account,
            initial_cash=record.initial_cash,
            units=record.units,
            t_plus_one=record.t_plus_one,
        )

    def account_record(self, account: str) -> AccountRecord:
        """Return ``account``'s registration: book units, T+1 flag and initial cash.

        Raises
        ------
        LedgerError
            If the account is not registered.
        """
        rows = self._query("SELECT * FROM accounts WHERE account = ?", (account,))
        if not rows:
            known = ", ".join(self.accounts()) or "none"
            raise LedgerError(f"{self.path}: unknown account {account!r} (registered: {known})")
        return _account_from_row(rows[0])

    def account_records(self) -> list[AccountRecord]:
        """Return every registered account's registration, by account name."""
        return [
            _account_from_row(r) for r in self._query("SELECT * FROM accounts ORDER BY account")
        ]

    # ------------------------------------------------------------------ days
    def is_committed(self, account: str, day: date) -> bool:
        """Return True when ``account``'s ``day`` is committed."""
        rows = self._query(
            "SELECT 1 FROM days WHERE account = ? AND day = ?", (account, day.isoformat())
        )
        return bool(rows)

    def committed_days(self, account: str) -> list[date]:
        """Return the committed days of ``account``, in order."""
        rows = self._query("SELECT day FROM days WHERE account = ? ORDER BY day", (account,))
        return [date.fromisoformat(r["day"]) for r in rows]

    def last_committed_day(self, account: str | None = None) -> date | None:
        """Return the last committed day of ``account`` (``None`` before the first).

        ``account=None``: the last day any account committed (``None`` on an empty ledger).
        """
        if account is None:
            rows = self._query("SELECT MAX(day) AS day FROM days")
        else:
            rows = self._query("SELECT MAX(day) AS day FROM days WHERE account = ?", (account,))
        value = rows[0]["day"] if rows else None
        return None if value is None else date.fromisoformat(value)

    def commit_day(
        self,
        account: str,
        day: date,
        *,
        orders: Sequence[Order],
        fills: Sequence[FillEvent],
        positions: Sequence[PositionSnapshot],
        equity: EquitySnapshot,
        decisions: Sequence[DecisionRecord] = (),
        risk_events: Sequence[RiskVeto] = (),
        attribution: DayAttribution | None = None,
    ) -> None:
        """Write one day of ``account`` in one transaction (all of it or nothing).

        Parameters
        ----------
        account, day:
            The account and the trading day; the day must be after the last committed one.
        orders:
            Every order of the day, in its final state.
        fills:
            Every fill of the day; their numbers continue the ledger's without a gap.
        positions, equity:
            The end-of-day snapshots (:func:`snapshots_from`).
        decisions:
            The decision chains the orders point to.
        risk_events:
            The risk governor's vetoes of the day.
        attribution:
            The day's P&L per genome (:func:`attribute_day` from :meth:`close_before`); its
            rows and the shares of every order, fill and position are written with the day.
            ``None``: the day is committed unattributed (no rows, ``'{}'`` shares).

        Raises
        ------
        DayAlreadyCommitted
            If the day is committed already (nothing is written).
        DuplicateFill
            If a fill id is already in the ledger (the transaction is rolled back).
        LedgerError
            On records of another account or day, a day before the last committed one,
            fill/order numbers that do not continue the ledger's, or an attribution that is
            not the one :func:`attribute_day` gives for the stored previous close and the
            day's records.
        """
        with self._transaction() as conn:
            if self._day_row(conn, account, day):
                raise DayAlreadyCommitted(
                    f"{self.path}: {account} {day.isoformat()} is already committed"
                )
            self._write_day(
                conn, account, day, orders, fills, positions, equity, decisions, risk_events,
                attribution,
            )  # fmt: skip

    def replace_day(
        self,
        account: str,
        day: date,
        *,
        orders: Sequence[Order],
        fills: Sequence[FillEvent],
        positions: Sequence[PositionSnapshot],
        equity: EquitySnapshot,
        decisions: Sequence[DecisionRecord] = (),
        risk_events: Sequence[RiskVeto] = (),
        attribution: DayAttribution | None = None,
    ) -> None:
        """Delete and rewrite ``account``'s ``day`` in one transaction (``--force``).

        Only the last committed day (or a new day) can be replaced: a day in the middle would
        leave the later days built on books that no longer exist. Compute the new day from
        :meth:`restore_state` with ``before=day``.

        The day's attribution rows are replaced with it (``attribution`` as in
        :meth:`commit_day`); its genome days are deleted and the day is no longer marked
        reviewed, so the review stage writes them again from the new day.

        Raises
        ------
        LedgerError
            If a later day is committed, or the new records are inconsistent (nothing changes).
        DuplicateFill
            If a new fill id is already used by another day (nothing changes).
        """
        with self._transaction() as conn:
            later = conn.execute(
                "SELECT MIN(day) FROM days WHERE account = ? AND day > ?",
                (account, day.isoformat()),
            ).fetchone()[0]
            if later is not None:
                raise LedgerError(
                    f"{self.path}: cannot replace {account} {day.isoformat()}: day {later} is "
                    "committed after it (replace from the last day backwards)"
                )
            for table in _DAY_TABLES:
                conn.execute(
                    f"DELETE FROM {table} WHERE account = ? AND day = ?",
                    (account, day.isoformat()),
                )
            self._write_day(
                conn, account, day, orders, fills, positions, equity, decisions, risk_events,
                attribution,
            )  # fmt: skip

    @staticmethod
    def _day_row(conn: sqlite3.Connection, account: str, day: date) -> bool:
        row = conn.execute(
            "SELECT 1 FROM days WHERE account = ? AND day = ?", (account, day.isoformat())
        ).fetchone()
        return row is not None

    def _write_day(
        self,
        conn: sqlite3.Connection,
        account: str,
        day: date,
        orders: Sequence[Order],
        fills: Sequence[FillEvent],
        positions: Sequence[PositionSnapshot],
        equity: EquitySnapshot,
        decisions: Sequence[DecisionRecord],
        risk_events: Sequence[RiskVeto],
        attribution: DayAttribution | None,
    ) -> None:
        where = f"{self.path}: {account} {day.isoformat()}"
        if conn.execute("SELECT 1 FROM accounts WHERE account = ?", (account,)).fetchone() is None:
            raise LedgerError(f"{where}: unknown account (call ensure_account first)")
        last = conn.execute("SELECT MAX(day) FROM days WHERE account = ?", (account,)).fetchone()[0]
        if last is not None and day.isoformat() <= last:
            raise LedgerError(f"{where}: the last committed day is {last}; days only move forward")
        for order in orders:
            if order.account != account or order.day != day:
                raise LedgerError(f"{where}: order {order.order_id} is {order.account} {order.day}")
        for fill in fills:
            if fill.account != account or fill.day != day:
                raise LedgerError(f"{where}: fill {fill.fill_id} is {fill.account} {fill.day}")
        self._check_numbers(conn, where, "orders", account, [o.seq for o in orders])
        self._check_numbers(conn, where, "fills", account, [f.fill_seq for f in fills])
        if attribution is not None:
            expected = attribute_day(
                previous=self._close_before(conn, account, day),
                orders=orders, fills=fills, positions=positions, equity=equity,
                targets=attribution.target_shares(),
            )  # fmt: skip
            if expected != attribution:
                raise LedgerError(
                    f"{where}: the attribution does not follow from the stored previous close "
                    f"and the day's records (P&L {attribution.pnl} per genome "
                    f"{attribution.by_genome()}, expected {expected.pnl} per genome "
                    f"{expected.by_genome()})"
                )

        def genomes(symbol: str) -> str:
            return _shares_json(() if attribution is None else attribution.shares_of(symbol))

        iso = day.isoformat()
        conn.executemany(
            "INSERT INTO orders (account, order_id, seq, day, symbol, side, quantity, filled, "
            "status, reason, filled_notional, commission, taxes, decision_id, genomes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    account, o.order_id, o.seq, iso, o.symbol, o.side, o.quantity, o.filled,
                    str(o.status), o.reason, o.filled_notional, o.commission, o.taxes,
                    o.decision_id, genomes(o.symbol),
                )
                for o in orders
            ],
        )  # fmt: skip
        try:
            conn.executemany(
                "INSERT INTO fills (fill_id, account, seq, order_id, day, at, symbol, side, "
                "quantity, price, notional, commission, taxes, remaining, genomes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f.fill_id, account, f.fill_seq, f.order_id, iso, f.at.isoformat(),
                        f.symbol, f.side, f.quantity, str(f.price), f.notional, f.commission,
                        f.taxes, f.remaining, genomes(f.symbol),
                    )
                    for f in fills
                ],
            )  # fmt: skip
        except sqlite3.IntegrityError as exc:
            if "fills.fill_id" in str(exc) or "fills.account, fills.seq" in str(exc):
                raise DuplicateFill(f"{where}: duplicate fill id or number ({exc})") from exc
            raise LedgerError(f"{where}: a fill does not fit the ledger ({exc})") from exc
        conn.executemany(
            "INSERT INTO positions (account, day, symbol, quantity, sellable, cost_basis, "
            "price, value, genomes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (account, iso, p.symbol, p.quantity, p.sellable, p.cost_basis, str(p.price),
                 p.value, genomes(p.symbol))
                for p in positions
            ],
        )  # fmt: skip
        conn.execute(
            "INSERT INTO equity (account, day, cash, market_value, equity, realised_pnl, "
            "commission_paid, taxes_paid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account, iso, equity.cash, equity.market_value, equity.equity,
                equity.realised_pnl, equity.commission_paid, equity.taxes_paid,
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO decisions (account, day, decision_id, payload) VALUES (?, ?, ?, ?)",
            [(account, iso, d.decision_id, d.to_json()) for d in decisions],
        )
        conn.executemany(
            "INSERT INTO risk_events (account, day, seq, at, order_id, rule, reason, value, "
            "limit_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (account, iso, k + 1, r.at.isoformat(), r.order_id, r.rule, r.reason, r.value,
                 r.limit)
                for k, r in enumerate(risk_events)
            ],
        )  # fmt: skip
        if attribution is not None:
            conn.executemany(
                "INSERT INTO attribution (account, day, genome_id, pnl) VALUES (?, ?, ?, ?)",
                [(account, iso, genome_id, pnl) for genome_id, pnl in attribution.by_genome()],
            )
        conn.execute(
            "INSERT INTO days (account, day, committed_at, n_orders, n_fills, attributed) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                account, iso, datetime.now(UTC).isoformat(), len(orders), len(fills),
                int(attribution is not None),
            ),
        )  # fmt: skip
        # The day's link of the chain, hashed from the rows as stored, in this transaction.
        conn.execute(
            "UPDATE days SET chain_hash = ? WHERE account = ? AND day = ?",
            (self._chain_day(conn, account, iso), account, iso),
        )

    def _chain_day(self, conn: sqlite3.Connection, account: str, iso: str) -> str:
        """Return the hash of ``account``'s committed day ``iso`` linked to its previous day."""
        columns = _chain_columns(conn)
        previous = conn.execute(
            "SELECT chain_hash FROM days WHERE account = ? AND day < ? ORDER BY day DESC LIMIT 1",
            (account, iso),
        ).fetchone()
        lines = _day_lines(conn, columns, account, iso).get(iso, [])
        if previous is None:
            lines += _account_line(conn, columns, account)
        return _link(CHAIN_GENESIS if previous is None else str(previous[0]), columns, lines)

    @staticmethod
    def _check_numbers(
        conn: sqlite3.Connection, where: str, table: str, account: str, numbers: list[int]
    ) -> None:
        last = conn.execute(
            f"SELECT COALESCE(MAX(seq), 0) FROM {table} WHERE account = ?",
            (account,),
        ).fetchone()[0]
        expected = list(range(int(last) + 1, int(last) + 1 + len(numbers)))
        if sorted(numbers) != expected:
            raise LedgerError(
                f"{where}: {table} numbers {sorted(numbers)[:5]}... do not continue the "
                f"ledger's (last {last}; expected {expected[:5]}...)"
            )

    # ------------------------------------------------------------------ reading
    def fills(self, account: str, day: date | None = None) -> list[FillEvent]:
        """Return the committed fills of ``account`` (of one ``day``), by fill number."""
        sql = "SELECT * FROM fills WHERE account = ?"
        params: list[Any] = [account]
        if day is not None:
            sql += " AND day = ?"
            params.append(day.isoformat())
        return [_fill_from_row(r) for r in self._query(sql + " ORDER BY seq", params)]

    def equity_history(self, account: str) -> list[tuple[date, EquitySnapshot]]:
        """Return the end-of-day equity snapshots of ``account``, in day order."""
        rows = self._query("SELECT * FROM equity WHERE account = ? ORDER BY day", (account,))
        return [(date.fromisoformat(r["day"]), _equity_from_row(r)) for r in rows]

    def decision(self, account: str, decision_id: str) -> dict[str, Any] | None:
        """Return the decision chain ``decision_id`` of ``account`` (``None`` if absent)."""
        rows = self._query(
            "SELECT payload FROM decisions WHERE account = ? AND decision_id = ?",
            (account, decision_id),
        )
        return None if not rows else dict(json.loads(rows[0]["payload"]))

    def close_before(self, account: str, day: date) -> DayClose:
        """Return ``account``'s books at the last committed close before ``day``.

        The opening books (initial cash, no position, ``day=None``) before the first committed
        day. The previous close of a day to attribute (:func:`attribute_day`), also when the
        day itself is being replaced.
        """
        return self._close_before(self._conn, account, day)

    def _close_before(self, conn: sqlite3.Connection, account: str, day: date) -> DayClose:
        last = conn.execute(
            "SELECT MAX(day) FROM days WHERE account = ? AND day < ?",
            (account, day.isoformat()),
        ).fetchone()[0]
        if last is None:
            opening = self.opening_state(account)
            return DayClose(day=None, cash=opening.cash, equity=opening.cash)
        snap = conn.execute(
            "SELECT * FROM equity WHERE account = ? AND day = ?", (account, last)
        ).fetchone()
        if snap is None:
            raise LedgerCorrupted(f"{self.path}: {account} {last} has no equity snapshot")
        rows = conn.execute(
            "SELECT * FROM positions WHERE account = ? AND day = ? ORDER BY symbol",
            (account, last),
        ).fetchall()
        where = f"{self.path}: {account} {last}"
        return DayClose(
            day=date.fromisoformat(last),
            cash=int(snap["cash"]),
            equity=int(snap["equity"]),
            positions=tuple(_position_from_row(r) for r in rows),
            genomes=tuple(
                (r["symbol"], _shares_from_json(r["genomes"], f"{where} {r['symbol']}"))
                for r in rows
            ),
        )

    def attribution(
        self,
        account: str | None = None,
        *,
        genome_id: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[GenomeAttribution]:
        """Return the committed per-genome day P&L rows, by (account, day, genome id).

        Parameters
        ----------
        account, genome_id:
            Only this account / this genome (every one when ``None``).
        start, end:
            Only the days in ``[start, end]`` (both included; open when ``None``).
        """
        sql = (
            "SELECT a.account, a.day, a.genome_id, a.pnl, c.money_digits FROM attribution a "
            "JOIN accounts c ON c.account = a.account WHERE 1 = 1"
        )
        where, params = _genome_filter("a.", account, genome_id, start, end)
        rows = self._query(sql + where + " ORDER BY a.account, a.day, a.genome_id", params)
        return [
            GenomeAttribution(
                account=r["account"],
                day=date.fromisoformat(r["day"]),
                genome_id=r["genome_id"],
                pnl=int(r["pnl"]),
                money_digits=int(r["money_digits"]),
            )
            for r in rows
        ]

    def is_attributed(self, account: str, day: date) -> bool:
        """Return whether ``account``'s committed ``day`` has a genome attribution."""
        rows = self._query(
            "SELECT attributed FROM days WHERE account = ? AND day = ?",
            (account, day.isoformat()),
        )
        return bool(rows) and bool(rows[0]["attributed"])

    def order_genomes(self, account: str, day: date | None = None) -> dict[str, GenomeShares]:
        """Return each order's genome shares by order id (``()`` for none), of one ``day``."""
        return self._genomes("orders", "order_id", account, day)

    def fill_genomes(self, account: str, day: date | None = None) -> dict[str, GenomeShares]:
        """Return each fill's genome shares by fill id (``()`` for none), of one ``day``."""
        return self._genomes("fills", "fill_id", account, day)

    def position_genomes(self, account: str, day: date) -> dict[str, GenomeShares]:
        """Return the genome shares of each position at ``day``'s close, by symbol."""
        return self._genomes("positions", "symbol", account, day)

    def positions(self, account: str, day: date) -> list[PositionSnapshot]:
        """Return the position snapshots of ``account`` at ``day``'s close, by symbol."""
        rows = self._query(
            "SELECT * FROM positions WHERE account = ? AND day = ? ORDER BY symbol",
            (account, day.isoformat()),
        )
        return [_position_from_row(r) for r in rows]

    def orders(self, account: str, day: date) -> list[OrderRecord]:
        """Return ``account``'s committed orders of ``day`` in their final state, by number."""
        rows = self._query(
            "SELECT * FROM orders WHERE account = ? AND day = ? ORDER BY seq",
            (account, day.isoformat()),
        )
        where = f"{self.path}: orders"
        return [
            OrderRecord(
                order_id=r["order_id"],
                seq=int(r["seq"]),
                symbol=r["symbol"],
                side=r["side"],
                quantity=int(r["quantity"]),
                filled=int(r["filled"]),
                status=r["status"],
                reason=r["reason"],
                filled_notional=int(r["filled_notional"]),
                commission=int(r["commission"]),
                taxes=int(r["taxes"]),
                decision_id=r["decision_id"],
                genomes=_shares_from_json(r["genomes"], f"{where} {r['order_id']}"),
            )
            for r in rows
        ]

    def risk_events(self, account: str, day: date) -> list[RiskEventRecord]:
        """Return ``account``'s committed risk events of ``day``, in the order they happened."""
        rows = self._query(
            "SELECT * FROM risk_events WHERE account = ? AND day = ? ORDER BY seq",
            (account, day.isoformat()),
        )
        return [
            RiskEventRecord(
                seq=int(r["seq"]),
                at=datetime.fromisoformat(r["at"]),
                order_id=r["order_id"],
                rule=r["rule"],
                reason=r["reason"],
                value=None if r["value"] is None else float(r["value"]),
                limit=None if r["limit_value"] is None else float(r["limit_value"]),
            )
            for r in rows
        ]

    def decisions(self, account: str, day: date | None = None) -> dict[str, dict[str, Any]]:
        """Return ``account``'s decision chains of ``day`` (of every day) by decision id.

        Ordered by (day, decision id): a day's plan comes before its ``-liquidation`` chain.
        """
        sql = "SELECT decision_id, payload FROM decisions WHERE account = ?"
        params: list[Any] = [account]
        if day is not None:
            sql += " AND day = ?"
            params.append(day.isoformat())
        rows = self._query(sql + " ORDER BY day, decision_id", params)
        return {r["decision_id"]: dict(json.loads(r["payload"])) for r in rows}

    def money_digits(self, account: str) -> int:
        """Return the decimal places of ``account``'s money (its minor units)."""
        return self.opening_state(account).units.money_digits

    def last_equities(self) -> dict[str, tuple[date, EquitySnapshot]]:
        """Return each account's equity snapshot at its last committed close, by account.

        Accounts without a committed day are left out (``{}`` on an empty ledger).
        """
        rows = self._query(
            "SELECT e.* FROM equity e "
            "WHERE e.day = (SELECT MAX(day) FROM days WHERE account = e.account) "
            "ORDER BY e.account"
        )
        return {r["account"]: (date.fromisoformat(r["day"]), _equity_from_row(r)) for r in rows}

    def daily_fill_counts(
        self, account: str, *, before: date, limit: int | None = None
    ) -> list[tuple[date, int]]:
        """Return ``(day, fills)`` of ``account``'s committed days before ``before``, in order.

        Parameters
        ----------
        limit:
            Only the last ``limit`` such days (every one when ``None``): the history a report
            takes a "typical" day's fill count from.
        """
        sql = "SELECT day, n_fills FROM days WHERE account = ? AND day < ? ORDER BY day DESC"
        params: list[Any] = [account, before.isoformat()]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        rows = self._query(sql, params)
        return [(date.fromisoformat(r["day"]), int(r["n_fills"])) for r in reversed(rows)]

    def last_buy_at(self, account: str, symbol: str, *, before: date) -> datetime | None:
        """Return the time of ``account``'s last buy fill of ``symbol`` before day ``before``.

        ``None`` when the account never bought the name before that day. A report's entry
        time of a position closed on ``before`` (its entry price is the average cost of the
        position at the previous close, :meth:`close_before`).
        """
        rows = self._query(
            "SELECT MAX(at) AS at FROM fills WHERE account = ? AND symbol = ? AND side = 'buy' "
            "AND day < ?",
            (account, symbol, before.isoformat()),
        )
        value = rows[0]["at"] if rows else None
        return None if value is None else datetime.fromisoformat(value)

    def table_columns(self, table: str) -> tuple[str, ...]:
        """Return the stored columns of ``table`` (one of :data:`READABLE_TABLES`), in order.

        Raises
        ------
        LedgerError
            If ``table`` is not one of :data:`READABLE_TABLES`.
        """
        self._readable(table)
        return tuple(r["name"] for r in self._query(f"PRAGMA table_info({table})"))

    def table_rows(self, table: str, *, day: date | None = None) -> list[dict[str, Any]]:
        """Return the stored rows of ``table`` as ``column -> value`` dicts (the export).

        The rows as the ledger holds them: money and quantities in minor units, prices as
        decimal text, JSON (payloads, genome shares) as text, times as ISO text, in the
        columns of :meth:`table_columns`. For the files that carry the ledger's rows as they
        are (the daily report's Parquet tables) and the period reports' frames; everything
        else reads the typed records above. Only the rows of committed days are returned (a
        day is in the ledger iff its ``days`` row is; :meth:`verify` reports any other row as
        ``orphan_row``).

        Parameters
        ----------
        table:
            One of :data:`READABLE_TABLES`; the rows come ordered by its key there.
        day:
            Only this day's rows (not for ``accounts``).

        Raises
        ------
        LedgerError
            If ``table`` is not one of :data:`READABLE_TABLES`, or ``day`` is given for
            ``accounts``.
        """
        key = self._readable(table)
        sql = f"SELECT t.* FROM {table} t WHERE 1 = 1"
        params: list[Any] = []
        if table not in ("accounts", "days"):
            sql += (
                " AND EXISTS (SELECT 1 FROM days d WHERE d.account = t.account AND d.day = t.day)"
            )
        if day is not None:
            if table == "accounts":
                raise LedgerError(f"{self.path}: table accounts has no day")
            sql += " AND t.day = ?"
            params.append(day.isoformat())
        order = ", ".join(f"t.{column}" for column in key)
        return [dict(r) for r in self._query(f"{sql} ORDER BY {order}", params)]

    def _readable(self, table: str) -> tuple[str, ...]:
        if table not in READABLE_TABLES:
            raise LedgerError(
                f"{self.path}: no table {table!r} to read (tables: {', '.join(READABLE_TABLES)})"
            )
        return READABLE_TABLES[table]

    # ------------------------------------------------------------------ genome days
    def is_reviewed(self, account: str, day: date) -> bool:
        """Return whether the review stage wrote ``account``'s genome days of ``day``.

        ``False`` for a day committed but not reviewed yet (a crash between the commit and the
        review, a ``--force`` replacement) and for a day that is not committed.
        """
        rows = self._query(
            "SELECT reviewed FROM days WHERE account = ? AND day = ?",
            (account, day.isoformat()),
        )
        return bool(rows) and bool(rows[0]["reviewed"])

    def write_genome_days(self, account: str, day: date, rows: Sequence[GenomeDay]) -> None:
        """Replace ``account``'s genome days of the committed ``day`` in one transaction.

        The day is marked reviewed (:meth:`is_reviewed`) even when ``rows`` is empty (no
        genome traded). :meth:`replace_day` deletes a day's genome days and clears the mark,
        so a ``--force`` replacement is reviewed again.

        Raises
        ------
        LedgerError
            If the day is not committed, a row is of another account or day, a genome id
            repeats, or a row's ``pnl`` is not the genome's committed attribution of the day
            (nothing is written).
        """
        iso = day.isoformat()
        where = f"{self.path}: genome days of {account} {iso}"
        ids = [row.genome_id for row in rows]
        if len(set(ids)) != len(ids):
            raise LedgerError(f"{where}: genome ids repeat: {sorted(ids)}")
        for row in rows:
            if row.account != account or row.day != day:
                raise LedgerError(f"{where}: a row is of {row.account} {row.day.isoformat()}")
        with self._transaction() as conn:
            if not self._day_row(conn, account, day):
                raise LedgerError(f"{where}: the day is not committed")
            digits = self.money_digits(account)
            attributed = {
                r["genome_id"]: int(r["pnl"])
                for r in conn.execute(
                    "SELECT genome_id, pnl FROM attribution WHERE account = ? AND day = ?",
                    (account, iso),
                ).fetchall()
            }
            for row in rows:
                stored = attributed.get(row.genome_id, 0)
                if money_from_float(row.pnl, digits) != stored:
                    raise LedgerError(
                        f"{where}: {row.genome_id} pnl {row.pnl!r} is not its attributed P&L "
                        f"({stored} minor units)"
                    )
            conn.execute("DELETE FROM genome_days WHERE account = ? AND day = ?", (account, iso))
            marks = ", ".join("?" for _ in _GENOME_DAY_COLUMNS)
            conn.executemany(
                f"INSERT INTO genome_days ({', '.join(_GENOME_DAY_COLUMNS)}) VALUES ({marks})",
                [
                    tuple(row.to_dict()[name] for name in _GENOME_DAY_COLUMNS)
                    for row in sorted(rows, key=lambda r: r.genome_id)
                ],
            )
            names = _review_columns(conn)
            review = _review_link(
                account, iso, names, _review_lines(conn, names, account, iso).get(iso, [])
            )
            conn.execute(
                "UPDATE days SET reviewed = 1, review_hash = ? WHERE account = ? AND day = ?",
                (review, account, iso),
            )

    def genome_days(
        self,
        account: str | None = None,
        *,
        genome_id: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[GenomeDay]:
        """Return the stored genome days, ordered by (account, day, genome id).

        Parameters
        ----------
        account, genome_id:
            Only this account / this genome (every one when ``None``).
        start, end:
            Only the days in ``[start, end]`` (both included; open when ``None``).
        """
        sql = f"SELECT {', '.join(_GENOME_DAY_COLUMNS)} FROM genome_days WHERE 1 = 1"
        where, params = _genome_filter("", account, genome_id, start, end)
        rows = self._query(sql + where + " ORDER BY account, day, genome_id", params)
        return [_genome_day_from_row(r) for r in rows]

    def _genomes(
        self, table: str, key: str, account: str, day: date | None
    ) -> dict[str, GenomeShares]:
        sql = f"SELECT {key} AS key, genomes FROM {table} WHERE account = ?"
        params: list[Any] = [account]
        if day is not None:
            sql += " AND day = ?"
            params.append(day.isoformat())
        return {
            r["key"]: _shares_from_json(r["genomes"], f"{self.path}: {table} {r['key']}")
            for r in self._query(sql + " ORDER BY day, " + key, params)
        }

    # ------------------------------------------------------------------ recovery
    def restore_state(self, account: str, *, before: date | None = None) -> AccountState:
        """Rebuild ``account``'s books by replaying its committed fills.

        Parameters
        ----------
        account:
            A registered account.
        before:
            Replay only the days before this one (the books to recompute ``before`` with
            ``--force``); all committed days when ``None``.

        Returns
        -------
        AccountState
            The books at the end of the last replayed day (``day`` set to it), with the next
            order and fill numbers following the ledger's.

        Raises
        ------
        LedgerCorrupted
            If the replay does not reproduce the last day's equity or position snapshot.
        """
        state = self.opening_state(account)
        days = [d for d in self.committed_days(account) if before is None or d < before]
        if not days:
            return state
        last = days[-1].isoformat()
        rows = self._query(
            "SELECT f.* FROM fills f JOIN days d ON d.account = f.account AND d.day = f.day "
            "WHERE f.account = ? AND f.day <= ? ORDER BY f.seq",
            (account, last),
        )
        try:
            state = _REPLAYS.fold(str(self.path), state, rows)
        except (DuplicateFill, FillSequenceError, InvariantViolation) as exc:
            raise LedgerCorrupted(f"{self.path}: replaying {account}: {exc}") from exc
        state = start_day(state, days[-1])
        last_order = self._query(
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM orders WHERE account = ? AND day <= ?",
            (account, last),
        )[0]["seq"]
        state = replace(state, last_order_seq=int(last_order))
        problems = self._compare_day(account, days[-1], state)
        if problems:
            raise LedgerCorrupted(
                f"{self.path}: {account} does not replay to its {last} snapshot: "
                + "; ".join(p.detail for p in problems)
            )
        return state

    def _compare_day(self, account: str, day: date, state: AccountState) -> list[VerifyIssue]:
        iso = day.isoformat()
        issues: list[VerifyIssue] = []
        rows = self._query("SELECT * FROM equity WHERE account = ? AND day = ?", (account, iso))
        if not rows:
            return [VerifyIssue(kind="orphan_row", account=account, day=day,
                                detail="committed day has no equity snapshot")]  # fmt: skip
        snap = rows[0]
        if int(snap["cash"]) != state.cash:
            issues.append(
                VerifyIssue(
                    kind="cash_mismatch",
                    account=account,
                    day=day,
                    detail=f"snapshot cash {snap['cash']} != cash from fills {state.cash}",
                )
            )
        derived = (state.realised_pnl, state.commission_paid, state.taxes_paid)
        stored = (int(snap["realised_pnl"]), int(snap["commission_paid"]), int(snap["taxes_paid"]))
        if derived != stored:
            issues.append(
                VerifyIssue(
                    kind="totals_mismatch",
                    account=account,
                    day=day,
                    detail=f"snapshot (realised, commission, taxes) {stored} != from fills "
                    f"{derived}",
                )
            )
        if int(snap["equity"]) != int(snap["cash"]) + int(snap["market_value"]):
            issues.append(
                VerifyIssue(
                    kind="snapshot_inconsistent",
                    account=account,
                    day=day,
                    detail=f"equity {snap['equity']} != cash {snap['cash']} + market value "
                    f"{snap['market_value']}",
                )
            )
        position_rows = self._query(
            "SELECT * FROM positions WHERE account = ? AND day = ? ORDER BY symbol",
            (account, iso),
        )
        stored_positions = {
            r["symbol"]: (int(r["quantity"]), int(r["sellable"]), int(r["cost_basis"]))
            for r in position_rows
        }
        derived_positions = {
            p.symbol: (p.quantity, p.sellable, p.cost_basis) for p in state.positions
        }
        for symbol in sorted(set(stored_positions) | set(derived_positions)):
            if stored_positions.get(symbol) != derived_positions.get(symbol):
                issues.append(
                    VerifyIssue(
                        kind="position_mismatch",
                        account=account,
                        day=day,
                        detail=f"{symbol}: snapshot (qty, sellable, cost) "
                        f"{stored_positions.get(symbol)} != from fills "
                        f"{derived_positions.get(symbol)}",
                    )
                )
        market_value = 0
        for r in position_rows:
            value = notional_minor(int(r["quantity"]), Decimal(r["price"]), state.units)
            market_value += int(r["value"])
            if value != int(r["value"]):
                issues.append(
                    VerifyIssue(
                        kind="snapshot_inconsistent",
                        account=account,
                        day=day,
                        detail=f"{r['symbol']}: value {r['value']} != quantity x price {value}",
                    )
                )
        if market_value != int(snap["market_value"]):
            issues.append(
                VerifyIssue(
                    kind="snapshot_inconsistent",
                    account=account,
                    day=day,
                    detail=f"market value {snap['market_value']} != sum of position values "
                    f"{market_value}",
                )
            )
        return issues

    # ------------------------------------------------------------------ verify
    def recorded_days(self) -> list[date]:
        """Return every day any account committed, in order: the ledger's own calendar.

        :meth:`verify` given it reports an account's day missing between two of its committed
        days that another account committed (a ``days`` row deleted from one account).
        """
        rows = self._query("SELECT DISTINCT day FROM days ORDER BY day")
        return [date.fromisoformat(r["day"]) for r in rows]

    def verify(self, calendar: Sequence[date] | None = None) -> VerifyReport:
        """Re-derive every account from its fills and compare with what was committed.

        Parameters
        ----------
        calendar:
            The market's trading days (or :meth:`recorded_days`); when given, a trading day
            missing between two committed days of an account is reported as a ``day_gap``.

        Returns
        -------
        VerifyReport
            ``ok`` and every issue found: a broken hash chain (``chain_mismatch``: a day's
            rows, or its link to the previous day, changed since its commit), snapshot
            differences (cash, positions, totals), duplicate fill ids, gaps in order or fill
            numbers, missing trading days, rows of uncommitted days, fills that disagree with
            their order or their own price, orders whose status their fills cannot explain
            (``order_state_invalid``), orders whose decision is missing
            (``decision_mismatch``), malformed risk events (``risk_event_invalid``), one
            symbol marked at two prices on one day (``mark_mismatch``), genome days whose
            P&L is not their attribution or that are not what the review hashed
            (``genome_day_mismatch``).
        """
        return self._verify(calendar, incremental=False)

    def verify_before_trading(
        self, calendar: Sequence[date] | None = None, *, full_chain: bool = True
    ) -> VerifyReport:
        """Verify the ledger at the start of a trading command; raise :class:`LedgerBroken`.

        Incremental: the checks of :meth:`verify` run on the days after the last day this
        method verified (its mark in ``meta``, trusted only while that day's stored hash is
        the one verified), each account's last day always included, from the books of the
        verified close; the hash chain is recomputed in full, so an edit of any older day's
        rows still shows. A clean ledger moves the marks to the accounts' last days.

        Parameters
        ----------
        calendar:
            The trading days a ``day_gap`` is looked for in; ``None``: the ledger's own
            :meth:`recorded_days` (read in the verification's transaction).
        full_chain:
            ``False`` re-links only the days after the mark too: for the days of one season
            replay after its start-up check, when the days before the mark are the ones that
            check read (an edit made to them meanwhile shows at the next command's start).

        Raises
        ------
        LedgerBroken
            If an issue is found (its message is the one-line refusal; nothing is written).
        """
        report = self._verify(
            calendar, incremental=True, full_chain=full_chain, recorded=calendar is None
        )
        if not report.ok:
            raise LedgerBroken(
                report.refusal(self.path, inspect="alphaloop ledger verify --json"), report
            )
        marks = {
            f"{_VERIFIED_KEY}{account}": f"{day.isoformat()} {digest}"
            for account, day, digest in report.chain_heads
        }
        stored = {
            r["key"]: r["value"]
            for r in self._query("SELECT key, value FROM meta WHERE key LIKE 'verified:%'")
        }
        if any(stored.get(key) != value for key, value in marks.items()):
            with self._transaction() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", sorted(marks.items())
                )
        return report

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        # One read transaction: every query of a verification sees the same committed file,
        # even while another process commits a day.
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _verify(
        self,
        calendar: Sequence[date] | None,
        *,
        incremental: bool,
        full_chain: bool = True,
        recorded: bool = False,
    ) -> VerifyReport:
        with self._snapshot():
            if recorded:
                calendar = self.recorded_days()
            return self._verify_snapshot(calendar, incremental=incremental, full_chain=full_chain)

    def _verify_snapshot(
        self, calendar: Sequence[date] | None, *, incremental: bool, full_chain: bool
    ) -> VerifyReport:
        issues: list[VerifyIssue] = []
        days_checked = 0
        days_chained = 0
        days_unattributed = 0
        fills_checked = 0
        heads: list[tuple[str, date, str]] = []
        accounts = self.accounts()
        for row in self._query(
            "SELECT account, fill_id, COUNT(*) AS n FROM fills GROUP BY fill_id HAVING n > 1"
        ):
            issues.append(
                VerifyIssue(
                    kind="duplicate_fill",
                    account=row["account"],
                    day=None,
                    detail=f"fill id {row['fill_id']} appears {row['n']} times",
                )
            )
        columns = _chain_columns(self._conn)
        plans: list[tuple[str, list[date], date | None]] = []
        for account in accounts:
            days = self.committed_days(account)
            mark = self._mark(account) if incremental else None
            chain, head, links = self._verify_chain(
                account, columns, after=None if full_chain else mark
            )
            days_chained += links
            if head is not None:
                heads.append((account, *head))
            issues.extend(chain)
            # Days up to ``trusted`` were verified before and hash as they did then; the
            # account's last day is checked again in any case.
            trusted = None
            if mark is not None and not chain and len(days) >= 2:
                trusted = min(mark[0], days[-2])
            plans.append((account, days, trusted))
        trusted_days = [trusted for _, _, trusted in plans]
        earliest = None if None in trusted_days else min(d for d in trusted_days if d is not None)
        issues.extend(self._verify_marks(after=earliest))
        for account, days, trusted in plans:
            state = self.opening_state(account)
            previous_equity: int | None = state.cash
            if trusted is not None:
                try:
                    state, previous_equity = self._verified_books(account, trusted)
                except (InvariantViolation, LedgerCorrupted, ValueError):
                    # Edited behind the mark since it was set: check every day instead.
                    trusted, previous_equity = None, state.cash
            issues.extend(self._verify_numbers(account))
            issues.extend(self._verify_orphans(account))
            issues.extend(self._verify_genome_days(account, after=trusted))
            issues.extend(self._verify_reviews(account, after=None if full_chain else trusted))
            issues.extend(_calendar_gaps(account, days, calendar))
            after = "" if trusted is None else trusted.isoformat()
            fill_rows: dict[str, list[sqlite3.Row]] = {}
            for r in self._query(
                "SELECT * FROM fills WHERE account = ? AND day > ? ORDER BY day, seq, rowid",
                (account, after),
            ):
                fill_rows.setdefault(r["day"], []).append(r)
            for day in days:
                if trusted is not None and day <= trusted:
                    continue
                iso = day.isoformat()
                days_checked += 1
                found, attributed, previous_equity = self._verify_attribution(
                    account, day, previous_equity
                )
                issues.extend(found)
                days_unattributed += not attributed
                fills: list[FillEvent] = []
                try:
                    for r in fill_rows.get(iso, []):
                        fill = _fill_from_row(r)
                        fills.append(fill)
                        fills_checked += 1
                        expected = notional_minor(fill.quantity, fill.price, state.units)
                        if expected != fill.notional:
                            issues.append(
                                VerifyIssue(
                                    kind="fill_inconsistent",
                                    account=account,
                                    day=day,
                                    detail=f"fill {fill.fill_id}: notional {fill.notional} != "
                                    f"quantity x price {expected}",
                                )
                            )
                        # Renumbered so that a gap (reported above) does not stop the replay.
                        renumbered = replace(fill, fill_seq=state.last_fill_seq + 1)
                        state = apply_fill(state, renumbered)
                except (InvariantViolation, FillSequenceError, ValueError) as exc:
                    issues.append(
                        VerifyIssue(kind="replay_error", account=account, day=day, detail=str(exc))
                    )
                    break
                state = start_day(state, day)
                issues.extend(self._compare_day(account, day, state))
                issues.extend(self._verify_orders(account, day))
                issues.extend(self._verify_order_states(account, day, fills))
                issues.extend(self._verify_decisions(account, day))
                issues.extend(self._verify_risk_events(account, day))
        return VerifyReport(
            accounts=tuple(accounts),
            days_checked=days_checked,
            fills_checked=fills_checked,
            issues=tuple(issues),
            days_unattributed=days_unattributed,
            days_chained=days_chained,
            chain_heads=tuple(heads),
        )

    def _mark(self, account: str) -> tuple[date, str] | None:
        """Return the day and hash :meth:`verify_before_trading` last verified ``account``
        through, while that day is committed with that hash (``None`` otherwise)."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (_VERIFIED_KEY + account,))
        if not rows:
            return None
        iso, _, digest = str(rows[0]["value"]).partition(" ")
        stored = self._query(
            "SELECT chain_hash FROM days WHERE account = ? AND day = ?", (account, iso)
        )
        if not stored or stored[0]["chain_hash"] != digest:
            return None
        try:
            return date.fromisoformat(iso), digest
        except ValueError:
            return None

    def _verified_books(self, account: str, day: date) -> tuple[AccountState, int]:
        """Return the books and equity at the verified close of ``day``, from its snapshot.

        The snapshot matched the replay of the fills when it was verified and still hashes as
        it did, so the books it holds are the replay's: the verification goes on from them.
        """
        iso = day.isoformat()
        opening = self.opening_state(account)
        snap = self._query("SELECT * FROM equity WHERE account = ? AND day = ?", (account, iso))
        if not snap:
            raise LedgerCorrupted(f"{self.path}: {account} {iso} has no equity snapshot")
        equity = _equity_from_row(snap[0])
        held = tuple(
            Position(
                symbol=p.symbol, quantity=p.quantity, sellable=p.sellable,
                cost_basis=p.cost_basis,
            )
            for p in self.positions(account, day)
        )  # fmt: skip
        count = self._query(
            "SELECT COUNT(*) AS n FROM fills f JOIN days d ON d.account = f.account "
            "AND d.day = f.day WHERE f.account = ? AND f.day <= ?",
            (account, iso),
        )[0]["n"]
        state = replace(
            opening, cash=equity.cash, positions=held, realised_pnl=equity.realised_pnl,
            commission_paid=equity.commission_paid, taxes_paid=equity.taxes_paid, day=day,
            last_fill_seq=int(count),
        )  # fmt: skip
        return state, equity.equity

    def _verify_chain(
        self,
        account: str,
        columns: Mapping[str, tuple[str, ...]],
        *,
        after: tuple[date, str] | None = None,
    ) -> tuple[list[VerifyIssue], tuple[date, str] | None, int]:
        """Recompute the links of ``account``'s chain from the rows as stored.

        Each day's hash must be the hash of its rows linked to the stored hash of the
        account's previous committed day, so an edited, added or deleted row shows at its
        day, and a deleted day at the next committed one. ``after``: a verified (day, hash)
        the links after which are the only ones recomputed. Returns the issues, the head
        (last day and its stored hash) and the number of links checked.
        """
        first = "" if after is None else after[0].isoformat()
        lines = _day_lines(self._conn, columns, account, after=first)
        rows = self._query(
            "SELECT day, chain_hash FROM days WHERE account = ? AND day > ? ORDER BY day",
            (account, first),
        )
        issues = []
        previous, previous_day = (CHAIN_GENESIS, None) if after is None else (after[1], first)
        for r in rows:
            own = lines.get(r["day"], [])
            if previous_day is None:
                own = own + _account_line(self._conn, columns, account)
            expected = _link(previous, columns, own)
            stored = str(r["chain_hash"])
            if stored != expected:
                linked = "the account's first day" if previous_day is None else previous_day
                issues.append(
                    VerifyIssue(
                        kind="chain_mismatch",
                        account=account,
                        day=date.fromisoformat(r["day"]),
                        detail=f"stored hash {stored[:12] or '(none)'} != {expected[:12]} "
                        f"recomputed from the day's {len(own)} rows linked to {linked}: a row "
                        "of the day was edited, added or deleted after its commit, or the day "
                        "it was linked to was deleted or hashed again",
                    )
                )
            previous, previous_day = stored, r["day"]
        if rows:
            head: tuple[date, str] | None = (date.fromisoformat(rows[-1]["day"]), previous)
        else:
            head = None if after is None else after
        return issues, head, len(rows)

    def _verify_reviews(self, account: str, *, after: date | None = None) -> list[VerifyIssue]:
        """Check each day's genome days (after ``after``) against the review's stored hash."""
        names = _review_columns(self._conn)
        first = "" if after is None else after.isoformat()
        lines = _review_lines(self._conn, names, account, after=first)
        issues = []
        for r in self._query(
            "SELECT day, reviewed, review_hash FROM days WHERE account = ? AND day > ? "
            "ORDER BY day",
            (account, first),
        ):
            own = lines.get(r["day"], [])
            expected = _review_link(account, r["day"], names, own) if r["reviewed"] else ""
            if str(r["review_hash"]) != expected:
                issues.append(
                    VerifyIssue(
                        kind="genome_day_mismatch",
                        account=account,
                        day=date.fromisoformat(r["day"]),
                        detail=f"the day's {len(own)} genome days (reviewed={r['reviewed']}) do "
                        "not hash to what the review stored: edited, added or deleted after it",
                    )
                )
        return issues

    def _verify_marks(self, *, after: date | None = None) -> list[VerifyIssue]:
        """Check that each symbol is marked at one price per day (after ``after``) in every
        account.

        Every account closes at the same closes, so two marks of one symbol on one day mean
        an edited mark. With a majority price the other accounts are named, else all.
        """
        marks: dict[tuple[str, str, str], dict[Decimal, list[str]]] = {}
        for r in self._query(
            "SELECT p.account, p.day, p.symbol, p.price, a.currency FROM positions p "
            "JOIN days d ON d.account = p.account AND d.day = p.day "
            "JOIN accounts a ON a.account = p.account WHERE p.day > ? "
            "ORDER BY p.day, p.symbol, p.account",
            ("" if after is None else after.isoformat(),),
        ):
            try:
                price = Decimal(r["price"])
            except (ArithmeticError, TypeError, ValueError):
                continue  # reported by the snapshot check
            key = (r["day"], r["symbol"], r["currency"])
            marks.setdefault(key, {}).setdefault(price, []).append(r["account"])
        issues = []
        for (day, symbol, _), prices in marks.items():
            if len(prices) < 2:
                continue
            total = sum(len(names) for names in prices.values())
            majority = [p for p, names in prices.items() if 2 * len(names) > total]
            shown = ", ".join(f"{p} ({', '.join(n)})" for p, n in sorted(prices.items()))
            for price, names in sorted(prices.items()):
                if majority and price == majority[0]:
                    continue
                for name in names:
                    issues.append(
                        VerifyIssue(
                            kind="mark_mismatch",
                            account=name,
                            day=date.fromisoformat(day),
                            detail=f"{symbol} marked at {price}; the accounts' marks of the "
                            f"day: {shown}",
                        )
                    )
        return issues

    def _verify_order_states(
        self, account: str, day: date, fills: Sequence[FillEvent]
    ) -> list[VerifyIssue]:
        """Rebuild each order of the day through the state machine from its fills.

        An order lives one day, so its stored status is terminal: ``rejected`` (no fill),
        ``filled`` (filled in full), ``expired`` or ``cancelled`` (what was left); its
        filled quantity, value and fees are its fills' (:data:`arena.orders.TRANSITIONS`).
        """
        by_order: dict[str, list[FillEvent]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        issues = []
        for r in self._query(
            "SELECT * FROM orders WHERE account = ? AND day = ? ORDER BY seq",
            (account, day.isoformat()),
        ):

            def issue(detail: str, order_id: str = r["order_id"]) -> VerifyIssue:
                return VerifyIssue(
                    kind="order_state_invalid",
                    account=account,
                    day=day,
                    detail=f"order {order_id}: {detail}",
                )

            try:
                stored = Order(
                    account=r["account"], order_id=r["order_id"], seq=int(r["seq"]), day=day,
                    symbol=r["symbol"], side=r["side"], quantity=int(r["quantity"]),
                    status=r["status"], filled=int(r["filled"]),
                    filled_notional=int(r["filled_notional"]), commission=int(r["commission"]),
                    taxes=int(r["taxes"]), reason=r["reason"], decision_id=r["decision_id"],
                )  # fmt: skip
            except (TypeError, ValueError) as exc:
                issues.append(issue(str(exc)))
                continue
            own = by_order.pop(stored.order_id, [])
            if stored.status not in (
                OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.EXPIRED,
                OrderStatus.CANCELLED,
            ):  # fmt: skip
                issues.append(issue(f"status {stored.status} is not final (an order lives a day)"))
                continue
            rebuilt = replace(
                stored, status=OrderStatus.NEW, filled=0, filled_notional=0, commission=0,
                taxes=0, reason="",
            )  # fmt: skip
            try:
                if stored.status == OrderStatus.REJECTED:
                    rebuilt = transition(rebuilt, OrderStatus.REJECTED, reason=stored.reason)
                    if own:
                        raise InvalidTransition(f"rejected with {len(own)} fill(s)")
                else:
                    rebuilt = transition(rebuilt, OrderStatus.ACCEPTED)
                    for fill in own:
                        rebuilt = apply_fill_to_order(rebuilt, fill)
                    if stored.status != rebuilt.status:
                        rebuilt = transition(rebuilt, stored.status, reason=stored.reason)
            except (InvalidTransition, FillSequenceError, DuplicateFill) as exc:
                issues.append(
                    issue(f"status {stored.status} does not follow from its fills: {exc}")
                )
                continue
            derived = (rebuilt.filled, rebuilt.filled_notional, rebuilt.commission, rebuilt.taxes)
            kept = (stored.filled, stored.filled_notional, stored.commission, stored.taxes)
            if derived != kept:
                issues.append(
                    issue(f"(filled, value, commission, taxes) {kept} != from its fills {derived}")
                )
        for order_id in sorted(by_order):
            issues.append(
                VerifyIssue(
                    kind="order_state_invalid",
                    account=account,
                    day=day,
                    detail=f"{len(by_order[order_id])} fill(s) of order {order_id}, which is not "
                    "an order of the day",
                )
            )
        return issues

    def _verify_decisions(self, account: str, day: date) -> list[VerifyIssue]:
        """Check the day's decision chains: canonical JSON objects, one for every order."""
        iso = day.isoformat()

        def issue(detail: str) -> VerifyIssue:
            return VerifyIssue(kind="decision_mismatch", account=account, day=day, detail=detail)

        issues = []
        stored = set()
        for r in self._query(
            "SELECT decision_id, payload FROM decisions WHERE account = ? AND day = ?",
            (account, iso),
        ):
            stored.add(r["decision_id"])
            try:
                payload = json.loads(r["payload"])
            except (TypeError, ValueError) as exc:
                issues.append(issue(f"decision {r['decision_id']}: payload is not JSON ({exc})"))
                continue
            if not isinstance(payload, dict):
                issues.append(issue(f"decision {r['decision_id']}: payload is not a JSON object"))
            elif (
                DecisionRecord(decision_id=r["decision_id"], payload=payload).to_json()
                != r["payload"]
            ):
                issues.append(issue(f"decision {r['decision_id']}: payload is not canonical JSON"))
        for r in self._query(
            "SELECT order_id, decision_id FROM orders WHERE account = ? AND day = ? "
            "AND decision_id IS NOT NULL ORDER BY seq",
            (account, iso),
        ):
            if r["decision_id"] not in stored:
                issues.append(
                    issue(
                        f"order {r['order_id']} points to decision {r['decision_id']}, which is "
                        "not stored on the day"
                    )
                )
        return issues

    def _verify_risk_events(self, account: str, day: date) -> list[VerifyIssue]:
        """Check the day's risk events: numbered 1..n, timed on the day, about this account."""

        def issue(detail: str) -> VerifyIssue:
            return VerifyIssue(kind="risk_event_invalid", account=account, day=day, detail=detail)

        rows = self._query(
            "SELECT * FROM risk_events WHERE account = ? AND day = ? ORDER BY seq",
            (account, day.isoformat()),
        )
        issues = []
        numbers = [int(r["seq"]) for r in rows]
        if numbers != list(range(1, len(numbers) + 1)):
            issues.append(issue(f"risk event numbers {numbers[:10]} are not 1..{len(numbers)}"))
        for r in rows:
            where = f"risk event {r['seq']}"
            try:
                at = datetime.fromisoformat(str(r["at"]))
            except ValueError:
                issues.append(issue(f"{where}: time {r['at']!r} is not ISO"))
            else:
                if abs((at.date() - day).days) > 1:
                    issues.append(issue(f"{where}: at {r['at']} is not on the day"))
            if r["order_id"] is not None and not str(r["order_id"]).startswith(f"{account}-"):
                issues.append(issue(f"{where}: order {r['order_id']!r} is not of {account}"))
            if not (isinstance(r["rule"], str) and r["rule"]) or not isinstance(r["reason"], str):
                issues.append(issue(f"{where}: rule {r['rule']!r} / reason {r['reason']!r}"))
            for name in ("value", "limit_value"):
                value = r[name]
                if value is not None and not (
                    isinstance(value, int | float) and math.isfinite(value)
                ):
                    issues.append(issue(f"{where}: {name} {value!r} is not a finite number"))
        return issues

    def _verify_attribution(
        self, account: str, day: date, previous_equity: int | None
    ) -> tuple[list[VerifyIssue], bool, int | None]:
        """Check ``day``'s attribution; return the issues, whether it is attributed, its equity.

        A day without the ``attributed`` mark (migrated from schema 1, or committed without an
        attribution) is not an issue as long as it has no attribution rows either.
        """
        iso = day.isoformat()

        def issue(detail: str) -> VerifyIssue:
            return VerifyIssue(kind="attribution_mismatch", account=account, day=day, detail=detail)

        issues: list[VerifyIssue] = []
        flag = self._query(
            "SELECT attributed FROM days WHERE account = ? AND day = ?", (account, iso)
        )
        attributed = bool(flag) and bool(flag[0]["attributed"])
        rows = self._query(
            "SELECT genome_id, pnl FROM attribution WHERE account = ? AND day = ?", (account, iso)
        )
        snap = self._query(
            "SELECT equity FROM equity WHERE account = ? AND day = ?", (account, iso)
        )
        equity = int(snap[0]["equity"]) if snap else None
        if not attributed:
            if rows:
                issues.append(issue(f"{len(rows)} attribution rows on a day marked unattributed"))
        elif equity is not None and previous_equity is not None:
            total = sum(int(r["pnl"]) for r in rows)
            if total != equity - previous_equity:
                issues.append(
                    issue(
                        f"attribution rows sum to {total}, the equity moved by "
                        f"{equity - previous_equity} ({previous_equity} -> {equity})"
                    )
                )
        for table, key in (("orders", "order_id"), ("fills", "fill_id"), ("positions", "symbol")):
            for r in self._query(
                f"SELECT {key} AS key, genomes FROM {table} WHERE account = ? AND day = ?",
                (account, iso),
            ):
                try:
                    shares = _shares_from_json(r["genomes"], f"{table} {r['key']}")
                except ValueError as exc:
                    issues.append(issue(str(exc)))
                    continue
                if shares and not attributed:
                    issues.append(issue(f"{table} {r['key']} has genomes on an unattributed day"))
        return issues, attributed, equity

    def _verify_genome_days(self, account: str, *, after: date | None = None) -> list[VerifyIssue]:
        """Check each stored genome day: its own invariants and its P&L against attribution.

        A genome day's ``pnl`` is the genome's attribution row of the day (0 without a row),
        so an edited P&L on either side shows; a row on a day not marked reviewed is one the
        review did not write.
        """
        digits = self.money_digits(account)
        rows = self._query(
            f"SELECT {', '.join('g.' + c for c in _GENOME_DAY_COLUMNS)}, a.pnl AS attributed, "
            "d.reviewed FROM genome_days g "
            "LEFT JOIN attribution a ON a.account = g.account AND a.day = g.day "
            "AND a.genome_id = g.genome_id "
            "LEFT JOIN days d ON d.account = g.account AND d.day = g.day "
            "WHERE g.account = ? AND g.day > ? ORDER BY g.day, g.genome_id",
            (account, "" if after is None else after.isoformat()),
        )
        issues = []
        for r in rows:
            day = date.fromisoformat(r["day"])

            def issue(detail: str, day: date = day) -> VerifyIssue:
                return VerifyIssue(
                    kind="genome_day_mismatch", account=account, day=day, detail=detail
                )

            try:
                _genome_day_from_row(r)
            except (ValueError, TypeError, InvariantViolation) as exc:
                issues.append(issue(str(exc)))
            stored = 0 if r["attributed"] is None else int(r["attributed"])
            if money_from_float(float(r["pnl"]), digits) != stored:
                issues.append(
                    issue(
                        f"{r['genome_id']}: genome day pnl {r['pnl']!r} != its attribution "
                        f"{stored} minor units"
                    )
                )
            if r["reviewed"] is not None and not r["reviewed"]:
                issues.append(issue(f"{r['genome_id']}: genome day on a day not marked reviewed"))
        return issues

    def _verify_numbers(self, account: str) -> list[VerifyIssue]:
        issues = []
        for table in ("orders", "fills"):
            numbers = [
                int(r["seq"])
                for r in self._query(
                    f"SELECT seq FROM {table} WHERE account = ? ORDER BY seq",
                    (account,),
                )
            ]
            if numbers != list(range(1, len(numbers) + 1)):
                missing = sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
                repeated = sorted({n for n in numbers if numbers.count(n) > 1})
                issues.append(
                    VerifyIssue(
                        kind="sequence_gap",
                        account=account,
                        day=None,
                        detail=f"{table} numbers are not 1..{len(numbers)}: missing "
                        f"{missing[:10]}, repeated {repeated[:10]}",
                    )
                )
        return issues

    def _verify_orphans(self, account: str) -> list[VerifyIssue]:
        issues = []
        for table in _DAY_TABLES[:-1]:
            rows = self._query(
                f"SELECT DISTINCT t.day FROM {table} t LEFT JOIN days d "
                "ON d.account = t.account AND d.day = t.day "
                "WHERE t.account = ? AND d.day IS NULL",
                (account,),
            )
            for r in rows:
                issues.append(
                    VerifyIssue(
                        kind="orphan_row",
                        account=account,
                        day=date.fromisoformat(r["day"]),
                        detail=f"{table} has rows for a day that is not committed",
                    )
                )
        return issues

    def _verify_orders(self, account: str, day: date) -> list[VerifyIssue]:
        rows = self._query(
            "SELECT o.order_id, o.filled, o.filled_notional, "
            "COALESCE(SUM(f.quantity), 0) AS fq, COALESCE(SUM(f.notional), 0) AS fn "
            "FROM orders o LEFT JOIN fills f ON f.account = o.account AND f.order_id = o.order_id "
            "WHERE o.account = ? AND o.day = ? GROUP BY o.order_id",
            (account, day.isoformat()),
        )
        return [
            VerifyIssue(
                kind="order_mismatch",
                account=account,
                day=day,
                detail=f"order {r['order_id']}: filled {r['filled']} / {r['filled_notional']} "
                f"but its fills sum to {r['fq']} / {r['fn']}",
            )
            for r in rows
            if (int(r["filled"]), int(r["filled_notional"])) != (int(r["fq"]), int(r["fn"]))
        ]


def _genome_day_from_row(row: sqlite3.Row) -> GenomeDay:
    values = {name: row[name] for name in _GENOME_DAY_COLUMNS}
    values["day"] = date.fromisoformat(row["day"])
    for name in ("order_reject_count", "risk_block_count"):
        values[name] = int(values[name])
    return GenomeDay(**values)


def _account_from_row(row: sqlite3.Row) -> AccountRecord:
    return AccountRecord(
        account=row["account"],
        units=MoneyUnits(
            currency=row["currency"],
            money_digits=int(row["money_digits"]),
            price_digits=int(row["price_digits"]),
            quantity_digits=int(row["quantity_digits"]),
        ),
        t_plus_one=bool(row["t_plus_one"]),
        initial_cash=int(row["initial_cash"]),
    )


def _position_from_row(row: sqlite3.Row) -> PositionSnapshot:
    return PositionSnapshot(
        symbol=row["symbol"],
        quantity=int(row["quantity"]),
        sellable=int(row["sellable"]),
        cost_basis=int(row["cost_basis"]),
        price=Decimal(row["price"]),
        value=int(row["value"]),
    )


def _genome_filter(
    prefix: str,
    account: str | None,
    genome_id: str | None,
    start: date | None,
    end: date | None,
) -> tuple[str, list[Any]]:
    """Return the ``AND ...`` clauses and parameters of an (account, genome, days) filter."""
    sql = ""
    params: list[Any] = []
    for clause, value in (
        (f" AND {prefix}account = ?", account),
        (f" AND {prefix}genome_id = ?", genome_id),
        (f" AND {prefix}day >= ?", None if start is None else start.isoformat()),
        (f" AND {prefix}day <= ?", None if end is None else end.isoformat()),
    ):
        if value is not None:
            sql += clause
            params.append(value)
    return sql, params


def _equity_from_row(row: sqlite3.Row) -> EquitySnapshot:
    return EquitySnapshot(
        cash=int(row["cash"]),
        market_value=int(row["market_value"]),
        equity=int(row["equity"]),
        realised_pnl=int(row["realised_pnl"]),
        commission_paid=int(row["commission_paid"]),
        taxes_paid=int(row["taxes_paid"]),
    )


def _calendar_gaps(
    account: str, days: Sequence[date], calendar: Sequence[date] | None
) -> list[VerifyIssue]:
    if calendar is None or len(days) < 1:
        return []
    trading = sorted(set(calendar))
    position = {d: k for k, d in enumerate(trading)}
    issues = []
    for day in days:
        if day not in position:
            issues.append(
                VerifyIssue(
                    kind="day_gap",
                    account=account,
                    day=day,
                    detail="committed day is not a trading day of the calendar",
                )
            )
    known = [d for d in days if d in position]
    for first, second in pairwise(known):
        skipped = trading[position[first] + 1 : position[second]]
        if skipped:
            issues.append(
                VerifyIssue(
                    kind="day_gap",
                    account=account,
                    day=second,
                    detail=f"trading days {', '.join(d.isoformat() for d in skipped[:5])} "
                    f"missing between {first.isoformat()} and {second.isoformat()}",
                )
            )
    return issues
