"""The replay environment on real intraday bars (``rl train|evaluate --env replay --data``).

The expected bars are read here with pandas straight from the CSV (regular hours of the SSE:
bar-end stamps in 09:30-11:30 and 13:00-15:00, the 13:00 bar inside the lunch break left
out), not through the code under test.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.errors import DataSpecError
from rl_exec.config import EnvConfig, ReplayConfig, TrainConfig
from rl_exec.env import ExecutionEnv
from rl_exec.evaluate import evaluate_policy
from rl_exec.models import ReplayDay, ReplayModel
from rl_exec.policy import TwapPolicy, VwapPolicy
from rl_exec.train import build_replay_model, train_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cn_intraday"
FIVE_MINUTE = FIXTURES / "sh000001_5min_2017.csv"
ONE_MINUTE = FIXTURES / "sh000001_1min_2017-03-17_21.csv"
DAILY_ONLY = Path(__file__).resolve().parents[1] / "fixtures" / "cn_ashare" / "sh600000_history.csv"
COLUMNS = ("open", "high", "low", "close", "volume")
runner = CliRunner()


def _regular_hours(path: Path) -> pd.DataFrame:
    """Return the file's bars in the SSE's regular hours (bar-end stamps), read by pandas."""
    frame = pd.read_csv(path, parse_dates=["datetime"])
    clock = frame["datetime"].dt.hour * 60 + frame["datetime"].dt.minute
    morning = (clock > 9 * 60 + 30) & (clock <= 11 * 60 + 30)
    afternoon = (clock > 13 * 60) & (clock <= 15 * 60)
    return frame[morning | afternoon].reset_index(drop=True)


def _day_of(replay_day: ReplayDay) -> date:
    return date.fromisoformat(replay_day.label.split()[-1])


def _assert_days_are_file_bars(days: list[ReplayDay], path: Path, bar_minutes: int) -> None:
    bars = _regular_hours(path)
    for day in days:
        expected = bars[bars["datetime"].dt.date == _day_of(day)]
        assert day.n_bars == len(expected) > 0, day.label
        for name in COLUMNS:
            np.testing.assert_array_equal(getattr(day, name), expected[name].to_numpy(float))
        # The bar's place in the session: 09:30 + (slot + 1) bars, 13:00 after the 24th hour.
        clock = expected["datetime"].dt.hour * 60 + expected["datetime"].dt.minute
        morning = clock <= 11 * 60 + 30
        offset = np.where(morning, clock - (9 * 60 + 30), clock - 13 * 60 + 120)
        assert day.slots is not None
        np.testing.assert_array_equal(day.slots, offset // bar_minutes - 1)
        assert day.n_slots == 240 // bar_minutes


def _write_sessions(
    path: Path,
    sessions: list[str],
    volume: np.ndarray,
    *,
    volumes: dict[str, np.ndarray] | None = None,
    keep: dict[str, np.ndarray] | None = None,
) -> None:
    """Write 5-minute SSE bars of ``sessions`` (48 a day) with ``volume`` per bar position.

    ``volumes`` gives some sessions their own volumes; ``keep`` drops bars of some sessions.
    """
    stamps_of_day = [
        *(pd.Timedelta(minutes=9 * 60 + 30 + 5 * k) for k in range(1, 25)),
        *(pd.Timedelta(minutes=13 * 60 + 5 * k) for k in range(1, 25)),
    ]
    rng = np.random.default_rng(5)
    rows = []
    price = 10.0
    for session in sessions:
        mask = (keep or {}).get(session, np.ones(48, dtype=bool))
        session_volume = (volumes or {}).get(session, volume)
        for position, offset in enumerate(stamps_of_day):
            step = float(rng.normal(0.0, 0.01))
            open_, close = price, round(price + step, 2)
            price = close
            if not mask[position]:
                continue
            rows.append(
                {
                    "datetime": (pd.Timestamp(session) + offset).strftime("%Y-%m-%d %H:%M:%S"),
                    "open": open_,
                    "high": round(max(open_, close) + 0.01, 2),
                    "low": round(min(open_, close) - 0.01, 2),
                    "close": close,
                    "volume": float(session_volume[position]),
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)


def _coarser(path: Path, minutes: int, out: Path) -> Path:
    """Write the regular-hours bars of ``path`` aggregated to ``minutes`` (bar-end stamps)."""
    frame = _regular_hours(path)
    clock = frame["datetime"].dt.hour * 60 + frame["datetime"].dt.minute
    start = np.where(clock <= 11 * 60 + 30, 9 * 60 + 30, 13 * 60)
    end = start + np.ceil((clock - start) / minutes).astype(int) * minutes
    frame["end"] = frame["datetime"].dt.normalize() + pd.to_timedelta(end, unit="min")
    coarse = frame.groupby("end").agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    )
    coarse.rename_axis("datetime").reset_index().to_csv(out, index=False)
    return out


SESSIONS = ["2017-03-06", "2017-03-07", "2017-03-08", "2017-03-09", "2017-03-10", "2017-03-13"]


def test_replay_real_5min_days_are_exactly_the_files_regular_hours_bars() -> None:
    config = ReplayConfig(data=str(FIVE_MINUTE), days=6, lookback_days=5, n_steps=8)
    for holdout in (False, True):
        model = build_replay_model(config, holdout=holdout)
        assert len(model.days) == 6
        _assert_days_are_file_bars(model.days, FIVE_MINUTE, 5)
        assert model.params.lot_size == 100.0  # cn, from the file's name
    first = build_replay_model(config).days[0]
    assert _day_of(first) == date(2017, 3, 10)  # row 5: five look-back sessions before it
    # The source's 13:00 bar (inside the lunch break) is in the file and not replayed.
    raw = pd.read_csv(FIVE_MINUTE, parse_dates=["datetime"])
    same_day = raw[raw["datetime"].dt.date == date(2017, 3, 10)]
    lunch = same_day[same_day["datetime"].dt.strftime("%H:%M") == "13:00"]
    assert len(lunch) == 1 and len(same_day) == first.n_bars + 1


@pytest.mark.parametrize("minutes", [15, 30, 60])
def test_replay_real_coarser_bar_sizes_follow_the_data(tmp_path: Path, minutes: int) -> None:
    path = _coarser(FIVE_MINUTE, minutes, tmp_path / "sh000001.csv")
    config = ReplayConfig(data=str(path), days=3, lookback_days=5, n_steps=4)
    model = build_replay_model(config, holdout=True)
    assert len(model.days) == 3
    _assert_days_are_file_bars(model.days, path, minutes)
    env = ExecutionEnv(model)
    result = evaluate_policy(VwapPolicy(), env, episodes=3, seed=0)
    assert np.isfinite(result.shortfalls_bps).all()
    if minutes == 60:
        with pytest.raises(DataSpecError, match=r"n_steps=16 is more than the 4 1h bars"):
            build_replay_model(config.model_copy(update={"n_steps": 16}))


def test_replay_real_1min_missing_bars_are_not_padded() -> None:
    config = ReplayConfig(data=str(ONE_MINUTE), days=1, lookback_days=2, n_steps=8)
    model = build_replay_model(config)
    (day,) = model.days
    assert _day_of(day) == date(2017, 3, 21)
    _assert_days_are_file_bars([day], ONE_MINUTE, 1)
    # The file has no 11:30 and no 13:01 bar that day: 238 of 240 bar intervals.
    assert (day.n_bars, day.n_slots) == (238, 240)
    assert day.slots is not None and not np.isin([119, 120], day.slots).any()
    model.start(np.random.default_rng(0))
    assert [len(bucket) for bucket in model.buckets] == [30, 30, 30, 29, 29, 30, 30, 30]
    assert math.isfinite(day.daily_volatility) and day.daily_volatility > 0  # one return


def test_replay_real_folder_symbol_missing_stretch_keeps_only_its_own_bars(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "bars"
    folder.mkdir()
    frame = pd.read_csv(ONE_MINUTE)
    frame.to_csv(folder / "sh000001.csv", index=False)
    gap = frame["datetime"].between("2017-03-21 10:00:00", "2017-03-21 10:30:00")
    frame[~gap].to_csv(folder / "sh600000.csv", index=False)
    config = ReplayConfig(data=str(folder), days=1, lookback_days=2, n_steps=8)
    model = build_replay_model(config)
    by_symbol = {day.label.split()[0]: day for day in model.days}
    assert set(by_symbol) == {"sh000001", "sh600000"}
    _assert_days_are_file_bars([by_symbol["sh000001"]], folder / "sh000001.csv", 1)
    _assert_days_are_file_bars([by_symbol["sh600000"]], folder / "sh600000.csv", 1)
    assert by_symbol["sh600000"].n_bars == 238 - 31


def test_replay_real_evaluate_cli_baselines_and_learned_policy_end_to_end(
    tmp_path: Path,
) -> None:
    settings = tmp_path / "rl.yaml"
    settings.write_text(
        "env:\n  replay:\n    days: 4\n    lookback_days: 5\n    n_steps: 8\n    assets: 1\n",
        encoding="utf-8",
    )
    common = ["--env", "replay", "--data", str(FIVE_MINUTE), "--config", str(settings)]
    objectives = {}
    for name in ("twap", "vwap"):
        done = runner.invoke(
            app, ["rl", "evaluate", "--policy", name, *common, "--episodes", "6", "--json"]
        )
        assert done.exit_code == 0, done.output
        payload = json.loads(done.stdout)
        assert payload["env"] == "replay" and payload["episodes"] == 6
        objectives[name] = payload["objective"]
        assert math.isfinite(objectives[name])
    assert objectives["vwap"] != objectives["twap"]  # the data's profile is not flat

    env_config = EnvConfig(
        model="replay",
        replay=ReplayConfig(data=str(FIVE_MINUTE), days=4, lookback_days=5, n_steps=8, assets=1),
    )
    tiny = TrainConfig(n_envs=1, ppo_n_steps=16, ppo_batch_size=16, ppo_n_epochs=1)
    trained = train_policy(
        "ppo", env_config, tiny, timesteps=16, seed=0, out=tmp_path / "pol", log_mlflow=False
    )
    done = runner.invoke(
        app,
        ["rl", "evaluate", "--policy", str(trained.path), *common, "--episodes", "3", "--json"],
    )
    assert done.exit_code == 0, done.output
    assert math.isfinite(json.loads(done.stdout)["objective"])


def test_replay_real_same_seed_same_evaluation_and_env_checks() -> None:
    config = ReplayConfig(data=str(FIVE_MINUTE), days=3, lookback_days=5, n_steps=8)
    model = build_replay_model(config, holdout=True)
    check_env(ExecutionEnv(model.fresh()), skip_render_check=True)
    runs = [
        evaluate_policy(VwapPolicy(), ExecutionEnv(model.fresh()), episodes=5, seed=4)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].shortfalls_bps, runs[1].shortfalls_bps)


def test_replay_daily_only_data_is_one_line_error_naming_bar_size() -> None:
    done = runner.invoke(
        app,
        ["rl", "evaluate", "--policy", "twap", "--env", "replay", "--data", str(DAILY_ONLY)],
    )
    assert done.exit_code != 0
    assert isinstance(done.exception, DataSpecError)
    message = str(done.exception)
    assert "needs intraday bars" in message and "1D bars" in message and "\n" not in message


def test_replay_real_too_many_steps_for_bar_size_is_data_error() -> None:
    config = ReplayConfig(data=str(FIVE_MINUTE), days=2, lookback_days=5, n_steps=60)
    with pytest.raises(DataSpecError, match=r"replay\.n_steps=60 .* 48 5min bars"):
        build_replay_model(config)


@pytest.mark.parametrize("heavy", ["end", "start"])
def test_replay_real_profile_comes_from_the_data(tmp_path: Path, heavy: str) -> None:
    volume = np.full(48, 1_000.0)
    volume[-4:] = 1_000_000.0
    if heavy == "start":
        volume = volume[::-1].copy()
    path = tmp_path / "sh600000.csv"
    _write_sessions(path, SESSIONS, volume)
    config = ReplayConfig(data=str(path), days=1, lookback_days=3, n_steps=6)
    model = build_replay_model(config)
    (day,) = model.days
    assert day.profile is not None
    expected = volume / volume.sum()
    np.testing.assert_allclose(day.profile, expected, rtol=1e-12)
    model.start(np.random.default_rng(0))
    heavy_step = model.step_profile[-1] if heavy == "end" else model.step_profile[0]
    assert heavy_step > 0.95


def test_replay_real_profile_uses_only_days_before_the_replayed_day(tmp_path: Path) -> None:
    base = np.linspace(1_000.0, 5_000.0, 48)

    def profile_with(changed: str) -> np.ndarray:
        # A different volume on one session only (its shape changes, not just its scale).
        path = tmp_path / changed / "sh600000.csv"
        path.parent.mkdir()
        _write_sessions(path, SESSIONS, base, volumes={changed: base[::-1].copy()})
        config = ReplayConfig(data=str(path), days=1, lookback_days=3, n_steps=6)
        (day,) = build_replay_model(config).days
        assert _day_of(day) == date(2017, 3, 9) and day.profile is not None
        return day.profile

    reference = profile_with("none")
    for later in ("2017-03-09", "2017-03-10", "2017-03-13"):
        np.testing.assert_array_equal(profile_with(later), reference)
    assert not np.allclose(profile_with("2017-03-07"), reference)


def test_replay_real_halt_and_missing_stretch_fill_nothing_where_no_bar(tmp_path: Path) -> None:
    keep = np.ones(48, dtype=bool)
    keep[6:12] = False  # 10:05-10:30 missing
    keep[31:] = False  # halted after 13:35 (a breaker day)
    path = tmp_path / "sh600000.csv"
    _write_sessions(path, SESSIONS, np.full(48, 50_000.0), keep={"2017-03-09": keep})
    config = ReplayConfig(data=str(path), days=1, lookback_days=3, n_steps=8, participation_cap=1.0)
    model = build_replay_model(config)
    (day,) = model.days
    _assert_days_are_file_bars([day], path, 5)
    assert day.n_bars == 25 and day.n_slots == 48
    env = ExecutionEnv(model)
    observation, _ = env.reset(seed=1)
    assert [len(bucket) for bucket in model.buckets] == [6, 0, 6, 6, 6, 1, 0, 0]
    fills = []
    policy = TwapPolicy()
    terminated = False
    while not terminated:
        action = np.array([policy.schedule_fraction(observation)], dtype=np.float32)
        observation, reward, terminated, _, info = env.step(action)
        assert math.isfinite(reward)
        fills.append(info["filled"])
    assert fills[1] == fills[6] == fills[7] == 0.0 and fills[0] > 0
    assert info["unfilled"] > 0  # what the halt left is unfilled, and penalised


def test_replay_model_days_of_different_lengths_with_own_profiles() -> None:
    config = ReplayConfig(data=str(FIVE_MINUTE), days=2, lookback_days=5, n_steps=8)
    full = build_replay_model(config).days[0]
    cut = ReplayDay(
        open=full.open[:20],
        high=full.high[:20],
        low=full.low[:20],
        close=full.close[:20],
        volume=full.volume[:20],
        prev_close=full.prev_close,
        average_daily_volume=full.average_daily_volume,
        daily_volatility=full.daily_volatility,
        label="early close",
        slots=np.arange(20),
        n_slots=24,
        profile=np.full(24, 1 / 24),
    )
    model = ReplayModel([full, cut], config)
    lengths = set()
    for seed in range(6):
        model.start(np.random.default_rng(seed))
        lengths.add(sum(len(bucket) for bucket in model.buckets))
        assert model.step_profile.sum() == pytest.approx(1.0)
    assert lengths == {48, 20}
