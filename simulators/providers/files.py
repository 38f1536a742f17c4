"""Bars from local CSV and Parquet files (one file, or a folder of them).

What is understood
------------------
* Column names, case-insensitively: a time column named ``date``, ``datetime``, ``dt``,
  ``timestamp``, ``time``, ``datetime_utc``, ``trade_date``, ``日期`` or ``时间`` (or an
  unnamed date index, e.g. a Parquet file indexed by date); ``open/high/low/close`` or
  ``开盘/最高/最低/收盘``; volume from ``volume``, ``vol``, ``成交量`` or the first
  ``volume_*`` column (``volume_btc`` before ``volume_usdt``: units of the asset).
* Time values: strings, datetimes, ``YYYYMMDD`` integers, or epoch seconds/milliseconds
  (taken as UTC).
* A ``symbol``/``code``/``ticker`` column names the file's symbols: several values split the
  file into several symbols named by those values, one value names its one symbol (a czsc
  export ``sh000001_czsc_daily.csv`` holding ``000001.SH`` is ``000001.SH``); without such a
  column the symbol is the file stem. ``symbol=`` names a one-symbol file whatever it holds.

Time zones and stamps
---------------------
Naive timestamps are exchange-local time of the market (``cn`` Asia/Shanghai, ``us``
America/New_York, UTC for ``crypto`` and ``none``), except in a column named
``datetime_utc`` or when ``tz=`` is given. Date-only daily bars are stamped at the bar close
(:func:`simulators.calendars.daily_close_stamps`). Intraday stamps are taken as bar *close*;
pass ``stamp=open`` when the source stamps bars by their open (Binance, CryptoDataDownload,
yfinance intraday) and one bar period is added.

Files that are not bar files (no OHLC columns, e.g. QuantConnect factor files) are skipped
inside a folder (and listed in the report) and rejected when named on their own. A ``.zip``
archive is read like a folder of its bar files (one bar file inside: like that file).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import DataSpecError
from simulators.bars import FIELDS
from simulators.calendars import (
    FREQUENCY_STEPS,
    daily_close_stamps,
    infer_frequency,
    is_daily_or_slower,
    is_date_only,
    market_timezone,
)

BAR_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pq")

TIME_NAMES: tuple[str, ...] = (
    "datetime_utc",
    "datetime",
    "timestamp",
    "date",
    "dt",
    "time",
    "trade_date",
    "trade_time",
    "日期",
    "时间",
)
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "open": ("open", "开盘", "开盘价"),
    "high": ("high", "最高", "最高价"),
    "low": ("low", "最低", "最低价"),
    "close": ("close", "收盘", "收盘价"),
    "volume": ("volume", "vol", "成交量"),
}
SYMBOL_NAMES: tuple[str, ...] = ("symbol", "ticker", "code", "ts_code", "股票代码", "代码")


@dataclass(slots=True)
class FileLoad:
    """Raw frames read from a path, their common frequency, and the files skipped."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    freq: str = "1D"
    skipped: dict[str, str] = field(default_factory=dict)


class NotABarFile(DataSpecError):
    """A file was read but holds no OHLC bars (e.g. a factor file)."""


# ---------------------------------------------------------------------- columns and times
def _lookup(columns: Iterable[object]) -> dict[str, object]:
    return {str(c).strip().lower(): c for c in columns}


