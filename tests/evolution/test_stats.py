"""Deflated Sharpe ratio and CSCV probability of backtest over-fitting."""

from __future__ import annotations

import numpy as np
import pytest

from evolution.stats import (
    deflated_sharpe,
    expected_max_sharpe,
    probability_of_backtest_overfitting,
    sharpe_per_period,
)


def test_expected_max_sharpe_matches_monte_carlo_of_unskilled_trials() -> None:
    rng = np.random.default_rng(3)
    n_trials, n_obs = 100, 250
    maxima = []
    for _ in range(300):
        returns = rng.normal(0.0, 0.01, size=(n_obs, n_trials))
        sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
        maxima.append(sharpes.max())
    variance = 1.0 / n_obs  # the sampling variance of an SR estimate with true SR 0
    assert expected_max_sharpe(n_trials, variance) == pytest.approx(np.mean(maxima), rel=0.06)


def test_deflated_sharpe_falls_as_the_number_of_trials_grows() -> None:
    rng = np.random.default_rng(1)
    returns = rng.normal(0.001, 0.01, size=500)
    variance = 1.0 / 500
    values = [deflated_sharpe(returns, n, variance) for n in (1, 10, 100, 10_000)]
    assert values == sorted(values, reverse=True)
    assert values[0] > 0.9 and values[-1] < values[0]


def test_deflated_sharpe_of_the_best_of_many_noise_strategies_is_not_significant() -> None:
    rng = np.random.default_rng(11)
    n_trials = 200
    returns = rng.normal(0.0, 0.01, size=(250, n_trials))
    sharpes = np.array([sharpe_per_period(returns[:, i]) for i in range(n_trials)])
    best = int(np.argmax(sharpes))
    dsr = deflated_sharpe(returns[:, best], n_trials, float(sharpes.var(ddof=1)))
    assert dsr < 0.95


def test_deflated_sharpe_of_a_real_edge_survives_many_trials() -> None:
    rng = np.random.default_rng(5)
    returns = rng.normal(0.004, 0.01, size=750)  # per-period SR 0.4: a strong, real edge
    assert deflated_sharpe(returns, 500, 1.0 / 750) > 0.99


def test_pbo_of_pure_noise_strategies_is_about_one_half() -> None:
    rng = np.random.default_rng(7)
    result = probability_of_backtest_overfitting(rng.normal(0.0, 0.01, size=(800, 40)), 8)
    assert result.n_combinations == 70
    assert 0.25 <= result.pbo <= 0.75


def test_pbo_is_low_when_one_strategy_is_truly_better() -> None:
    rng = np.random.default_rng(9)
    matrix = rng.normal(0.0, 0.01, size=(800, 40))
    matrix[:, 17] += 0.004
    assert probability_of_backtest_overfitting(matrix, 8).pbo < 0.1


def test_pbo_rejects_bad_shapes_and_odd_splits() -> None:
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), 5)
    with pytest.raises(ValueError, match="two strategies"):
        probability_of_backtest_overfitting(np.zeros((100, 1)), 4)
