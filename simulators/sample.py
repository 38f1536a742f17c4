"""``--data sample``: real daily index bars that ship inside the installed ``arch`` package.

The ``arch`` package carries two daily OHLCV files from Yahoo Finance, 1999-01-04 to
2018-12-31 (5031 bars each, the same dates): the S&P 500 index (``arch/data/sp500``) and the
NASDAQ Composite (``arch/data/nasdaq``). They are read straight from the package's CSV files,
so this works offline. What the files really contain, and what is done about it:

* Columns ``Date, Open, High, Low, Close, Adj Close, Volume``. ``Adj Close`` equals ``Close``
  on every row (indices pay no dividends into their price), so the raw OHLC is used and
  ``Adj Close`` is dropped.
* ``SP500``'s open equals the previous close on most days before 2006 (and on many in
  2011-2013): Yahoo filled the missing index open that way. Those bars are kept as they are;
  overnight gaps of this symbol are not meaningful before 2006.
* ``NASDAQ`` has a volume of 0 on 2015-05-12 and 2018-01-09 although its prices moved: the
  volume is missing, not zero. Those bars keep their prices and stay tradable; their volume
  is left at 0 (nothing is invented) and listed in ``Panel.meta["missing_volume"]``.
* Volume is the index's aggregate share volume (float64 here); an index itself is not a
  tradable instrument, so treat these as a benchmark or as stand-ins for index funds.
* Timestamps are bar closes: 16:00 America/New_York on each trading date.

Every row is also checked (finite positive prices, ``low <= min(open, close)``,
``max(open, close) <= high``, non-negative volume, sorted unique dates); a failure raises
:class:`~alphaloop.errors.DataQualityError` naming the file, the date and the problem.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from alphaloop.errors import DataQualityError, DataSourceUnavailable
from simulators.bars import FIELDS, Panel

__all__ = ["SAMPLE_FILES", "load_sample", "load_sample_frames"]

# Symbol -> (installed package, file inside it). The files are located without importing
# the package: importing ``arch`` costs seconds and is not needed to read two CSV files.
SAMPLE_FILES: dict[str, tuple[str, str]] = {
    "SP500": ("arch", "data/sp500/sp500.csv.gz"),
    "NASDAQ": ("arch", "data/nasdaq/nasdaq.csv.gz"),
}
_COLUMNS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
_CLOSE_TIME = pd.Timedelta(hours=16)
_TIMEZONE = "America/New_York"


def _sample_path(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DataSourceUnavailable(
            f"sample data: the package {package!r} is not installed (pip install arch)"
        )
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise DataSourceUnavailable(
            f"sample data: file {path} is missing from the installed {package!r} package"
        )
    return path


def _check(frame: pd.DataFrame, where: Path) -> None:
    problems = {
        "missing or non-numeric value": frame.isna().any(axis=1),
        "non-positive price": (frame[["open", "high", "low", "close"]] <= 0).any(axis=1),
        "low above min(open, close)": frame["low"] > frame[["open", "close"]].min(axis=1),
        "high below max(open, close)": frame["high"] < frame[["open", "close"]].max(axis=1),
        "negative volume": frame["volume"] < 0,
    }
    for problem, mask in problems.items():
        if bool(mask.any()):
            first = frame.index[np.flatnonzero(mask.to_numpy())[0]]
            raise DataQualityError(
                f"sample data {where}: {problem} on {first.date()} ({int(mask.sum())} rows)"
            )
    if frame.index.has_duplicates:
        first = frame.index[frame.index.duplicated()][0]
        raise DataQualityError(f"sample data {where}: duplicated date {first.date()}")


def _read(symbol: str) -> pd.DataFrame:
    path = _sample_path(*SAMPLE_FILES[symbol])
    raw = pd.read_csv(path)
    missing = [name for name in ("Date", *_COLUMNS) if name not in raw.columns]
    if missing:
        raise DataQualityError(f"sample data {path}: missing columns {missing}")
    dates = pd.to_datetime(raw["Date"], format="%m/%d/%Y")
    frame = raw[list(_COLUMNS)].rename(columns=_COLUMNS).apply(pd.to_numeric, errors="coerce")
    frame = frame.astype(np.float64)
    stamps = pd.DatetimeIndex(dates + _CLOSE_TIME).as_unit("ns").tz_localize(_TIMEZONE)
    frame.index = stamps
    frame.index.name = "timestamp"
    frame = frame.sort_index()
    _check(frame, path)
    return frame[list(FIELDS)]


def load_sample_frames() -> dict[str, pd.DataFrame]:
    """Return ``{"SP500": frame, "NASDAQ": frame}`` of real daily bars shipped with ``arch``.

    Each frame has a tz-aware bar-close index (16:00 America/New_York), sorted, and float64
    columns ``open, high, low, close, volume``. See the module docstring for what the files
    contain and how their flaws are handled.

    Raises
    ------
    DataSourceUnavailable
        If the ``arch`` package or its data files are not installed.
    DataQualityError
        If a file has a bad row (naming the file, the date and the problem).
    """
    return {symbol: _read(symbol) for symbol in SAMPLE_FILES}


def load_sample() -> Panel:
    """Return the sample bars as one aligned daily :class:`Panel`.

    The panel's market is ``us`` and its source ``sample``.

    ``Panel.meta["missing_volume"]`` lists ``SYMBOL@YYYY-MM-DD`` bars whose file volume is 0
    although the price traded (a missing value, kept at 0).
    """
    frames = load_sample_frames()
    panel = Panel.from_frames(frames, freq="1D", market="us", source="sample")
    zero = panel.volume == 0
    missing = [
        f"{panel.symbols[col]}@{panel.index[row].date()}"
        for row, col in zip(*np.nonzero(zero & panel.tradable), strict=True)
    ]
    panel.meta.update(
        {
            "provider": "arch.data (Yahoo Finance daily index bars)",
            "missing_volume": ",".join(missing),
        }
    )
    return panel
