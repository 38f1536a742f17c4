"""The stress replay on real intraday bars: cn-crash-2015 and cn-circuit-breaker-2016 execute
on the data's own bars, and the breaker checks use the halts the bars show.

No real 2015/2016 minute bars are available offline, so the files are **constructed** here, in
``tmp_path``, in the ``files`` provider's own format (one ``<code>.csv`` per symbol,
``datetime,open,high,low,close,volume``, naive Asia/Shanghai bar-close stamps, market cn):

* breaker: the minute bars of the synthetic ``cn-circuit-breaker-2016`` scenario (small, seed 0:
  a shaped crash through the published anchor times) for 2016-01-04..01-07, after four warm-up
  sessions (2015-12-28..31) made with ``simulators.synthetic.generate_intraday`` from the
  scenario's last history bars re-stamped to those XSHG sessions. Then cut the way the exchange
  stopped: 2016-01-04 has no bar in the 5% halt (13:14-13:28) and none after 13:34 (the 7%
  breaker); 2016-01-07 prints the 5% halt's bars (09:43-09:57) without volume, as some vendors
  do, and has no bar after 09:59.
* crash: the synthetic ``cn-crash-2015`` scenario's minutes (small, seed 0) of every XSHG
  session 2015-06-01..09-01 (the coverage the scenario asks of any ``--data``), aggregated
  exactly to 5-minute bars; a suspended name has no bar that day.
"""

from __future__ import annotations

import sqlite3
import sys
import warnings
from collections.abc import Iterable
from datetime import date, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import DataSpecError
from alphaloop.home import LabHome
from arena.market import load_arena_data
from arena.stress import replay
from simulators.bars import Panel
from simulators.calendars import daily_close_stamps, market_sessions
from simulators.data_spec import load_market
from simulators.day_market import day_market
from simulators.intraday_market import aggregate_sessions
from simulators.scenarios import build_scenario
from simulators.session_halts import find_halts
from simulators.synthetic import SyntheticSpec, generate_intraday

RUN_DATE = date(2026, 1, 5)
BREAKER = "cn-circuit-breaker-2016"
CRASH = "cn-crash-2015"
D4, D7 = date(2016, 1, 4), date(2016, 1, 7)
# Main-board share codes for the scenario's synthetic names (none looks like an index).
CODES = ("600000", "600016", "600028", "600030", "600036", "600048", "600050", "600104")


# --------------------------------------------------------------------------- constructed files
def _frames(minute: Panel) -> Iterable[tuple[int, pd.DataFrame]]:
    """Yield each column's tradable bars as a frame (naive local stamps)."""
    for column in range(minute.n_assets):
        frame = pd.DataFrame(
            {name: getattr(minute, name)[:, column]
             for name in ("open", "high", "low", "close", "volume")},
            index=minute.index.tz_localize(None),
        )  # fmt: skip
        yield column, frame[minute.tradable[:, column]]


