"""Exchange calendars in the data layer: sessions, holidays, early closes, extended hours, and
the quality issues they find (missing, truncated and outside sessions, mixed bar sizes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.errors import DataQualityError
from simulators.calendars import market_sessions
from simulators.data_spec import check_market, load_market_with_report
from simulators.metrics import periods_per_year
from simulators.providers.files import read_bar_file
from simulators.synthetic import session_minutes
from simulators.validation import QualityPolicy, validate_frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CALENDAR_KINDS = {
    "mixed_bar_sizes",
    "missing_session",
    "truncated_session",
    "outside_session",
    "extended_hours",
    "calendar_range",
}
runner = CliRunner()


def _frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    close = 10.0 + 0.001 * np.arange(len(index))
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 100.0},
        index=index,
    )


def _minutes(market: str, days: list[str]) -> pd.DatetimeIndex:
    """Bar-close stamps of every regular minute of ``days`` (cn 240 a day, us 390)."""
    return pd.DatetimeIndex(np.concatenate([session_minutes(market, day) for day in days]))


def _issues(frame: pd.DataFrame, market: str, freq: str, policy: QualityPolicy | None = None):
    _, issues = validate_frame(
        "X", frame, market=market, freq=freq, policy=policy or QualityPolicy()
    )
    return {issue.kind: issue for issue in issues}


def _write_csv(path: Path, stamps: list[str]) -> Path:
    close = 10.0 + 0.01 * np.arange(len(stamps))
    table = pd.DataFrame(
        {"date": stamps, "open": close, "high": close, "low": close, "close": close, "volume": 1e4}
    )
    table.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------- the calendars
def test_market_sessions_cn_is_xshg_with_lunch_break_and_golden_week_closed() -> None:
    sessions = market_sessions("cn", "2024-09-27", "2024-10-09")
    assert sessions.attrs["calendar"] == "XSHG"
    assert [d.strftime("%m-%d") for d in sessions.index] == ["09-27", "09-30", "10-08", "10-09"]
    day = sessions.loc["2024-09-30"]
    assert [day[c].strftime("%H:%M") for c in ("open", "break_start", "break_end", "close")] == [
        "09:30", "11:30", "13:00", "15:00",
    ]  # fmt: skip
    assert str(day["open"].tz) == "Asia/Shanghai" and pd.isna(day["extended_open"])


def test_market_sessions_us_is_xnys_with_early_close_and_extended_hours() -> None:
    sessions = market_sessions("us", "2019-11-27", "2019-11-29")
    assert sessions.attrs["calendar"] == "XNYS"
    assert [d.day for d in sessions.index] == [27, 29]  # Thanksgiving is closed
    friday = sessions.loc["2019-11-29"]
    assert friday["close"].strftime("%H:%M") == "13:00"  # the early close
    assert friday["extended_open"].strftime("%H:%M") == "04:00"
    assert friday["extended_close"].strftime("%H:%M") == "17:00"
    assert sessions.loc["2019-11-27", "extended_close"].strftime("%H:%M") == "20:00"
    assert pd.isna(friday["break_start"])


def test_market_sessions_crypto_every_day_and_none_weekdays_without_holidays() -> None:
    crypto = market_sessions("crypto", "2024-10-01", "2024-10-07")
    assert len(crypto) == 7 and crypto.attrs["calendar"] == "24/7"
    assert (crypto["close"] - crypto["open"] == pd.Timedelta(days=1)).all()
    none = market_sessions("none", "2024-10-01", "2024-10-07")
    assert none.attrs["calendar"] == "weekdays" and len(none) == 5  # Golden Week is not known
    assert none["open"].iloc[0].strftime("%H:%M %Z") == "09:30 UTC"


def test_market_sessions_build_without_the_network() -> None:
    # exchange_calendars ships its holiday rules: building a calendar opens no socket.
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from simulators.calendars import market_sessions\n"
        "print(len(market_sessions('cn', '2016-01-01', '2016-12-31')),"
        " len(market_sessions('us', '2016-01-01', '2016-12-31')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["244", "252"]


def test_annualisation_uses_the_calendars_session_length() -> None:
    def regular_minutes(market: str, day: str) -> float:
        row = market_sessions(market, day, day).iloc[0]
        length = row["close"] - row["open"]
        if pd.notna(row["break_start"]):
            length -= row["break_end"] - row["break_start"]
        return length / pd.Timedelta(minutes=1)

    assert regular_minutes("cn", "2024-03-05") == 240.0
    assert regular_minutes("us", "2024-03-05") == 390.0
    assert regular_minutes("crypto", "2024-03-05") == 1440.0
    assert periods_per_year("1min", "cn") == 243 * regular_minutes("cn", "2024-03-05")
    assert periods_per_year("1min", "us") == 252 * regular_minutes("us", "2024-03-05")
    assert periods_per_year("1h", "crypto") == 365 * 24


# ---------------------------------------------------------------------- missing sessions
def test_missing_session_holiday_is_not_missing_but_a_removed_tuesday_is() -> None:
    sessions = market_sessions("cn", "2024-09-23", "2024-10-18")
    stamps = pd.DatetimeIndex(sessions["close"])  # every XSHG session: Golden Week has none
    clean = _issues(_frame(stamps), "cn", "1D")
    assert not CALENDAR_KINDS & set(clean)
    tuesday = pd.Timestamp("2024-10-15 15:00", tz="Asia/Shanghai")
    found = _issues(_frame(stamps.drop(tuesday)), "cn", "1D")
    assert found["missing_session"].timestamps == (tuesday.isoformat(),)
    assert found["missing_session"].count == 1 and found["missing_session"].action == "warn"


def test_bars_on_holidays_are_outside_session_not_missing() -> None:
    weekdays = pd.bdate_range("2024-09-23", "2024-10-18") + pd.Timedelta(hours=15)
    found = _issues(_frame(weekdays.tz_localize("Asia/Shanghai")), "cn", "1D")
    assert "missing_session" not in found
    holidays = [f"2024-10-0{d}T15:00:00+08:00" for d in (1, 2, 3, 4, 7)]
    assert list(found["outside_session"].timestamps) == holidays


def test_missing_session_intraday_lists_the_day_once() -> None:
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    full = _frame(_minutes("cn", days))
    assert "missing_session" not in _issues(full, "cn", "1min")
    gone = full[full.index.normalize() != pd.Timestamp("2024-03-05", tz="Asia/Shanghai")]
    issue = _issues(gone, "cn", "1min")["missing_session"]
    assert issue.count == 1 and issue.timestamps == ("2024-03-05T15:00:00+08:00",)


def test_real_suspension_is_missing_sessions_and_the_index_beside_it_is_clean() -> None:
    folder = FIXTURES / "cn_ashare_suspension"
    index_report = check_market(f"{folder / 'sh000001.csv'};market=cn")
    assert not CALENDAR_KINDS & index_report.kinds()
    report = check_market(f"{folder / 'sh600000.csv'};market=cn")
    (issue,) = [i for i in report.issues if i.kind == "missing_session"]
    reform = market_sessions("cn", "2006-03-21", "2006-05-11")["close"]
    assert len(reform) == 33
    assert {t.isoformat() for t in reform} <= set(issue.timestamps)
    assert report.ok  # a suspension is a warning, the file still loads


# ---------------------------------------------------------------------- truncated sessions
def test_truncated_session_cn_circuit_breaker_days_2016_are_reported() -> None:
    days = ["2016-01-04", "2016-01-05", "2016-01-06", "2016-01-07", "2016-01-08"]
    full = _frame(_minutes("cn", days))
    assert "truncated_session" not in _issues(full, "cn", "1min")
    local = full.index.tz_convert("Asia/Shanghai")
    halted = (
        (local.date == pd.Timestamp("2016-01-04").date()) & (local.strftime("%H:%M") > "13:33")
    ) | ((local.date == pd.Timestamp("2016-01-07").date()) & (local.strftime("%H:%M") > "09:59"))
    found = _issues(full[~halted], "cn", "1min")
    issue = found["truncated_session"]
    assert issue.timestamps == ("2016-01-04T13:33:00+08:00", "2016-01-07T09:59:00+08:00")
    assert issue.action == "warn" and "13:33" in issue.detail
    assert "missing_session" not in found and "outside_session" not in found


def test_us_early_close_is_not_a_truncated_session() -> None:
    regular = [t for t in session_minutes("us", "2019-11-29") if t.strftime("%H:%M") <= "13:00"]
    early = _frame(pd.DatetimeIndex(regular))
    found = _issues(early, "us", "1min")
    assert "truncated_session" not in found and "outside_session" not in found
    # The same bars on a full-length day stop 3 hours early.
    shifted = _frame(pd.DatetimeIndex(regular) - pd.Timedelta(days=2))
    assert "truncated_session" in _issues(shifted, "us", "1min")  # 2019-11-27, a full day


# ---------------------------------------------------------------------- outside and extended
def test_lunch_break_bars_are_outside_session_and_the_opening_auction_is_not() -> None:
    index = _minutes("cn", ["2024-03-05"])
    auction = pd.Timestamp("2024-03-05 09:30", tz="Asia/Shanghai")
    clean = _issues(_frame(index.append(pd.DatetimeIndex([auction])).sort_values()), "cn", "1min")
    assert not CALENDAR_KINDS & set(clean)
    lunch = pd.DatetimeIndex(
        [pd.Timestamp(f"2024-03-05 {t}", tz="Asia/Shanghai") for t in ("12:00", "12:30", "13:00")]
    )
    found = _issues(_frame(index.append(lunch).sort_values()), "cn", "1min")
    issue = found["outside_session"]
    assert issue.count == 3 and "3 in the lunch break" in issue.detail
    assert "extended_hours" not in found


def test_outside_session_repair_drops_the_bars() -> None:
    index = _minutes("cn", ["2024-03-05"]).append(
        pd.DatetimeIndex([pd.Timestamp("2024-03-05 12:00", tz="Asia/Shanghai")])
    )
    policy = QualityPolicy(outside_session="repair")
    out, issues = validate_frame(
        "X", _frame(index.sort_values()), market="cn", freq="1min", policy=policy
    )
    assert [i.kind for i in issues] == ["outside_session"] and len(out) == 240


def test_us_extended_hours_bars_are_counted_not_errors() -> None:
    frames, freq = read_bar_file(FIXTURES / "us_minute" / "AIG_2013-10-07.csv", market="us")
    frame = frames["AIG_2013-10-07"]
    raw = pd.read_csv(FIXTURES / "us_minute" / "AIG_2013-10-07.csv")["datetime"].str[11:16]
    pre, post = int((raw <= "09:30").sum()), int((raw > "16:00").sum())
    assert pre > 10 and post > 10 and freq == "1min"
    found = _issues(frame, "us", freq)
    issue = found["extended_hours"]
    assert issue.count == pre + post and issue.action == "warn"
    assert f"{pre} pre-market" in issue.detail and f"{post} post-market" in issue.detail
    assert not {"outside_session", "truncated_session", "missing_session"} & set(found)
    # Control: the regular-hours bars alone have no extended-hours issue.
    regular = frame[
        ~frame.index.isin(pd.DatetimeIndex([pd.Timestamp(t) for t in issue.timestamps]))
    ]
    assert len(regular) == len(frame) - pre - post
    assert not CALENDAR_KINDS & set(_issues(regular, "us", freq))
    # repair keeps the regular session only.
    out, _ = validate_frame(
        "AIG", frame, market="us", freq=freq, policy=QualityPolicy(extended_hours="repair")
    )
    assert out.index.equals(regular.index)


def test_us_bars_in_the_night_are_outside_session_not_extended() -> None:
    index = _minutes("us", ["2024-03-05"]).append(
        pd.DatetimeIndex([pd.Timestamp("2024-03-05 02:00", tz="America/New_York")])
    )
    found = _issues(_frame(index.sort_values()), "us", "1min")
    assert found["outside_session"].count == 1 and "extended_hours" not in found


# ---------------------------------------------------------------------- mixed bar sizes
def _daily_then_30min(tmp_path: Path, *, daily_only: bool = False) -> Path:
    daily = [
        d.strftime("%Y-%m-%d") for d in market_sessions("cn", "2024-01-02", "2024-02-08").index
    ]
    intraday = [] if daily_only else [
        t.strftime("%Y-%m-%d %H:%M:%S")
        for day in ("2024-02-19", "2024-02-20")
        for t in session_minutes("cn", day)[29::30]
    ]  # fmt: skip
    return _write_csv(tmp_path / "sh600000.csv", daily + intraday)


def test_mixed_bar_sizes_daily_rows_with_appended_30min_rows_is_an_error(tmp_path: Path) -> None:
    clean = check_market(f"{_daily_then_30min(tmp_path, daily_only=True)};market=cn")
    assert clean.ok and "mixed_bar_sizes" not in clean.kinds()
    report = check_market(f"{_daily_then_30min(tmp_path)};market=cn")
    (issue,) = [i for i in report.issues if i.kind == "mixed_bar_sizes"]
    assert report.freq == "1D" and issue.action == "raise" and issue.count == 16
    assert not report.ok
    with pytest.raises(DataQualityError, match="mixed_bar_sizes"):
        load_market_with_report(f"{tmp_path / 'sh600000.csv'};market=cn")


def test_mixed_bar_sizes_intraday_file_with_daily_rows_or_finer_rows(tmp_path: Path) -> None:
    days = [d.strftime("%Y-%m-%d") for d in market_sessions("cn", "2024-03-01", "2024-03-29").index]
    bars = [t for day in days[5:] for t in session_minutes("cn", day)[29::30]]
    clean = _issues(_frame(pd.DatetimeIndex(bars)), "cn", "30min")
    assert not CALENDAR_KINDS & set(clean)
    # Date-only daily rows in front: read at local midnight, one bar on each day.
    dailies = pd.DatetimeIndex([pd.Timestamp(day, tz="Asia/Shanghai") for day in days[:5]])
    issue = _issues(_frame(dailies.append(pd.DatetimeIndex(bars))), "cn", "30min")[
        "mixed_bar_sizes"
    ]
    assert issue.count == 5 and issue.action == "raise"
    # One-minute rows appended to a 30-minute file.
    minutes = session_minutes("cn", "2024-04-01")[:20]
    finer = _issues(_frame(pd.DatetimeIndex(bars).append(minutes)), "cn", "30min")
    assert finer["mixed_bar_sizes"].count == 19


def test_mixed_bar_sizes_crypto_hourly_from_midnight_is_not_mixed() -> None:
    index = pd.date_range("2024-01-01 00:00", periods=72, freq="h", tz="UTC")
    assert "mixed_bar_sizes" not in _issues(_frame(index), "crypto", "1h")
    daily = pd.date_range("2023-12-20", periods=10, freq="D", tz="UTC")
    found = _issues(_frame(daily.append(index[1:])), "crypto", "1h")
    assert found["mixed_bar_sizes"].count >= 9


def test_data_check_cli_reports_calendar_and_mixed_bar_sizes_exit_one(tmp_path: Path) -> None:
    spec = f"{_daily_then_30min(tmp_path)};market=cn"
    result = runner.invoke(app, ["data", "check", spec, "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["calendar"] == "XSHG" and data["ok"] is False
    assert [i["kind"] for i in data["issues"] if i["action"] == "raise"] == ["mixed_bar_sizes"]
    table = runner.invoke(app, ["data", "check", spec], env={"COLUMNS": "250"})
    assert table.exit_code == 1
    assert "calendar=XSHG" in table.output and "mixed_bar_sizes" in table.output
    assert "FAILED" in table.output
    good = runner.invoke(
        app, ["data", "check", f"{_daily_then_30min(tmp_path, daily_only=True)};market=cn"]
    )
    assert good.exit_code == 0, good.output


# ---------------------------------------------------------------------- scope
def test_synthetic_market_has_no_calendar_issues_whatever_its_market() -> None:
    for market in ("none", "cn", "us", "crypto"):
        report = check_market(f"synthetic:market={market},start=2024-01-01,end=2024-12-31")
        assert report.calendar == ("24/7" if market == "crypto" else "weekdays")
        assert not CALENDAR_KINDS & report.kinds(), market


def test_days_past_the_xshg_calendar_are_noted_not_missing() -> None:
    days = pd.bdate_range("2026-12-21", "2027-01-08") + pd.Timedelta(hours=15)
    found = _issues(_frame(days.tz_localize("Asia/Shanghai")), "cn", "1D")
    assert found["calendar_range"].count == 6  # 2027-01-01 .. 2027-01-08
    assert "missing_session" not in found and "outside_session" not in found


def test_calendar_actions_are_checked() -> None:
    with pytest.raises(ValidationError):
        QualityPolicy(mixed_bar_sizes="repair")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        QualityPolicy(truncated_session_minutes=0)
