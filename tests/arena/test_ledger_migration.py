"""Ledger schema migrations: a file written at schema 1 or 3 opens at schema 4 (1 -> 2 -> 3 -> 4),
intact, and hashed: the migration chains the days already stored, so an old home verifies."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from arena.book import mark_to_market, start_day, submit_order
from arena.ledger import (
    _MIGRATIONS,
    CHAIN_GENESIS,
    SCHEMA_VERSION,
    UNATTRIBUTED,
    DecisionRecord,
    Ledger,
    LedgerError,
    attribute_day,
    snapshots_from,
)
from arena.market import Bar
from arena.rules import BrokerRules
from arena.step import execute_order

V1_COLUMNS = {
    "orders": "account, order_id, seq, day, symbol, side, quantity, filled, status, reason, "
    "filled_notional, commission, taxes, decision_id",
    "fills": "fill_id, account, seq, order_id, day, at, symbol, side, quantity, price, notional, "
    "commission, taxes, remaining",
    "positions": "account, day, symbol, quantity, sellable, cost_basis, price, value",
    "equity": "*",
    "decisions": "*",
    "risk_events": "*",
    "days": "account, day, committed_at, n_orders, n_fills",
}
NEXT_DAY = date(2025, 7, 3)  # the fixture's last committed day is 2025-07-02
HEX64 = set("0123456789abcdef")


@pytest.fixture
def v1_ledger(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A copy of the ledger the schema-1 code wrote (2 days, 3 accounts); never the original."""
    copy = tmp_path / "ledger.sqlite"
    shutil.copyfile(fixtures_dir / "home_v1" / "ledger.sqlite", copy)
    return copy


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3").fetchall()
            for table, columns in V1_COLUMNS.items()
        }
    finally:
        conn.close()


