"""Daily-only data: the report says what could not happen, the freeze says what did, and the
lesson that cannot apply (slice orders thinner) is not given. Each with its intraday control."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.market import ArenaData, MarketSnapshot, load_arena_data
from arena.personas import load_arena_config
from arena.risk import RiskGovernor, RiskLimits
from reports.daily import DAILY_ONLY_NOTE, write_daily_report
from reports.daily_input import AccountDay, DailyReportInput
from reports.lessons import detect_lessons

DAY = date(2024, 3, 25)
SPEC = "synthetic:seed=3,assets=5,start=2022-01-01,end=2023-06-09"
CRASH_DAY = date(2023, 6, 9)


def _input(execution_bars: str, **account: object) -> DailyReportInput:
    values: dict[str, object] = {
        "name": "synthesis",
        "equity_history": pd.Series([1e6, 1.001e6], index=[date(2024, 3, 22), DAY]),
        "day_return": 0.001,
        "trades_today": 3,
        "win_rate": 0.5,
        "max_drawdown": 0.02,
        "sharpe": 1.0,
        "score": 60.0,
        "positions": {"AAA": 0.10},
        "typical_trades": 3.0,
        "slippage_bps": 35.0,  # beyond the poor-fills threshold (20 bps)
        "twap_slippage_bps": 0.0,
        "trades": (),
    }
    values.update(account)
    return DailyReportInput(
        date=DAY,
        accounts=(AccountDay(**values),),  # type: ignore[arg-type]
        benchmark_history=pd.Series([100.0, 100.5], index=[date(2024, 3, 22), DAY]),
        benchmark_return=0.005,
        regime={"label": "bull"},
        risk_events=(),
        orders=pd.DataFrame(),
        fills=pd.DataFrame(),
        decisions=pd.DataFrame(),
        equity=pd.DataFrame(),
        volatility_change=None,
        periods_per_year=252.0,
        execution_bars=execution_bars,
    )


def test_poor_fills_lesson_only_where_slicing_could_change_the_fills() -> None:
    assert [lesson.kind for lesson in detect_lessons(_input("1min"))] == ["poor_fills"]
    assert [lesson.kind for lesson in detect_lessons(_input(""))] == ["poor_fills"]
    assert detect_lessons(_input("daily")) == []


def test_report_says_plainly_when_execution_had_only_the_daily_bar(tmp_path: Path) -> None:
    daily = write_daily_report(tmp_path / "d", _input("daily")).summary_md.read_text()
    intraday = write_daily_report(tmp_path / "i", _input("5min")).summary_md.read_text()
    assert DAILY_ONLY_NOTE.split(":")[0] in daily
    assert "after every order" in daily and "slice orders thinner" not in daily
    assert "Daily bars only" not in intraday
    assert "own 5min bars" in intraday and "slice orders thinner" in intraday


def test_freeze_at_the_days_last_bar_says_nothing_was_left_to_freeze() -> None:
    reference = {"AAA": 100.0, "BBB": 100.0}
    crashed = {"AAA": 80.0, "BBB": 80.0}
    now = pd.Timestamp("2024-03-05 15:00", tz="Asia/Shanghai")
    messages = {}
    for left in (0, 30):
        governor = RiskGovernor(RiskLimits(), "acct")
        governor.start_day(reference, start_equity=1e6)
        events = governor.on_bar(MarketSnapshot(time=now, prices=crashed), now, bars_left=left)
        loss = governor.on_equity(8e5, now, bars_left=left)
        messages[left] = [e.message for e in (*events, *loss) if e.kind == "freeze"]
    assert len(messages[0]) == len(messages[30]) == 2
    assert all("day's last bar" in text for text in messages[0])
    assert not any("last bar" in text for text in messages[30])


def _crash_last_day(data: ArenaData, drop: float) -> ArenaData:
    daily = data.daily
    close = daily.close.copy()
    low = daily.low.copy()
    close[-1] = close[-2] * (1.0 - drop)
    low[-1] = np.minimum(low[-1], close[-1])
    high = np.maximum(daily.high, close)
    opened = daily.open.copy()
    return ArenaData(
        daily=dataclasses.replace(daily, close=close, low=low, high=high, open=opened),
        spec="daily-only crash",
    )


def _freeze_messages(home: LabHome, data: ArenaData) -> list[str]:
    config = load_arena_config()
    accounts = LocalAccounts(home.ensure(), config, data.rules())
    try:
        run_arena_day(accounts, data, CRASH_DAY, home=home, config=config, write_report=True)
    finally:
        accounts.close()
    conn = sqlite3.connect(str(home.ledger_db))
    try:
        rows = conn.execute("SELECT * FROM risk_events").fetchall()
    finally:
        conn.close()
    return [" ".join(str(v) for v in row) for row in rows if "frozen" in " ".join(map(str, row))]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> ArenaData:
    return load_arena_data(SPEC, LabHome(tmp_path_factory.mktemp("data")))


def test_daily_only_crash_day_in_the_arena_reports_what_actually_happened(
    tmp_path: Path, synthetic: ArenaData
) -> None:
    crashed = _crash_last_day(synthetic, 0.15)
    home = LabHome(tmp_path / "daily")
    frozen = _freeze_messages(home, crashed)
    assert frozen, "a 15% fall of every name must trip the market breaker"
    assert all("day's last bar" in text for text in frozen)
    summary = (home.root / "runs" / CRASH_DAY.isoformat() / "summary.md").read_text()
    assert "Daily bars only" in summary
    # Control: the synthetic market's own minutes on an ordinary day say nothing of the kind.
    plain = (tmp_path / "plain").resolve()
    _freeze_messages(LabHome(plain), synthetic)
    summary = (plain / "runs" / CRASH_DAY.isoformat() / "summary.md").read_text()
    assert "Daily bars only" not in summary and "own 1min bars" in summary
