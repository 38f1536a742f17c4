"""One execution model (issue 13): the replay environment and the arena's executor agree.

The same day of bars, the same TWAP schedule, the same fill parameters and the same volatility
definition give the same fills (to the book's price step) and the same observations in
``rl_exec.env.ExecutionEnv`` and in ``arena.parent_orders.execute_parent``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from arena.book import open_account, submit_order
from arena.market import Bar
from arena.money import money_from_float
from arena.parent_orders import ExecutionContext, default_observation, execute_parent
from arena.rules import BrokerRules
from rl_exec.config import ReplayConfig
from rl_exec.env import BASE_OBS_FIELDS, ExecutionEnv
from rl_exec.models import ReplayDay, ReplayModel
from rl_exec.policy import TwapPolicy
from simulators.fill_model import bar_volatility

N_BARS, N_STEPS, BAR_VOLUME, DAILY_VOL = 16, 4, 10_000.0, 0.02


def _day() -> ReplayDay:
    rng = np.random.default_rng(5)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, N_BARS)))
    open_ = np.concatenate([[20.0], close[:-1]])
    return ReplayDay(
        open=open_,
        high=np.maximum(open_, close) * 1.001,
        low=np.minimum(open_, close) * 0.999,
        close=close,
        volume=np.full(N_BARS, BAR_VOLUME),
        prev_close=20.0,
        average_daily_volume=BAR_VOLUME * N_BARS,
        daily_volatility=DAILY_VOL,
    )


def test_parity_same_day_same_fills_and_observations_in_env_and_arena() -> None:
    day = _day()
    config = ReplayConfig(
        n_steps=N_STEPS, order_pct_adv=0.15, participation_cap=0.1, impact_coefficient=0.5
    )
    env = ExecutionEnv(ReplayModel([day], config), n_returns=1)
    fills: list[tuple[float, float]] = []
    import rl_exec.models as models

    original = models.fill_child_order

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        fill = original(*args, **kwargs)
        if fill.filled > 0:
            fills.append((fill.filled, fill.price))
        return fill

    models.fill_child_order = spy  # type: ignore[assignment]
    env_observations = []
    try:
        observation, _ = env.reset(seed=0)
        done = False
        while not done:
            env_observations.append(observation[: len(BASE_OBS_FIELDS)])
            share = TwapPolicy().schedule_fraction(observation)
            observation, _, done, _, _ = env.step(np.array([share], dtype=np.float32))
    finally:
        models.fill_child_order = original  # type: ignore[assignment]

    rules = BrokerRules.from_market(
        "none", half_spread_bps=config.half_spread_bps, impact_coefficient=0.5
    )
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    bars = [
        Bar(
            symbol="X",
            day=date(2024, 3, 4),
            at=start + timedelta(minutes=i + 1),
            open=float(day.open[i]),
            high=float(day.high[i]),
            low=float(day.low[i]),
            close=float(day.close[i]),
            volume=BAR_VOLUME,
            prev_close=20.0,
        )
        for i in range(N_BARS)
    ]
    state = open_account(
        "acct",
        initial_cash=money_from_float(1e9, rules.units.money_digits),
        units=rules.units,
        t_plus_one=False,
    )
    quantity = int(config.order_pct_adv * BAR_VOLUME * N_BARS)
    state, order, _ = submit_order(
        state, symbol="X", side="buy", quantity=quantity * 10**rules.units.quantity_digits,
        day=bars[0].day, at=start,
    )  # fmt: skip
    arena_observations: list[np.ndarray] = []

    class Recording:
        name = "twap"

        def schedule_fraction(self, observation: np.ndarray) -> float:
            arena_observations.append(observation)
            return TwapPolicy().schedule_fraction(observation)

    result = execute_parent(
        state, order, bars, rules, sigma=bar_volatility(DAILY_VOL, N_BARS),
        schedule=Recording(), n_steps=N_STEPS,
    )  # fmt: skip
    assert result.status == "filled"
    scale = 10**rules.units.quantity_digits
    arena_fills = [(f.quantity / scale, float(f.price)) for f in result.fills]
    step = 10.0**-rules.units.price_digits
    assert len(arena_fills) == len(fills)
    for (env_qty, env_price), (arena_qty, arena_price) in zip(fills, arena_fills, strict=True):
        assert arena_qty == pytest.approx(env_qty)
        assert arena_price == pytest.approx(env_price, abs=step)
    # The last bar completed the order beyond the cap in both (the end-of-day rule).
    assert fills[-1][0] > config.participation_cap * BAR_VOLUME
    # The broker asks no schedule at the last step (it works everything left).
    assert len(arena_observations) == len(env_observations) - 1 == N_STEPS - 1
    for env_obs, arena_obs in zip(env_observations[:-1], arena_observations, strict=True):
        np.testing.assert_allclose(arena_obs, env_obs, rtol=1e-5, atol=1e-6)
    assert any(
        abs(obs[BASE_OBS_FIELDS.index("price_vs_arrival")]) > 0.05 for obs in env_observations
    )


def test_parity_broker_observation_scales_price_move_by_step_volatility() -> None:
    # The bug of issue 13: the broker scaled the move by the bar's, not the step's, volatility.
    sigma_bar = bar_volatility(DAILY_VOL, 240)
    context = ExecutionContext(
        step=1, n_steps=16, quantity=100, remaining=90, side="buy", arrival_price=10.0,
        last_price=10.01, history=(), half_spread_bps=2.5, sigma=sigma_bar, step_bars=15,
    )  # fmt: skip
    observation = default_observation(context)
    step_volatility = sigma_bar * np.sqrt(15)
    expected = 0.001 / (step_volatility * np.sqrt(16))
    assert observation[BASE_OBS_FIELDS.index("price_vs_arrival")] == pytest.approx(
        expected, rel=1e-5
    )
