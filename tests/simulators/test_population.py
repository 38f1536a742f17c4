"""The population (grid) backtester: identity with the general engine, vectorbt and a slow
reference, chunking, trade records and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import ConfigError, DataQualityError, StrategyParamError
from simulators.backtest import BacktestConfig, run_strategy
from simulators.bars import Panel
from simulators.indicators import sma
from simulators.population import (
    moving_averages,
    run_sma_cross_population,
    simulate_sma_cross_population,
    sma_cross_grid,
)

INIT_CASH = 1_000_000.0
PAIRS = [(2, 5), (3, 8), (5, 20), (10, 30), (7, 11)]


def _walk(n_bars: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded geometric random walk with consistent OHLC: open, high, low, close."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_bars)))
    open_ = np.empty(n_bars)
    open_[0] = 100.0
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, 0.003, n_bars - 1))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.002, n_bars)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.002, n_bars)))
    return open_, high, low, close


def _panel(n_bars: int = 600, seed: int = 11) -> Panel:
    open_, high, low, close = _walk(n_bars, seed)
    index = pd.date_range("2020-01-01 16:00", periods=n_bars, freq="D", tz="America/New_York")
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1e6}, index=index
    )
    return Panel.from_frames({"SYN": frame}, freq="1D", market="none", source="test")


def _reference(
    close: np.ndarray, open_: np.ndarray, fast: int, slow: int, next_open: bool
) -> tuple[np.ndarray, list[tuple[int, int, float, float, float, float]]]:
    """Slow, obvious simulation of the documented rules: equity curve and closed trades."""
    fast_ma, slow_ma = sma(close, fast), sma(close, slow)
    n_bars = close.size
    cash, size, entry_bar, entry_price = INIT_CASH, 0.0, -1, 0.0
    pending: str | None = None
    equity = np.empty(n_bars)
    trades = []

    def buy(price: float) -> None:
        nonlocal cash, size
        size = cash / price
        while size * price > cash:
            size = float(np.nextafter(size, 0.0))
        cash -= size * price

    for t in range(n_bars):
        if pending == "buy":
            buy(open_[t])
            entry_bar, entry_price = t, open_[t]
        elif pending == "sell":
            cash += size * open_[t]
            trades.append(
                (entry_bar, t, entry_price, open_[t], size, size * (open_[t] - entry_price))
            )
            size, entry_bar = 0.0, -1
        pending = None
        defined = (
            t >= 1 and not np.isnan([fast_ma[t], slow_ma[t], fast_ma[t - 1], slow_ma[t - 1]]).any()
        )
        enter = defined and fast_ma[t] > slow_ma[t] and fast_ma[t - 1] <= slow_ma[t - 1]
        leave = defined and fast_ma[t] < slow_ma[t] and fast_ma[t - 1] >= slow_ma[t - 1]
        if enter and entry_bar < 0:
            if not next_open:
                buy(close[t])
                entry_bar, entry_price = t, close[t]
            elif t + 1 < n_bars:
                pending = "buy"
        elif leave and entry_bar >= 0:
            if not next_open:
                cash += size * close[t]
                trades.append(
                    (entry_bar, t, entry_price, close[t], size, size * (close[t] - entry_price))
                )
                size, entry_bar = 0.0, -1
            elif t + 1 < n_bars:
                pending = "sell"
        equity[t] = cash + size * close[t]
    return equity, trades


def test_moving_averages_any_window_bitwise_equal_to_indicators_sma() -> None:
    _, _, _, close = _walk(3000, seed=3)
    # Unsorted, repeated, gaps not multiples of 4, longer than the series: every case of the
    # window ladder.
    windows = [37, 1, 2, 5, 200, 511, 512, 513, 1100, 2999, 3000, 3001, 5, 1030]
    averages = moving_averages(close, windows)
    for row, window in enumerate(windows):
        np.testing.assert_array_equal(averages[row], sma(close, window), err_msg=f"window {window}")


@pytest.mark.parametrize("fill", ["next-open", "close"])
def test_population_sma_cross_pairs_identical_to_general_engine(fill: str) -> None:
    panel = _panel()
    result = run_sma_cross_population(panel, PAIRS, fill=fill, keep_equity=True)  # type: ignore[arg-type]
    config = BacktestConfig(cash=INIT_CASH, fill=fill, market="none")  # type: ignore[arg-type]
    for row, (fast, slow) in enumerate(PAIRS):
        engine = run_strategy(panel, "sma-cross", {"fast": fast, "slow": slow}, config)
        assert result.equity is not None
        np.testing.assert_array_equal(result.equity[row], engine.equity.to_numpy())
        ours = result.trades_frame(row)
        theirs = engine.trades
        assert len(ours) == len(theirs) >= 3, (fast, slow)
        for column in ("entry_idx", "exit_idx", "entry_price", "exit_price", "size", "pnl"):
            np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy())
        pd.testing.assert_index_equal(
            pd.DatetimeIndex(ours["entry_time"]), pd.DatetimeIndex(theirs["entry_time"])
        )
        pd.testing.assert_index_equal(
            pd.DatetimeIndex(ours["exit_time"]), pd.DatetimeIndex(theirs["exit_time"])
        )
        metrics = engine.metrics
        assert result.final_value[row] == metrics["final_equity"]
        assert result.total_return[row] == metrics["total_return"]
        assert result.max_drawdown[row] == metrics["max_drawdown"]
        assert result.sharpe[row] == pytest.approx(metrics["sharpe"], rel=1e-9, abs=1e-12)
        # n_trades counts closed round trips; the trade records also hold the open position.
        closed = theirs[theirs["exit_reason"] != "open"]
        assert result.n_trades[row] == metrics["n_trades"] == len(closed)


@pytest.mark.parametrize("fill", ["next-open", "close"])
def test_population_trades_and_equity_equal_slow_reference(fill: str) -> None:
    open_, _, _, close = _walk(800, seed=5)
    result = simulate_sma_cross_population(close, open_, PAIRS, fill=fill, keep_equity=True)  # type: ignore[arg-type]
    assert result.equity is not None
    for row, (fast, slow) in enumerate(PAIRS):
        equity, trades = _reference(close, open_, fast, slow, fill == "next-open")
        np.testing.assert_array_equal(result.equity[row], equity)
        records = result.strategy_trades(row)
        closed = records[records["exit_idx"] >= 0]
        assert int(result.n_trades[row]) == len(trades) == len(closed) > 0
        got = [
            (
                int(r["entry_idx"]),
                int(r["exit_idx"]),
                *map(float, r[["entry_price", "exit_price", "size", "pnl"]].tolist()),
            )
            for r in closed
        ]
        assert got == trades
        assert (records["strategy"] == row).all()
        assert result.final_value[row] == equity[-1]


def test_population_open_position_recorded_like_general_engine() -> None:
    open_, _, _, close = _walk(500, seed=8)
    result = simulate_sma_cross_population(close, open_, sma_cross_grid([2, 3, 4], [6, 9, 13]))
    ends_long = 0
    for row in range(result.n_strategies):
        records = result.strategy_trades(row)
        open_records = records[records["exit_idx"] < 0]
        assert len(records) == result.n_trades[row] + len(open_records)
        if len(open_records):
            ends_long += 1
            (record,) = open_records
            assert records[-1]["exit_idx"] == -1
            assert record["exit_price"] == close[-1]
            assert record["pnl"] == record["size"] * (close[-1] - record["entry_price"])
    assert 0 < ends_long < result.n_strategies


def test_population_chunk_sizes_and_threads_give_identical_results() -> None:
    open_, _, _, close = _walk(1500, seed=9)
    pairs = sma_cross_grid(range(1, 12, 2), range(3, 40, 6))
    whole = simulate_sma_cross_population(
        close, open_, pairs, chunk_size=len(pairs), keep_equity=True
    )
    assert whole.equity is not None
    for chunk_size, parallel in ((1, False), (4, False), (7, True)):
        part = simulate_sma_cross_population(
            close, open_, pairs, chunk_size=chunk_size, keep_equity=True, parallel=parallel
        )
        assert part.equity is not None
        np.testing.assert_array_equal(part.equity, whole.equity)
        np.testing.assert_array_equal(part.trades.to_records(), whole.trades.to_records())
        np.testing.assert_array_equal(part.trades.offsets, whole.trades.offsets)
        for name in ("final_value", "sharpe", "max_drawdown", "n_trades"):
            np.testing.assert_array_equal(getattr(part, name), getattr(whole, name))


def test_population_trade_buffer_overflow_rerun_keeps_every_trade() -> None:
    # Windows 1/2 cross every few bars: far more trades than the first buffer holds.
    open_, _, _, close = _walk(4000, seed=4)
    result = simulate_sma_cross_population(close, open_, [(1, 2), (20, 40)], chunk_size=2)
    _, trades = _reference(close, open_, 1, 2, next_open=True)
    assert result.n_trades[0] == len(trades) > 1000
    closed = result.strategy_trades(0)
    closed = closed[closed["exit_idx"] >= 0]
    np.testing.assert_array_equal(closed["exit_idx"], [t[1] for t in trades])
    np.testing.assert_array_equal(closed["pnl"], [t[5] for t in trades])


def test_population_streamed_or_skipped_equity_same_metrics() -> None:
    open_, _, _, close = _walk(1000, seed=2)
    pairs = sma_cross_grid([3, 5, 8], [10, 21, 34])
    kept = simulate_sma_cross_population(close, open_, pairs, keep_equity=True, chunk_size=4)
    assert kept.equity is not None
    seen: dict[int, np.ndarray] = {}

    def keep(first: int, block: np.ndarray) -> None:
        seen[first] = block.copy()

    streamed = simulate_sma_cross_population(close, open_, pairs, chunk_size=4, on_chunk=keep)
    skipped = simulate_sma_cross_population(close, open_, pairs, chunk_size=4)
    assert streamed.equity is None and skipped.equity is None
    assert sorted(seen) == [0, 4, 8]
    np.testing.assert_array_equal(np.concatenate([seen[k] for k in sorted(seen)]), kept.equity)
    for other in (streamed, skipped):
        for name in ("final_value", "sharpe", "max_drawdown", "total_return", "n_trades"):
            np.testing.assert_array_equal(getattr(other, name), getattr(kept, name))
        np.testing.assert_array_equal(other.trades.to_records(), kept.trades.to_records())
    # The metrics follow their definitions on the kept curves.
    returns = (
        kept.equity
        / np.concatenate([np.full((len(pairs), 1), INIT_CASH), kept.equity[:, :-1]], axis=1)
        - 1.0
    )
    expected_sharpe = returns.mean(axis=1) / returns.std(axis=1, ddof=1) * np.sqrt(252.0)
    np.testing.assert_allclose(kept.sharpe, expected_sharpe, rtol=1e-9)
    peaks = np.maximum.accumulate(kept.equity, axis=1)
    np.testing.assert_array_equal(kept.max_drawdown, (1.0 - kept.equity / peaks).max(axis=1))


def test_population_small_grid_final_values_match_vectorbt() -> None:
    import vectorbt as vbt

    open_, _, _, close = _walk(1200, seed=6)
    pairs = sma_cross_grid([3, 5, 10], [8, 20, 30])
    result = simulate_sma_cross_population(close, open_, pairs)
    windows = np.unique(pairs).tolist()
    averages = moving_averages(close, windows)
    fast = averages[[windows.index(f) for f in pairs[:, 0]]].T
    slow = averages[[windows.index(s) for s in pairs[:, 1]]].T
    with np.errstate(invalid="ignore"):
        entries = np.zeros(fast.shape, dtype=bool)
        exits = np.zeros(fast.shape, dtype=bool)
        entries[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
        exits[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
    # vectorbt fills an order at its own bar: move the signals one bar on, fill at the open.
    entries = np.vstack([np.zeros((1, len(pairs)), dtype=bool), entries[:-1]])
    exits = np.vstack([np.zeros((1, len(pairs)), dtype=bool), exits[:-1]])
    portfolio = vbt.Portfolio.from_signals(
        close=close[:, None],
        entries=entries,
        exits=exits,
        price=open_[:, None],
        size=np.inf,
        direction="longonly",
        init_cash=INIT_CASH,
    )
    # vectorbt spends cash / price exactly (cash snapped to 0) where the general engine steps
    # the size down an ulp when size * price > cash: equal to rounding, not bit for bit.
    np.testing.assert_allclose(result.final_value, np.asarray(portfolio.value())[-1], rtol=1e-12)
    np.testing.assert_array_equal(result.n_trades, np.asarray(portfolio.trades.closed.count()))


def test_sma_cross_grid_keeps_fast_below_slow_in_nested_order() -> None:
    pairs = sma_cross_grid(range(5, 51, 5), range(20, 201, 5))
    assert pairs.shape == (342, 2)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert pairs[0].tolist() == [5, 20] and pairs[-1].tolist() == [50, 200]
    assert len({tuple(p) for p in pairs.tolist()}) == 342


def test_population_bad_prices_raise_naming_the_bar() -> None:
    open_, _, _, close = _walk(50, seed=1)
    close[17] = np.nan
    with pytest.raises(DataQualityError, match="close: bar 17"):
        simulate_sma_cross_population(close, open_, [(2, 5)])
    with pytest.raises(DataQualityError, match="open has 49"):
        simulate_sma_cross_population(open_, open_[:-1], [(2, 5)])


def test_population_bad_parameters_raise() -> None:
    open_, _, _, close = _walk(50, seed=1)
    with pytest.raises(StrategyParamError, match="row 1"):
        simulate_sma_cross_population(close, open_, [(2, 5), (0, 5)])
    with pytest.raises(StrategyParamError, match="shape"):
        simulate_sma_cross_population(close, open_, [2, 5])
    with pytest.raises(ConfigError, match="fill"):
        simulate_sma_cross_population(close, open_, [(2, 5)], fill="vwap")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chunk_size"):
        simulate_sma_cross_population(close, open_, [(2, 5)], chunk_size=0)


def test_run_population_untradable_or_inconsistent_bar_raises() -> None:
    panel = _panel(60)
    tradable = panel.tradable.copy()
    tradable[30, 0] = False
    with pytest.raises(DataQualityError, match="bar 30"):
        run_sma_cross_population(
            Panel(
                symbols=panel.symbols,
                index=panel.index,
                open=panel.open,
                high=panel.high,
                low=panel.low,
                close=panel.close,
                volume=panel.volume,
                tradable=tradable,
            ),
            [(2, 5)],
        )
    high = panel.high.copy()
    high[12, 0] = panel.low[12, 0] * 0.5
    with pytest.raises(DataQualityError, match="bar 12"):
        run_sma_cross_population(
            Panel(
                symbols=panel.symbols,
                index=panel.index,
                open=panel.open,
                high=high,
                low=panel.low,
                close=panel.close,
                volume=panel.volume,
                tradable=panel.tradable,
            ),
            [(2, 5)],
        )
