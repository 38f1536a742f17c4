"""SMAs on a decimal price grid are the correctly rounded exact means, and an exact decimal tie
of two SMAs is never a cross (issue 12, item 6).

The reference is exact: integer ticks and :class:`fractions.Fraction`. Prices ``ticks / 10**d``
are the floats a file's decimals parse to.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaloop.errors import StrategyParamError
from genome import primitives as prim
from genome.cache import IndicatorCache
from genome.compile import condition_signal
from genome.genes import MACross
from simulators.bars import Panel
from simulators.indicators import decimal_ticks_nb, sma, sma_nb, sma_order
from simulators.providers.files import load_path
from simulators.strategies import strategy_signals

TIE_FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "cn_ashare"
    / "sh600000_tdx_day_2013-12_2014-06.csv"
)
TIE_DAY = "2014-05-26"  # SMA(10) == SMA(50) as decimals: 5 * sum10 == sum50 in cents


def _exact_means(ticks: list[int], places: int, window: int) -> list[Fraction | None]:
    scale = 10**places
    return [
        Fraction(sum(ticks[t - window + 1 : t + 1]), scale * window) if t >= window - 1 else None
        for t in range(len(ticks))
    ]


def _exact_order(ticks: list[int], places: int, fast: int, slow: int) -> list[int | None]:
    fast_means = _exact_means(ticks, places, fast)
    slow_means = _exact_means(ticks, places, slow)
    out: list[int | None] = []
    for a, b in zip(fast_means, slow_means, strict=True):
        out.append(None if a is None or b is None else (a > b) - (a < b))
    return out


def _exact_crosses(order: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Entries/exits of ``simulators.strategies``' rule, on exact signs (a tie is 0)."""
    entries = np.zeros(len(order), dtype=bool)
    exits = np.zeros(len(order), dtype=bool)
    for t in range(1, len(order)):
        now, before = order[t], order[t - 1]
        if now is None or before is None:
            continue
        entries[t] = now > 0 and before <= 0
        exits[t] = now < 0 and before >= 0
    return entries, exits


def _with_tie(ticks: list[int], t: int, fast: int, slow: int) -> list[int] | None:
    """Return ``ticks`` with the slow-only part of bar ``t``'s window moved so the two SMAs tie.

    Tie: ``sum_fast * slow == sum_slow * fast``, i.e. the ``slow - fast`` older prices sum to
    ``sum_fast * (slow - fast) / fast``. The last price is nudged until that is an integer;
    the difference is spread over the older prices. None if a price would not stay >= 1 tick.
    """
    out = list(ticks)
    older = range(t - slow + 1, t - fast + 1)
    for _ in range(fast):
        fast_sum = sum(out[t - fast + 1 : t + 1])
        if fast_sum * (slow - fast) % fast == 0:
            break
        out[t] += 1
    target = fast_sum * (slow - fast) // fast
    missing = target - sum(out[k] for k in older)
    share, rest = divmod(missing, len(older))
    for i, k in enumerate(older):
        out[k] += share + (1 if i < rest else 0)
    if min(out) < 1:
        return None
    return out


def _panel(close: np.ndarray) -> Panel:
    n_bars = close.shape[0]
    values = close.reshape(-1, 1)
    return Panel(
        symbols=("X",),
        index=pd.date_range("2024-01-01 15:00", periods=n_bars, freq="D", tz="Asia/Shanghai"),
        open=values.copy(),
        high=values.copy(),
        low=values.copy(),
        close=values.copy(),
        volume=np.ones((n_bars, 1)),
        tradable=np.ones((n_bars, 1), dtype=bool),
    )