def _coarser(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Aggregate whole 1-minute sessions exactly to ``minutes`` bars (stamped at their close)."""
    if minutes == 1 or frame.empty:
        return frame
    values = frame.to_numpy().reshape(-1, minutes, 5)
    out = np.column_stack([values[:, 0, 0], values[:, :, 1].max(axis=1),
                           values[:, :, 2].min(axis=1), values[:, -1, 3],
                           values[:, :, 4].sum(axis=1)])  # fmt: skip
    return pd.DataFrame(out, index=frame.index[minutes - 1 :: minutes], columns=frame.columns)


def _write(folder: Path, parts: dict[int, list[pd.DataFrame]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for column, frames in parts.items():
        frame = pd.concat(frames).round({"open": 2, "high": 2, "low": 2, "close": 2})
        frame.index.name = "datetime"
        frame.to_csv(folder / f"{CODES[column]}.csv")
    return folder


def _restamped(daily: Panel, days: list[date]) -> Panel:
    index = daily_close_stamps(pd.DatetimeIndex([pd.Timestamp(d) for d in days]), "cn")
    arrays = {name: getattr(daily, name) for name in ("open", "high", "low", "close", "volume")}
    return Panel(symbols=daily.symbols, index=index, tradable=daily.tradable, freq="1D",
                 market="cn", source="restamped", **arrays)  # fmt: skip


def _breaker_file(folder: Path, *, truncate_d4: bool = True, last_day: date = D7) -> Path:
    synthetic = build_scenario(BREAKER, size="small", seed=0)
    first = synthetic.daily.n_bars - len(synthetic.stress_days)
    warm = [date(2015, 12, day) for day in (28, 29, 30, 31)]
    history = _restamped(synthetic.daily.slice_bars(first - len(warm), first), warm)
    spec = SyntheticSpec(seed=11, market="cn")
    days = [generate_intraday(spec, history, row) for row in range(len(warm))]
    days += [item.minute for item in synthetic.stress_days if item.day <= last_day]
    parts: dict[int, list[pd.DataFrame]] = {}
    for minute in days:
        for column, frame in _frames(minute):
            day, clock = frame.index[0].date(), frame.index.time
            if day == D4 and truncate_d4:
                frame = frame[(clock <= time(13, 34))
                              & ~((clock > time(13, 13)) & (clock <= time(13, 28)))]  # fmt: skip
            if day == D7:
                frame = frame[clock <= time(9, 59)].copy()
                clock = frame.index.time
                frame.loc[(clock > time(9, 42)) & (clock <= time(9, 57)), "volume"] = 0.0
            parts.setdefault(column, []).append(frame)
    return _write(folder, parts)


def _crash_file(folder: Path, minutes: int = 5) -> Path:
    synthetic = build_scenario(CRASH, size="small", seed=0)
    days = {(stamp - pd.Timedelta(minutes=1)).date() for stamp in synthetic.daily.index}
    sessions = market_sessions("cn", "2015-06-01", "2015-09-01").index
    parts: dict[int, list[pd.DataFrame]] = {}
    for day in (s.date() for s in sessions):
        if day in days:  # 2015-06-22 (Dragon Boat) is a synthetic weekday, not a session
            for column, frame in _frames(synthetic.minute_bars(day)):
                parts.setdefault(column, []).append(_coarser(frame, minutes))
    return _write(folder, parts)


def _load(folder: Path) -> Panel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncated breaker sessions are reported, and kept
        return load_market(f"file:{folder};market=cn")


def _stamps(folder: Path) -> dict[str, set[pd.Timestamp]]:
    """Return each symbol's bar stamps in its file (tz-aware)."""
    out = {}
    for path in sorted(folder.glob("*.csv")):
        index = pd.DatetimeIndex(pd.read_csv(path, usecols=["datetime"])["datetime"])
        out[path.stem] = set(index.tz_localize("Asia/Shanghai"))
    return out


def _fills(home: LabHome, scenario: str) -> list[tuple[str, pd.Timestamp, str]]:
    ledger = home.stress / RUN_DATE.isoformat() / "sandbox" / scenario / "ledger.sqlite"
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT symbol, at, side FROM fills ORDER BY at").fetchall()
    return [(symbol, pd.Timestamp(at).tz_convert("Asia/Shanghai"), side)
            for symbol, at, side in rows]  # fmt: skip


def _replay(home: LabHome, name: str, folder: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = replay([name], home=home, size="small", seed=0, run_date=RUN_DATE, track=False,
                        data_spec=f"file:{folder};market=cn")  # fmt: skip
    (scenario,) = result["scenarios"]
    return scenario


def _checks(scenario: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in scenario["checks"]}


@pytest.fixture(scope="module")
def breaker_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _breaker_file(tmp_path_factory.mktemp("breaker") / "bars")


@pytest.fixture(scope="module")
def untruncated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _breaker_file(tmp_path_factory.mktemp("untruncated") / "bars", truncate_d4=False)


@pytest.fixture(scope="module")
def crash_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _crash_file(tmp_path_factory.mktemp("crash") / "bars")


@pytest.fixture(scope="module")
def breaker_run(tmp_path_factory: pytest.TempPathFactory, breaker_file: Path) -> dict[str, Any]:
    home = LabHome(tmp_path_factory.mktemp("breaker_home")).ensure()
    return {"home": home, "scenario": _replay(home, BREAKER, breaker_file)}


# --------------------------------------------------------------------------- halts in the data
def test_find_halts_reads_truncated_session_and_silent_stretches_from_the_bars(
    breaker_file: Path,
) -> None:
    market = aggregate_sessions(_load(breaker_file))
    days = [(s - pd.Timedelta(minutes=1)).date() for s in market.daily.index]
    d4 = find_halts(market.row_bars(days.index(D4)))
    d7 = find_halts(market.row_bars(days.index(D7)))
    clock = [(h.start.strftime("%H:%M"), h.end.strftime("%H:%M"), h.closes_session) for h in d4]
    # No bar in 13:14-13:28 and none after 13:34.
    assert clock == [("13:13", "13:28", False), ("13:34", "15:00", True)]
    assert [h.bars_inside for h in d4] == [0, 0]
    assert "no bar after 13:34: a truncated session" in d4[1].evidence
    # The 5% halt's bars printed without volume are inside the halt; nothing after 09:59.
    clock = [(h.start.strftime("%H:%M"), h.end.strftime("%H:%M"), h.closes_session) for h in d7]
    assert clock == [("09:42", "09:57", False), ("09:59", "15:00", True)]
    assert [h.bars_inside for h in d7] == [15, 0]
    for row, day in enumerate(days):
        if day not in (D4, D7):
            assert find_halts(market.row_bars(row)) == (), day


def test_find_halts_on_5min_bars_is_precise_to_one_bar(breaker_file: Path, tmp_path: Path) -> None:
    # The same file as 5-minute bars (right-closed, stamped at the close).
    folder = tmp_path / "five"
    folder.mkdir()
    for path in breaker_file.glob("*.csv"):
        frame = pd.read_csv(path, index_col="datetime", parse_dates=True)
        grouped = frame.groupby(frame.index.ceil("5min"))
        five = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last",
                            "volume": "sum"})  # fmt: skip
        five.index.name = "datetime"
        five.to_csv(folder / path.name)
    market = aggregate_sessions(_load(folder))
    assert market.freq == "5min"
    days = [(s - pd.Timedelta(minutes=1)).date() for s in market.daily.index]
    labels = {day: [(h.start.strftime("%H:%M"), h.end.strftime("%H:%M"))
                    for h in find_halts(market.row_bars(days.index(day)))]
              for day in (D4, D7)}  # fmt: skip
    # 13:34 is read as 13:35 (the bar 13:30-13:35 still traded), 09:59 as 10:00.
    assert labels[D4] == [("13:15", "13:25"), ("13:35", "15:00")]
    assert labels[D7] == [("09:45", "09:55"), ("10:00", "15:00")]


