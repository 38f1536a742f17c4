"""Configuration of the execution environments and of training (frozen pydantic models).

Defaults live in the packaged ``alphaloop/configs/rl_exec.yaml``; :func:`load_rl_config` reads
it (with a user file over it) and reports a bad key with the file and the allowed range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig, load_config


class AcConfig(FrozenConfig):
    """Almgren-Chriss market: arithmetic Brownian price, linear impact, fixed half-spread.

    The defaults are the standard test parameters of Almgren & Chriss (2000): a sell of
    ``1e6`` shares at 50 over 60 days in 60 steps, 12% annual volatility (250 days a year).
    """

    quantity: float = Field(1_000_000.0, gt=0)
    initial_price: float = Field(50.0, gt=0)
    annual_volatility: float = Field(0.12, gt=0, lt=5)
    days_per_year: float = Field(250.0, gt=0)
    half_spread: float = Field(0.0625, ge=0)
    eta: float = Field(2.5e-6, ge=0)
    gamma: float = Field(2.5e-7, ge=0)
    horizon_days: float = Field(60.0, gt=0)
    n_steps: int = Field(60, ge=1, le=10_000)
    risk_aversion: float = Field(1e-6, ge=0)
    side: Literal["buy", "sell"] = "sell"

    @model_validator(mode="after")
    def _check_positive_eta_tilde(self) -> AcConfig:
        tau = self.horizon_days / self.n_steps
        if self.eta - 0.5 * self.gamma * tau <= 0:
            raise ValueError(
                "eta - gamma * tau / 2 must be > 0 (temporary impact must dominate), "
                f"got eta={self.eta}, gamma={self.gamma}, tau={tau}"
            )
        return self

    @property
    def tau(self) -> float:
        """Length of one step in days."""
        return self.horizon_days / self.n_steps

    @property
    def sigma(self) -> float:
        """Price volatility in dollars per share per square-root day."""
        return self.annual_volatility * self.initial_price / self.days_per_year**0.5


class ReplayConfig(FrozenConfig):
    """Replay market: one parent order over one day of intraday bars of the lab's data.

    ``data`` is the synthetic market (default, minute bars) or real intraday bars of 1 minute
    to 1 hour (a CSV/Parquet/``.zip`` file or folder); ``n_steps`` cannot exceed the bars of a
    session at the data's bar size (4 for hourly A-share bars).
    """

    data: str | None = None
    seed: int = Field(7, ge=0)
    days: int = Field(12, ge=1, le=500)
    assets: int = Field(8, ge=1, le=200)
    n_steps: int = Field(16, ge=2, le=500)
    side: Literal["buy", "sell"] = "buy"
    order_pct_adv: float = Field(0.1, gt=0, le=1)
    half_spread_bps: float = Field(2.5, ge=0)
    impact_coefficient: float = Field(0.3, ge=0)
    participation_cap: float = Field(0.1, gt=0, le=1)
    transient_half_life_bars: float = Field(10.0, ge=0, le=10_000)
    lot_size: float | None = Field(None, gt=0)
    limit_pct: float | None = Field(None, gt=0, lt=1)
    unfilled_penalty_bps: float = Field(50.0, ge=0)
    risk_aversion: float = Field(0.0, ge=0)
    lookback_days: int = Field(20, ge=2, le=250)


class EnvConfig(FrozenConfig):
    """Which market model drives the environment, with its parameters."""

    model: Literal["ac", "replay"] = "ac"
    n_returns: int = Field(3, ge=1, le=20)
    ac: AcConfig = AcConfig()
    replay: ReplayConfig = ReplayConfig()

    @property
    def n_steps(self) -> int:
        """Decision steps per episode."""
        return self.ac.n_steps if self.model == "ac" else self.replay.n_steps


class TrainConfig(FrozenConfig):
    """Hyper-parameters of PPO and SAC (stable-baselines3, CPU)."""

    n_envs: int = Field(4, ge=1, le=64)
    #: ``auto``: the expected-cost reward when the market model provides it (Almgren-Chriss,
    #: replay), else the realised one. Evaluation always uses the realised shortfall.
    reward: Literal["auto", "expected", "realised"] = "auto"
    reward_scale: float = Field(0.01, gt=0)
    learning_rate: float = Field(3e-4, gt=0, lt=1)
    gamma: float = Field(1.0, gt=0, le=1)
    ppo_n_steps: int = Field(256, ge=8)
    ppo_batch_size: int = Field(256, ge=8)
    ppo_n_epochs: int = Field(10, ge=1)
    ppo_gae_lambda: float = Field(0.95, gt=0, le=1)
    ppo_ent_coef: float = Field(0.0, ge=0)
    ppo_log_std_init: float = Field(-1.0, ge=-5, le=2)
    sac_buffer_size: int = Field(100_000, ge=100)
    sac_learning_starts: int = Field(1_000, ge=0)
    sac_batch_size: int = Field(256, ge=8)
    net_arch: tuple[int, ...] = (64, 64)
    torch_threads: int = Field(1, ge=1, le=2)


class RlConfig(FrozenConfig):
    """Everything ``alphaloop rl`` reads from ``alphaloop/configs/rl_exec.yaml``."""

    env: EnvConfig = EnvConfig()
    train: TrainConfig = TrainConfig()


def load_rl_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> RlConfig:
    """Load :class:`RlConfig`: the packaged ``rl_exec.yaml``, ``path`` over it, then overrides."""
    return load_config(RlConfig, path, default_name="rl_exec.yaml", overrides=overrides)
