"""A tampered ledger is named by ``ledger verify`` and refused by the trading commands.

Each case edits a small real ledger (three arena days of three accounts, committed by the
arena itself, attributed and reviewed) the way the issue's probes did; ``verify`` must report
it at the right day and ``alphaloop arena run`` of the next day must refuse with one
``error:`` line and exit status 2, leaving the ledger file byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from alphaloop.errors import AlphaLoopError
from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.ledger import CHAIN_GENESIS, Ledger, LedgerBroken, VerifyReport, to_grid
from arena.market import ArenaData, load_arena_data
from arena.money import notional_minor
from arena.personas import load_arena_config
from arena.season import season_days

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crashing_accounts import CrashingAccounts

SPEC = "synthetic:seed=3,assets=5,start=2022-01-01,end=2023-12-31"
DAY_1, DAY_2, DAY_3 = date(2023, 6, 1), date(2023, 6, 2), date(2023, 6, 5)
NEXT = date(2023, 6, 6)
COMMON = ("--data", SPEC, "--local", "--no-mlflow")
INSPECT = "alphaloop ledger verify --json"
# The checks the ledger had before the hash chain: a "consistent" edit gets past all of them.
OLD_KINDS = {
    "cash_mismatch", "position_mismatch", "totals_mismatch", "snapshot_inconsistent",
    "fill_inconsistent", "order_mismatch", "duplicate_fill", "sequence_gap", "day_gap",
    "orphan_row", "replay_error", "attribution_mismatch",
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ArenaData:
    return load_arena_data(SPEC, LabHome(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory, data: ArenaData) -> LabHome:
    """Three arena days committed and reviewed by the arena (no Ray), verified through the last."""
    home = LabHome(tmp_path_factory.mktemp("tamper") / "home").ensure()
    config = load_arena_config()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        for day in season_days(data, DAY_1, DAY_3):
            run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
    finally:
        accounts.close()
    with Ledger(home.ledger_db) as ledger:
        # The start-up check's mark now sits on the last day: every edit below is behind it.
        assert ledger.verify_before_trading().ok
        assert ledger.committed_days("synthesis") == [DAY_1, DAY_2, DAY_3]
    return home


@pytest.fixture
def home(season: LabHome, tmp_path: Path) -> LabHome:
    """A copy of the season's home for one test to tamper with."""
    copy = LabHome(tmp_path / "home").ensure()
    shutil.copyfile(season.ledger_db, copy.ledger_db)
    return copy


def _cli(home: LabHome, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALPHALOOP_HOME": str(home.root)}
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _verify(home: LabHome) -> VerifyReport:
    with Ledger(home.ledger_db) as ledger:
        return ledger.verify(ledger.recorded_days())


def _assert_named(report: VerifyReport, account: str, day: date, kinds: set[str]) -> None:
    """``verify`` fails, names ``day`` as ``account``'s first broken day, with ``kinds`` there."""
    assert not report.ok
    assert report.to_dict()["first_broken"][account] == day.isoformat(), report.to_dict()
    found = {i.kind for i in report.issues if i.account == account and i.day == day}
    assert kinds <= found, report.to_dict()


def _assert_next_day_refused(home: LabHome, account: str, day: date) -> None:
    """``arena run`` of the next day: one ``error:`` line naming the day, exit 2, no write."""
    before, dump = home.ledger_db.read_bytes(), _dump(home.ledger_db)
    refused = _cli(home, "arena", "run", "--date", NEXT.isoformat(), *COMMON)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: ledger {home.ledger_db} fails verification"), lines
    assert f"first broken day {account} {day.isoformat()}" in lines[0], lines
    assert INSPECT in lines[0] and "nothing was traded" in lines[0]
    assert home.ledger_db.read_bytes() == before  # not a byte written
    assert _dump(home.ledger_db) == dump
    assert not (home.root / "runs" / NEXT.isoformat()).exists()


def _edit(home: LabHome, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(home.ledger_db)
    try:
        for sql, params in statements:
            assert conn.execute(sql, params).rowcount >= 1, sql
        conn.commit()
    finally:
        conn.close()


# --------------------------------------------------------------------------- controls
def test_ledger_untampered_verifies_and_the_next_day_runs_chained(home: LabHome) -> None:
    report = _verify(home)
    assert report.ok, report.to_dict()
    assert report.days_checked == report.days_chained == 9
    heads = report.to_dict()["chain_heads"]
    assert {h["day"] for h in heads.values()} == {DAY_3.isoformat()}
    ran = _cli(home, "arena", "run", "--date", NEXT.isoformat(), "--json", *COMMON)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1])["already_committed"] is False
    verified = _cli(home, "ledger", "verify", "--json")
    assert verified.returncode == 0, verified.stdout
    payload = json.loads(verified.stdout.strip().splitlines()[-1])
    assert payload["ok"] is True and payload["issues"] == [] and payload["first_broken"] == {}
    assert payload["days_checked"] == 12
    for account, head in payload["chain_heads"].items():
        assert head["day"] == NEXT.isoformat()
        assert head["hash"] not in (CHAIN_GENESIS, heads[account]["hash"])


