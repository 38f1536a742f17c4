"""Market rules: A-share lots, T+1, price limits, stamp duty, commissions; market lookup."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import yaml

from alphaloop.config import packaged_config
from alphaloop.errors import ConfigError
from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel
from simulators.market_rules import (
    ChinaAShareRules,
    CryptoRules,
    USEquityRules,
    cn_board_limit,
    get_market_rules,
)

CN = BacktestConfig(market="cn")


def cn_panel(
    close: list[float],
    *,
    symbol: str = "600000.SH",
    start: str = "2024-01-02",
    freq: str = "D",
    open_: list[float] | None = None,
) -> Panel:
    c = np.asarray(close, dtype=float).reshape(-1, 1)
    o = c.copy() if open_ is None else np.asarray(open_, dtype=float).reshape(-1, 1)
    index = pd.date_range(f"{start} 15:00", periods=len(c), freq=freq, tz="Asia/Shanghai")
    return Panel(
        symbols=(symbol,),
        index=index,
        open=o,
        high=np.maximum(o, c),
        low=np.minimum(o, c),
        close=c,
        volume=np.ones(c.shape),
        tradable=np.ones(c.shape, dtype=bool),
        market="cn",
    )


def flags(n: int, *bars: int) -> np.ndarray:
    out = np.zeros((n, 1), dtype=bool)
    out[list(bars), 0] = True
    return out


@pytest.mark.parametrize(
    ("symbol", "limit"),
    [
        ("600000.SH", 0.10),
        ("300750.SZ", 0.20),
        ("301001", 0.20),
        ("688981.SH", 0.20),
        # Letters never make a name ST (only st_symbols does): the main-board limit.
        ("ST600001", 0.10),
    ],
)
def test_cn_board_limit_by_code_returns_board_rule(symbol: str, limit: float) -> None:
    # By board and date (tests/simulators/test_cn_board_limits.py): 2024 is after the
    # ChiNext reform of 2020-08-24.
    assert cn_board_limit(symbol, pd.Timestamp("2024-01-02")) == limit


def test_cn_st_flag_overrides_main_board_limit() -> None:
    assert cn_board_limit("600000.SH", pd.Timestamp("2024-01-02"), is_st=True) == 0.05


def test_cn_size_rounded_down_to_lot_of_100() -> None:
    panel = cn_panel([13.0] * 5)
    result = run_backtest(panel, flags(5, 0), flags(5), config=CN)
    size = result.trades.iloc[0]["size"]
    assert size % 100 == 0 and size > 0
    # One more lot would not fit the cash.
    assert (size + 100) * 13.0 > 100_000


def test_cn_minimum_commission_and_stamp_duty_on_sell() -> None:
    panel = cn_panel([10.0] * 4, start="2024-01-02")
    config = BacktestConfig(market="cn", cash=10_000.0)
    result = run_backtest(panel, flags(4, 0), flags(4, 1), config=config)
    trade = result.trades.iloc[0]
    value = trade["size"] * 10.0
    # 0.025% of < 10k is < 5 CNY: the minimum applies on both orders; stamp duty 0.05% on sell.
    assert trade.fees == pytest.approx(5.0 + 5.0 + value * 0.0005)


def test_cn_stamp_duty_before_cut_date_is_double() -> None:
    rules = ChinaAShareRules().arrays(cn_panel([10.0] * 4, start="2023-08-24"))
    # 2023-08-24, 25, 26, 27 -> all before 2023-08-28 ...
    assert np.all(rules.stamp_duty == 0.001)
    after = ChinaAShareRules().arrays(cn_panel([10.0] * 2, start="2023-08-28"))
    assert np.all(after.stamp_duty == 0.0005)


def test_cn_t_plus_one_blocks_same_day_sell() -> None:
    # Intraday bars: two per day. Entry fills at the close of bar 0 (day 1); the exit signal
    # at bar 1 (same day) must wait for the next day (bar 2).
    index = pd.DatetimeIndex(
        ["2024-01-02 10:30", "2024-01-02 15:00", "2024-01-03 10:30", "2024-01-03 15:00"],
        tz="Asia/Shanghai",
    )
    c = np.full((4, 1), 10.0)
    panel = Panel(
        symbols=("600000.SH",),
        index=index,
        open=c,
        high=c,
        low=c,
        close=c.copy(),
        volume=np.ones(c.shape),
        tradable=np.ones(c.shape, dtype=bool),
        freq="1h",
        market="cn",
    )
    result = run_backtest(
        panel, flags(4, 0), flags(4, 1), config=BacktestConfig(market="cn", fill="close")
    )
    assert result.trades.iloc[0].exit_idx == 2
    unrestricted = run_backtest(
        panel, flags(4, 0), flags(4, 1), config=BacktestConfig(market="us", fill="close")
    )
    assert unrestricted.trades.iloc[0].exit_idx == 1


def test_cn_no_buy_at_limit_up() -> None:
    # Bar 1 opens at +10% (limit-up): the entry due there is refused and expires.
    panel = cn_panel([10.0, 11.0, 11.0, 11.0], open_=[10.0, 11.0, 11.0, 11.0])
    result = run_backtest(panel, flags(4, 0), flags(4), config=CN)
    assert result.trades.empty
    same_in_us = run_backtest(panel, flags(4, 0), flags(4), config=BacktestConfig(market="us"))
    assert len(same_in_us.trades) == 1


def test_cn_no_sell_at_limit_down_exit_retried() -> None:
    # Exit due at bar 3 which opens at -10% (limit-down): it waits and fills at bar 4.
    close = [10.0, 10.0, 10.0, 9.0, 9.0, 9.0]
    panel = cn_panel(close, open_=close)
    result = run_backtest(panel, flags(6, 0), flags(6, 2), config=CN)
    trade = result.trades.iloc[0]
    assert (trade.entry_idx, trade.exit_idx) == (1, 4)


def test_chinext_limit_is_twenty_percent() -> None:
    # +10% is fine on ChiNext in 2024 (limit 20% since 2020-08-24), refused on the main board.
    prices = [10.0, 11.0, 11.0, 11.0]
    chinext = run_backtest(
        cn_panel(prices, open_=prices, symbol="300750.SZ"), flags(4, 0), flags(4), config=CN
    )
    assert len(chinext.trades) == 1


def test_us_fixed_commission_and_whole_shares() -> None:
    arrays = USEquityRules().arrays(cn_panel([1.0, 1.0]))
    assert arrays.lot_size[0] == 1.0 and arrays.commission_fixed == 1.0
    assert not arrays.t_plus_one


def test_crypto_taker_fee_fractional() -> None:
    arrays = CryptoRules().arrays(cn_panel([1.0, 1.0]))
    assert arrays.lot_size[0] == 0.0 and arrays.commission_rate == 0.001


def test_unknown_market_raises_config_error_listing_allowed() -> None:
    with pytest.raises(ConfigError, match="allowed: none, cn, us, crypto"):
        get_market_rules("moon")


def test_commission_override_on_frictionless_market_rejected() -> None:
    with pytest.raises(ConfigError, match="frictionless"):
        get_market_rules("none", commission_rate=0.001)


def test_markets_yaml_agrees_with_rule_defaults() -> None:
    path = packaged_config("markets.yaml")
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name in ("us", "crypto", "cn"):
        rules = get_market_rules(name)
        for key in ("lot_size", "commission_rate", "commission_min", "commission_fixed"):
            assert table[name][key] == getattr(rules, key), (name, key)
    cn = ChinaAShareRules()
    assert table["cn"]["stamp_duty_before"] == cn.stamp_duty_before
    assert table["cn"]["stamp_duty_after"] == cn.stamp_duty_after
    limits = table["cn"]["price_limits"]
    before, after = date(2020, 8, 21), date(2020, 8, 24)
    assert cn_board_limit("600000", after) == limits["main"]
    assert cn_board_limit("300750", before) == limits["chinext_before_2020_08_24"]
    assert cn_board_limit("300750", after) == limits["chinext_from_2020_08_24"]
    assert cn_board_limit("688001", before) == limits["star"]
    assert cn_board_limit("bj430047", after) == limits["beijing"]
    assert cn_board_limit("600000", after, is_st=True) == limits["st"]
    assert cn_board_limit("300750", before, is_st=True) == limits["st"]
