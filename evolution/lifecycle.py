"""The champion/challenger lifecycle: who may trade, and on what evidence (pure; no Ray, MLflow).

Statuses (:mod:`evolution.store`): ``alive`` -> ``candidate`` -> ``probation`` -> ``champion``,
and ``demoted`` / ``retired`` out of trading. Every move is a stored transition with who, when,
why and the figures.

From the gate to probation
--------------------------
A genome that passes the backtest gate (:mod:`evolution.gate`) becomes a **candidate**. With
``promotion.require_approval: false`` it moves on to **probation** at once; with ``true`` it
waits for ``alphaloop pool approve ID`` (or ``pool reject ID --reason TEXT``, which retires it).
At the gate its backtest's daily returns over the fitness windows give what paper trading is
expected to show: ``mu`` (mean daily return) and ``sigma`` (their standard deviation), and the
CUSUM threshold ``h`` below; they are stored with the candidate's transition.

The paper record
----------------
A probation genome trades in the arena on a small allocation (``probation_share`` of each
persona's budget, ``alphaloop/configs/arena.yaml``). Each arena day gives, per genome, the
allocation (its sleeve x the account's equity at the previous close) and its attributed P&L in every
account that traded it; pooled over the accounts, the day's **paper return** is
``x = sum(pnl) / sum(allocation)``. The arena's review also backtests the genome over the same
day (the **shadow** return ``b``: same bars, rules and costs).

Probation -> champion: a sequential rule
----------------------------------------
After ``n`` paper days, ``z_n = (mean(x) - mu) / (sigma / sqrt(n))``: how many standard errors
the paper record falls short of (negative) or beats the backtest's expectation.

* from ``min_days`` on, ``z_n < -demote_z`` demotes at once (the paper record contradicts the
  backtest; ``demote_z`` is wider than ``promote_z`` because the rule looks every day);
* at ``n >= paper_days``, ``z_n >= -promote_z`` promotes to champion (the record is consistent
  with the backtest at the one-sided ``promote_z`` level) **if it also beats its incumbents**
  (below);
* after ``max_probation_days`` without promotion the genome is demoted (it never proved itself).

Challenger against incumbent
----------------------------
A promoted champion takes the place of what its persona traded before (the pool's champions
of its styles, or the bootstrap stand-ins: :mod:`arena.bootstrap`), so consistency with its
own backtest is not enough: it must have done better on paper than they did. Its
**incumbents** on a day are the other genomes that held a full (not probation) sleeve in the
accounts that traded the challenger that day; their pooled paper return is
``y = sum(pnl) / sum(allocation)`` over those accounts. Over the days both have a paper return,
the challenger is promoted only when ``mean(x) >= mean(y)`` (the figures ``challenger_mean``,
``incumbent_mean`` and ``incumbent_days`` are stored with the verdict); otherwise it stays on
probation, compared again each day, until ``max_probation_days``. A challenger whose accounts
traded nothing else (no incumbent) is judged on its own record alone.

Champion -> demoted: three rules, any one suffices
--------------------------------------------------
(a) **CUSUM** of the standardised shortfall ``s_t = (mu - x_t) / sigma``:
    ``C_t = max(0, C_{t-1} + s_t - k)`` with ``k = cusum_k x mu / sigma`` (half the shift a
    vanished edge produces, the classic choice), demoted when ``C_t > h``. ``h`` is calibrated
    from the genome's own backtest: ``cusum_paths`` paths of ``cusum_horizon`` days resampled
    (with replacement, seeded by the genome id) from its backtest daily returns, and ``h`` the
    ``1 - cusum_false_alarm`` quantile of each path's largest ``C_t``: a genome performing as
    its backtest did is falsely demoted within the horizon with that probability.
(b) **Divergence**: ``|x_t - b_t| > divergence_tolerance`` on ``divergence_days`` consecutive
    days (paper no longer tracks the same day's backtest: execution or data problems).
(c) **Drawdown budget**: the paper equity ``prod(1 + x_t)`` since the genome's first paper day
    falls more than ``max_drawdown`` below its peak, or stays under its peak for more than
    ``max_days_under_water`` consecutive days.

The champion's record runs from its first paper day (probation included), so its CUSUM
carries the evidence of probation over.

Days a champion sits out
------------------------
The personas may leave a champion without a sleeve (its style or the day's regime is out of
favour). Such a **sat-out day** has no paper return, yet the live bars still test the
backtest's claim, and a champion whose edge decayed while it sat out would come back on a full
sleeve. So on a sat-out day the arena backtests the champion over the day as the review does
for the genomes it trades (the shadow return ``b``) and the CUSUM reads ``x_t = b_t``, the
return at the backtest's own scale that ``mu`` and ``sigma`` describe. Divergence and the
drawdown budget read the days it traded only (nothing was traded to diverge or lose), and a
genome on probation is judged on its paper days alone (the paper stage needs paper).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from alphaloop.config import FrozenConfig


class PromotionConfig(FrozenConfig):
    """Settings of the paper stage (``promotion:`` in ``alphaloop/configs/evolution.yaml``)."""

    require_approval: bool = Field(
        False, description="candidates wait for `alphaloop pool approve ID` before probation"
    )
    paper_days: int = Field(20, ge=1, le=1000, description="paper days before promotion")
    min_days: int = Field(5, ge=2, le=1000, description="first day probation may be demoted")
    max_probation_days: int = Field(60, ge=1, le=5000)
    promote_z: float = Field(1.645, gt=0.0, le=10.0)
    demote_z: float = Field(2.5, gt=0.0, le=10.0)
    cusum_k: float = Field(0.5, ge=0.0, le=5.0)
    cusum_false_alarm: float = Field(0.05, gt=0.0, lt=1.0)
    cusum_horizon: int = Field(60, ge=5, le=5000)
    cusum_paths: int = Field(2000, ge=100, le=100_000)
    divergence_tolerance: float = Field(0.02, gt=0.0, le=1.0)
    divergence_days: int = Field(5, ge=1, le=1000)
    max_drawdown: float = Field(0.25, gt=0.0, le=1.0)
    max_days_under_water: int = Field(60, ge=1, le=5000)
    paper_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="weight of a full paper record in the fitness score"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """What the backtest expects of a genome's paper days (stored at the gate)."""

    mu: float
    sigma: float
    cusum_threshold: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma) and self.sigma >= 0.0):
            raise ValueError(f"expectation needs finite mu and sigma >= 0, got {self}")

    def as_dict(self) -> dict[str, float]:
        return {
            "expected_daily_return": self.mu,
            "expected_daily_vol": self.sigma,
            "cusum_threshold": self.cusum_threshold,
        }

    @classmethod
    def from_figures(cls, figures: dict[str, float]) -> Expectation | None:
        """Return the expectation stored in a transition's figures (``None`` if absent)."""
        try:
            return cls(
                mu=float(figures["expected_daily_return"]),
                sigma=float(figures["expected_daily_vol"]),
                cusum_threshold=float(figures["cusum_threshold"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperDay:
    """One arena day of a genome, pooled over the accounts that traded it."""

    day: str
    allocation: float
    pnl: float
    shadow_return: float = 0.0
    traded: bool = True

    def __post_init__(self) -> None:
        if not self.allocation > 0.0:
            raise ValueError(f"{self.day}: a paper day needs a positive allocation")

    @classmethod
    def sat_out(cls, day: str, shadow_return: float) -> PaperDay:
        """A champion's day without a sleeve: its return is the same-day backtest's."""
        return cls(
            day=day, allocation=1.0, pnl=shadow_return, shadow_return=shadow_return, traded=False
        )

    @property
    def paper_return(self) -> float:
        return self.pnl / self.allocation


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the lifecycle decided on a genome's record (``to_status`` None: no change)."""

    to_status: str | None
    reason: str
    figures: dict[str, float] = field(default_factory=dict)


def _standard(values: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return (mu - values) / sigma if sigma > 0 else np.zeros_like(values)


def cusum_path(returns: np.ndarray, mu: float, sigma: float, k: float) -> np.ndarray:
    """Return ``C_t`` of the one-sided CUSUM of the shortfall (see the module docstring)."""
    reference = k * mu / sigma if sigma > 0 else 0.0
    shortfall = _standard(np.asarray(returns, dtype=float), mu, sigma)
    out = np.empty(shortfall.size)
    level = 0.0
    for t, value in enumerate(shortfall):
        level = max(0.0, level + value - reference)
        out[t] = level
    return out


def calibrate(genome_id: str, backtest_returns: np.ndarray, config: PromotionConfig) -> Expectation:
    """Return the expectation of a genome from its backtest daily returns.

    The CUSUM threshold is the ``1 - cusum_false_alarm`` quantile of the largest ``C_t`` over
    ``cusum_paths`` bootstrap paths of ``cusum_horizon`` days (seeded by the genome id, so the
    same genome always gets the same threshold).
    """
    values = np.asarray(backtest_returns, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return Expectation(mu=0.0, sigma=0.0, cusum_threshold=math.inf)
    mu = float(values.mean())
    sigma = float(values.std(ddof=1))
    if sigma <= 0.0:
        return Expectation(mu=mu, sigma=0.0, cusum_threshold=math.inf)
    seed = int.from_bytes(hashlib.sha256(genome_id.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    draws = rng.choice(values, size=(config.cusum_paths, config.cusum_horizon), replace=True)
    reference = config.cusum_k * mu / sigma
    shortfall = (mu - draws) / sigma - reference
    level = np.zeros(config.cusum_paths)
    peak = np.zeros(config.cusum_paths)
    for t in range(config.cusum_horizon):
        level = np.maximum(0.0, level + shortfall[:, t])
        peak = np.maximum(peak, level)
    threshold = float(np.quantile(peak, 1.0 - config.cusum_false_alarm))
    return Expectation(mu=mu, sigma=sigma, cusum_threshold=max(threshold, 1e-9))


def record_figures(days: Sequence[PaperDay], expectation: Expectation) -> dict[str, float]:
    """Return the figures of a paper record against its expectation."""
    x = np.array([d.paper_return for d in days], dtype=float)
    n = int(x.size)
    out: dict[str, float] = {"paper_days": float(n)}
    if n == 0:
        return out
    equity = np.cumprod(1.0 + x)
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    under = 0
    longest = 0
    for value, top in zip(equity, peak, strict=True):
        under = under + 1 if value < top else 0
        longest = max(longest, under)
    standard_error = expectation.sigma / math.sqrt(n) if expectation.sigma > 0 else 0.0
    z = (float(x.mean()) - expectation.mu) / standard_error if standard_error > 0 else 0.0
    out.update(
        {
            "paper_return": float(equity[-1] - 1.0),
            "paper_mean_daily": float(x.mean()),
            "expected_daily_return": expectation.mu,
            "expected_daily_vol": expectation.sigma,
            "z": z,
            "paper_drawdown": float(np.max(1.0 - equity / peak)),
            "days_under_water": float(under),
            "longest_under_water": float(longest),
            "cusum_threshold": expectation.cusum_threshold,
        }
    )
    return out


def _divergence_streak(days: Sequence[PaperDay], tolerance: float) -> int:
    streak = 0
    for d in days:
        streak = streak + 1 if abs(d.paper_return - d.shadow_return) > tolerance else 0
    return streak


def _beats_incumbents(
    days: Sequence[PaperDay], incumbents: Sequence[PaperDay]
) -> tuple[bool, dict[str, float]]:
    """Whether the challenger's mean paper return over the days both traded is at least its
    incumbents' (module docstring); with no common day, True and no figures."""
    theirs = {d.day: d.paper_return for d in incumbents}
    common = [d for d in days if d.day in theirs]
    if not common:
        return True, {}
    mine = float(np.mean([d.paper_return for d in common]))
    other = float(np.mean([theirs[d.day] for d in common]))
    figures = {
        "challenger_mean": mine,
        "incumbent_mean": other,
        "incumbent_days": float(len(common)),
    }
    return mine >= other, figures


def decide(
    status: str,
    days: Sequence[PaperDay],
    expectation: Expectation,
    config: PromotionConfig,
    *,
    elapsed: int | None = None,
    incumbents: Sequence[PaperDay] = (),
) -> Decision:
    """Return the lifecycle's decision on a probation genome or a champion.

    ``days`` is the genome's whole record, first day first: its paper days and, for a
    champion, its sat-out days (:meth:`PaperDay.sat_out`). ``elapsed`` (probation) is the
    number of arena days it has had a sleeve, executed or not (default ``len(days)``): a genome
    whose sleeve is too small to ever trade still ends its probation after
    ``max_probation_days``. ``incumbents`` (probation) are the pooled paper days of the genomes
    the challenger would replace (module docstring: challenger against incumbent).
    """
    if status not in ("probation", "champion"):
        raise ValueError(f"only probation genomes and champions are judged, not {status}")
    n = len(days)
    if status == "probation":
        if not all(d.traded for d in days):
            raise ValueError("a probation record holds paper days only (no sat-out days)")
        figures = record_figures(days, expectation)
        z = figures.get("z", 0.0)
        if n >= config.min_days and z < -config.demote_z:
            return Decision(
                to_status="demoted",
                reason=f"probation: paper record {z:.2f} standard errors below the backtest's "
                f"expectation after {n} days (< -{config.demote_z})",
                figures=figures,
            )
        if n >= config.paper_days and z >= -config.promote_z:
            beats, comparison = _beats_incumbents(days, incumbents)
            figures.update(comparison)
            if beats:
                versus = ""
                if comparison:
                    versus = (
                        f", and it beat its incumbents on {int(comparison['incumbent_days'])} "
                        f"common days ({comparison['challenger_mean']:.3%} against "
                        f"{comparison['incumbent_mean']:.3%} a day)"
                    )
                return Decision(
                    to_status="champion",
                    reason=f"promoted: {n} paper days consistent with the backtest (z = {z:.2f} "
                    f">= -{config.promote_z}){versus}",
                    figures=figures,
                )
        days_on = max(n, elapsed or 0)
        if days_on >= config.max_probation_days:
            figures["probation_days"] = float(days_on)
            return Decision(
                to_status="demoted",
                reason=f"probation: not consistent with the backtest after {days_on} arena "
                f"days ({n} paper days executed, z = {z:.2f})",
                figures=figures,
            )
        reason = f"probation: {n} paper days"
        if "incumbent_mean" in figures and n >= config.paper_days and z >= -config.promote_z:
            reason += (
                f", consistent with the backtest but trailing its incumbents "
                f"({figures['challenger_mean']:.3%} against {figures['incumbent_mean']:.3%} a day)"
            )
        return Decision(to_status=None, reason=reason, figures=figures)
    # Champion: the CUSUM reads every day (a sat-out day's return is its same-day backtest);
    # divergence and the drawdown budget read the days it traded.
    traded = [d for d in days if d.traded]
    figures = record_figures(traded, expectation)
    figures["sat_out_days"] = float(n - len(traded))
    x = np.array([d.paper_return for d in days], dtype=float)
    path = cusum_path(x, expectation.mu, expectation.sigma, config.cusum_k)
    level = float(path[-1]) if path.size else 0.0
    figures["cusum"] = level
    if level > expectation.cusum_threshold:
        return Decision(
            to_status="demoted",
            reason=f"demoted: CUSUM of the shortfall against the backtest {level:.2f} > "
            f"threshold {expectation.cusum_threshold:.2f} calibrated on its backtest",
            figures=figures,
        )
    streak = _divergence_streak(traded, config.divergence_tolerance)
    figures["divergence_streak"] = float(streak)
    if streak >= config.divergence_days:
        return Decision(
            to_status="demoted",
            reason=f"demoted: paper and same-day backtest returns differed by more than "
            f"{config.divergence_tolerance:.1%} on {streak} consecutive days",
            figures=figures,
        )
    if figures.get("paper_drawdown", 0.0) > config.max_drawdown:
        return Decision(
            to_status="demoted",
            reason=f"demoted: paper drawdown {figures['paper_drawdown']:.1%} > budget "
            f"{config.max_drawdown:.0%}",
            figures=figures,
        )
    if figures.get("days_under_water", 0.0) > config.max_days_under_water:
        return Decision(
            to_status="demoted",
            reason=f"demoted: {int(figures['days_under_water'])} days under water > budget "
            f"{config.max_days_under_water}",
            figures=figures,
        )
    return Decision(to_status=None, reason=f"champion: {n} paper days", figures=figures)
