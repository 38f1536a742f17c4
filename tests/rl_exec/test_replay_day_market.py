"""The replay environment's days are the arena's day (issue 17, item 2): one market type.

A replayed asset-day built from data is a view of the :class:`simulators.day_market.DayMarket`
of its date, built by :func:`simulators.day_market.day_market` from the same bars the arena's
day reads (``ArenaData.day_market``). The expected bars, previous closes and volatilities are
also computed here straight from the panels with NumPy, not through the code under test. The
controls show the checks can fail: the minute bars the replay used to generate from its own
selection of assets are not the arena's, and another date's market is not this one's.

One volatility definition (issue 13, item 1): on real intraday data with missing bars or a
halted session, one bar's volatility is the daily volatility over the *scheduled* session's bar
intervals (the exchange calendar's: 240 one-minute or 48 five-minute bars on the SSE), in the
arena's day and the replay's alike; the control shows the count of the bars present gives
another figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import arena.market
from alphaloop.home import LabHome
from arena.market import ArenaData, load_arena_data
from rl_exec.config import ReplayConfig
from rl_exec.models import ReplayDay, ReplayModel
from rl_exec.replay_data import replay_days_from_sessions
from rl_exec.train import build_replay_source
from simulators.day_market import DayMarket, day_market, trading_days
from simulators.synthetic import SyntheticSpec, generate_intraday

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cn_intraday"
FIVE_MINUTE = FIXTURES / "sh000001_5min_2017.csv"
ONE_MINUTE = FIXTURES / "sh000001_1min_2017-03-17_21.csv"
FIELDS = ("open", "high", "low", "close", "volume")


def _arena_day(data: ArenaData, replay_day: ReplayDay) -> DayMarket:
    assert replay_day.market is not None
    day = replay_day.market.day
    return data.day_market(day)


def _numpy_daily_volatility(close: np.ndarray, index: int, lookback: int) -> float:
    returns = np.diff(np.log(close[index - lookback : index]))
    return float(np.std(returns, ddof=1))


def _assert_same_day(replay_day: ReplayDay, arena_day: DayMarket) -> None:
    market, symbol = replay_day.market, replay_day.symbol
    assert type(market) is DayMarket and type(arena_day) is DayMarket
    assert market is not None
    assert (market.day, market.index, market.open_time) == (
        arena_day.day,
        arena_day.index,
        arena_day.open_time,
    )
    assert market.bars[symbol] == arena_day.bars[symbol]
    assert market.prev_close[symbol] == arena_day.prev_close[symbol] == replay_day.prev_close
    assert market.sigma[symbol] == arena_day.sigma[symbol] == replay_day.bar_sigma()
    assert market.daily_volatility[symbol] == arena_day.daily_volatility[symbol]
    # What the model fills on is exactly those bars.
    tradable = [bar for bar in arena_day.bars[symbol] if bar.tradable]
    for name in FIELDS:
        np.testing.assert_array_equal(
            getattr(replay_day, name), [getattr(bar, name) for bar in tradable]
        )


def test_market_type_is_one_class_for_arena_and_replay() -> None:
    assert arena.market.DayMarket is DayMarket
    assert arena.market.day_market is day_market


def test_synthetic_replay_day_is_the_arenas_day_market_of_its_date(tmp_path: Path) -> None:
    config = ReplayConfig(days=2, assets=3, n_steps=8)
    model, _ = build_replay_source(config)
    data = load_arena_data(None, LabHome(tmp_path))
    assert isinstance(model, ReplayModel) and len(model.days) == 6
    spec = SyntheticSpec()
    for replay_day in model.days:
        arena_day = _arena_day(data, replay_day)
        _assert_same_day(replay_day, arena_day)
        # Independently of day_market: the generator's minute bars of the whole panel, the
        # previous daily close and the volatility of the 20 closes before the day.
        index, column = arena_day.index, data.daily.column(replay_day.symbol)
        minutes = generate_intraday(spec, data.daily, index)
        np.testing.assert_array_equal(
            replay_day.close, minutes.close[:, minutes.column(replay_day.symbol)]
        )
        assert replay_day.prev_close == float(data.daily.close[index - 1, column])
        assert replay_day.daily_volatility == pytest.approx(
            _numpy_daily_volatility(data.daily.close[:, column], index, 20), rel=1e-12
        )
        assert replay_day.bar_sigma() == pytest.approx(
            replay_day.daily_volatility / np.sqrt(minutes.n_bars), rel=1e-12
        )


def test_control_minute_bars_of_a_selection_of_assets_are_not_the_arenas(tmp_path: Path) -> None:
    # What the replay did before: generate the minutes from its own 3-asset panel. The
    # generator draws for every column, so those bars are another market than the arena's.
    model, _ = build_replay_source(ReplayConfig(days=1, assets=3, n_steps=8))
    data = load_arena_data(None, LabHome(tmp_path))
    replay_day = model.days[0]
    assert replay_day.market is not None
    own = data.daily.select(list(data.daily.symbols[:3]))
    minutes = generate_intraday(SyntheticSpec(), own, replay_day.market.index)
    column = minutes.column(replay_day.symbol)
    assert not np.array_equal(replay_day.close, minutes.close[:, column])
    # And the comparison sees the date: the next day's market differs from this one.
    next_day = day_market(data.daily, trading_days(data.daily)[replay_day.market.index + 1])
    assert next_day.prev_close[replay_day.symbol] != replay_day.prev_close


def test_real_intraday_replay_day_is_the_arenas_day_market_of_its_date(tmp_path: Path) -> None:
    config = ReplayConfig(data=str(FIVE_MINUTE), days=3, n_steps=8, lookback_days=20)
    model, _ = build_replay_source(config)
    data = load_arena_data(str(FIVE_MINUTE), LabHome(tmp_path))
    assert len(model.days) == 3
    for replay_day in model.days:
        arena_day = _arena_day(data, replay_day)
        _assert_same_day(replay_day, arena_day)
        index = arena_day.index
        assert replay_day.label.endswith(arena_day.day.isoformat())
        assert replay_day.daily_volatility == pytest.approx(
            _numpy_daily_volatility(data.daily.close[:, 0], index, 20), rel=1e-12
        )
        # 48 five-minute intervals in the SSE's four hours.
        assert replay_day.session_slots == 48 == replay_day.n_bars


def test_control_another_lookback_is_another_volatility(tmp_path: Path) -> None:
    # The replay's look-back is configurable: with 5 days its volatility is not the arena's
    # 20-day one on a day with 20 closes before it (row 24).
    model, _ = build_replay_source(
        ReplayConfig(data=str(FIVE_MINUTE), days=20, n_steps=8, lookback_days=5)
    )
    data = load_arena_data(str(FIVE_MINUTE), LabHome(tmp_path))
    replay_day = model.days[-1]
    arena_day = _arena_day(data, replay_day)
    assert replay_day.market is not None and arena_day.index == 24
    assert replay_day.market.bars[replay_day.symbol] == arena_day.bars[replay_day.symbol]
    assert replay_day.bar_sigma() != arena_day.sigma[replay_day.symbol]


# --------------------------------------------------------------------------- one bar's volatility
def _session_closes(path: Path) -> pd.Series:
    """Return each session's last close of a single-asset bar file, straight from the CSV."""
    frame = pd.read_csv(path, parse_dates=["datetime"])
    return frame.groupby(frame["datetime"].dt.date)["close"].last()