def test_breaker_from_intraday_data_replays_the_file_sessions_with_the_halts_it_shows(
    breaker_file: Path,
) -> None:
    data = _load(breaker_file)
    scenario = build_scenario(BREAKER, size="small", seed=0, data=data)
    assert scenario.source == f"file:{breaker_file};market=cn"
    assert "the data's own 1min bars" in scenario.execution
    assert scenario.warmup == (date(2015, 12, 29), date(2015, 12, 30), date(2015, 12, 31))
    assert [d.day for d in scenario.stress_days] == [D4, date(2016, 1, 5), date(2016, 1, 6), D7]
    market = aggregate_sessions(data)
    days = [(s - pd.Timedelta(minutes=1)).date() for s in market.daily.index]
    for day in scenario.days:
        bars = scenario.minute_bars(day)
        own = market.row_bars(days.index(day))
        assert bars.index.equals(own.index) and np.array_equal(bars.close, own.close), day
    by_day = {d.day: d for d in scenario.stress_days}
    assert by_day[D4].minute.index[-1].strftime("%H:%M") == "13:34"
    assert by_day[D7].minute.index[-1].strftime("%H:%M") == "09:59"
    assert [(h.label, h.source) for h in by_day[D4].halts] == [
        ("13:13-13:28", "data"), ("13:34-close", "data")]  # fmt: skip
    assert [h.label for h in by_day[D7].halts] == ["09:42-09:57", "09:59-close"]
    assert by_day[D4].published_close_halt is not None
    assert by_day[D4].crash and by_day[D7].crash


def test_breaker_day_volatility_is_over_the_scheduled_session_as_the_arenas_day(
    breaker_file: Path, tmp_path: Path
) -> None:
    # 2016-01-04 stops at 13:34 with no bar in 13:14-13:28: one bar's volatility is still the
    # daily volatility over the SSE's 240 one-minute intervals, as the arena's day on the file.
    data = _load(breaker_file)
    scenario = build_scenario(BREAKER, size="small", seed=0, data=data)
    arena_data = load_arena_data(f"file:{breaker_file};market=cn", LabHome(tmp_path))
    minute = scenario.minute_bars(D4)
    assert scenario.session_bars(D4) == 240 and minute.n_bars < 200
    stress_day, arena_day = scenario.day_market(D4), arena_data.day_market(D4)
    for symbol in scenario.daily.symbols:
        # By hand, from the symbol's file: the last close of each session before D4.
        frame = pd.read_csv(breaker_file / f"{symbol}.csv", parse_dates=["datetime"])
        closes = frame.groupby(frame["datetime"].dt.date)["close"].last()
        returns = np.diff(np.log(closes[closes.index < D4].to_numpy()))
        hand = float(np.std(returns, ddof=1)) / np.sqrt(240)
        assert stress_day.sigma[symbol] == pytest.approx(hand, rel=1e-12), symbol
        assert stress_day.sigma[symbol] == arena_day.sigma[symbol]
    # Control: over the bars present (the old definition) each bar is about 1.3x as volatile.
    present = day_market(scenario.daily, D4, minute).sigma
    symbol = scenario.daily.symbols[0]
    assert present[symbol] == pytest.approx(
        stress_day.sigma[symbol] * np.sqrt(240 / minute.n_bars), rel=1e-12
    )
    assert present[symbol] > 1.2 * stress_day.sigma[symbol]
    # A warm-up day of the file is a whole session: the two counts agree.
    assert (
        scenario.session_bars(scenario.warmup[0]) == scenario.minute_bars(scenario.warmup[0]).n_bars
    )


