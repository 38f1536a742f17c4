"""Fire drills of every risk limit, the circuit breaker's latency, immutability, final vetoes."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from arena.market import MarketSnapshot
from arena.risk import (
    AccountSnapshot,
    OrderRequest,
    RiskDecision,
    RiskEvent,
    RiskGovernor,
    RiskLimits,
)
from simulators.synthetic import SyntheticSpec, generate_daily, generate_intraday

NOW = pd.Timestamp("2024-03-05 10:00", tz="UTC")
LIMITS = RiskLimits()


def _governor() -> RiskGovernor:
    return RiskGovernor(LIMITS, "acct")


def _account(
    cash: float = 1_000_000.0,
    positions: dict[str, float] | None = None,
    day_start: float = 1_000_000.0,
    peak: float = 1_000_000.0,
) -> AccountSnapshot:
    return AccountSnapshot(
        account="acct",
        cash=cash,
        positions=positions or {},
        day_start_equity=day_start,
        peak_equity=peak,
    )


_counter = iter(range(1_000_000))


def _order(symbol: str, quantity: float, side: str = "buy", **extra: float | None) -> OrderRequest:
    return OrderRequest(
        order_id=f"o{next(_counter)}",
        account="acct",
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        **extra,  # type: ignore[arg-type]
    )


def _rules(decision: RiskDecision) -> set[str]:
    return {event.rule for event in decision.events}


def _assert_untouched(decision: RiskDecision) -> None:
    assert decision.approved
    assert decision.adjusted_qty is None
    assert decision.events == ()
    assert decision.quantity == decision.requested_qty


PRICES = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}


# --------------------------------------------------------------------------- per-trade risk
def test_per_trade_risk_above_limit_is_cut_to_the_limit() -> None:
    # Stop 20% away: 5% of 1,000,000 at risk allows 250,000 of notional = 2,500 shares.
    stop = 80.0
    allowed = LIMITS.max_trade_risk * 1_000_000 / (100.0 - stop)
    decision = _governor().check(
        _order("AAA", allowed + 100, stop_price=stop), _account(), PRICES, NOW
    )
    assert decision.approved
    assert decision.adjusted_qty == pytest.approx(allowed)
    assert _rules(decision) == {"per_trade_risk"}
    assert all(event.kind == "clip" for event in decision.events)


def test_per_trade_risk_just_below_limit_passes_untouched() -> None:
    stop = 80.0
    allowed = LIMITS.max_trade_risk * 1_000_000 / (100.0 - stop)
    governor = _governor()
    _assert_untouched(
        governor.check(_order("AAA", allowed - 10, stop_price=stop), _account(), PRICES, NOW)
    )
    _assert_untouched(
        governor.check(_order("AAA", allowed, stop_price=stop), _account(), PRICES, NOW)
    )
    assert governor.events == ()


def test_per_trade_risk_without_stop_uses_assumed_stop_distance() -> None:
    # No stop: the distance is assumed_stop_fraction; tighten the name limit away so that
    # only the per-trade rule can bind.
    limits = RiskLimits(max_position_weight=1.0, max_gross_leverage=1.5, min_cash_fraction=0.0)
    allowed = limits.max_trade_risk * 1_000_000 / (100.0 * limits.assumed_stop_fraction)
    governor = RiskGovernor(limits, "acct")
    tripped = governor.check(_order("AAA", allowed + 1), _account(), PRICES, NOW)
    assert _rules(tripped) == {"per_trade_risk"}
    assert tripped.adjusted_qty == pytest.approx(allowed)
    _assert_untouched(governor.check(_order("AAA", allowed - 1), _account(), PRICES, NOW))


def test_per_trade_risk_below_one_lot_is_vetoed() -> None:
    # Stop 99% away allows 505 shares: less than one lot of 1,000.
    decision = _governor().check(
        _order("AAA", 2_000, stop_price=1.0, lot_size=1_000.0), _account(), PRICES, NOW
    )
    assert not decision.approved
    assert decision.quantity == 0.0
    assert "per_trade_risk" in _rules(decision)
    assert all(event.kind == "veto" for event in decision.events)


# --------------------------------------------------------------------------- one name
def test_position_weight_above_limit_is_cut_to_the_limit() -> None:
    account = _account(cash=710_000.0, positions={"AAA": 2_900.0})
    decision = _governor().check(_order("AAA", 200), account, PRICES, NOW)
    cap = LIMITS.max_position_weight * account.equity(PRICES) / 100.0 - 2_900.0
    assert decision.adjusted_qty == pytest.approx(cap)
    assert _rules(decision) == {"max_position_weight"}


def test_position_weight_just_below_limit_passes() -> None:
    account = _account(cash=710_000.0, positions={"AAA": 2_900.0})
    _assert_untouched(_governor().check(_order("AAA", 99), account, PRICES, NOW))


def test_position_weight_at_limit_vetoes_any_increase() -> None:
    account = _account(cash=700_000.0, positions={"AAA": 3_000.0})
    decision = _governor().check(_order("AAA", 1), account, PRICES, NOW)
    assert not decision.approved
    assert _rules(decision) == {"max_position_weight"}
    event = decision.events[0]
    assert event.value > LIMITS.max_position_weight
    assert event.limit == LIMITS.max_position_weight


# --------------------------------------------------------------------------- gross leverage
def _levered_account() -> AccountSnapshot:
    # Short 1.4M of BBB against 2.4M cash: equity 1.0M, gross leverage 1.4.
    return _account(cash=2_400_000.0, positions={"BBB": -28_000.0})


def test_gross_leverage_above_limit_is_cut_to_the_limit() -> None:
    account = _levered_account()
    equity = account.equity(PRICES)
    gross = account.gross_exposure(PRICES)
    cap = (LIMITS.max_gross_leverage * equity - gross) / 100.0
    decision = _governor().check(_order("AAA", cap + 500), account, PRICES, NOW)
    assert decision.adjusted_qty == pytest.approx(cap)
    assert _rules(decision) == {"gross_leverage"}


def test_gross_leverage_adding_to_a_short_trips() -> None:
    account = _levered_account()
    equity = account.equity(PRICES)
    cap = (LIMITS.max_gross_leverage - account.gross_exposure(PRICES) / equity) * equity / 50.0
    decision = _governor().check(_order("BBB", cap * 3, side="sell"), account, PRICES, NOW)
    assert "gross_leverage" in _rules(decision)
    assert decision.quantity <= cap + 1e-9


def test_gross_leverage_just_below_limit_passes() -> None:
    account = _levered_account()
    cap = (
        LIMITS.max_gross_leverage * account.equity(PRICES) - account.gross_exposure(PRICES)
    ) / 100
    _assert_untouched(_governor().check(_order("AAA", cap - 1), account, PRICES, NOW))


def test_gross_leverage_reducing_a_short_always_passes() -> None:
    account = _account(cash=2_600_000.0, positions={"BBB": -32_000.0})  # leverage 1.6
    _assert_untouched(_governor().check(_order("BBB", 1_000), account, PRICES, NOW))


# --------------------------------------------------------------------------- cash floor
def _invested_account() -> AccountSnapshot:
    return _account(cash=300_000.0, positions={"AAA": 2_000.0, "BBB": 10_000.0})


def test_cash_floor_breach_is_cut_to_the_floor() -> None:
    account = _invested_account()
    cap = (account.cash - LIMITS.min_cash_fraction * account.equity(PRICES)) / 20.0
    decision = _governor().check(_order("CCC", cap + 500), account, PRICES, NOW)
    assert decision.adjusted_qty == pytest.approx(cap)
    assert _rules(decision) == {"min_cash"}


def test_cash_floor_just_above_passes() -> None:
    account = _invested_account()
    cap = (account.cash - LIMITS.min_cash_fraction * account.equity(PRICES)) / 20.0
    _assert_untouched(_governor().check(_order("CCC", cap - 1), account, PRICES, NOW))
    _assert_untouched(_governor().check(_order("CCC", cap), account, PRICES, NOW))


def test_cash_floor_at_floor_vetoes_a_buy() -> None:
    account = _account(cash=100_000.0, positions={"AAA": 2_000.0, "BBB": 14_000.0})
    decision = _governor().check(_order("CCC", 10), account, PRICES, NOW)
    assert not decision.approved
    assert _rules(decision) == {"min_cash"}


# --------------------------------------------------------------------------- daily loss
def _losing_account() -> AccountSnapshot:
    return _account(cash=800_000.0, positions={"AAA": 2_000.0})


def _price_for_day_loss(loss: float) -> float:
    return ((1.0 - loss) * 1_000_000.0 - 800_000.0) / 2_000.0


def test_daily_loss_beyond_limit_vetoes_new_risk() -> None:
    prices = {**PRICES, "AAA": _price_for_day_loss(LIMITS.max_daily_loss + 0.001)}
    decision = _governor().check(_order("BBB", 10), _losing_account(), prices, NOW)
    assert not decision.approved
    assert _rules(decision) == {"daily_loss"}
    assert decision.events[0].value < -LIMITS.max_daily_loss


def test_daily_loss_just_inside_limit_passes() -> None:
    prices = {**PRICES, "AAA": _price_for_day_loss(LIMITS.max_daily_loss - 0.001)}
    _assert_untouched(_governor().check(_order("BBB", 10), _losing_account(), prices, NOW))


def test_daily_loss_beyond_limit_still_lets_a_position_be_reduced() -> None:
    prices = {**PRICES, "AAA": _price_for_day_loss(LIMITS.max_daily_loss + 0.01)}
    decision = _governor().check(_order("AAA", 500, side="sell"), _losing_account(), prices, NOW)
    _assert_untouched(decision)


def test_daily_loss_beyond_limit_cuts_a_flip_to_the_closing_part() -> None:
    prices = {**PRICES, "AAA": _price_for_day_loss(LIMITS.max_daily_loss + 0.01)}
    decision = _governor().check(_order("AAA", 3_000, side="sell"), _losing_account(), prices, NOW)
    assert decision.adjusted_qty == 2_000.0
    assert _rules(decision) == {"daily_loss"}


# --------------------------------------------------------------------------- drawdown
def test_drawdown_beyond_limit_vetoes_new_risk() -> None:
    peak = 1_000_000.0 / (1.0 - LIMITS.max_drawdown - 0.005)
    decision = _governor().check(_order("BBB", 10), _account(peak=peak), PRICES, NOW)
    assert not decision.approved
    assert _rules(decision) == {"max_drawdown"}


def test_drawdown_just_inside_limit_passes() -> None:
    peak = 1_000_000.0 / (1.0 - LIMITS.max_drawdown + 0.005)
    _assert_untouched(_governor().check(_order("BBB", 10), _account(peak=peak), PRICES, NOW))


# --------------------------------------------------------------------------- circuit breaker
REFERENCE = {"AAA": 100.0, "BBB": 100.0, "CCC": 100.0}


def _snapshot(prices: dict[str, float], minute: int = 0) -> MarketSnapshot:
    return MarketSnapshot(time=NOW + pd.Timedelta(minutes=minute), prices=prices)


def test_market_crash_beyond_threshold_freezes_new_orders() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    level = 100.0 * (1.0 - LIMITS.crash_threshold - 0.001)
    events = governor.on_bar(_snapshot(dict.fromkeys(REFERENCE, level)), NOW)
    assert {event.kind for event in events} == {"trigger", "freeze"}
    assert governor.frozen and governor.freeze is not None
    assert governor.freeze.rule == "market_crash"
    prices = dict.fromkeys(REFERENCE, level)
    decision = governor.check(_order("AAA", 1), _account(), prices, NOW)
    assert not decision.approved
    assert _rules(decision) == {"frozen"}
    # A sell is a new order too: the freeze stops everything until the next day.
    sell = governor.check(_order("AAA", 1, side="sell"), _account(), prices, NOW)
    assert not sell.approved


def test_market_crash_just_inside_threshold_does_not_freeze() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    level = 100.0 * (1.0 - LIMITS.crash_threshold + 0.001)
    assert governor.on_bar(_snapshot(dict.fromkeys(REFERENCE, level)), NOW) == ()
    assert not governor.frozen
    _assert_untouched(
        governor.check(_order("AAA", 1), _account(), dict.fromkeys(REFERENCE, level), NOW)
    )


def test_position_drop_beyond_threshold_freezes_new_orders() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    drop = 100.0 * (1.0 - LIMITS.position_drop_threshold - 0.001)
    prices = {**REFERENCE, "AAA": drop}
    events = governor.on_bar(_snapshot(prices), NOW, positions={"AAA": 100.0, "BBB": 0.0})
    assert events and governor.freeze is not None
    assert governor.freeze.rule == "position_drop"
    assert governor.freeze.symbol == "AAA"
    assert not governor.check(_order("BBB", 1), _account(), prices, NOW).approved


def test_position_drop_just_inside_threshold_or_not_held_does_not_freeze() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    inside = {**REFERENCE, "AAA": 100.0 * (1.0 - LIMITS.position_drop_threshold + 0.001)}
    assert governor.on_bar(_snapshot(inside), NOW, positions=["AAA"]) == ()
    beyond = {**REFERENCE, "AAA": 100.0 * (1.0 - LIMITS.position_drop_threshold - 0.001)}
    # A name the account does not hold is the market's business, not the position breaker's.
    assert governor.on_bar(_snapshot(beyond), NOW, positions={"AAA": 0.0, "BBB": 5.0}) == ()
    assert not governor.frozen


def test_check_alone_trips_the_breaker_from_its_prices() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    drop = {**REFERENCE, "AAA": 100.0 * (1.0 - LIMITS.position_drop_threshold - 0.01)}
    account = _account(cash=990_000.0, positions={"AAA": 100.0})
    decision = governor.check(_order("BBB", 1), account, drop, NOW)
    assert not decision.approved
    assert governor.freeze is not None and governor.freeze.trigger_time == NOW


def test_check_with_partial_prices_does_not_call_one_name_the_market() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    fallen = 100.0 * (1.0 - LIMITS.crash_threshold - 0.02)
    # Only the (unheld) ordered name is priced: its fall is no market crash.
    _assert_untouched(governor.check(_order("AAA", 1), _account(), {"AAA": fallen}, NOW))
    assert not governor.frozen
    # Every reference symbol priced and all down: that is a crash, seen by the check itself.
    decision = governor.check(_order("AAA", 1), _account(), dict.fromkeys(REFERENCE, fallen), NOW)
    assert not decision.approved
    assert governor.freeze is not None and governor.freeze.rule == "market_crash"


def test_start_day_clears_the_freeze_but_not_final_vetoes() -> None:
    governor = _governor()
    governor.start_day(REFERENCE)
    crash = dict.fromkeys(REFERENCE, 80.0)
    governor.on_bar(_snapshot(crash), NOW)
    vetoed = _order("AAA", 1)
    assert not governor.check(vetoed, _account(), crash, NOW).approved
    governor.start_day(crash)
    assert not governor.frozen
    tomorrow = NOW + pd.Timedelta(days=1)
    _assert_untouched(governor.check(_order("AAA", 1), _account(), crash, tomorrow))
    again = governor.check(vetoed, _account(), crash, tomorrow)
    assert not again.approved
    assert _rules(again) == {"final_veto"}


def test_on_bar_before_start_day_raises() -> None:
    with pytest.raises(RuntimeError, match="start_day"):
        _governor().on_bar(_snapshot(REFERENCE), NOW)


# --------------------------------------------------------------------------- latency on minutes
SPEC = SyntheticSpec(seed=11, assets=10, start="2021-01-04", end="2021-03-31")
DAY = 20
CRASH_START = 120


@pytest.fixture(scope="module")
def crash_day() -> tuple[np.ndarray, pd.DatetimeIndex, dict[str, float], tuple[str, ...]]:
    """Minute closes of one synthetic day with a 10-minute, 10% market-wide fall injected."""
    daily = generate_daily(SPEC)
    minutes = generate_intraday(SPEC, daily, DAY)
    previous = daily.close[DAY - 1]
    closes = minutes.close.copy()
    natural = (closes / previous - 1.0).mean(axis=1)
    assert natural.min() > -LIMITS.crash_threshold  # the day itself must not trip the breaker
    ramp = np.ones(len(closes))
    ramp[CRASH_START : CRASH_START + 10] = np.linspace(1.0, 0.9, 10)
    ramp[CRASH_START + 10 :] = 0.9
    closes *= ramp[:, None]
    reference = {s: float(previous[i]) for i, s in enumerate(daily.symbols)}
    return closes, minutes.index, reference, daily.symbols


def _first_crash_minute(closes: np.ndarray, reference: dict[str, float], symbols: tuple) -> int:
    previous = np.array([reference[s] for s in symbols])
    move = (closes / previous - 1.0).mean(axis=1)
    return int(np.flatnonzero(move < -LIMITS.crash_threshold)[0])


@pytest.mark.parametrize("delay_minutes", [0, 1, 3])
def test_circuit_breaker_on_minute_crash_freezes_within_latency(
    crash_day: tuple[np.ndarray, pd.DatetimeIndex, dict[str, float], tuple[str, ...]],
    delay_minutes: int,
) -> None:
    closes, index, reference, symbols = crash_day
    expected = _first_crash_minute(closes, reference, symbols)
    governor = _governor()
    governor.start_day(reference)
    delay = pd.Timedelta(minutes=delay_minutes)
    approved_times, vetoed_times = [], []
    for t in range(CRASH_START + 30):
        prices = {s: float(closes[t, i]) for i, s in enumerate(symbols)}
        now = index[t] + delay
        governor.on_bar(MarketSnapshot(time=index[t], prices=prices), now)
        decision = governor.check(_order(symbols[0], 1), _account(), prices, now)
        (approved_times if decision.approved else vetoed_times).append(now)
    freeze = governor.freeze
    assert freeze is not None and freeze.rule == "market_crash"
    assert freeze.trigger_time == index[expected]
    assert freeze.freeze_time - freeze.trigger_time <= pd.Timedelta(
        minutes=LIMITS.freeze_latency_minutes
    )
    assert max(approved_times) < freeze.freeze_time <= min(vetoed_times)
    assert all(time >= freeze.freeze_time for time in vetoed_times)
    assert not any(event.kind == "late_freeze" for event in governor.events)


def test_circuit_breaker_fed_late_records_the_latency_breach(
    crash_day: tuple[np.ndarray, pd.DatetimeIndex, dict[str, float], tuple[str, ...]],
) -> None:
    closes, index, reference, symbols = crash_day
    governor = _governor()
    governor.start_day(reference)
    late = pd.Timedelta(minutes=LIMITS.freeze_latency_minutes + 2)
    for t in range(CRASH_START + 30):
        prices = {s: float(closes[t, i]) for i, s in enumerate(symbols)}
        governor.on_bar(MarketSnapshot(time=index[t], prices=prices), index[t] + late)
    late_events = [event for event in governor.events if event.kind == "late_freeze"]
    assert len(late_events) == 1
    assert late_events[0].value > late_events[0].limit


def test_circuit_breaker_on_minute_position_drop_freezes_within_latency(
    crash_day: tuple[np.ndarray, pd.DatetimeIndex, dict[str, float], tuple[str, ...]],
) -> None:
    _, index, reference, symbols = crash_day
    daily = generate_daily(SPEC)
    closes = generate_intraday(SPEC, daily, DAY).close.copy()
    held = symbols[3]
    column = symbols.index(held)
    closes[CRASH_START:, column] *= 0.85  # only the held name falls
    previous = np.array([reference[s] for s in symbols])
    drop = closes[:, column] / previous[column] - 1.0
    expected = int(np.flatnonzero(drop < -LIMITS.position_drop_threshold)[0])
    governor = _governor()
    governor.start_day(reference)
    for t in range(len(index)):
        prices = {s: float(closes[t, i]) for i, s in enumerate(symbols)}
        governor.on_bar(MarketSnapshot(time=index[t], prices=prices), index[t], positions=[held])
    freeze = governor.freeze
    assert freeze is not None and freeze.rule == "position_drop" and freeze.symbol == held
    assert freeze.trigger_time == index[expected]
    assert freeze.latency_minutes <= LIMITS.freeze_latency_minutes


# --------------------------------------------------------------------------- immutability
def test_limits_mutation_attempts_fail_and_change_nothing() -> None:
    governor = _governor()
    before = governor.limits.stable_hash()
    with pytest.raises(ValidationError):
        governor.limits.max_drawdown = 0.9  # type: ignore[misc]
    with pytest.raises(AttributeError):
        governor.limits = RiskLimits(max_drawdown=0.9)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        governor.extra_limit = 1.0  # type: ignore[attr-defined]
    assert governor.limits.stable_hash() == before


def test_limits_governor_keeps_its_own_copy() -> None:
    mine = RiskLimits()
    governor = RiskGovernor(mine, "acct")
    # Even forcing a frozen model open from outside cannot reach the governor's copy.
    object.__setattr__(mine, "max_position_weight", 0.99)
    assert governor.limits.max_position_weight == RiskLimits().max_position_weight
    account = _account(cash=700_000.0, positions={"AAA": 3_000.0})
    assert not governor.check(_order("AAA", 100), account, PRICES, NOW).approved


def test_limits_out_of_range_or_inconsistent_are_rejected() -> None:
    with pytest.raises(ValidationError, match="max_trade_risk"):
        RiskLimits(max_trade_risk=1.5)
    with pytest.raises(ValidationError, match="max_daily_loss"):
        RiskLimits(max_daily_loss=0.2, max_drawdown=0.1)
    with pytest.raises(ValidationError, match=r"(?i)extra"):
        RiskLimits(max_position=0.5)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- tighten
def test_tighten_scales_active_limits_and_leaves_run_limits_untouched() -> None:
    governor = _governor()
    governor.start_day(PRICES)
    account = _account(cash=750_000.0, positions={"AAA": 2_500.0})  # AAA is 25% of equity
    _assert_untouched(governor.check(_order("AAA", 100), account, PRICES, NOW))
    active = governor.tighten_for_regime("high_vol", NOW)
    factor = LIMITS.high_vol_tighten_factor
    assert governor.limits == LIMITS
    assert active.max_position_weight == pytest.approx(LIMITS.max_position_weight * factor)
    assert active.min_cash_fraction > LIMITS.min_cash_fraction
    tighten_events = [event for event in governor.events if event.kind == "tighten"]
    assert len(tighten_events) == 1 and tighten_events[0].value == factor
    # The same order now meets a 15% name limit with the name already at 25%.
    decision = governor.check(_order("AAA", 100), account, PRICES, NOW)
    assert not decision.approved and "max_position_weight" in _rules(decision)
    governor.start_day(PRICES)
    assert governor.active_limits == LIMITS


def test_tighten_does_not_compound_or_loosen() -> None:
    governor = _governor()
    governor.tighten(0.5, NOW, "first")
    governor.tighten(0.8, NOW, "looser request")
    assert governor.active_limits == LIMITS.tightened(0.5)
    governor.tighten_for_regime("bull", NOW)
    assert governor.active_limits == LIMITS.tightened(0.5)
    assert [event.value for event in governor.events if event.kind == "tighten"] == [0.5]
    with pytest.raises(ValueError, match="factor"):
        governor.tighten(1.5, NOW, "bad")


# --------------------------------------------------------------------------- events and vetoes
def test_veto_is_final_for_the_order_id() -> None:
    governor = _governor()
    order = _order("AAA", 1)
    peak = 1_000_000.0 / (1.0 - LIMITS.max_drawdown - 0.05)
    assert not governor.check(order, _account(peak=peak), PRICES, NOW).approved
    # Conditions are fine now, but the same order id stays vetoed.
    again = governor.check(order, _account(), PRICES, NOW)
    assert not again.approved
    assert _rules(again) == {"final_veto"}


def test_risk_event_is_frozen_and_round_trips_through_json() -> None:
    governor = _governor()
    order = _order("AAA", 2_000, stop_price=1.0, lot_size=1_000.0)
    decision = governor.check(order, _account(), PRICES, NOW)
    event = decision.events[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.value = 0.0  # type: ignore[misc]
    restored = RiskEvent.from_dict(json.loads(json.dumps(event.to_dict())))
    assert restored == event
    assert governor.events == decision.events
    assert event.order_id == decision.order_id and event.account == "acct"


def test_risk_event_invariants_are_checked() -> None:
    with pytest.raises(ValueError, match="rule"):
        RiskEvent(kind="veto", rule="nope", time=NOW, account="a", message="m", value=0, limit=0)
    with pytest.raises(ValueError, match="finite"):
        RiskEvent(
            kind="veto", rule="frozen", time=NOW, account="a", message="m", value=math.nan, limit=0
        )
    with pytest.raises(ValueError, match="timezone"):
        RiskEvent(
            kind="veto",
            rule="frozen",
            time=pd.Timestamp("2024-01-01"),
            account="a",
            message="m",
            value=0,
            limit=0,
        )


def test_order_and_account_mismatch_raise() -> None:
    with pytest.raises(ValueError, match="quantity"):
        _order("AAA", 0)
    order = OrderRequest(order_id="x", account="other", symbol="AAA", side="buy", quantity=1)
    with pytest.raises(ValueError, match="account"):
        _governor().check(order, _account(), PRICES, NOW)
    with pytest.raises(KeyError, match="ZZZ"):
        _governor().check(_order("ZZZ", 1), _account(), PRICES, NOW)
