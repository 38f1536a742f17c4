"""Properties of the bar fill model shared with the arena's broker."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.fill_model import BarQuote, FillParams, fill_child_order, round_to_lot


@st.composite
def bars(draw: st.DrawFn) -> BarQuote:
    low = draw(st.floats(1.0, 100.0))
    high = low * (1.0 + draw(st.floats(0.0, 0.05)))
    open_ = draw(st.floats(low, high))
    close = draw(st.floats(low, high))
    volume = draw(st.floats(0.0, 1e6))
    return BarQuote(open=open_, high=high, low=low, close=close, volume=volume)


@settings(max_examples=200, deadline=None)
@given(
    bar=bars(),
    quantity=st.floats(0.0, 2e5),
    side=st.sampled_from(["buy", "sell"]),
    sigma=st.floats(0.0, 0.5),
    cap=st.floats(0.01, 1.0),
    lot=st.sampled_from([1.0, 100.0, 0.01]),
    k=st.floats(0.0, 5.0),
)
def test_fill_any_order_priced_by_the_law_adverse_capped_and_in_lots(
    bar: BarQuote, quantity: float, side: str, sigma: float, cap: float, lot: float, k: float
) -> None:
    params = FillParams(
        half_spread_bps=5.0, impact_coefficient=k, participation_cap=cap, lot_size=lot
    )
    fill = fill_child_order(side, quantity, bar, sigma=sigma, params=params)  # type: ignore[arg-type]
    assert 0.0 <= fill.filled <= quantity + 1e-9
    assert fill.filled <= cap * bar.volume * (1 + 1e-9) + 1e-9
    if fill.filled > 0:
        # Issue 13: our impact may leave [low, high]; the price is the law, adverse to the side.
        direction = 1.0 if side == "buy" else -1.0
        cost = 5e-4 + k * sigma * math.sqrt(fill.filled / bar.volume)
        reference = (bar.open + bar.high + bar.low + bar.close) / 4
        assert fill.price > 0 and direction * (fill.price - reference) >= 0
        if 1 - cost > 1e-6:
            assert fill.price == pytest.approx(reference * (1 + direction * cost), rel=1e-12)
        lots = fill.filled / lot
        assert abs(lots - round(lots)) < 1e-6
        assert fill.status in ("filled", "partial")
    else:
        assert fill.status == "rejected" and math.isnan(fill.price)


def test_fill_large_order_capped_at_participation_and_partial() -> None:
    bar = BarQuote(open=10.0, high=10.5, low=9.5, close=10.0, volume=10_000.0)
    fill = fill_child_order(
        "buy", 5_000.0, bar, sigma=0.02, params=FillParams(participation_cap=0.1, lot_size=1.0)
    )
    assert fill.filled == pytest.approx(1_000.0)
    assert fill.status == "partial" and fill.reason == "participation_cap"
    assert fill.unfilled == pytest.approx(4_000.0)


def test_fill_buy_pays_spread_and_sqrt_impact_sell_receives_less() -> None:
    bar = BarQuote(open=10.0, high=11.0, low=9.0, close=10.0, volume=1e6)
    params = FillParams(half_spread_bps=10.0, impact_coefficient=1.0, participation_cap=1.0)
    small = fill_child_order("buy", 100.0, bar, sigma=0.02, params=params)
    large = fill_child_order("buy", 10_000.0, bar, sigma=0.02, params=params)
    sell = fill_child_order("sell", 10_000.0, bar, sigma=0.02, params=params)
    base = 10.0
    assert small.price > base * (1 + 10e-4)
    assert large.price - base == pytest.approx(base * (10e-4 + 0.02 * math.sqrt(0.01)))
    assert base - sell.price == pytest.approx(large.price - base)


def test_fill_quantity_rounded_down_to_lots() -> None:
    bar = BarQuote(open=10.0, high=10.1, low=9.9, close=10.0, volume=1e6)
    fill = fill_child_order("buy", 250.0, bar, sigma=0.0, params=FillParams(lot_size=100.0))
    assert fill.filled == 200.0 and fill.reason == "lot_rounding"
    assert round_to_lot(99.0, 100.0) == 0.0


def test_fill_buy_at_limit_up_and_sell_at_limit_down_rejected() -> None:
    params = FillParams(limit_pct=0.1, lot_size=100.0)
    up = BarQuote(open=11.0, high=11.0, low=11.0, close=11.0, volume=1e6, prev_close=10.0)
    down = BarQuote(open=9.0, high=9.0, low=9.0, close=9.0, volume=1e6, prev_close=10.0)
    assert fill_child_order("buy", 1000.0, up, sigma=0.02, params=params).reason == "limit_up"
    assert fill_child_order("sell", 1000.0, down, sigma=0.02, params=params).reason == "limit_down"
    # The other side of a locked limit still trades, and never beyond the limit price.
    sold = fill_child_order("sell", 1000.0, up, sigma=0.02, params=params)
    assert sold.filled == 1000.0 and sold.price <= 11.0


def test_fill_params_out_of_range_rejected() -> None:
    with pytest.raises(ValueError, match="participation_cap"):
        FillParams(participation_cap=0.0)
    with pytest.raises(ValueError, match="lot_size"):
        FillParams(lot_size=-1.0)
