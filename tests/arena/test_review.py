"""The review stage: each genome's paper day against its shadow backtest, on real arena days."""

from __future__ import annotations

import json
import math
import pickle
import re
import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from alphaloop.home import LabHome
from arena.book import InvariantViolation
from arena.bootstrap import bootstrap_genomes
from arena.day import GENOME_SUMMARY_FIELDS, LocalAccounts, run_arena_day
from arena.ledger import GENOME_DAY_GRID, GenomeDay, Ledger, LedgerError, to_grid
from arena.market import ArenaData, day_index, load_arena_data
from arena.money import money_to_float
from arena.personas import PERSONA_NAMES, ArenaConfig, load_arena_config
from arena.plan import HISTORY_BARS, TRADE_BARS
from arena.review import ReviewError, day_sleeves, review_day
from arena.season import season_days
from genome.compile import compile_and_backtest

SPEC = "synthetic:seed=3,assets=5,start=2022-01-01,end=2023-12-31"
START, END = date(2023, 6, 1), date(2023, 6, 7)
# Per-trade risk of at most 0.2% of equity (a 10% stop): every sizeable buy is cut down.
TIGHT = {"risk": {"max_trade_risk": 0.002}}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ArenaData:
    return load_arena_data(SPEC, LabHome(tmp_path_factory.mktemp("data")))


def _run(
    home: LabHome, data: ArenaData, days: list[date], config: ArenaConfig, **options: Any
) -> list[dict[str, Any]]:
    accounts = LocalAccounts(home, config, data.rules())
    try:
        return [
            run_arena_day(
                accounts, data, day, home=home, config=config, write_report=False, **options
            )
            for day in days
        ]
    finally:
        accounts.close()


@pytest.fixture(scope="module")
def season(
    tmp_path_factory: pytest.TempPathFactory, data: ArenaData
) -> tuple[LabHome, list[dict[str, Any]]]:
    """Five arena days with the default configuration (TWAP, no registered policy)."""
    home = LabHome(tmp_path_factory.mktemp("season")).ensure()
    return home, _run(home, data, season_days(data, START, END), load_arena_config())


@pytest.fixture(scope="module")
def tight(
    tmp_path_factory: pytest.TempPathFactory, data: ArenaData
) -> tuple[LabHome, dict[str, Any]]:
    """One arena day under a tightened per-trade risk limit."""
    home = LabHome(tmp_path_factory.mktemp("tight")).ensure()
    return home, _run(home, data, [START], load_arena_config(overrides=TIGHT))[0]


def _rows(home: LabHome) -> list[GenomeDay]:
    with Ledger(home.ledger_db) as ledger:
        return ledger.genome_days()


# --------------------------------------------------------------------------- the parts
def test_review_arena_days_four_parts_sum_exactly_to_pnl_minus_expected(
    season: tuple[LabHome, list[dict[str, Any]]], data: ArenaData
) -> None:
    home, _ = season
    rows = _rows(home)
    days = season_days(data, START, END)
    with Ledger(home.ledger_db) as ledger:
        for day in days:
            for account in PERSONA_NAMES:
                assert ledger.is_reviewed(account, day)
                sleeves = day_sleeves(ledger, account, day)
                stored = [r for r in rows if r.account == account and r.day == day]
                assert [r.genome_id for r in stored] == [s.genome_id for s in sleeves]
                equity = money_to_float(ledger.close_before(account, day).equity, 2)
                for row, sleeve in zip(stored, sleeves, strict=True):
                    assert row.sleeve == sleeve.sleeve > 0
                    assert row.allocation == sleeve.sleeve * equity
        assert ledger.verify(calendar=days).ok
    assert {r.account for r in rows} == set(PERSONA_NAMES)
    for row in rows:
        # Exact, not within a tolerance: the money figures lie on the review's grid.
        parts = row.execution_cost + row.governor_cuts + row.debate_scaling + row.residual
        assert parts == row.pnl - row.expected_pnl
        assert math.fsum((row.execution_cost, row.governor_cuts, row.debate_scaling,
                          row.residual)) == row.pnl - row.expected_pnl  # fmt: skip
        assert abs(row.expected_pnl - row.allocation * row.expected_return) <= GENOME_DAY_GRID
    # The decomposition means something: fills moved the parts, the backtest expected P&L.
    assert any(r.execution_cost != 0 for r in rows) and any(r.expected_pnl != 0 for r in rows)
    assert any(r.debate_scaling != 0 for r in rows if r.account == "synthesis")


