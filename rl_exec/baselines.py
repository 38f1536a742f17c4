"""Static execution schedules (TWAP, VWAP, Almgren-Chriss) and the Almgren-Chriss closed form.

The policies that follow these schedules step by step, with POV and a random policy, are in
:mod:`rl_exec.policy`; :func:`replay_ac_kappa_tau` gives the Almgren-Chriss urgency of the
replay market's impact model (its square-root impact linearised at the TWAP child).

A schedule is the holdings trajectory ``x_0 = X, x_1, ..., x_N = 0`` (shares still to trade
after each step). The per-step *fraction of the remaining quantity* that reproduces a schedule
is what an :class:`~rl_exec.policy.ExecutionPolicy` returns.

Almgren & Chriss (2000), "Optimal execution of portfolio transactions": with linear permanent
impact ``gamma``, linear temporary impact ``eta``, a fixed half-spread ``epsilon`` and an
arithmetic Brownian price of volatility ``sigma``,

* ``E = gamma X^2 / 2 + epsilon X + (eta~ / tau) sum n_k^2`` with ``eta~ = eta - gamma tau / 2``,
* ``V = sigma^2 tau sum x_k^2``,

and the schedule minimising ``E + lambda V`` is
``x_j = sinh(kappa (T - t_j)) / sinh(kappa T) X`` where
``cosh(kappa tau) = 1 + kappa~^2 tau^2 / 2`` and ``kappa~^2 = lambda sigma^2 / eta~``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl_exec.config import AcConfig, ReplayConfig
from simulators.fill_model import bar_volatility


@dataclass(frozen=True, slots=True)
class MeanVariance:
    """Expected cost ``E``, variance ``V`` and ``E + lambda V`` of a schedule, in dollars."""

    expected_cost: float
    variance: float
    objective: float


def twap_holdings(quantity: float, n_steps: int) -> np.ndarray:
    """Return the TWAP holdings ``x_0..x_N`` (equal child orders)."""
    return quantity * (1.0 - np.arange(n_steps + 1) / n_steps)


def vwap_holdings(quantity: float, profile: np.ndarray) -> np.ndarray:
    """Return the VWAP holdings for an expected volume share per step (normalised here)."""
    shares = np.asarray(profile, dtype=float)
    if shares.ndim != 1 or shares.size == 0 or np.any(shares < 0) or shares.sum() <= 0:
        raise ValueError("profile must be a non-empty 1-D array of non-negative volume shares")
    cumulative = np.concatenate([[0.0], np.cumsum(shares / shares.sum())])
    holdings = quantity * (1.0 - cumulative)
    holdings[-1] = 0.0
    return holdings


def ac_kappa(config: AcConfig) -> float:
    """Return ``kappa`` of the optimal trajectory (per day); 0 when ``lambda sigma = 0``."""
    tau = config.tau
    eta_tilde = config.eta - 0.5 * config.gamma * tau
    kappa_tilde_sq = config.risk_aversion * config.sigma**2 / eta_tilde
    return float(np.arccosh(1.0 + 0.5 * kappa_tilde_sq * tau**2) / tau)


def ac_holdings(config: AcConfig) -> np.ndarray:
    """Return the Almgren-Chriss optimal holdings ``x_0..x_N`` (closed form)."""
    kappa = ac_kappa(config)
    times = np.arange(config.n_steps + 1) * config.tau
    if kappa * config.horizon_days < 1e-12:
        # lambda = 0 (risk-neutral): the optimum is the straight line, TWAP.
        return twap_holdings(config.quantity, config.n_steps)
    holdings = (
        np.sinh(kappa * (config.horizon_days - times))
        / np.sinh(kappa * config.horizon_days)
        * config.quantity
    )
    holdings[-1] = 0.0
    return holdings


def mean_variance(config: AcConfig, holdings: np.ndarray) -> MeanVariance:
    """Return ``E``, ``V`` and ``E + lambda V`` (dollars) of a schedule in the AC model."""
    x = np.asarray(holdings, dtype=float)
    if x.shape != (config.n_steps + 1,):
        raise ValueError(f"holdings must have {config.n_steps + 1} values, got {x.shape}")
    trades = -np.diff(x)
    tau = config.tau
    eta_tilde = config.eta - 0.5 * config.gamma * tau
    expected = (
        0.5 * config.gamma * config.quantity**2
        + config.half_spread * float(np.abs(trades).sum())
        + eta_tilde / tau * float((trades**2).sum())
    )
    variance = config.sigma**2 * tau * float((x[1:] ** 2).sum())
    return MeanVariance(expected, variance, expected + config.risk_aversion * variance)


def holdings_to_fractions(holdings: np.ndarray) -> np.ndarray:
    """Return the share of the remaining quantity traded at each step (last one is 1)."""
    x = np.asarray(holdings, dtype=float)
    before = x[:-1]
    trades = before - x[1:]
    fractions = np.divide(trades, before, out=np.ones_like(before), where=before > 0)
    fractions[-1] = 1.0
    return np.clip(fractions, 0.0, 1.0)


def dollars_to_bps(dollars: float, config: AcConfig) -> float:
    """Express a dollar amount in basis points of the arrival value ``X S0``."""
    return dollars / (config.quantity * config.initial_price) * 1e4


def replay_ac_kappa_tau(
    config: ReplayConfig,
    *,
    daily_volatility: float,
    average_daily_volume: float,
    n_slots: int,
) -> float:
    """Return ``kappa * tau`` of the Almgren-Chriss schedule under the replay impact model.

    The replay market's cost of a child of ``n`` shares worked over a step of ``B`` bars of
    volume ``V_b`` is ``n S k sigma_bar sqrt(n / (B V_b))`` (square-root law, one bar's
    volatility); Almgren-Chriss needs it quadratic, ``(eta / tau) n^2``, so it is matched at the
    TWAP child ``n0 = Q / N``: ``eta / tau = S k sigma_bar / sqrt(n0 B V_b)``. The risk term of
    the environment is ``lambda (sigma_step S)^2 x^2`` per step, AC's ``lambda sigma^2 tau x^2``;
    then ``cosh(kappa tau) = 1 + kappa~^2 tau^2 / 2`` with ``kappa~^2 tau^2 = lambda
    (sigma_step S)^2 / (eta / tau)``. The price ``S`` cancels (set to 1). With the replay
    default ``risk_aversion = 0`` the result is 0: the AC schedule is TWAP.
    """
    if config.risk_aversion == 0.0:
        return 0.0
    steps = config.n_steps
    bars_per_step = n_slots / steps
    bar_volume = average_daily_volume / n_slots
    child = config.order_pct_adv * average_daily_volume / steps
    sigma_bar = bar_volatility(daily_volatility, n_slots)
    eta_over_tau = (
        config.impact_coefficient * sigma_bar / np.sqrt(child * bars_per_step * bar_volume)
    )
    sigma_step = sigma_bar * np.sqrt(bars_per_step)
    kappa_tilde_sq_tau_sq = config.risk_aversion * sigma_step**2 / eta_over_tau
    return float(np.arccosh(1.0 + 0.5 * kappa_tilde_sq_tau_sq))
