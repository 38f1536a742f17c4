"""yfinance: parsing download() shapes, caching, retries and the offline error.

The only thing replaced is ``yfinance.download`` (the network), by a fake returning frames
in exactly yfinance's own shapes, read from the fixtures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yfinance

from alphaloop.errors import DataQualityError, DataSourceUnavailable
from alphaloop.home import LabHome
from simulators.data_spec import load_market, load_market_with_report
from simulators.providers import RetryPolicy
from simulators.providers.cache import ParquetCache
from simulators.providers.yfinance_provider import split_download

YF = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "yfinance"
FAST = RetryPolicy(attempts=3, wait_initial_s=0.001, wait_max_s=0.002)


def _download_frame(name: str) -> pd.DataFrame:
    frame = pd.read_csv(YF / name, header=[0, 1], index_col=0, parse_dates=True)
    frame.index.name = "Date"
    return frame


class FakeDownload:
    """Stands in for ``yfinance.download``: fails ``failures`` times, then answers."""

    def __init__(self, frame: pd.DataFrame | None, failures: int = 0) -> None:
        self.frame = frame
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def __call__(self, tickers: list[str], **kwargs: Any) -> pd.DataFrame:
        self.calls.append({"tickers": list(tickers), **kwargs})
        if len(self.calls) <= self.failures or self.frame is None:
            raise ConnectionError("Failed to establish a new connection")
        return self.frame.copy()


@pytest.fixture
def aapl_msft(monkeypatch: pytest.MonkeyPatch) -> FakeDownload:
    fake = FakeDownload(_download_frame("download_AAPL_MSFT_1d.csv"))
    monkeypatch.setattr(yfinance, "download", fake)
    return fake


SPEC = "yfinance:AAPL,MSFT;start=2024-01-02;end=2024-01-15"


def test_load_market_yfinance_multi_ticker_parses_prices_at_new_york_close(
    aapl_msft: FakeDownload, lab_home: LabHome
) -> None:
    panel = load_market(SPEC, home=lab_home, retry=FAST)
    raw = _download_frame("download_AAPL_MSFT_1d.csv")
    assert panel.symbols == ("AAPL", "MSFT") and panel.market == "us" and panel.freq == "1D"
    np.testing.assert_allclose(panel.close[:, 1], raw[("Close", "MSFT")].to_numpy())
    np.testing.assert_allclose(panel.low[:, 0], raw[("Low", "AAPL")].to_numpy())
    assert panel.index[0] == pd.Timestamp("2024-01-02 16:00", tz="America/New_York")
    # end is inclusive for the user, exclusive for Yahoo
    assert aapl_msft.calls[0]["end"] == "2024-01-16"
    assert aapl_msft.calls[0]["auto_adjust"] is True


def test_load_market_yfinance_crypto_single_ticker_is_crypto_market(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    monkeypatch.setattr(
        yfinance, "download", FakeDownload(_download_frame("download_BTC-USD_1d.csv"))
    )
    panel = load_market("yfinance:BTC-USD", home=lab_home, retry=FAST)
    assert panel.market == "crypto"
    # a daily crypto bar of date D closes at the end of that UTC day
    assert panel.index[0] == pd.Timestamp("2024-01-02 00:00", tz="UTC")


def test_split_download_flat_and_ticker_first_shapes_match_column_first() -> None:
    multi = _download_frame("download_AAPL_MSFT_1d.csv")
    by_ticker = multi.swaplevel(0, 1, axis=1)
    flat = multi.xs("AAPL", axis=1, level=1)
    expected = split_download(multi, ["AAPL", "MSFT"])
    pd.testing.assert_frame_equal(
        split_download(by_ticker, ["AAPL", "MSFT"])["AAPL"][list(flat.columns)],
        expected["AAPL"][list(flat.columns)],
    )
    pd.testing.assert_frame_equal(split_download(flat, ["AAPL"])["AAPL"], flat)


def test_load_market_yfinance_second_call_is_served_from_cache(
    aapl_msft: FakeDownload, lab_home: LabHome
) -> None:
    first = load_market(SPEC, home=lab_home, retry=FAST)
    second = load_market(SPEC, home=lab_home, retry=FAST)
    assert len(aapl_msft.calls) == 1
    assert second.data_hash() == first.data_hash()
    assert len(list((lab_home.cache / "yfinance").glob("*.parquet"))) == 2


def test_load_market_yfinance_transient_errors_are_retried(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    fake = FakeDownload(_download_frame("download_AAPL_MSFT_1d.csv"), failures=2)
    monkeypatch.setattr(yfinance, "download", fake)
    panel = load_market(SPEC, home=lab_home, retry=FAST)
    assert len(fake.calls) == 3 and panel.n_assets == 2


def test_load_market_yfinance_offline_without_cache_raises_one_error_naming_symbols(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    fake = FakeDownload(None)
    monkeypatch.setattr(yfinance, "download", fake)
    with pytest.raises(DataSourceUnavailable) as caught:
        load_market(SPEC, home=lab_home, retry=FAST)
    message = str(caught.value)
    assert "yfinance" in message and "AAPL" in message and "MSFT" in message
    assert len(fake.calls) == FAST.attempts


def test_load_market_yfinance_all_nan_ticker_counts_as_failure(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    frame = _download_frame("download_AAPL_MSFT_1d.csv").astype(float)
    frame.loc[:, (slice(None), "MSFT")] = np.nan  # how yfinance reports a failed ticker
    fake = FakeDownload(frame)
    monkeypatch.setattr(yfinance, "download", fake)
    with pytest.raises(DataSourceUnavailable, match="MSFT"):
        load_market(SPEC, home=lab_home, retry=FAST)
    # AAPL came back on the first call; only MSFT was asked for again
    assert [call["tickers"] for call in fake.calls[1:]] == [["MSFT"]] * (FAST.attempts - 1)


def test_load_market_yfinance_bad_download_does_not_overwrite_cache(
    monkeypatch: pytest.MonkeyPatch, aapl_msft: FakeDownload, lab_home: LabHome
) -> None:
    load_market(SPEC, home=lab_home, retry=FAST)
    files = sorted((lab_home.cache / "yfinance").glob("*.parquet"))
    before = {path: path.read_bytes() for path in files}
    bad = _download_frame("download_AAPL_MSFT_1d.csv")
    bad.iloc[3, bad.columns.get_loc(("Open", "AAPL"))] = -5.0
    monkeypatch.setattr(yfinance, "download", FakeDownload(bad))
    with pytest.raises(DataQualityError, match="AAPL"):
        load_market(SPEC + ";refresh=1", home=lab_home, retry=FAST)
    assert {path: path.read_bytes() for path in files} == before


def test_load_market_yfinance_open_end_failure_serves_stale_cache_with_note(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    cache = ParquetCache(lab_home.cache, "yfinance")
    stale = cache.path_for("AAPL", "1d", "adj", "-", "2024-01-20")
    table = split_download(_download_frame("download_AAPL_MSFT_1d.csv"), ["AAPL"])["AAPL"]
    frame = table.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
    frame.index = (frame.index + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    cache.write(stale, frame.astype(float))
    monkeypatch.setattr(yfinance, "download", FakeDownload(None))
    panel, report = load_market_with_report("yfinance:AAPL", home=lab_home, retry=FAST)
    assert panel.symbols == ("AAPL",) and panel.n_bars == len(frame)
    assert "stale_cache" in report.kinds("AAPL")
