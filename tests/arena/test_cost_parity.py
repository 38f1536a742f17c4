"""One cost-and-fill model at a daily bar's size: the kernel, the arena step and the RL env.

The same daily bar, the same order size, the same volatility definition and the same market
(China A-shares: lots of 100, the 0.025% / 5 CNY commission) give the same fill price and the
same fee in

* the backtest kernel (``fill="next-bar"``: the order signalled at the close of day ``t - 1``
  executes over day ``t`` at its reference price), the way fitness scores genomes;
* the arena's broker step (:func:`arena.step.execute_order` on the day's bar and volatility
  from :func:`arena.market.day_market`, daily-only data);
* the RL replay environment (:class:`rl_exec.env.ExecutionEnv` on a one-bar day with the
  market's fee model).

Controls: the kernel at ``next-open`` and an environment with another fee model disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from arena.book import open_account, submit_order
from arena.market import day_market
from arena.money import money_from_float, money_to_float
from arena.rules import BrokerRules
from arena.step import execute_order
from rl_exec.config import ReplayConfig
from rl_exec.env import ExecutionEnv
from rl_exec.models import ReplayDay, ReplayModel
from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel
from simulators.costs import MarketFees
from simulators.fill_model import daily_volatility
from simulators.market_rules import get_market_rules

SYMBOL = "sh600000"
N_BARS, FILL_BAR, VOLUME = 40, 30, 2_000_000.0
HALF_SPREAD_BPS, IMPACT, CAP = 2.5, 0.5, 0.1
CASH = 1_000_000.0  # about 100,000 shares at 10: 5% of the bar's volume, under the cap


def _panel() -> Panel:
    rng = np.random.default_rng(11)
    close = 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, (N_BARS, 1)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.004, (N_BARS, 1)))
    high = np.maximum(open_, close) * 1.006
    low = np.minimum(open_, close) * 0.994
    return Panel(
        symbols=(SYMBOL,),
        index=pd.date_range("2024-01-02 15:00", periods=N_BARS, freq="B", tz="Asia/Shanghai"),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.full((N_BARS, 1), VOLUME),
        tradable=np.ones((N_BARS, 1), dtype=bool),
        market="cn",
    )


def _kernel_fill(panel: Panel, fill: str) -> tuple[float, float, float]:
    entries = np.zeros((N_BARS, 1), dtype=bool)
    entries[FILL_BAR - 1, 0] = True
    config = BacktestConfig(
        cash=CASH, fill=fill, market="cn", half_spread_bps=HALF_SPREAD_BPS,
        impact_coefficient=IMPACT, participation_cap=CAP,
    )  # fmt: skip
    trade = run_backtest(panel, entries, np.zeros_like(entries), config=config).trades.iloc[0]
    assert trade["entry_idx"] == FILL_BAR
    return float(trade["size"]), float(trade["entry_price"]), float(trade["fees"])


def _arena_fill(panel: Panel, quantity: float) -> tuple[float, float, float]:
    day = panel.index[FILL_BAR].date()
    market = day_market(panel, day, None)
    (bar,) = market.bars[SYMBOL]
    rules = BrokerRules.from_market(
        "cn", half_spread_bps=HALF_SPREAD_BPS, impact_coefficient=IMPACT, participation_cap=CAP
    )
    units = rules.units
    state = open_account(
        "acct", initial_cash=money_from_float(2 * CASH, units.money_digits), units=units,
        t_plus_one=True,
    )  # fmt: skip
    scale = 10**units.quantity_digits
    state, order, _ = submit_order(
        state, symbol=SYMBOL, side="buy", quantity=round(quantity) * scale, day=day,
        at=datetime(2024, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    result = execute_order(state, order, bar, rules, sigma=market.sigma[SYMBOL])
    assert result.status == "filled"
    (fill,) = result.fills
    fee = money_to_float(fill.commission + fill.taxes, units.money_digits)
    return fill.quantity / scale, float(fill.price), fee


def _env_fill(panel: Panel, quantity: float, fees: MarketFees) -> tuple[float, float, float]:
    t = FILL_BAR
    closes = panel.close[t - 20 : t, 0]
    day = ReplayDay(
        open=panel.open[t : t + 1, 0].copy(),
        high=panel.high[t : t + 1, 0].copy(),
        low=panel.low[t : t + 1, 0].copy(),
        close=panel.close[t : t + 1, 0].copy(),
        volume=np.array([VOLUME]),
        prev_close=float(panel.close[t - 1, 0]),
        average_daily_volume=VOLUME,
        daily_volatility=daily_volatility(np.diff(np.log(closes))),
        label=f"{SYMBOL} {panel.index[t].date()}",
    )
    # One decision step over the day's one bar: the order at the bar's size. (The training
    # configuration asks for at least two steps; the model itself works with one.)
    config = ReplayConfig.model_construct(
        **{
            **ReplayConfig().model_dump(),
            "n_steps": 1,
            "side": "buy",
            "order_pct_adv": quantity / VOLUME,
            "half_spread_bps": HALF_SPREAD_BPS,
            "impact_coefficient": IMPACT,
            "participation_cap": CAP,
        }
    )
    env = ExecutionEnv(ReplayModel([day], config, lot_size=100.0, limit_pct=0.1), fees=fees)
    env.reset(seed=0)
    _, _, done, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert done and info["filled"] > 0
    return info["filled"], info["step_cash"] / info["filled"], info["fees"]


def test_parity_kernel_arena_step_and_env_same_daily_fill_price_and_fee() -> None:
    panel = _panel()
    quantity, kernel_price, kernel_fee = _kernel_fill(panel, "next-bar")
    assert quantity % 100 == 0 and quantity < CAP * VOLUME
    arena_qty, arena_price, arena_fee = _arena_fill(panel, quantity)
    env_qty, env_price, env_fee = _env_fill(panel, quantity, get_market_rules("cn").fees)

    # The price is the bar's OHLC average times (1 + half-spread + sqrt impact), by hand:
    t = FILL_BAR
    reference = (panel.open[t, 0] + panel.high[t, 0] + panel.low[t, 0] + panel.close[t, 0]) / 4
    sigma = float(np.diff(np.log(panel.close[t - 20 : t, 0])).std(ddof=1))
    by_hand = reference * (1 + HALF_SPREAD_BPS / 1e4 + IMPACT * sigma * np.sqrt(quantity / VOLUME))
    assert kernel_price == pytest.approx(by_hand, rel=1e-12)
    assert IMPACT * sigma * np.sqrt(quantity / VOLUME) > 5e-4  # the impact matters here

    assert arena_qty == env_qty == quantity
    assert env_price == pytest.approx(kernel_price, rel=1e-12)
    # The broker books the price at its precision (a tick of 0.0001 CNY here).
    assert arena_price == pytest.approx(kernel_price, abs=1e-4)
    # Commission max(0.025% x value, 5): about 250 CNY, no stamp duty on a buy.
    assert kernel_fee == pytest.approx(0.00025 * quantity * kernel_price, rel=1e-12)
    assert env_fee == pytest.approx(kernel_fee, rel=1e-12)
    assert arena_fee == pytest.approx(kernel_fee, abs=0.01 + 0.00025 * quantity * 1e-4)


def test_parity_controls_other_fill_mode_and_other_fee_model_disagree() -> None:
    panel = _panel()
    quantity, kernel_price, kernel_fee = _kernel_fill(panel, "next-bar")
    _, open_price, _ = _kernel_fill(panel, "next-open")
    assert abs(open_price - kernel_price) > 1e-3  # the open is not the day's reference
    other = MarketFees(commission_rate=0.0003, commission_min=5.0)
    _, env_price, env_fee = _env_fill(panel, quantity, other)
    assert env_price == pytest.approx(kernel_price, rel=1e-12)
    assert env_fee != pytest.approx(kernel_fee, rel=1e-3)
