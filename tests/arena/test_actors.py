"""The accounts as Ray actors: same ledger as in-process, restart restores from the ledger."""

from __future__ import annotations

import sqlite3
import time
from datetime import date
from pathlib import Path

from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.ledger import Ledger
from arena.market import load_arena_data
from arena.personas import load_arena_config
from arena.season import season_days
from arena.trade import AccountDayResult

SPEC = "synthetic:seed=5,assets=5,start=2022-01-01,end=2023-12-31"


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
            for t in ("orders", "fills", "positions", "equity", "decisions", "risk_events")
        }
    finally:
        conn.close()


def test_actor_killed_restarts_with_ledger_state_and_same_ledger(
    ray_cluster: None, tmp_path: Path
) -> None:
    import ray

    from arena.actors import MAX_RESTARTS, RayAccounts

    assert MAX_RESTARTS >= 1
    config = load_arena_config()
    remote_home = LabHome(tmp_path / "ray").ensure()
    local_home = LabHome(tmp_path / "local").ensure()
    data = load_arena_data(SPEC, local_home)
    days = season_days(data, date(2023, 6, 1), date(2023, 6, 6))

    accounts = RayAccounts(remote_home, config, data.daily.market)
    try:
        run_arena_day(accounts, data, days[0], home=remote_home, config=config, write_report=False)
        actor = accounts.actors["aggressive"]
        before = ray.get(actor.books.remote())
        pid = ray.get(actor.pid.remote())
        assert before["positions"], "the account must hold something for the test to bite"
        ray.kill(actor, no_restart=False)
        # ray.kill is asynchronous: a call sent right after it may still be served by the old
        # process. Wait for the restarted one (a new pid), then read its books.
        deadline = time.monotonic() + 60
        restarted = False
        while time.monotonic() < deadline and not restarted:
            try:
                restarted = ray.get(actor.pid.remote(), timeout=30) != pid
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                pass
            if not restarted:
                time.sleep(0.5)
        assert restarted, "the killed actor was not restarted within 60 s"
        # A new process rebuilt the books from the ledger.
        assert ray.get(actor.books.remote(), timeout=60) == before
        for day in days[1:]:
            summary = run_arena_day(
                accounts, data, day, home=remote_home, config=config, write_report=False
            )
            assert not summary["already_committed"]
    finally:
        accounts.close()

    local = LocalAccounts(local_home, config, data.rules())
    try:
        for day in days:
            run_arena_day(local, data, day, home=local_home, config=config, write_report=False)
    finally:
        local.close()
    assert _tables(remote_home.ledger_db) == _tables(local_home.ledger_db)
    with Ledger(remote_home.ledger_db) as ledger:
        assert ledger.verify(calendar=days).ok


def test_actor_results_pickle_round_trip(ray_cluster: None, tmp_path: Path) -> None:
    from ray import cloudpickle

    from arena.actors import RayAccounts

    config = load_arena_config()
    home = LabHome(tmp_path / "p").ensure()
    data = load_arena_data(SPEC, home)
    accounts = RayAccounts(home, config, data.daily.market)
    try:
        day = season_days(data, date(2023, 6, 1), date(2023, 6, 1))[0]
        from arena.bootstrap import bootstrap_genomes
        from arena.market import day_market
        from arena.plan import plan_day

        plan = plan_day(data.daily, day, bootstrap_genomes(), config, accounts.equity_before(day))
        market = day_market(data.daily, day, data.minute_bars(day))
        # What crosses Ray: the account plans and the day's bars (cloudpickle, as Ray does).
        for item in (*plan.accounts.values(), market):
            assert cloudpickle.loads(cloudpickle.dumps(item)) == item
        results = accounts.run(plan.accounts, market, force=False)
    finally:
        accounts.close()
    assert set(results) == {"aggressive", "conservative", "synthesis"}
    assert all(isinstance(r, AccountDayResult) and r.day == day for r in results.values())
    with Ledger(home.ledger_db) as ledger:
        for name, result in results.items():
            assert ledger.equity_history(name)[-1][1] == result.equity_snapshot
