"""Over-fitting statistics: the deflated Sharpe ratio and the probability of backtest over-fitting.

References
----------
- D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014.
- D. H. Bailey, J. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4), 2017 (CSCV).

All Sharpe ratios here are *per period* (not annualised): the formulas need the number of
observations ``T`` of the same periodicity.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats

from simulators.metrics import annualised_sharpe, sharpe_from_moments

EULER_GAMMA = 0.5772156649015329


def sharpe_per_period(returns: np.ndarray) -> float:
    """Return mean / standard deviation (ddof=1) of a return series; 0 when flat."""
    values = np.asarray(returns, dtype=float)
    values = values[np.isfinite(values)]
    return annualised_sharpe(values, 1.0)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Return the expected maximum Sharpe of ``n_trials`` unskilled trials (the DSR benchmark SR0).

    ``SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))`` with ``g`` the
    Euler-Mascheroni constant and ``Z`` the standard normal quantile.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_trials == 1 or sharpe_variance <= 0.0:
        return 0.0
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def probabilistic_sharpe(
    sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Return P(true SR > benchmark) given an observed per-period SR (kurtosis not excess)."""
    if n_obs < 2:
        return 0.0
    denominator = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if denominator <= 0.0:
        return 0.0
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denominator)
    return float(stats.norm.cdf(z))


def deflated_sharpe(returns: np.ndarray, n_trials: int, trial_sharpe_variance: float) -> float:
    """Return the deflated Sharpe probability of one strategy's per-period ``returns``.

    Parameters
    ----------
    returns:
        The selected strategy's per-period returns.
    n_trials:
        The real cumulative number of strategies tried in the session (every evaluation).
    trial_sharpe_variance:
        The variance of the per-period Sharpe ratios across those trials.
    """
    values = np.asarray(returns, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 3 or float(values.std()) == 0.0:
        return 0.0
    sharpe = sharpe_per_period(values)
    skew = float(stats.skew(values))
    kurt = float(stats.kurtosis(values, fisher=False))
    benchmark = expected_max_sharpe(n_trials, trial_sharpe_variance)
    return probabilistic_sharpe(sharpe, benchmark, values.size, skew, kurt)


@dataclass(frozen=True, slots=True)
class PBOResult:
    """Outcome of CSCV: the probability and the logits it was computed from."""

    pbo: float
    logits: tuple[float, ...]
    n_splits: int
    n_combinations: int


def probability_of_backtest_overfitting(
    returns: np.ndarray, n_splits: int = 8, max_combinations: int | None = None
) -> PBOResult:
    """Return the CSCV probability of backtest over-fitting of a set of strategies.

    Parameters
    ----------
    returns:
        Array ``(T, N)``: per-period returns of ``N`` strategies over the same ``T`` periods.
    n_splits:
        ``S``, an even number of contiguous blocks the rows are split into.
    max_combinations:
        Use only the first ``k`` of the ``C(S, S/2)`` combinations (in lexicographic order, so
        the result stays deterministic); all of them when ``None``.

    Notes
    -----
    For each combination of ``S/2`` blocks as in-sample (the rest out-of-sample), the strategy
    with the best in-sample Sharpe is found; its out-of-sample relative rank ``w`` in (0, 1)
    gives the logit ``log(w / (1 - w))``. PBO is the share of logits <= 0: how often the
    in-sample winner is at or below the out-of-sample median.
    """
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError("PBO needs a (T, N) matrix with at least two strategies")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    n_rows, n_strategies = matrix.shape
    if n_rows < 2 * n_splits:
        raise ValueError(f"PBO needs at least {2 * n_splits} periods, got {n_rows}")
    matrix = np.nan_to_num(matrix, nan=0.0)
    blocks = np.array_split(np.arange(n_rows), n_splits)
    logits: list[float] = []
    combos: Iterator[tuple[int, ...]] = itertools.combinations(range(n_splits), n_splits // 2)
    if max_combinations is not None:
        combos = itertools.islice(combos, max_combinations)
    for in_sample_blocks in combos:
        chosen = set(in_sample_blocks)
        in_rows = np.concatenate([blocks[b] for b in sorted(chosen)])
        out_rows = np.concatenate([blocks[b] for b in range(n_splits) if b not in chosen])
        in_sharpe = _column_sharpe(matrix[in_rows])
        out_sharpe = _column_sharpe(matrix[out_rows])
        best = int(np.argmax(in_sharpe))
        # Rank 1..N of the in-sample winner among the out-of-sample Sharpes (ties averaged).
        rank = float(stats.rankdata(out_sharpe)[best])
        omega = rank / (n_strategies + 1.0)
        logits.append(math.log(omega / (1.0 - omega)))
    pbo = float(np.mean(np.asarray(logits) <= 0.0))
    return PBOResult(pbo=pbo, logits=tuple(logits), n_splits=n_splits, n_combinations=len(logits))


def _column_sharpe(matrix: np.ndarray) -> np.ndarray:
    sharpe: np.ndarray = sharpe_from_moments(matrix.mean(axis=0), matrix.std(axis=0, ddof=1), 1.0)
    return sharpe
