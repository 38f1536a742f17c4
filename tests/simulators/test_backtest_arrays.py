"""The array-level backtest entry point: same kernel, same numbers, no pandas, shared prep."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import ConfigError
from simulators.backtest import (
    BacktestConfig,
    prepare_panel,
    run_backtest,
    run_backtest_arrays,
)
from simulators.backtest_nb import EXIT_REASON_NAMES, SIZING_ALL_IN, SIZING_FRACTION, simulate_nb
from simulators.bars import Panel
from simulators.market_rules import get_market_rules
from simulators.metrics import calendar_years, compute_metrics, panel_periods_per_year


def make_panel(seed: int, n_bars: int = 160, n_assets: int = 5, market: str = "us") -> Panel:
    """Return a random-walk panel with a late listing (NaN prices) and a suspension."""
    rng = np.random.default_rng(seed)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (n_bars, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.01, (n_bars, n_assets)))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.01, (n_bars, n_assets))))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.01, (n_bars, n_assets))))
    tradable = np.ones((n_bars, n_assets), dtype=bool)
    for array in (open_, high, low, close):
        array[:20, -1] = np.nan
    tradable[:20, -1] = False
    tradable[50:55, 0] = False
    index = pd.date_range("2023-01-02 16:00", periods=n_bars, freq="D", tz="Asia/Shanghai")
    return Panel(
        symbols=tuple(f"60000{i}" for i in range(n_assets)),
        index=index,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.full((n_bars, n_assets), 1e5),
        tradable=tradable,
        market=market,
    )


def reference_backtest(panel: Panel, entries: np.ndarray, exits: np.ndarray, **kw: Any) -> Any:
    """The wrapper as it was before the array path: rules per call, pandas sort, metrics."""
    cfg: BacktestConfig = kw.pop("config")
    market = cfg.market or panel.market
    shape = (panel.n_bars, panel.n_assets)

    def grid(value: Any, default: float) -> np.ndarray:
        if value is None:
            return np.full(shape, default)
        return np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=float), shape))

    rules = get_market_rules(market).arrays(panel)
    if kw.get("size") is not None:
        sizing, fraction = SIZING_FRACTION, grid(kw["size"], 0.0)
    elif cfg.sizing == "fraction":
        sizing, fraction = SIZING_FRACTION, np.full(shape, cfg.fraction)
    else:
        sizing, fraction = SIZING_ALL_IN, np.ones(shape)
    equity, _cash, positions, records, fills = simulate_nb(
        *(np.ascontiguousarray(a, dtype=float) for a in (panel.open, panel.high, panel.low)),
        np.ascontiguousarray(panel.close, dtype=float),
        # The price of orders due at a bar's start: the open (next-open and close fills).
        np.ascontiguousarray(panel.open, dtype=float),
        np.ascontiguousarray(panel.tradable),
        np.ascontiguousarray(entries),
        np.ascontiguousarray(exits),
        cfg.fill == "close",
        float(cfg.cash),
        sizing,
        fraction,
        int(cfg.max_positions or panel.n_assets),
        grid(kw.get("sl_stop"), np.nan),
        grid(kw.get("tp_stop"), np.nan),
        grid(kw.get("tsl_stop"), np.nan),
        grid(kw.get("time_stop"), np.nan),
        np.ascontiguousarray(rules.lot_size, dtype=float),
        np.ascontiguousarray(rules.limit_up, dtype=float),
        np.ascontiguousarray(rules.limit_down, dtype=float),
        np.ascontiguousarray(rules.stamp_duty, dtype=float),
        np.ascontiguousarray(rules.day_id, dtype=np.int64),
        bool(rules.t_plus_one),
        float(rules.commission_rate),
        float(rules.commission_min),
        float(rules.commission_fixed),
        float(cfg.slippage),
        int(entries.sum()),
        np.ascontiguousarray(np.nan_to_num(panel.volume), dtype=float),
        np.zeros(shape),
        0.0,
        0.0,
        np.inf,
    )
    frame = pd.DataFrame({name: records[name] for name in records.dtype.names})
    frame = frame.sort_values(["entry_idx", "column"], kind="stable").reset_index(drop=True)
    closed = frame["exit_idx"].to_numpy() >= 0
    traded = float(
        (frame["size"] * frame["entry_price"]).sum()
        + (frame["size"] * frame["exit_price"])[closed].sum()
    )
    metrics = compute_metrics(
        equity,
        init_cash=float(cfg.cash),
        trade_pnl=frame["pnl"].to_numpy(),
        trade_closed=closed,
        traded_value=traded,
        position_value=(positions * np.nan_to_num(panel.close)).sum(axis=1),
        periods=panel_periods_per_year(panel, market),
        years=calendar_years(panel.index),  # CAGR over calendar time (issue 12)
    )
    # No participation cap here (np.inf above): every intended notional fills, capacity 1.
    assert fills[0] == fills[1]
    metrics["capacity"] = 1.0
    return equity, frame, positions, metrics


CASES: list[tuple[str, BacktestConfig, dict[str, Any]]] = [
    ("us", BacktestConfig(market="us", slippage=0.001), {"sl_stop": 0.05}),
    ("cn", BacktestConfig(market="cn", max_positions=2), {"tsl_stop": "grid", "time_stop": 7}),
    ("crypto", BacktestConfig(market="crypto", fill="close"), {"tp_stop": 0.08, "size": "grid"}),
    ("none", BacktestConfig(market="none", sizing="fraction", fraction=0.3), {}),
]


def random_case(seed: int, market: str, extra: dict[str, Any]) -> tuple[Panel, dict[str, Any]]:
    panel = make_panel(seed, market=market)
    rng = np.random.default_rng(seed + 100)
    shape = (panel.n_bars, panel.n_assets)
    kwargs: dict[str, Any] = {
        "entries": rng.random(shape) < 0.08,
        "exits": rng.random(shape) < 0.06,
    }
    for key, value in extra.items():
        kwargs[key] = rng.uniform(0.02, 0.3, shape) if value == "grid" else value
    return panel, kwargs


def assert_same_floats(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("market", "config", "extra"), CASES)
def test_run_backtest_arrays_random_signals_equal_pre_change_wrapper_bit_for_bit(
    seed: int, market: str, config: BacktestConfig, extra: dict[str, Any]
) -> None:
    panel, kwargs = random_case(seed, market, extra)
    result = run_backtest_arrays(panel, config=config, **kwargs)
    equity, frame, positions, metrics = reference_backtest(panel, config=config, **kwargs)
    assert len(frame) > 0
    assert_same_floats(result.equity, equity)
    assert_same_floats(result.positions, positions)
    for name in frame.columns:
        assert result.trades[name].tolist() == frame[name].tolist(), name
    assert result.metrics == metrics


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize(("market", "config", "extra"), CASES)
def test_run_backtest_random_signals_equals_array_path_exactly(
    seed: int, market: str, config: BacktestConfig, extra: dict[str, Any]
) -> None:
    panel, kwargs = random_case(seed, market, extra)
    arrays = run_backtest_arrays(panel, config=config, **kwargs)
    frame = run_backtest(panel, config=config, **kwargs)
    assert_same_floats(frame.equity.to_numpy(), arrays.equity)
    assert_same_floats(frame.positions.to_numpy(), arrays.positions)
    assert frame.metrics == arrays.metrics
    assert frame.config == arrays.config
    trades = frame.trades
    for name in ("column", "entry_idx", "exit_idx", "entry_price", "exit_price", "size", "pnl"):
        assert trades[name].tolist() == arrays.trades[name].tolist(), name
    reasons = [EXIT_REASON_NAMES[code] for code in arrays.trades["exit_reason"]]
    assert trades["exit_reason"].tolist() == reasons
    assert list(trades["symbol"]) == [panel.symbols[c] for c in arrays.trades["column"]]
    assert (np.diff(trades["entry_idx"].to_numpy()) >= 0).all()


def test_run_backtest_arrays_prepared_panel_reused_gives_identical_results() -> None:
    panel, kwargs = random_case(7, "cn", {"sl_stop": 0.04})
    config = BacktestConfig(market="cn", slippage=0.0005)
    prepared = prepare_panel(panel, config)
    # Cash, fill and sizing are not part of the prepared arrays: one preparation serves all.
    for update in ({}, {"cash": 50_000.0}, {"fill": "close"}, {"max_positions": 1}):
        settings = config.model_copy(update=update)
        fresh = run_backtest_arrays(panel, config=settings, **kwargs)
        reused = run_backtest_arrays(panel, config=settings, prepared=prepared, **kwargs)
        assert_same_floats(reused.equity, fresh.equity)
        assert reused.trades.tobytes() == fresh.trades.tobytes()
        assert reused.metrics == fresh.metrics
        via_wrapper = run_backtest(panel, config=settings, prepared=prepared, **kwargs)
        assert via_wrapper.metrics == fresh.metrics


def test_prepare_panel_arrays_are_read_only_copies_of_the_panel() -> None:
    panel = make_panel(8, market="cn")
    prepared = prepare_panel(panel)
    assert prepared.market == "cn" and prepared.rules.t_plus_one
    for array in (prepared.open, prepared.close, prepared.tradable, prepared.rules.limit_up):
        assert not array.flags.writeable and array.flags.c_contiguous
    assert not np.shares_memory(prepared.close, panel.close)
    assert np.array_equal(prepared.close, panel.close, equal_nan=True)
    assert not np.isnan(prepared.close_filled).any()
    assert pickle.loads(pickle.dumps(prepared)).market == "cn"


def test_run_backtest_arrays_prepared_for_another_panel_raises_config_error() -> None:
    panel, kwargs = random_case(9, "us", {})
    other = make_panel(9, market="us")
    with pytest.raises(ConfigError, match="another panel"):
        run_backtest_arrays(panel, config=BacktestConfig(), prepared=prepare_panel(other), **kwargs)


def test_run_backtest_arrays_prepared_under_other_market_rules_raises_config_error() -> None:
    panel, kwargs = random_case(10, "us", {})
    prepared = prepare_panel(panel, BacktestConfig(market="us"))
    with pytest.raises(ConfigError, match="rules"):
        run_backtest_arrays(panel, config=BacktestConfig(market="cn"), prepared=prepared, **kwargs)
    with pytest.raises(ConfigError, match="rules"):
        run_backtest_arrays(
            panel,
            config=BacktestConfig(market="us", commission_fixed=2.0),
            prepared=prepared,
            **kwargs,
        )


def test_run_backtest_arrays_without_entries_has_no_trades_and_flat_equity() -> None:
    panel = make_panel(11)
    none = np.zeros((panel.n_bars, panel.n_assets), dtype=bool)
    result = run_backtest_arrays(panel, none, none, config=BacktestConfig(cash=5_000.0))
    assert result.trades.size == 0
    assert (result.equity == 5_000.0).all()
    assert result.metrics["n_trades"] == 0.0 and result.metrics["total_return"] == 0.0


@pytest.mark.parametrize("stop", [-0.1, np.full((160, 5), -0.1)])
def test_run_backtest_arrays_negative_stop_raises_config_error_naming_it(stop: Any) -> None:
    panel, kwargs = random_case(12, "us", {})
    with pytest.raises(ConfigError, match="tp_stop: values must be >= 0"):
        run_backtest_arrays(panel, config=BacktestConfig(), tp_stop=stop, **kwargs)


def test_run_backtest_arrays_nan_stops_mean_no_stop() -> None:
    panel, kwargs = random_case(13, "us", {})
    plain = run_backtest_arrays(panel, config=BacktestConfig(), **kwargs)
    nan_scalar = run_backtest_arrays(panel, config=BacktestConfig(), sl_stop=np.nan, **kwargs)
    nan_grid = np.full((panel.n_bars, panel.n_assets), np.nan)
    nan_array = run_backtest_arrays(panel, config=BacktestConfig(), sl_stop=nan_grid, **kwargs)
    assert plain.metrics == nan_scalar.metrics == nan_array.metrics
