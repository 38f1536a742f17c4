"""The paper stage: calibrated CUSUM, the sequential promotion rule, demotion budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolution.feedback import DayFigures, paper_stats, pooled_returns, summarise
from evolution.fitness import Fitness, FitnessConfig, with_paper
from evolution.lifecycle import (
    Expectation,
    PaperDay,
    PromotionConfig,
    calibrate,
    cusum_path,
    decide,
)

CONFIG = PromotionConfig()


def _days(returns, shadow=None) -> list[PaperDay]:
    shadow = returns if shadow is None else shadow
    return [
        PaperDay(day=f"2025-{1 + i // 28:02d}-{1 + i % 28:02d}", allocation=1000.0,
                 pnl=1000.0 * r, shadow_return=b)
        for i, (r, b) in enumerate(zip(returns, shadow, strict=True))
    ]  # fmt: skip


def _first_crossing(returns, expectation: Expectation, k: float) -> int | None:
    path = cusum_path(returns, expectation.mu, expectation.sigma, k)
    hits = np.nonzero(path > expectation.cusum_threshold)[0]
    return int(hits[0]) if hits.size else None


def test_cusum_threshold_is_seeded_by_the_genome_and_its_backtest() -> None:
    backtest = np.random.default_rng(1).normal(0.002, 0.01, 500)
    assert calibrate("g1", backtest, CONFIG) == calibrate("g1", backtest, CONFIG)
    assert calibrate("g1", backtest, CONFIG) != calibrate("g2", backtest, CONFIG)


def test_cusum_false_alarms_stay_near_the_calibrated_rate_when_the_edge_holds() -> None:
    rng = np.random.default_rng(2)
    backtest = rng.normal(0.004, 0.01, 750)
    expectation = calibrate("g", backtest, CONFIG)
    alarms = 0
    for _ in range(400):
        fresh = rng.normal(0.004, 0.01, CONFIG.cusum_horizon)
        alarms += _first_crossing(fresh, expectation, CONFIG.cusum_k) is not None
    assert alarms / 400 <= CONFIG.cusum_false_alarm + 0.04


def test_cusum_catches_a_strong_edge_that_stops_paying_within_twenty_days() -> None:
    rng = np.random.default_rng(3)
    backtest = rng.normal(0.008, 0.01, 750)  # daily mean / sd = 0.8: a strong edge
    expectation = calibrate("g", backtest, CONFIG)
    caught = 0
    for _ in range(200):
        decayed = rng.normal(0.0, 0.01, 20)
        caught += _first_crossing(decayed, expectation, CONFIG.cusum_k) is not None
    assert caught / 200 >= 0.8
    # The control: the same test on a weak edge (mean / sd = 0.1) cannot tell in 20 days.
    weak = calibrate("g", rng.normal(0.001, 0.01, 750), CONFIG)
    weak_caught = sum(
        _first_crossing(rng.normal(0.0, 0.01, 20), weak, CONFIG.cusum_k) is not None
        for _ in range(200)
    )
    assert weak_caught / 200 < 0.5


def test_probation_record_consistent_with_its_backtest_is_promoted_at_the_paper_stage() -> None:
    rng = np.random.default_rng(4)
    expectation = calibrate("g", rng.normal(0.003, 0.01, 500), CONFIG)
    record = list(rng.normal(expectation.mu, expectation.sigma, CONFIG.paper_days))
    early = decide("probation", _days(record[:-1]), expectation, CONFIG)
    assert early.to_status is None  # one day short of the paper stage
    done = decide("probation", _days(record), expectation, CONFIG)
    assert done.to_status == "champion" and done.figures["paper_days"] == CONFIG.paper_days
    assert done.figures["z"] >= -CONFIG.promote_z


def test_a_consistent_challenger_is_promoted_only_when_it_beats_its_incumbents() -> None:
    expectation = Expectation(mu=0.001, sigma=0.01, cusum_threshold=5.0)
    record = [0.002, 0.0, 0.001] * 7  # 21 days, mean 0.001: consistent with the backtest
    days = _days(record[: CONFIG.paper_days])
    mean = sum(record[: CONFIG.paper_days]) / CONFIG.paper_days
    # The control: alone (no incumbent) the record is promoted.
    assert decide("probation", days, expectation, CONFIG).to_status == "champion"
    better = _days([mean + 0.0005] * CONFIG.paper_days)
    trailing = decide("probation", days, expectation, CONFIG, incumbents=better)
    assert trailing.to_status is None and "trailing its incumbents" in trailing.reason
    assert trailing.figures["incumbent_days"] == CONFIG.paper_days
    assert trailing.figures["incumbent_mean"] == pytest.approx(mean + 0.0005)
    assert trailing.figures["challenger_mean"] == pytest.approx(mean)
    # Incumbents that did worse on the same days: promoted, the comparison in the reason.
    worse = _days([mean - 0.0005] * CONFIG.paper_days)
    beaten = decide("probation", days, expectation, CONFIG, incumbents=worse)
    assert beaten.to_status == "champion"
    assert "beat its incumbents on 20 common days" in beaten.reason
    # Only the common days count: incumbents' days the challenger has no paper day on do not.
    elsewhere = [PaperDay(day=f"2026-01-{i + 1:02d}", allocation=1.0, pnl=1.0) for i in range(5)]
    assert decide("probation", days, expectation, CONFIG, incumbents=elsewhere).to_status == (
        "champion"
    )
    # A trailing challenger still ends its probation demoted at the longest probation.
    config = PromotionConfig(paper_days=20, max_probation_days=21)
    late = decide("probation", _days(record), expectation, config, incumbents=_days(
        [mean + 0.0005] * 21))  # fmt: skip
    assert late.to_status == "demoted"


def test_probation_record_far_below_its_backtest_is_demoted_early() -> None:
    expectation = Expectation(mu=0.004, sigma=0.01, cusum_threshold=5.0)
    losing = [-0.01] * CONFIG.min_days
    decision = decide("probation", _days(losing), expectation, CONFIG)
    assert decision.to_status == "demoted" and decision.figures["z"] < -CONFIG.demote_z
    # One day earlier the rule does not look yet.
    assert decide("probation", _days(losing[:-1]), expectation, CONFIG).to_status is None


def test_probation_without_a_verdict_ends_demoted_after_the_longest_probation() -> None:
    expectation = Expectation(mu=0.004, sigma=0.01, cusum_threshold=5.0)
    config = PromotionConfig(paper_days=5, max_probation_days=8, promote_z=0.1, demote_z=9.0)
    middling = [0.0] * 8  # z = -1.13 at 8 days: not promotable (z < -0.1), never demoted early
    assert decide("probation", _days(middling[:7]), expectation, config).to_status is None
    assert decide("probation", _days(middling), expectation, config).to_status == "demoted"
    # A sleeve too small to ever trade: no paper day executed, yet probation still ends.
    never = decide("probation", [], expectation, config, elapsed=8)
    assert never.to_status == "demoted" and "8 arena days (0 paper days executed" in never.reason
    assert decide("probation", [], expectation, config, elapsed=7).to_status is None


def test_champion_is_demoted_when_paper_stops_tracking_the_same_day_backtest() -> None:
    expectation = Expectation(mu=0.001, sigma=0.01, cusum_threshold=50.0)
    paper = [0.001] * 10
    shadow = [0.001] * 5 + [0.05] * 5
    decision = decide("champion", _days(paper, shadow), expectation, CONFIG)
    assert decision.to_status == "demoted" and "consecutive days" in decision.reason
    # The control: four diverging days are not enough.
    four = decide("champion", _days(paper[:9], shadow[:9]), expectation, CONFIG)
    assert four.to_status is None


def test_champion_is_demoted_beyond_its_drawdown_budget() -> None:
    expectation = Expectation(mu=0.0, sigma=0.05, cusum_threshold=1e9)
    crash = [0.01, -0.15, -0.15]
    decision = decide("champion", _days(crash), expectation, CONFIG)
    assert decision.to_status == "demoted" and "drawdown" in decision.reason
    assert decision.figures["paper_drawdown"] == pytest.approx(1 - 0.85 * 0.85)
    assert decide("champion", _days(crash[:2]), expectation, CONFIG).to_status is None


def test_sat_out_days_feed_the_champions_cusum_but_not_its_paper_budgets() -> None:
    expectation = Expectation(mu=0.01, sigma=0.01, cusum_threshold=4.0)
    traded = _days([0.01] * 5)
    # Five sat-out days whose same-day backtest lost 1% each: the CUSUM climbs by
    # (0.01 + 0.01) / 0.01 - 0.5 = 1.5 a day and crosses 4 on the third.
    sat_out = [PaperDay.sat_out(f"2025-03-{d:02d}", -0.01) for d in range(1, 6)]
    decision = decide("champion", traded + sat_out[:3], expectation, CONFIG)
    assert decision.to_status == "demoted" and "CUSUM" in decision.reason
    assert decision.figures["sat_out_days"] == 3.0
    assert decision.figures["cusum"] == pytest.approx(4.5)
    # The control: two such days are not enough, and the paper figures read traded days only.
    two = decide("champion", traded + sat_out[:2], expectation, CONFIG)
    assert two.to_status is None and two.figures["cusum"] == pytest.approx(3.0)
    assert two.figures["paper_days"] == 5.0 and two.figures["paper_drawdown"] == 0.0
    # A sat-out day's "paper" equals its backtest: it neither extends nor breaks a divergence
    # streak, and it never counts as drawdown (nothing was traded).
    crash = Expectation(mu=0.0, sigma=0.05, cusum_threshold=1e9)
    lost = [PaperDay.sat_out(f"2025-03-{d:02d}", -0.15) for d in range(1, 4)]
    assert decide("champion", _days([0.01]) + lost, crash, CONFIG).to_status is None
    # The paper stage needs paper: a probation record with a sat-out day is refused.
    with pytest.raises(ValueError, match="paper days only"):
        decide("probation", traded + sat_out[:1], expectation, CONFIG)


def test_fitness_with_paper_blends_by_the_documented_weight() -> None:
    config = FitnessConfig()
    base = Fitness(score=40.0, live_score=40.0, year_ago_score=40.0, overfit=False)
    # Sharpe 2, no drawdown, 65% winners, profit factor 2, enough days: a window score of 100.
    perfect = {
        "sharpe": 2.0, "max_drawdown": 0.0, "win_rate": 0.65, "profit_factor": 2.0,
        "n_trades": 10.0,
    }  # fmt: skip
    blended = with_paper(base, perfect, config, paper_weight=0.5, paper_days=20)
    weight = 0.5 * 10 / 20
    assert blended.paper_weight == weight
    assert blended.score == pytest.approx((1 - weight) * 40.0 + weight * 100.0)
    full = with_paper(base, {**perfect, "n_trades": 40.0}, config, paper_weight=0.5, paper_days=20)
    assert full.score == pytest.approx(70.0)
    # A losing paper record pushes the score down.
    losing = {"sharpe": -1.0, "max_drawdown": 0.4, "win_rate": 0.2, "profit_factor": 0.5,
              "n_trades": 20.0}  # fmt: skip
    assert with_paper(base, losing, config, paper_weight=0.5, paper_days=20).score == 20.0
    assert with_paper(base, {"n_trades": 0.0}, config, paper_weight=0.5, paper_days=20) is base


def test_feedback_summary_matches_figures_computed_by_hand() -> None:
    days = [
        DayFigures(day="2025-01-06", allocation=1000.0, pnl=10.0, avg_slippage_bps=4.0,
                   fill_ratio=1.0, turnover=0.5),
        DayFigures(day="2025-01-07", allocation=2000.0, pnl=-40.0, avg_slippage_bps=1.0,
                   fill_ratio=0.5, order_reject_count=1, risk_block_count=2, turnover=0.1),
        DayFigures(day="2025-01-08", allocation=1000.0, pnl=0.0),
    ]  # fmt: skip
    record = summarise("g", "aggressive", days, periods_per_year=252.0, config_hash="h")
    returns = np.array([0.01, -0.02, 0.0])
    assert record.total_return == pytest.approx(1.01 * 0.98 - 1.0)
    assert record.max_drawdown == pytest.approx(0.02)
    assert record.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    assert record.win_rate == 0.5  # one winning and one losing day; the flat day is undecided
    assert record.avg_slippage_bps == pytest.approx((4.0 * 1000 + 1.0 * 2000 + 0.0) / 4000)
    assert (record.order_reject_count, record.risk_block_count, record.days) == (1, 2, 3)
    assert record.period_start == "2025-01-06" and record.period_end == "2025-01-08"
    pooled = pooled_returns({"a": days[:2], "b": [days[0]]})
    assert pooled == [("2025-01-06", 20.0 / 2000.0), ("2025-01-07", -40.0 / 2000.0)]
    stats = paper_stats([0.01, -0.02], periods_per_year=252.0)
    assert stats["profit_factor"] == pytest.approx(0.5) and stats["n_trades"] == 2.0
