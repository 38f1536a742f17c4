"""The cost models (simulators.costs): one formula each, and their numba twins agree."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.money import money_from_float, rate_amount
from arena.rules import BrokerRules
from simulators.backtest import BacktestConfig, cost_model, prepare_panel
from simulators.backtest_nb import (
    bar_capacity_nb,
    order_fee_nb,
    square_root_impact_nb,
    trade_cost_nb,
    transient_decay_nb,
)
from simulators.bars import Panel
from simulators.costs import (
    ConstantSpread,
    CostModel,
    FeeModel,
    ImpactModel,
    MarketFees,
    ParticipationModel,
    SpreadModel,
    SquareRootImpact,
    VolumeParticipation,
    commission_amount,
    kernel_cost_args,
)
from simulators.fill_model import FillParams
from simulators.market_rules import CN_STAMP_DUTY_CUT, get_market_rules

values = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
rates = st.floats(min_value=0.0, max_value=0.05, allow_nan=False)
amounts = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


def test_defaults_satisfy_their_protocols() -> None:
    assert isinstance(MarketFees(), FeeModel)
    assert isinstance(ConstantSpread(), SpreadModel)
    assert isinstance(SquareRootImpact(), ImpactModel)
    assert isinstance(VolumeParticipation(), ParticipationModel)


@settings(max_examples=300, deadline=None)
@given(value=values, rate=rates, minimum=amounts, fixed=amounts)
def test_commission_numba_twin_equals_the_python_model(
    value: float, rate: float, minimum: float, fixed: float
) -> None:
    fees = MarketFees(commission_rate=rate, commission_min=minimum, commission_fixed=fixed)
    expected = max(rate * value, minimum) + fixed if value > 0 else 0.0  # the formula
    assert fees.commission(value) == expected
    assert order_fee_nb(value, rate, minimum, fixed) == fees.commission(value)
    assert commission_amount(value, rate, minimum, fixed) == fees.commission(value)


@settings(max_examples=200, deadline=None)
@given(value=values, rate=rates, minimum=amounts, fixed=amounts)
def test_exact_commission_is_the_float_commission_on_decimals(
    value: float, rate: float, minimum: float, fixed: float
) -> None:
    fees = MarketFees(commission_rate=rate, commission_min=minimum, commission_fixed=fixed)
    exact = fees.commission_exact(Decimal(repr(value)))
    assert float(exact) == pytest.approx(fees.commission(value), rel=1e-12, abs=1e-12)


# Volumes and volatilities as markets have them: none, or at least a thousandth of a share and
# 1e-12 (a subnormal volume overflows quantity / volume, and 0 x inf is not a cost).
VOLUMES = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e10))
SIGMAS = st.one_of(st.just(0.0), st.floats(min_value=1e-12, max_value=0.5))


@settings(max_examples=300, deadline=None)
@given(
    quantity=st.floats(min_value=0.0, max_value=1e9, allow_nan=False),
    volume=VOLUMES,
    sigma=SIGMAS,
    bps=st.floats(min_value=0.0, max_value=500.0, allow_nan=False),
    k=st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
)
def test_trade_cost_numba_twin_equals_spread_plus_impact_models(
    quantity: float, volume: float, sigma: float, bps: float, k: float
) -> None:
    spread = ConstantSpread(half_spread_bps=bps)
    impact = SquareRootImpact(coefficient=k)
    python = spread.half_spread() + impact.temporary(quantity, volume, sigma)
    twin = trade_cost_nb(quantity, volume, sigma, spread.half_spread(), k)
    assert twin == pytest.approx(python, rel=1e-14, abs=0.0)
    if quantity > 0 and volume > 0 and sigma > 0 and k > 0:
        assert impact.temporary(quantity, volume, sigma) == pytest.approx(
            k * sigma * math.sqrt(quantity / volume), rel=1e-15
        )


@settings(max_examples=300, deadline=None)
@given(
    volume=st.floats(min_value=0.0, max_value=1e12, allow_nan=False),
    cap=st.floats(min_value=1e-4, max_value=1.0),
    lot=st.sampled_from([0.0, 1e-8, 0.01, 1.0, 100.0]),
)
def test_capacity_numba_twin_equals_the_participation_model(
    volume: float, cap: float, lot: float
) -> None:
    model = VolumeParticipation(cap=cap)
    assert bar_capacity_nb(volume, cap, lot) == model.capacity(volume, lot)
    assert bar_capacity_nb(volume, math.inf, lot) == VolumeParticipation(cap=None).capacity(
        volume, lot
    )


def test_transient_decay_halves_every_half_life() -> None:
    impact = SquareRootImpact(transient_half_life_bars=10.0)
    assert impact.decay(0.004, 10) == pytest.approx(0.002)
    assert impact.decay(0.004, 30) == pytest.approx(0.0005)
    assert SquareRootImpact(transient_half_life_bars=0.0).decay(0.004, 1) == 0.0


def test_kernel_cost_args_are_the_models_parameters() -> None:
    model = CostModel(
        fees=MarketFees(commission_rate=0.001, commission_min=5.0, commission_fixed=1.0),
        spread=ConstantSpread(half_spread_bps=2.5),
        impact=SquareRootImpact(coefficient=0.7),
        participation=VolumeParticipation(cap=None),
    )
    args = kernel_cost_args(model)
    assert args == (0.001, 5.0, 1.0, 2.5e-4, 0.7, math.inf)


def test_fill_params_build_the_same_models_the_backtest_does() -> None:
    params = FillParams(half_spread_bps=3.0, impact_coefficient=0.4, participation_cap=0.2)
    config = BacktestConfig(half_spread_bps=3.0, impact_coefficient=0.4, participation_cap=0.2)
    from_backtest = cost_model(config, MarketFees())
    assert from_backtest.spread == params.spread
    assert from_backtest.impact.coefficient == params.impact.coefficient
    assert from_backtest.participation == params.participation


def test_stamp_duty_by_side_and_date() -> None:
    fees = get_market_rules("cn").fees
    cut = CN_STAMP_DUTY_CUT.date()
    assert fees.tax_rate("sell", date(2023, 8, 25)) == 0.001
    assert fees.tax_rate("sell", cut) == 0.0005
    assert fees.tax_rate("buy", date(2023, 8, 25)) == 0.0
    days = np.array(["2023-08-25", "2023-08-28", "2024-01-02"], dtype="datetime64[D]")
    np.testing.assert_array_equal(fees.tax_rates("sell", days), [0.001, 0.0005, 0.0005])
    np.testing.assert_array_equal(fees.tax_rates("buy", days), [0.0, 0.0, 0.0])


def test_kernel_stamp_array_and_broker_rate_come_from_the_same_fee_model() -> None:
    index = pd.date_range("2023-08-23 15:00", periods=6, freq="D", tz="Asia/Shanghai")
    n = len(index)
    panel = Panel(
        symbols=("sh600000",),
        index=index,
        open=np.full((n, 1), 10.0),
        high=np.full((n, 1), 10.0),
        low=np.full((n, 1), 10.0),
        close=np.full((n, 1), 10.0),
        volume=np.full((n, 1), 1e6),
        tradable=np.ones((n, 1), dtype=bool),
        market="cn",
    )
    prepared = prepare_panel(panel, BacktestConfig(market="cn"))
    broker = BrokerRules.from_market("cn")
    for t, stamp in enumerate(index):
        day = stamp.date()
        assert prepared.rules.stamp_duty[t] == broker.stamp_duty_rate(day)
        assert prepared.rules.stamp_duty[t] == (0.0005 if day >= date(2023, 8, 28) else 0.001)
    assert prepared.fees == broker.fees


@settings(max_examples=300, deadline=None)
@given(
    minor=st.integers(min_value=0, max_value=10**14),
    market=st.sampled_from(["cn", "us", "crypto", "none"]),
)
def test_broker_commission_is_the_fee_model_rounded_once(minor: int, market: str) -> None:
    rules = BrokerRules.from_market(market)
    digits = rules.units.money_digits
    # The ledger's rule, computed independently: the rate's amount rounded half to even,
    # against the minimum, plus the fixed fee (minimum and fixed are whole minor units).
    if minor == 0:
        expected = 0
    else:
        expected = max(
            rate_amount(minor, rules.commission_rate),
            money_from_float(rules.commission_min, digits),
        ) + money_from_float(rules.commission_fixed, digits)
    assert rules.commission_for(minor) == expected


@settings(max_examples=300, deadline=None)
@given(
    quantity=st.floats(min_value=-1.0, max_value=1e9, allow_nan=False),
    volume=VOLUMES,
    sigma=SIGMAS,
    k=st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
    level=st.floats(min_value=-0.1, max_value=0.1, allow_nan=False),
    bars=st.integers(min_value=0, max_value=400),
    half_life=st.sampled_from([0.0, 1.0, 10.0, 37.5]),
)
def test_impact_and_transient_numba_twins_equal_the_python_models(
    quantity: float,
    volume: float,
    sigma: float,
    k: float,
    level: float,
    bars: int,
    half_life: float,
) -> None:
    # The twins the schedule bound (rl_exec.schedule_bound) re-prices schedules with.
    from simulators.costs import square_root_impact, transient_decay

    python = square_root_impact(quantity, volume, sigma, k)
    assert square_root_impact_nb(quantity, volume, sigma, k) == pytest.approx(python, rel=1e-15)
    decayed = transient_decay(level, float(bars), half_life)
    assert transient_decay_nb(level, float(bars), half_life) == pytest.approx(decayed, rel=1e-15)
    if half_life == 10.0 and bars == 10:
        assert decayed == pytest.approx(level / 2.0, rel=1e-15)  # one half-life halves it
