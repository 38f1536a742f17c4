"""The weekly evolution report, checked against figures recomputed from the store and ledger."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from arena.ledger import Ledger
from evolution.store import GenePoolStore, MemberRecord, VerdictRecord
from reports.weekly import (
    ReportDataMissing,
    closes_frame,
    parse_week,
    week_of,
    write_weekly_report,
)

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
WEEK = "2023-W24"  # 2023-06-12 .. 2023-06-18, holds the 2023-06-16 evolution


@pytest.fixture(scope="module")
def season(report_season_home: LabHome) -> tuple[LabHome, dict]:
    from arena.season import load_arena_data

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


def test_weekly_status_changes_listed_as_promoted_and_demoted(lab_home: LabHome) -> None:
    with GenePoolStore(lab_home.gene_pool_db) as store:
        store.create_session(
            session_id="s1", seed=0, as_of="2023-06-16", config={}, config_hash="c",
            data_hash="d", data_spec="synthetic", code_version="test",
        )  # fmt: skip
        store.commit_generation(
            session_id="s1", generation=0, stats={"best_score": 60.0, "median_score": 50.0},
            members=[_member("aaaa", "alive", "random", ()),
                     _member("bbbb", "champion", "random", ())],
        )  # fmt: skip
        store.commit_generation(
            session_id="s1", generation=1, stats={"best_score": 70.0, "median_score": 55.0},
            members=[_member("aaaa", "champion", "random", ()),
                     _member("bbbb", "culled", "random", ()),
                     _member("cccc", "alive", "crossover", ("aaaa", "bbbb"))],
            verdicts=[VerdictRecord(genome_id="aaaa", passed=True, reasons=("all rules pass",),
                                    figures={})],
        )  # fmt: skip
    out = write_weekly_report(lab_home, parse_week("2023-W24"), track=False)
    assert out["promoted"] == ["aaaa"] and out["demoted"] == ["bbbb"]
    assert out["champions"] == ["aaaa", "bbbb"]
    assert out["births"] == {"crossover": 1, "random": 2} and out["culled"] == 1
    assert out["best_score"] == 70.0
    markdown = Path(out["markdown"]).read_text()
    assert "champion -> culled" in markdown and "alive -> champion" in markdown
    assert "No arena day was committed" in markdown