def _hand_daily_volatility(closes: np.ndarray) -> float:
    """The standard deviation (ddof=1) of the log returns, or the size of a single one."""
    returns = np.diff(np.log(closes))
    return float(abs(returns[0])) if returns.size == 1 else float(np.std(returns, ddof=1))


def test_missing_bars_one_bar_volatility_is_over_the_scheduled_session(tmp_path: Path) -> None:
    # The 1-minute fixture's sessions have 238 of the SSE's 240 one-minute bars.
    data = load_arena_data(str(ONE_MINUTE), LabHome(tmp_path))
    (replay_day,) = replay_days_from_sessions(data.intraday, [2], lookback_days=2)
    assert replay_day.market is not None
    day, symbol = replay_day.market.day, replay_day.symbol
    arena_day = data.day_market(day)
    _assert_same_day(replay_day, arena_day)
    present = data.intraday.day_bars(day).n_bars
    assert present == 238 and replay_day.session_slots == 240
    closes = _session_closes(ONE_MINUTE).to_numpy()
    hand = _hand_daily_volatility(closes[:2]) / np.sqrt(240)
    assert arena_day.sigma[symbol] == pytest.approx(hand, rel=1e-12)
    assert replay_day.bar_sigma() == arena_day.sigma[symbol]
    # Control: spread over the bars present, the figure is another (about 0.42% higher).
    by_present = day_market(data.daily, day, data.minute_bars(day)).sigma[symbol]
    assert by_present == pytest.approx(_hand_daily_volatility(closes[:2]) / np.sqrt(238))
    assert by_present / arena_day.sigma[symbol] == pytest.approx(np.sqrt(240 / 238), rel=1e-12)
    assert by_present != pytest.approx(arena_day.sigma[symbol], rel=1e-3)