@st.composite
def tied_series(draw: st.DrawFn) -> tuple[list[int], int, int, int]:
    """Ticks of a random walk on a grid, two windows, and exact ties constructed in it."""
    places = draw(st.sampled_from([0, 1, 2, 2, 2, 3]))
    fast = draw(st.integers(1, 12))
    slow = draw(st.integers(fast + 1, 60))
    n_bars = draw(st.integers(slow + 2, slow + 120))
    start = draw(st.integers(100, 10**places * 2000))
    steps = draw(st.lists(st.integers(-40, 40), min_size=n_bars - 1, max_size=n_bars - 1))
    ticks = [start]
    for step in steps:
        ticks.append(max(1, ticks[-1] + step * max(1, start // 1000)))
    for t in draw(st.lists(st.integers(slow - 1, n_bars - 1), max_size=3, unique=True)):
        tied = _with_tie(ticks, t, fast, slow)
        if tied is not None:
            ticks = tied
    if draw(st.booleans()):
        # A flat stretch: every bar of it with a full slow window is a tie.
        at = draw(st.integers(0, n_bars - 1))
        length = draw(st.integers(slow, slow + 10))
        ticks[at : at + length] = [ticks[at]] * len(ticks[at : at + length])
    return ticks, places, fast, slow


EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXAMPLES
@given(case=tied_series())
def test_sma_on_decimal_grid_is_correctly_rounded_exact_mean(
    case: tuple[list[int], int, int, int],
) -> None:
    ticks, places, fast, slow = case
    close = np.array(ticks, dtype=np.float64) / 10**places
    for window in (fast, slow):
        expected = np.array(
            [np.nan if m is None else float(m) for m in _exact_means(ticks, places, window)]
        )
        np.testing.assert_array_equal(sma(close, window), expected)
        np.testing.assert_array_equal(prim.sma(close.reshape(-1, 1), window)[:, 0], expected)


@EXAMPLES
@given(case=tied_series())
def test_sma_cross_on_decimal_grid_equals_exact_reference_tie_is_no_cross(
    case: tuple[list[int], int, int, int],
) -> None:
    ticks, places, fast, slow = case
    close = np.array(ticks, dtype=np.float64) / 10**places
    order = _exact_order(ticks, places, fast, slow)
    expected_order = np.array([np.nan if o is None else float(o) for o in order])
    np.testing.assert_array_equal(sma_order(close, fast, slow), expected_order)
    # The correctly rounded averages themselves compare like the exact means (the genome's
    # crosses compare them as floats).
    with np.errstate(invalid="ignore"):
        float_order = np.sign(sma(close, fast) - sma(close, slow))
    np.testing.assert_array_equal(float_order, expected_order)
    entries, exits = _exact_crosses(order)
    signals = strategy_signals(_panel(close), "sma-cross", {"fast": fast, "slow": slow})
    np.testing.assert_array_equal(signals.entries[:, 0], entries)
    np.testing.assert_array_equal(signals.exits[:, 0], exits)
    cache = IndicatorCache(_panel(close))
    for direction, expected in (("above", entries), ("below", exits)):
        cross = MACross(ma="sma", fast=fast, slow=slow, direction=direction)
        np.testing.assert_array_equal(condition_signal(cross, cache)[:, 0], expected)


def test_sma_mixed_decimal_places_in_one_window_is_exact() -> None:
    # 9.5, 9.55 and 9.555 share a window: the sum is counted in thousandths.
    text = ["9.5", "9.55", "9.555", "10", "9.9", "9.125", "9.01"]
    close = np.array([float(v) for v in text])
    expected = [float(sum(Fraction(v) for v in text[t - 2 : t + 1]) / 3) for t in range(2, 7)]
    np.testing.assert_array_equal(sma(close, 3)[2:], expected)


def test_decimal_ticks_parsed_prices_on_grid_computed_ones_off() -> None:
    close = np.array([0.3, 0.1 + 0.2, 3.3, 1.1 * 3, np.round(2.0 / 3.0, 4), 1e-8, np.nan, np.inf])
    places, ticks, _ = decimal_ticks_nb(close.reshape(-1, 1))
    # 0.1 + 0.2 and 1.1 * 3 are not the floats nearest to 0.3 and 3.3: off the grid.
    assert places[:, 0].tolist() == [1, -1, 1, -1, 4, 8, -2, -1]
    assert ticks[[0, 2, 4, 5], 0].tolist() == [3, 33, 6667, 1]
    _, parsed = _tie_close()
    places, ticks, _ = decimal_ticks_nb(parsed.reshape(-1, 1))
    text = pd.read_csv(TIE_FIXTURE, dtype=str)["close"]
    assert (places[:, 0] >= 0).all()
    assert [
        Fraction(int(k), 10 ** int(d)) for k, d in zip(ticks[:, 0], places[:, 0], strict=True)
    ] == [Fraction(value) for value in text]


def test_sma_a_window_of_one_is_the_price_itself_on_or_off_the_grid() -> None:
    rng = np.random.default_rng(3)
    close = np.concatenate(
        [100.0 * np.exp(rng.normal(0.0, 0.2, 5000)), rng.integers(1, 10**6, 5000) / 100]
    )
    np.testing.assert_array_equal(sma(close, 1), close)


def test_sma_off_grid_prices_keep_the_float_path_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (400, 3)), axis=0))
    close[100, 1] = np.nan
    close[200, 2] = np.inf
    for window in (1, 5, 20):
        np.testing.assert_array_equal(sma(close, window), sma_nb(close, window))
    for window in (2, 5, 20):
        np.testing.assert_array_equal(prim.sma(close, window), prim._running_sma(close, window))
    assert np.isnan(prim.sma(close, 5)[200:205, 2]).all()  # an infinite price: NaN windows