def test_review_paper_return_is_pnl_over_allocation_and_pnl_is_attribution(
    season: tuple[LabHome, list[dict[str, Any]]],
) -> None:
    home, _ = season
    with Ledger(home.ledger_db) as ledger:
        attributed = {(a.account, a.day, a.genome_id): a.pnl_float for a in ledger.attribution()}
    rows = _rows(home)
    assert any(r.pnl != 0 for r in rows)
    for row in rows:
        assert row.paper_return == row.pnl / row.allocation
        assert row.pnl == to_grid(attributed.get((row.account, row.day, row.genome_id), 0.0))
        assert abs(row.pnl - attributed.get((row.account, row.day, row.genome_id), 0.0)) < 1e-6


def test_review_twap_day_nothing_cut_no_debate_zero_cuts_and_scaling(
    season: tuple[LabHome, list[dict[str, Any]]], data: ArenaData
) -> None:
    home, _ = season
    checked = 0
    with Ledger(home.ledger_db) as ledger:
        for day in season_days(data, START, END):
            for account in ("aggressive", "conservative"):
                # Nothing was cut: no risk event names an order of the account that day.
                if any(e.order_id for e in ledger.risk_events(account, day)):
                    continue
                for row in ledger.genome_days(account, start=day, end=day):
                    assert row.governor_cuts == 0.0 and row.debate_scaling == 0.0
                    assert row.risk_block_count == 0
                    checked += row.execution_cost != 0
    assert checked  # genome days that traded, not only idle ones


def _requested(reason: str) -> tuple[str, str, float]:
    # The governor's own words: "clip: buy 497.063 SYN000: ...". Six significant digits.
    match = re.match(r"(?:clip|veto): (buy|sell) (\S+) (\S+):", reason)
    assert match, reason
    return match.group(1), match.group(3), float(match.group(2))


def test_review_tight_trade_risk_cut_genomes_governor_cuts_nonzero(
    tight: tuple[LabHome, dict[str, Any]], data: ArenaData
) -> None:
    home, _ = tight
    day = START
    index = day_index(data.daily, day)
    move = {
        s: float(data.daily.close[index, k] - data.daily.close[index - 1, k])
        for k, s in enumerate(data.daily.symbols)
    }
    with Ledger(home.ledger_db) as ledger:
        for account in PERSONA_NAMES:
            events = [e for e in ledger.risk_events(account, day) if e.order_id]
            orders = {o.symbol: o for o in ledger.orders(account, day)}
            # Independently of the review: requested from the governor's message, approved
            # from the stored order, the genome's share from the order's stored shares.
            estimate: dict[str, float] = {}
            for event in events:
                side, symbol, requested = _requested(event.reason)
                order = orders[symbol]
                approved = order.quantity / 1e6  # quantity_digits 6 on this market
                sign = 1.0 if side == "buy" else -1.0
                for genome_id, share in order.genomes:
                    cut = share * sign * (approved - requested) * move[symbol]
                    estimate[genome_id] = estimate.get(genome_id, 0.0) + cut
            rows = ledger.genome_days(account, start=day, end=day)
            for row in rows:
                if row.genome_id in estimate:
                    assert row.governor_cuts != 0.0 and row.risk_block_count > 0
                    assert row.governor_cuts == pytest.approx(estimate[row.genome_id], rel=1e-4)
                else:
                    assert row.governor_cuts == 0.0 and row.risk_block_count == 0
            if account == "aggressive":
                assert events and any(r.genome_id in estimate for r in rows)
        assert ledger.verify().ok


