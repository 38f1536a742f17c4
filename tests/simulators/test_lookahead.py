"""No look-ahead: removing every bar after ``t`` never changes signals, positions or equity
up to ``t`` (all reference strategies, both fill modes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.backtest import BacktestConfig, run_strategy
from simulators.bars import Panel
from simulators.strategies import strategy_signals

CASES: list[tuple[str, dict[str, float | int]]] = [
    ("sma-cross", {"fast": 2, "slow": 5}),
    ("rsi", {"period": 3, "lower": 40.0, "upper": 60.0}),
    ("breakout", {"lookback": 3, "stop_pct": 0.03}),
]


def random_panel(seed: int, n_bars: int, n_assets: int) -> Panel:
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_bars, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, close.shape)))
    index = pd.date_range("2024-01-01 16:00", periods=n_bars, freq="D", tz="UTC")
    return Panel(
        symbols=tuple(f"S{i}" for i in range(n_assets)),
        index=index,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.ones(close.shape),
        tradable=rng.random(close.shape) > 0.05,
        market="none",
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_bars=st.integers(12, 60),
    n_assets=st.integers(1, 3),
    cut_share=st.floats(0.1, 0.95),
    fill=st.sampled_from(["next-open", "close"]),
)
def test_truncating_future_bars_leaves_past_unchanged(
    seed: int, n_bars: int, n_assets: int, cut_share: float, fill: str
) -> None:
    panel = random_panel(seed, n_bars, n_assets)
    cut = max(1, int(n_bars * cut_share))  # keep bars [0, cut)
    short = panel.slice_bars(0, cut)
    config = BacktestConfig(fill=fill, market="none")
    for name, params in CASES:
        full_signals = strategy_signals(panel, name, params)
        short_signals = strategy_signals(short, name, params)
        np.testing.assert_array_equal(full_signals.entries[:cut], short_signals.entries)
        np.testing.assert_array_equal(full_signals.exits[:cut], short_signals.exits)
        full = run_strategy(panel, name, params, config)
        part = run_strategy(short, name, params, config)
        np.testing.assert_array_equal(full.positions.to_numpy()[:cut], part.positions.to_numpy())
        np.testing.assert_array_equal(full.equity.to_numpy()[:cut], part.equity.to_numpy())
