"""Fitness: one score on a 0-100 scale from the live window and the year-ago window.

The score of one window
-----------------------
``window_score = 100 * capacity * activity * (0.45 S + 0.20 D + 0.15 W + 0.20 P)`` with each
part clipped to [0, 1]:

* ``S = (sharpe + 0.5) / 2.5``: annualised Sharpe -0.5 scores 0, 2.0 scores 1;
* ``D = 1 - max_drawdown / 0.35``: no drawdown scores 1, a 35% drawdown scores 0;
* ``W = (win_rate - 0.30) / 0.35``: 30% winners score 0, 65% score 1;
* ``P = (profit_factor - 0.8) / 1.2``: a profit factor of 0.8 scores 0, 2.0 scores 1;
* ``activity = min(1, n_trades / min_trades)``: a window with too few trades cannot score high
  on luck;
* ``capacity = filled / intended`` (the window statistic ``capacity``, in [0, 1]): of the
  notional the window's entries intended (what each entry's budget afforded at the lab's
  capital, ``CostConfig.cash``, before the participation cap), the share the cap let fill
  (:func:`simulators.backtest.capacity_ratio`). Sharpe, drawdown, win rate and profit factor
  are ratios that do not see the account's size: an account the cap keeps at a sliver of its
  equity would score on its tiny positions' ratios. The capacity term scores it by the share
  of its strategy it could actually trade: a genome that fills 5% of what it meant to buy
  keeps 5% of its score, one the market absorbs (no entry capped, or no cap) keeps all of it
  (1, also for windows without entries and for statistics without the figure, such as a
  paper record).

Combining the windows
---------------------
``score = mean(live, year_ago) - divergence_weight * |live - year_ago|``. With the default
weight 0.5 this is the weaker of the two windows: a strategy is only as good as its worse
year. A genome is flagged **over-fit** when one window's Sharpe is at least
``overfit_sharpe`` while the other's is at most 0, or the two window scores differ by more than
``overfit_score_gap`` points; a flagged genome loses a further ``overfit_penalty`` points.

Costs and the market's rules are always on in the backtests that feed these numbers.

A paper record
--------------
A genome that has traded in the arena (probation or champion) is scored on its paper record
too (:func:`with_paper`): with ``n`` paper days pooled over the accounts (daily return
``sum(pnl) / sum(allocation)``, see :mod:`evolution.feedback`),

``score = (1 - w) * backtest score + w * window_score(paper)``,
``w = paper_weight * min(1, n / paper_days)`` (``promotion.paper_weight``, default 0.5;
``promotion.paper_days``, default 20),

where ``window_score(paper)`` is the window score above computed on the paper days (days
stand in for trades: the win rate and the profit factor are over days). So a genome that does
well on paper is rewarded and one that loses money on paper is pushed down the ranking, more
so as its record grows; only paper days up to the session's as-of date count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from alphaloop.config import FrozenConfig

WINDOWS = ("live", "year_ago")


class FitnessConfig(FrozenConfig):
    """How window statistics become a score."""

    window: int = Field(250, ge=40, le=1000, description="trading days per window")
    min_trades: int = Field(10, ge=1, le=1000)
    divergence_weight: float = Field(0.5, ge=0.0, le=1.0)
    overfit_sharpe: float = Field(1.0, gt=0.0, le=5.0)
    overfit_score_gap: float = Field(30.0, gt=0.0, le=100.0)
    overfit_penalty: float = Field(10.0, ge=0.0, le=100.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fitness:
    """The verdict of fitness on one genome."""

    score: float
    live_score: float
    year_ago_score: float
    overfit: bool
    paper_score: float | None = None  # the paper record's score, when one counts
    paper_weight: float = 0.0


def _clip01(value: float) -> float:
    if not math.isfinite(value):
        return 0.0 if value < 0 or math.isnan(value) else 1.0
    return min(1.0, max(0.0, value))


def window_score(stats: Mapping[str, float], config: FitnessConfig) -> float:
    """Return the 0-100 score of one window's statistics (see the module docstring)."""
    sharpe = float(stats.get("sharpe", 0.0))
    drawdown = abs(float(stats.get("max_drawdown", 0.0)))
    win_rate = float(stats.get("win_rate", 0.0))
    profit_factor = float(stats.get("profit_factor", 0.0))
    n_trades = float(stats.get("n_trades", 0.0))
    capacity = _clip01(float(stats.get("capacity", 1.0)))
    if n_trades <= 0:
        return 0.0
    parts = (
        0.45 * _clip01((sharpe + 0.5) / 2.5)
        + 0.20 * _clip01(1.0 - drawdown / 0.35)
        + 0.15 * _clip01((win_rate - 0.30) / 0.35)
        + 0.20 * _clip01((profit_factor - 0.8) / 1.2)
    )
    activity = min(1.0, n_trades / config.min_trades)
    return round(100.0 * capacity * activity * parts, 6)


def with_paper(
    fitness: Fitness,
    paper: Mapping[str, float],
    config: FitnessConfig,
    *,
    paper_weight: float,
    paper_days: int,
) -> Fitness:
    """Return ``fitness`` blended with the score of a paper record (module docstring)."""
    n = float(paper.get("n_trades", 0.0))
    if n <= 0 or paper_weight <= 0:
        return fitness
    weight = paper_weight * min(1.0, n / paper_days)
    paper_score = window_score(paper, config)
    score = (1.0 - weight) * fitness.score + weight * paper_score
    return Fitness(
        score=round(max(0.0, min(100.0, score)), 6),
        live_score=fitness.live_score,
        year_ago_score=fitness.year_ago_score,
        overfit=fitness.overfit,
        paper_score=paper_score,
        paper_weight=weight,
    )


def combine(
    live: Mapping[str, float], year_ago: Mapping[str, float], config: FitnessConfig
) -> Fitness:
    """Return the combined fitness of the two windows."""
    live_score = window_score(live, config)
    year_ago_score = window_score(year_ago, config)
    mean = 0.5 * (live_score + year_ago_score)
    gap = abs(live_score - year_ago_score)
    score = mean - config.divergence_weight * gap
    sharpe_live = float(live.get("sharpe", 0.0))
    sharpe_ago = float(year_ago.get("sharpe", 0.0))
    lopsided = (sharpe_live >= config.overfit_sharpe and sharpe_ago <= 0.0) or (
        sharpe_ago >= config.overfit_sharpe and sharpe_live <= 0.0
    )
    overfit = lopsided or gap > config.overfit_score_gap
    if overfit:
        score -= config.overfit_penalty
    return Fitness(
        score=round(max(0.0, min(100.0, score)), 6),
        live_score=live_score,
        year_ago_score=year_ago_score,
        overfit=overfit,
    )
