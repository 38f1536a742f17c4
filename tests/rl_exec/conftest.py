"""Fixtures of the rl_exec tests: a small hand-made pool of replay days."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from rl_exec.config import ReplayConfig
from rl_exec.models import ReplayDay, ReplayModel


def make_replay_days(seed: int, count: int, n_bars: int = 60) -> list[ReplayDay]:
    """Return ``count`` days of U-shaped-volume minute bars (random walk prices)."""
    rng = np.random.default_rng(seed)
    position = (np.arange(n_bars) + 0.5) / n_bars
    shape = 1.0 + 2.0 * np.exp(-position / 0.1) + 3.0 * np.exp(-(1.0 - position) / 0.1)
    days = []
    for i in range(count):
        close = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n_bars)))
        open_ = np.concatenate([[20.0], close[:-1]])
        spread = np.abs(rng.normal(0.0, 0.0008, n_bars)) * close
        high = np.maximum(open_, close) + spread
        low = np.minimum(open_, close) - spread
        volume = np.round(shape / shape.sum() * 1e6 * rng.uniform(0.8, 1.2, n_bars))
        days.append(
            ReplayDay(
                open=open_,
                high=high,
                low=low,
                close=close,
                volume=volume,
                prev_close=20.0,
                average_daily_volume=1e6,
                daily_volatility=0.02,
                label=f"day{i}",
            )
        )
    return days


@pytest.fixture
def replay_days() -> Callable[..., list[ReplayDay]]:
    """Return the factory of hand-made replay days."""
    return make_replay_days


@pytest.fixture
def replay_model() -> ReplayModel:
    """A replay market on eight hand-made days, with a binding participation cap."""
    config = ReplayConfig(n_steps=6, order_pct_adv=0.1, participation_cap=0.1)
    return ReplayModel(make_replay_days(3, 8), config)
