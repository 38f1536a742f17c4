"""The seeded synthetic market: determinism, bar sanity, minute aggregation, the planted edge."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import DataQualityError, DataSpecError
from simulators.bars import Panel
from simulators.synthetic import (
    EDGE_DAILY_DRIFT,
    EDGE_HOLD,
    EDGE_LOOKBACK,
    REGIMES,
    SyntheticSpec,
    breakout_edge_returns,
    generate_daily,
    generate_intraday,
    intraday_profile,
    regime_path,
    session_minutes,
)

SHORT = {"start": "2019-01-01", "end": "2020-12-31"}


def _arrays(panel: Panel) -> list[np.ndarray]:
    return [panel.open, panel.high, panel.low, panel.close, panel.volume, panel.tradable]


def _same_bytes(first: Panel, second: Panel) -> bool:
    return (
        first.symbols == second.symbols
        and first.index.equals(second.index)
        and all(
            a.tobytes() == b.tobytes() for a, b in zip(_arrays(first), _arrays(second), strict=True)
        )
    )


def _log_returns(panel: Panel) -> np.ndarray:
    return np.diff(np.log(panel.close), axis=0)


def _post_breakout_mask(close: np.ndarray, lookback: int, hold: int) -> np.ndarray:
    """Independent reference: day t follows a close-above-prior-high within ``hold`` days."""
    n_bars, n_assets = close.shape
    breakout = np.zeros((n_bars, n_assets), dtype=bool)
    for s in range(lookback, n_bars):
        breakout[s] = close[s] > close[s - lookback : s].max(axis=0)
    after = np.zeros_like(breakout)
    for t in range(n_bars):
        after[t] = breakout[max(0, t - hold) : t].any(axis=0)
    return after


# --------------------------------------------------------------------------- the spec
def test_spec_string_round_trip_is_canonical() -> None:
    spec = SyntheticSpec(seed=11, assets=5, market="cn", drift=0.5, edge="breakout")
    text = spec.to_spec_string()
    assert text.startswith("synthetic:seed=11,assets=5,")
    parsed = SyntheticSpec.from_spec_string(text)
    assert parsed == spec
    assert parsed.to_spec_string() == text


def test_spec_pickle_round_trip_keeps_value_and_hash() -> None:
    spec = SyntheticSpec(seed=4, market="crypto", edge="breakout", edge_strength=0.5)
    restored = pickle.loads(pickle.dumps(spec))
    assert restored == spec and hash(restored) == hash(spec)


def test_spec_from_options_parses_strings_and_keeps_defaults() -> None:
    spec = SyntheticSpec.from_options(
        {"seed": "3", "assets": "4", "end": "2016-06-30", "market": "crypto", "drift": "0"}
    )
    assert spec == SyntheticSpec(seed=3, assets=4, end="2016-06-30", market="crypto", drift=0.0)
    assert SyntheticSpec.from_spec_string("synthetic") == SyntheticSpec()


def test_spec_unknown_key_raises_naming_key_and_allowed_keys() -> None:
    with pytest.raises(DataSpecError) as caught:
        SyntheticSpec.from_options({"sead": "7"})
    message = str(caught.value)
    assert "'sead'" in message
    keys = ("seed", "assets", "start", "end", "market", "drift", "edge", "edge_strength")
    for key in (*keys, "edge_until"):
        assert key in message


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("seed", "abc", "integer"),
        ("seed", "-1", "non-negative"),
        ("assets", "0", "1 to 5000"),
        ("assets", "2.5", "integer"),
        ("start", "2015-13-01", "YYYY-MM-DD"),
        ("market", "moon", "crypto"),
        ("edge", "magic", "breakout"),
        ("drift", "-1", ">= 0"),
        ("drift", "nan", ">= 0"),
        ("edge_strength", "lots", ">= 0"),
    ],
)
def test_spec_bad_value_raises_naming_key_value_and_allowed(
    key: str, value: str, allowed: str
) -> None:
    with pytest.raises(DataSpecError) as caught:
        SyntheticSpec.from_options({key: value})
    message = str(caught.value)
    assert f"{key}=" in message
    assert value in message
    assert allowed in message


def test_spec_start_after_end_raises() -> None:
    with pytest.raises(DataSpecError, match="start=2020-01-02 is after end=2020-01-01"):
        SyntheticSpec(start="2020-01-02", end="2020-01-01")


def test_spec_malformed_string_item_raises() -> None:
    with pytest.raises(DataSpecError, match="'seed7' is not key=value"):
        SyntheticSpec.from_spec_string("synthetic:seed7")


# --------------------------------------------------------------------------- determinism
def test_generate_daily_same_spec_gives_same_bytes() -> None:
    spec = SyntheticSpec(seed=5, assets=6, edge="breakout", **SHORT)
    first, second = generate_daily(spec), generate_daily(spec)
    assert _same_bytes(first, second)
    assert first.data_hash() == second.data_hash()


def test_generate_daily_different_seed_differs() -> None:
    first = generate_daily(SyntheticSpec(seed=5, assets=6, **SHORT))
    second = generate_daily(SyntheticSpec(seed=6, assets=6, **SHORT))
    assert not np.array_equal(first.close, second.close)
    assert first.data_hash() != second.data_hash()


@pytest.mark.parametrize("edge", ["none", "breakout"])
def test_generate_daily_shorter_end_gives_identical_prefix(edge: str) -> None:
    long = generate_daily(SyntheticSpec(seed=9, assets=5, edge=edge, **SHORT))
    short = generate_daily(
        SyntheticSpec(seed=9, assets=5, edge=edge, start=SHORT["start"], end="2019-09-30")
    )
    assert _same_bytes(short, long.slice_bars(0, short.n_bars))


def test_generate_intraday_same_spec_gives_same_bytes_and_seed_matters() -> None:
    spec = SyntheticSpec(seed=5, assets=4, market="us", **SHORT)
    daily = generate_daily(spec)
    assert _same_bytes(generate_intraday(spec, daily, 30), generate_intraday(spec, daily, 30))
    other = generate_intraday(SyntheticSpec(seed=6, assets=4, market="us", **SHORT), daily, 30)
    assert not np.array_equal(other.close, generate_intraday(spec, daily, 30).close)


def test_generate_intraday_day_does_not_depend_on_other_days() -> None:
    spec = SyntheticSpec(seed=2, assets=3, **SHORT)
    daily = generate_daily(spec)
    alone = generate_intraday(spec, daily.slice_bars(0, 41), 40)
    assert _same_bytes(alone, generate_intraday(spec, daily, 40))


# --------------------------------------------------------------------------- daily bars
@pytest.mark.parametrize("market", ["none", "us", "cn", "crypto"])
def test_generate_daily_bars_are_ohlc_consistent_and_positive(market: str) -> None:
    spec = SyntheticSpec(seed=3, assets=8, market=market, edge="breakout", **SHORT)
    panel = generate_daily(spec)
    assert panel.freq == "1D" and panel.market == market
    assert panel.source == spec.to_spec_string()
    assert panel.symbols == tuple(f"SYN{i:03d}" for i in range(8))
    assert np.all(np.isfinite(_arrays(panel)[:5]))
    assert np.all(panel.low > 0)
    assert np.all(panel.low <= np.minimum(panel.open, panel.close))
    assert np.all(np.maximum(panel.open, panel.close) <= panel.high)
    assert np.all(panel.volume >= 1) and np.all(panel.volume == np.rint(panel.volume))
    assert panel.tradable.all()
    assert np.all((panel.close[0] > 5) & (panel.close[0] < 200))


def test_generate_daily_cn_respects_lots_and_price_limits() -> None:
    panel = generate_daily(SyntheticSpec(seed=4, assets=10, market="cn", **SHORT))
    assert np.all(panel.volume % 100 == 0)
    previous = panel.close[:-1]
    for name in ("open", "high", "low", "close"):
        values = getattr(panel, name)[1:]
        assert np.all(values <= previous * 1.1) and np.all(values >= previous * 0.9)


@pytest.mark.parametrize(
    ("market", "timezone", "close_time"),
    [
        ("none", "UTC", "16:00"),
        ("us", "America/New_York", "16:00"),
        ("cn", "Asia/Shanghai", "15:00"),
        ("crypto", "UTC", "00:00"),
    ],
)
def test_generate_daily_calendar_stamps_bar_close(
    market: str, timezone: str, close_time: str
) -> None:
    spec = SyntheticSpec(assets=1, market=market, start="2024-03-01", end="2024-03-31")
    index = generate_daily(spec).index
    assert str(index.tz) == timezone
    assert set(index.strftime("%H:%M")) == {close_time}
    if market == "crypto":
        assert len(index) == 31
        assert index[0] == pd.Timestamp("2024-03-02 00:00", tz="UTC")
    else:
        assert len(index) == 21
        assert set(index.day_of_week) <= {0, 1, 2, 3, 4}


def test_generate_daily_factor_structure_gives_positive_correlation() -> None:
    returns = _log_returns(generate_daily(SyntheticSpec(seed=1, assets=12, **SHORT)))
    correlation = np.corrcoef(returns.T)
    off_diagonal = correlation[~np.eye(12, dtype=bool)]
    assert off_diagonal.mean() > 0.1
    assert off_diagonal.min() > 0


def test_generate_daily_volume_rises_with_absolute_return() -> None:
    panel = generate_daily(SyntheticSpec(seed=1, assets=6, **SHORT))
    moves = np.abs(_log_returns(panel))
    volume = np.log(panel.volume[1:])
    correlations = [np.corrcoef(moves[:, i], volume[:, i])[0, 1] for i in range(6)]
    assert min(correlations) > 0.1


def test_regime_path_labels_match_panel_and_persist() -> None:
    spec = SyntheticSpec(seed=7, assets=10)
    regimes = regime_path(spec)
    panel = generate_daily(spec)
    assert regimes.index.equals(panel.index)
    assert set(regimes.unique()) == set(REGIMES)
    runs = (regimes != regimes.shift()).sum()
    assert len(regimes) / runs > 10  # stays last weeks to months, not days
    spread = np.abs(_log_returns(panel)).mean(axis=1)
    labels = regimes.to_numpy()[1:]
    assert spread[labels == "high_vol"].mean() > 1.5 * spread[labels == "range"].mean()


def _mean_return_z_scores(drift: float, seeds: range) -> dict[str, float]:
    """z-score of the mean cross-sectional daily log-return, pooled and per true regime."""
    daily_means, labels = [], []
    for seed in seeds:
        spec = SyntheticSpec(seed=seed, assets=20, drift=drift)
        daily_means.append(_log_returns(generate_daily(spec)).mean(axis=1))
        labels.append(regime_path(spec).to_numpy()[1:])
    means, regimes = np.concatenate(daily_means), np.concatenate(labels)
    groups = {"all": means, **{regime: means[regimes == regime] for regime in REGIMES}}
    return {
        name: float(values.mean() / (values.std() / np.sqrt(values.size)))
        for name, values in groups.items()
    }


def test_generate_daily_zero_drift_has_zero_mean_log_return_in_every_regime() -> None:
    z_scores = _mean_return_z_scores(0.0, range(4))
    assert max(abs(z) for z in z_scores.values()) < 3.0, z_scores
    # The same check must reject the default drift, or it could not catch a drift bug.
    drifted = _mean_return_z_scores(1.0, range(4))
    assert drifted["bull"] > 3.0 and drifted["bear"] < -3.0, drifted


# --------------------------------------------------------------------------- planted edge
def test_breakout_edge_raises_post_breakout_return() -> None:
    gains = {}
    for edge in ("none", "breakout"):
        panel = generate_daily(SyntheticSpec(seed=7, assets=20, edge=edge))
        after = _post_breakout_mask(panel.close, EDGE_LOOKBACK, EDGE_HOLD)[1:]
        gains[edge] = _log_returns(panel)[after].mean()
    assert gains["breakout"] - gains["none"] > 0.5 * EDGE_DAILY_DRIFT
    assert abs(gains["none"]) < 0.5 * EDGE_DAILY_DRIFT


def test_breakout_edge_strength_scales_the_planted_drift() -> None:
    spec = SyntheticSpec(seed=7, assets=10, edge="breakout", **SHORT)
    stronger = generate_daily(
        SyntheticSpec(seed=7, assets=10, edge="breakout", edge_strength=3.0, **SHORT)
    )
    plain = generate_daily(SyntheticSpec(seed=7, assets=10, **SHORT))
    edged = generate_daily(spec)
    extra = _log_returns(edged) - _log_returns(plain)
    extra_strong = _log_returns(stronger) - _log_returns(plain)
    assert extra.max() == pytest.approx(EDGE_DAILY_DRIFT, rel=1e-6)
    assert extra_strong.max() == pytest.approx(3 * EDGE_DAILY_DRIFT, rel=1e-6)


def test_breakout_edge_drift_depends_only_on_past_closes() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.02, size=(300, 5))
    log_price0 = np.log(np.full(5, 50.0))
    returns, active = breakout_edge_returns(base, log_price0, 0.01)
    for day in (25, 120, 299):
        changed = base.copy()
        changed[day:] = rng.normal(0.0, 0.05, size=changed[day:].shape)
        new_returns, new_active = breakout_edge_returns(changed, log_price0, 0.01)
        # Nothing before `day` moves, and the drift of `day` itself is already decided.
        assert np.array_equal(new_returns[:day], returns[:day])
        assert np.array_equal(new_active[: day + 1], active[: day + 1])
        planted = returns[day] - base[day]
        assert np.allclose(new_returns[day] - changed[day], planted, rtol=0, atol=1e-12)


def test_breakout_edge_active_days_match_the_documented_rule() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0.0005, 0.02, size=(400, 6))
    log_price0 = np.log(rng.uniform(10, 100, 6))
    returns, active = breakout_edge_returns(base, log_price0, 0.004)
    log_close = np.cumsum(np.vstack([log_price0, returns]), axis=0)[1:]
    assert active.any()
    assert np.array_equal(active, _post_breakout_mask(log_close, EDGE_LOOKBACK, EDGE_HOLD))
    assert np.allclose(returns - base, 0.004 * active, atol=1e-15)


# --------------------------------------------------------------------------- minute bars
@pytest.mark.parametrize(
    ("market", "minutes"), [("cn", 240), ("us", 390), ("none", 390), ("crypto", 1440)]
)
def test_generate_intraday_aggregates_exactly_to_daily(market: str, minutes: int) -> None:
    spec = SyntheticSpec(seed=8, assets=6, market=market, edge="breakout", **SHORT)
    daily = generate_daily(spec)
    for day in (0, 17, daily.n_bars - 1):
        minute = generate_intraday(spec, daily, day)
        assert minute.freq == "1min" and minute.n_bars == minutes
        assert minute.symbols == daily.symbols
        assert minute.index[-1] == daily.index[day]
        assert np.array_equal(minute.open[0], daily.open[day])
        assert np.array_equal(minute.close[-1], daily.close[day])
        assert np.array_equal(minute.high.max(axis=0), daily.high[day])
        assert np.array_equal(minute.low.min(axis=0), daily.low[day])
        assert np.array_equal(minute.volume.sum(axis=0), daily.volume[day])
        assert np.all(minute.volume == np.rint(minute.volume)) and np.all(minute.volume >= 0)
        assert np.all(minute.low <= np.minimum(minute.open, minute.close))
        assert np.all(np.maximum(minute.open, minute.close) <= minute.high)
        assert np.all(minute.low >= daily.low[day]) and np.all(minute.high <= daily.high[day])
        if market == "cn":
            assert np.all(minute.volume % 100 == 0)


def test_session_minutes_cn_has_lunch_break_and_us_follows_new_york_time() -> None:
    cn = session_minutes("cn", "2024-03-05")
    assert cn[0] == pd.Timestamp("2024-03-05 09:31", tz="Asia/Shanghai")
    assert cn[119] == pd.Timestamp("2024-03-05 11:30", tz="Asia/Shanghai")
    assert cn[120] == pd.Timestamp("2024-03-05 13:01", tz="Asia/Shanghai")
    us_summer = session_minutes("us", "2024-07-01")
    assert us_summer[-1] == pd.Timestamp("2024-07-01 20:00", tz="UTC")
    crypto = session_minutes("crypto", "2024-03-05")
    assert crypto[0] == pd.Timestamp("2024-03-05 00:01", tz="UTC")
    assert crypto[-1] == pd.Timestamp("2024-03-06 00:00", tz="UTC")


@pytest.mark.parametrize("market", ["none", "us", "cn"])
def test_intraday_profile_is_u_shaped_and_sums_to_one(market: str) -> None:
    profile = intraday_profile(market)
    assert profile.sum() == pytest.approx(1.0, abs=1e-12)
    n = len(profile)
    middle = profile[n // 2 - 30 : n // 2 + 30].mean() if market != "cn" else profile[60:100].mean()
    assert profile[:10].mean() > 2 * middle
    assert profile[-10:].mean() > 2 * middle


def test_generate_intraday_volume_follows_the_profile() -> None:
    spec = SyntheticSpec(seed=8, assets=10, market="us", **SHORT)
    daily = generate_daily(spec)
    shares = np.zeros(390)
    for day in range(0, 40, 4):
        minute = generate_intraday(spec, daily, day)
        shares += (minute.volume / minute.volume.sum(axis=0)).mean(axis=1)
    shares /= shares.sum()
    assert shares[:15].sum() > 2 * shares[180:195].sum()
    assert shares[-15:].sum() > 2 * shares[180:195].sum()
    assert np.abs(shares - intraday_profile("us")).sum() < 0.05


def test_generate_intraday_bad_day_raises_naming_range() -> None:
    spec = SyntheticSpec(assets=2, **SHORT)
    daily = generate_daily(spec)
    with pytest.raises(DataSpecError, match=f"day={daily.n_bars} is out of range"):
        generate_intraday(spec, daily, daily.n_bars)


def test_generate_intraday_invalid_daily_bar_raises() -> None:
    spec = SyntheticSpec(assets=2, **SHORT)
    daily = generate_daily(spec)
    daily.high[3, 1] = daily.low[3, 1] * 0.5
    with pytest.raises(DataQualityError, match="SYN001"):
        generate_intraday(spec, daily, 3)


def test_generate_intraday_non_tradable_asset_gets_flat_zero_volume_minutes() -> None:
    spec = SyntheticSpec(assets=3, **SHORT)
    daily = generate_daily(spec)
    daily.tradable[5, 2] = False
    minute = generate_intraday(spec, daily, 5)
    assert not minute.tradable[:, 2].any() and minute.tradable[:, :2].all()
    assert np.all(minute.close[:, 2] == daily.close[5, 2])
    assert np.all(minute.volume[:, 2] == 0)


# --------------------------------------------------------------------------- edge_until
UNTIL = "2019-12-31"  # inside SHORT: about a year paid, a year not


def _paid_bars(panel: Panel, until: str) -> int:
    """Bars whose session date is on or before ``until`` (crypto: the day before the stamp)."""
    sessions = (panel.index.tz_localize(None) - pd.Timedelta(minutes=1)).normalize()
    return int((sessions <= pd.Timestamp(until)).sum())


def _markets(seed: int, assets: int, market: str, until: str, **dates: str) -> dict[str, Panel]:
    common = {"seed": seed, "assets": assets, "market": market, **dates}
    return {
        "until": generate_daily(SyntheticSpec(edge="breakout", edge_until=until, **common)),
        "breakout": generate_daily(SyntheticSpec(edge="breakout", **common)),
        "none": generate_daily(SyntheticSpec(**common)),
    }


@pytest.mark.parametrize("market", ["none", "cn", "crypto"])
def test_edge_until_days_up_to_date_match_breakout_and_after_match_no_edge(market: str) -> None:
    panels = _markets(5, 6, market, UNTIL, **SHORT)
    until, breakout, none = panels["until"], panels["breakout"], panels["none"]
    k = _paid_bars(until, UNTIL)
    assert 200 < k < until.n_bars - 200
    # Up to and including edge_until: bit-identical to the plain edge=breakout market.
    assert _same_bytes(until.slice_bars(0, k), breakout.slice_bars(0, k))
    assert not np.array_equal(until.close[k:], breakout.close[k:])
    # After it: the no-edge market's log-returns (only the price level differs) and, since
    # volume depends on the return alone, the no-edge market's volumes to the bit.
    extra = _log_returns(until) - _log_returns(none)  # extra[t - 1] is day t's
    assert np.allclose(extra[k - 1 :], 0.0, rtol=0, atol=1e-12)
    assert np.array_equal(until.volume[k:], none.volume[k:])
    # On breakout-following days the drift is there before the date and gone after it.
    per_day = EDGE_DAILY_DRIFT * (2.0 if market == "crypto" else 1.0)
    after = _post_breakout_mask(until.close, EDGE_LOOKBACK, EDGE_HOLD)[1:]
    day = np.arange(1, until.n_bars)[:, None]
    before_date, after_date = after & (day < k), after & (day >= k)
    assert before_date.sum() > 200 and after_date.sum() > 200
    assert np.allclose(extra[after_date], 0.0, rtol=0, atol=1e-12)
    if market != "cn":  # on cn the +/-10% limit clips a few edged days
        assert np.allclose(extra[before_date], per_day, rtol=0, atol=1e-12)
    assert np.median(extra[before_date]) == pytest.approx(per_day, abs=1e-12)


def test_edge_until_none_after_date_days_still_carry_drift() -> None:
    # The control of the check above: without edge_until the same days do get the drift,
    # so "the drift is gone after the date" can fail.
    panels = _markets(5, 6, "none", UNTIL, **SHORT)
    breakout, none = panels["breakout"], panels["none"]
    k = _paid_bars(breakout, UNTIL)
    extra = _log_returns(breakout) - _log_returns(none)
    after = _post_breakout_mask(breakout.close, EDGE_LOOKBACK, EDGE_HOLD)[1:]
    after_date = after & (np.arange(1, breakout.n_bars)[:, None] >= k)
    assert after_date.sum() > 200
    assert np.allclose(extra[after_date], EDGE_DAILY_DRIFT, rtol=0, atol=1e-12)
    assert not np.allclose(extra[k - 1 :], 0.0, rtol=0, atol=1e-12)


def test_edge_until_post_breakout_mean_return_positive_before_and_no_edge_after() -> None:
    # 20 assets x 6 years, the edge stops paying after 3: mean next-day log-return of the days
    # that follow a breakout (within EDGE_HOLD days), each market's signals from its own closes.
    cut = "2018-12-31"
    panels = _markets(7, 20, "none", cut, start="2016-01-01", end="2021-12-31")
    k = _paid_bars(panels["until"], cut)
    means: dict[str, tuple[float, float]] = {}
    sizes: dict[str, float] = {}
    for name, panel in panels.items():
        returns = _log_returns(panel)
        after = _post_breakout_mask(panel.close, EDGE_LOOKBACK, EDGE_HOLD)[1:]
        day = np.arange(1, panel.n_bars)[:, None]
        pre, post = returns[after & (day < k)], returns[after & (day >= k)]
        means[name] = (float(pre.mean()), float(post.mean()))
        sizes[name] = float(post.std() / np.sqrt(post.size))
    # Measured: until (0.00186, 0.00021), breakout (0.00186, 0.00170), none (0.00037, 0.00021).
    assert means["until"][0] > 0.5 * EDGE_DAILY_DRIFT, means
    assert means["until"][0] - means["none"][0] > 0.5 * EDGE_DAILY_DRIFT, means
    assert abs(means["until"][1] - means["none"][1]) < min(0.1 * EDGE_DAILY_DRIFT, sizes["none"])
    # Control: the plain breakout market keeps paying after the date.
    assert means["breakout"][1] - means["none"][1] > 0.5 * EDGE_DAILY_DRIFT, means


@pytest.mark.parametrize(("until", "same_as"), [("2018-06-30", "none"), ("2020-12-31", "breakout")])
def test_edge_until_outside_the_dates_gives_the_no_edge_or_the_breakout_market(
    until: str, same_as: str
) -> None:
    panels = _markets(5, 4, "none", until, **SHORT)
    assert _same_bytes(panels["until"], panels[same_as])


def test_edge_until_intraday_bars_aggregate_to_the_daily_bar() -> None:
    spec = SyntheticSpec(seed=8, assets=4, market="us", edge="breakout", edge_until=UNTIL, **SHORT)
    daily = generate_daily(spec)
    for day in (_paid_bars(daily, UNTIL) - 1, _paid_bars(daily, UNTIL)):
        minute = generate_intraday(spec, daily, day)
        assert np.array_equal(minute.close[-1], daily.close[day])
        assert np.array_equal(minute.high.max(axis=0), daily.high[day])
        assert np.array_equal(minute.volume.sum(axis=0), daily.volume[day])


def test_edge_until_spec_string_round_trip_is_canonical() -> None:
    text = "synthetic:edge=breakout,edge_until=2025-06-30"
    spec = SyntheticSpec.from_spec_string(text)
    assert spec == SyntheticSpec(edge="breakout", edge_until="2025-06-30")
    canonical = spec.to_spec_string()
    assert canonical.endswith(",edge=breakout,edge_strength=1.0,edge_until=2025-06-30")
    assert SyntheticSpec.from_spec_string(canonical) == spec
    assert SyntheticSpec.from_spec_string(canonical).to_spec_string() == canonical
    restored = pickle.loads(pickle.dumps(spec))
    assert restored == spec and hash(restored) == hash(spec)


def test_edge_until_unset_keeps_spec_strings_and_data_hashes() -> None:
    # Spec strings from before edge_until existed are unchanged. The digests are those of
    # generator version 2 (simulators.detmath), the same on every CPU: test_detmath checks
    # them again with NumPy's SIMD kernels switched off.
    assert SyntheticSpec().to_spec_string() == (
        "synthetic:seed=7,assets=20,start=2015-01-01,end=2025-12-31,market=none,drift=1.0,"
        "edge=none,edge_strength=1.0"
    )
    pinned = [
        (SyntheticSpec(), "d4f885ed7ba28f5f"),
        (
            SyntheticSpec(seed=3, assets=5, market="cn", edge="breakout", **SHORT),
            "e975d03eef8a0237",
        ),
        (
            SyntheticSpec(seed=2, assets=4, market="crypto", edge="breakout", **SHORT),
            "5adbdb695fe9bcd0",
        ),
    ]
    for spec, digest in pinned:
        assert spec.edge_until is None
        assert generate_daily(spec).data_hash() == digest, spec


def test_edge_until_different_dates_give_different_source_and_data_hash() -> None:
    common = {"seed": 5, "assets": 4, "edge": "breakout", **SHORT}
    panels = [
        generate_daily(SyntheticSpec(**common)),
        generate_daily(SyntheticSpec(edge_until="2019-12-31", **common)),
        generate_daily(SyntheticSpec(edge_until="2020-06-30", **common)),
    ]
    assert len({panel.source for panel in panels}) == 3
    assert len({panel.data_hash() for panel in panels}) == 3
    assert "edge_until=2019-12-31" in panels[1].source


@pytest.mark.parametrize("value", ["2025-13-01", "June 30", "", "2025-06-31"])
def test_edge_until_bad_date_raises_naming_key_and_allowed(value: str) -> None:
    with pytest.raises(DataSpecError) as caught:
        SyntheticSpec.from_options({"edge": "breakout", "edge_until": value})
    message = str(caught.value)
    assert f"edge_until={value!r}" in message and "YYYY-MM-DD" in message


def test_edge_until_with_edge_none_raises_naming_key_and_allowed() -> None:
    with pytest.raises(DataSpecError) as caught:
        SyntheticSpec.from_spec_string("synthetic:edge=none,edge_until=2025-06-30")
    message = str(caught.value)
    assert "edge_until='2025-06-30'" in message and "edge=breakout" in message
    with pytest.raises(DataSpecError, match="edge_until"):
        SyntheticSpec(edge_until="2025-06-30")


def test_edge_until_paid_days_keeps_the_prefix_and_returns_the_base_after() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0.0005, 0.02, size=(400, 6))
    log_price0 = np.log(rng.uniform(10, 100, 6))
    full, full_active = breakout_edge_returns(base, log_price0, 0.004)
    cut, cut_active = breakout_edge_returns(base, log_price0, 0.004, paid_days=250)
    assert np.array_equal(cut[:250], full[:250])
    assert np.array_equal(cut_active[:250], full_active[:250])
    assert np.array_equal(cut[250:], base[250:])
    assert not cut_active[250:].any() and full_active[250:].any()


@pytest.mark.parametrize("market", ["none", "cn", "crypto"])
def test_edge_until_boundary_last_paid_day_is_the_date_itself(market: str) -> None:
    # Put edge_until on a day t whose drift is on for some asset on both t and t+1, so a one-day
    # shift either way changes the data.
    common = {"seed": 5, "assets": 4, "market": market, **SHORT}
    breakout = generate_daily(SyntheticSpec(edge="breakout", **common))
    none = generate_daily(SyntheticSpec(**common))
    per_day = EDGE_DAILY_DRIFT * (2.0 if market == "crypto" else 1.0)
    on = np.isclose(_log_returns(breakout) - _log_returns(none), per_day, rtol=0, atol=1e-12)
    both = np.flatnonzero((on[1:] & on[:-1]).any(axis=1))
    t = int(both[len(both) // 2]) + 1  # bar t (returns index t-1) and bar t+1 both on
    asset = int(np.flatnonzero(on[t - 1] & on[t])[0])
    stamp = breakout.index[t].tz_localize(None) - pd.Timedelta(minutes=1)
    until = stamp.date().isoformat()
    panel = generate_daily(SyntheticSpec(edge="breakout", edge_until=until, **common))
    extra = _log_returns(panel) - _log_returns(none)
    assert extra[t - 1, asset] == pytest.approx(per_day, abs=1e-12)  # day t: paid
    assert extra[t, asset] == pytest.approx(0.0, abs=1e-12)  # day t+1: not paid


def test_edge_until_on_a_weekend_stops_after_the_last_weekday_session() -> None:
    common = {"seed": 5, "assets": 4, "edge": "breakout", **SHORT}
    friday = generate_daily(SyntheticSpec(edge_until="2019-12-27", **common))
    for weekend in ("2019-12-28", "2019-12-29"):
        assert _same_bytes(generate_daily(SyntheticSpec(edge_until=weekend, **common)), friday)
    monday = generate_daily(SyntheticSpec(edge_until="2019-12-30", **common))
    assert monday.data_hash() != friday.data_hash()


# --------------------------------------------------------------------------- edge_regime
def _extra_by_regime(spec: SyntheticSpec) -> dict[str, np.ndarray]:
    """Day t's log-return minus the edge=none market's, on the days that follow a breakout of
    the market's own closes, grouped by the true regime of day t."""
    panel = generate_daily(spec)
    none = generate_daily(SyntheticSpec(seed=spec.seed, assets=spec.assets, **SHORT))
    extra = _log_returns(panel) - _log_returns(none)  # extra[t - 1] is day t's
    after = _post_breakout_mask(panel.close, EDGE_LOOKBACK, EDGE_HOLD)[1:]
    labels = regime_path(spec).to_numpy()[1:, None]
    out = {r: extra[after & (labels == r)] for r in REGIMES}
    out["not_after"] = extra[~after]
    return out


