"""Local CSV/Parquet bar files: column detection, time stamps, folders, non-bar files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import DataSpecError
from simulators.calendars import infer_frequency
from simulators.providers.files import load_path, parse_times, read_bar_file

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "files"


def test_load_path_folder_reads_csv_and_parquet_and_skips_factor_file() -> None:
    load = load_path(FILES / "us_daily", market="us")
    assert sorted(load.frames) == ["AAPL", "MSFT"]
    assert "AAPL_factor_file.csv" in load.skipped
    assert load.freq == "1D"
    raw = pd.read_csv(FILES / "us_daily" / "AAPL.csv")
    aapl = load.frames["AAPL"]
    np.testing.assert_allclose(aapl["close"].to_numpy(), raw["close"].to_numpy())
    first = aapl.index[0]
    assert str(first.tz) == "America/New_York"
    assert (first.hour, first.minute) == (16, 0)
    assert first.date().isoformat() == raw["date"].iloc[0]


def test_load_path_parquet_with_unnamed_date_index_is_read() -> None:
    table = pd.read_parquet(FILES / "us_daily" / "MSFT.parquet")
    frames, freq = read_bar_file(FILES / "us_daily" / "MSFT.parquet", market="us")
    assert freq == "1D"
    np.testing.assert_allclose(frames["MSFT"]["high"].to_numpy(), table["High"].to_numpy())


def test_read_bar_file_factor_file_alone_raises_data_spec_error() -> None:
    with pytest.raises(DataSpecError, match="not a bar file"):
        load_path(FILES / "us_daily" / "AAPL_factor_file.csv")


def test_read_bar_file_chinese_headers_map_to_ohlcv_at_shanghai_close() -> None:
    raw = pd.read_csv(FILES / "600036_em.csv")
    frames, _ = read_bar_file(FILES / "600036_em.csv", market="cn")
    frame = frames["600036_em"]
    np.testing.assert_allclose(frame["open"].to_numpy(), raw["开盘"].to_numpy())
    np.testing.assert_allclose(frame["high"].to_numpy(), raw["最高"].to_numpy())
    np.testing.assert_allclose(frame["low"].to_numpy(), raw["最低"].to_numpy())
    np.testing.assert_allclose(frame["close"].to_numpy(), raw["收盘"].to_numpy())
    np.testing.assert_allclose(frame["volume"].to_numpy(), raw["成交量"].to_numpy())
    assert str(frame.index.tz) == "Asia/Shanghai"
    assert {(t.hour, t.minute) for t in frame.index} == {(15, 0)}


def test_read_bar_file_symbol_column_with_two_values_splits_symbols() -> None:
    frames, freq = read_bar_file(FILES / "czsc_two_symbols.csv", market="cn")
    assert sorted(frames) == ["000001.SH", "399001.SZ"]
    assert freq == "1D"
    assert all(len(frame) == 20 for frame in frames.values())
    stamp = frames["000001.SH"].index[0]
    assert (stamp.hour, str(stamp.tz)) == (15, "Asia/Shanghai")


def test_read_bar_file_open_stamped_utc_hours_shift_to_bar_close() -> None:
    raw = pd.read_csv(FILES / "BTCUSDT_1h.csv")
    frames, freq = read_bar_file(FILES / "BTCUSDT_1h.csv", market="crypto", stamp="open")
    frame = frames["BTCUSDT_1h"]
    assert freq == "1h"
    expected_first = pd.Timestamp(raw["datetime_utc"].iloc[0], tz="UTC") + pd.Timedelta(hours=1)
    assert frame.index[0] == expected_first
    # volume comes from volume_btc (units of the asset), not volume_usdt
    np.testing.assert_allclose(frame["volume"].to_numpy(), raw["volume_btc"].to_numpy())


def test_read_bar_file_datetime_utc_column_is_utc_even_for_another_market() -> None:
    frames, _ = read_bar_file(FILES / "BTCUSDT_1h.csv", market="us")
    raw = pd.read_csv(FILES / "BTCUSDT_1h.csv")
    assert frames["BTCUSDT_1h"].index[0] == pd.Timestamp(raw["datetime_utc"].iloc[0], tz="UTC")


def test_load_path_date_only_crypto_daily_closes_at_next_utc_midnight(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "open": [1.0, 1.1, 1.2],
            "high": [1.2, 1.3, 1.4],
            "low": [0.9, 1.0, 1.1],
            "close": [1.1, 1.2, 1.3],
            "volume": [10, 11, 12],
        }
    )
    table.to_csv(tmp_path / "ETH.csv", index=False)
    load = load_path(tmp_path / "ETH.csv", market="crypto")
    assert load.frames["ETH"].index[0] == pd.Timestamp("2024-01-02 00:00", tz="UTC")


def test_load_path_folder_of_mixed_frequencies_raises_unless_freq_given(tmp_path: Path) -> None:
    for name in ("BTCUSDT_1h.csv", "600036_em.csv"):
        (tmp_path / name).write_bytes((FILES / name).read_bytes())
    with pytest.raises(DataSpecError, match="different bar frequencies"):
        load_path(tmp_path)
    load = load_path(tmp_path, freq="1h")
    assert list(load.frames) == ["BTCUSDT_1h"]
    assert "600036_em.csv" in load.skipped


def test_load_path_missing_path_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataSpecError, match=r"nope\.csv"):
        load_path(tmp_path / "nope.csv")


def test_parse_times_yyyymmdd_integers_are_dates() -> None:
    parsed = parse_times(pd.Series([20240102, 20240103]), "x")
    assert list(parsed) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]


def test_parse_times_epoch_milliseconds_are_utc() -> None:
    parsed = parse_times(pd.Series([1_704_153_600_000]), "x")
    assert parsed[0] == pd.Timestamp("2024-01-02", tz="UTC")


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("1min", "1min"), ("5min", "5min"), ("h", "1h"), ("B", "1D"), ("W-FRI", "1W")],
)
def test_infer_frequency_regular_spacing_gives_bar_frequency(freq: str, expected: str) -> None:
    index = pd.date_range("2024-01-01", periods=60, freq=freq)
    # a few holes must not change the answer
    assert infer_frequency(index.delete([5, 6, 30])) == expected


def _one_symbol_csv(tmp_path: Path) -> Path:
    """The first symbol of the czsc fixture alone: a symbol column with one value."""
    table = pd.read_csv(FILES / "czsc_two_symbols.csv")
    path = tmp_path / "sh000001_czsc_daily.csv"
    table[table["symbol"] == "000001.SH"].to_csv(path, index=False)
    return path


def test_a_one_valued_symbol_column_names_the_symbol(tmp_path: Path) -> None:
    path = _one_symbol_csv(tmp_path)
    frames, _ = read_bar_file(path, market="cn")
    assert list(frames) == ["000001.SH"] and len(frames["000001.SH"]) == 20
    # symbol= names a one-symbol file whatever it holds; without a column the stem does.
    assert list(read_bar_file(path, market="cn", symbol="SSE")[0]) == ["SSE"]
    assert list(read_bar_file(FILES / "600036_em.csv", market="cn")[0]) == ["600036_em"]


def test_a_zip_archive_is_read_like_a_folder_and_one_member_like_its_file(tmp_path: Path) -> None:
    import zipfile

    two = tmp_path / "bars.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.write(FILES / "us_daily" / "AAPL.csv", "daily/AAPL.csv")
        archive.write(FILES / "us_daily" / "MSFT.parquet", "daily/MSFT.parquet")
        archive.write(FILES / "us_daily" / "AAPL_factor_file.csv", "daily/AAPL_factor_file.csv")
        archive.writestr("__MACOSX/daily/._AAPL.csv", b"junk")
    load = load_path(two, market="us")
    folder = load_path(FILES / "us_daily", market="us")
    assert sorted(load.frames) == sorted(folder.frames) == ["AAPL", "MSFT"]
    for name in folder.frames:
        pd.testing.assert_frame_equal(load.frames[name], folder.frames[name])
    assert list(load.skipped) == ["daily/AAPL_factor_file.csv"]
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w") as archive:
        archive.write(FILES / "600036_em.csv", "600036_em.csv")
    alone = load_path(one, market="cn")
    assert list(alone.frames) == ["600036_em"]
    assert list(load_path(one, market="cn", symbol="CMB").frames) == ["CMB"]
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(DataSpecError, match="cannot read the zip archive"):
        load_path(broken, market="cn")
