"""The SQLite ledger: atomic days, duplicate fills refused, crash-only restore, verify."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from arena.book import AccountState, mark_to_market, open_account, submit_order
from arena.events import FillEvent, RiskVeto
from arena.ledger import (
    DayAlreadyCommitted,
    DecisionRecord,
    Ledger,
    LedgerCorrupted,
    LedgerError,
    PositionSnapshot,
    snapshots_from,
)
from arena.market import Bar
from arena.money import money_from_float
from arena.orders import DuplicateFill, Order
from arena.rules import BrokerRules
from arena.step import execute_order

RULES = BrokerRules.from_market("cn")
SYMBOLS = ("600000", "600001", "000002")
CALENDAR = [date(2024, 3, 4) + timedelta(days=k) for k in range(5)]  # Mon..Fri


def _bar(symbol: str, day: date, price: float) -> Bar:
    return Bar(
        symbol=symbol, day=day, at=datetime(day.year, day.month, day.day, 6, 0, tzinfo=UTC),
        open=price, high=price * 1.01, low=price * 0.99, close=price, volume=1e7,
        prev_close=price,
    )  # fmt: skip


def _price(symbol: str, k: int) -> float:
    return 10.0 + SYMBOLS.index(symbol) + 0.37 * k


def _day(state: AccountState, k: int) -> tuple[AccountState, dict[str, object]]:
    """Trade day ``k``: buy every symbol; from day 1 on, sell half of what was bought."""
    day = CALENDAR[k]
    orders: list[Order] = []
    fills: list[FillEvent] = []
    decisions = []
    for symbol in SYMBOLS:
        bar = _bar(symbol, day, _price(symbol, k))
        for side, quantity in (("sell", state.sellable(symbol) // 200 * 100), ("buy", 1000)):
            if quantity <= 0:
                continue
            decision_id = f"{day.isoformat()}-{symbol}-{side}"
            state, order, _ = submit_order(
                state, symbol=symbol, side=side, quantity=quantity, day=day,  # type: ignore[arg-type]
                at=bar.at, decision_id=decision_id,
            )  # fmt: skip
            result = execute_order(state, order, bar, RULES, sigma=0.01)
            state = result.state
            orders.append(result.order)
            fills.extend(result.fills)
            decisions.append(
                DecisionRecord(decision_id=decision_id, payload={"verdict": "execute", "k": k})
            )
    closes = {s: _price(s, k) * 1.002 for s in SYMBOLS}
    positions, equity = snapshots_from(state, mark_to_market(state, closes))
    veto = RiskVeto(
        account=state.account, at=datetime(day.year, day.month, day.day, 7, tzinfo=UTC),
        order_id=None, rule="max_name_weight", reason="a drill", value=0.31, limit=0.30,
    )  # fmt: skip
    record = {
        "orders": orders,
        "fills": fills,
        "positions": positions,
        "equity": equity,
        "decisions": decisions,
        "risk_events": [veto],
    }
    return state, record


def _opening() -> AccountState:
    return open_account(
        "aggressive",
        initial_cash=money_from_float(1_000_000.0),
        units=RULES.units,
        t_plus_one=True,
    )


def _run(ledger: Ledger, n_days: int) -> AccountState:
    state = _opening()
    ledger.ensure_account(state)
    for k in range(n_days):
        state, record = _day(state, k)
        ledger.commit_day(state.account, CALENDAR[k], **record)  # type: ignore[arg-type]
    return state


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


# --------------------------------------------------------------------------- commit / restore
def test_commit_then_restore_rebuilds_the_live_state(ledger: Ledger) -> None:
    live = _run(ledger, 3)
    assert live.last_fill_seq > 6  # buys and sells happened
    restored = ledger.restore_state("aggressive")
    assert restored == live
    reopened = Ledger(ledger.path)
    assert reopened.restore_state("aggressive") == live
    reopened.close()


def test_restore_before_a_day_gives_the_books_of_the_previous_day(ledger: Ledger) -> None:
    state = _opening()
    ledger.ensure_account(state)
    after_day0, record = _day(state, 0)
    ledger.commit_day("aggressive", CALENDAR[0], **record)  # type: ignore[arg-type]
    _, record1 = _day(after_day0, 1)
    ledger.commit_day("aggressive", CALENDAR[1], **record1)  # type: ignore[arg-type]
    assert ledger.restore_state("aggressive", before=CALENDAR[1]) == after_day0
    assert ledger.restore_state("aggressive", before=CALENDAR[0]) == state


def test_is_committed_and_last_committed_day_follow_commits(ledger: Ledger) -> None:
    assert ledger.last_committed_day("aggressive") is None
    _run(ledger, 2)
    assert ledger.is_committed("aggressive", CALENDAR[1])
    assert not ledger.is_committed("aggressive", CALENDAR[2])
    assert ledger.last_committed_day("aggressive") == CALENDAR[1]
    assert ledger.decision("aggressive", f"{CALENDAR[0].isoformat()}-600000-buy") == {
        "k": 0,
        "verdict": "execute",
    }


def test_commit_same_day_twice_raises_and_changes_nothing(ledger: Ledger) -> None:
    state = _opening()
    ledger.ensure_account(state)
    _, record = _day(state, 0)
    ledger.commit_day("aggressive", CALENDAR[0], **record)  # type: ignore[arg-type]
    before = _dump(ledger.path)
    with pytest.raises(DayAlreadyCommitted):
        ledger.commit_day("aggressive", CALENDAR[0], **record)  # type: ignore[arg-type]
    assert _dump(ledger.path) == before


def test_commit_duplicate_fill_id_raises_and_rolls_back_everything(ledger: Ledger) -> None:
    state = _run(ledger, 1)
    old_fill = ledger.fills("aggressive")[0]
    _, record = _day(state, 1)
    fills = list(record["fills"])  # type: ignore[call-overload]
    fills[-1] = replace(fills[-1], fill_id=old_fill.fill_id)  # a fill id already used
    record["fills"] = fills
    before = _dump(ledger.path)
    with pytest.raises(DuplicateFill, match=old_fill.fill_id[:5]):
        ledger.commit_day("aggressive", CALENDAR[1], **record)  # type: ignore[arg-type]
    assert _dump(ledger.path) == before
    assert not ledger.is_committed("aggressive", CALENDAR[1])


def test_commit_failure_after_fills_written_leaves_db_exactly_as_before(ledger: Ledger) -> None:
    state = _run(ledger, 1)
    _, record = _day(state, 1)
    positions = list(record["positions"])  # type: ignore[call-overload]
    # A bad record that only the database catches, after orders and fills are inserted:
    # two snapshots of one symbol break the positions primary key.
    record["positions"] = [*positions, positions[0]]
    before = _dump(ledger.path)
    with pytest.raises(sqlite3.IntegrityError, match="positions"):
        ledger.commit_day("aggressive", CALENDAR[1], **record)  # type: ignore[arg-type]
    assert _dump(ledger.path) == before
    assert ledger.fills("aggressive", CALENDAR[1]) == []


def test_commit_fill_numbers_not_continuing_the_ledger_raise(ledger: Ledger) -> None:
    state = _run(ledger, 1)
    _, record = _day(state, 1)
    record["fills"] = list(record["fills"])[1:]  # type: ignore[call-overload]
    with pytest.raises(LedgerError, match="fills numbers"):
        ledger.commit_day("aggressive", CALENDAR[1], **record)  # type: ignore[arg-type]


def test_commit_day_before_last_committed_raises(ledger: Ledger) -> None:
    _run(ledger, 2)
    _, record = _day(_opening(), 0)
    with pytest.raises(LedgerError, match="only move forward"):
        ledger.commit_day("aggressive", date(2024, 3, 1), **record)  # type: ignore[arg-type]


def test_ensure_account_with_other_initial_cash_raises(ledger: Ledger) -> None:
    ledger.ensure_account(_opening())
    ledger.ensure_account(_opening())  # idempotent
    with pytest.raises(LedgerError, match="keeps its starting capital"):
        ledger.ensure_account(replace(_opening(), initial_cash=1, cash=1))


# --------------------------------------------------------------------------- replace
def test_replace_last_day_rewrites_it_atomically(ledger: Ledger) -> None:
    _run(ledger, 2)
    start = ledger.restore_state("aggressive", before=CALENDAR[1])
    # A recomputation that trades differently: only the first symbol.
    state, order, _ = submit_order(
        start, symbol="600000", side="buy", quantity=200, day=CALENDAR[1],
        at=_bar("600000", CALENDAR[1], 11.0).at,
    )  # fmt: skip
    result = execute_order(state, order, _bar("600000", CALENDAR[1], 11.0), RULES)
    positions, equity = snapshots_from(
        result.state, mark_to_market(result.state, dict.fromkeys(SYMBOLS, 11.0))
    )
    ledger.replace_day(
        "aggressive", CALENDAR[1], orders=[result.order], fills=list(result.fills),
        positions=positions, equity=equity,
    )  # fmt: skip
    assert ledger.restore_state("aggressive") == result.state
    assert len(ledger.fills("aggressive", CALENDAR[1])) == 1
    assert ledger.verify(CALENDAR[:2]).ok


def test_replace_day_failing_midway_keeps_the_old_day(ledger: Ledger) -> None:
    live = _run(ledger, 2)
    start = ledger.restore_state("aggressive", before=CALENDAR[1])
    _, record = _day(start, 1)
    positions = list(record["positions"])  # type: ignore[call-overload]
    record["positions"] = [*positions, positions[0]]
    before = _dump(ledger.path)
    with pytest.raises(sqlite3.IntegrityError):
        ledger.replace_day("aggressive", CALENDAR[1], **record)  # type: ignore[arg-type]
    assert _dump(ledger.path) == before
    assert ledger.restore_state("aggressive") == live


def test_replace_a_day_with_later_days_committed_raises(ledger: Ledger) -> None:
    _run(ledger, 3)
    start = ledger.restore_state("aggressive", before=CALENDAR[1])
    _, record = _day(start, 1)
    with pytest.raises(LedgerError, match="committed after it"):
        ledger.replace_day("aggressive", CALENDAR[1], **record)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- verify
def test_verify_clean_ledger_is_ok(ledger: Ledger) -> None:
    _run(ledger, 3)
    report = ledger.verify(CALENDAR)
    assert report.ok, report.to_dict()
    assert report.to_dict()["ok"] is True
    assert report.days_checked == 3
    assert report.fills_checked == len(ledger.fills("aggressive"))


def test_verify_tampered_cash_snapshot_reports_cash_mismatch(ledger: Ledger) -> None:
    _run(ledger, 3)
    with sqlite3.connect(ledger.path) as conn:
        conn.execute(
            "UPDATE equity SET cash = cash + 1, equity = equity + 1 WHERE day = ?",
            (CALENDAR[1].isoformat(),),
        )
    report = ledger.verify()
    assert not report.ok
    kinds = {(i.kind, i.day) for i in report.issues}
    assert ("cash_mismatch", CALENDAR[1]) in kinds
    assert report.to_dict()["ok"] is False


def test_restore_after_tampered_last_snapshot_raises_corrupted(ledger: Ledger) -> None:
    _run(ledger, 2)
    with sqlite3.connect(ledger.path) as conn:
        conn.execute("UPDATE positions SET quantity = quantity + 100 WHERE day = ?",
                     (CALENDAR[1].isoformat(),))  # fmt: skip
    with pytest.raises(LedgerCorrupted, match="snapshot"):
        ledger.restore_state("aggressive")
    assert any(i.kind == "position_mismatch" for i in ledger.verify().issues)


def test_verify_duplicated_fill_row_reports_duplicate(ledger: Ledger) -> None:
    _run(ledger, 2)
    with sqlite3.connect(ledger.path) as conn:
        # Tampering from outside the ledger: a copy of the table without its constraints.
        conn.executescript(
            """
            PRAGMA foreign_keys = OFF;
            CREATE TABLE fills_loose AS SELECT * FROM fills;
            DROP TABLE fills;
            ALTER TABLE fills_loose RENAME TO fills;
            INSERT INTO fills SELECT * FROM fills WHERE seq = 2;
            """
        )
    report = ledger.verify()
    kinds = {i.kind for i in report.issues}
    assert "duplicate_fill" in kinds
    assert "sequence_gap" in kinds  # number 2 repeated
    assert not report.ok


def test_verify_deleted_fill_reports_number_gap_and_cash_difference(ledger: Ledger) -> None:
    _run(ledger, 3)
    with sqlite3.connect(ledger.path) as conn:
        conn.execute("DELETE FROM fills WHERE seq = 3")
    report = ledger.verify()
    kinds = {i.kind for i in report.issues}
    assert {"sequence_gap", "cash_mismatch", "order_mismatch"} <= kinds


def test_verify_day_deleted_from_file_reports_day_and_number_gaps(ledger: Ledger) -> None:
    _run(ledger, 3)
    with sqlite3.connect(ledger.path) as conn:
        for table in ("fills", "orders", "positions", "equity", "decisions", "risk_events"):
            conn.execute(f"DELETE FROM {table} WHERE day = ?", (CALENDAR[1].isoformat(),))
        conn.execute("DELETE FROM days WHERE day = ?", (CALENDAR[1].isoformat(),))
    report = ledger.verify(CALENDAR)
    gaps = [i for i in report.issues if i.kind == "day_gap"]
    assert [g.day for g in gaps] == [CALENDAR[2]]
    assert CALENDAR[1].isoformat() in gaps[0].detail
    assert {"sequence_gap", "cash_mismatch"} <= {i.kind for i in report.issues}


def test_verify_gap_in_committed_days_against_calendar(ledger: Ledger) -> None:
    state = _opening()
    ledger.ensure_account(state)
    state, record = _day(state, 0)
    ledger.commit_day("aggressive", CALENDAR[0], **record)  # type: ignore[arg-type]
    # Day 1 (Tuesday) is skipped: the next commit is Wednesday's.
    state, record = _day(state, 2)
    ledger.commit_day("aggressive", CALENDAR[2], **record)  # type: ignore[arg-type]
    assert ledger.verify().ok  # without a calendar, no gap can be seen
    report = ledger.verify(CALENDAR)
    (gap,) = [i for i in report.issues if i.kind == "day_gap"]
    assert gap.day == CALENDAR[2]
    assert CALENDAR[1].isoformat() in gap.detail


def test_snapshot_with_wrong_value_reports_inconsistent(ledger: Ledger) -> None:
    state = _opening()
    ledger.ensure_account(state)
    state, record = _day(state, 0)
    positions = list(record["positions"])  # type: ignore[call-overload]
    bad: PositionSnapshot = replace(positions[0], value=positions[0].value + 7)
    record["positions"] = [bad, *positions[1:]]
    ledger.commit_day("aggressive", CALENDAR[0], **record)  # type: ignore[arg-type]
    kinds = {i.kind for i in ledger.verify().issues}
    assert "snapshot_inconsistent" in kinds


def test_verify_days_committed_without_attribution_counted_not_failed(ledger: Ledger) -> None:
    _run(ledger, 2)  # commit_day without attribution=
    report = ledger.verify(CALENDAR[:2])
    assert report.ok and report.days_unattributed == 2
    assert report.to_dict()["days_unattributed"] == 2
    assert ledger.attribution() == []
    with sqlite3.connect(ledger.path) as conn:
        conn.execute(
            "INSERT INTO attribution (account, day, genome_id, pnl) VALUES (?, ?, 'g', 5)",
            ("aggressive", CALENDAR[1].isoformat()),
        )
    issues = ledger.verify().issues
    # The inserted row is also one the day's commit did not hash.
    assert sorted((i.kind, i.day) for i in issues) == [
        ("attribution_mismatch", CALENDAR[1]),
        ("chain_mismatch", CALENDAR[1]),
    ]