def test_edge_regime_pays_in_its_regime_loses_in_high_vol_and_nothing_elsewhere() -> None:
    spec = SyntheticSpec(seed=3, assets=8, edge="breakout", edge_regime="bull", **SHORT)
    extra = _extra_by_regime(spec)
    for regime in REGIMES:
        assert extra[regime].size > 30, (regime, extra[regime].size)
    assert np.allclose(extra["bull"], EDGE_DAILY_DRIFT, rtol=0, atol=1e-12)
    assert np.allclose(extra["high_vol"], -EDGE_DAILY_DRIFT, rtol=0, atol=1e-12)
    for regime in ("bear", "range"):
        assert np.allclose(extra[regime], 0.0, rtol=0, atol=1e-12)
    assert np.allclose(extra["not_after"], 0.0, rtol=0, atol=1e-12)


def test_edge_regime_control_plain_breakout_pays_in_every_regime() -> None:
    # The control of the check above: without edge_regime the high_vol, bear and range days
    # get the same positive drift as the bull days, so "the edge depends on the regime" can fail.
    extra = _extra_by_regime(SyntheticSpec(seed=3, assets=8, edge="breakout", **SHORT))
    for regime in REGIMES:
        assert extra[regime].size > 30
        assert np.allclose(extra[regime], EDGE_DAILY_DRIFT, rtol=0, atol=1e-12), regime


