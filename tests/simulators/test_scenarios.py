"""The stress scenario library: registry, determinism, and the facts asserted on the bars."""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import ConfigError, DataSpecError
from simulators.bars import Panel
from simulators.scenarios import CHECKS, SCENARIOS, Scenario, build_scenario, list_scenarios
from simulators.synthetic import SyntheticSpec, generate_daily, generate_intraday


@pytest.fixture(scope="module")
def small() -> dict[str, Scenario]:
    return {name: build_scenario(name, size="small", seed=0) for name in SCENARIOS}


def _days(panel: Panel) -> list[date]:
    return [(stamp - pd.Timedelta(minutes=1)).date() for stamp in panel.index]


def _index(panel: Panel) -> np.ndarray:
    """Equal-weight index of the names tradable on both days, computed here from the bars."""
    level = [1.0]
    for t in range(1, panel.n_bars):
        both = panel.tradable[t] & panel.tradable[t - 1]
        move = float(np.mean(panel.close[t, both] / panel.close[t - 1, both] - 1.0))
        level.append(level[-1] * (1.0 + move))
    return np.asarray(level)


def _minute_move(scenario: Scenario, day: date) -> pd.Series:
    """Each minute's equal-weight move from the previous daily close."""
    row = _days(scenario.daily).index(day)
    prev = scenario.daily.close[row - 1]
    minute = scenario.stress_day(day).minute  # type: ignore[union-attr]
    moves = (minute.close / prev - 1.0).mean(axis=1)
    return pd.Series(moves, index=minute.index)


def _local(series: pd.Series, clock: str) -> float:
    hour, minute = (int(x) for x in clock.split(":"))
    return float(series[[t.time() == time(hour, minute) for t in series.index]].iloc[0])


# --------------------------------------------------------------------------- registry
def test_scenarios_registry_eight_named_each_with_facts_and_known_checks() -> None:
    names = [info.name for info in list_scenarios()]
    assert names == [
        "cn-crash-2015", "cn-circuit-breaker-2016", "us-flash-crash-2010", "covid-crash-2020",
        "black-swan-gap", "data-outage", "broker-faults", "high-vol-day",
    ]  # fmt: skip
    for info in list_scenarios():
        assert info.facts and all(isinstance(f, str) and f for f in info.facts)
        assert info.checks and set(info.checks) <= set(CHECKS)
        assert "ledger_verify" in info.checks
    assert SCENARIOS["cn-crash-2015"].market == "cn"
    assert SCENARIOS["us-flash-crash-2010"].market == "us"


def test_build_scenario_unknown_name_raises_config_error_naming_known() -> None:
    with pytest.raises(ConfigError, match="cn-crash-2015"):
        build_scenario("no-such-crisis")
    with pytest.raises(ConfigError, match="size"):
        build_scenario("black-swan-gap", size="huge")


def test_build_scenario_same_seed_same_bytes_other_seed_differs() -> None:
    for name in ("cn-crash-2015", "us-flash-crash-2010", "high-vol-day"):
        first = build_scenario(name, size="small", seed=4)
        second = build_scenario(name, size="small", seed=4)
        other = build_scenario(name, size="small", seed=5)
        assert first.daily.data_hash() == second.daily.data_hash()
        for a, b in zip(first.stress_days, second.stress_days, strict=True):
            assert a.minute.data_hash() == b.minute.data_hash()
        assert first.daily.data_hash() != other.daily.data_hash()


def test_scenarios_small_history_long_enough_and_warmup_before_stress(
    small: dict[str, Scenario],
) -> None:
    for scenario in small.values():
        days = _days(scenario.daily)
        first_stress = scenario.stress_days[0].day
        # The genomes' longest window is 200 bars (SMA 200).
        assert days.index(first_stress) > 250
        assert (
            list(scenario.warmup) == days[days.index(first_stress) - 3 : days.index(first_stress)]
        )
        for item in scenario.stress_days:
            assert item.day in days


# --------------------------------------------------------------------------- bars
def test_stress_minutes_aggregate_to_the_daily_bar(small: dict[str, Scenario]) -> None:
    for scenario in small.values():
        days = _days(scenario.daily)
        for item in scenario.stress_days:
            row = days.index(item.day)
            minute, daily = item.minute, scenario.daily
            live = daily.tradable[row]
            assert np.array_equal(minute.open[0, live], daily.open[row, live])
            assert np.array_equal(minute.close[-1, live], daily.close[row, live])
            assert np.array_equal(minute.high[:, live].max(axis=0), daily.high[row, live])
            assert np.array_equal(minute.low[:, live].min(axis=0), daily.low[row, live])
            assert np.allclose(minute.volume.sum(axis=0), daily.volume[row])
            assert np.all(minute.low <= np.minimum(minute.open, minute.close))
            assert np.all(minute.high >= np.maximum(minute.open, minute.close))