def _halted_file(folder: Path, row: int, last: str) -> tuple[Path, pd.Timestamp]:
    """Write the 5-minute fixture with session ``row`` cut after ``last`` (a halt to the close)."""
    frame = pd.read_csv(FIVE_MINUTE, parse_dates=["datetime"])
    day = sorted(frame["datetime"].dt.date.unique())[row]
    stamps = frame["datetime"]
    cut = (stamps.dt.date == day) & (stamps.dt.strftime("%H:%M") > last)
    path = folder / "sh000001_halted.csv"
    frame[~cut].to_csv(path, index=False, float_format="%.17g")
    return path, pd.Timestamp(day)


def test_halted_session_one_bar_volatility_is_over_the_scheduled_session(tmp_path: Path) -> None:
    # Session 30 of the 5-minute fixture stops at 13:35, as the SSE did at 13:34 on 2016-01-04.
    path, day = _halted_file(tmp_path, 30, "13:35")
    data = load_arena_data(str(path), LabHome(tmp_path))
    (replay_day,) = replay_days_from_sessions(data.intraday, [30], lookback_days=20)
    assert replay_day.market is not None and replay_day.market.day == day.date()
    symbol = replay_day.symbol
    arena_day = data.day_market(day.date())
    _assert_same_day(replay_day, arena_day)
    present = data.intraday.day_bars(day.date()).n_bars
    assert present < 48 and replay_day.session_slots == 48
    closes = _session_closes(path).to_numpy()
    daily_vol = _hand_daily_volatility(closes[10:30])
    assert arena_day.daily_volatility[symbol] == pytest.approx(daily_vol, rel=1e-12)
    assert arena_day.sigma[symbol] == pytest.approx(daily_vol / np.sqrt(48), rel=1e-12)
    assert replay_day.bar_sigma() == arena_day.sigma[symbol]
    # Control: over the bars present the halt would make each remaining bar more volatile.
    by_present = day_market(data.daily, day.date(), data.minute_bars(day.date())).sigma[symbol]
    assert by_present == pytest.approx(daily_vol / np.sqrt(present), rel=1e-12)
    assert by_present > 1.2 * arena_day.sigma[symbol]


def test_daily_only_and_synthetic_days_keep_the_bars_present(tmp_path: Path) -> None:
    # Synthetic days are whole sessions and daily-only days one bar: nothing to schedule.
    data = load_arena_data(None, LabHome(tmp_path))
    day = trading_days(data.daily)[30]
    assert data.session_bars(day) is None
    arena_day = data.day_market(day)
    minutes = data.minute_bars(day)
    assert minutes is not None
    assert arena_day.sigma == day_market(data.daily, day, minutes).sigma
    symbol = data.daily.symbols[0]
    assert arena_day.sigma[symbol] == pytest.approx(
        arena_day.daily_volatility[symbol] / np.sqrt(minutes.n_bars), rel=1e-12
    )
    single = data.day_market(day, intraday=False)
    assert not single.intraday and single.sigma[symbol] == single.daily_volatility[symbol]
    daily_only = ArenaData(daily=data.daily, spec="daily")
    assert daily_only.session_bars(day) is None
    assert daily_only.day_market(day).sigma == single.sigma
