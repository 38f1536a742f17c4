"""The pure daily cycle: determinism, crash and re-run, look-ahead, committed days."""

from __future__ import annotations

import sqlite3
import sys
from datetime import date
from pathlib import Path

import pytest

from alphaloop.home import LabHome
from arena.bootstrap import BOOTSTRAP_GENOMES, arena_genomes, bootstrap_genomes
from arena.day import LocalAccounts, run_arena_day
from arena.ledger import UNATTRIBUTED, Ledger
from arena.market import ArenaData, day_market, load_arena_data, trading_days
from arena.personas import load_arena_config
from arena.plan import plan_day
from arena.season import season_days

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crashing_accounts import CrashingAccounts

SPEC = "synthetic:seed=3,assets=5,start=2022-01-01,end=2023-12-31"
START, END = date(2023, 6, 1), date(2023, 6, 7)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ArenaData:
    return load_arena_data(SPEC, LabHome(tmp_path_factory.mktemp("data")))


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            for table in ("orders", "fills", "positions", "equity", "decisions", "risk_events")
        }
    finally:
        conn.close()


def _run(home: LabHome, data: ArenaData, days: list[date], fail_after: int | None = None) -> None:
    config = load_arena_config()
    accounts = (
        LocalAccounts(home, config, data.rules())
        if fail_after is None
        else CrashingAccounts(home, config, data.rules(), fail_after=fail_after)
    )
    try:
        for day in days:
            run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
    finally:
        accounts.close()


def test_cycle_same_seed_and_config_identical_ledger(tmp_path: Path, data: ArenaData) -> None:
    days = season_days(data, START, END)
    first, second = LabHome(tmp_path / "a").ensure(), LabHome(tmp_path / "b").ensure()
    _run(first, data, days)
    _run(second, data, days)
    left, right = _tables(first.ledger_db), _tables(second.ledger_db)
    assert left["fills"], "the season must trade for the comparison to mean something"
    assert left == right


def test_cycle_crash_after_first_account_rerun_matches_uninterrupted(
    tmp_path: Path, data: ArenaData
) -> None:
    days = season_days(data, START, END)
    clean, crashed = LabHome(tmp_path / "clean").ensure(), LabHome(tmp_path / "crash").ensure()
    _run(clean, data, days)
    _run(crashed, data, days[:-1])
    with pytest.raises(RuntimeError, match="injected crash"):
        _run(crashed, data, days[-1:], fail_after=1)
    with Ledger(crashed.ledger_db) as ledger:
        assert ledger.is_committed("aggressive", days[-1])
        assert not ledger.is_committed("conservative", days[-1])
    _run(crashed, data, days[-1:])
    assert _tables(crashed.ledger_db) == _tables(clean.ledger_db)
    with Ledger(crashed.ledger_db) as ledger:
        assert ledger.verify(calendar=days).ok


def test_cycle_future_bars_removed_same_decisions(data: ArenaData) -> None:
    day = date(2023, 6, 5)
    config = load_arena_config()
    equities = {"aggressive": 1e6, "conservative": 1e6, "synthesis": 1e6}
    full = plan_day(data.daily, day, bootstrap_genomes(), config, equities)
    index = trading_days(data.daily).index(day)
    cut = data.daily.slice_bars(0, index)  # bars up to the close of D-1 only
    past = plan_day(cut, day, bootstrap_genomes(), config, equities)
    assert any(plan.targets for plan in full.accounts.values())
    for name, plan in full.accounts.items():
        assert plan.targets == past.accounts[name].targets
        assert plan.decision == past.accounts[name].decision
        assert plan.decision_id == past.accounts[name].decision_id


def test_cycle_future_bars_changed_same_decisions(data: ArenaData) -> None:
    # Scrambling every bar from D on must not move a single decision of D.
    day = date(2023, 6, 5)
    config = load_arena_config()
    equities = {"aggressive": 1e6, "conservative": 1e6, "synthesis": 1e6}
    index = trading_days(data.daily).index(day)
    daily = data.daily
    close = daily.close.copy()
    close[index:] = close[index:] * 1.5
    high = daily.high.copy()
    high[index:] = high[index:] * 1.5
    open_, low = daily.open.copy(), daily.low.copy()
    open_[index:] *= 1.5
    low[index:] *= 1.5
    from dataclasses import replace

    changed = replace(daily, close=close, high=high, open=open_, low=low)
    before = plan_day(daily, day, bootstrap_genomes(), config, equities)
    after = plan_day(changed, day, bootstrap_genomes(), config, equities)
    assert {n: p.decision for n, p in before.accounts.items()} == {
        n: p.decision for n, p in after.accounts.items()
    }


def test_cycle_committed_day_again_changes_nothing(tmp_path: Path, data: ArenaData) -> None:
    home = LabHome(tmp_path / "h").ensure()
    config = load_arena_config()
    day = date(2023, 6, 1)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        first = run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
        snapshot = _tables(home.ledger_db)
        again = run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
        assert not first["already_committed"] and again["already_committed"]
        assert _tables(home.ledger_db) == snapshot
        forced = run_arena_day(
            accounts, data, day, home=home, config=config, force=True, write_report=False
        )
        assert not forced["already_committed"]
        assert _tables(home.ledger_db) == snapshot
        assert forced["accounts"] == first["accounts"]
    finally:
        accounts.close()


