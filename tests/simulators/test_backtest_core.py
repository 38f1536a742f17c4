"""The exact backtester's fill rules on small hand-built panels (docs/fill_assumptions.md)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from alphaloop.errors import ConfigError, StrategyParamError
from simulators.backtest import BacktestConfig, run_backtest, run_strategy
from simulators.bars import Panel

FRICTIONLESS = BacktestConfig(market="none")


def make_panel(
    open_: list[float] | np.ndarray,
    high: list[float] | np.ndarray | None = None,
    low: list[float] | np.ndarray | None = None,
    close: list[float] | np.ndarray | None = None,
    *,
    tradable: np.ndarray | None = None,
    market: str = "none",
) -> Panel:
    o = np.asarray(open_, dtype=float).reshape(len(open_), -1)
    c = o.copy() if close is None else np.asarray(close, dtype=float).reshape(o.shape)
    h = np.maximum(o, c) + 1.0 if high is None else np.asarray(high, dtype=float).reshape(o.shape)
    lo = np.minimum(o, c) - 1.0 if low is None else np.asarray(low, dtype=float).reshape(o.shape)
    index = pd.date_range("2024-01-01 16:00", periods=o.shape[0], freq="D", tz="UTC")
    return Panel(
        symbols=tuple(f"A{i}" for i in range(o.shape[1])),
        index=index,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=np.ones(o.shape),
        tradable=np.ones(o.shape, dtype=bool) if tradable is None else tradable,
        market=market,
    )


def flags(n: int, *bars: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(bars)] = True
    return out


def test_next_open_signal_fills_at_next_bar_open() -> None:
    panel = make_panel([10, 11, 12, 13, 14, 15], close=[10.5, 11.5, 12.5, 13.5, 14.5, 15.5])
    result = run_backtest(panel, flags(6, 1), flags(6, 3), config=FRICTIONLESS)
    trade = result.trades.iloc[0]
    assert (trade.entry_idx, trade.exit_idx) == (2, 4)
    assert trade.entry_price == 12.0 and trade.exit_price == 14.0
    assert trade["size"] == pytest.approx(100_000 / 12.0, rel=1e-12)
    assert result.metrics["final_equity"] == pytest.approx(100_000 * 14 / 12, rel=1e-12)


def test_close_fill_signal_fills_at_same_bar_close() -> None:
    panel = make_panel([10, 11, 12, 13, 14, 15], close=[10.5, 11.5, 12.5, 13.5, 14.5, 15.5])
    result = run_backtest(
        panel, flags(6, 1), flags(6, 3), config=BacktestConfig(fill="close", market="none")
    )
    trade = result.trades.iloc[0]
    assert (trade.entry_idx, trade.exit_idx) == (1, 3)
    assert (trade.entry_price, trade.exit_price) == (11.5, 13.5)


def test_next_open_signal_on_last_bar_not_filled() -> None:
    panel = make_panel([10, 11, 12])
    result = run_backtest(panel, flags(3, 2), flags(3), config=FRICTIONLESS)
    assert result.trades.empty
    assert result.metrics["final_equity"] == 100_000.0


def test_equity_is_cash_plus_position_at_close() -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 40)))
    panel = make_panel(close * 0.99, close=close)
    entries, exits = flags(40, 3, 20), flags(40, 10, 30)
    result = run_backtest(panel, entries, exits, config=FRICTIONLESS)
    size = result.positions["A0"].to_numpy()
    trades = result.trades
    held = size > 0
    assert held.any() and (~held).any()
    # While flat the equity is constant cash; while long it moves with size * close.
    first = trades.iloc[0]
    cash_after_entry = 100_000.0 - first["size"] * first.entry_price
    bars = np.arange(first.entry_idx, first.exit_idx)
    np.testing.assert_allclose(
        result.equity.to_numpy()[bars], cash_after_entry + first["size"] * close[bars], rtol=1e-12
    )


def test_stop_loss_gap_below_stop_fills_at_open() -> None:
    # Entry at open[1] = 100; stop 5% -> 95; bar 3 opens at 90 (gap through the stop).
    panel = make_panel(
        [100, 100, 99, 90, 91],
        high=[101, 101, 100, 92, 92],
        low=[99, 98, 96, 89, 90],
        close=[100, 99, 98, 91, 91],
    )
    result = run_backtest(panel, flags(5, 0), flags(5), config=FRICTIONLESS, sl_stop=0.05)
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "stop_loss"
    assert (trade.exit_idx, trade.exit_price) == (3, 90.0)


def test_stop_loss_touched_intrabar_fills_at_stop_price() -> None:
    panel = make_panel(
        [100, 100, 99, 98, 97],
        high=[101, 101, 100, 99, 98],
        low=[99, 98, 96, 94, 96],
        close=[100, 99, 98, 97, 97],
    )
    result = run_backtest(panel, flags(5, 0), flags(5), config=FRICTIONLESS, sl_stop=0.05)
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_idx == 3
    assert trade.exit_price == pytest.approx(95.0)


def test_stop_not_checked_on_entry_bar() -> None:
    # The entry bar itself trades far below the stop; only later bars may trigger it.
    panel = make_panel([100, 100, 100, 100], high=[101, 101, 101, 101], low=[99, 80, 99, 99])
    result = run_backtest(panel, flags(4, 0), flags(4), config=FRICTIONLESS, sl_stop=0.05)
    assert result.trades.iloc[0].exit_reason == "open"


def test_stop_and_target_in_same_bar_stop_wins() -> None:
    panel = make_panel(
        [100, 100, 100, 100],
        high=[101, 101, 120, 101],
        low=[99, 99, 80, 99],
        close=[100, 100, 100, 100],
    )
    result = run_backtest(
        panel, flags(4, 0), flags(4), config=FRICTIONLESS, sl_stop=0.05, tp_stop=0.1
    )
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(95.0)


def test_take_profit_hit_intrabar_fills_at_target() -> None:
    panel = make_panel(
        [100, 100, 101, 101],
        high=[101, 101, 115, 102],
        low=[99, 99, 100, 100],
        close=[100, 100, 101, 101],
    )
    result = run_backtest(panel, flags(4, 0), flags(4), config=FRICTIONLESS, tp_stop=0.1)
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "take_profit"
    assert trade.exit_price == pytest.approx(110.0)


def test_trailing_stop_follows_highest_high_since_entry() -> None:
    # Entry 100 at bar 1; highs after entry reach 120 at bar 2; 10% trail -> 108 at bar 3.
    panel = make_panel(
        [100, 100, 110, 115, 100],
        high=[101, 101, 120, 116, 101],
        low=[99, 99, 109, 107, 99],
        close=[100, 100, 115, 110, 100],
    )
    result = run_backtest(panel, flags(5, 0), flags(5), config=FRICTIONLESS, tsl_stop=0.1)
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "trailing_stop"
    assert trade.exit_idx == 3
    assert trade.exit_price == pytest.approx(108.0)


def test_time_stop_exits_at_open_after_n_bars() -> None:
    panel = make_panel([10, 11, 12, 13, 14, 15, 16])
    result = run_backtest(panel, flags(7, 0), flags(7), config=FRICTIONLESS, time_stop=3)
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "time_stop"
    assert (trade.entry_idx, trade.exit_idx, trade.exit_price) == (1, 4, 14.0)


def test_fill_never_outside_bar_range_with_slippage() -> None:
    rng = np.random.default_rng(5)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    panel = make_panel(open_, high=high, low=low, close=close)
    entries, exits = rng.random(n) < 0.1, rng.random(n) < 0.1
    result = run_backtest(
        panel,
        entries,
        exits,
        config=BacktestConfig(market="none", slippage=0.01),
        sl_stop=0.02,
        tp_stop=0.03,
    )
    trades = result.trades
    closed = trades[trades.exit_idx >= 0]
    assert len(closed) > 10
    assert np.all(trades.entry_price <= high[trades.entry_idx] + 1e-12)
    assert np.all(trades.entry_price >= low[trades.entry_idx] - 1e-12)
    assert np.all(closed.exit_price <= high[closed.exit_idx] + 1e-12)
    assert np.all(closed.exit_price >= low[closed.exit_idx] - 1e-12)
    # Slippage is adverse: buys at or above the open they were sent to.
    signal_fills = trades.entry_price.to_numpy()
    assert np.all(signal_fills >= np.minimum(open_[trades.entry_idx], high[trades.entry_idx]))


def test_non_tradable_bar_entry_and_exit_wait_for_the_next_own_bar() -> None:
    # A non-tradable bar is not a bar of the asset (a suspension): the order due there is
    # due at the asset's next bar, as it would be on the asset's own file without that row.
    tradable = np.ones((8, 1), dtype=bool)
    tradable[2, 0] = False  # the bar the first entry would fill on
    tradable[6, 0] = False  # the bar the exit would fill on
    panel = make_panel([10, 11, 12, 13, 14, 15, 16, 17], tradable=tradable)
    result = run_backtest(panel, flags(8, 1, 3), flags(8, 5), config=FRICTIONLESS)
    trade = result.trades.iloc[0]
    assert len(result.trades) == 1
    assert trade.entry_idx == 3  # the bar-1 entry waited over bar 2 (bar 3's is ignored: long)
    assert trade.exit_idx == 7  # retried after the suspended bar


def test_time_stop_counts_the_assets_own_bars_not_its_suspended_days() -> None:
    tradable = np.ones((9, 1), dtype=bool)
    tradable[3:5, 0] = False  # two suspended days inside the holding period
    panel = make_panel(np.arange(10.0, 19.0), tradable=tradable)
    result = run_backtest(panel, flags(9, 0), flags(9), config=FRICTIONLESS, time_stop=3)
    trade = result.trades.iloc[0]
    assert trade.exit_reason == "time_stop"
    # Filled at bar 1; its own bars after it are 2, 5, 6: out at the open of bar 6.
    assert (trade.entry_idx, trade.exit_idx) == (1, 6)


def test_multi_asset_all_in_splits_equity_by_max_positions() -> None:
    panel = make_panel(np.full((5, 3), 10.0))
    entries = np.zeros((5, 3), dtype=bool)
    entries[0, :] = True
    result = run_backtest(
        panel,
        entries,
        np.zeros((5, 3), dtype=bool),
        config=BacktestConfig(market="none", max_positions=2),
    )
    # Priority is column order: A0 and A1 get half the equity each, A2 none.
    assert list(result.trades.symbol) == ["A0", "A1"]
    np.testing.assert_allclose(result.trades["size"], [5_000.0, 5_000.0])


def test_fraction_array_sizes_each_entry_by_signal_bar_value() -> None:
    panel = make_panel(np.full((6, 1), 10.0))
    fraction = np.full((6, 1), 0.5)
    fraction[3, 0] = 0.2
    result = run_backtest(panel, flags(6, 0, 3), flags(6, 2), config=FRICTIONLESS, size=fraction)
    sizes = result.trades["size"].to_numpy()
    np.testing.assert_allclose(sizes, [5_000.0, 2_000.0])


def test_commission_and_slippage_reduce_pnl_exactly() -> None:
    panel = make_panel([10, 10, 10, 10])
    config = BacktestConfig(market="us", slippage=0.01, commission_fixed=2.0)
    result = run_backtest(panel, flags(4, 0), flags(4, 1), config=config)
    trade = result.trades.iloc[0]
    assert trade.entry_price == pytest.approx(10.1) and trade.exit_price == pytest.approx(9.9)
    assert float(trade["size"]).is_integer()  # US lot of 1 share
    expected = trade["size"] * (9.9 - 10.1) - 4.0
    assert trade.pnl == pytest.approx(expected)
    assert result.metrics["final_equity"] == pytest.approx(100_000 + expected)


def test_open_trade_at_end_reported_with_null_exit_time() -> None:
    panel = make_panel([10, 11, 12, 13], close=[10, 11, 12, 14])
    result = run_backtest(panel, flags(4, 0), flags(4), config=FRICTIONLESS)
    payload = result.to_json_dict()
    assert payload["trades"][0]["exit_time"] is None
    assert payload["trades"][0]["exit_price"] == 14.0
    assert payload["final_equity"] == pytest.approx(100_000 / 11 * 14)
    assert {"total_return", "sharpe", "max_drawdown", "n_trades"} <= payload.keys()
    json.dumps(payload, allow_nan=False)


def test_run_strategy_same_input_identical_result() -> None:
    rng = np.random.default_rng(3)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (200, 2)), axis=0))
    panel = make_panel(close, close=close)
    first = run_strategy(panel, "sma-cross", {"fast": 3, "slow": 12}, FRICTIONLESS)
    second = run_strategy(panel, "sma-cross", {"fast": 3, "slow": 12}, FRICTIONLESS)
    assert first.to_json_dict() == second.to_json_dict()
    restored = pickle.loads(pickle.dumps(first))
    pd.testing.assert_series_equal(restored.equity, first.equity)


def test_config_fraction_with_all_in_sizing_rejected() -> None:
    with pytest.raises(ValidationError, match="fraction"):
        BacktestConfig(sizing="all-in", fraction=0.5)


def test_config_unknown_key_rejected() -> None:
    with pytest.raises(ValidationError):
        BacktestConfig(cahs=1.0)  # type: ignore[call-arg]


def test_signals_of_wrong_shape_raise_config_error() -> None:
    panel = make_panel([10, 11, 12])
    with pytest.raises(ConfigError, match="entries"):
        run_backtest(panel, np.zeros(5, dtype=bool), np.zeros(3, dtype=bool))


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("sma-cross", {"fast": 50, "slow": 10}, "fast < slow"),
        ("sma-cross", {"fats": 5}, "unknown parameter 'fats'"),
        ("rsi", {"lower": 80, "upper": 20}, "lower < upper"),
        ("breakout", {"lookback": 2.5}, "integer"),
        ("breakout", {"stop_pct": 1.5}, "out of range"),
        ("momentum", {}, "unknown strategy"),
    ],
)
def test_strategy_bad_params_raise_naming_strategy_and_param(
    name: str, params: dict[str, float], needle: str
) -> None:
    panel = make_panel([10, 11, 12])
    with pytest.raises(StrategyParamError, match=needle):
        run_strategy(panel, name, params)