# --------------------------------------------------------------------------- shadow backtest
def test_review_shadow_return_equals_independent_backtest_through_day(
    season: tuple[LabHome, list[dict[str, Any]]], data: ArenaData
) -> None:
    home, _ = season
    genomes = {item.genome.id: item.genome for item in bootstrap_genomes()}
    seen: dict[tuple[date, str], float] = {}
    for row in _rows(home):
        key = (row.day, row.genome_id)
        if key in seen:  # one shadow backtest per genome and day, whatever the account
            assert row.expected_return == seen[key]
            continue
        index = day_index(data.daily, row.day)
        cut = data.daily.slice_bars(0, index + 1)  # bars up to the close of D
        window = cut.slice_bars(max(0, cut.n_bars - 1 - HISTORY_BARS), cut.n_bars)
        start = max(0, window.n_bars - 1 - TRADE_BARS)  # where the plan's backtest started
        result = compile_and_backtest(genomes[row.genome_id], window, start=start)
        equity = result.equity.to_numpy()
        assert row.expected_return == equity[-1] / equity[-2] - 1.0
        # Through D-1 the shadow's books are the ones the plan read (the plan's bars only).
        plan = compile_and_backtest(
            genomes[row.genome_id], window.slice_bars(0, window.n_bars - 1), start=start
        )
        assert list(plan.equity.to_numpy()) == list(equity[:-1])
        seen[key] = row.expected_return
    assert any(value != 0.0 for value in seen.values())