def test_breaker_replay_on_intraday_data_fills_only_on_the_file_bars_none_after_the_halt(
    breaker_run: dict[str, Any], breaker_file: Path
) -> None:
    scenario = breaker_run["scenario"]
    stamps = _stamps(breaker_file)
    fills = _fills(breaker_run["home"], BREAKER)
    assert fills, "the warm-up built the books on the file's bars"
    for symbol, at, _ in fills:
        assert at in stamps[symbol], (symbol, at)
    last = {D4: pd.Timestamp("2016-01-04 13:34", tz="Asia/Shanghai"),
            D7: pd.Timestamp("2016-01-07 09:59", tz="Asia/Shanghai")}  # fmt: skip
    for _, at, _ in fills:
        if at.date() in last:
            assert at <= last[at.date()]
    assert scenario["stress_days"] == ["2016-01-04", "2016-01-05", "2016-01-06", "2016-01-07"]
    assert list(_checks(scenario)) == [
        "circuit_breaker_froze_within_3_min", "daily_loss_within_limit", "limits_tripped",
        "exchange_halt_respected", "ledger_verify", "exposure"]  # fmt: skip
    assert scenario["passed"], [c["detail"].get("problems") for c in scenario["checks"]]
    assert sum(f["stress_fills"] for f in scenario["accounts"].values()) > 0


def test_breaker_replay_reports_the_halt_times_read_from_the_data(
    breaker_run: dict[str, Any],
) -> None:
    scenario = breaker_run["scenario"]
    halts = {entry["day"]: entry for entry in scenario["halts"]}
    closing = {day: [h for h in entry["halts"] if h["closes_session"]]
               for day, entry in halts.items()}  # fmt: skip
    assert closing["2016-01-04"][0]["start"] == "2016-01-04T13:34:00+08:00"
    assert closing["2016-01-07"][0]["start"] == "2016-01-07T09:59:00+08:00"
    assert all(h["source"] == "data" for entry in halts.values() for h in entry["halts"])
    assert "truncated session" in closing["2016-01-04"][0]["reason"]
    assert halts["2016-01-04"]["published_close_halt"] == "2016-01-04T13:34:00+08:00"
    check = _checks(scenario)["exchange_halt_respected"]
    assert check["passed"]
    assert check["detail"]["halts_used"] == (
        "2016-01-04: 13:13-13:28 (from the data), 13:34-close (from the data); "
        "2016-01-07: 09:42-09:57 (from the data), 09:59-close (from the data)"
    )
    rows = check["detail"]["halts"]
    # The 5% halt of 01-07 has bars without volume: the executor saw it (an incident).
    printed = [r for r in rows if r["start"] == "2016-01-07T09:42:00+08:00"]
    assert printed and all(r["bars_inside"] == 15 and r["incident"] for r in printed)
    assert all(r["fills_inside"] == 0 for r in rows)
    breaker = _checks(scenario)["circuit_breaker_froze_within_3_min"]
    assert breaker["passed"] and breaker["detail"]["halts_used"] == check["detail"]["halts_used"]


def test_breaker_control_untruncated_session_changes_the_halt_and_fails_the_halt_check(
    tmp_path: Path, untruncated_file: Path, breaker_run: dict[str, Any]
) -> None:
    home = LabHome(tmp_path / "home").ensure()
    scenario = _replay(home, BREAKER, untruncated_file)
    halts = {entry["day"]: entry for entry in scenario["halts"]}
    assert halts["2016-01-04"]["halts"] == []  # the bars run to 15:00 with volume
    assert halts["2016-01-07"]["halts"][1]["start"] == "2016-01-07T09:59:00+08:00"
    check = _checks(scenario)["exchange_halt_respected"]
    assert not check["passed"] and not scenario["passed"]
    (problem,) = check["detail"]["problems"]
    assert problem.startswith("2016-01-04: the exchange closed the market at 13:34 (published)")
    assert "trades until the bar of 15:00" in problem
    assert check["detail"]["halts_used"].startswith("2016-01-04: none in the data; ")
    # The same replay on the truncated file passes: the data decide.
    assert _checks(breaker_run["scenario"])["exchange_halt_respected"]["passed"]
    # And the accounts did trade after 13:34 here, where the real session had stopped.
    late = [at for _, at, _ in _fills(home, BREAKER)
            if at.date() == D4 and at.time() > time(13, 34)]  # fmt: skip
    assert late


