"""A suspended day is not a bar of the symbol, inside a multi-symbol panel too (issue 12, item 3).

``tests/fixtures/cn_ashare_suspension`` holds real rows: SPDB (sh600000) 2005-07..2006-12,
suspended for 33 sessions (2006-03-21..2006-05-11, the split-share reform) and 8 more
(2006-02-27..2006-03-08), beside the SSE Composite (sh000001) 2005-08..2006-11, which traded
on those days. The folder's panel aligns both on the union of their dates, so SPDB gets 49
rows without a bar of its own (flat, forward-filled, not tradable). Its indicators, signals,
time stops and so its backtest must be those of its own file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genome import (
    ATRPct,
    ATRTrailing,
    BollingerTouch,
    CappedKelly,
    DonchianBreakout,
    Exits,
    FixedFraction,
    Genome,
    IndicatorCache,
    MACross,
    Momentum,
    PriceVsMA,
    RSILevel,
    RVPercentile,
    VolTarget,
    VolumeSurge,
    compile_and_backtest,
    compile_genome,
)
from genome import primitives as prim
from simulators.backtest import BacktestConfig, run_backtest, run_strategy
from simulators.bars import Panel
from simulators.data_spec import load_market
from simulators.indicators import sma_order
from simulators.own_bars import OwnBars
from simulators.strategies import strategy_signals

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "cn_ashare_suspension"
SYMBOL = "sh600000"
CONFIG = BacktestConfig(market="cn")
TRADE_COLUMNS = [
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "fees",
    "exit_reason",
]
FIRST_AFTER = pd.Timestamp("2006-05-12 15:00", tz="Asia/Shanghai")  # back from 33 sessions
LAST_BEFORE = pd.Timestamp("2006-03-20 15:00", tz="Asia/Shanghai")


@pytest.fixture(scope="module")
def alone() -> Panel:
    return load_market(f"{FOLDER / (SYMBOL + '.csv')};market=cn")


@pytest.fixture(scope="module")
def folder() -> Panel:
    return load_market(f"{FOLDER};market=cn")


@pytest.fixture(scope="module")
def padded(folder: Panel) -> Panel:
    """SPDB on the folder's rows: its bars plus the 49 rows where only the index trades."""
    return folder.select([SYMBOL])


def _rows(alone: Panel, panel: Panel) -> np.ndarray:
    rows = panel.index.get_indexer(alone.index)
    assert (rows >= 0).all()
    return rows


def _on_rows(values: np.ndarray, alone: Panel, panel: Panel) -> np.ndarray:
    """Return the alone panel's boolean column placed on ``panel``'s rows (False elsewhere)."""
    out = np.zeros(panel.n_bars, dtype=bool)
    out[_rows(alone, panel)] = values
    return out


