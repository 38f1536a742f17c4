"""Perception: no look-ahead, the regime of genome.regime, per-asset figures as documented."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import DataSpecError
from arena.perceive import DRAWDOWN_LOOKBACK, RISK_WINDOW, perceive, perception_cutoff
from genome.regime import classify_regimes, regime_names
from simulators.bars import Panel
from simulators.synthetic import SyntheticSpec, generate_daily

SPEC = SyntheticSpec(seed=5, assets=6, start="2020-01-01", end="2021-12-31")
DAY = "2021-06-16"


@pytest.fixture(scope="module")
def daily() -> Panel:
    return generate_daily(SPEC)


def _with_future_changed(panel: Panel, cutoff: pd.Timestamp) -> Panel:
    """Return ``panel`` with every bar after ``cutoff`` replaced by a wild crash."""
    future = panel.index > cutoff
    arrays = {}
    for name in ("open", "high", "low", "close"):
        values = getattr(panel, name).copy()
        values[future] = values[future] * 0.3
        arrays[name] = values
    volume = panel.volume.copy()
    volume[future] = 1.0
    return dataclasses.replace(panel, volume=volume, **arrays)


def test_perceive_truncated_history_gives_the_same_perception(daily: Panel) -> None:
    cutoff = perception_cutoff(daily, DAY)
    full = perceive(daily, DAY).to_dict()
    truncated = perceive(daily.truncate_after(cutoff), DAY).to_dict()
    assert full == truncated


def test_perceive_changed_future_bars_do_not_change_the_perception(daily: Panel) -> None:
    cutoff = perception_cutoff(daily, DAY)
    changed = _with_future_changed(daily, cutoff)
    assert not np.array_equal(changed.close, daily.close)
    assert perceive(changed, DAY).to_dict() == perceive(daily, DAY).to_dict()


def test_perceive_bar_of_day_itself_is_not_read(daily: Panel) -> None:
    perception = perceive(daily, DAY)
    as_of = pd.Timestamp(perception.as_of)
    assert as_of.date() < pd.Timestamp(DAY).date()
    # The last bar read is the one just before the first bar of the day.
    position = int(daily.index.get_loc(as_of))
    assert daily.index[position + 1].date() >= pd.Timestamp(DAY).date()
    assert perception.bars_used == position + 1


def test_perceive_regime_matches_classify_regimes_at_previous_close(daily: Panel) -> None:
    for day in ("2020-09-01", "2021-03-02", DAY, "2021-11-30"):
        perception = perceive(daily, day)
        position = int(daily.index.get_loc(pd.Timestamp(perception.as_of)))
        expected = regime_names(classify_regimes(daily)[position : position + 1])[0]
        assert perception.regime.regime == expected


def test_perceive_regime_inputs_follow_the_documented_rule(daily: Panel) -> None:
    reading = perceive(daily, DAY).regime
    assert reading.regime in ("bull", "bear", "range", "high_vol")
    if reading.vol_percentile >= reading.high_vol_rank:
        assert reading.regime == "high_vol"
    elif reading.trend_return > reading.trend_threshold:
        assert reading.regime == "bull"
    elif reading.trend_return < -reading.trend_threshold:
        assert reading.regime == "bear"
    else:
        assert reading.regime == "range"
    assert 0.0 <= reading.breadth <= 1.0
    assert reading.index_volatility > 0


def test_perceive_short_history_reports_unknown_regime(daily: Panel) -> None:
    perception = perceive(daily, "2020-01-10")
    assert perception.regime.regime == "unknown"
    assert math.isnan(perception.regime.trend_return)
    assert json.loads(json.dumps(perception.to_dict()))["regime"]["trend_return"] is None


def test_perceive_asset_figures_match_independent_computation(daily: Panel) -> None:
    perception = perceive(daily, DAY)
    past = daily.truncate_after(perception_cutoff(daily, DAY))
    for col, symbol in enumerate(daily.symbols):
        close = past.close[:, col]
        returns = np.diff(np.log(close))[-RISK_WINDOW:]
        history = close[-DRAWDOWN_LOOKBACK:]
        falls = 1.0 - history / np.maximum.accumulate(history)
        figures = perception.asset(symbol)
        assert figures.last_close == close[-1]
        assert figures.volatility == pytest.approx(returns.std(ddof=1) * math.sqrt(252))
        assert figures.drawdown == pytest.approx(falls[-1])
        assert figures.max_drawdown == pytest.approx(falls.max())
        volume = past.volume[-RISK_WINDOW:, col]
        assert figures.avg_volume == pytest.approx(volume.mean())
        assert figures.avg_turnover == pytest.approx((volume * close[-RISK_WINDOW:]).mean())
    with pytest.raises(KeyError, match="NOPE"):
        perception.asset("NOPE")


def test_perceive_crypto_includes_the_bar_that_closes_at_midnight() -> None:
    spec = SyntheticSpec(seed=2, assets=3, start="2021-01-01", end="2021-03-31", market="crypto")
    panel = generate_daily(spec)
    perception = perceive(panel, "2021-03-01")
    # The crypto bar of 2021-02-28 closes at 2021-03-01 00:00 UTC: it is D-1's bar.
    assert pd.Timestamp(perception.as_of) == pd.Timestamp("2021-03-01 00:00", tz="UTC")


def test_perceive_date_before_the_data_raises(daily: Panel) -> None:
    with pytest.raises(DataSpecError, match="no daily bar closes before 2019-06-01"):
        perceive(daily, "2019-06-01")


def test_perceive_is_deterministic(daily: Panel) -> None:
    assert json.dumps(perceive(daily, DAY).to_dict()) == json.dumps(perceive(daily, DAY).to_dict())
