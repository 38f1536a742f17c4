"""``Ledger.restore_state`` resumes from books it folded before, and only from equal rows.

The arena restores an account's books several times a day (the account, the review, the TWAP
counterfactual); each restore folded every committed fill from the opening books, so a season's
replays grew with the square of its length. The ledger now keeps, per file and account, the
books after the fill rows it last folded and resumes from them when the new rows begin with
those rows. These tests check that every restore still equals a replay from scratch, that the
resumed one folds only the new day's fills, and that an edited fill among the remembered ones
is replayed (and refused) as from scratch.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import arena.ledger as ledger_module
from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.ledger import Ledger, LedgerCorrupted
from arena.market import load_arena_data
from arena.personas import load_arena_config
from arena.season import season_days

SPEC = "synthetic:seed=3,assets=5,start=2022-01-01,end=2023-12-31"
DAY_1, DAY_3 = date(2023, 6, 1), date(2023, 6, 5)


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> LabHome:
    """Three arena days of the three accounts, committed by the arena (no Ray)."""
    home = LabHome(tmp_path_factory.mktemp("replay") / "home").ensure()
    data = load_arena_data(SPEC, home)
    config = load_arena_config()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        for day in season_days(data, DAY_1, DAY_3):
            run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
    finally:
        accounts.close()
    return home


@pytest.fixture
def ledger(season: LabHome, tmp_path: Path) -> Iterator[Ledger]:
    """A copy of the season's ledger, no checkpoints remembered."""
    path = tmp_path / "ledger.db"
    shutil.copyfile(season.ledger_db, path)
    ledger_module._REPLAYS.clear()
    with Ledger(path) as opened:
        yield opened
    ledger_module._REPLAYS.clear()


@pytest.fixture
def folds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the fills the ledger folds (the real ``apply_fill`` still does the work)."""
    count = [0]
    real = ledger_module.apply_fill

    def counting(state, fill):  # type: ignore[no-untyped-def]
        count[0] += 1
        return real(state, fill)

    monkeypatch.setattr(ledger_module, "apply_fill", counting)
    return count


def _fills(ledger: Ledger, account: str, *, through: date) -> int:
    rows = ledger._query(
        "SELECT COUNT(*) AS n FROM fills WHERE account = ? AND day <= ?",
        (account, through.isoformat()),
    )
    return int(rows[0]["n"])


def test_every_restore_equals_the_replay_from_scratch_in_any_order(ledger: Ledger) -> None:
    days = ledger.committed_days("aggressive")
    assert len(days) == 3
    cases = [(account, before) for account in ledger.accounts() for before in [*days, None]]
    scratch = {}
    for account, before in cases:
        ledger_module._REPLAYS.clear()
        scratch[(account, before)] = ledger.restore_state(account, before=before)
    # Forwards, backwards and forwards again, never clearing: each resumes from what the last
    # ones left (a longer prefix, a shorter one, another account).
    for account, before in [*cases, *reversed(cases), *cases]:
        assert ledger.restore_state(account, before=before) == scratch[(account, before)]
    assert len({scratch[("aggressive", before)] for before in [*days, None]}) > 1  # they differ


def test_a_restore_after_one_more_day_folds_only_that_days_fills(
    ledger: Ledger, folds: list[int]
) -> None:
    # An account and a day on which it traded, after a day on which it had traded already.
    account, day, previous = next(
        (account, day, previous)
        for account in ledger.accounts()
        for previous, day in zip(
            ledger.committed_days(account), ledger.committed_days(account)[1:], strict=False
        )
        if 0 < _fills(ledger, account, through=previous) < _fills(ledger, account, through=day)
    )
    through_two = _fills(ledger, account, through=previous)
    through_three = _fills(ledger, account, through=day)
    after = ledger.committed_days(account)
    following = after[after.index(day) + 1] if day != after[-1] else None
    ledger.restore_state(account, before=day)
    assert folds[0] == through_two
    folds[0] = 0
    ledger.restore_state(account, before=following)
    assert folds[0] == through_three - through_two
    # The control: without the checkpoint the same restore folds every fill again.
    ledger_module._REPLAYS.clear()
    folds[0] = 0
    ledger.restore_state(account, before=following)
    assert folds[0] == through_three


def test_an_edited_remembered_fill_is_replayed_and_refused_as_from_scratch(ledger: Ledger) -> None:
    account = next(a for a in ledger.accounts() if _fills(ledger, a, through=DAY_1) > 0)
    before = ledger.restore_state(account)  # every fill remembered, the first day's included
    conn = sqlite3.connect(ledger.path)
    try:
        edited = conn.execute(
            # One more minor unit of commission on the account's first fill: its cash after
            # the last day no longer matches the snapshot.
            "UPDATE fills SET commission = commission + 1 "
            "WHERE account = ? AND day = ? AND seq = (SELECT MIN(seq) FROM fills WHERE "
            "account = ?)",
            (account, DAY_1.isoformat(), account),
        ).rowcount
        conn.commit()
    finally:
        conn.close()
    assert edited == 1
    with pytest.raises(LedgerCorrupted) as warm:
        ledger.restore_state(account)  # resuming from ``before`` would return it unchanged
    ledger_module._REPLAYS.clear()
    with pytest.raises(LedgerCorrupted) as cold:
        ledger.restore_state(account)
    assert str(warm.value) == str(cold.value)
    assert before.cash > 0