def _trades(result) -> pd.DataFrame:
    return result.trades[TRADE_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- the data
def test_fixture_has_a_real_33_session_suspension_while_the_index_trades(
    alone: Panel, folder: Panel, padded: Panel
) -> None:
    assert folder.symbols == ("sh000001", SYMBOL)
    assert (alone.n_bars, folder.n_bars) == (318, 367)
    gap = (folder.index > LAST_BEFORE) & (folder.index < FIRST_AFTER)
    assert gap.sum() == 33
    assert folder.tradable[gap, 0].all() and not folder.tradable[gap, 1].any()
    assert (~padded.tradable[:, 0]).sum() == 49
    # The rows the folder adds are flat at the last close, with no volume.
    assert np.all(padded.close[gap, 0] == 10.86) and np.all(padded.volume[gap, 0] == 0)


# --------------------------------------------------------------------------- indicators
INDICATORS = {
    "sma": lambda cache: cache.sma("close", 20),
    "ema": lambda cache: cache.ema("close", 30),
    "std": lambda cache: cache.std("close", 20),
    "rsi": lambda cache: cache.rsi(14),
    "atr": lambda cache: cache.atr(14),
    "atr_pct": lambda cache: cache.atr_pct(14),
    "roc": lambda cache: cache.rate_of_change(20),
    "rv": lambda cache: cache.realised_volatility(20),
    "rv_pct": lambda cache: cache.rv_percentile(10, 60),
    "kelly": lambda cache: cache.kelly_ratio(40),
    "donchian": lambda cache: cache.previous("max_high", 20),
    "volume": lambda cache: cache.previous("sma_volume", 20),
}


@pytest.mark.parametrize("name", sorted(INDICATORS))
def test_indicator_in_a_folder_is_its_own_files_held_over_the_suspension(
    name: str, alone: Panel, folder: Panel
) -> None:
    own = INDICATORS[name](IndicatorCache(alone))[:, 0]
    mixed = INDICATORS[name](IndicatorCache(folder))[:, folder.column(SYMBOL)]
    rows = _rows(alone, folder)
    np.testing.assert_array_equal(mixed[rows], own)
    # A row without a bar holds the value of the symbol's last bar (NaN before its first).
    previous = np.maximum.accumulate(np.where(folder.tradable[:, 1], np.arange(folder.n_bars), 0))
    gap = ~folder.tradable[:, 1] & (np.arange(folder.n_bars) > rows[0])
    np.testing.assert_array_equal(mixed[gap], mixed[previous[gap]])
    assert np.isfinite(own[-1])


def test_forward_filled_rows_as_bars_give_other_indicators_after_the_suspension(
    alone: Panel, padded: Panel
) -> None:
    # The control: the flat rows counted as bars (the old behaviour) move the averages.
    row = int(padded.index.get_loc(FIRST_AFTER))
    own = IndicatorCache(padded).sma("close", 20)[row, 0]
    assert own == IndicatorCache(alone).sma("close", 20)[alone.index.get_loc(FIRST_AFTER), 0]
    filled = prim.sma(padded.close, 20)[row, 0]
    # Nineteen flat rows at 10.86 and the day's 10.21, against SPDB's own last 20 closes.
    assert filled == pytest.approx((19 * 10.86 + 10.21) / 20) and own == pytest.approx(11.1865)
    assert prim.rsi(padded.close, 14)[row, 0] != IndicatorCache(padded).rsi(14)[row, 0]


def test_indicators_of_a_folder_truncated_in_the_suspension_are_its_past(folder: Panel) -> None:
    cut = folder.truncate_after(pd.Timestamp("2006-04-14 15:00", tz="Asia/Shanghai"))
    for name in ("sma", "ema", "atr_pct", "rv_pct", "donchian"):
        full = INDICATORS[name](IndicatorCache(folder))[: cut.n_bars]
        np.testing.assert_array_equal(INDICATORS[name](IndicatorCache(cut)), full, err_msg=name)


# --------------------------------------------------------------------------- genomes
GENOMES = {
    "sma_cross": Genome(
        entry=(MACross(ma="sma", fast=5, slow=20),),
        exits=Exits(opposite_signal=True),
        sizing=FixedFraction(fraction=0.9, max_positions=1),
    ),
    "ema_trend_time_stop": Genome(
        entry=(PriceVsMA(ma="ema", window=30, side="above"),),
        exits=Exits(opposite_signal=True, time_stop=30),
        sizing=FixedFraction(fraction=0.9, max_positions=1),
    ),
    "donchian_atr_trailing": Genome(
        entry=(DonchianBreakout(window=20, side="high"),),
        exits=Exits(opposite_signal=True, trailing=ATRTrailing(multiple=2.0, window=14)),
        sizing=VolTarget(target=0.3, window=20, max_positions=1),
    ),
    "rsi_or_bollinger_kelly": Genome(
        entry=(RSILevel(window=14, threshold=40.0), BollingerTouch(window=20, width=1.5)),
        combine="or",
        exits=Exits(stop_loss=0.06, take_profit=0.1, time_stop=12),
        sizing=CappedKelly(window=40, cap=0.5, max_positions=1),
        style="mean_reversion",
    ),
    "momentum_or_volume": Genome(
        entry=(Momentum(window=10, threshold=0.02), VolumeSurge(window=10, multiple=1.5)),
        combine="or",
        exits=Exits(time_stop=8),
        sizing=FixedFraction(fraction=0.5, max_positions=1),
    ),
    "calm_atr_and_rv": Genome(
        entry=(
            ATRPct(window=10, threshold=0.04),
            RVPercentile(window=10, lookback=60, threshold=0.5),
        ),
        exits=Exits(time_stop=10, stop_loss=0.05),
        sizing=FixedFraction(fraction=0.5, max_positions=1),
    ),
}


@pytest.mark.parametrize("name", sorted(GENOMES))
def test_genome_signals_in_a_folder_are_those_of_its_own_file(
    name: str, alone: Panel, folder: Panel
) -> None:
    genome = GENOMES[name]
    own = compile_genome(genome, alone)
    mixed = compile_genome(genome, folder)
    col = folder.column(SYMBOL)
    np.testing.assert_array_equal(mixed.entries[:, col], _on_rows(own.entries[:, 0], alone, folder))
    np.testing.assert_array_equal(mixed.exits[:, col], _on_rows(own.exits[:, 0], alone, folder))
    rows = _rows(alone, folder)
    np.testing.assert_array_equal(mixed.size[rows, col], own.size[:, 0])
    if isinstance(own.tsl_stop, np.ndarray):
        assert isinstance(mixed.tsl_stop, np.ndarray)
        np.testing.assert_array_equal(mixed.tsl_stop[rows, col], own.tsl_stop[:, 0])


@pytest.mark.parametrize("name", sorted(GENOMES))
def test_genome_backtest_alone_or_from_a_folder_is_identical(
    name: str, alone: Panel, folder: Panel, padded: Panel
) -> None:
    genome = GENOMES[name]
    reference = compile_and_backtest(genome, alone, CONFIG)
    assert len(reference.trades) >= 2
    on_rows = compile_and_backtest(genome, padded, CONFIG)
    pd.testing.assert_frame_equal(_trades(on_rows), _trades(reference))
    assert on_rows.metrics["final_equity"] == reference.metrics["final_equity"]
    # In the two-symbol panel, with the index's own signals switched off (it would share the
    # cash): the same trades of SPDB and the same final equity.
    compiled = compile_genome(genome, folder)
    entries = compiled.entries.copy()
    entries[:, folder.column("sh000001")] = False
    kwargs = {**compiled.backtest_kwargs(), "entries": entries}
    config = CONFIG.model_copy(update={"max_positions": compiled.max_positions})
    together = run_backtest(folder, config=config, **kwargs)
    assert set(together.trades["symbol"]) == {SYMBOL}
    pd.testing.assert_frame_equal(_trades(together), _trades(reference))
    assert together.metrics["final_equity"] == reference.metrics["final_equity"]


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        ("sma-cross", {"fast": 5, "slow": 20}),
        ("sma-cross", {"fast": 10, "slow": 50}),
        ("rsi", {"period": 14, "lower": 30.0, "upper": 70.0}),
        ("breakout", {"lookback": 20, "stop_pct": 0.05}),
    ],
)
def test_reference_strategy_alone_or_from_a_folder_is_identical(
    strategy: str, params: dict[str, float], alone: Panel, folder: Panel, padded: Panel
) -> None:
    reference = run_strategy(alone, strategy, params, CONFIG)
    assert len(reference.trades) >= 1
    on_rows = run_strategy(padded, strategy, params, CONFIG)
    pd.testing.assert_frame_equal(_trades(on_rows), _trades(reference))
    assert on_rows.metrics["final_equity"] == reference.metrics["final_equity"]
    own = strategy_signals(alone, strategy, params)
    mixed = strategy_signals(folder, strategy, params)
    col = folder.column(SYMBOL)
    np.testing.assert_array_equal(mixed.entries[:, col], _on_rows(own.entries[:, 0], alone, folder))
    np.testing.assert_array_equal(mixed.exits[:, col], _on_rows(own.exits[:, 0], alone, folder))


