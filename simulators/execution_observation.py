"""The observation of an execution decision, one builder for training and the arena.

``rl_exec.env.ExecutionEnv`` (training, evaluation) and the arena broker's default observation
(:func:`arena.parent_orders.default_observation`) both call :func:`execution_observation`, so a
policy sees in the arena the features it was trained on, scaled the same way. Pure NumPy:
``arena/`` may import it without importing gymnasium.

Layout (float32, every entry normalised and clipped; names in :data:`BASE_OBS_FIELDS`, then
``return_lag_1..n``): inventory left, time left, ``1 / steps left`` (the TWAP share), the
usual volume share of this step among the steps left (the VWAP share), spread over 10 bps,
log of volume against the usual profile, price against the arrival price scaled by
``step_volatility * sqrt(n_steps)`` (about the day's volatility) and the last returns scaled
by ``step_volatility``; price moves are signed so that positive is adverse to the order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Names of the observation entries, in order (without the trailing return lags).
BASE_OBS_FIELDS: tuple[str, ...] = (
    "inventory_left",
    "time_left",
    "twap_share",
    "vwap_share",
    "spread",
    "log_volume_ratio",
    "price_vs_arrival",
)
CLIP = 5.0
SPREAD_SCALE_BPS = 10.0


def obs_fields(n_returns: int) -> tuple[str, ...]:
    """Return the names of the observation entries for ``n_returns`` return lags."""
    return (*BASE_OBS_FIELDS, *(f"return_lag_{i + 1}" for i in range(n_returns)))


def observation_bounds(n_returns: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(low, high)`` arrays of the observation box."""
    low = np.array([0, 0, 0, 0, 0, -CLIP, -CLIP] + [-CLIP] * n_returns, dtype=np.float32)
    high = np.array([1, 1, 1, 1, CLIP, CLIP, CLIP] + [CLIP] * n_returns, dtype=np.float32)
    return low, high


def execution_observation(
    *,
    inventory_left: float,
    steps_done: int,
    n_steps: int,
    profile: np.ndarray | None,
    spread_bps: float,
    volume_ratio: float,
    step_volatility: float,
    price: float,
    arrival_price: float,
    recent_returns: Sequence[float],
    side: str,
) -> np.ndarray:
    """Return the normalised observation of a decision point.

    Parameters
    ----------
    inventory_left:
        Share of the parent order still to trade, in ``[0, 1]``.
    steps_done, n_steps:
        Decision steps already taken and in total.
    profile:
        Usual volume share of each of the ``n_steps`` steps; ``None``: unknown, the VWAP
        share is then the TWAP share.
    spread_bps:
        Full quoted spread in basis points.
    volume_ratio:
        Volume of the last step against its usual volume (1 when unknown).
    step_volatility:
        Standard deviation of the price change over this step, as a fraction of the price
        (:func:`simulators.fill_model.bar_volatility` times the square root of the step's
        bars).
    price, arrival_price:
        Reference price now (the last close) and when the parent order arrived.
    recent_returns:
        Last simple step returns of the reference price, most recent first.
    side:
        ``"buy"`` or ``"sell"``.
    """
    steps_left = max(n_steps - steps_done, 1)
    direction = 1.0 if side == "buy" else -1.0
    volatility = max(step_volatility, 1e-12)
    if profile is None:
        vwap_share = 1.0 / steps_left
    else:
        remaining_profile = float(np.sum(profile[steps_done:]))
        vwap_share = (
            float(profile[min(steps_done, n_steps - 1)]) / remaining_profile
            if remaining_profile > 0
            else 1.0 / steps_left
        )
    price_move = direction * (price / arrival_price - 1.0) / (volatility * math.sqrt(n_steps))
    values = [
        inventory_left,
        steps_left / n_steps,
        1.0 / steps_left,
        vwap_share,
        spread_bps / SPREAD_SCALE_BPS,
        math.log(max(volume_ratio, 1e-6)),
        price_move,
        *(direction * r / volatility for r in recent_returns),
    ]
    low, high = observation_bounds(len(recent_returns))
    array = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    return np.clip(array, low, high).astype(np.float32)
