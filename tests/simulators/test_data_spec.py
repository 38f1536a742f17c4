"""``--data SPEC``: parsing, market inference, and loading every kind into a Panel."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from alphaloop.errors import ConfigError, DataQualityError, DataSpecError, DataWarning
from simulators.data_spec import (
    DataConfig,
    infer_market,
    load_data_config,
    load_market,
    load_market_with_report,
    parse_data_spec,
)
from simulators.validation import QualityPolicy

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "files"


def test_parse_data_spec_none_defaults_to_synthetic() -> None:
    for spec in (None, "", "  "):
        parsed = parse_data_spec(spec)
        assert parsed.kind == "synthetic" and parsed.options == {}


def test_parse_data_spec_synthetic_options_are_key_values() -> None:
    parsed = parse_data_spec("synthetic:seed=7,assets=5")
    assert parsed.kind == "synthetic" and parsed.options == {"seed": "7", "assets": "5"}


def test_parse_data_spec_yfinance_symbols_and_options() -> None:
    parsed = parse_data_spec("yfinance:aapl, MSFT ,BTC-USD;start=2020-01-01;interval=1h")
    assert parsed.kind == "yfinance"
    assert parsed.symbols == ("AAPL", "MSFT", "BTC-USD")
    assert parsed.options == {"start": "2020-01-01", "interval": "1h"}


def test_parse_data_spec_file_with_options_and_prefix() -> None:
    bare = parse_data_spec(f"{FILES / '600036_em.csv'};market=cn")
    prefixed = parse_data_spec(f"file:{FILES / '600036_em.csv'};market=cn")
    assert bare.kind == prefixed.kind == "file"
    assert bare.path == prefixed.path == FILES / "600036_em.csv"
    assert bare.options == prefixed.options == {"market": "cn"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "not a data spec"),
        ("yfinance:", "no symbols"),
        ("yfinance", "needs symbols"),
        ("akshare:AAPL", "not an A-share code"),
        ("yfinance:AAPL;colour=red", "unknown option.*colour.*allowed"),
        ("yfinance:AAPL;start=yesterday", "start='yesterday' is not a date"),
        ("yfinance:AAPL;start=2024-02-01;end=2024-01-01", "after end"),
        ("yfinance:AAPL;interval=3d", "interval='3d'"),
        ("akshare:600036;adjust=auto", "adjust='auto'"),
        ("yfinance:AAPL,AAPL", "twice"),
        ("missing/bars.csv", "no such file"),
        ("file:nowhere", "no such file"),
    ],
)
def test_parse_data_spec_nonsense_raises_clear_error(spec: str, message: str) -> None:
    with pytest.raises(DataSpecError, match=message):
        parse_data_spec(spec)


def test_parse_data_spec_file_bad_market_raises() -> None:
    with pytest.raises(DataSpecError, match="market='mars'"):
        parse_data_spec(f"{FILES / '600036_em.csv'};market=mars")


@pytest.mark.parametrize(
    ("spec", "market"),
    [
        ("yfinance:AAPL,MSFT", "us"),
        ("yfinance:BTC-USD,ETH-USD", "crypto"),
        ("yfinance:AAPL,BTC-USD", "us"),
        ("akshare:600036,sh000001", "cn"),
        (str(FILES / "us_daily"), "none"),
        (f"{FILES / 'us_daily'};market=us", "us"),
    ],
)
def test_data_spec_market_is_inferred_from_kind_and_symbols(spec: str, market: str) -> None:
    assert parse_data_spec(spec).market == market


def test_load_market_default_is_the_synthetic_generator_panel() -> None:
    from simulators.synthetic import SyntheticSpec, generate_daily

    expected = generate_daily(SyntheticSpec.from_options({"seed": "3", "assets": "4"}))
    panel = load_market("synthetic:seed=3,assets=4")
    assert panel.data_hash() == expected.data_hash()
    assert (
        load_market(None).data_hash() == generate_daily(SyntheticSpec.from_options({})).data_hash()
    )


def test_load_market_sample_matches_load_sample() -> None:
    from simulators.sample import load_sample

    panel, report = load_market_with_report("sample")
    assert report.ok
    assert panel.symbols == load_sample().symbols


def test_load_market_folder_builds_aligned_panel_with_skipped_file_noted() -> None:
    panel, report = load_market_with_report(f"{FILES / 'us_daily'};market=us")
    assert panel.symbols == ("AAPL", "MSFT") and panel.market == "us"
    assert panel.tradable.all()
    assert "skipped_file" in report.kinds("AAPL_factor_file.csv")
    assert report.ok


def test_load_market_bad_file_under_raise_policy_raises_data_quality_error() -> None:
    with pytest.raises(DataQualityError, match="defects: non_positive"):
        load_market(str(FILES / "defects.csv"), policy=QualityPolicy(non_positive="raise"))


def test_load_market_bad_file_under_repair_policy_gives_clean_panel() -> None:
    policy = QualityPolicy(non_positive="repair", zero_volume="repair")
    panel, report = load_market_with_report(str(FILES / "defects.csv"), policy=policy)
    assert report.ok and report.issues
    assert np.all(panel.low <= np.minimum(panel.open, panel.close))
    assert np.all(panel.close > 0)


def test_load_data_config_yaml_matches_model_defaults() -> None:
    # The packaged data.yaml documents the defaults; it must not drift from the model.
    assert load_data_config() == DataConfig()


def test_load_data_config_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("quality:\n  jump: explode\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.yaml.*quality.jump"):
        load_data_config(path)


@pytest.mark.parametrize(
    ("symbols", "market"),
    [
        (("sh600000",), "cn"),
        (("sz300059_history",), "cn"),
        (("600000.SH", "000001.SZ"), "cn"),
        (("bj430047",), "cn"),
        (("BTC-USD",), "crypto"),
        (("BTCUSDT_1h", "Binance_ETHUSDT_d_clean"), "crypto"),
        (("600036",), None),  # six digits alone: no exchange
        (("600036_em",), None),
        (("AAPL", "IBM_daily_unadjusted"), None),
        (("AUDUSD",), None),  # a currency pair, not crypto
        (("sh600000", "AAPL"), None),  # mixed: no one market
    ],
)
def test_infer_market_from_obvious_symbols(symbols, market) -> None:
    assert infer_market(symbols) == market


def test_an_a_share_file_gets_the_cn_market_and_its_local_clock(tmp_path: Path) -> None:
    path = tmp_path / "sz300059_history.csv"
    path.write_bytes((FILES / "600036_em.csv").read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no default-market warning
        panel, report = load_market_with_report(str(path))
    assert panel.market == "cn" and str(panel.index.tz) == "Asia/Shanghai"
    (note,) = [i for i in report.issues if i.kind == "market_inferred"]
    assert "market=cn" in note.detail and "sz300059_history" in note.detail
    # The control: an explicit market= is kept and nothing is inferred.
    panel, report = load_market_with_report(f"{path};market=us")
    assert panel.market == "us" and not [i for i in report.issues if i.kind.startswith("market")]


def test_a_file_whose_symbols_name_no_market_warns_of_the_default(tmp_path: Path) -> None:
    spec = str(FILES / "us_daily")
    with pytest.warns(DataWarning, match="market=none .* add ;market=cn, ;market=us"):
        panel, report = load_market_with_report(spec)
    assert panel.market == "none"
    assert [i.kind for i in report.issues if i.kind.startswith("market")] == ["market_default"]
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_bytes((FILES / "BTCUSDT_1h.csv").read_bytes())
    crypto = load_market(f"{path};stamp=open")
    assert crypto.market == "crypto"