# --------------------------------------------------------------------------- crash and force
def test_review_crash_between_commit_and_review_rerun_equals_straight_run(
    tmp_path: Path,
    data: ArenaData,
    season: tuple[LabHome, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    straight, summaries = season
    crashed = LabHome(tmp_path / "crash").ensure()
    config = load_arena_config()
    days = season_days(data, START, END)[:2]
    _run(crashed, data, days[:1], config)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected crash between the commit and the review")

    monkeypatch.setattr("arena.review.review_day", crash)
    with pytest.raises(RuntimeError, match="injected crash"):
        _run(crashed, data, days[1:], config)
    with Ledger(crashed.ledger_db) as ledger:
        assert all(ledger.is_committed(a, days[1]) for a in PERSONA_NAMES)
        assert not any(ledger.is_reviewed(a, days[1]) for a in PERSONA_NAMES)
        assert ledger.genome_days(start=days[1]) == []
    monkeypatch.undo()
    # The next run finds the day committed, reviews it from the ledger and the data alone.
    again = _run(crashed, data, days[1:], config)[0]
    assert again["already_committed"]
    expected = [r for r in _rows(straight) if r.day <= days[1]]
    assert _rows(crashed) == expected
    assert again["genomes"] == summaries[1]["genomes"]


def test_review_force_day_genome_days_follow_the_new_day(tmp_path: Path, data: ArenaData) -> None:
    home = LabHome(tmp_path / "force").ensure()
    _run(home, data, [START], load_arena_config())
    before = _rows(home)
    assert before and all(r.governor_cuts == 0.0 for r in before)
    forced = _run(home, data, [START], load_arena_config(overrides=TIGHT), force=True)[0]
    after = _rows(home)
    assert not forced["already_committed"]
    assert after != before and any(r.governor_cuts != 0.0 for r in after)
    with Ledger(home.ledger_db) as ledger:
        attributed = {(a.account, a.genome_id): a.pnl_float for a in ledger.attribution()}
        report = ledger.verify()
        assert report.ok, report.to_dict()
    for row in after:
        assert row.pnl == to_grid(attributed.get((row.account, row.genome_id), 0.0))
    assert forced["genomes"] == [
        {name: row.to_dict()[name] for name in GENOME_SUMMARY_FIELDS} for row in after
    ]


def test_review_summary_genomes_are_json_floats_of_the_stored_rows(
    season: tuple[LabHome, list[dict[str, Any]]],
) -> None:
    home, summaries = season
    rows = _rows(home)
    for summary in summaries:
        listed = json.loads(json.dumps(summary["genomes"], allow_nan=False))
        assert listed and all(tuple(item) == GENOME_SUMMARY_FIELDS for item in listed)
        day = date.fromisoformat(summary["date"])
        stored = [r for r in rows if r.day == day]
        assert listed == [{n: r.to_dict()[n] for n in GENOME_SUMMARY_FIELDS} for r in stored]
        for item in listed:
            for name in GENOME_SUMMARY_FIELDS[3:]:
                assert isinstance(item[name], float)


def test_review_unknown_genome_raises(
    season: tuple[LabHome, list[dict[str, Any]]], data: ArenaData
) -> None:
    home, _ = season
    from arena.market import day_market

    with Ledger(home.ledger_db) as ledger, pytest.raises(ReviewError, match="unknown genomes"):
        review_day(
            ledger, START, daily=data.daily, market=day_market(data.daily, START),
            rules=data.rules(), genomes={},
        )  # fmt: skip


# --------------------------------------------------------------------------- the record
def _day(**changes: Any) -> GenomeDay:
    values: dict[str, Any] = {
        "account": "aggressive", "day": START, "genome_id": "g1", "source": "bootstrap:x",
        "sleeve": 0.1, "allocation": 100_000.0, "pnl": to_grid(12.34),
        "paper_return": to_grid(12.34) / 100_000.0, "expected_return": 0.0002,
        "expected_pnl": to_grid(20.0), "execution_cost": to_grid(-3.5),
        "governor_cuts": 0.0, "debate_scaling": 0.0, "avg_slippage_bps": 4.0, "fill_ratio": 1.0,
        "order_reject_count": 0, "risk_block_count": 0, "turnover": 0.05,
    }  # fmt: skip
    values["residual"] = (values["pnl"] - values["expected_pnl"]) - values["execution_cost"]
    values.update(changes)
    return GenomeDay(**values)


def test_genome_day_parts_not_summing_raise() -> None:
    row = _day()
    assert pickle.loads(pickle.dumps(row)) == row
    with pytest.raises(InvariantViolation, match="parts sum"):
        _day(residual=row.residual + GENOME_DAY_GRID)
    with pytest.raises(ValueError, match="GENOME_DAY_GRID"):
        _day(execution_cost=-3.5 + 1e-9)
    with pytest.raises(ValueError, match="pnl / allocation"):
        _day(paper_return=row.paper_return * 2)
    with pytest.raises(ValueError, match="fill_ratio"):
        _day(fill_ratio=1.5)


# --------------------------------------------------------------------------- the ledger
def test_ledger_write_genome_days_refuses_uncommitted_day_and_foreign_pnl(
    tmp_path: Path, season: tuple[LabHome, list[dict[str, Any]]]
) -> None:
    home, _ = season
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(home.ledger_db.read_bytes())
    with Ledger(path) as ledger:
        rows = ledger.genome_days("aggressive", start=START, end=START)
        moved = next(r for r in rows if r.pnl != 0)
        with pytest.raises(LedgerError, match="not committed"):
            ledger.write_genome_days("aggressive", date(2023, 7, 3), [])
        wrong = replace(
            moved, pnl=moved.pnl + 1.0, paper_return=(moved.pnl + 1.0) / moved.allocation,
            residual=moved.residual + 1.0,
        )  # fmt: skip
        with pytest.raises(LedgerError, match="not its attributed P&L"):
            ledger.write_genome_days("aggressive", START, [wrong])
        assert ledger.genome_days("aggressive", start=START, end=START) == rows
        ledger.write_genome_days("aggressive", START, rows)  # the same rows again: no change
        assert ledger.genome_days("aggressive", start=START, end=START) == rows


def test_verify_tampered_genome_day_reports_genome_day_mismatch(
    tmp_path: Path, season: tuple[LabHome, list[dict[str, Any]]]
) -> None:
    home, _ = season
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(home.ledger_db.read_bytes())
    with Ledger(path) as ledger:
        assert ledger.verify().ok  # the control: untouched, it passes
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE genome_days SET pnl = pnl + 1, residual = residual + 1 "
            "WHERE account = 'conservative' AND day = ?",
            (START.isoformat(),),
        )
    with Ledger(path) as ledger:
        report = ledger.verify()
    assert not report.ok
    assert {(i.kind, i.account, i.day) for i in report.issues} == {
        ("genome_day_mismatch", "conservative", START)
    }