def find_columns(table: pd.DataFrame, where: str) -> dict[str, object]:
    """Map ``open..volume`` (and ``time``, ``symbol`` when present) to ``table``'s columns.

    Raises
    ------
    NotABarFile
        When open, high, low or close cannot be found.
    """
    names = _lookup(table.columns)
    found: dict[str, object] = {}
    for target, candidates in FIELD_NAMES.items():
        for candidate in candidates:
            if candidate in names:
                found[target] = names[candidate]
                break
    if "volume" not in found:
        for lowered, original in names.items():
            if lowered.startswith("volume"):
                found["volume"] = original
                break
    missing = [name for name in FIELDS[:4] if name not in found]
    if missing:
        shown = ", ".join(str(c) for c in list(table.columns)[:8])
        raise NotABarFile(
            f"{where}: not a bar file: no {'/'.join(missing)} column "
            f"(columns: {shown or 'none'}); expected open/high/low/close or 开盘/最高/最低/收盘"
        )
    for candidate in TIME_NAMES:
        if candidate in names:
            found["time"] = names[candidate]
            break
    for candidate in SYMBOL_NAMES:
        if candidate in names:
            found["symbol"] = names[candidate]
            break
    return found


def parse_times(values: pd.Series | pd.Index, where: str) -> pd.DatetimeIndex:
    """Parse a column of timestamps; integers are ``YYYYMMDD`` or epoch seconds/ms (UTC)."""
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        return pd.DatetimeIndex(series)
    if pd.api.types.is_integer_dtype(series) or (
        pd.api.types.is_float_dtype(series) and bool(np.all(np.mod(series.dropna(), 1) == 0))
    ):
        numbers = series.astype("int64")
        if numbers.between(1800_01_01, 2200_12_31).all():
            return pd.DatetimeIndex(pd.to_datetime(numbers.astype(str), format="%Y%m%d"))
        unit = "ms" if numbers.abs().max() > 10**11 else "s"
        return pd.DatetimeIndex(pd.to_datetime(numbers, unit=unit, utc=True))
    try:
        parsed = pd.to_datetime(series.astype(str).str.strip(), format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataSpecError(f"{where}: cannot read timestamps: {exc}") from None
    return pd.DatetimeIndex(parsed)


def stamp_bars(
    times: pd.DatetimeIndex,
    *,
    market: str,
    tz: str | None,
    stamp: str,
    freq: str | None = None,
) -> tuple[pd.DatetimeIndex, str]:
    """Turn parsed times into tz-aware bar-close stamps; return them and the frequency.

    Parameters
    ----------
    times:
        Naive (exchange-local, or ``tz``) or tz-aware timestamps.
    market:
        Chooses the exchange zone and daily close time.
    tz:
        Zone of naive timestamps when not the market's own (e.g. ``UTC``).
    stamp:
        ``close`` (stamps are bar closes) or ``open`` (add one bar period).
    freq:
        Known frequency, or None to infer it.
    """
    freq = freq or infer_frequency(times)
    zone = market_timezone(market)
    naive = times.tz_convert(tz or zone).tz_localize(None) if times.tz is not None else times
    if is_daily_or_slower(freq) and is_date_only(naive):
        if times.tz is not None and tz is None:
            # A tz-aware midnight (e.g. yfinance crypto) is a date in that zone, not local.
            naive = times.tz_localize(None)
        return daily_close_stamps(naive, market).as_unit("ns"), freq
    aware = times if times.tz is not None else times.tz_localize(tz or zone, ambiguous="NaT")
    aware = aware.tz_convert(zone)
    if stamp == "open":
        aware = aware + FREQUENCY_STEPS[freq]
    return pd.DatetimeIndex(aware).as_unit("ns"), freq


def frame_from_table(
    table: pd.DataFrame,
    *,
    where: str,
    market: str,
    tz: str | None = None,
    stamp: str = "close",
    freq: str | None = None,
) -> tuple[dict[str | None, pd.DataFrame], str]:
    """Normalise one table (any supported column names) into raw frames per symbol.

    Returns a mapping ``{symbol-or-None: frame}`` (None when the table has no symbol column
    or one symbol only: the caller names it) and the bar frequency.
    """
    columns = find_columns(table, where)
    if "time" not in columns:
        index_name = table.index.name
        unnamed = _lookup(table.columns)
        # A CSV written from a date-indexed frame has its dates in an unnamed first column.
        for candidate in ("unnamed: 0", "index", ""):
            if candidate in unnamed:
                columns["time"] = unnamed[candidate]
                break
    if "time" not in columns:
        if not isinstance(table.index, pd.RangeIndex):
            table = table.rename_axis("time").reset_index()
            columns["time"] = "time"
        else:
            raise NotABarFile(
                f"{where}: no time column (expected one of {', '.join(TIME_NAMES)}"
                f"{'' if index_name is None else f'; index is {index_name!r}'})"
            )
    times = parse_times(table[columns["time"]], where)
    if columns["time"] == "datetime_utc" or str(columns["time"]).lower() == "datetime_utc":
        tz = tz or "UTC"
    stamps, freq = stamp_bars(times, market=market, tz=tz, stamp=stamp, freq=freq)
    data = {}
    for name in FIELDS:
        if name in columns:
            data[name] = pd.to_numeric(table[columns[name]], errors="coerce").to_numpy(float)
        else:
            data[name] = np.full(len(table), np.nan)
    frame = pd.DataFrame(data, index=stamps)
    frame.index.name = "timestamp"
    if "symbol" in columns:
        labels = table[columns["symbol"]].astype(str).to_numpy()
        unique = [label for label in dict.fromkeys(labels) if label.strip() and label != "nan"]
        if len(unique) > 1:
            split: dict[str | None, pd.DataFrame] = {
                label: frame[labels == label] for label in unique
            }
            return split, freq
        if len(unique) == 1 and len(set(labels)) == 1:
            return {unique[0].strip(): frame}, freq
    return {None: frame}, freq


# ---------------------------------------------------------------------- files and folders
def read_table(path: Path | str, content: bytes | None = None) -> pd.DataFrame:
    """Read one CSV (UTF-8, else GBK, the usual encoding of Chinese exports) or Parquet file;
    with ``content``, those bytes under the name ``path`` (a member of a ``.zip``)."""
    where = str(path)
    source: Any
    if where.lower().endswith((".parquet", ".pq")):
        try:
            return pd.read_parquet(path if content is None else io.BytesIO(content))
        except (OSError, ValueError) as exc:
            raise DataSpecError(f"{where}: cannot read Parquet: {exc}") from None
    for encoding in ("utf-8-sig", "gbk"):
        try:
            source = path if content is None else io.BytesIO(content)
            return pd.read_csv(source, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise NotABarFile(f"{where}: cannot read CSV: {exc}") from None
    raise DataSpecError(f"{where}: cannot decode the file as UTF-8 or GBK")


def _zip_members(path: Path) -> list[tuple[str, bytes]]:
    """Return ``(name, bytes)`` of every bar file inside the ``.zip`` at ``path``, by name."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [
                info for info in archive.infolist()
                if not info.is_dir() and not info.filename.startswith("__MACOSX/")
                and info.filename.lower().endswith(BAR_SUFFIXES)
            ]  # fmt: skip
            return sorted((info.filename, archive.read(info)) for info in infos)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataSpecError(f"{path}: cannot read the zip archive: {exc}") from None


def read_bar_file(
    path: Path,
    *,
    market: str,
    tz: str | None = None,
    stamp: str = "close",
    symbol: str | None = None,
) -> tuple[dict[str, pd.DataFrame], str]:
    """Read one bar file; return raw frames per symbol and the frequency.

    Raises
    ------
    NotABarFile
        When the file holds no OHLC bars.
    DataSpecError
        When it cannot be read or its timestamps cannot be parsed.
    """
    return _bar_table(read_table(path), str(path), market=market, tz=tz, stamp=stamp,
                      symbol=symbol)  # fmt: skip


def _bar_table(
    table: pd.DataFrame, where: str, *, market: str, tz: str | None, stamp: str,
    symbol: str | None,
) -> tuple[dict[str, pd.DataFrame], str]:  # fmt: skip
    if table.empty:
        raise NotABarFile(f"{where}: the file holds no rows")
    parts, freq = frame_from_table(table, where=where, market=market, tz=tz, stamp=stamp)
    if symbol is not None and len(parts) == 1:
        return {symbol: next(iter(parts.values()))}, freq
    default = symbol_from_path(Path(where))
    return {default if key is None else key: frame for key, frame in parts.items()}, freq


def symbol_from_path(path: Path) -> str:
    """Return the symbol a file stands for: its name without the bar-file suffix."""
    name = path.name
    for suffix in BAR_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def load_path(
    path: Path,
    *,
    market: str = "none",
    tz: str | None = None,
    stamp: str = "close",
    freq: str | None = None,
    symbol: str | None = None,
) -> FileLoad:
    """Load a bar file or every bar file of a folder (not recursive).

    Parameters
    ----------
    path:
        A ``.csv``/``.parquet`` file, a folder of them, or a ``.zip`` archive of them (read
        like the folder; one bar file inside is read like that file).
    market, tz, stamp:
        See :func:`stamp_bars`.
    freq:
        Keep only files of this frequency (a folder may mix hourly and daily files).
    symbol:
        Name for a single-symbol file (default: its stem).

    Raises
    ------
    DataSpecError
        Missing path, no bar file, a single file that is not a bar file, symbols defined
        twice, or files of different frequencies without ``freq=``.
    """
    if not path.exists():
        raise DataSpecError(f"{path}: no such file or folder")
    readers: list[tuple[str, Callable[[], pd.DataFrame]]]
    if path.is_file() and path.suffix.lower() == ".zip":
        members = _zip_members(path)
        if len(members) == 1:
            # One bar file in the archive: read as that file on its own.
            name, content = members[0]
            frames, found = _bar_table(
                read_table(name, content), f"{path}!{name}", market=market, tz=tz,
                stamp=stamp, symbol=symbol or symbol_from_path(Path(name)),
            )  # fmt: skip
            if freq is not None and found != freq:
                raise DataSpecError(f"{path}: bars are {found}, not the requested freq={freq}")
            return FileLoad(frames=frames, freq=found)
        readers = [(name, partial(read_table, name, content)) for name, content in members]
    elif path.is_file():
        frames, found = read_bar_file(path, market=market, tz=tz, stamp=stamp, symbol=symbol)
        if freq is not None and found != freq:
            raise DataSpecError(f"{path}: bars are {found}, not the requested freq={freq}")
        return FileLoad(frames=frames, freq=found)
    else:
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in BAR_SUFFIXES
        )
        readers = [(f.name, partial(read_table, f)) for f in files]
    load = FileLoad()
    origin: dict[str, str] = {}
    frequencies: dict[str, str] = {}
    for label, read in readers:
        where = f"{path}!{label}" if path.is_file() else str(path / label)
        try:
            frames, found = _bar_table(
                read(), where, market=market, tz=tz, stamp=stamp, symbol=None
            )
        except NotABarFile as exc:
            load.skipped[label] = str(exc)
            continue
        if freq is not None and found != freq:
            load.skipped[label] = f"{where}: bars are {found}, not freq={freq}"
            continue
        for name, frame in frames.items():
            if name in load.frames:
                raise DataSpecError(
                    f"{path}: symbol {name!r} is defined twice ({origin[name]}, {label})"
                )
            load.frames[name] = frame
            origin[name] = label
            frequencies[name] = found
    if not load.frames:
        raise DataSpecError(
            f"{path}: no bar files found (looked for {', '.join(BAR_SUFFIXES)}"
            f"{'; skipped: ' + ', '.join(load.skipped) if load.skipped else ''})"
        )
    distinct = sorted(set(frequencies.values()))
    if len(distinct) > 1:
        listing = ", ".join(f"{name}={found}" for name, found in frequencies.items())
        raise DataSpecError(
            f"{path}: files have different bar frequencies ({listing}); "
            f"add ';freq={distinct[0]}' (or another) to pick one"
        )
    load.freq = distinct[0]
    return load
