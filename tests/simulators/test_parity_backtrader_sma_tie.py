"""Parity with backtrader's own SMA(10)/SMA(50) and CrossOver on a real A-share tie.

SPDB (sh600000, unadjusted TDX daily bars, 2013-12..2014-06; fasiondog/hikyuu test data,
Apache-2.0) has SMA(10) == SMA(50) exactly as decimals on 2014-05-26 (9.69 yuan), in the
middle of a long trade: SMA(10) is above before and below after. The exact tie is no cross,
so the exit signal is the next bar's, filled at the open of 2014-05-28 - backtrader's exit
too. With float window sums SMA(10) came out below SMA(50) on the tie day, and the exit
filled a day early (final equity 95,792.22 against backtrader's 95,103.07).

backtrader computes its own signals here (``bt.indicators.SMA``, ``bt.indicators.CrossOver``),
unlike ``test_parity_backtrader.py``, which feeds it ours; fills are next-open via
cheat-on-open with the engine's all-in size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from simulators.backtest import BacktestConfig, run_strategy
from simulators.bars import Panel
from simulators.providers.files import load_path

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "cn_ashare"
    / "sh600000_tdx_day_2013-12_2014-06.csv"
)
CASH = 100_000.0
REL = 1e-9


def _all_in_size(cash: float, price: float) -> float:
    # Same rule as the engine: the largest size whose cost does not exceed the cash.
    size = cash / price
    while size * price > cash:
        size = float(np.nextafter(size, 0.0))
    return size


class _CrossOverStrategy(bt.Strategy):  # type: ignore[misc]
    params = (("fast", 10), ("slow", 50))

    def __init__(self) -> None:
        self.cross = bt.indicators.CrossOver(
            bt.indicators.SMA(self.data.close, period=self.p.fast),
            bt.indicators.SMA(self.data.close, period=self.p.slow),
        )
        self.pending = 0
        self.fills: list[tuple[pd.Timestamp, float, float]] = []

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            when = pd.Timestamp(bt.num2date(order.executed.dt))
            self.fills.append((when, order.executed.price, order.executed.size))

    def next_open(self) -> None:
        if self.pending > 0 and self.position.size == 0:
            self.buy(size=_all_in_size(self.broker.get_cash(), self.data.open[0]))
        elif self.pending < 0 and self.position.size > 0:
            self.sell(size=self.position.size)
        self.pending = 0

    def next(self) -> None:
        self.pending = int(self.cross[0])


def _panel() -> Panel:
    load = load_path(FIXTURE, market="cn")
    return Panel.from_frames(load.frames, freq=load.freq, market="cn", source=str(FIXTURE))


def _run_backtrader(panel: Panel) -> tuple[float, list[tuple[int, float, float]]]:
    frame = panel.frame(panel.symbols[0])[["open", "high", "low", "close", "volume"]]
    frame.index = frame.index.tz_convert("UTC").tz_localize(None)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.broker.setcash(CASH)
    cerebro.addstrategy(_CrossOverStrategy)
    strategy = cerebro.run()[0]
    fills = [(int(frame.index.get_loc(when)), price, size) for when, price, size in strategy.fills]
    return float(cerebro.broker.getvalue()), fills


def test_backtrader_crossover_parity_on_real_exact_tie_same_trades_and_equity() -> None:
    panel = _panel()
    ours = run_strategy(
        panel,
        "sma-cross",
        {"fast": 10, "slow": 50},
        BacktestConfig(cash=CASH, fill="next-open", market="none"),
    )
    value, fills = _run_backtrader(panel)
    buys = [fill for fill in fills if fill[2] > 0]
    sells = [fill for fill in fills if fill[2] < 0]
    trades = ours.trades
    assert len(trades) == len(buys) == 2
    assert len(sells) == int((trades["exit_idx"] >= 0).sum()) == 2
    for k, row in enumerate(trades.itertuples(index=False)):
        assert (buys[k][0], sells[k][0]) == (row.entry_idx, row.exit_idx)
        assert math.isclose(buys[k][1], row.entry_price, rel_tol=REL)
        assert math.isclose(sells[k][1], row.exit_price, rel_tol=REL)
        assert math.isclose(buys[k][2], row.size, rel_tol=REL)
    # The trade across the tie leaves at the open of the second bar after it.
    assert trades["exit_time"].iloc[-1].strftime("%Y-%m-%d") == "2014-05-28"
    assert math.isclose(ours.metrics["final_equity"], value, rel_tol=REL)
    assert math.isclose(value, 95_103.071183, rel_tol=1e-9)