def test_ledger_schema_3_home_upgrades_verifies_and_trades_the_next_day(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    # The schema-3 fixture is these very three days, committed by the code before the chain.
    home = LabHome(tmp_path / "v3").ensure()
    shutil.copyfile(fixtures_dir / "home_v3" / "ledger.sqlite", home.ledger_db)
    ran = _cli(home, "arena", "run", "--date", NEXT.isoformat(), "--json", *COMMON)
    assert ran.returncode == 0, ran.stderr
    with Ledger(home.ledger_db) as ledger:
        assert ledger.schema_version() == 4
        report = ledger.verify(ledger.recorded_days())
    assert report.ok, report.to_dict()
    assert report.days_chained == 12


def test_ledger_replaced_last_day_stays_chained(home: LabHome, data: ArenaData) -> None:
    config = load_arena_config()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        forced = run_arena_day(
            accounts, data, DAY_3, home=home, config=config, force=True, write_report=False
        )
    finally:
        accounts.close()
    assert forced["already_committed"] is False
    report = _verify(home)
    assert report.ok, report.to_dict()


# --------------------------------------------------------------------------- the cases
def test_ledger_fill_price_edit_named_and_next_day_refused(home: LabHome) -> None:
    _edit(
        home,
        (
            "UPDATE fills SET price = CAST(CAST(price AS REAL) + 0.01 AS TEXT) "
            "WHERE account = 'aggressive' AND seq = 1",
            (),
        ),
    )
    _assert_named(_verify(home), "aggressive", DAY_1, {"chain_mismatch", "fill_inconsistent"})
    _assert_next_day_refused(home, "aggressive", DAY_1)


def test_ledger_older_day_equity_edit_named_and_next_day_refused(home: LabHome) -> None:
    _edit(
        home,
        (
            "UPDATE equity SET cash = cash + 100, equity = equity + 100 "
            "WHERE account = 'conservative' AND day = ?",
            (DAY_2.isoformat(),),
        ),
    )
    report = _verify(home)
    _assert_named(report, "conservative", DAY_2, {"chain_mismatch", "cash_mismatch"})
    _assert_next_day_refused(home, "conservative", DAY_2)


def test_ledger_deleted_days_row_named_and_next_day_refused(home: LabHome) -> None:
    _edit(
        home,
        ("DELETE FROM days WHERE account = 'synthesis' AND day = ?", (DAY_2.isoformat(),)),
    )
    report = _verify(home)
    _assert_named(report, "synthesis", DAY_2, {"orphan_row"})
    # The ledger's own calendar (the other accounts committed the day) shows the gap, and
    # the next committed day no longer links to the day it was chained to.
    after = {i.kind for i in report.issues if i.account == "synthesis" and i.day == DAY_3}
    assert {"day_gap", "chain_mismatch"} <= after
    (gap,) = [i for i in report.issues if i.kind == "day_gap"]
    assert DAY_2.isoformat() in gap.detail
    _assert_next_day_refused(home, "synthesis", DAY_2)


def test_ledger_deleted_decisions_named_and_next_day_refused(home: LabHome) -> None:
    _edit(
        home,
        ("DELETE FROM decisions WHERE account = 'aggressive' AND day = ?", (DAY_2.isoformat(),)),
    )
    report = _verify(home)
    _assert_named(report, "aggressive", DAY_2, {"chain_mismatch", "decision_mismatch"})
    assert not {i.kind for i in report.issues} & OLD_KINDS  # the old checks saw nothing
    _assert_next_day_refused(home, "aggressive", DAY_2)


def test_ledger_fake_risk_event_named_and_next_day_refused(home: LabHome) -> None:
    # A plausible event (the tightening the governor logged on the next day), numbered and
    # timed like a real one: only the chain can tell it was never committed.
    _edit(
        home,
        (
            "INSERT INTO risk_events (account, day, seq, at, order_id, rule, reason, value, "
            "limit_value) SELECT account, ?, 1, ?, order_id, rule, reason, value, limit_value "
            "FROM risk_events WHERE account = 'synthesis' AND day = ? AND seq = 1",
            (DAY_1.isoformat(), f"{DAY_1.isoformat()}T09:30:00+00:00", DAY_2.isoformat()),
        ),
    )
    report = _verify(home)
    _assert_named(report, "synthesis", DAY_1, {"chain_mismatch"})
    assert {i.kind for i in report.issues} == {"chain_mismatch"}
    _assert_next_day_refused(home, "synthesis", DAY_1)


def test_ledger_order_status_edit_named_and_next_day_refused(home: LabHome) -> None:
    _edit(
        home,
        (
            "UPDATE orders SET status = 'expired', reason = 'participation_cap' "
            "WHERE account = 'synthesis' AND day = ? AND seq = (SELECT MIN(seq) FROM orders "
            "WHERE account = 'synthesis' AND day = ? AND status = 'filled')",
            (DAY_2.isoformat(), DAY_2.isoformat()),
        ),
    )
    report = _verify(home)
    _assert_named(report, "synthesis", DAY_2, {"chain_mismatch", "order_state_invalid"})
    assert not {i.kind for i in report.issues} & OLD_KINDS
    _assert_next_day_refused(home, "synthesis", DAY_2)


def _shift_pnl(conn: sqlite3.Connection, ledger: Ledger, day: date, delta: int) -> None:
    """Move conservative's P&L of ``day`` by ``delta`` minor units in its attribution row and
    its genome day (pnl, residual, paper return), keeping every invariant they are checked on."""
    (row,) = [
        r for r in ledger.attribution("conservative", start=day, end=day) if r.pnl != 0
    ]  # the persona's one traded genome
    conn.execute(
        "UPDATE attribution SET pnl = pnl + ? WHERE account = 'conservative' AND day = ? "
        "AND genome_id = ?",
        (delta, day.isoformat(), row.genome_id),
    )
    (genome_day,) = ledger.genome_days("conservative", genome_id=row.genome_id, start=day, end=day)
    pnl = to_grid(genome_day.pnl + delta / 100)
    residual = (
        (pnl - genome_day.expected_pnl) - genome_day.execution_cost - genome_day.governor_cuts
        - genome_day.debate_scaling
    )  # fmt: skip
    moved = replace(
        genome_day, pnl=pnl, residual=residual, paper_return=pnl / genome_day.allocation
    )  # its own invariants hold (checked on construction)
    conn.execute(
        "UPDATE genome_days SET pnl = ?, residual = ?, paper_return = ? "
        "WHERE account = 'conservative' AND day = ? AND genome_id = ?",
        (moved.pnl, moved.residual, moved.paper_return, day.isoformat(), row.genome_id),
    )


def test_ledger_consistent_mark_edit_named_and_next_day_refused(home: LabHome) -> None:
    # Conservative's mark of SYN000 at the first close is raised, with the position's value,
    # the market value and the equity, the day's attribution and genome day, and the next
    # day's (whose P&L it lowers): every check the ledger had before the chain still passes.
    with Ledger(home.ledger_db) as ledger:
        (held,) = [p for p in ledger.positions("conservative", DAY_1) if p.symbol == "SYN000"]
        units = ledger.account_record("conservative").units
        price = held.price + Decimal("0.5")
        delta = notional_minor(held.quantity, price, units) - held.value
        assert delta > 0
        conn = sqlite3.connect(home.ledger_db)
        try:
            conn.execute(
                "UPDATE positions SET price = ?, value = value + ? WHERE account = "
                "'conservative' AND day = ? AND symbol = 'SYN000'",
                (str(price), delta, DAY_1.isoformat()),
            )
            conn.execute(
                "UPDATE equity SET market_value = market_value + ?, equity = equity + ? "
                "WHERE account = 'conservative' AND day = ?",
                (delta, delta, DAY_1.isoformat()),
            )
            _shift_pnl(conn, ledger, DAY_1, delta)
            _shift_pnl(conn, ledger, DAY_2, -delta)
            conn.commit()
        finally:
            conn.close()
    report = _verify(home)
    _assert_named(report, "conservative", DAY_1, {"chain_mismatch", "mark_mismatch"})
    kinds = {i.kind for i in report.issues}
    assert not kinds & OLD_KINDS, report.to_dict()
    # The genome days edited are caught by the review's hash, not by their P&L check.
    assert kinds == {"chain_mismatch", "mark_mismatch", "genome_day_mismatch"}
    assert all("hash" in i.detail for i in report.issues if i.kind == "genome_day_mismatch"), (
        report.to_dict()
    )
    # Two accounts agree on the close of the day: only the edited one is named.
    assert {i.account for i in report.issues if i.kind == "mark_mismatch"} == {"conservative"}
    _assert_next_day_refused(home, "conservative", DAY_1)


# --------------------------------------------------------------------------- the commands
def test_ledger_tampered_arena_replay_refused_without_writing(home: LabHome) -> None:
    _edit(
        home,
        (
            "UPDATE equity SET cash = cash + 100, equity = equity + 100 "
            "WHERE account = 'aggressive' AND day = ?",
            (DAY_1.isoformat(),),
        ),
    )
    before = home.ledger_db.read_bytes()
    refused = _cli(
        home, "arena", "replay", "--start", NEXT.isoformat(), "--end", "2023-06-07",
        "--evolve-weekday", "-1", *COMMON,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    lines = [line for line in refused.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"first broken day aggressive {DAY_1.isoformat()}" in lines[0]
    assert INSPECT in lines[0]
    assert home.ledger_db.read_bytes() == before


def test_ledger_verify_cli_names_the_first_broken_day_per_account(home: LabHome) -> None:
    _edit(
        home,
        ("DELETE FROM decisions WHERE account = 'aggressive' AND day = ?", (DAY_3.isoformat(),)),
        # Orders whose decision is gone (aggressive may place none on DAY_3; conservative does).
        (
            "DELETE FROM decisions WHERE account = 'conservative' AND day = ?",
            (DAY_3.isoformat(),),
        ),
        (
            "UPDATE fills SET price = CAST(CAST(price AS REAL) + 0.01 AS TEXT) "
            "WHERE account = 'conservative' AND day = ? AND seq = (SELECT MIN(seq) FROM fills "
            "WHERE account = 'conservative' AND day = ?)",
            (DAY_2.isoformat(), DAY_2.isoformat()),
        ),
    )
    result = _cli(home, "ledger", "verify", "--json")
    assert result.returncode == 1
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False
    assert {"accounts", "days_checked", "fills_checked", "issues"} <= set(payload)
    assert payload["first_broken"] == {
        "aggressive": DAY_3.isoformat(), "conservative": DAY_2.isoformat()
    }  # fmt: skip
    assert {i["kind"] for i in payload["issues"]} >= {"chain_mismatch", "decision_mismatch"}


def test_ledger_tampered_run_arena_day_refused_in_process(home: LabHome, data: ArenaData) -> None:
    # The library path: every day of a season checks the ledger before it trades.
    _edit(
        home,
        (
            "DELETE FROM risk_events WHERE account = 'conservative' AND day = ?",
            (DAY_2.isoformat(),),
        ),
    )
    config = load_arena_config()
    before = home.ledger_db.read_bytes()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        with pytest.raises(LedgerBroken, match=f"first broken day conservative {DAY_2}") as caught:
            run_arena_day(accounts, data, NEXT, home=home, config=config, write_report=False)
    finally:
        accounts.close()
    assert isinstance(caught.value, AlphaLoopError)
    assert home.ledger_db.read_bytes() == before


def test_arena_day_after_a_partially_committed_day_refused(home: LabHome, data: ArenaData) -> None:
    # A crash after one account committed: the next day would leave the others a missing day.
    config = load_arena_config()
    crashed = CrashingAccounts(home, config, data.rules(), fail_after=1)
    try:
        with pytest.raises(RuntimeError, match="injected crash"):
            run_arena_day(crashed, data, NEXT, home=home, config=config, write_report=False)
    finally:
        crashed.close()
    later = date(2023, 6, 7)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        with pytest.raises(AlphaLoopError, match=f"{NEXT} is committed for aggressive only"):
            run_arena_day(accounts, data, later, home=home, config=config, write_report=False)
        run_arena_day(accounts, data, NEXT, home=home, config=config, write_report=False)
        run_arena_day(accounts, data, later, home=home, config=config, write_report=False)
    finally:
        accounts.close()
    assert _verify(home).ok


# --------------------------------------------------------------------------- incremental
def test_ledger_start_up_check_after_its_mark_relinks_only_new_days(home: LabHome) -> None:
    with Ledger(home.ledger_db) as ledger:
        full = ledger.verify_before_trading()
        assert full.days_chained == 9 and full.days_checked == 3  # the last day of each
        since = ledger.verify_before_trading(full_chain=False)
        assert since.days_chained == 0 and since.ok
    # An edit behind the mark: the season's own per-day check does not re-read it, the next
    # command's start-up check does.
    _edit(
        home,
        (
            "UPDATE equity SET realised_pnl = realised_pnl + 1 WHERE account = 'synthesis' "
            "AND day = ?",
            (DAY_1.isoformat(),),
        ),
    )
    with Ledger(home.ledger_db) as ledger:
        assert ledger.verify_before_trading(full_chain=False).ok
        with pytest.raises(LedgerBroken, match=f"synthesis {DAY_1}"):
            ledger.verify_before_trading()