def _version(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return str(row[0])
    finally:
        conn.close()


def _hashes(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT account, day, chain_hash, review_hash FROM days").fetchall()
        return {(a, d): (chain, review) for a, d, chain, review in rows}
    finally:
        conn.close()


def _columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_ledger_v1_fixture_opened_migrates_to_v4_with_old_rows_intact(v1_ledger: Path) -> None:
    assert _version(v1_ledger) == "1"
    old = _rows(v1_ledger)
    assert old["fills"] and len(old["days"]) == 6
    with Ledger(v1_ledger) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION == 4
        old_fills = {a: ledger.fills(a) for a in ledger.accounts()}
        report = ledger.verify(ledger.recorded_days())
        assert report.ok, report.to_dict()
        assert report.days_chained == 6
        # Migrated days have no attribution: counted, not an issue.
        assert report.days_unattributed == 6 and report.days_checked == 6
        assert ledger.attribution() == []
        assert not ledger.is_attributed("conservative", date(2025, 7, 2))
        assert set(ledger.position_genomes("conservative", date(2025, 7, 2)).values()) == {()}
        assert set(ledger.fill_genomes("conservative").values()) == {()}
        # Migrated days were never reviewed: no genome day, not marked.
        assert ledger.genome_days() == []
        assert not ledger.is_reviewed("conservative", date(2025, 7, 2))
        restored = ledger.restore_state("conservative")
        history = ledger.equity_history("conservative")
    assert _rows(v1_ledger) == old  # every schema-1 row, column for column
    assert _version(v1_ledger) == "4"
    for table in ("orders", "fills", "positions"):
        assert _columns(v1_ledger, table)[-1] == "genomes"
    assert _columns(v1_ledger, "days")[-4:] == [
        "attributed", "reviewed", "chain_hash", "review_hash"
    ]  # fmt: skip
    hashes = _hashes(v1_ledger)
    assert len(hashes) == 6 and all(len(h) == 64 and set(h) <= HEX64 for h, _ in hashes.values())
    assert {review for _, review in hashes.values()} == {""}  # never reviewed
    assert _columns(v1_ledger, "attribution") == ["account", "day", "genome_id", "pnl"]
    assert _columns(v1_ledger, "genome_days")[:3] == ["account", "day", "genome_id"]
    with Ledger(v1_ledger) as again:  # reopening a migrated file changes nothing
        assert again.fills("conservative") == old_fills["conservative"]
        assert again.restore_state("conservative") == restored
        assert again.equity_history("conservative") == history
    assert _rows(v1_ledger) == old


def test_ledger_v1_fixture_next_day_commits_attributed_and_verifies(v1_ledger: Path) -> None:
    rules = BrokerRules.from_market("none")
    with Ledger(v1_ledger) as ledger:
        state = ledger.restore_state("conservative")
        previous = ledger.close_before("conservative", NEXT_DAY)
        assert previous.day == date(2025, 7, 2) and previous.genomes[0][1] == ()
        held = {p.symbol: p for p in previous.positions}
        assert set(held) == {"SYN000", "SYN001", "SYN005"}
        # Sell half of SYN001 (no target: a migrated position, so unattributed) and hold the
        # rest; SYN000 is targeted today by one genome.
        at = datetime(2025, 7, 3, 20, tzinfo=UTC)
        price = float(held["SYN001"].price) * 1.01
        bar = Bar(
            symbol="SYN001", day=NEXT_DAY, at=at, open=price, high=price * 1.001,
            low=price * 0.999, close=price, volume=1e9, prev_close=price,
        )  # fmt: skip
        state = start_day(state, NEXT_DAY)
        state, order, _ = submit_order(
            state, symbol="SYN001", side="sell", quantity=state.held("SYN001") // 2,
            day=NEXT_DAY, at=at, decision_id="next-day",
        )  # fmt: skip
        result = execute_order(state, order, bar, rules)
        assert result.fills
        closes = {s: float(p.price) * 1.02 for s, p in held.items()}
        positions, equity = snapshots_from(result.state, mark_to_market(result.state, closes))
        attribution = attribute_day(
            previous=previous, orders=(result.order,), fills=result.fills,
            positions=positions, equity=equity, targets={"SYN000": (("g-new", 1.0),)},
        )  # fmt: skip
        ledger.commit_day(
            "conservative", NEXT_DAY, orders=[result.order], fills=list(result.fills),
            positions=positions, equity=equity, attribution=attribution,
            decisions=[DecisionRecord(decision_id="next-day", payload={"verdict": "execute"})],
        )  # fmt: skip
        rows = {r.genome_id: r.pnl for r in ledger.attribution("conservative", start=NEXT_DAY)}
        assert set(rows) == {"g-new", UNATTRIBUTED}
        assert sum(rows.values()) == equity.equity - previous.equity
        by_symbol = {s.symbol: s for s in attribution.symbols}
        assert by_symbol["SYN000"].basis == "target"
        assert by_symbol["SYN001"].basis == by_symbol["SYN005"].basis == "unattributed"
        assert ledger.position_genomes("conservative", NEXT_DAY)["SYN000"] == (("g-new", 1.0),)
        assert ledger.order_genomes("conservative", NEXT_DAY) == {result.order.order_id: ()}
        report = ledger.verify(ledger.recorded_days())
        assert report.ok, report.to_dict()
        assert report.days_unattributed == 6 and report.days_checked == 7
        assert ledger.restore_state("conservative") == result.state
    # The new day is chained to the migrated day before it.
    assert _hashes(v1_ledger)[("conservative", NEXT_DAY.isoformat())][0] != CHAIN_GENESIS


def test_ledger_newer_schema_version_refuses_to_open(v1_ledger: Path) -> None:
    with sqlite3.connect(v1_ledger) as conn:
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    before = v1_ledger.read_bytes()
    with pytest.raises(LedgerError, match=r"schema version 5, this code reads versions 1 to 4"):
        Ledger(v1_ledger)
    assert v1_ledger.read_bytes() == before


def test_ledger_migration_failing_midway_leaves_schema_1_file_unchanged(v1_ledger: Path) -> None:
    # A table in the way of the migration's CREATE TABLE: the ALTERs before it roll back.
    with sqlite3.connect(v1_ledger) as conn:
        conn.execute("CREATE TABLE attribution (x INTEGER)")
    old = _rows(v1_ledger)
    with pytest.raises(sqlite3.OperationalError, match="attribution"):
        Ledger(v1_ledger)
    assert _version(v1_ledger) == "1"
    assert "genomes" not in _columns(v1_ledger, "orders")
    assert _rows(v1_ledger) == old


def test_ledger_new_file_has_the_same_schema_as_a_migrated_one(
    v1_ledger: Path, tmp_path: Path
) -> None:
    Ledger(v1_ledger).close()
    Ledger(tmp_path / "new.sqlite").close()
    for table in (*V1_COLUMNS, "attribution", "genome_days", "meta", "accounts"):
        assert _columns(tmp_path / "new.sqlite", table) == _columns(v1_ledger, table)
    assert _version(tmp_path / "new.sqlite") == "4"


def test_ledger_fixture_file_itself_untouched(fixtures_dir: Path) -> None:
    # The fixtures are read through copies only: they stay at their schema for the next run.
    assert _version(fixtures_dir / "home_v1" / "ledger.sqlite") == "1"
    assert _version(fixtures_dir / "home_v3" / "ledger.sqlite") == "3"


def _at_version_2(path: Path) -> None:
    """Walk the schema-1 file to version 2 only, as the schema-2 code left its files."""
    with sqlite3.connect(path) as conn:
        for statement in _MIGRATIONS[2]:
            conn.execute(statement)
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def test_ledger_v2_file_opened_migrates_to_v4_and_verifies(v1_ledger: Path) -> None:
    _at_version_2(v1_ledger)
    old = _rows(v1_ledger)
    assert _version(v1_ledger) == "2" and "reviewed" not in _columns(v1_ledger, "days")
    with Ledger(v1_ledger) as ledger:
        assert ledger.schema_version() == 4
        assert ledger.genome_days() == []
        report = ledger.verify()
        assert report.ok, report.to_dict()
    assert _rows(v1_ledger) == old
    assert _version(v1_ledger) == "4"


def test_ledger_migration_3_failing_leaves_schema_2_file_unchanged(v1_ledger: Path) -> None:
    _at_version_2(v1_ledger)
    with sqlite3.connect(v1_ledger) as conn:
        conn.execute("CREATE TABLE genome_days (x INTEGER)")
    with pytest.raises(sqlite3.OperationalError, match="genome_days"):
        Ledger(v1_ledger)
    assert _version(v1_ledger) == "2"
    assert "reviewed" not in _columns(v1_ledger, "days")


# --------------------------------------------------------------------------- schema 3 -> 4
@pytest.fixture
def v3_ledger(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A copy of the ledger the schema-3 code wrote (3 arena days, 3 accounts, reviewed)."""
    copy = tmp_path / "ledger.sqlite"
    shutil.copyfile(fixtures_dir / "home_v3" / "ledger.sqlite", copy)
    return copy


def _table_dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = ("orders", "fills", "positions", "equity", "decisions", "risk_events",
                  "attribution", "genome_days", "accounts")  # fmt: skip
        dump = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in tables}
        dump["days"] = conn.execute(
            "SELECT account, day, committed_at, n_orders, n_fills, attributed, reviewed FROM days "
            "ORDER BY 1, 2"
        ).fetchall()
        return dump
    finally:
        conn.close()


def test_ledger_v3_fixture_opened_migrates_to_v4_chained_and_verifies(v3_ledger: Path) -> None:
    assert _version(v3_ledger) == "3" and "chain_hash" not in _columns(v3_ledger, "days")
    old = _table_dump(v3_ledger)
    assert old["genome_days"] and old["risk_events"] and len(old["days"]) == 9
    with Ledger(v3_ledger) as ledger:
        assert ledger.schema_version() == 4
        report = ledger.verify(ledger.recorded_days())
        assert report.ok, report.to_dict()
        assert report.days_checked == report.days_chained == 9
        assert report.days_unattributed == 0
        # The start-up check of the trading commands passes too, and marks what it verified.
        assert ledger.verify_before_trading(ledger.recorded_days()).ok
        heads = report.to_dict()["chain_heads"]
    assert set(heads) == {"aggressive", "conservative", "synthesis"}
    assert {h["day"] for h in heads.values()} == {"2023-06-05"}
    assert _table_dump(v3_ledger) == old  # every schema-3 row, column for column
    hashes = _hashes(v3_ledger)
    assert all(len(chain) == 64 and len(review) == 64 for chain, review in hashes.values())
    assert len({chain for chain, _ in hashes.values()}) == 9
    with Ledger(v3_ledger) as again:  # reopening changes nothing, and it still verifies
        assert again.verify().ok
    assert _hashes(v3_ledger) == hashes


def test_ledger_migration_4_failing_leaves_schema_3_file_unchanged(v3_ledger: Path) -> None:
    with sqlite3.connect(v3_ledger) as conn:
        conn.execute("CREATE INDEX fills_by_day ON fills (seq)")  # in the migration's way
    old = _table_dump(v3_ledger)
    with pytest.raises(sqlite3.OperationalError, match="fills_by_day"):
        Ledger(v3_ledger)
    assert _version(v3_ledger) == "3"
    assert "chain_hash" not in _columns(v3_ledger, "days")
    assert _table_dump(v3_ledger) == old
