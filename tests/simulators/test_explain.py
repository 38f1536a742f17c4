"""Buy-and-hold baseline and the why-no-trades diagnosis, on panels and signals built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel
from simulators.explain import buy_and_hold, why_no_trades


def make_panel(
    close: np.ndarray,
    *,
    symbols: tuple[str, ...] = ("600519",),
    market: str = "cn",
    open_: np.ndarray | None = None,
    tradable: np.ndarray | None = None,
) -> Panel:
    """Return a daily panel of ``close`` (``(T, N)``), bars as wide as their open and close."""
    close = np.asarray(close, dtype=np.float64).reshape(len(close), -1)
    opens = (
        close.copy() if open_ is None else np.asarray(open_, dtype=np.float64).reshape(close.shape)
    )
    index = pd.date_range("2024-01-02 15:00", periods=len(close), freq="B", tz="Asia/Shanghai")
    return Panel(
        symbols=symbols,
        index=index,
        open=opens,
        high=np.maximum(opens, close),
        low=np.minimum(opens, close),
        close=close,
        volume=np.full(close.shape, 1e5),
        tradable=np.ones(close.shape, dtype=bool) if tradable is None else tradable,
        market=market,
    )


def signals_at(panel: Panel, *bars: int) -> np.ndarray:
    out = np.zeros((panel.n_bars, panel.n_assets), dtype=bool)
    out[list(bars)] = True
    return out


def explain(panel: Panel, entries: np.ndarray, exits: np.ndarray, **config: object) -> str | None:
    """Backtest the signals, then explain that backtest (as the CLI does)."""
    result = run_backtest(panel, entries, exits, config=BacktestConfig.model_validate(config))
    return why_no_trades(panel, entries, exits, result.trades, config=result.config)


# --------------------------------------------------------------------------- why_no_trades
def test_why_no_trades_without_entry_signals_says_the_strategy_never_signalled() -> None:
    panel = make_panel(np.full(10, 20.0))
    none = np.zeros((10, 1), dtype=bool)
    assert (
        explain(panel, none, none) == "the strategy never signalled an entry (10 bars x 1 symbol)"
    )


def test_why_no_trades_when_one_lot_costs_more_than_the_cash_names_symbol_cost_and_cash() -> None:
    panel = make_panel(np.full(10, 1800.0))
    entries = signals_at(panel, 2)
    exits = signals_at(panel, 6)
    why = explain(panel, entries, exits)
    # 100 x 1,800.00 = 180,000.00 plus the commission max(0.025% x 180,000, 5) = 45.00.
    assert why == (
        "the strategy signalled 1 entry and none filled: 1 could not pay for one lot: one lot "
        "(100 units) of 600519 at 1,800.00 costs 180,045.00 > the cash 100,000.00"
    )


def test_why_no_trades_lot_cost_includes_slippage_and_the_minimum_commission() -> None:
    panel = make_panel(np.full(10, 1800.0))
    entries = signals_at(panel, 2)
    why = explain(panel, entries, np.zeros_like(entries), slippage=0.01, commission_min=500.0)
    # Filled at 1,800 x 1.01 = 1,818.00 (capped at the bar's high, which slippage may pass:
    # this bar's high is its open, so the cap gives 1,800.00); the 500.00 minimum binds.
    assert why is not None
    assert "one lot (100 units) of 600519 at 1,800.00 costs 180,500.00 > the cash" in why
    wide = make_panel(np.full(10, 1800.0), open_=np.full(10, 1790.0))
    why = explain(wide, entries, np.zeros_like(entries), slippage=0.001, commission_min=500.0)
    assert why is not None
    assert "at 1,791.79 costs 179,679.00 > the cash 100,000.00" in why


def test_why_no_trades_budget_per_entry_is_the_cash_shared_by_positions_or_the_fraction() -> None:
    close = np.column_stack([np.full(10, 600.0), np.full(10, 700.0)])
    panel = make_panel(close, symbols=("600000", "600036"))
    entries = signals_at(panel, 3)
    exits = np.zeros_like(entries)
    why = explain(panel, entries, exits)
    assert why is not None
    assert why.startswith("the strategy signalled 2 entries and none filled: 2 could not pay")
    # The nearest to affordable is the cheaper lot.
    assert (
        "(the nearest: one lot (100 units) of 600000 at 600.00 costs 60,015.00 > the budget "
        "per entry 50,000.00 (cash 100,000.00 / 2 positions))"
    ) in why
    single = make_panel(np.full(10, 600.0))
    entries = signals_at(single, 3)
    why = explain(single, entries, np.zeros_like(entries), sizing="fraction", fraction=0.5)
    assert why is not None
    assert "> the budget per entry 50,000.00 (0.5 of the cash 100,000.00)" in why


def test_why_no_trades_counts_limit_up_suspended_last_bar_and_cancelled_entries() -> None:
    close = np.full(12, 10.0)
    open_ = close.copy()
    open_[[3, 6]] = 11.0  # gaps to the +10% limit (previous close 10.00)
    tradable = np.ones((12, 1), dtype=bool)
    tradable[10:] = False  # suspended from bar 10 to the end: no own bar to fill at after 9
    panel = make_panel(close, symbols=("600000",), open_=open_, tradable=tradable)
    entries = signals_at(panel, 2, 5, 7, 9, 11)
    exits = signals_at(panel, 7)
    result = run_backtest(panel, entries, exits)
    assert len(result.trades) == 0, "the kernel must refuse every one of these entries"
    why = why_no_trades(panel, entries, exits, result.trades, config=result.config)
    assert why == (
        "the strategy signalled 5 entries and none filled: 2 at the limit-up price at the fill "
        "(price limits); 1 on a non-tradable (suspended) fill bar; 1 on the last bar (a "
        "next-open fill needs a next bar); 1 cancelled by an exit signal on the same bar"
    )
    # Control: filled at the close, the same signals meet their own bars (tradable, no gap).
    closing = run_backtest(panel, entries, exits, config=BacktestConfig(fill="close"))
    assert len(closing.trades) > 0


def test_why_no_trades_with_a_position_still_open_says_none_closed() -> None:
    panel = make_panel(np.full(10, 20.0))
    entries = signals_at(panel, 1)
    why = explain(panel, entries, np.zeros_like(entries))
    assert why is not None and why.startswith("no trade closed: 1 position was opened (600519)")


def test_why_no_trades_is_none_when_a_trade_closed() -> None:
    panel = make_panel(np.full(10, 20.0))
    assert explain(panel, signals_at(panel, 1), signals_at(panel, 5)) is None


def test_why_no_trades_refuses_signals_that_would_have_filled() -> None:
    panel = make_panel(np.full(10, 20.0))
    entries = signals_at(panel, 1)
    empty = run_backtest(panel, np.zeros_like(entries), np.zeros_like(entries)).trades
    with pytest.raises(ValueError, match="not its signals"):
        why_no_trades(panel, entries, np.zeros_like(entries), empty)


# --------------------------------------------------------------------------- buy_and_hold
def test_buy_and_hold_without_costs_is_the_price_return_from_the_entry_price() -> None:
    rng = np.random.default_rng(5)
    close = 30.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 80)))
    open_ = close * np.exp(rng.normal(0.0, 0.005, 80))
    panel = make_panel(close, symbols=("AAA",), market="none", open_=open_)
    hold = buy_and_hold(panel, BacktestConfig(cash=50_000.0))
    assert hold.bought == ("AAA",) and hold.not_bought == ()
    expected = close[-1] / open_[1] - 1.0  # next-open of the first bar, held to the last close
    assert hold.result.metrics["total_return"] == pytest.approx(expected, rel=1e-9)
    assert hold.result.metrics["final_equity"] == pytest.approx(50_000.0 * (1 + expected), rel=1e-9)
    at_close = buy_and_hold(panel, BacktestConfig(fill="close"))
    assert at_close.result.metrics["total_return"] == pytest.approx(
        close[-1] / close[0] - 1.0, rel=1e-9
    )


def test_buy_and_hold_pays_the_same_costs_as_the_strategy() -> None:
    close = np.linspace(100.0, 130.0, 30)
    open_ = close - 0.5
    panel = make_panel(close, symbols=("AAA",), market="us", open_=open_)
    hold = buy_and_hold(panel, BacktestConfig(slippage=0.001))
    # US rules: whole shares, 1.00 per order; the buy fills at open[1] x 1.001 (below the high).
    price = open_[1] * 1.001
    assert price < close[1]
    shares = np.floor((100_000.0 - 1.0) / price)
    expected = 100_000.0 - 1.0 - shares * price + shares * close[-1]
    assert hold.result.metrics["final_equity"] == pytest.approx(expected, rel=1e-12)


def test_buy_and_hold_buys_each_symbol_at_its_first_buyable_bar_with_an_equal_share() -> None:
    close = np.column_stack([np.full(20, 10.0), np.full(20, 20.0), np.full(20, 10.0)])
    tradable = np.ones(close.shape, dtype=bool)
    close[:5, 1] = np.nan  # listed at bar 5
    tradable[:5, 1] = False
    open_ = close.copy()
    open_[1, 2] = 11.0  # opens at the limit-up price on bar 1: bought on bar 2
    panel = make_panel(
        close, symbols=("600000", "600036", "600050"), open_=open_, tradable=tradable
    )
    hold = buy_and_hold(panel, BacktestConfig(cash=300_000.0))
    trades = hold.result.trades
    columns = trades["column"].tolist()
    assert dict(zip(columns, trades["entry_idx"].tolist(), strict=True)) == {0: 1, 1: 5, 2: 2}
    # A third of the equity each (about 100,000), in lots of 100, commission inside the share.
    assert dict(zip(columns, trades["size"].tolist(), strict=True)) == {
        0: 9_900.0,
        1: 4_900.0,
        2: 9_900.0,
    }


def test_buy_and_hold_leaves_in_cash_a_symbol_whose_lot_exceeds_its_share() -> None:
    panel = make_panel(np.full(10, 1800.0))
    hold = buy_and_hold(panel, BacktestConfig())
    assert hold.bought == () and hold.not_bought == ("600519",)
    assert hold.result.metrics["final_equity"] == 100_000.0
