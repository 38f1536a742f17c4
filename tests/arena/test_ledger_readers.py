"""The ledger's read methods, on a ledger written through the normal arena path.

A short season (three accounts, tight risk limits so the governor acts and freezes) is
replayed once with :func:`arena.season.replay_season`; each reader is checked against the
ledger's other readers, against the broker's replayed books (the one P&L convention: the
average cost of :class:`arena.book.AccountState`) and against the SQL the season and the
reports used to write by hand before these readers existed.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from alphaloop.home import LabHome
from arena.day import LocalAccounts
from arena.ledger import READABLE_TABLES, Ledger, LedgerError
from arena.market import load_arena_data
from arena.personas import PERSONA_NAMES, load_arena_config
from arena.rules import BrokerRules
from arena.season import replay_season

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
START, END = date(2023, 5, 22), date(2023, 6, 2)
# Tight enough that the governor clips orders and the circuit breaker freezes buys.
RISK = {"risk": {"max_trade_risk": 0.003, "position_drop_threshold": 0.02}}
# The synthetic market's book units and settlement (what the accounts registered with).
RULES = BrokerRules.from_market("none")


@pytest.fixture(scope="module")
def season_home(tmp_path_factory: pytest.TempPathFactory) -> LabHome:
    home = LabHome(tmp_path_factory.mktemp("readers") / "home").ensure()
    config = load_arena_config(overrides=RISK)
    data = load_arena_data(SPEC, home)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        replay_season(
            accounts, data, START, END, home=home, config=config, evolve=None,
            write_report=False,
        )  # fmt: skip
    finally:
        accounts.close()
    return home


@pytest.fixture
def ledger(season_home: LabHome) -> Iterator[Ledger]:
    with Ledger(season_home.ledger_db) as opened:
        yield opened


@pytest.fixture
def empty_ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "empty.sqlite") as opened:
        yield opened


def _raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(sql, params).fetchall()]
    finally:
        connection.close()


def _days(ledger: Ledger) -> list[date]:
    return ledger.committed_days(PERSONA_NAMES[0])


def test_season_ledger_has_trades_risk_events_and_several_days(ledger: Ledger) -> None:
    assert ledger.accounts() == sorted(PERSONA_NAMES)
    assert len(_days(ledger)) >= 8
    assert any(ledger.fills(name) for name in PERSONA_NAMES)
    assert any(ledger.risk_events(name, day) for name in PERSONA_NAMES for day in _days(ledger))


def test_account_record_is_the_registration_the_books_open_with(ledger: Ledger) -> None:
    records = ledger.account_records()
    assert [r.account for r in records] == sorted(PERSONA_NAMES)
    for record in records:
        opening = ledger.opening_state(record.account)
        assert ledger.account_record(record.account) == record
        assert record.units == opening.units
        assert record.initial_cash == opening.initial_cash == opening.cash
        assert record.t_plus_one is opening.t_plus_one is RULES.t_plus_one
        assert record.units == RULES.units
        assert record.units.money_digits == ledger.money_digits(record.account)


def test_account_record_of_an_unknown_account_raises(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="unknown account 'nobody'"):
        ledger.account_record("nobody")


def test_last_committed_day_over_all_accounts_is_the_latest_of_any(
    ledger: Ledger, empty_ledger: Ledger
) -> None:
    latest = max(d for name in PERSONA_NAMES if (d := ledger.last_committed_day(name)))
    assert ledger.last_committed_day() == latest == END
    assert empty_ledger.last_committed_day() is None


def test_last_equities_are_each_account_s_last_close(
    ledger: Ledger, empty_ledger: Ledger, season_home: LabHome
) -> None:
    closes = ledger.last_equities()
    assert list(closes) == sorted(PERSONA_NAMES)
    for name, (day, snapshot) in closes.items():
        assert (day, snapshot) == ledger.equity_history(name)[-1]
    assert empty_ledger.last_equities() == {}
    # The figures arena status read with its own join before.
    before = _raw(
        season_home.ledger_db,
        "SELECT e.account, e.day, e.equity, e.cash FROM equity e "
        "WHERE e.day = (SELECT MAX(day) FROM equity WHERE account = e.account) "
        "ORDER BY e.account",
    )
    assert [
        {"account": n, "day": d.isoformat(), "equity": s.equity, "cash": s.cash}
        for n, (d, s) in closes.items()
    ] == before


def test_daily_fill_counts_are_the_committed_days_fills_before_a_day(
    ledger: Ledger, season_home: LabHome
) -> None:
    days = _days(ledger)
    for name in PERSONA_NAMES:
        every = [(day, len(ledger.fills(name, day))) for day in days]
        assert ledger.daily_fill_counts(name, before=date(2099, 1, 1)) == every
        assert ledger.daily_fill_counts(name, before=days[0]) == []
        cut = days[6]
        assert ledger.daily_fill_counts(name, before=cut, limit=4) == every[2:6]
        before = _raw(
            season_home.ledger_db,
            "SELECT n_fills FROM days WHERE account=? AND day<? ORDER BY day DESC LIMIT ?",
            (name, cut.isoformat(), 4),
        )
        assert [n for _, n in ledger.daily_fill_counts(name, before=cut, limit=4)] == [
            int(str(r["n_fills"])) for r in reversed(before)
        ]


def test_last_buy_at_is_the_latest_buy_fill_of_the_name_before_the_day(ledger: Ledger) -> None:
    checked = 0
    for name in PERSONA_NAMES:
        fills = ledger.fills(name)
        for day in _days(ledger):
            for symbol in sorted({f.symbol for f in fills}):
                buys = [
                    f.at for f in fills if f.side == "buy" and f.symbol == symbol and f.day < day
                ]
                found = ledger.last_buy_at(name, symbol, before=day)
                assert found == (max(buys) if buys else None)
                checked += found is not None
    assert checked > 0
    assert ledger.last_buy_at(PERSONA_NAMES[0], "NO-SUCH-NAME", before=END) is None


def test_holdings_before_a_day_carry_the_broker_s_average_cost(ledger: Ledger) -> None:
    held = 0
    for name in PERSONA_NAMES:
        for day in _days(ledger)[1:]:
            books = ledger.restore_state(name, before=day)
            close = ledger.close_before(name, day)
            assert [(p.symbol, p.quantity, p.cost_basis) for p in close.positions] == [
                (p.symbol, p.quantity, p.cost_basis) for p in books.positions
            ]
            held += len(close.positions)
    assert held > 0


def test_table_rows_are_the_stored_rows_by_key_with_their_columns(ledger: Ledger) -> None:
    for table, key in READABLE_TABLES.items():
        rows = ledger.table_rows(table)
        columns = ledger.table_columns(table)
        assert rows, table
        assert all(tuple(row) == columns for row in rows), table
        keys = [tuple(row[k] for k in key) for row in rows]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), table


def test_table_rows_of_a_day_match_the_typed_readers(ledger: Ledger) -> None:
    for day in _days(ledger):
        orders = ledger.table_rows("orders", day=day)
        assert [(r["account"], r["order_id"], r["filled"]) for r in orders] == [
            (name, o.order_id, o.filled) for name in sorted(PERSONA_NAMES)
            for o in ledger.orders(name, day)
        ]  # fmt: skip
        fills = ledger.table_rows("fills", day=day)
        assert [r["fill_id"] for r in fills] == [
            f.fill_id for name in sorted(PERSONA_NAMES) for f in ledger.fills(name, day)
        ]
        positions = ledger.table_rows("positions", day=day)
        assert [(r["symbol"], r["cost_basis"], r["value"]) for r in positions] == [
            (p.symbol, p.cost_basis, p.value) for name in sorted(PERSONA_NAMES)
            for p in ledger.positions(name, day)
        ]  # fmt: skip
        risk = ledger.table_rows("risk_events", day=day)
        assert [(r["account"], r["seq"], r["reason"]) for r in risk] == [
            (name, e.seq, e.reason) for name in sorted(PERSONA_NAMES)
            for e in ledger.risk_events(name, day)
        ]  # fmt: skip
        stored = {
            (r["account"], r["decision_id"]): json.loads(str(r["payload"]))
            for r in ledger.table_rows("decisions", day=day)
        }
        assert stored == {
            (name, key): payload for name in PERSONA_NAMES
            for key, payload in ledger.decisions(name, day).items()
        }  # fmt: skip
        assert {r["day"] for r in orders + fills + positions + risk} <= {day.isoformat()}


def test_table_rows_of_a_day_are_the_rows_the_parquet_outputs_held(
    ledger: Ledger, season_home: LabHome
) -> None:
    # What arena.season wrote to runs/<date>/*.parquet with its own SELECT before.
    for day in _days(ledger)[-3:]:
        for table in ("orders", "fills", "decisions", "equity", "positions", "risk_events"):
            before = _raw(
                season_home.ledger_db, f"SELECT * FROM {table} WHERE day=?", (day.isoformat(),)
            )
            assert ledger.table_rows(table, day=day) == before, (table, day)


def test_table_rows_leave_out_rows_of_days_that_are_not_committed(
    season_home: LabHome, tmp_path: Path
) -> None:
    path = tmp_path / "orphan.sqlite"
    shutil.copyfile(season_home.ledger_db, path)
    connection = sqlite3.connect(path)
    connection.execute(
        "INSERT INTO equity (account, day, cash, market_value, equity, realised_pnl, "
        "commission_paid, taxes_paid) VALUES ('aggressive', '2099-01-02', 1, 0, 1, 0, 0, 0)"
    )
    connection.commit()
    connection.close()
    with Ledger(path) as ledger:
        assert "2099-01-02" not in {r["day"] for r in ledger.table_rows("equity")}
        assert ledger.table_rows("equity", day=date(2099, 1, 2)) == []
        assert "orphan_row" in {issue.kind for issue in ledger.verify().issues}


def test_table_rows_refuse_an_unknown_table_and_a_day_of_accounts(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no table 'meta'"):
        ledger.table_rows("meta")
    with pytest.raises(LedgerError, match="no table 'sqlite_master'"):
        ledger.table_columns("sqlite_master")
    with pytest.raises(LedgerError, match="accounts has no day"):
        ledger.table_rows("accounts", day=END)


def test_decisions_of_every_day_are_the_days_chains_in_day_order(ledger: Ledger) -> None:
    for name in PERSONA_NAMES:
        expected: dict[str, dict[str, object]] = {}
        for day in _days(ledger):
            expected.update(ledger.decisions(name, day))
        assert list(ledger.decisions(name).items()) == list(expected.items())


def test_readers_of_a_lab_without_a_ledger_never_create_one(tmp_path: Path) -> None:
    from arena.season import arena_status
    from reports.weekly import LedgerView

    home = LabHome(tmp_path / "fresh").ensure()
    status = arena_status(home)
    assert status["last_committed"] is None and status["accounts"] == {}
    assert LedgerView.load(home.ledger_db).days() == []
    assert not home.ledger_db.exists()


def test_arena_status_reads_each_account_s_last_close(season_home: LabHome) -> None:
    from arena.season import arena_status

    status = arena_status(season_home)
    assert status["last_committed"] == END.isoformat()
    with Ledger(season_home.ledger_db) as ledger:
        for name in PERSONA_NAMES:
            day, snapshot = ledger.equity_history(name)[-1]
            scale = 10.0 ** ledger.money_digits(name)
            initial = ledger.account_record(name).initial_cash / scale
            equity = snapshot.equity / scale
            assert status["accounts"][name] == {
                "day": day.isoformat(), "equity": equity, "cash": snapshot.cash / scale,
                "total_return": equity / initial - 1.0,
            }  # fmt: skip


def test_reading_a_current_ledger_does_not_wait_for_a_held_write_lock(
    season_home: LabHome,
) -> None:
    # Another process holds the write lock (an account committing its day); a reader opening
    # the ledger (status, the day's start-up checks) must not queue behind it.
    import threading

    with Ledger(season_home.ledger_db) as ledger:
        expected = ledger.recorded_days()
    assert expected
    lock = sqlite3.connect(str(season_home.ledger_db), isolation_level=None, timeout=60.0)
    lock.execute("BEGIN IMMEDIATE")
    seen: dict[str, object] = {}

    def read() -> None:
        try:
            with Ledger(season_home.ledger_db) as reader:
                seen["days"] = reader.recorded_days()
        except BaseException as error:  # surfaced below
            seen["error"] = error

    try:
        worker = threading.Thread(target=read, daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "opening the ledger waited for the write lock"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert seen == {"days": expected}


def test_opening_an_older_ledger_still_migrates_under_the_write_lock(tmp_path: Path) -> None:
    # The control: a file that needs its schema written is opened under the lock, so with
    # the lock held elsewhere the opening waits (and proceeds once it is released).
    import threading

    source = Path(__file__).resolve().parents[1] / "fixtures" / "home_v3" / "ledger.sqlite"
    path = tmp_path / "ledger.sqlite"
    shutil.copyfile(source, path)
    lock = sqlite3.connect(str(path), isolation_level=None, timeout=60.0)
    lock.execute("BEGIN IMMEDIATE")
    seen: dict[str, object] = {}

    def open_it() -> None:
        with Ledger(path) as ledger:
            seen["version"] = ledger.schema_version()

    worker = threading.Thread(target=open_it, daemon=True)
    try:
        worker.start()
        worker.join(timeout=2)
        assert worker.is_alive(), "a migration ran without the write lock"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    worker.join(timeout=30)
    assert seen == {"version": 4}