def test_cn_scenarios_every_price_inside_the_ten_percent_limit(small: dict[str, Scenario]) -> None:
    for name in ("cn-crash-2015", "cn-circuit-breaker-2016"):
        scenario = small[name]
        days = _days(scenario.daily)
        for item in scenario.stress_days:
            prev = scenario.daily.close[days.index(item.day) - 1]
            for field in ("open", "high", "low", "close"):
                values = getattr(item.minute, field)
                assert np.all(values <= prev * 1.1 * (1 + 1e-9))
                assert np.all(values >= prev * 0.9 * (1 - 1e-9))


# --------------------------------------------------------------------------- facts
def test_cn_crash_2015_peak_to_trough_matches_sse_facts() -> None:
    scenario = build_scenario("cn-crash-2015", size="full", seed=2)
    days = _days(scenario.daily)
    index = _index(scenario.daily)
    level = {d: index[days.index(d)] for d in (date(2015, 6, 12), date(2015, 7, 8))}
    level[date(2015, 8, 26)] = index[days.index(date(2015, 8, 26))]
    assert level[date(2015, 7, 8)] / level[date(2015, 6, 12)] == pytest.approx(3507 / 5178, 2e-3)
    assert level[date(2015, 8, 26)] / level[date(2015, 6, 12)] == pytest.approx(2850 / 5178, 2e-3)
    # The peak of the window is 2015-06-12.
    window = [index[days.index(d)] for d in days if date(2015, 6, 12) <= d <= date(2015, 9, 30)]
    assert max(window) == pytest.approx(level[date(2015, 6, 12)])


def test_cn_crash_2015_limit_down_runs_and_july_mass_suspensions() -> None:
    scenario = build_scenario("cn-crash-2015", size="full", seed=2)
    daily, days = scenario.daily, _days(scenario.daily)

    def locked_share(day: date) -> float:
        t = days.index(day)
        floor = daily.close[t - 1] * 0.9
        locked = (
            daily.tradable[t]
            & np.isclose(daily.close[t], floor, rtol=1e-9)
            & np.isclose(daily.high[t], floor, rtol=1e-9)
        )
        return float(locked.mean())

    run = [locked_share(d) for d in (date(2015, 7, 2), date(2015, 7, 3), date(2015, 7, 6))]
    assert min(run) >= 0.2, run  # three limit-down days running
    assert locked_share(date(2015, 8, 24)) >= 0.5
    t = days.index(date(2015, 7, 8))
    suspended = ~daily.tradable[t]
    assert suspended.mean() >= 0.4
    assert np.all(daily.volume[t, suspended] == 0)
    assert np.array_equal(daily.close[t, suspended], daily.close[t - 1, suspended])
    # The minute bars of a locked name are one price all day (nobody can sell into it).
    item = scenario.stress_day(date(2015, 7, 8))
    assert item is not None and item.crash
    locked = np.isclose(daily.close[t], daily.close[t - 1] * 0.9) & daily.tradable[t]
    assert locked.any()
    assert np.allclose(item.minute.high[:, locked], item.minute.low[:, locked])


def test_cn_circuit_breaker_2016_five_percent_halt_then_seven_closes_the_day(
    small: dict[str, Scenario],
) -> None:
    scenario = small["cn-circuit-breaker-2016"]
    for day, five, resume, seven in (
        (date(2016, 1, 4), "13:13", "13:28", "13:34"),
        (date(2016, 1, 7), "09:42", "09:57", "09:59"),
    ):
        move = _minute_move(scenario, day)
        first_five = move.index[np.argmax(move.to_numpy() <= -0.05)]
        assert first_five.strftime("%H:%M") == five
        assert move.min() == pytest.approx(-0.07, abs=0.004)
        first_seven = move.index[np.argmax(move.to_numpy() <= -0.0695)]
        assert first_seven.strftime("%H:%M") == seven
        item = scenario.stress_day(day)
        assert item is not None and item.crash
        halts = sorted(item.halts, key=lambda h: h.start)
        assert [h.start.strftime("%H:%M") for h in halts] == [five, seven]
        assert (halts[0].end - halts[0].start).total_seconds() == 15 * 60
        assert halts[0].end.strftime("%H:%M") == resume
        assert halts[1].end.strftime("%H:%M") == "15:00"
        # The market is flat through each halt and closes the day at the 7% level.
        for halt in halts:
            inside = move[[halt.start < t.to_pydatetime() <= halt.end for t in move.index]]
            assert inside.max() - inside.min() < 1e-12
        assert move.iloc[-1] == pytest.approx(_local(move, seven))
    # The second day's 7% close came about half an hour after the 09:30 open.
    assert datetime(2016, 1, 7, 9, 59) - datetime(2016, 1, 7, 9, 30) <= pd.Timedelta(minutes=30)


