"""China A-share price limits by board and trading date; ST only from an explicit list.

The fixture ``tests/fixtures/cn_ashare/sh600000_history.csv`` is eight unadjusted daily rows
of SPDB (600000), 2008-09-16..25, sliced from fasiondog/hikyuu @ e7ad6d29
(``test_data/vipdoc/sh/lday/sh600000.day``, Apache-2.0; see ``/work/shared/data/README.md``).
Its file name gives the symbol ``sh600000_history``, whose letters hold ``ST``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel
from simulators.market_rules import (
    CHINEXT_REFORM,
    ChinaAShareRules,
    cn_board,
    cn_board_limit,
    cn_limit_fractions,
    cn_security,
    cn_symbol_is_st,
)
from simulators.providers.files import load_path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cn_ashare" / "sh600000_history.csv"
CN = BacktestConfig(market="cn")
TICK = 0.01


def daily_panel(
    close: list[list[float]] | list[float],
    *,
    symbols: tuple[str, ...] = ("300059.SZ",),
    start: str = "2015-06-01",
) -> Panel:
    """Return one-price business-day bars (open = high = low = close) closing at 15:00."""
    c = np.asarray(close, dtype=float).reshape(len(close), -1)
    index = pd.bdate_range(start, periods=len(c)).tz_localize("Asia/Shanghai")
    index = index + pd.Timedelta(hours=15)
    o = c.copy()
    return Panel(
        symbols=symbols,
        index=pd.DatetimeIndex(index),
        open=o,
        high=np.maximum(o, c),
        low=np.minimum(o, c),
        close=c,
        volume=np.ones(c.shape),
        tradable=np.ones(c.shape, dtype=bool),
        market="cn",
    )


def entry_at(n: int, bar: int, columns: int = 1) -> np.ndarray:
    out = np.zeros((n, columns), dtype=bool)
    out[bar, :] = True
    return out


def nothing(n: int, columns: int = 1) -> np.ndarray:
    return np.zeros((n, columns), dtype=bool)


def expected_limit_up(previous: np.ndarray, fraction: np.ndarray | float) -> np.ndarray:
    """The exchange limit price rounded to the tick, less half a tick (as the rules build it)."""
    return np.round(previous * (1.0 + fraction) / TICK) * TICK - TICK / 2.0


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("symbol", "security"),
    [
        ("sh600000", ("sh", "600000")),
        ("sz000001", ("sz", "000001")),
        ("600000.SH", ("sh", "600000")),
        ("000001.SZ", ("sz", "000001")),
        ("600000.SS", ("sh", "600000")),
        ("000001.XSHE", ("sz", "000001")),
        ("bj430047", ("bj", "430047")),
        ("600000", (None, "600000")),
        ("sz300059_history", ("sz", "300059")),
        ("STAR_TECH", (None, None)),
        ("SYN000", (None, None)),
        ("bars_20200824", (None, None)),
    ],
)
def test_cn_security_reads_exchange_and_code_from_every_notation(
    symbol: str, security: tuple[str | None, str | None]
) -> None:
    assert cn_security(symbol) == security


@pytest.mark.parametrize(
    ("symbol", "board"),
    [
        ("sh600000", "main"),
        ("601398.SH", "main"),
        ("603288", "main"),
        ("605499.SH", "main"),
        ("sz000001", "main"),
        ("001979.SZ", "main"),
        ("002594", "main"),
        ("003816.SZ", "main"),
        ("300059.SZ", "chinext"),
        ("sz301269", "chinext"),
        ("688981.SH", "star"),
        ("689009", "star"),
        ("bj430047", "beijing"),
        ("430047", "beijing"),
        ("830799.BJ", "beijing"),
        ("873122", "beijing"),
        ("889999", "beijing"),
        ("920002", "beijing"),
        ("STAR_TECH", "main"),
    ],
)
def test_cn_board_by_exchange_and_code(symbol: str, board: str) -> None:
    assert cn_board(symbol) == board


# --------------------------------------------------------------------------- rule by date
def test_chinext_limit_2019_is_ten_percent_and_2021_twenty() -> None:
    assert cn_board_limit("300059.SZ", date(2019, 6, 3)) == 0.10
    assert cn_board_limit("300059.SZ", date(2021, 6, 1)) == 0.20


def test_chinext_limit_changes_on_the_reform_day() -> None:
    # 2020-08-21 (Friday) was the last day under +-10%; 2020-08-24 the first under +-20%.
    assert cn_board_limit("sz300750", pd.Timestamp("2020-08-21 15:00", tz="Asia/Shanghai")) == 0.10
    assert cn_board_limit("sz300750", pd.Timestamp("2020-08-24 09:31", tz="Asia/Shanghai")) == 0.20
    assert CHINEXT_REFORM == pd.Timestamp("2020-08-24")


@pytest.mark.parametrize("day", [date(2008, 9, 19), date(2015, 7, 1), date(2024, 1, 2)])
def test_main_star_beijing_limits_do_not_depend_on_the_date(day: date) -> None:
    assert cn_board_limit("600000.SH", day) == 0.10
    assert cn_board_limit("000001.SZ", day) == 0.10
    assert cn_board_limit("688981.SH", day) == 0.20
    assert cn_board_limit("bj430047", day) == 0.30


def test_panel_across_the_reform_gives_each_bar_its_own_dates_limit() -> None:
    # 2020-08-18 .. 2020-08-28: 4 bars before the reform, then 5 from 2020-08-24.
    close = [[10.0, 10.0]] * 9
    panel = daily_panel(close, symbols=("300059.SZ", "600000.SH"), start="2020-08-18")
    fractions = cn_limit_fractions(panel.symbols, panel.index)
    reformed = panel.index.tz_localize(None).normalize() >= CHINEXT_REFORM
    assert reformed.tolist() == [False] * 4 + [True] * 5
    np.testing.assert_array_equal(fractions[:, 0], np.where(reformed, 0.20, 0.10))
    np.testing.assert_array_equal(fractions[:, 1], np.full(9, 0.10))
    arrays = ChinaAShareRules().arrays(panel)
    assert np.isinf(arrays.limit_up[0]).all()
    np.testing.assert_allclose(arrays.limit_up[1:4, 0], 11.0 - TICK / 2.0)
    np.testing.assert_allclose(arrays.limit_up[4:, 0], 12.0 - TICK / 2.0)
    np.testing.assert_allclose(arrays.limit_down[4:, 0], 8.0 + TICK / 2.0)
    np.testing.assert_allclose(arrays.limit_up[1:, 1], 11.0 - TICK / 2.0)


def test_limits_identical_to_the_old_scalar_rule_where_the_rule_did_not_change() -> None:
    # Main board on any date and ChiNext after the reform: the same floats as a scalar
    # fraction per column gave before the rule depended on the date.
    rng = np.random.default_rng(7)
    close = 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, size=(60, 3)), axis=0))
    main = daily_panel(close.tolist(), symbols=("600000.SH", "sz000001", "002594"))
    arrays = ChinaAShareRules().arrays(main)
    previous = np.vstack([np.full((1, 3), np.nan), close[:-1]])
    old = expected_limit_up(previous, np.array([0.10, 0.10, 0.10]))
    np.testing.assert_array_equal(arrays.limit_up[1:], old[1:])
    chinext = daily_panel(close.tolist(), symbols=("300059.SZ", "301269", "688981"), start="2021")
    arrays = ChinaAShareRules().arrays(chinext)
    old = expected_limit_up(previous, np.array([0.20, 0.20, 0.20]))
    np.testing.assert_array_equal(arrays.limit_up[1:], old[1:])


# --------------------------------------------------------------------------- backtest
def test_chinext_locked_limit_up_2015_entry_does_not_fill() -> None:
    # Bar 1 is a one-price day at +10%: the limit of ChiNext in 2015; the entry due there
    # (next-open, and at the close) is refused and expires.
    prices = [10.0, 11.0, 11.0, 11.0]
    panel = daily_panel(prices, start="2015-06-01")
    assert run_backtest(panel, entry_at(4, 0), nothing(4), config=CN).trades.empty
    at_close = BacktestConfig(market="cn", fill="close")
    assert run_backtest(panel, entry_at(4, 1), nothing(4), config=at_close).trades.empty


def test_chinext_same_plus_ten_bar_in_2021_is_an_ordinary_bar() -> None:
    prices = [10.0, 11.0, 11.0, 11.0]
    panel = daily_panel(prices, start="2021-06-01")
    result = run_backtest(panel, entry_at(4, 0), nothing(4), config=CN)
    assert len(result.trades) == 1
    assert (result.trades.iloc[0].entry_idx, result.trades.iloc[0].entry_price) == (1, 11.0)


def test_chinext_panel_across_the_reform_refuses_before_and_fills_after() -> None:
    # Two +10% one-price days: 2020-08-21 (limit-up then) and 2020-08-25 (ordinary).
    days = pd.bdate_range("2020-08-20", "2020-08-26")
    assert [d.strftime("%m-%d") for d in days] == ["08-20", "08-21", "08-24", "08-25", "08-26"]
    prices = [10.0, 11.0, 11.0, 12.1, 12.1]
    panel = daily_panel(prices, start="2020-08-20")
    refused = run_backtest(panel, entry_at(5, 0), nothing(5), config=CN)
    assert refused.trades.empty
    filled = run_backtest(panel, entry_at(5, 2), nothing(5), config=CN)
    assert filled.trades.iloc[0].entry_idx == 3


# --------------------------------------------------------------------------- ST
@pytest.mark.parametrize("symbol", ["sz300059_history", "STAR_TECH", "ST600001", "600000.SH_ST"])
def test_letters_st_in_a_symbol_do_not_make_it_st(symbol: str) -> None:
    assert not cn_symbol_is_st(symbol, ())
    panel = daily_panel([10.0, 10.0], symbols=(symbol,), start="2015-06-01")
    fraction = cn_limit_fractions(panel.symbols, panel.index)
    assert fraction[0, 0] == 0.10  # ChiNext before the reform, or the main board


def test_st_symbol_listed_is_five_percent_on_the_main_board() -> None:
    st = ("600001.SH",)
    assert cn_symbol_is_st("600001.SH", st)
    assert cn_symbol_is_st("sh600001", st)  # same code and exchange, other notation
    assert cn_symbol_is_st("600001", st)  # no exchange: the code decides
    assert not cn_symbol_is_st("sz600001", st)
    assert not cn_symbol_is_st("600002.SH", st)
    panel = daily_panel([[10.0, 10.0]] * 2, symbols=("sh600001", "sh600002"), start="2024-01-02")
    fractions = cn_limit_fractions(panel.symbols, panel.index, st_symbols=st)
    np.testing.assert_array_equal(fractions, [[0.05, 0.10], [0.05, 0.10]])


def test_st_symbols_config_refuses_a_plus_six_percent_entry() -> None:
    prices = [10.0, 10.6, 10.6, 10.6]
    panel = daily_panel(prices, symbols=("600001.SH",), start="2024-01-02")
    plain = run_backtest(panel, entry_at(4, 0), nothing(4), config=CN)
    assert len(plain.trades) == 1
    st = BacktestConfig(market="cn", st_symbols=("600001.SH",))
    assert run_backtest(panel, entry_at(4, 0), nothing(4), config=st).trades.empty


def test_st_limit_follows_the_board_rule_of_the_date() -> None:
    # ST has its own 5% on the main board and on ChiNext before the reform only.
    assert cn_board_limit("300059.SZ", date(2019, 6, 3), is_st=True) == 0.05
    assert cn_board_limit("300059.SZ", date(2021, 6, 1), is_st=True) == 0.20
    assert cn_board_limit("688981.SH", date(2021, 6, 1), is_st=True) == 0.20
    assert cn_board_limit("bj430047", date(2021, 6, 1), is_st=True) == 0.30
    assert cn_board_limit("000001.SZ", date(2021, 6, 1), is_st=True) == 0.05


# --------------------------------------------------------------------------- Beijing
@pytest.mark.parametrize("symbol", ["bj430047", "430047", "830799.BJ", "873122", "920002"])
def test_beijing_codes_are_thirty_percent(symbol: str) -> None:
    assert cn_board_limit(symbol, date(2022, 3, 1)) == 0.30
    prices = [10.0, 12.5, 12.5, 12.5]
    panel = daily_panel(prices, symbols=(symbol,), start="2022-03-01")
    fills = run_backtest(panel, entry_at(4, 0), nothing(4), config=CN)
    assert len(fills.trades) == 1  # +25% is inside +-30%
    locked = daily_panel([10.0, 13.0, 13.0, 13.0], symbols=(symbol,), start="2022-03-01")
    assert run_backtest(locked, entry_at(4, 0), nothing(4), config=CN).trades.empty


# --------------------------------------------------------------------------- real data
def test_real_file_named_history_is_main_board_not_st() -> None:
    # SPDB 2008-09-19: every stock opened at +10% (13.87 -> 15.26); 2008-09-22 opened at
    # 16.77, +9.9% over 15.26, under the 16.79 limit. The file's symbol "sh600000_history"
    # was once read as ST (+-5%), which refused both entries.
    load = load_path(FIXTURE, market="cn")
    panel = Panel.from_frames(load.frames, freq=load.freq, market="cn")
    assert panel.symbols == ("sh600000_history",)
    days = panel.index.strftime("%Y-%m-%d").tolist()
    arrays = ChinaAShareRules().arrays(panel)
    t19, t22 = days.index("2008-09-19"), days.index("2008-09-22")
    assert arrays.limit_up[t19, 0] == pytest.approx(15.26 - TICK / 2.0)
    assert arrays.limit_up[t22, 0] == pytest.approx(16.79 - TICK / 2.0)
    no_exit = nothing(panel.n_bars)
    refused = run_backtest(panel, entry_at(panel.n_bars, t19 - 1), no_exit, config=CN)
    assert refused.trades.empty
    filled = run_backtest(panel, entry_at(panel.n_bars, t19), no_exit, config=CN)
    assert filled.trades.iloc[0].entry_idx == t22
    assert filled.trades.iloc[0].entry_price == pytest.approx(16.77)
