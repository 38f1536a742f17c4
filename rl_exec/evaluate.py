"""Evaluate execution policies over many episodes with common random numbers.

Episode ``i`` of an evaluation with seed ``s`` is reset with the ``i``-th seed generated from
``numpy.random.SeedSequence(s)``, whatever the policy: every policy meets the same price paths
(and, for replay, the same days), so their differences are not sampling noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rl_exec.env import ExecutionEnv
from rl_exec.policy import ExecutionPolicy


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """Implementation shortfall statistics of one policy (basis points of arrival value).

    ``objective`` is the mean of shortfall plus the risk term over the episodes, i.e. minus
    the mean episode return of the realised reward, the mean-variance objective in the same
    units for every policy. ``reward_costs_bps`` is minus each episode's return as the
    environment rewarded it: the same as ``objectives_bps`` for a ``realised`` environment,
    the noise-free cost for an ``expected`` one (a low-variance estimate of the same mean).
    ``unfilled_shares`` is the share of each parent order left unfilled at the end.
    """

    policy: str
    env: str
    episodes: int
    seed: int
    mean_shortfall_bps: float
    std_shortfall_bps: float
    mean_risk_bps: float
    objective: float
    shortfalls_bps: np.ndarray = field(repr=False)
    risks_bps: np.ndarray = field(repr=False)
    reward_costs_bps: np.ndarray = field(repr=False)
    unfilled_shares: np.ndarray = field(repr=False)

    @property
    def objectives_bps(self) -> np.ndarray:
        """Return each episode's shortfall plus risk term (the paired samples of CRN)."""
        return self.shortfalls_bps + self.risks_bps

    def to_json(self) -> dict[str, object]:
        """Return the JSON fields of ``alphaloop rl evaluate``."""
        return {
            "policy": self.policy,
            "env": self.env,
            "episodes": self.episodes,
            "seed": self.seed,
            "mean_shortfall_bps": self.mean_shortfall_bps,
            "std_shortfall_bps": self.std_shortfall_bps,
            "mean_risk_bps": self.mean_risk_bps,
            "objective": self.objective,
        }


def episode_seeds(seed: int, episodes: int) -> list[int]:
    """Return the reset seed of each episode (the common random numbers)."""
    state = np.random.SeedSequence(seed).generate_state(episodes, dtype=np.uint32)
    return [int(value) for value in state]


def run_episode(
    env: ExecutionEnv, policy: ExecutionPolicy, seed: int
) -> tuple[float, float, float, float]:
    """Run one episode; return ``(shortfall_bps, risk_bps, reward_cost_bps, unfilled_share)``.

    ``reward_cost_bps`` is minus the episode's return as the environment rewards it (see
    :class:`EvaluationResult`); the other three are realised figures.
    """
    observation, info = env.reset(seed=seed)
    quantity = float(info.get("quantity", 1.0)) or 1.0
    total = 0.0
    while True:
        share = float(policy.schedule_fraction(observation))
        action = np.array([min(max(share, 0.0), 1.0)], dtype=np.float32)
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        if terminated or truncated:
            return (
                float(info["shortfall_bps"]),
                float(info["risk_bps"]),
                -total,
                float(info.get("unfilled", 0.0)) / quantity,
            )


def evaluate_policy(
    policy: ExecutionPolicy,
    env: ExecutionEnv,
    *,
    episodes: int,
    seed: int,
    env_name: str = "",
) -> EvaluationResult:
    """Run ``episodes`` episodes of ``policy`` on ``env`` with common random numbers.

    Parameters
    ----------
    policy:
        The policy to evaluate.
    env:
        A Box-action :class:`ExecutionEnv` (reused and reset for every episode).
    episodes:
        Number of episodes (``>= 1``).
    seed:
        Root seed of the episodes' seeds.
    env_name:
        Label of the environment in the result.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    outcomes = np.array([run_episode(env, policy, s) for s in episode_seeds(seed, episodes)])
    shortfalls = outcomes[:, 0]
    risks = outcomes[:, 1]
    return EvaluationResult(
        policy=policy.name,
        env=env_name,
        episodes=episodes,
        seed=seed,
        mean_shortfall_bps=float(shortfalls.mean()),
        std_shortfall_bps=float(shortfalls.std(ddof=1)) if episodes > 1 else 0.0,
        mean_risk_bps=float(risks.mean()),
        objective=float((shortfalls + risks).mean()),
        shortfalls_bps=shortfalls,
        risks_bps=risks,
        reward_costs_bps=outcomes[:, 2],
        unfilled_shares=outcomes[:, 3],
    )


def paired_gap_pct(candidate: EvaluationResult, reference: EvaluationResult) -> tuple[float, float]:
    """Return the objective gap of ``candidate`` over ``reference`` in % and its standard error.

    Both must come from the same episodes (same seed and count: common random numbers); the
    error is the delta-method standard error of ``mean(a) / mean(b) - 1`` over the paired
    episodes, far smaller than either policy's own spread because the price noise cancels.
    """
    if candidate.episodes != reference.episodes or candidate.seed != reference.seed:
        raise ValueError(
            "paired_gap_pct needs results of the same episodes (same seed and count), got "
            f"{candidate.episodes}@{candidate.seed} and {reference.episodes}@{reference.seed}"
        )
    return paired_change_pct(candidate.objectives_bps, reference.objectives_bps)


def paired_change_pct(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Return ``mean(candidate) / mean(reference) - 1`` in % and its standard error in %.

    The two arrays are paired samples (episode ``i`` of both ran on the same path and day);
    the error is the delta-method standard error of the ratio of means, i.e. that of
    ``mean(a - ratio * b) / mean(b)``, which keeps only the noise the pairing does not cancel.
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"paired_change_pct needs two 1-D arrays of the same length, got {a.shape}, {b.shape}"
        )
    mean_b = float(b.mean())
    ratio = float(a.mean()) / mean_b
    residual = a - ratio * b
    n = len(a)
    error = float(residual.std(ddof=1) / np.sqrt(n) / abs(mean_b)) if n > 1 else 0.0
    return (ratio - 1.0) * 100.0, error * 100.0


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Mean of the paired differences ``candidate - reference`` with its standard error.

    ``standard_error`` is ``std(d, ddof=1) / sqrt(n)`` of the per-episode differences ``d``;
    ``low`` and ``high`` the 95% interval ``mean -+ 1.96 standard_error`` (normal, large ``n``);
    ``*_pct`` the same figures in % of the reference's mean (negative: the candidate is
    cheaper).
    """

    mean: float
    standard_error: float
    low: float
    high: float
    reference_mean: float

    @property
    def mean_pct(self) -> float:
        """Return the mean difference in % of the reference's mean."""
        return self.mean / abs(self.reference_mean) * 100.0

    @property
    def low_pct(self) -> float:
        """Return the interval's low end in % of the reference's mean."""
        return self.low / abs(self.reference_mean) * 100.0

    @property
    def high_pct(self) -> float:
        """Return the interval's high end in % of the reference's mean."""
        return self.high / abs(self.reference_mean) * 100.0


def paired_difference(candidate: np.ndarray, reference: np.ndarray) -> PairedDifference:
    """Return the paired difference of two arrays of per-episode figures (same episodes)."""
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"paired_difference needs two 1-D arrays of the same length, got {a.shape}, {b.shape}"
        )
    differences = a - b
    mean = float(differences.mean())
    error = float(differences.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else 0.0
    return PairedDifference(
        mean=mean,
        standard_error=error,
        low=mean - 1.96 * error,
        high=mean + 1.96 * error,
        reference_mean=float(b.mean()),
    )