def test_sma_window_with_one_off_grid_price_falls_back_only_there() -> None:
    ticks = np.arange(1000, 1040)
    close = ticks / 100.0
    close[20] = 10.2 + np.pi * 1e-6  # off the grid at every number of places up to 8
    out = sma(close, 4)
    for t in range(3, 40):
        window = ticks[t - 3 : t + 1]
        if 20 in range(t - 3, t + 1):
            assert out[t] == sma_nb(close.reshape(-1, 1), 4)[t, 0]
        else:
            assert out[t] == float(Fraction(int(window.sum()), 400))


def test_sma_windows_too_large_to_sum_exactly_fall_back_then_recover() -> None:
    # After 1e-8 the sums count 10**-8 ticks: three prices of 3.4e10 overflow int64 there.
    close = np.array([1e-8, 3.4e10, 3.4e10, 3.4e10, 1.0, 2.0, 3.0, 4.0, 5.0])
    out = sma(close, 3)
    floats = sma_nb(close.reshape(-1, 1), 3)[:, 0]
    np.testing.assert_array_equal(out[:6], floats[:6])
    assert out[6:].tolist() == [2.0, 3.0, 4.0]
    assert sma_order(close, 2, 3)[6:].tolist() == [1.0, 1.0, 1.0]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 79))
def test_sma_truncating_future_bars_never_changes_past_values(seed: int, cut: int) -> None:
    # Whether a window is on the grid is read from its own and earlier prices: later prices
    # with more decimals, or off the grid, change nothing before them.
    rng = np.random.default_rng(seed)
    close = rng.integers(900, 1100, 80) / 100.0
    close[rng.random(80) < 0.1] += rng.normal(0.0, 1e-3)
    close[rng.random(80) < 0.1] = np.round(close[-1] + 0.0005, 4)
    for window in (3, 10):
        np.testing.assert_array_equal(sma(close, window)[:cut], sma(close[:cut], window))
        np.testing.assert_array_equal(sma_order(close, 3, 10)[:cut], sma_order(close[:cut], 3, 10))


def _tie_close() -> tuple[pd.DatetimeIndex, np.ndarray]:
    frame = load_path(TIE_FIXTURE, market="cn").frames[TIE_FIXTURE.stem]
    return pd.DatetimeIndex(frame.index), frame["close"].to_numpy(dtype=np.float64)


def test_real_a_share_tie_day_is_a_tie_and_float_sums_were_not() -> None:
    index, close = _tie_close()
    day = int(np.flatnonzero(index.strftime("%Y-%m-%d") == TIE_DAY)[0])
    # Cents read from the file's own text, not from the floats.
    text = pd.read_csv(TIE_FIXTURE, dtype=str)["close"]
    cents = [int(Fraction(value) * 100) for value in text]
    assert 5 * sum(cents[day - 9 : day + 1]) == sum(cents[day - 49 : day + 1])
    order = sma_order(close, 10, 50)
    assert order[day - 1] == 1.0 and order[day] == 0.0 and order[day + 1] == -1.0
    assert sma(close, 10)[day] == sma(close, 50)[day] == 9.69
    # The float sums this replaces put SMA(10) below SMA(50) on the tie day: an exit a day early.
    float_fast, float_slow = sma_nb(close.reshape(-1, 1), 10), sma_nb(close.reshape(-1, 1), 50)
    assert float_fast[day, 0] < float_slow[day, 0]
    signals = strategy_signals(_panel(close), "sma-cross", {"fast": 10, "slow": 50})
    assert not signals.exits[day, 0] and signals.exits[day + 1, 0]


@pytest.mark.parametrize("window", [0, 2.5])
def test_sma_order_bad_window_raises(window: float) -> None:
    with pytest.raises(StrategyParamError, match="sma_order: window"):
        sma_order(np.ones(5), window, 3)  # type: ignore[arg-type]
