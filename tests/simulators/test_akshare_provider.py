"""akshare: Chinese headers, stocks vs indices, minute bars, caching, retries, offline error.

Only the akshare endpoint functions (the network) are replaced, by fakes returning frames in
exactly akshare's own format, read from the fixtures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import akshare
import numpy as np
import pandas as pd
import pytest

from alphaloop.errors import DataSourceUnavailable, DataSpecError
from alphaloop.home import LabHome
from simulators.data_spec import load_market
from simulators.providers import RetryPolicy
from simulators.providers.akshare_provider import classify_symbol

AK = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "akshare"
FAST = RetryPolicy(attempts=3, wait_initial_s=0.001, wait_max_s=0.002)


def _stock_daily() -> pd.DataFrame:
    frame = pd.read_csv(AK / "stock_zh_a_hist_600036.csv", dtype={"股票代码": str})
    frame["日期"] = pd.to_datetime(frame["日期"]).dt.date  # akshare returns date objects
    return frame


def _index_daily() -> pd.DataFrame:
    frame = pd.read_csv(AK / "stock_zh_index_daily_sh000001.csv")
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


class Fake:
    """Stands in for one akshare endpoint: fails ``failures`` times, then answers."""

    def __init__(self, frame: pd.DataFrame | None, failures: int = 0) -> None:
        self.frame = frame
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures or self.frame is None:
            raise ConnectionError("HTTPSConnectionPool: Max retries exceeded")
        return self.frame.copy()


def test_load_market_akshare_stock_daily_maps_chinese_headers_and_lots(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    fake = Fake(_stock_daily())
    monkeypatch.setattr(akshare, "stock_zh_a_hist", fake)
    panel = load_market("akshare:600036;start=2024-04-01;end=2024-04-30", home=lab_home, retry=FAST)
    raw = _stock_daily()
    assert panel.symbols == ("600036",) and panel.market == "cn" and panel.freq == "1D"
    np.testing.assert_allclose(panel.close[:, 0], raw["收盘"].to_numpy())
    np.testing.assert_allclose(panel.high[:, 0], raw["最高"].to_numpy())
    np.testing.assert_allclose(panel.volume[:, 0], raw["成交量"].to_numpy() * 100.0)
    assert panel.index[0] == pd.Timestamp("2024-04-01 15:00", tz="Asia/Shanghai")
    call = fake.calls[0]
    assert (call["symbol"], call["start_date"], call["end_date"], call["adjust"]) == (
        "600036",
        "20240401",
        "20240430",
        "qfq",
    )


def test_load_market_akshare_index_daily_is_cut_to_requested_dates(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    fake = Fake(_index_daily())
    monkeypatch.setattr(akshare, "stock_zh_index_daily", fake)
    panel = load_market(
        "akshare:sh000001;start=2024-04-03;end=2024-04-10", home=lab_home, retry=FAST
    )
    raw = _index_daily()
    inside = raw[
        (raw["date"] >= pd.Timestamp("2024-04-03").date())
        & (raw["date"] <= pd.Timestamp("2024-04-10").date())
    ]
    assert fake.calls[0] == {"symbol": "sh000001"}
    np.testing.assert_allclose(panel.close[:, 0], inside["close"].to_numpy())
    np.testing.assert_allclose(panel.volume[:, 0], inside["volume"].to_numpy())  # as delivered


def test_load_market_akshare_minute_bars_keep_end_stamps(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    raw = pd.read_csv(AK / "stock_zh_a_hist_min_em_600036_5.csv")
    fake = Fake(raw)
    monkeypatch.setattr(akshare, "stock_zh_a_hist_min_em", fake)
    panel = load_market(
        "akshare:600036;interval=5m;start=2024-04-01;end=2024-04-01", home=lab_home, retry=FAST
    )
    assert panel.freq == "5min"
    assert fake.calls[0]["period"] == "5"
    assert panel.index[0] == pd.Timestamp(raw["时间"].iloc[0], tz="Asia/Shanghai")
    assert panel.index[-1] == pd.Timestamp("2024-04-01 15:00", tz="Asia/Shanghai")
    np.testing.assert_allclose(panel.open[:, 0], raw["开盘"].to_numpy())


def test_load_market_akshare_second_call_is_served_from_cache(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    fake = Fake(_stock_daily())
    monkeypatch.setattr(akshare, "stock_zh_a_hist", fake)
    spec = "akshare:600036;start=2024-04-01;end=2024-04-30"
    first = load_market(spec, home=lab_home, retry=FAST)
    second = load_market(spec, home=lab_home, retry=FAST)
    assert len(fake.calls) == 1 and first.data_hash() == second.data_hash()


def test_load_market_akshare_transient_errors_are_retried(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    fake = Fake(_stock_daily(), failures=2)
    monkeypatch.setattr(akshare, "stock_zh_a_hist", fake)
    panel = load_market("akshare:600036;end=2024-04-30", home=lab_home, retry=FAST)
    assert len(fake.calls) == 3 and panel.n_bars == len(_stock_daily())


def test_load_market_akshare_offline_without_cache_raises_one_error_naming_symbols(
    monkeypatch: pytest.MonkeyPatch, lab_home: LabHome
) -> None:
    stock, index = Fake(None), Fake(None)
    monkeypatch.setattr(akshare, "stock_zh_a_hist", stock)
    monkeypatch.setattr(akshare, "stock_zh_index_daily", index)
    with pytest.raises(DataSourceUnavailable) as caught:
        load_market("akshare:600036,000002,sh000001", home=lab_home, retry=FAST)
    message = str(caught.value)
    assert "akshare" in message
    assert all(symbol in message for symbol in ("600036", "000002", "sh000001"))
    assert len(stock.calls) == 2 * FAST.attempts and len(index.calls) == FAST.attempts
    assert not list(lab_home.cache.glob("akshare/*.parquet"))


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("600036", ("stock", "600036")),
        ("sh600036", ("stock", "600036")),
        ("600036.SH", ("stock", "600036")),
        ("sh000001", ("index", "sh000001")),
        ("SZ399001", ("index", "sz399001")),
    ],
)
def test_classify_symbol_codes_and_prefixed_indices(symbol: str, expected: tuple[str, str]) -> None:
    assert classify_symbol(symbol) == expected


def test_classify_symbol_non_a_share_code_raises() -> None:
    with pytest.raises(DataSpecError, match="AAPL"):
        classify_symbol("AAPL")
