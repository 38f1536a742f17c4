"""A suspended stock from a folder backtests exactly as its own file does (issue 12, item 3).

The real SPDB rows of ``tests/fixtures/cn_ashare`` with 30 trading days cut out (a suspension)
sit in a folder beside a name that traded every day: the folder's panel fills the gap with
flat bars, which entered the moving averages. Selecting the symbol on its own bars gives the
file's panel back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulators.backtest import BacktestConfig, run_strategy
from simulators.data_spec import load_market

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "cn_ashare"
    / "sh600000_tdx_day_2013-12_2014-06.csv"
)


def _folder(tmp_path: Path) -> Path:
    rows = pd.read_csv(FIXTURE)
    suspended = pd.concat([rows.iloc[:40], rows.iloc[70:]])  # 30 sessions without a bar
    folder = tmp_path / "bars"
    folder.mkdir()
    suspended.to_csv(folder / "sh600000.csv", index=False)
    every_day = rows.assign(open=20.0, high=20.5, low=19.5, close=20.0)
    every_day.to_csv(folder / "sh600036.csv", index=False)
    return folder


def test_a_symbol_from_a_folder_has_its_own_files_bars_and_backtest(tmp_path) -> None:
    folder = _folder(tmp_path)
    alone = load_market(f"{folder / 'sh600000.csv'};market=cn")
    together = load_market(f"{folder};market=cn")
    own = together.select(["sh600000"], own_bars=True)
    assert own.n_bars == alone.n_bars == 110
    assert own.index.equals(alone.index)
    for name in ("open", "high", "low", "close", "volume", "tradable"):
        assert np.array_equal(getattr(own, name), getattr(alone, name)), name
    config = BacktestConfig(market="cn")
    params = {"fast": 5, "slow": 20}
    mine = run_strategy(own, "sma-cross", params, config)
    reference = run_strategy(alone, "sma-cross", params, config)
    assert mine.metrics == reference.metrics
    assert len(reference.trades) >= 2
    # The folder's alignment keeps 30 flat filled rows. They no longer enter the averages
    # (tests/simulators/test_suspension_panel.py), so the trades and the final equity are the
    # file's; the per-bar figures still count the rows (volatility, Sharpe, exposure), which is
    # why --symbol selects the symbol's own bars.
    padded = together.select(["sh600000"])
    assert padded.n_bars == 140 and not padded.tradable[40:70, 0].any()
    on_rows = run_strategy(padded, "sma-cross", params, config)
    columns = ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"]
    assert on_rows.trades[columns].equals(reference.trades[columns])
    assert on_rows.metrics["final_equity"] == reference.metrics["final_equity"]
    assert on_rows.metrics["sharpe"] != reference.metrics["sharpe"]