def test_edge_regime_bull_days_match_the_plain_edge_until_the_first_other_regime_day() -> None:
    # Same seed: the regime path is the same; days before the first non-bull regime with a
    # breakout drift are bit-identical to the plain edge=breakout market.
    common = {"seed": 3, "assets": 8, "edge": "breakout", **SHORT}
    labels = regime_path(SyntheticSpec(**common)).to_numpy()
    plain = generate_daily(SyntheticSpec(**common))
    assert labels[0] != "high_vol"
    regime = generate_daily(SyntheticSpec(edge_regime=labels[0], **common))
    first_other = int(np.argmax(labels != labels[0]))
    assert first_other > EDGE_LOOKBACK
    assert np.array_equal(regime.close[:first_other], plain.close[:first_other])
    assert not np.array_equal(regime.close, plain.close)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"edge": "breakout", "edge_regime": "high_vol"}, ["edge_regime='high_vol'", "bull"]),
        ({"edge": "breakout", "edge_regime": "moon"}, ["edge_regime='moon'", "range"]),
        ({"edge_regime": "bull"}, ["edge_regime='bull'", "edge=none"]),
    ],
)
def test_edge_regime_bad_value_raises_naming_key_and_allowed(
    options: dict[str, str], words: list[str]
) -> None:
    with pytest.raises(DataSpecError) as caught:
        SyntheticSpec.from_options(options)
    for word in words:
        assert word in str(caught.value)


def test_edge_regime_spec_string_round_trip_and_unset_is_left_out() -> None:
    spec = SyntheticSpec.from_spec_string("synthetic:edge=breakout,edge_regime=Bull")
    assert spec == SyntheticSpec(edge="breakout", edge_regime="bull")
    canonical = spec.to_spec_string()
    assert canonical.endswith(",edge=breakout,edge_strength=1.0,edge_regime=bull")
    assert SyntheticSpec.from_spec_string(canonical) == spec
    assert "edge_regime" not in SyntheticSpec(edge="breakout").to_spec_string()
    assert generate_daily(spec).source == canonical
