"""The execution environment charges the market's fee model as the arena broker does."""

from __future__ import annotations

import numpy as np
import pytest

from rl_exec.config import ReplayConfig
from rl_exec.env import ExecutionEnv
from rl_exec.models import ReplayDay, ReplayModel
from simulators.costs import MarketFees
from simulators.market_rules import get_market_rules

N_BARS, N_STEPS, BAR_VOLUME = 16, 4, 10_000.0


def _model(side: str = "buy") -> ReplayModel:
    rng = np.random.default_rng(5)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, N_BARS)))
    open_ = np.concatenate([[20.0], close[:-1]])
    day = ReplayDay(
        open=open_,
        high=np.maximum(open_, close) * 1.001,
        low=np.minimum(open_, close) * 0.999,
        close=close,
        volume=np.full(N_BARS, BAR_VOLUME),
        prev_close=20.0,
        average_daily_volume=BAR_VOLUME * N_BARS,
        daily_volatility=0.02,
    )
    config = ReplayConfig(n_steps=N_STEPS, order_pct_adv=0.05, side=side)  # type: ignore[arg-type]
    return ReplayModel([day], config)


def _run(env: ExecutionEnv) -> tuple[float, dict[str, float], list[float]]:
    env.reset(seed=0)
    cash, done, info, step_fees = 0.0, False, {}, []
    while not done:
        _, _, done, _, info = env.step(np.array([0.5], dtype=np.float32))
        cash += info["step_cash"]
        step_fees.append(info["step_fees"])
    return cash, info, step_fees


def test_env_fees_are_the_commission_of_the_whole_order_and_enter_the_shortfall() -> None:
    fees = MarketFees(commission_rate=0.001, commission_min=20.0)
    cash, info, step_fees = _run(ExecutionEnv(_model(), fees=fees))
    plain_cash, plain, _ = _run(ExecutionEnv(_model()))
    assert cash == pytest.approx(plain_cash)  # fees change no fill
    # Sliced over the steps, the order pays what it would filled at once: the minimum once.
    whole = max(0.001 * cash, 20.0)
    assert info["fees"] == pytest.approx(whole)
    assert sum(step_fees) == pytest.approx(whole)
    assert plain["fees"] == 0.0
    quantity = 0.05 * BAR_VOLUME * N_BARS
    extra_bps = whole / (quantity * 20.0) * 1e4  # the arrival price is the first open, 20
    assert info["shortfall_bps"] - plain["shortfall_bps"] == pytest.approx(extra_bps)


def test_env_refuses_date_dependent_taxes_without_a_trading_day() -> None:
    env = ExecutionEnv(_model("sell"), fees=get_market_rules("cn").fees)
    with pytest.raises(ValueError, match="trading_day"):
        env.reset(seed=0)
    # A buy pays no stamp duty: the same fee model needs no date.
    ExecutionEnv(_model("buy"), fees=get_market_rules("cn").fees).reset(seed=0)
