"""The issue-13 market model: impact beyond the bar, transient impact, end-of-day completion."""

from __future__ import annotations

import math

import pytest

from simulators.fill_model import (
    NO_IMPACT,
    BarQuote,
    FillParams,
    ImpactState,
    bar_volatility,
    daily_volatility,
    fill_child_order,
)

BAR = BarQuote(open=10.0, high=10.02, low=9.98, close=10.0, volume=10_000.0)
SIGMA = 0.02  # per bar, large on purpose


def test_fill_large_order_goes_beyond_high_tiny_order_stays_inside() -> None:
    params = FillParams(half_spread_bps=2.0, impact_coefficient=1.0, participation_cap=1.0)
    large = fill_child_order("buy", 10_000.0, BAR, sigma=SIGMA, params=params)
    # 10 * (1 + 2e-4 + 1.0 * 0.02 * sqrt(1)) = 10.202, beyond the recorded high of 10.02.
    assert large.price == pytest.approx(10.0 * (1 + 2e-4 + 0.02), rel=1e-12)
    assert large.price > BAR.high
    sell = fill_child_order("sell", 10_000.0, BAR, sigma=SIGMA, params=params)
    assert sell.price < BAR.low
    tiny = fill_child_order("buy", 1.0, BAR, sigma=SIGMA, params=params)
    assert BAR.low <= tiny.price <= BAR.high
    assert tiny.price == pytest.approx(10.0 * (1 + 2e-4 + 0.02 * math.sqrt(1e-4)), rel=1e-12)


def test_fill_transient_raises_second_child_and_decays_by_half_life() -> None:
    params = FillParams(
        half_spread_bps=0.0,
        impact_coefficient=0.5,
        participation_cap=0.1,
        transient_half_life_bars=2.0,
    )
    first = fill_child_order("buy", 400.0, BAR, sigma=SIGMA, params=params, bar_number=3)
    impact = 0.5 * 0.02 * math.sqrt(400.0 / 10_000.0)  # 0.002
    assert first.price == pytest.approx(10.0 * (1 + impact), rel=1e-12)
    assert first.impact.level == pytest.approx(impact) and first.impact.bar == 3
    # Two bars later (one half-life) the second child pays half the first's impact on top.
    second = fill_child_order(
        "buy", 400.0, BAR, sigma=SIGMA, params=params, impact=first.impact, bar_number=5
    )
    assert second.transient == pytest.approx(0.001, rel=1e-12)
    assert second.price == pytest.approx(10.0 * (1 + 0.002 + 0.001), rel=1e-12)
    assert second.price > first.price
    # Six bars after the second fill (three half-lives) an eighth of its level is left.
    assert second.impact.at(11, 2.0) == pytest.approx(0.003 / 8, rel=1e-12)
    # A sell side's transient also pushes against the order (lower prices).
    sold = fill_child_order(
        "sell", 400.0, BAR, sigma=SIGMA, params=params, impact=first.impact, bar_number=5
    )
    assert sold.price == pytest.approx(10.0 * (1 - 0.003), rel=1e-12)
    # Nothing filled: the state is handed back unchanged.
    zero = fill_child_order(
        "buy", 0.0, BAR, sigma=SIGMA, params=params, impact=first.impact, bar_number=5
    )
    assert zero.impact is first.impact
    with pytest.raises(ValueError, match="past"):
        first.impact.at(2, 2.0)


def test_fill_no_transient_when_half_life_zero() -> None:
    params = FillParams(half_spread_bps=0.0, participation_cap=1.0, transient_half_life_bars=0.0)
    state = ImpactState(level=0.01, bar=0)
    fill = fill_child_order("buy", 100.0, BAR, sigma=SIGMA, params=params, impact=state)
    assert fill.transient == 0.0


def test_fill_completion_lifts_cap_and_walks_the_bar_in_capped_slices() -> None:
    # 2,500 at a 10% cap of 10,000: 2 full slices of 1,000 and one of 500, in this bar; slice j
    # pays its own impact and the transient of those before it (no decay inside the bar),
    # on top of T0 = the earlier fills' transient, here 0.001 at this bar.
    params = FillParams(half_spread_bps=1.0, impact_coefficient=0.5, participation_cap=0.1)
    before = ImpactState(level=0.001, bar=7)
    capped = fill_child_order("buy", 2_500.0, BAR, sigma=SIGMA, params=params, bar_number=7)
    assert capped.filled == 1_000.0 and capped.reason == "participation_cap"
    done = fill_child_order(
        "buy", 2_500.0, BAR, sigma=SIGMA, params=params, impact=before, bar_number=7,
        complete=True,
    )  # fmt: skip
    assert done.filled == 2_500.0 and done.status == "filled"
    slice_impact = 0.5 * 0.02 * math.sqrt(0.1)
    rest_impact = 0.5 * 0.02 * math.sqrt(0.05)
    costs = [
        1e-4 + slice_impact + 0.001,
        1e-4 + slice_impact + 0.001 + slice_impact,
        1e-4 + rest_impact + 0.001 + 2 * slice_impact,
    ]
    mean_cost = (1_000 * costs[0] + 1_000 * costs[1] + 500 * costs[2]) / 2_500
    assert done.price == pytest.approx(10.0 * (1 + mean_cost), rel=1e-12)
    assert done.impact.level == pytest.approx(0.001 + 2 * slice_impact + rest_impact)
    # The block costs more per share than a capped child and than the square-root law alone.
    assert done.price > capped.price
    single_print = 10.0 * (1 + 1e-4 + 0.001 + 0.5 * 0.02 * math.sqrt(0.25))
    assert done.price > single_print
    # Under the cap the completion flag changes nothing.
    small = fill_child_order("buy", 500.0, BAR, sigma=SIGMA, params=params, complete=True)
    assert small == fill_child_order("buy", 500.0, BAR, sigma=SIGMA, params=params)


def test_fill_completion_still_refused_at_locked_limit() -> None:
    up = BarQuote(open=11.0, high=11.0, low=11.0, close=11.0, volume=1e6, prev_close=10.0)
    params = FillParams(limit_pct=0.1)
    fill = fill_child_order("buy", 5e5, up, sigma=SIGMA, params=params, complete=True)
    assert fill.reason == "limit_up" and fill.filled == 0 and fill.impact is NO_IMPACT


def test_bar_volatility_is_daily_over_sqrt_bars_and_daily_volatility_sample_std() -> None:
    assert bar_volatility(0.02, 400.0) == pytest.approx(0.001)
    assert bar_volatility(0.02, 1.0) == 0.02
    assert daily_volatility([0.01, -0.01, float("nan")]) == pytest.approx(math.sqrt(2e-4))
    assert daily_volatility([0.03]) == pytest.approx(0.03)
    assert daily_volatility([]) == 0.0
    with pytest.raises(ValueError, match="bars_per_session"):
        bar_volatility(0.02, 0.0)
