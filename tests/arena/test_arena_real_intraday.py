"""The arena on real intraday files: exact daily aggregation, each day on the file's own bars.

Two kinds of evidence:

* The real SSE Composite fixture (tests/fixtures/cn_intraday, sliced from
  ../shared/data): the daily panel the arena perceives is the exact aggregate of the file's
  regular-hours bars, computed here independently with pandas from the CSV text.
* A folder of per-symbol CSV files holding the synthetic market's minute bars (written at
  full precision): the arena on that folder gives exactly the ledger of the arena on the
  synthetic market itself, because the synthetic minutes aggregate bitwise to its daily bars.
  A control replays the same folder as daily-only data (its daily bars) and shows the ledger
  differs, so the equality is a real check of intraday execution on the file's bars.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.market import ArenaData, load_arena_data
from arena.personas import load_arena_config
from arena.season import season_days
from simulators.synthetic import SyntheticSpec, generate_daily, generate_intraday

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cn_intraday"
ONE_MINUTE = FIXTURES / "sh000001_1min_2017-03-17_21.csv"
FIVE_MINUTE = FIXTURES / "sh000001_5min_2017.csv"

SPEC = SyntheticSpec(seed=3, assets=4, start="2023-01-02", end="2023-06-09")
DAYS = (date(2023, 6, 5), date(2023, 6, 9))


def _expected_daily(path: Path) -> pd.DataFrame:
    """Per session: first open, max high, min low, last close, summed volume of the bars in
    09:30-11:30 and 13:01-15:00 (XSHG regular hours; 13:00 is inside the lunch break)."""
    frame = pd.read_csv(path, parse_dates=["datetime"])
    clock = frame["datetime"].dt.strftime("%H:%M")
    regular = ((clock >= "09:30") & (clock <= "11:30")) | ((clock > "13:00") & (clock <= "15:00"))
    frame = frame[regular]
    grouped = frame.groupby(frame["datetime"].dt.date)
    return grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        bars=("close", "size"),
    )


@pytest.mark.parametrize("path", [ONE_MINUTE, FIVE_MINUTE], ids=["1min", "5min"])
def test_daily_panel_is_the_exact_aggregate_of_the_files_sessions(
    tmp_path: Path, path: Path
) -> None:
    data = load_arena_data(str(path), LabHome(tmp_path))
    expected = _expected_daily(path)
    assert data.intraday is not None and data.has_intraday
    daily = data.daily
    assert daily.freq == "1D" and daily.market == "cn"
    assert [stamp.date() for stamp in daily.index] == list(expected.index)
    assert all(stamp.strftime("%H:%M") == "15:00" for stamp in daily.index)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(daily, name)[:, 0], expected[name].to_numpy())
    # Each day's bars are that session's regular-hours bars of the file, nothing else.
    for day in expected.index:
        bars = data.minute_bars(day)
        assert bars is not None
        assert bars.n_bars == expected.loc[day, "bars"]
        assert {stamp.date() for stamp in bars.index} == {day}
    assert "outside sessions dropped" in data.intraday.describe()


def _write_minute_folder(folder: Path) -> None:
    """One CSV per symbol: every synthetic minute bar, stamped at its close, full precision."""
    daily = generate_daily(SPEC)
    days = [generate_intraday(SPEC, daily, row) for row in range(daily.n_bars)]
    folder.mkdir()
    for column, symbol in enumerate(daily.symbols):
        parts = []
        for bars in days:
            parts.append(
                pd.DataFrame(
                    {
                        "datetime": bars.index.tz_localize(None),
                        **{
                            name: getattr(bars, name)[:, column]
                            for name in ("open", "high", "low", "close", "volume")
                        },
                    }
                )
            )
        pd.concat(parts).to_csv(folder / f"{symbol}.csv", index=False, float_format="%.17g")


def _ledger(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            for table in ("orders", "fills", "positions", "equity", "risk_events")
        }
    finally:
        conn.close()


def _replay(home: LabHome, data: ArenaData) -> dict[str, list[tuple[object, ...]]]:
    config = load_arena_config()
    accounts = LocalAccounts(home.ensure(), config, data.rules())
    try:
        for day in season_days(data, *DAYS):
            run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
    finally:
        accounts.close()
    return _ledger(home.ledger_db)


@pytest.fixture(scope="module")
def minute_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("files") / "bars"
    _write_minute_folder(folder)
    return folder


def test_arena_on_a_minute_file_folder_trades_exactly_as_on_the_synthetic_market(
    tmp_path: Path, minute_folder: Path
) -> None:
    synthetic = load_arena_data(SPEC.to_spec_string(), LabHome(tmp_path / "s"))
    files = load_arena_data(f"{minute_folder};market=none", LabHome(tmp_path / "f"))
    assert files.intraday is not None and files.intraday.freq == "1min"
    np.testing.assert_array_equal(files.daily.close, synthetic.daily.close)
    np.testing.assert_array_equal(files.daily.high, synthetic.daily.high)
    np.testing.assert_array_equal(files.daily.volume, synthetic.daily.volume)
    on_synthetic = _replay(LabHome(tmp_path / "a"), synthetic)
    on_files = _replay(LabHome(tmp_path / "b"), files)
    assert on_synthetic["fills"], "the replay must trade for the comparison to mean something"
    # Fills happen at minute stamps inside the day, not at the daily close.
    assert any(not str(fill).count("16:00:00") for fill in on_files["fills"])
    assert on_files == on_synthetic

    # Control: the same bars as daily-only data execute at the single daily bar.
    daily_only = ArenaData(daily=files.daily, spec="daily-only")
    assert not daily_only.has_intraday
    assert _replay(LabHome(tmp_path / "c"), daily_only)["fills"] != on_files["fills"]


def test_daily_only_source_has_no_intraday_bars(tmp_path: Path) -> None:
    daily = tmp_path / "daily.csv"
    frame = _expected_daily(FIVE_MINUTE).drop(columns="bars")
    frame.index.name = "date"
    frame.to_csv(daily)
    data = load_arena_data(f"{daily};market=cn", LabHome(tmp_path / "h"))
    assert data.intraday is None and not data.has_intraday
    assert data.minute_bars(data.daily.index[5].date()) is None


def test_akshare_minute_bars_become_the_arenas_intraday_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """akshare's own minute format (East Money, bar-end stamps) through the provider to the
    arena: only the endpoint (the network) is replaced by a fake returning the fixture."""
    import akshare

    raw = pd.read_csv(
        FIXTURES.parent / "providers" / "akshare" / "stock_zh_a_hist_min_em_600036_5.csv"
    )
    calls: list[dict[str, object]] = []

    def endpoint(**kwargs: object) -> pd.DataFrame:
        calls.append(kwargs)
        return raw.copy()

    monkeypatch.setattr(akshare, "stock_zh_a_hist_min_em", endpoint)
    data = load_arena_data(
        "akshare:600036;interval=5m;start=2024-04-01;end=2024-04-01", LabHome(tmp_path)
    )
    assert calls and data.intraday is not None and data.intraday.freq == "5min"
    assert data.daily.market == "cn" and data.daily.n_bars == 1
    bars = data.minute_bars(date(2024, 4, 1))
    assert bars is not None and bars.n_bars == len(raw)
    np.testing.assert_array_equal(bars.close[:, 0], raw["收盘"].to_numpy(dtype=float))
    assert data.daily.open[0, 0] == raw["开盘"].iloc[0]
    assert data.daily.close[0, 0] == raw["收盘"].iloc[-1]
    assert data.daily.high[0, 0] == raw["最高"].max() and data.daily.low[0, 0] == raw["最低"].min()
