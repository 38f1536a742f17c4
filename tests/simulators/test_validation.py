"""Validation at ingest: every kind of bad bar is found, and raised, warned or repaired."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaloop.config import validate_config
from alphaloop.errors import ConfigError, DataQualityError
from simulators.data_spec import load_quality_policy
from simulators.providers.files import read_bar_file
from simulators.validation import QualityPolicy, validate_frame, validate_frames

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "files"
REPAIR_ALL = QualityPolicy(non_positive="repair", zero_volume="repair")


def _defects() -> pd.DataFrame:
    frames, _ = read_bar_file(FILES / "defects.csv", market="us")
    return frames["defects"]


def _bars(closes: list[float], start: str = "2024-01-01", freq: str = "B", tz: str = "UTC"):
    close = np.asarray(closes, dtype=float)
    index = pd.date_range(start, periods=len(close), freq=freq, tz=tz)
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 100.0},
        index=index,
    )


def _assert_clean(frame: pd.DataFrame) -> None:
    assert frame.index.is_monotonic_increasing and not frame.index.has_duplicates
    values = frame[["open", "high", "low", "close"]].to_numpy()
    assert np.isfinite(values).all() and (values > 0).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame[["open", "close"]].max(axis=1) <= frame["high"]).all()


def test_validate_frame_defects_file_finds_each_kind_at_its_bar() -> None:
    raw = pd.read_csv(FILES / "defects.csv")
    frame = _defects()
    _, issues = validate_frame("X", frame, market="us", freq="1D", policy=REPAIR_ALL)
    found = {issue.kind: issue for issue in issues}
    assert set(found) >= {
        "unsorted",
        "duplicate_timestamp",
        "nan",
        "non_positive",
        "ohlc_inconsistent",
        "zero_volume",
    }

    def day(issue_kind: str) -> set[str]:
        return {stamp[:10] for stamp in found[issue_kind].timestamps}

    assert day("nan") == set(raw.loc[raw["close"].isna(), "date"])
    assert day("non_positive") == set(raw.loc[raw["open"] <= 0, "date"])
    assert day("zero_volume") == set(raw.loc[raw["volume"] == 0, "date"])
    assert day("duplicate_timestamp") == set(raw.loc[raw["date"].duplicated(), "date"])


def test_validate_frame_repair_policy_leaves_a_clean_frame_keeping_last_duplicate() -> None:
    raw = pd.read_csv(FILES / "defects.csv")
    repaired, issues = validate_frame("X", _defects(), market="us", freq="1D", policy=REPAIR_ALL)
    assert all(issue.action in ("repair", "warn") for issue in issues)
    _assert_clean(repaired)
    duplicated_day = raw.loc[raw["date"].duplicated(), "date"].iloc[0]
    last_close = raw.loc[raw["date"] == duplicated_day, "close"].iloc[-1]
    kept = repaired[repaired.index.strftime("%Y-%m-%d") == duplicated_day]["close"]
    assert list(kept) == [last_close]
    assert (repaired["volume"] > 0).all()


def test_validate_frames_raise_policy_error_names_symbol_kind_timestamp_count() -> None:
    policy = QualityPolicy(non_positive="raise")
    _, report = validate_frames({"DEF": _defects()}, market="us", freq="1D", policy=policy)
    assert not report.ok
    with pytest.raises(DataQualityError) as caught:
        report.raise_for_errors()
    message = str(caught.value)
    bad_day = pd.read_csv(FILES / "defects.csv").query("open <= 0")["date"].iloc[0]
    assert "DEF" in message and "non_positive" in message and bad_day in message
    assert "1 bar(s)" in message


def test_validate_frame_warn_policy_keeps_the_bad_bars() -> None:
    policy = QualityPolicy(ohlc_inconsistent="warn")
    frame = _bars([10, 11, 12, 13])
    frame.iloc[2, frame.columns.get_loc("high")] = 11.0  # below the close of 12
    out, issues = validate_frame("X", frame, market="none", freq="1D", policy=policy)
    assert [(i.kind, i.action) for i in issues] == [("ohlc_inconsistent", "warn")]
    assert out["high"].iloc[2] == 11.0


def test_validate_frame_bogus_first_bar_is_dropped_as_outlier() -> None:
    frame = _bars([100, 101, 102, 101, 103, 104], freq="h")
    frame.iloc[0, [0, 1]] = 400.0  # open and high 4x the close (the real BTC first bar)
    out, issues = validate_frame("BTC", frame, market="crypto", freq="1h", policy=QualityPolicy())
    assert [i.kind for i in issues] == ["outlier"]
    assert issues[0].timestamps == (frame.index[0].isoformat(),)
    assert out.index[0] == frame.index[1] and len(out) == len(frame) - 1


def test_validate_frame_bad_wick_is_clipped_not_dropped() -> None:
    # From 2024-01-02: a bar on New Year's Day is outside the XNYS sessions (another issue).
    frame = _bars([100, 101, 102, 101, 103, 104, 103], start="2024-01-02")
    frame.iloc[3, frame.columns.get_loc("low")] = 10.1  # a low 10x too small
    out, issues = validate_frame("AAPL", frame, market="us", freq="1D", policy=QualityPolicy())
    assert [i.kind for i in issues] == ["outlier"]
    assert len(out) == len(frame)
    assert out["low"].iloc[3] == min(frame["open"].iloc[3], frame["close"].iloc[3])


def test_validate_frame_split_is_a_jump_not_an_outlier() -> None:
    # A 7:1 split, unadjusted (from 2024-01-02: New Year's Day is not an XNYS session).
    frame = _bars([700, 702, 698, 701, 100, 101, 99, 100], start="2024-01-02")
    out, issues = validate_frame("AAPL", frame, market="us", freq="1D", policy=QualityPolicy())
    assert [i.kind for i in issues] == ["jump"]
    assert issues[0].timestamps == (frame.index[4].isoformat(),)
    assert len(out) == len(frame)


def test_validate_frame_long_business_day_gap_reported_short_holiday_not() -> None:
    days = pd.bdate_range("2024-01-01", periods=40)
    keep = np.ones(40, dtype=bool)
    keep[5:10] = False  # 5 business days missing: a holiday week, normal
    keep[20:30] = False  # 10 business days missing: a gap
    close = np.linspace(10, 11, 40)[keep]
    frame = _bars(list(close))
    frame.index = (days[keep] + pd.Timedelta(hours=16)).tz_localize("UTC")
    _, issues = validate_frame("X", frame, market="none", freq="1D", policy=QualityPolicy())
    gaps = [i for i in issues if i.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].count == 10
    assert gaps[0].timestamps == (frame.index[20 - 5].isoformat(),)


def test_validate_frame_crypto_missing_hour_is_a_gap() -> None:
    frame = _bars([100 + i * 0.1 for i in range(24)], freq="h").drop(
        index=pd.Timestamp("2024-01-01 10:00", tz="UTC")
    )
    _, issues = validate_frame("BTC", frame, market="crypto", freq="1h", policy=QualityPolicy())
    assert [(i.kind, i.count) for i in issues] == [("gap", 1)]


def test_data_quality_report_to_dict_is_json_and_text_names_symbols() -> None:
    _, report = validate_frames({"DEF": _defects()}, market="us", freq="1D", policy=REPAIR_ALL)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert {issue["kind"] for issue in data["issues"]} == report.kinds()
    assert sum(data["counts"].values()) == len(report.issues)
    text = report.to_text()
    assert "DEF" in text and "duplicate_timestamp" in text and text.endswith("OK")


def test_quality_policy_warn_for_duplicates_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="duplicate_timestamp"):
        validate_config(QualityPolicy, {"duplicate_timestamp": "warn"}, "data.yaml")


def test_load_quality_policy_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("quality:\n  nann: repair\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.yaml.*nann"):
        load_quality_policy(path)


@settings(max_examples=40, deadline=None)
@given(
    closes=st.lists(st.floats(1.0, 1000.0), min_size=3, max_size=30),
    nan_at=st.lists(st.integers(0, 29), max_size=3),
    negative_at=st.lists(st.integers(0, 29), max_size=3),
    swap_hl_at=st.lists(st.integers(0, 29), max_size=3),
    duplicate_at=st.lists(st.integers(0, 29), max_size=3),
)
def test_validate_frame_repair_everything_always_yields_clean_frame(
    closes: list[float],
    nan_at: list[int],
    negative_at: list[int],
    swap_hl_at: list[int],
    duplicate_at: list[int],
) -> None:
    frame = _bars(closes)
    n = len(frame)
    for i in nan_at:
        frame.iloc[i % n, 3] = np.nan
    for i in negative_at:
        frame.iloc[i % n, 0] = -abs(frame.iloc[i % n, 0])
    for i in swap_hl_at:
        high, low = frame.iloc[i % n, 1], frame.iloc[i % n, 2]
        frame.iloc[i % n, 1], frame.iloc[i % n, 2] = low, high
    frame = pd.concat([frame, frame.iloc[[i % n for i in duplicate_at]]]).iloc[::-1]
    out, _ = validate_frame("X", frame, market="us", freq="1D", policy=REPAIR_ALL)
    _assert_clean(out)


def test_a_jump_across_a_long_gap_is_not_called_a_split() -> None:
    # Forty business days without a bar (a suspension), then the price is 60% higher.
    days = pd.bdate_range("2020-03-02", periods=100)
    keep = np.r_[np.arange(20), np.arange(60, 100)]
    index = (days[keep] + pd.Timedelta(hours=15)).tz_localize("Asia/Shanghai")
    close = np.r_[np.full(20, 10.0), np.full(40, 16.0)]
    close[50] = 26.0  # and a genuine one-bar jump later, with no gap before it
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1e5}, index=index
    )
    _, issues = validate_frame("600000", frame, market="cn", freq="1D", policy=QualityPolicy())
    jumps = [i for i in issues if i.kind == "jump"]
    across = [i for i in jumps if "across a gap" in i.detail]
    plain = [i for i in jumps if "split" in i.detail]
    assert [i.timestamps[0] for i in across] == [index[20].isoformat()]
    assert "split" not in across[0].detail
    assert plain and index[50].isoformat() in plain[0].timestamps
    assert index[20].isoformat() not in plain[0].timestamps
