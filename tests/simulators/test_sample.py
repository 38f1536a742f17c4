"""The offline ``sample`` data set: real index bars shipped inside the ``arch`` package."""

from __future__ import annotations

import csv
import gzip
import importlib.util
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import DataQualityError, DataSourceUnavailable
from simulators import sample
from simulators.sample import load_sample, load_sample_frames


def test_load_sample_frames_have_sane_sorted_float_bars() -> None:
    frames = load_sample_frames()
    assert set(frames) == {"SP500", "NASDAQ"}
    for symbol, frame in frames.items():
        assert list(frame.columns) == ["open", "high", "low", "close", "volume"], symbol
        assert all(dtype == np.float64 for dtype in frame.dtypes), symbol
        index = frame.index
        assert str(index.tz) == "America/New_York"
        assert set(index.strftime("%H:%M")) == {"16:00"}
        assert index.is_monotonic_increasing and not index.has_duplicates
        assert index[0].date().isoformat() == "1999-01-04"
        assert index[-1].date().isoformat() == "2018-12-31"
        assert len(frame) > 5000
        assert set(index.day_of_week) <= {0, 1, 2, 3, 4}
        prices = frame[["open", "high", "low", "close"]]
        assert np.isfinite(frame.to_numpy()).all() and (prices > 0).all().all()
        assert (frame["low"] <= prices[["open", "close"]].min(axis=1)).all()
        assert (frame["high"] >= prices[["open", "close"]].max(axis=1)).all()
        assert (frame["volume"] >= 0).all()
        # Daily index moves: a parsing or column mix-up would show up as absurd returns.
        moves = np.abs(np.diff(np.log(frame["close"].to_numpy())))
        assert moves.max() < 0.2 and 0.005 < moves.mean() < 0.02


def test_load_sample_frames_match_the_raw_csv_close_and_ignore_adjusted_close() -> None:
    # Read the shipped file independently (plain csv, no pandas parsing shared with the loader).
    spec = importlib.util.find_spec("arch")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "data" / "sp500" / "sp500.csv.gz"
    with gzip.open(path, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    frame = load_sample_frames()["SP500"]
    assert len(frame) == len(rows)
    assert np.array_equal(frame["close"].to_numpy(), [float(row["Close"]) for row in rows])
    assert np.array_equal(frame["open"].to_numpy(), [float(row["Open"]) for row in rows])
    first_date = datetime.strptime(rows[0]["Date"], "%m/%d/%Y").date()
    assert frame.index[0].date() == first_date


def test_load_sample_panel_is_aligned_us_market_with_missing_volume_listed() -> None:
    panel = load_sample()
    assert panel.symbols == ("SP500", "NASDAQ")
    assert panel.market == "us" and panel.source == "sample" and panel.freq == "1D"
    assert panel.tradable.all()
    zero_volume = [
        f"{panel.symbols[col]}@{panel.index[row].date()}"
        for row, col in zip(*np.nonzero(panel.volume == 0), strict=True)
    ]
    assert zero_volume  # the NASDAQ file really has days with a missing (zero) volume
    assert panel.meta["missing_volume"].split(",") == zero_volume


def test_load_sample_missing_package_raises_source_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sample.SAMPLE_FILES, "SP500", ("arch_not_installed", "x.csv.gz"))
    with pytest.raises(DataSourceUnavailable, match="arch_not_installed"):
        load_sample_frames()


def test_load_sample_missing_file_raises_source_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sample.SAMPLE_FILES, "NASDAQ", ("arch", "data/nasdaq/gone.csv.gz"))
    with pytest.raises(DataSourceUnavailable, match=r"gone\.csv\.gz"):
        load_sample_frames()


def test_load_sample_bad_row_raises_naming_file_date_and_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        {
            "Date": ["1/4/1999", "1/5/1999"],
            "Open": [10.0, 11.0],
            "High": [12.0, 10.5],
            "Low": [9.0, 10.0],
            "Close": [11.0, 10.8],
            "Adj Close": [11.0, 10.8],
            "Volume": [100, 200],
        }
    ).to_csv(bad, index=False)
    monkeypatch.setattr(sample, "_sample_path", lambda package, relative: bad)
    with pytest.raises(DataQualityError) as caught:
        load_sample_frames()
    message = str(caught.value)
    assert "bad.csv" in message and "1999-01-05" in message and "high below" in message
