"""An account actor killed mid-day restarts and the day commits exactly once.

The window "mid-day" is made certain, not hoped for: the test holds the ledger's write lock
(``BEGIN IMMEDIATE`` on the same SQLite file), so no account can commit the day while it is held.
The actor's ``run_day`` trades, reaches its commit and waits in SQLite's busy handler, where its
main thread sleeps in ``nanosleep``; the test sees that in ``/proc/<pid>/syscall``, kills the
process, releases the lock, and Ray restarts the actor (its constructor replays the ledger) and
retries ``run_day`` (``max_task_retries``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from alphaloop.home import LabHome
from arena.day import LocalAccounts, refuse_broken_ledger, run_arena_day
from arena.ledger import Ledger
from arena.market import DayMarket, load_arena_data
from arena.personas import PERSONA_NAMES, load_arena_config
from arena.plan import AccountPlan
from arena.season import season_days
from arena.trade import AccountDayResult

SPEC = "synthetic:seed=5,assets=5,start=2022-01-01,end=2023-12-31"
TABLES = ("orders", "fills", "positions", "equity", "decisions", "risk_events")
# x86-64 and aarch64 numbers of nanosleep / clock_nanosleep: SQLite's busy handler sleeps there.
SLEEP_SYSCALLS = {"35", "230", "101", "115"}


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in TABLES}
    finally:
        conn.close()


def _main_thread_syscall(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return None


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


class _Recording:
    """Delegates to the Ray accounts and keeps the per-account results of ``run``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.results: dict[str, AccountDayResult] = {}

    def committed(self, day: date) -> dict[str, bool]:
        return dict(self.inner.committed(day))

    def equity_before(self, day: date) -> dict[str, float]:
        return dict(self.inner.equity_before(day))

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        self.results = dict(self.inner.run(plans, market, force=force))
        return self.results

    def close(self) -> None:
        self.inner.close()


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/syscall").exists(), reason="needs Linux /proc/<pid>/syscall"
)
def test_account_actor_killed_mid_day_restarts_and_commits_the_day_once(
    ray_cluster: None, tmp_path: Path
) -> None:
    import ray

    from arena.actors import RayAccounts

    config = load_arena_config()
    remote_home = LabHome(tmp_path / "ray").ensure()
    local_home = LabHome(tmp_path / "local").ensure()
    data = load_arena_data(SPEC, local_home)
    days = season_days(data, date(2023, 6, 6), date(2023, 6, 8))
    assert len(days) == 3
    killed_day = days[1]

    accounts = _Recording(RayAccounts(remote_home, config, data.daily.market))
    try:
        run_arena_day(accounts, data, days[0], home=remote_home, config=config, write_report=False)
        actor = accounts.inner.actors["aggressive"]
        old_pid = int(ray.get(actor.pid.remote()))
        assert ray.get(actor.books.remote())["positions"], "the account must hold something"

        # The day's start-up check moves the ledger's verified marks to day 0 (a write); done
        # here, the check of the killed day only reads, so the one thing the held lock stops
        # is the accounts' commit.
        refuse_broken_ledger(remote_home)
        lock = sqlite3.connect(str(remote_home.ledger_db), isolation_level=None, timeout=60.0)
        lock.execute("BEGIN IMMEDIATE")  # no account can commit while this is held
        outcome: dict[str, Any] = {}

        def run_day() -> None:
            try:
                outcome["summary"] = run_arena_day(
                    accounts, data, killed_day, home=remote_home, config=config,
                    write_report=False,
                )  # fmt: skip
            except BaseException as error:  # surfaced by the assertions below
                outcome["error"] = error

        worker = threading.Thread(target=run_day, daemon=True)
        released = False
        try:
            worker.start()
            # The actor's busy handler is 60 s; find it waiting well before that runs out.
            deadline = time.monotonic() + 30
            while _main_thread_syscall(old_pid) not in SLEEP_SYSCALLS:
                assert time.monotonic() < deadline, "run_day never reached its commit"
                assert worker.is_alive(), outcome
                time.sleep(0.02)
            # Mid-day: the trades are computed, nothing of the day is in the ledger.
            rows = lock.execute(
                "SELECT COUNT(*) FROM equity WHERE day=?", (killed_day.isoformat(),)
            ).fetchone()
            assert rows == (0,)
            os.kill(old_pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while not _gone(old_pid):
                assert time.monotonic() < deadline, "the killed actor process did not exit"
                time.sleep(0.05)
            lock.execute("ROLLBACK")
            released = True
        finally:
            if not released:
                lock.execute("ROLLBACK")
            lock.close()
        worker.join(timeout=180)
        assert not worker.is_alive(), "the day did not finish after the actor restarted"
        assert "error" not in outcome, outcome.get("error")
        assert outcome["summary"]["already_committed"] is False
        # The retried call computed the day itself: the killed attempt had committed nothing.
        assert set(accounts.results) == set(PERSONA_NAMES)
        assert accounts.results["aggressive"].already_committed is False
        new_pid = int(ray.get(actor.pid.remote()))
        assert new_pid != old_pid

        # Re-running the day is recognised as committed; the next day runs normally.
        again = run_arena_day(
            accounts, data, killed_day, home=remote_home, config=config, write_report=False
        )
        assert again["already_committed"] is True
        after = run_arena_day(
            accounts, data, days[2], home=remote_home, config=config, write_report=False
        )
        assert after["already_committed"] is False
    finally:
        accounts.close()

    local = LocalAccounts(local_home, config, data.rules())
    try:
        for day in days[:3]:
            run_arena_day(local, data, day, home=local_home, config=config, write_report=False)
    finally:
        local.close()

    remote_tables = _tables(remote_home.ledger_db)
    conn = sqlite3.connect(str(remote_home.ledger_db))
    try:
        per_account = conn.execute(
            "SELECT account, COUNT(*) FROM equity WHERE day=? GROUP BY account",
            (killed_day.isoformat(),),
        ).fetchall()
        fill_ids = [r[0] for r in conn.execute("SELECT fill_id FROM fills").fetchall()]
        day_fills = conn.execute(
            "SELECT COUNT(*) FROM fills WHERE day=?", (killed_day.isoformat(),)
        ).fetchone()[0]
    finally:
        conn.close()
    assert sorted(per_account) == sorted((name, 1) for name in PERSONA_NAMES)
    assert len(fill_ids) == len(set(fill_ids))
    assert day_fills > 0, "the killed day must trade for the duplicate check to bite"
    assert remote_tables == _tables(local_home.ledger_db)
    with Ledger(remote_home.ledger_db) as ledger:
        assert ledger.verify(calendar=days[:3]).ok