def test_cycle_day_writes_report_and_parquet(tmp_path: Path, data: ArenaData) -> None:
    home = LabHome(tmp_path / "r").ensure()
    config = load_arena_config()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        summary = run_arena_day(accounts, data, date(2023, 6, 1), home=home, config=config)
    finally:
        accounts.close()
    folder = home.runs / "2023-06-01"
    assert (
        Path(summary["report"]["markdown"])
        .read_text()
        .startswith("# AlphaLoop arena: daily report 2023-06-01")
    )
    assert (folder / "fills.parquet").exists() and (folder / "decisions.parquet").exists()
    assert set(summary["accounts"]) == {"aggressive", "conservative", "synthesis"}


def test_cycle_orders_point_to_stored_decision_chain(tmp_path: Path, data: ArenaData) -> None:
    home = LabHome(tmp_path / "d").ensure()
    _run(home, data, season_days(data, START, END))
    conn = sqlite3.connect(str(home.ledger_db))
    try:
        orphans = conn.execute(
            "SELECT COUNT(*) FROM orders o LEFT JOIN decisions d ON d.account = o.account "
            "AND d.decision_id = o.decision_id WHERE d.decision_id IS NULL"
        ).fetchone()[0]
        debated = conn.execute(
            "SELECT COUNT(*) FROM orders o JOIN decisions d ON d.account = o.account AND "
            "d.decision_id = o.decision_id WHERE o.account = 'synthesis' "
            "AND json_extract(d.payload, '$.debate.verdict') IS NOT NULL"
        ).fetchone()[0]
        n_synthesis = conn.execute(
            "SELECT COUNT(*) FROM orders WHERE account = 'synthesis'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert orphans == 0
    assert n_synthesis > 0 and debated == n_synthesis


def test_cycle_daily_only_data_uses_single_bar_fallback(data: ArenaData) -> None:
    market = day_market(data.daily, date(2023, 6, 1), None)
    assert not market.intraday
    assert all(len(bars) == 1 for bars in market.bars.values())
    minute = data.minute_bars(date(2023, 6, 1))
    assert minute is not None
    intraday = day_market(data.daily, date(2023, 6, 1), minute)
    assert intraday.intraday and all(len(b) == minute.n_bars for b in intraday.bars.values())


def test_bootstrap_used_when_no_champion(lab_home: LabHome) -> None:
    chosen = arena_genomes(lab_home)
    assert {g.genome.id for g in chosen} == {g.id for g in BOOTSTRAP_GENOMES.values()}
    assert not lab_home.gene_pool_db.exists()
    assert {g.genome.style for g in chosen} == {"trend", "breakout", "mean_reversion", "defensive"}


def test_cycle_plan_two_genomes_one_name_sources_share_the_weight(data: ArenaData) -> None:
    day = date(2023, 6, 1)
    config = load_arena_config()
    equities = {"aggressive": 1e6, "conservative": 1e6, "synthesis": 1e6}
    plan = plan_day(data.daily, day, bootstrap_genomes(), config, equities)
    targets = [t for p in plan.accounts.values() for t in p.targets]
    assert any(len(t.sources) >= 2 for t in targets), "the case needs a shared name"
    for target in targets:
        assert target.sources and abs(sum(s for _, s in target.sources) - 1.0) <= 1e-9
        assert [g for g, _ in target.sources] == sorted(g for g, _ in target.sources)
        largest = max(s for _, s in target.sources)
        assert dict(target.sources)[target.genome_id] == largest
    for name, account in plan.accounts.items():
        payload = {t["symbol"]: t["sources"] for t in account.decision["targets"]}
        assert payload == {t.symbol: dict(t.sources) for t in account.targets}, name
    aggressive = {t.symbol: t.sources for t in plan.accounts["aggressive"].targets}
    for target in plan.accounts["synthesis"].targets:  # scaled by the debate and the budgets
        assert target.sources == aggressive[target.symbol]


def test_cycle_season_attribution_sums_to_each_day_equity_change(
    tmp_path: Path, data: ArenaData
) -> None:
    home = LabHome(tmp_path / "g").ensure()
    days = season_days(data, START, END)
    _run(home, data, days)
    with Ledger(home.ledger_db) as ledger:
        report = ledger.verify(calendar=days)
        assert report.ok and report.days_unattributed == 0
        for account in ledger.accounts():
            equities = [ledger.opening_state(account).cash]
            equities += [e.equity for _, e in ledger.equity_history(account)]
            for k, day in enumerate(ledger.committed_days(account)):
                rows = ledger.attribution(account, start=day, end=day)
                assert sum(r.pnl for r in rows) == equities[k + 1] - equities[k]
        genomes = {r.genome_id for r in ledger.attribution()}
    assert genomes and UNATTRIBUTED not in genomes  # every name traded was asked for