def test_sma_cross_on_forward_filled_rows_trades_otherwise(alone: Panel, padded: Panel) -> None:
    # The control: crosses read from the flat rows as bars (the old behaviour) are other
    # crosses, and another backtest (242,965.75 from the file; 251,680.66 from the folder).
    reference = run_strategy(alone, "sma-cross", {"fast": 5, "slow": 20}, CONFIG)
    order = sma_order(padded.close, 5, 20)[:, 0]
    entries = np.zeros(padded.n_bars, dtype=bool)
    exits = np.zeros(padded.n_bars, dtype=bool)
    with np.errstate(invalid="ignore"):
        entries[1:] = (order[1:] > 0) & (order[:-1] <= 0)
        exits[1:] = (order[1:] < 0) & (order[:-1] >= 0)
    entries &= padded.tradable[:, 0]
    own = strategy_signals(padded, "sma-cross", {"fast": 5, "slow": 20})
    assert not np.array_equal(entries, own.entries[:, 0])
    filled = run_backtest(padded, entries, exits, config=CONFIG)
    assert filled.metrics["final_equity"] != reference.metrics["final_equity"]
    assert reference.metrics["final_equity"] == pytest.approx(242_965.75, abs=0.01)


# --------------------------------------------------------------------------- execution
def test_an_entry_due_in_the_suspension_fills_at_its_next_bar_and_times_out_in_own_bars(
    alone: Panel, padded: Panel
) -> None:
    results = []
    for panel in (alone, padded):
        entries = np.zeros(panel.n_bars, dtype=bool)
        entries[panel.index.get_loc(LAST_BEFORE)] = True  # at the close before 33 sessions off
        no_exit = np.zeros(panel.n_bars, dtype=bool)
        results.append(run_backtest(panel, entries, no_exit, config=CONFIG, time_stop=5))
    reference, on_rows = results
    trade = reference.trades.iloc[0]
    assert trade.entry_time == FIRST_AFTER and trade.entry_price == 10.06
    assert trade.exit_reason == "time_stop"
    assert trade.exit_time == pd.Timestamp("2006-05-19 15:00", tz="Asia/Shanghai")  # 5 bars on
    pd.testing.assert_frame_equal(_trades(on_rows), _trades(reference))
    assert on_rows.metrics["final_equity"] == reference.metrics["final_equity"]


# --------------------------------------------------------------------------- the mapping
def test_own_bars_of_a_fully_tradable_panel_hand_the_arrays_back() -> None:
    own = OwnBars.of(np.ones((4, 2), dtype=bool))
    values = np.arange(8.0).reshape(4, 2)
    assert own.identity
    assert own.compress(values) is values and own.expand(values) is values


def test_own_bars_compress_stacks_bars_and_expand_holds_them() -> None:
    tradable = np.array([[False, True], [True, True], [False, True], [True, False]])
    own = OwnBars.of(tradable)
    values = np.array([[np.nan, 1.0], [2.0, 2.0], [2.0, 3.0], [4.0, 3.0]])
    np.testing.assert_array_equal(
        own.compress(values), [[2.0, 1.0], [4.0, 2.0], [np.nan, 3.0], [np.nan, np.nan]]
    )
    running = own.apply(lambda x: np.cumsum(np.nan_to_num(x), axis=0), values)
    np.testing.assert_array_equal(running, [[np.nan, 1.0], [2.0, 3.0], [2.0, 6.0], [6.0, 6.0]])
    signal = own.signal(np.ones((4, 2), dtype=bool))
    np.testing.assert_array_equal(signal, tradable)