# --------------------------------------------------------------------------- cn-crash-2015
def test_cn_crash_replay_on_intraday_data_executes_on_the_file_5min_bars(
    tmp_path: Path, crash_file: Path
) -> None:
    home = LabHome(tmp_path / "home").ensure()
    scenario = _replay(home, CRASH, crash_file)
    assert scenario["execution"].startswith("the data's own 5min bars of each day")
    assert scenario["stress_days"] == ["2015-07-06", "2015-07-07", "2015-07-08"]
    assert scenario["passed"], [c["detail"].get("problems") for c in scenario["checks"]]
    stamps = _stamps(crash_file)
    fills = _fills(home, CRASH)
    assert fills
    for symbol, at, _ in fills:
        assert at in stamps[symbol], (symbol, at)  # synthesised minutes would be 09:31, 09:32...
        assert at.minute % 5 == 0


def test_cn_crash_intraday_and_daily_data_same_daily_panel_different_execution_bars(
    crash_file: Path,
) -> None:
    data = _load(crash_file)
    intraday = build_scenario(CRASH, size="small", seed=0, data=data)
    daily_data = aggregate_sessions(data).daily
    daily = build_scenario(CRASH, size="small", seed=0, data=daily_data)
    # The daily panel is the exact aggregate either way; only the execution bars differ.
    assert np.array_equal(intraday.daily.close, daily.daily.close, equal_nan=True)
    assert intraday.daily.index.equals(daily.daily.index)
    for day in intraday.days:
        assert intraday.minute_bars(day).freq == "5min"
        minute = daily.minute_bars(day)  # daily-only data: minutes synthesised as before
        assert minute.freq == "1min" and minute.n_bars == 240
        row = [(s - pd.Timedelta(minutes=1)).date() for s in daily.daily.index].index(day)
        live = daily.daily.tradable[row]
        assert np.array_equal(minute.close[-1][live], daily.daily.close[row][live])
    assert daily.execution.startswith("1-minute bars synthesised from the data's daily bars")
    assert all(d.note.endswith("(real daily bars)") for d in daily.stress_days)
    assert all(d.note.endswith("(real 5min bars)") for d in intraday.stress_days)


# --------------------------------------------------------------------------- data it cannot use
def test_breaker_intraday_data_without_the_breaker_sessions_raises_naming_them(
    tmp_path: Path,
) -> None:
    data = _load(_breaker_file(tmp_path / "bars", last_day=date(2016, 1, 5)))
    with pytest.raises(DataSpecError, match="lacks the breaker session") as error:
        build_scenario(BREAKER, size="small", seed=0, data=data)
    assert "2016-01-07" in str(error.value) and "2016-01-04," not in str(error.value)
    assert "covers 2015-12-28..2016-01-05 (6 session(s) of 1min bars)" in str(error.value)


def test_breaker_daily_data_replays_the_synthetic_days_and_says_so(crash_file: Path) -> None:
    daily = aggregate_sessions(_load(crash_file)).daily
    scenario = build_scenario(BREAKER, size="small", seed=0, data=daily)
    assert scenario.source == "synthetic"
    assert "has daily bars, which cannot show a halt" in scenario.execution
    assert all(h.source == "scenario" for d in scenario.stress_days for h in d.halts)


def test_cli_stress_replay_file_not_covering_the_breaker_days_exits_2_with_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from alphaloop.cli import main

    folder = _breaker_file(tmp_path / "bars", last_day=date(2016, 1, 6))
    monkeypatch.setenv("ALPHALOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(sys, "argv", [
        "alphaloop", "stress", "replay", "--scenario", BREAKER, "--data",
        f"file:{folder};market=cn", "--size", "small", "--no-mlflow", "--json"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and captured.out == ""
    assert errors[0].startswith(f"error: {BREAKER}: --data file:{folder};market=cn covers ")
    assert "lacks the breaker session(s) 2016-01-07" in errors[0]
