"""``ExecutionEnv``: slice one parent order over ``N`` decision steps (gymnasium).

Action
    Box ``[0, 1]``: the share of the *remaining* quantity to trade this step (the last step
    always trades everything left). :class:`DiscreteExecutionEnv` offers a fixed menu of
    shares instead.

Observation (float32, every entry normalised and clipped; layout in :data:`OBS_FIELDS`)
    inventory left, time left, ``1 / steps left`` (the TWAP share), the usual volume share of
    this step among the steps left (the VWAP share), spread, log of volume against the usual
    intraday profile, price against the arrival price and the last returns, both signed so that
    positive is adverse to the order and scaled by the step volatility.

Reward
    Minus the step's implementation shortfall in basis points of the arrival value
    ``Q * S0``, minus the risk term ``lambda * step_variance * inventory_after^2`` in the same
    units. The step's shortfall is the mark-to-market decomposition
    ``s (cash - filled * S_{k-1}) + s * inventory_after * (S_k - S_{k-1})`` (``s = +1`` for a
    buy, ``-1`` for a sell), whose sum over the episode is exactly the implementation shortfall
    against the arrival price (plus the step's fees when the environment has the market's fee
    model, :class:`simulators.costs.MarketFees`: the arena broker's); a quantity still unfilled
    at the end (the replay market's last bar completes the order cap-free, so only a locked or
    missing last bar leaves any) is
    marked at the last price plus ``unfilled_penalty_bps``. So the episode return is minus the
    mean-variance objective ``shortfall + lambda V`` in basis points; for Almgren-Chriss its
    expectation is ``-(E + lambda V) / (X S0) * 1e4``.

    With ``reward_mode="expected"`` (training on a model that
    :attr:`~rl_exec.models.MarketModel.provides_expected_cost`) the reward is instead the
    step's *expected* cost given the state and the action: the realised cash and price move are
    replaced by their noise-free counterparts, which removes the zero-mean price noise from the
    learning signal. On Almgren-Chriss it is the term-by-term decomposition of ``E + lambda V``
    (spread and temporary impact of the child order, permanent impact on the inventory left,
    risk term), the noise removed being ``s * inventory_after * sigma sqrt(tau) xi``. On the
    replay market each fill is priced against its own bar's reference price (spread,
    square-root and transient impact as filled) and a quantity the end-of-day completion could
    not fill pays ``unfilled_penalty_bps``: the moves of the reference prices, zero-mean on a
    driftless market for an order that cannot see the future, are what is removed. The
    expected episode return is unchanged, so the optimal policy is the same. The ``info``
    entries
    (``shortfall_bps``, ``risk_bps``, ``objective_bps``) are always the realised ones:
    evaluation never reads the training reward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from rl_exec.models import EpisodeStart, MarketModel, MarketView
from simulators.costs import FeeModel
from simulators.execution_observation import (
    BASE_OBS_FIELDS,
    execution_observation,
    obs_fields,
    observation_bounds,
)

__all__ = [
    "BASE_OBS_FIELDS",
    "DEFAULT_SHARE_LEVELS",
    "DiscreteExecutionEnv",
    "ExecutionEnv",
    "ScaledReward",
    "build_observation",
    "obs_fields",
    "observation_bounds",
]

#: Share menu of the discrete variant: dense where the Almgren-Chriss optimum lives.
DEFAULT_SHARE_LEVELS: tuple[float, ...] = (
    0.0,
    0.02,
    0.05,
    0.08,
    0.12,
    0.16,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.7,
    1.0,
)
RewardMode = Literal["realised", "expected"]


def build_observation(
    *,
    inventory_left: float,
    steps_done: int,
    n_steps: int,
    profile: np.ndarray,
    view: MarketView,
    arrival_price: float,
    recent_returns: Sequence[float],
    side: str,
) -> np.ndarray:
    """Return the normalised observation of a decision point.

    A thin reader of a :class:`~rl_exec.models.MarketView` over
    :func:`simulators.execution_observation.execution_observation`, the one builder that the
    arena broker's default observation also calls.

    Parameters
    ----------
    inventory_left:
        Share of the parent order still to trade, in ``[0, 1]``.
    steps_done, n_steps:
        Decision steps already taken and in total.
    profile:
        Usual volume share of each of the ``n_steps`` steps.
    view:
        The market now.
    arrival_price:
        Reference price when the parent order arrived.
    recent_returns:
        Last simple returns of the reference price, most recent first.
    side:
        ``"buy"`` or ``"sell"``: price moves are signed so that positive is adverse.
    """
    return execution_observation(
        inventory_left=inventory_left,
        steps_done=steps_done,
        n_steps=n_steps,
        profile=profile,
        spread_bps=view.spread_bps,
        volume_ratio=view.volume_ratio,
        step_volatility=view.step_volatility,
        price=view.mid,
        arrival_price=arrival_price,
        recent_returns=recent_returns,
        side=side,
    )


class ExecutionEnv(gym.Env[np.ndarray, np.ndarray]):
    """Execute one parent order on a pluggable market model (see the module docstring).

    Parameters
    ----------
    model:
        The market (:class:`~rl_exec.models.AlmgrenChrissModel`,
        :class:`~rl_exec.models.ReplayModel` or any :class:`~rl_exec.models.MarketModel`).
    n_returns:
        How many recent returns the observation carries.
    reward_mode:
        ``"realised"`` (default): minus the realised shortfall and risk term of the step;
        ``"expected"``: minus their expectation given the state and the action (training
        only; needs a model that ``provides_expected_cost``).
    fees:
        The market's fee model (:class:`simulators.costs.MarketFees`, the one the arena
        broker charges), or ``None`` (default): no fees. With one, each step's fills pay the
        commission of the parent order's cumulative value less what its earlier fills paid
        (the broker's rule: a sliced order pays what it would filled at once) and the taxes
        of the ``side`` on the trading day the model gives as ``trading_day`` (a fee model
        with taxes on the order's side needs one); the fees are part of the shortfall.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's API

    def __init__(
        self,
        model: MarketModel,
        *,
        n_returns: int = 3,
        reward_mode: RewardMode = "realised",
        fees: FeeModel | None = None,
    ) -> None:
        super().__init__()
        if reward_mode not in ("realised", "expected"):
            raise ValueError(
                f"ExecutionEnv reward_mode must be 'realised' or 'expected', got {reward_mode!r}"
            )
        if reward_mode == "expected" and not getattr(model, "provides_expected_cost", False):
            raise ValueError(
                f"ExecutionEnv reward_mode='expected' needs a market model that provides "
                f"expected costs; {type(model).__name__} does not (use 'realised')"
            )
        self.model = model
        self.fees = fees
        self.reward_mode: RewardMode = reward_mode
        self.n_returns = n_returns
        self.n_steps = model.n_steps
        low, high = observation_bounds(n_returns)
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        self.action_space = gym.spaces.Box(low=0.0, high=1.0, shape=(1,), dtype=np.float32)
        self._start: EpisodeStart | None = None
        self._reset_episode_state()

    def _reset_episode_state(self) -> None:
        self._quantity = 1.0
        self._remaining = 0.0
        self._arrival = 1.0
        self._steps_done = 0
        self._returns = [0.0] * self.n_returns
        self._shortfall_bps = 0.0
        self._risk_bps = 0.0
        self._traded_value = 0.0
        self._fees_paid = 0.0
        self._tax_rate = 0.0
        self._view: MarketView | None = None

    def _observation(self) -> np.ndarray:
        assert self._start is not None and self._view is not None
        return build_observation(
            inventory_left=self._remaining / self._quantity,
            steps_done=self._steps_done,
            n_steps=self.n_steps,
            profile=self._start.profile,
            view=self._view,
            arrival_price=self._arrival,
            recent_returns=self._returns,
            side=self._start.side,
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new parent order; the whole episode's randomness follows from ``seed``."""
        super().reset(seed=seed)
        self._reset_episode_state()
        self._start = self.model.start(self.np_random)
        self._quantity = self._start.quantity
        self._remaining = self._start.quantity
        self._arrival = self._start.view.mid
        self._view = self._start.view
        if self.fees is not None:
            self._tax_rate = self._episode_tax_rate(self.fees, self._start.side)
        observation = self._observation()
        return observation, {"quantity": self._quantity, "arrival_price": self._arrival}

    def _episode_tax_rate(self, fees: FeeModel, side: str) -> float:
        side_name: Literal["buy", "sell"] = "buy" if side == "buy" else "sell"
        day = getattr(self.model, "trading_day", None)
        if day is None:
            # Taxes depend on the date (China's stamp duty): refuse to guess one.
            if fees.tax_rate(side_name, date.min) or fees.tax_rate(side_name, date.max):
                raise ValueError(
                    f"ExecutionEnv fees tax {side} fills by date; {type(self.model).__name__} "
                    "gives no trading_day"
                )
            return 0.0
        return fees.tax_rate(side_name, day)

    def _step_fees(self, cash: float) -> float:
        """Return the fees of fills worth ``cash`` (the fee model's, cumulative commission)."""
        if self.fees is None or cash <= 0:
            return 0.0
        before = self._traded_value
        self._traded_value = before + cash
        commission = self.fees.commission(self._traded_value) - self.fees.commission(before)
        fee = commission + self._tax_rate * cash
        self._fees_paid += fee
        return fee

    def share_to_trade(self, action: np.ndarray | float) -> float:
        """Return the share of the remaining quantity an action asks for (1 at the last step)."""
        if self._steps_done >= self.n_steps - 1:
            return 1.0
        value = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        if not math.isfinite(value):
            raise ValueError(f"ExecutionEnv action must be finite, got {action!r}")
        return min(max(value, 0.0), 1.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Trade a share of the remaining quantity over one step."""
        if self._start is None or self._view is None:
            raise RuntimeError("ExecutionEnv.step called before reset")
        if self._steps_done >= self.n_steps:
            raise RuntimeError("ExecutionEnv.step called after the episode ended")
        share = self.share_to_trade(action)
        child = share * self._remaining
        before = self._view.mid
        outcome = self.model.execute(child)
        filled = min(outcome.filled, self._remaining)
        self._remaining = max(self._remaining - filled, 0.0)
        if self._remaining < 1e-9 * self._quantity:
            self._remaining = 0.0
        after = outcome.view.mid
        direction = 1.0 if self._start.side == "buy" else -1.0
        fees = self._step_fees(outcome.cash)
        shortfall = direction * (outcome.cash - filled * before) + fees
        shortfall += direction * self._remaining * (after - before)
        risk = self.model.risk_aversion * outcome.step_variance * self._remaining**2
        self._steps_done += 1
        terminated = self._steps_done >= self.n_steps
        unfilled = self._remaining if terminated else 0.0
        penalty = self.model.unfilled_penalty_bps / 1e4
        if unfilled > 0:
            shortfall += unfilled * after * penalty
        scale = 1e4 / (self._quantity * self._arrival)
        shortfall_bps = shortfall * scale
        risk_bps = risk * scale
        self._shortfall_bps += shortfall_bps
        self._risk_bps += risk_bps
        self._returns = [after / before - 1.0, *self._returns[:-1]]
        self._view = outcome.view
        if self.reward_mode == "expected":
            if outcome.expected_cash is None or outcome.expected_move is None:
                raise ValueError(
                    f"{type(self.model).__name__}.execute gave no expected cost at step "
                    f"{self._steps_done}; reward_mode='expected' needs one"
                )
            # Same decomposition as the realised shortfall with the price noise averaged out.
            expected = direction * (outcome.expected_cash - filled * before) + fees
            expected += direction * self._remaining * outcome.expected_move
            if unfilled > 0:
                expected += unfilled * (before + outcome.expected_move) * penalty
            reward = -(expected * scale + risk_bps)
        else:
            reward = -(shortfall_bps + risk_bps)
        if not math.isfinite(reward):
            raise FloatingPointError(
                f"ExecutionEnv reward is not finite at step {self._steps_done}: "
                f"shortfall={shortfall_bps}, risk={risk_bps}"
            )
        observation = self._observation()
        if not np.isfinite(observation).all():
            raise FloatingPointError(f"ExecutionEnv observation has NaN: {observation}")
        info: dict[str, Any] = {
            "share": share,
            "child_quantity": child,
            "filled": filled,
            "step_shortfall_bps": shortfall_bps,
            "step_risk_bps": risk_bps,
            "step_cash": outcome.cash,
            "step_fees": fees,
        }
        if terminated:
            info.update(
                shortfall_bps=self._shortfall_bps,
                risk_bps=self._risk_bps,
                objective_bps=self._shortfall_bps + self._risk_bps,
                unfilled=unfilled,
                fees=self._fees_paid,
            )
        return observation, float(reward), terminated, False, info


class DiscreteExecutionEnv(ExecutionEnv):
    """The discrete variant: action ``i`` trades ``levels[i]`` of the remaining quantity.

    Parameters
    ----------
    model, n_returns, reward_mode, fees:
        As for :class:`ExecutionEnv`.
    levels:
        The menu of shares, each in ``[0, 1]``.
    """

    def __init__(
        self,
        model: MarketModel,
        *,
        n_returns: int = 3,
        levels: Sequence[float] = DEFAULT_SHARE_LEVELS,
        reward_mode: RewardMode = "realised",
        fees: FeeModel | None = None,
    ) -> None:
        super().__init__(model, n_returns=n_returns, reward_mode=reward_mode, fees=fees)
        shares = np.asarray(levels, dtype=np.float64)
        if shares.ndim != 1 or shares.size < 2 or shares.min() < 0 or shares.max() > 1:
            raise ValueError(f"share levels must be at least two values in [0, 1], got {levels}")
        self.levels = shares
        self.action_space = gym.spaces.Discrete(len(shares))  # type: ignore[assignment]

    def share_to_trade(self, action: np.ndarray | float) -> float:
        """Return the menu share of a discrete action (1 at the last step)."""
        index = int(np.asarray(action).reshape(-1)[0])
        if not 0 <= index < len(self.levels):
            raise ValueError(f"DiscreteExecutionEnv action must be in [0, {len(self.levels)})")
        return super().share_to_trade(self.levels[index])


class ScaledReward(gym.RewardWrapper[np.ndarray, np.ndarray]):
    """Multiply rewards by a constant (training only: evaluation reads the bps rewards)."""

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray], scale: float) -> None:
        super().__init__(env)
        self.scale = scale

    def reward(self, reward: SupportsFloat) -> float:
        """Return the scaled reward."""
        return float(reward) * self.scale
