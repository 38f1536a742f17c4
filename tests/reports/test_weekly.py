"""The weekly evolution report, checked against figures recomputed from the store and ledger."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from arena.ledger import Ledger
from evolution.store import (
    GenePoolStore,
    MemberRecord,
    PaperDayRecord,
    TransitionRecord,
    VerdictRecord,
)
from reports.weekly import ReportDataMissing, closes_frame, parse_week, week_of, write_weekly_report

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
WEEK = "2023-W24"  # 2023-06-12 .. 2023-06-18, holds the 2023-06-16 evolution


@pytest.fixture(scope="module")
def season(report_season_home: LabHome) -> tuple[LabHome, dict]:
    from arena.market import load_arena_data

    home = report_season_home
    closes = closes_frame(load_arena_data(SPEC, home).daily)
    return home, write_weekly_report(home, parse_week(WEEK), closes=closes, track=False)


def _week_sessions(store: GenePoolStore, start: date, end: date) -> list[str]:
    ids = sorted({row["session_id"] for row in store.all_generations()})
    return [
        sid for sid in ids if start <= date.fromisoformat(store.session(sid)["as_of"][:10]) <= end
    ]


def test_parse_week_bad_formats_raise_config_error() -> None:
    for text in ("2023-24", "2023-W5", "W24-2023", "2023-W54", "2023-W00"):
        with pytest.raises(ConfigError, match="--week"):
            parse_week(text)
    period = parse_week("2023-W24")
    assert (period.start, period.end) == (date(2023, 6, 12), date(2023, 6, 18))
    assert week_of(date(2023, 6, 18)) == period


def test_weekly_births_and_culls_equal_store_lineage_counts(season) -> None:
    home, out = season
    period = parse_week(WEEK)
    with GenePoolStore(home.gene_pool_db) as store:
        sessions = _week_sessions(store, period.start, period.end)
        assert out["session_ids"] == sessions and len(sessions) == 1
        births: Counter[str] = Counter()
        culled: set[str] = set()
        seen: set[str] = set()
        for sid in sessions:
            for stats in store.generation_stats(sid):
                for member in store.population(sid, stats["generation"]):
                    if member["status"] == "culled":
                        culled.add(member["genome_id"])
                    if member["genome_id"] in seen:
                        continue
                    seen.add(member["genome_id"])
                    record = store.genome(member["genome_id"])
                    if record["born_session"] in sessions:
                        births[record["operator"]] += 1
    assert out["births"] == dict(births)
    assert out["born"] == sum(births.values())
    assert out["culled"] == len(culled)


def test_weekly_ranking_and_trend_match_generation_stats(season) -> None:
    home, out = season
    with GenePoolStore(home.gene_pool_db) as store:
        sid = out["session_ids"][-1]
        stats = store.generation_stats(sid)
        final = store.population(sid, stats[-1]["generation"])
    assert out["best_score"] == pytest.approx(max(s["best_score"] for s in stats))
    scores = [row["score"] for row in out["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(max(member["score"] for member in final))
    by_id = {member["genome_id"]: member for member in final}
    for row in out["ranking"]:
        assert row["description"] == by_id[row["genome_id"]]["description"]
    markdown = Path(out["markdown"]).read_text()
    for section in ("Ranking", "Fitness trend", "Lineage", "Promoted and demoted", "Lessons"):
        assert f"## {section}" in markdown


def test_weekly_account_figures_match_ledger(season) -> None:
    home, out = season
    period = parse_week(WEEK)
    with Ledger(home.ledger_db) as ledger:
        for account in ("aggressive", "conservative", "synthesis"):
            history = ledger.equity_history(account)
            before = [e.equity for d, e in history if d < period.start]
            inside = [e.equity for d, e in history if period.contains(d)]
            expected = inside[-1] / before[-1] - 1.0
            figures = out["accounts"][account]
            assert figures["return"] == pytest.approx(expected, rel=1e-12)
            assert figures["days"] == len(inside) == 5
    import sqlite3

    connection = sqlite3.connect(home.ledger_db)
    rows = connection.execute(
        "SELECT account, COUNT(*) FROM orders WHERE filled > 0 AND day BETWEEN ? AND ? "
        "GROUP BY account",
        (period.start.isoformat(), period.end.isoformat()),
    ).fetchall()
    connection.close()
    for account, count in rows:
        assert out["accounts"][account]["trades"] == count
    assert out["benchmark_return"] is not None


def test_weekly_html_self_contained_with_charts(season) -> None:
    home, out = season
    html = Path(out["html"]).read_text()
    assert Path(out["html"]).parent == home.reports / "weekly" / WEEK
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert html.count('src="data:image/png;base64,') >= 3  # trend, lineage, equity
    summary = json.loads(Path(out["summary"]).read_text())
    assert summary["births"] == out["births"] and summary["period"] == WEEK


def test_weekly_week_without_data_raises_naming_period(lab_home: LabHome) -> None:
    with pytest.raises(ReportDataMissing, match=r"2020-W01.*no committed arena day"):
        write_weekly_report(lab_home, parse_week("2020-W01"), track=False)


def _member(genome_id: str, status: str, operator: str, parents: tuple[str, ...]) -> MemberRecord:
    return MemberRecord(
        genome_id=genome_id, genome_json="{}", description=f"rules of {genome_id}",
        style="trend", parents=parents, operator=operator, born_generation=0, score=50.0,
        status=status, overfit=False, low_score_streak=0,
    )  # fmt: skip


def _session(store: GenePoolStore, session_id: str, as_of: str) -> None:
    store.create_session(
        session_id=session_id, seed=0, as_of=as_of, config={}, config_hash="c",
        data_hash="d", data_spec="synthetic", code_version="test",
    )  # fmt: skip


def _moves(genome_id: str, *path: str, **fields: Any) -> list[TransitionRecord]:
    return [
        TransitionRecord(
            genome_id=genome_id, from_status=a, to_status=b, reason=f"to {b}", **fields
        )
        for a, b in pairwise(path)
    ]


def test_weekly_status_changes_listed_as_promoted_and_demoted(lab_home: LabHome) -> None:
    with GenePoolStore(lab_home.gene_pool_db) as store:
        # An earlier session: dddd is champion when the week begins, eeee was demoted before.
        _session(store, "s0", "2023-06-02")
        store.commit_generation(
            session_id="s0", generation=0, stats={"best_score": 40.0, "median_score": 40.0},
            members=[_member("dddd", "alive", "random", ()),
                     _member("eeee", "alive", "random", ())],
            transitions=[*_moves("dddd", "alive", "candidate", "probation"),
                         *_moves("eeee", "alive", "candidate", "probation")],
        )  # fmt: skip
        store.transition(*_moves("dddd", "probation", "champion", day="2023-06-05"))
        store.transition(*_moves("eeee", "probation", "champion", day="2023-06-06"))
        store.transition(*_moves("eeee", "champion", "demoted", day="2023-06-08"))
        _session(store, "s1", "2023-06-16")
        store.commit_generation(
            session_id="s1", generation=0, stats={"best_score": 60.0, "median_score": 50.0},
            members=[_member("aaaa", "alive", "random", ()),
                     _member("bbbb", "alive", "random", ())],
        )  # fmt: skip
        store.commit_generation(
            session_id="s1", generation=1, stats={"best_score": 70.0, "median_score": 55.0},
            members=[_member("aaaa", "alive", "random", ()),
                     _member("bbbb", "culled", "random", ()),
                     _member("cccc", "alive", "crossover", ("aaaa", "bbbb"))],
            verdicts=[VerdictRecord(genome_id="aaaa", passed=True, reasons=("all rules pass",),
                                    figures={})],
            transitions=_moves("aaaa", "alive", "candidate", "probation"),
        )  # fmt: skip
        store.transition(*_moves("aaaa", "probation", "champion", day="2023-06-16"))
    out = write_weekly_report(lab_home, parse_week("2023-W24"), track=False)
    assert out["promoted"] == ["aaaa"] and out["demoted"] == ["bbbb"]
    assert out["champions"] == ["aaaa", "dddd"]
    assert out["births"] == {"crossover": 1, "random": 2} and out["culled"] == 1
    assert out["best_score"] == 70.0
    markdown = Path(out["markdown"]).read_text()
    assert "alive -> culled" in markdown and "probation -> champion" in markdown
    assert "No arena day was committed" in markdown


# --------------------------------------------------------------------------- the loop
MU = {"aaaa": 0.001, "bbbb": 0.002}
# (genome, account, day, allocation, pnl, shadow return, expected_pnl, execution cost, governor
# cuts, debate scaling): residual = pnl - expected_pnl - the three parts.
PAPER = [
    ("aaaa", "aggressive", "2023-06-09", 1000.0, 9.0, 0.008, 1.0, -0.5, 0.0, 0.0),  # week 23
    ("aaaa", "aggressive", "2023-06-12", 1000.0, 4.0, 0.005, 1.0, -0.5, 0.0, 0.0),
    ("aaaa", "synthesis", "2023-06-12", 3000.0, -6.0, 0.001, 3.0, -1.5, -2.0, -4.0),
    ("aaaa", "aggressive", "2023-06-13", 1010.0, -3.0, -0.002, 1.0, -0.5, 0.0, 0.0),
    ("aaaa", "synthesis", "2023-06-13", 2990.0, 9.0, 0.004, 3.0, -1.5, 0.0, 2.0),
    ("aaaa", "aggressive", "2023-06-14", 1005.0, 2.0, 0.003, 1.0, -0.5, -1.0, 0.0),
    ("bbbb", "aggressive", "2023-06-12", 500.0, -5.0, 0.002, 1.0, -0.25, 0.0, 0.0),
    ("bbbb", "aggressive", "2023-06-13", 495.0, -4.0, 0.001, 1.0, -0.25, -1.0, 0.0),
    ("bbbb", "aggressive", "2023-06-15", 490.0, -6.0, 0.0, 1.0, -0.25, 0.0, 0.0),
    ("aaaa", "aggressive", "2023-06-19", 1000.0, 7.0, 0.006, 1.0, -0.5, 0.0, 0.0),  # week 25
]
PARTS = ("execution_cost", "governor_cuts", "debate_scaling", "residual")


def _paper_rows() -> list[PaperDayRecord]:
    out = []
    for gid, account, day, allocation, pnl, shadow, expected, cost, cuts, scaling in PAPER:
        residual = pnl - expected - cost - cuts - scaling
        figures = {
            "expected_pnl": expected,
            "execution_cost": cost,
            "governor_cuts": cuts,
            "debate_scaling": scaling,
            "residual": residual,
            "avg_slippage_bps": 2.0,
        }
        out.append(PaperDayRecord(genome_id=gid, account=account, day=day, allocation=allocation,
                                  pnl=pnl, shadow_return=shadow, figures=figures))  # fmt: skip
    return out


@pytest.fixture
def loop_home(lab_home: LabHome) -> LabHome:
    """Two genomes on probation since 2023-06-09 (week 23), traded in week 24: bbbb demoted on
    2023-06-15, aaaa paused and resumed by users; a session in week 26 with no move at all."""
    from evolution.feedback import LiveFeedback

    with GenePoolStore(lab_home.gene_pool_db) as store:
        _session(store, "s1", "2023-06-09")
        gate = {gid: {"expected_daily_return": mu, "expected_daily_vol": 0.01,
                      "cusum_threshold": 4.0, "profit_factor_out_of_sample": 1.8}
                for gid, mu in MU.items()}  # fmt: skip
        store.commit_generation(
            session_id="s1", generation=0, stats={"best_score": 60.0, "median_score": 50.0},
            members=[_member(gid, "alive", "random", ()) for gid in ("aaaa", "bbbb", "cccc")],
            transitions=[*_moves("aaaa", "alive", "candidate", "probation", figures=gate["aaaa"]),
                         *_moves("bbbb", "alive", "candidate", "probation", figures=gate["bbbb"])],
        )  # fmt: skip
        store.write_paper_days(_paper_rows())
        store.transition(
            TransitionRecord(
                genome_id="bbbb", from_status="probation", to_status="demoted", day="2023-06-15",
                reason="probation: paper record 2.70 standard errors below the backtest",
                figures={"z": -2.7, "paper_days": 3.0, "paper_return": -0.03},
            )
        )  # fmt: skip
        for kind, actor, day in (("pause", "alice", "2023-06-14"), ("resume", "bob", "2023-06-16")):
            store.transition(
                TransitionRecord(
                    genome_id="aaaa", from_status="probation", to_status="probation", kind=kind,
                    actor=actor, reason=f"{actor} says {kind}", day=day,
                )
            )  # fmt: skip
        store.write_feedback(
            [
                LiveFeedback(
                    genome_id="aaaa", account="aggressive", period_start="2023-06-12",
                    period_end="2023-06-18", days=3, total_return=0.0029, max_drawdown=0.003,
                    volatility=0.05, sharpe=1.1, win_rate=0.67, turnover=0.4,
                    avg_slippage_bps=2.0, fill_ratio=0.95, order_reject_count=1,
                    risk_block_count=0,
                )
            ]
        )  # fmt: skip
        _session(store, "s3", "2023-06-30")
        store.commit_generation(
            session_id="s3", generation=0, stats={"best_score": 61.0, "median_score": 51.0},
            members=[_member("cccc", "alive", "random", ())],
        )  # fmt: skip
    return lab_home


def test_weekly_lifecycle_lists_the_weeks_moves_by_the_day_decided(loop_home: LabHome) -> None:
    out = write_weekly_report(loop_home, parse_week("2023-W24"), track=False)
    assert [(t["day"], t["genome_id"], t["kind"], t["from"], t["to"], t["actor"])
            for t in out["transitions"]] == [
        ("2023-06-15", "bbbb", "status", "probation", "demoted", "system"),
        ("2023-06-14", "aaaa", "pause", "probation", "probation", "alice"),
        ("2023-06-16", "aaaa", "resume", "probation", "probation", "bob"),
    ]  # fmt: skip
    assert out["transitions"][0]["figures"] == {"z": -2.7, "paper_days": 3.0, "paper_return": -0.03}
    assert out["demoted"] == ["bbbb"] and out["promoted"] == []
    assert out["status_counts"]["probation"] == 1 and out["status_counts"]["demoted"] == 1
    markdown = Path(out["markdown"]).read_text()
    lifecycle = markdown.split("## Lifecycle")[1].split("\n## ")[0]
    assert "3 lifecycle move(s)" in lifecycle
    assert "1 alive, 1 probation, 1 demoted (0 paused)" in lifecycle
    demotion = next(line for line in lifecycle.splitlines() if "probation -> demoted" in line)
    assert "bbbb" in demotion and "2.70 standard errors below" in demotion
    assert "z -2.7, paper_days 3, paper_return -0.03" in demotion
    assert (
        "pause (probation)" in lifecycle and "alice" in lifecycle and "bob says resume" in lifecycle
    )
    # The gate moves were decided on their session's as-of day, in week 23.
    before = write_weekly_report(loop_home, parse_week("2023-W23"), track=False)
    assert [(t["genome_id"], t["to"], t["day"]) for t in before["transitions"]] == [
        ("aaaa", "candidate", "2023-06-09"), ("aaaa", "probation", "2023-06-09"),
        ("bbbb", "candidate", "2023-06-09"), ("bbbb", "probation", "2023-06-09"),
    ]  # fmt: skip
    assert before["promoted"] == ["aaaa", "bbbb"]


def test_weekly_paper_against_backtest_recomputed_from_the_rows(loop_home: LabHome) -> None:
    out = write_weekly_report(loop_home, parse_week("2023-W24"), track=False)
    week = [row for row in PAPER if "2023-06-12" <= row[2] <= "2023-06-18"]
    status = {"aaaa": "probation", "bbbb": "demoted"}
    assert [r["genome_id"] for r in out["paper"]] == ["aaaa", "bbbb"]
    markdown = Path(out["markdown"]).read_text()
    paper_md = markdown.split("## Paper against backtest")[1].split("\n## ")[0]
    for record in out["paper"]:
        gid = record["genome_id"]
        mine = [row for row in week if row[0] == gid]
        days = sorted({row[2] for row in mine})
        paper = shadow = 1.0
        for day in days:
            same = [row for row in mine if row[2] == day]
            allocation = sum(row[3] for row in same)
            paper *= 1.0 + sum(row[4] for row in same) / allocation
            shadow *= 1.0 + sum(row[3] * row[5] for row in same) / allocation
        totals = {
            "execution_cost": sum(row[7] for row in mine),
            "governor_cuts": sum(row[8] for row in mine),
            "debate_scaling": sum(row[9] for row in mine),
            "residual": sum(row[4] - row[6] - row[7] - row[8] - row[9] for row in mine),
        }
        assert record["days"] == len(days) and record["status"] == status[gid]
        assert record["paper_return"] == pytest.approx(paper - 1.0, rel=1e-12)
        assert record["shadow_return"] == pytest.approx(shadow - 1.0, rel=1e-12)
        assert record["expected_return"] == pytest.approx(MU[gid] * len(days), rel=1e-12)
        assert record["pnl"] == pytest.approx(sum(row[4] for row in mine))
        for key, value in totals.items():
            assert record[key] == pytest.approx(value, abs=1e-12)
        line = next(line for line in paper_md.splitlines() if line.startswith(f"| {gid} |"))
        assert f"| {status[gid]} | {len(days)} | {paper - 1.0:+.2%} | " in line
        assert f"{MU[gid] * len(days):+.2%} | {shadow - 1.0:+.2%}" in line
        assert f"{totals['execution_cost']:+,.2f}" in line and f"{totals['residual']:+,.2f}" in line
    assert "LiveFeedback" in paper_md and "2023-06-12..2023-06-18" in paper_md
    html = Path(out["html"]).read_text()
    assert "Cumulative paper (solid) and shadow backtest (dashed)" in html


def test_weekly_week_without_moves_or_paper_days_says_none(loop_home: LabHome, season) -> None:
    quiet = write_weekly_report(loop_home, parse_week("2023-W26"), track=False)
    _, busy_season = season
    for out, week in ((quiet, "2023-W26"), (busy_season, WEEK)):
        assert out["transitions"] == [] and out["paper"] == []
        markdown = Path(out["markdown"]).read_text()
        assert f"Lifecycle moves in week {week}: none." in markdown
        assert f"Paper days of a genome in week {week}: none." in markdown
    with pytest.raises(ReportDataMissing, match="2023-W27"):
        write_weekly_report(loop_home, parse_week("2023-W27"), track=False)


def test_weekly_decision_quality_recomputed_from_the_ledger(season) -> None:
    import sqlite3

    home, out = season
    period = parse_week(WEEK)
    quality = out["decision_quality"]
    connection = sqlite3.connect(home.ledger_db)
    (debate,) = connection.execute(
        "SELECT SUM(debate_scaling) FROM genome_days WHERE account = 'synthesis' "
        "AND day BETWEEN ? AND ?",
        (period.start.isoformat(), period.end.isoformat()),
    ).fetchone()
    connection.close()
    if debate is None:
        assert quality["debate_value"] is None
    else:
        assert quality["debate_value"] == pytest.approx(debate, abs=1e-6)
    assert sum(row["trades"] for row in quality["reliability"]) == quality["trades"]
    if quality["trades"]:
        assert 0.0 <= quality["brier"] <= 1.0 and 0.0 <= quality["accuracy"] <= 1.0
    markdown = Path(out["markdown"]).read_text(encoding="utf-8")
    assert "## Decision quality (the synthesis judge)" in markdown
