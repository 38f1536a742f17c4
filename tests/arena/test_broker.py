"""The paper broker's pure step: market rules, exact fees, and parent orders over a day."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.book import AccountState, apply_fill, mark_to_market, open_account, submit_order
from arena.events import OrderAccepted, OrderRejected, Side
from arena.market import Bar, bars_from_panel
from arena.money import money_from_float, notional_minor, rate_amount
from arena.orders import DuplicateFill, Order, OrderStatus
from arena.parent_orders import execute_parent
from arena.rules import BrokerRules
from arena.step import ExecutionResult, execute_order
from simulators.synthetic import SyntheticSpec, generate_daily, generate_intraday

DAY1 = date(2024, 3, 4)
DAY2 = date(2024, 3, 5)
CN = BrokerRules.from_market("cn")
US = BrokerRules.from_market("us")


def _bar(
    day: date = DAY1,
    *,
    symbol: str = "600000",
    open: float = 10.0,
    high: float = 10.2,
    low: float = 9.9,
    close: float = 10.1,
    volume: float = 1e6,
    tradable: bool = True,
    prev_close: float | None = 10.0,
    minute: int = 0,
) -> Bar:
    at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return Bar(
        symbol=symbol, day=day, at=at, open=open, high=high, low=low, close=close,
        volume=volume, tradable=tradable, prev_close=prev_close,
    )  # fmt: skip


def _account(rules: BrokerRules = CN, cash: float = 1_000_000.0) -> AccountState:
    return open_account(
        "acct",
        initial_cash=money_from_float(cash, rules.units.money_digits),
        units=rules.units,
        t_plus_one=rules.t_plus_one,
    )


def _trade(
    state: AccountState,
    side: Side,
    quantity: int,
    bar: Bar,
    rules: BrokerRules = CN,
    sigma: float = 0.0,
) -> ExecutionResult:
    state, order, _ = submit_order(
        state,
        symbol=bar.symbol,
        side=side,
        quantity=quantity,
        day=bar.day,
        at=bar.at,  # type: ignore[arg-type]
    )
    return execute_order(state, order, bar, rules, sigma=sigma)


# --------------------------------------------------------------------------- rules
def test_buy_then_sell_same_day_on_t_plus_one_market_rejected() -> None:
    bought = _trade(_account(), "buy", 1000, _bar())
    assert bought.status == "filled"
    same_day = _trade(bought.state, "sell", 1000, _bar(minute=5))
    assert same_day.status == "rejected"
    assert same_day.reason == "t_plus_one"
    assert same_day.state.held("600000") == 1000


def test_buy_then_sell_next_day_on_t_plus_one_market_fills() -> None:
    bought = _trade(_account(), "buy", 1000, _bar())
    next_day = _trade(bought.state, "sell", 1000, _bar(DAY2))
    assert next_day.status == "filled"
    assert next_day.state.held("600000") == 0


def test_buy_then_sell_same_day_on_us_market_fills() -> None:
    bought = _trade(_account(US), "buy", 10, _bar(symbol="AAPL", prev_close=None), US)
    sold = _trade(bought.state, "sell", 10, _bar(symbol="AAPL", prev_close=None), US)
    assert sold.status == "filled"


def test_buy_not_whole_lots_rejected_lot_size() -> None:
    result = _trade(_account(), "buy", 150, _bar())
    assert (result.status, result.reason) == ("rejected", "lot_size")
    assert isinstance(result.events[-1], OrderRejected)
    assert result.state.cash == _account().cash


def test_sell_odd_lot_of_whole_position_allowed_but_partial_odd_lot_rejected() -> None:
    state = _account()
    # An odd holding (e.g. from a bonus issue) is built by a US-lot fill on the same books.
    unit_lots = BrokerRules(market="cn", units=CN.units, lot_units=1, t_plus_one=True)
    odd = _trade(state, "buy", 150, _bar(), unit_lots)
    assert odd.state.held("600000") == 150
    partial = _trade(odd.state, "sell", 50, _bar(DAY2))
    assert (partial.status, partial.reason) == ("rejected", "lot_size")
    whole = _trade(odd.state, "sell", 150, _bar(DAY2))
    assert whole.status == "filled"


def test_buy_at_limit_up_rejected_and_sell_at_limit_down_rejected() -> None:
    locked_up = _bar(open=11.0, high=11.0, low=11.0, close=11.0, prev_close=10.0)
    result = _trade(_account(), "buy", 100, locked_up)
    assert (result.status, result.reason) == ("rejected", "limit_up")
    held = _trade(_account(), "buy", 1000, _bar()).state
    locked_down = _bar(DAY2, open=9.0, high=9.0, low=9.0, close=9.0, prev_close=10.0)
    sold = _trade(held, "sell", 1000, locked_down)
    assert (sold.status, sold.reason) == ("rejected", "limit_down")


def test_buy_near_but_below_limit_up_fills() -> None:
    result = _trade(_account(), "buy", 100, _bar(open=10.5, high=10.9, low=10.4, close=10.8))
    assert result.status == "filled"


def test_suspended_bar_rejects_new_order() -> None:
    bar = _bar(open=math.nan, high=math.nan, low=math.nan, close=math.nan, tradable=False)
    result = _trade(_account(), "buy", 100, bar)
    assert (result.status, result.reason) == ("rejected", "suspended")


def test_buy_more_than_cash_rejected_and_sell_more_than_held_rejected() -> None:
    poor = _account(cash=500.0)
    assert _trade(poor, "buy", 100, _bar()).reason == "insufficient_cash"
    assert _trade(_account(), "sell", 100, _bar()).reason == "insufficient_position"


def test_fill_money_is_exact_commission_minimum_and_stamp_duty() -> None:
    bought = _trade(_account(), "buy", 100, _bar())
    (fill,) = bought.fills
    assert fill.notional == notional_minor(100, fill.price, CN.units)
    assert fill.commission == money_from_float(5.0)  # 0.025% of ~1000 is below the 5 minimum
    assert fill.taxes == 0
    assert bought.state.cash == _account().cash - fill.notional - fill.commission
    sold = _trade(bought.state, "sell", 100, _bar(DAY2))
    (sell,) = sold.fills
    assert sell.taxes == rate_amount(sell.notional, 0.0005)  # stamp duty after 2023-08-28
    assert sold.state.realised_pnl == sell.notional - fill.notional
    assert sold.state.fees_paid == fill.commission + sell.commission + sell.taxes


def test_stamp_duty_rate_before_cut_is_the_old_rate() -> None:
    assert CN.stamp_duty_rate(date(2020, 1, 2)) == 0.001
    assert CN.stamp_duty_rate(date(2023, 8, 28)) == 0.0005


def test_apply_fill_twice_raises_duplicate_fill() -> None:
    bought = _trade(_account(), "buy", 100, _bar())
    (fill,) = bought.fills
    with pytest.raises(DuplicateFill):
        apply_fill(bought.state, fill)


def test_execute_terminal_order_raises() -> None:
    result = _trade(_account(), "buy", 150, _bar())
    with pytest.raises(Exception, match="cannot execute"):
        execute_order(result.state, result.order, _bar(), CN)


def test_mark_to_market_equity_is_cash_plus_exact_values() -> None:
    state = _trade(_account(), "buy", 1000, _bar()).state
    valuation = mark_to_market(state, {"600000": 10.555})
    assert valuation.marks[0][2] == Decimal("10.5550")
    assert valuation.market_value == 1055500
    assert valuation.equity == state.cash + 1055500


def test_state_and_result_pickle_round_trip_equal() -> None:
    result = _trade(_account(), "buy", 1000, _bar())
    assert pickle.loads(pickle.dumps(result.state)) == result.state
    assert pickle.loads(pickle.dumps(result.order)) == result.order


# --------------------------------------------------------------------------- property
prices = st.floats(min_value=1.0, max_value=500.0, allow_nan=False)


@st.composite
def bars_and_orders(draw: st.DrawFn) -> tuple[Bar, Side, int, float]:
    a, b, c, d = (draw(prices) for _ in range(4))
    low, high = min(a, b, c, d), max(a, b, c, d)
    open_, close = (a, d) if draw(st.booleans()) else (c, b)
    prev = draw(st.one_of(st.none(), st.floats(min_value=0.5, max_value=600.0)))
    volume = float(draw(st.integers(min_value=0, max_value=10**7)))
    bar = _bar(open=open_, high=high, low=low, close=close, volume=volume, prev_close=prev)
    side: Side = draw(st.sampled_from(["buy", "sell"]))
    lots = draw(st.integers(min_value=1, max_value=500))
    sigma = draw(st.floats(min_value=0.0, max_value=0.2))
    return bar, side, lots * 100, sigma


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars_and_orders())
def test_fill_any_bar_and_order_never_better_than_bar_and_books_stay_valid(
    case: tuple[Bar, Side, int, float],
) -> None:
    bar, side, quantity, sigma = case
    start = _account(cash=200_000.0)
    if side == "sell":
        # Hold the shares since yesterday, bought on an easy bar.
        start = _trade(start, "buy", quantity, _bar(date(2024, 3, 1), volume=1e9)).state
    result = _trade(start, side, quantity, bar, sigma=sigma)
    assert result.state.cash >= 0
    for fill in result.fills:
        # Issue 13: our impact may push a fill beyond [low, high], only against us: a buy
        # never below the bar's low, a sell never above its high (one book tick of rounding).
        tick = Decimal("0.0001")
        if side == "buy":
            assert fill.price >= Decimal(repr(bar.low)) - tick
        else:
            assert fill.price <= Decimal(repr(bar.high)) + tick
        assert fill.quantity % 100 == 0
        assert fill.quantity <= CN.participation_cap * bar.volume + 1e-9
        if side == "buy" and bar.prev_close is not None:
            assert bar.close < bar.prev_close * 1.1
    filled = sum(f.quantity for f in result.fills)
    assert result.order.filled == filled
    expected_cash = start.cash + sum(
        (f.notional if f.side == "sell" else -f.notional) - f.commission - f.taxes
        for f in result.fills
    )
    assert result.state.cash == expected_cash


# --------------------------------------------------------------------------- parent orders
@pytest.fixture(scope="module")
def minute_day() -> tuple[list[Bar], float]:
    spec = SyntheticSpec(seed=11, assets=2, start="2024-01-01", end="2024-02-15", market="cn")
    daily = generate_daily(spec)
    day_index = 10
    minutes = generate_intraday(spec, daily, day_index)
    symbol = daily.symbols[0]
    col = daily.column(symbol)
    prev_close = float(daily.close[day_index - 1, col])
    day = daily.index[day_index].tz_convert("Asia/Shanghai").date()
    bars = bars_from_panel(minutes, symbol, day=day, prev_close=prev_close)
    return bars, float(daily.volume[day_index, col])


def _parent(
    bars: list[Bar], quantity: int, side: Side = "buy", cash: float = 1e8
) -> tuple[AccountState, Order, object]:
    state = _account(cash=cash)
    return submit_order(
        state, symbol=bars[0].symbol, side=side, quantity=quantity, day=bars[0].day,  # type: ignore[arg-type]
        at=bars[0].at,
    )  # fmt: skip


def test_twap_parent_with_enough_liquidity_fills_whole_quantity(
    minute_day: tuple[list[Bar], float],
) -> None:
    bars, day_volume = minute_day
    quantity = int(day_volume * 0.01) // 100 * 100
    state, order, _ = _parent(bars, quantity)
    result = execute_parent(state, order, bars, CN, sigma=0.001, n_steps=8)
    assert result.status == "filled"
    assert result.order.filled == quantity
    assert result.state.held(bars[0].symbol) == quantity
    assert isinstance(result.events[0], OrderAccepted)
    # TWAP spreads the order: fills happen in every one of the 8 groups of 30 minutes.
    groups = {bars.index(next(b for b in bars if b.at == f.at)) // 30 for f in result.fills}
    assert groups == set(range(8))
    # Commission of the whole order, charged once in total across the slices.
    notional = sum(f.notional for f in result.fills)
    assert sum(f.commission for f in result.fills) == CN.commission_for(notional)


def test_twap_parent_larger_than_liquidity_capped_then_completed_at_last_bar_beyond_high(
    minute_day: tuple[list[Bar], float],
) -> None:
    # Issue 13's end-of-day rule: the cap holds on every bar but the horizon's last, which
    # completes what the cap left at the cap-free price; so large a block is priced beyond the
    # bar's recorded high (our own impact).
    bars, day_volume = minute_day
    quantity = int(day_volume) // 100 * 100  # the whole day's volume
    state, order, _ = _parent(bars, quantity, cash=1e10)
    result = execute_parent(state, order, bars, CN, sigma=0.001, n_steps=16)
    assert result.status == "filled"
    assert result.order.filled == quantity
    by_time = {b.at: b for b in bars}
    *capped, completion = result.fills
    for fill in capped:
        assert fill.quantity <= CN.participation_cap * by_time[fill.at].volume
        assert fill.price >= Decimal(repr(by_time[fill.at].low)) - Decimal("0.0001")
    assert completion.at == bars[-1].at
    assert completion.quantity > CN.participation_cap * bars[-1].volume
    assert completion.price > Decimal(repr(bars[-1].high))


def test_parent_fraction_sequence_front_loads_fills(minute_day: tuple[list[Bar], float]) -> None:
    bars, day_volume = minute_day
    quantity = int(day_volume * 0.005) // 100 * 100
    state, order, _ = _parent(bars, quantity)
    result = execute_parent(state, order, bars, CN, schedule=[1.0, 0.0, 0.0, 0.0])
    assert result.status == "filled"
    first_group = {b.at for b in bars[:60]}
    assert all(f.at in first_group for f in result.fills)


class _WaitThenAll:
    """A policy object in the rl_exec shape: trade nothing until the last step."""

    name = "wait"

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def schedule_fraction(self, observation: np.ndarray) -> float:
        self.seen.append(observation)
        return 0.0


def test_parent_policy_object_is_called_per_step_and_controls_timing(
    minute_day: tuple[list[Bar], float],
) -> None:
    bars, day_volume = minute_day
    quantity = int(day_volume * 0.002) // 100 * 100
    state, order, _ = _parent(bars, quantity)
    policy = _WaitThenAll()
    result = execute_parent(state, order, bars, CN, schedule=policy, n_steps=4)
    assert len(policy.seen) == 3  # the last step trades what is left whatever the policy says
    assert [float(obs[2]) for obs in policy.seen] == pytest.approx([1 / 4, 1 / 3, 1 / 2])
    last_group = {b.at for b in bars[180:]}
    assert result.fills and all(f.at in last_group for f in result.fills)


def test_parent_twap_is_deterministic_and_leaves_input_untouched(
    minute_day: tuple[list[Bar], float],
) -> None:
    bars, day_volume = minute_day
    quantity = int(day_volume * 0.01) // 100 * 100
    state, order, _ = _parent(bars, quantity)
    first = execute_parent(state, order, bars, CN, sigma=0.002)
    second = execute_parent(state, order, bars, CN, sigma=0.002)
    assert first == second
    assert state.held(bars[0].symbol) == 0 and order.status == OrderStatus.NEW


def test_parent_sell_same_day_as_buy_rejected_t_plus_one(
    minute_day: tuple[list[Bar], float],
) -> None:
    bars, day_volume = minute_day
    quantity = int(day_volume * 0.002) // 100 * 100
    state, order, _ = _parent(bars, quantity)
    bought = execute_parent(state, order, bars, CN)
    state, sell, _ = submit_order(
        bought.state, symbol=bars[0].symbol, side="sell", quantity=quantity, day=bars[0].day,
        at=bars[-1].at,
    )  # fmt: skip
    result = execute_parent(state, sell, bars, CN)
    assert (result.status, result.reason) == ("rejected", "t_plus_one")