def test_us_flash_crash_2010_nine_percent_v_recovered_within_twenty_minutes(
    small: dict[str, Scenario],
) -> None:
    scenario = small["us-flash-crash-2010"]
    move = _minute_move(scenario, date(2010, 5, 6))
    trough_at = move.idxmin()
    assert -0.10 <= move.min() <= -0.085
    assert trough_at.strftime("%H:%M") == "14:47"
    before = _local(move, "14:32")
    assert before - move.min() >= 0.055  # the plunge itself, in about 15 minutes
    after = move[move.index > trough_at]
    recovered = after.index[np.argmax(after.to_numpy() >= before - 0.01)]
    assert (recovered - trough_at) <= pd.Timedelta(minutes=21)
    assert move.iloc[-1] > -0.04


def test_covid_crash_2020_a_third_in_five_weeks_with_level_one_halts() -> None:
    scenario = build_scenario("covid-crash-2020", size="full", seed=1)
    days = _days(scenario.daily)
    index = _index(scenario.daily)
    start, end = days.index(date(2020, 2, 19)), days.index(date(2020, 3, 23))
    assert index[end] / index[start] == pytest.approx(2237.40 / 3386.15, abs=0.01)
    assert end - start <= 25
    halted = {item.day: item.halts for item in scenario.stress_days if item.halts}
    assert set(halted) == {date(2020, 3, d) for d in (9, 12, 16, 18)}
    for day, halts in halted.items():
        assert len(halts) == 1 and (halts[0].end - halts[0].start) == pd.Timedelta(minutes=15)
        move = _minute_move(scenario, day)
        at_halt = _local(move, halts[0].start.strftime("%H:%M"))
        assert at_halt == pytest.approx(-0.07, abs=0.006)


def test_black_swan_gap_opens_fifteen_percent_down(small: dict[str, Scenario]) -> None:
    scenario = small["black-swan-gap"]
    item = scenario.stress_days[0]
    prev = scenario.daily.close[_days(scenario.daily).index(item.day) - 1]
    gaps = item.minute.open[0] / prev - 1.0
    assert gaps.mean() == pytest.approx(-0.15, abs=0.005)
    assert np.all(gaps < -0.12)
    assert item.crash


def test_high_vol_day_minute_volatility_several_times_normal(small: dict[str, Scenario]) -> None:
    scenario = small["high-vol-day"]
    item = scenario.stress_days[0]
    assert item.force_regime == "high_vol"
    stressed = np.diff(np.log(item.minute.close), axis=0).std()
    normal = np.diff(np.log(scenario.minute_bars(scenario.warmup[-1]).close), axis=0).std()
    assert stressed / normal >= 3.0


def test_fault_scenarios_declare_outages_and_broker_faults(small: dict[str, Scenario]) -> None:
    outage = small["data-outage"]
    assert outage.build_book
    faults = [f for item in outage.stress_days for f in item.feed_faults]
    assert [f.backup for f in faults] == [False, True]
    assert all((f.end - f.start) == pd.Timedelta(minutes=30) for f in faults)
    broker = small["broker-faults"].stress_days[0].broker_faults
    assert broker is not None and broker.reject_rate > 0 and broker.timeout_rate > 0


# --------------------------------------------------------------------------- real data
def _real_like(start: str, end: str, market: str = "cn") -> Panel:
    return generate_daily(SyntheticSpec(seed=11, assets=4, start=start, end=end, market=market))


def test_cn_crash_from_data_replays_its_daily_bars_with_minutes_aggregating() -> None:
    data = _real_like("2014-01-01", "2015-10-30")
    scenario = build_scenario("cn-crash-2015", size="small", seed=0, data=data)
    days = _days(scenario.daily)
    assert days[-1] == date(2015, 9, 30)
    assert np.array_equal(scenario.daily.close, data.close[: len(days)])
    for item in scenario.stress_days:
        row = days.index(item.day)
        assert np.array_equal(item.minute.close[-1], data.close[row])
        assert np.array_equal(item.minute.open[0], data.open[row])
    spec = SyntheticSpec(seed=0, market="cn")
    assert isinstance(
        generate_intraday(spec, scenario.daily, days.index(scenario.warmup[0])), Panel
    )


def test_cn_crash_from_data_not_covering_the_crash_raises() -> None:
    with pytest.raises(DataSpecError, match="2015-06-01"):
        build_scenario("cn-crash-2015", data=_real_like("2015-07-01", "2015-12-31"))
    with pytest.raises(DataSpecError, match="market"):
        build_scenario("cn-crash-2015", data=_real_like("2014-01-01", "2015-12-31", "us"))
