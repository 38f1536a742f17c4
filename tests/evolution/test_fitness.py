"""The 0-100 score, the divergence penalty and the over-fit flag."""

from __future__ import annotations

import pytest

from evolution.fitness import FitnessConfig, combine, window_score

GOOD = {"sharpe": 1.6, "max_drawdown": 0.08, "win_rate": 0.55, "profit_factor": 1.7, "n_trades": 40}
BAD = {"sharpe": -0.8, "max_drawdown": 0.30, "win_rate": 0.35, "profit_factor": 0.7, "n_trades": 40}
CONFIG = FitnessConfig()


def test_window_score_is_bounded_and_orders_good_above_bad() -> None:
    good, bad = window_score(GOOD, CONFIG), window_score(BAD, CONFIG)
    assert 0.0 <= bad < good <= 100.0
    perfect = {"sharpe": 9, "max_drawdown": 0, "win_rate": 1, "profit_factor": 99, "n_trades": 99}
    assert window_score(perfect, CONFIG) == 100.0


def test_window_score_without_trades_is_zero_and_few_trades_scale_down() -> None:
    assert window_score({**GOOD, "n_trades": 0}, CONFIG) == 0.0
    assert window_score({**GOOD, "n_trades": 5}, CONFIG) == pytest.approx(
        window_score(GOOD, CONFIG) / 2
    )


def test_window_score_scales_by_capacity_the_filled_share_of_intended_size() -> None:
    # By hand: 100 * (0.45 * 0.84 + 0.20 * (1 - 0.08 / 0.35) + 0.15 * 0.25 / 0.35 + 0.20 * 0.75).
    full = 100.0 * (0.378 + 0.2 * (1.0 - 0.08 / 0.35) + 0.15 * (0.25 / 0.35) + 0.15)
    assert window_score(GOOD, CONFIG) == pytest.approx(full, abs=1e-6)  # no figure: 1
    assert window_score({**GOOD, "capacity": 1.0}, CONFIG) == pytest.approx(full, abs=1e-6)
    assert window_score({**GOOD, "capacity": 0.25}, CONFIG) == pytest.approx(0.25 * full, abs=1e-6)
    assert window_score({**GOOD, "capacity": 0.0}, CONFIG) == 0.0
    assert window_score({**GOOD, "capacity": float("nan")}, CONFIG) == 0.0
    # A window that cannot trade at the lab's size loses the combined score with it.
    assert (
        combine({**GOOD, "capacity": 0.01}, GOOD, CONFIG).score < combine(GOOD, GOOD, CONFIG).score
    )


def test_combine_consistent_windows_is_not_overfit() -> None:
    fitness = combine(GOOD, GOOD, CONFIG)
    assert not fitness.overfit
    assert fitness.score == window_score(GOOD, CONFIG)


def test_combine_lopsided_windows_is_flagged_and_penalised_below_the_weaker_window() -> None:
    fitness = combine(GOOD, BAD, CONFIG)
    assert fitness.overfit
    assert fitness.score < min(fitness.live_score, fitness.year_ago_score)
    assert combine(BAD, GOOD, CONFIG).overfit  # symmetric: shining a year ago only


def test_combine_handles_infinite_profit_factor() -> None:
    no_losers = {**GOOD, "profit_factor": float("inf")}
    assert window_score(no_losers, CONFIG) > window_score(GOOD, CONFIG)
