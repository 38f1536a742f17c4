"""The daily report: files, self-contained HTML, best/worst trade, score formula, Parquet."""

from __future__ import annotations

import base64
import json
import pickle
import re
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from alphaloop.home import LabHome
from reports.daily import (
    UNITS_METADATA_KEY,
    best_and_worst_trades,
    run_dir_for,
    score_account,
    write_daily_report,
    write_parquet_table,
)
from reports.daily_input import (
    GENOME_COLUMNS,
    PARQUET_COLUMNS,
    AccountDay,
    DailyReportInput,
    GenomeRow,
    ReportInputError,
    TradeRecord,
)

DAY = date(2024, 3, 25)
DAYS = [d.date() for d in pd.bdate_range(end="2024-03-25", periods=30)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DECISION = {
    "verdict": {"verdict": "reduce", "confidence": 0.62},
    "proposal": {"targets": [{"symbol": "AAA", "weight": 0.2}]},
    "objections": [
        {"kind": "volatility", "figure": 0.31, "limit": 0.25},
        {"kind": "drawdown", "figure": 0.12, "limit": 0.2},
        {"kind": "concentration", "figure": 0.2, "limit": 0.3},
    ],
    "quant": {"win_rate": 0.56, "expected_return": 0.004},
}


# The stored columns of every Parquet file of a day, ``{c}`` the currency in lower case:
# money in minor units ends ``_{c}_minor``, money in currency units and prices ``_{c}``.
STORED = {
    "orders": [
        "account", "order_id", "seq", "day", "symbol", "side", "quantity", "filled", "status",
        "reason", "filled_notional_{c}_minor", "commission_{c}_minor", "taxes_{c}_minor",
        "decision_id", "genomes",
    ],
    "fills": [
        "fill_id", "account", "seq", "order_id", "day", "at", "symbol", "side", "quantity",
        "price_{c}", "notional_{c}_minor", "commission_{c}_minor", "taxes_{c}_minor", "remaining",
        "genomes",
    ],
    "equity": [
        "account", "day", "cash_{c}_minor", "market_value_{c}_minor", "equity_{c}_minor",
        "realised_pnl_{c}_minor", "commission_paid_{c}_minor", "taxes_paid_{c}_minor",
    ],
    "decisions": ["account", "day", "decision_id", "payload"],
    "positions": [
        "account", "day", "symbol", "quantity", "sellable", "cost_basis_{c}_minor", "price_{c}",
        "value_{c}_minor", "genomes",
    ],
    "risk_events": [
        "account", "day", "seq", "at", "order_id", "rule", "reason", "value", "limit_value",
    ],
    "genomes": [
        "account", "genome_id", "source", "sleeve", "allocation_{c}", "pnl_{c}",
        "expected_pnl_{c}", "paper_return", "expected_return", "execution_cost_{c}",
        "governor_cuts_{c}", "debate_scaling_{c}", "residual_{c}", "avg_slippage_bps",
        "fill_ratio", "order_reject_count", "risk_block_count", "turnover",
    ],
}  # fmt: skip


def _stored(table: str, code: str) -> list[str]:
    return [name.format(c=code) for name in STORED[table]]


def _genome(
    account: str, genome_id: str, pnl: float, expected: float, **overrides: Any
) -> GenomeRow:
    values: dict[str, Any] = {
        "account": account, "genome_id": genome_id, "source": "bootstrap:trend_ema",
        "sleeve": 0.12, "allocation": 120_000.0, "pnl": pnl, "expected_pnl": expected,
        "paper_return": pnl / 120_000.0, "expected_return": expected / 120_000.0,
        "execution_cost": -40.25, "governor_cuts": 0.0, "debate_scaling": 0.0,
        "residual": pnl - expected + 40.25, "avg_slippage_bps": 6.5, "fill_ratio": 1.0,
        "order_reject_count": 0, "risk_block_count": 0, "turnover": 0.2,
    }  # fmt: skip
    values.update(overrides)
    return GenomeRow(**values)


GENOMES = (
    _genome("aggressive", "321bf349846b7b67", 512.5, 700.0, governor_cuts=-90.0,
            residual=512.5 - 700.0 + 40.25 + 90.0),
    _genome("conservative", "49bd1f124f9791b8", -80.0, -60.0),
    _genome("synthesis", "321bf349846b7b67", 210.0, 490.0, debate_scaling=-250.0,
            residual=210.0 - 490.0 + 40.25 + 250.0),
)  # fmt: skip


def _trade(account: str, symbol: str, pnl: float, **overrides: Any) -> TradeRecord:
    values: dict[str, Any] = {
        "account": account,
        "symbol": symbol,
        "side": "buy",
        "quantity": 100.0,
        "entry_time": datetime(2024, 3, 25, 14, 30, tzinfo=UTC),
        "exit_time": None,
        "entry_price": 10.0,
        "exit_price": None,
        "pnl": pnl,
        "genome_id": f"g-{symbol}",
        "decision": {},
    }
    values.update(overrides)
    return TradeRecord(**values)


def _equity(seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(1_000_000.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, len(DAYS))), index=DAYS)


def _account(
    name: str, seed: int, trades: tuple[TradeRecord, ...] = (), **overrides: Any
) -> AccountDay:
    equity = _equity(seed)
    values: dict[str, Any] = {
        "name": name,
        "equity_history": equity,
        "day_return": float(equity.iloc[-1] / equity.iloc[-2] - 1.0),
        "trades_today": len(trades),
        "win_rate": 0.5,
        "max_drawdown": 0.05,
        "sharpe": 0.8,
        "score": 55.0,
        "positions": {"AAA": 0.1, "BBB": 0.2},
        "typical_trades": 2.0,
        "slippage_bps": 4.0,
        "twap_slippage_bps": -1.0,
        "trades": trades,
    }
    values.update(overrides)
    return AccountDay(**values)


def _frames() -> dict[str, pd.DataFrame]:
    at = pd.Timestamp("2024-03-25 14:30", tz="Asia/Shanghai")
    return {
        "orders": pd.DataFrame(
            {
                "order_id": ["o1", "o2"],
                "symbol": ["AAA", "BBB"],
                "quantity": np.array([100, 200], dtype=np.int64),
                "filled_notional": np.array([1_000_00, 2_000_00], dtype=np.int64),
                "commission": np.array([500, 500], dtype=np.int64),
            }
        ),
        "fills": pd.DataFrame(
            {
                "fill_id": ["f1"],
                "price": [10.01],
                "at": [at + pd.Timedelta(minutes=2)],
            }
        ),
        "decisions": pd.DataFrame({"decision_id": ["d1"], "payload": [DECISION]}),
        "equity": pd.DataFrame(
            {"account": ["synthesis"], "equity": [1_001_000_50]},
            index=pd.Index([DAY], name="day"),
        ),
    }


def _data(accounts: tuple[AccountDay, ...] | None = None, **overrides: Any) -> DailyReportInput:
    if accounts is None:
        accounts = (
            _account("aggressive", 1, (_trade("aggressive", "AAA", 120.0),), trades_today=9),
            _account(
                "conservative",
                2,
                (_trade("conservative", "BBB", -300.0, decision=DECISION),),
                positions={"BBB": 0.4},
            ),
            _account(
                "synthesis",
                3,
                (
                    _trade("synthesis", "CCC", 500.0, decision=DECISION),
                    _trade("synthesis", "DDD", -20.0),
                ),
            ),
        )
    values: dict[str, Any] = {
        "date": DAY,
        "accounts": accounts,
        "benchmark_history": pd.Series(np.linspace(3000.0, 3100.0, len(DAYS)), index=DAYS),
        "benchmark_return": 0.0011,
        "regime": {"label": "high_vol", "index_volatility": 0.31},
        "risk_events": ({"account": "aggressive", "rule": "max_weight", "reason": "AAA"},),
        "volatility_change": 0.4,
        "periods_per_year": 252.0,
        "genomes": GENOMES,
        **_frames(),
    }
    values.update(overrides)
    return DailyReportInput(**values)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[DailyReportInput, Any]:
    # Rendering the charts is the slow part: write the report once for the read-only tests.
    data = _data()
    return data, write_daily_report(tmp_path_factory.mktemp("run") / DAY.isoformat(), data)


# --------------------------------------------------------------------------- files
def test_write_daily_report_writes_every_file(written: tuple[DailyReportInput, Any]) -> None:
    _, paths = written
    names = sorted(path.name for path in paths.run_dir.iterdir())
    assert names == sorted(
        [
            "summary.md",
            "report.html",
            "orders.parquet",
            "fills.parquet",
            "equity.parquet",
            "decisions.parquet",
            "genomes.parquet",
        ]
    )
    for path in paths.all():
        assert path.parent == paths.run_dir
        assert path.stat().st_size > 0


def test_run_dir_for_lab_home_is_runs_date(lab_home: LabHome) -> None:
    assert run_dir_for(lab_home, DAY) == lab_home.root / "runs" / "2024-03-25"


def test_write_daily_report_again_replaces_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "day"
    write_daily_report(run_dir, _data())
    calmer = _data(regime={"label": "bull"}, volatility_change=None)
    paths = write_daily_report(run_dir, calmer)
    summary = paths.summary_md.read_text(encoding="utf-8")
    assert "Regime: bull" in summary
    assert "high_vol" not in summary
    assert not [path for path in run_dir.iterdir() if path.name.endswith(".tmp")]


# --------------------------------------------------------------------------- HTML
def test_report_html_has_no_external_resources(written: tuple[DailyReportInput, Any]) -> None:
    _, paths = written
    page = paths.report_html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page


def test_report_html_images_are_png_data_uris(written: tuple[DailyReportInput, Any]) -> None:
    _, paths = written
    page = paths.report_html.read_text(encoding="utf-8")
    sources = re.findall(r"""<img[^>]*\ssrc="([^"]*)\"""", page)
    # Equity against the benchmark, drawdowns, positions.
    assert len(sources) == 3
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_report_html_all_in_cash_has_no_positions_chart(tmp_path: Path) -> None:
    accounts = tuple(_account(name, seed, positions={}) for seed, name in enumerate("xyz"))
    page = write_daily_report(tmp_path, _data(accounts)).report_html.read_text(encoding="utf-8")
    assert page.count("<img") == 2
    assert "All in cash." in page


def test_report_markdown_and_html_show_the_same_content(
    written: tuple[DailyReportInput, Any],
) -> None:
    data, paths = written
    summary = paths.summary_md.read_text(encoding="utf-8")
    page = paths.report_html.read_text(encoding="utf-8")
    expected = [
        "benchmark",
        "+0.11%",
        "over_trading",
        "high_vol_loss",
        "concentration",
        "Execution shortfall against TWAP",
        "Tomorrow",
        "max_weight",
    ]
    for account in data.accounts:
        expected.extend([account.name, f"{account.score:.1f}", f"{account.day_return:+.2%}"])
    for text in expected:
        assert text in summary, text
        assert text in page.replace("&#x27;", "'"), text
    assert "data:image" not in summary


# --------------------------------------------------------------------------- trades
def test_best_and_worst_trades_across_accounts_picks_extremes() -> None:
    best, worst = best_and_worst_trades(_data())
    assert best is not None and worst is not None
    assert (best.account, best.symbol, best.pnl) == ("synthesis", "CCC", 500.0)
    assert (worst.account, worst.symbol, worst.pnl) == ("conservative", "BBB", -300.0)


def test_best_and_worst_trades_tie_goes_to_first_in_account_order() -> None:
    accounts = (
        _account("a", 1, (_trade("a", "X", 50.0),)),
        _account("b", 2, (_trade("b", "Y", 50.0), _trade("b", "Z", 50.0))),
    )
    best, worst = best_and_worst_trades(_data(accounts))
    assert best is not None and worst is not None
    assert (best.account, best.symbol) == ("a", "X")
    assert (worst.account, worst.symbol) == ("a", "X")


def test_best_and_worst_trades_no_trade_gives_none(tmp_path: Path) -> None:
    accounts = tuple(_account(name, seed) for seed, name in enumerate("xyz"))
    data = _data(accounts)
    assert best_and_worst_trades(data) == (None, None)
    summary = write_daily_report(tmp_path, data).summary_md.read_text(encoding="utf-8")
    assert "No trade today." in summary


def test_report_best_and_worst_trade_show_readable_trade_records(
    written: tuple[DailyReportInput, Any],
) -> None:
    _, paths = written
    summary = paths.summary_md.read_text(encoding="utf-8")
    best_part = summary.split("### Best trade", 1)[1].split("### Worst trade", 1)[0]
    worst_part = summary.split("### Worst trade", 1)[1].split("## Lessons", 1)[0]
    steps = ("| proposal |", "| objections |", "| size |", "| risk figures |",
             "| execution quality |", "| outcome |", "| lessons |")  # fmt: skip
    for part, symbol in ((best_part, "CCC"), (worst_part, "BBB")):
        assert f"| {symbol} |" in part and "Trade record:" in part
        # One row per step, in the trade record's order; no nested dump of the chain.
        positions = [part.index(step) for step in steps]
        assert positions == sorted(positions)
        assert "**verdict**" not in part


SYNTHESIS_CHAIN = {
    "account": "synthesis",
    "debate": {
        "proposal": [{"symbol": "CCC", "weight": 0.2, "genome_id": "g-CCC", "style": "trend"}],
        "objections": [
            {"topic": "volatility", "level": "high", "severity": 0.8,
             "message": "volatility 31% above 25%"},
            {"topic": "drawdown", "level": "low", "severity": 0.1, "message": "drawdown ok"},
        ],
        "quant": {"message": "trend genomes in bull", "sample_size": 44, "win_rate": 0.52,
                  "expected_return": 0.003},
        "verdict": "reduce", "confidence": 0.598, "scale": 0.5, "rule": "reduce at 0.34",
    },
    "targets": [{"symbol": "CCC", "weight": 0.1, "genome_id": "g-CCC", "style": "trend"}],
}  # fmt: skip


def test_trade_record_reads_the_debate_in_order_and_marks_low_certainty() -> None:
    from reports.daily import certainty_label, trade_record_rows

    trade = _trade("synthesis", "CCC", 500.0, decision=SYNTHESIS_CHAIN)
    data = _data(adjustments_in_force=({
        "id": "adj-20240324-synthesis-risk_budget", "account": "synthesis",
        "parameter": "risk_budget", "old_value": 0.65, "new_value": 0.4, "reason": "vol",
    },))  # fmt: skip
    rows = dict(trade_record_rows(trade, data))
    assert list(rows)[:5] == ["proposal", "objections", "quant validation", "verdict", "size"]
    assert "20.00% of equity" in rows["proposal"] and "10.00% of equity" in rows["size"]
    assert "volatility (high, severity 0.80)" in rows["objections"]
    assert "sample 44" in rows["quant validation"]
    assert rows["verdict"].startswith("reduce at confidence 0.598 [low-certainty]")
    assert "P&L +500.00" in rows["outcome"]
    assert "risk_budget 0.65 -> 0.4" in rows["adjustments in force"]
    # The control: at 0.6 and above there is no label.
    assert certainty_label(0.6) == "" and certainty_label(0.599) == "low-certainty"
    sure = {**SYNTHESIS_CHAIN, "debate": {**SYNTHESIS_CHAIN["debate"], "confidence": 0.7}}
    rows = dict(trade_record_rows(_trade("synthesis", "CCC", 1.0, decision=sure), data))
    assert "low-certainty" not in rows["verdict"]


def test_report_day_without_closed_trade_shows_no_win_rate(tmp_path: Path) -> None:
    accounts = (
        _account("aggressive", 1, win_rate=None),
        _account("conservative", 2, win_rate=0.25),
        _account("synthesis", 3, win_rate=None),
    )
    paths = write_daily_report(tmp_path / "run", _data(accounts))
    summary = paths.summary_md.read_text(encoding="utf-8")
    table = summary.split("## Accounts against the benchmark", 1)[1].split("##", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    rows = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in lines}
    assert rows["aggressive"] == "-" and rows["synthesis"] == "-"
    assert rows["conservative"] == "25.00%"  # the control: a real win rate is shown
    assert "50.00%" not in rows["aggressive"]


def test_report_lists_adjustments_in_force_and_made(tmp_path: Path) -> None:
    record = {
        "id": "adj-20240325-aggressive-max_positions", "account": "aggressive",
        "parameter": "max_positions", "old_value": 8.0, "new_value": 4.0,
        "reason": "traded more than usual", "lesson": "over_trading: x",
        "created_day": "2024-03-25", "expires_day": "2024-03-28", "reverted_at": None,
    }  # fmt: skip
    plain = write_daily_report(tmp_path / "a", _data()).summary_md.read_text(encoding="utf-8")
    assert "None: today's plan used the configured settings." in plain
    paths = write_daily_report(
        tmp_path / "b",
        _data(adjustments_in_force=(record,), adjustments_made=(record,)),
    )
    summary = paths.summary_md.read_text(encoding="utf-8")
    in_force = summary.split("## Adjustments in force today", 1)[1].split("##", 1)[0]
    assert "adj-20240325-aggressive-max_positions" in in_force and "| 4 |" in in_force
    tomorrow = summary.split("## Tomorrow's adjustments", 1)[1].split("\n## ", 1)[0]
    assert "Stored, applied from the next trading day" in tomorrow


# --------------------------------------------------------------------------- score
def test_score_account_increasing_return_strictly_increases() -> None:
    scores = [score_account(r, 1.0, 0.05, 0.5) for r in np.linspace(-0.08, 0.08, 41)]
    assert all(later > earlier for earlier, later in pairwise(scores))


def test_score_account_increasing_sharpe_strictly_increases() -> None:
    scores = [score_account(0.0, s, 0.05, 0.5) for s in np.linspace(-6.0, 6.0, 41)]
    assert all(later > earlier for earlier, later in pairwise(scores))


def test_score_account_deeper_drawdown_and_lower_win_rate_lower_score() -> None:
    assert score_account(0.0, 0.0, 0.2, 0.5) < score_account(0.0, 0.0, 0.1, 0.5)
    assert score_account(0.0, 0.0, 0.1, 0.4) < score_account(0.0, 0.0, 0.1, 0.6)


@pytest.mark.parametrize(
    "figures",
    [(1e6, 1e6, 0.0, 1.0), (-1.0, -1e6, 1.0, 0.0), (0.0, 0.0, 0.0, 0.5), (5.0, -50.0, 0.9, 1.0)],
)
def test_score_account_extreme_figures_stay_within_bounds(
    figures: tuple[float, float, float, float],
) -> None:
    assert 0.0 <= score_account(*figures) <= 100.0


def test_score_account_extremes_approach_the_bounds() -> None:
    assert score_account(1.0, 100.0, 0.0, 1.0) > 99.0
    assert score_account(-1.0, -100.0, 1.0, 0.0) < 2.0


def test_score_account_nan_sharpe_raises() -> None:
    with pytest.raises(ReportInputError, match="sharpe"):
        score_account(0.01, float("nan"), 0.1, 0.5)


# --------------------------------------------------------------------------- Parquet
def test_parquet_tables_round_trip_with_money_columns_named_with_their_unit(
    written: tuple[DailyReportInput, Any],
) -> None:
    data, paths = written
    stored = {
        "orders": {
            "filled_notional": "filled_notional_usd_minor",
            "commission": "commission_usd_minor",
        },
        "fills": {"price": "price_usd"},
        "equity": {"equity": "equity_usd_minor"},
    }
    for name, renames in stored.items():
        expected = getattr(data, name).rename(columns=renames)
        pd.testing.assert_frame_equal(pd.read_parquet(getattr(paths, name)), expected)


def test_parquet_decision_chain_column_is_json_text(
    written: tuple[DailyReportInput, Any],
) -> None:
    _, paths = written
    decisions = pd.read_parquet(paths.decisions)
    assert decisions["decision_id"].tolist() == ["d1"]
    assert json.loads(decisions["payload"].iloc[0]) == DECISION


def test_parquet_empty_frames_round_trip(tmp_path: Path) -> None:
    empty = pd.DataFrame({"order_id": pd.Series([], dtype=object)})
    paths = write_daily_report(tmp_path, _data(orders=empty))
    restored = pd.read_parquet(paths.orders)
    assert list(restored.columns) == ["order_id"]
    assert len(restored) == 0


# --------------------------------------------------------------------------- inputs
def test_account_day_win_rate_out_of_range_raises() -> None:
    with pytest.raises(ReportInputError, match="win_rate"):
        _account("synthesis", 1, win_rate=1.5)


def test_account_day_foreign_trade_raises() -> None:
    with pytest.raises(ReportInputError, match="belongs to account 'aggressive'"):
        _account("synthesis", 1, (_trade("aggressive", "AAA", 1.0),))


def test_trade_record_exit_time_without_price_raises() -> None:
    with pytest.raises(ReportInputError, match="exit_time and exit_price"):
        _trade("a", "AAA", 1.0, exit_time=datetime(2024, 3, 25, 15, tzinfo=UTC))


def test_daily_report_input_duplicate_accounts_raises() -> None:
    twice = (_account("synthesis", 1), _account("synthesis", 2))
    with pytest.raises(ReportInputError, match="duplicate"):
        _data(twice)


def test_report_input_pickle_round_trip_keeps_figures() -> None:
    data = _data()
    restored = pickle.loads(pickle.dumps(data))
    assert restored.date == data.date
    assert [a.name for a in restored.accounts] == [a.name for a in data.accounts]
    assert restored.accounts[2].trades == data.accounts[2].trades
    pd.testing.assert_series_equal(
        restored.accounts[0].equity_history, data.accounts[0].equity_history
    )


# --------------------------------------------------------------------------- genomes
def test_report_genomes_section_shows_each_account_and_genome(
    written: tuple[DailyReportInput, Any],
) -> None:
    _, paths = written
    summary = paths.summary_md.read_text(encoding="utf-8")
    page = paths.report_html.read_text(encoding="utf-8")
    match = re.search(
        r"^## Genomes: paper vs shadow backtest\n(.*?)(?=^## |\Z)", summary, re.M | re.S
    )
    assert match, "no genomes section"
    section = match.group(1)
    for row in GENOMES:
        line = next(
            (x for x in section.splitlines() if x.startswith(f"| {row.account} | {row.genome_id}")),
            None,
        )
        assert line is not None, (row.account, row.genome_id)
        for value in (row.pnl, row.expected_pnl, row.execution_cost, row.governor_cuts,
                      row.debate_scaling, row.residual):  # fmt: skip
            assert f"{value:+,.2f}" in line
        assert f"{row.sleeve:.2%}" in line
    assert "Genomes: paper vs shadow backtest" in page
    for row in GENOMES:
        assert row.genome_id in page and f"{row.residual:+,.2f}" in page


def test_parquet_genomes_round_trip(written: tuple[DailyReportInput, Any]) -> None:
    data, paths = written
    frame = pd.read_parquet(paths.genomes)
    assert list(frame.columns) == _stored("genomes", "usd")
    assert frame.to_dict("records") == [
        {
            stored: getattr(row, name)
            for name, stored in zip(GENOME_COLUMNS, frame.columns, strict=True)
        }
        for row in data.genomes
    ]


def test_report_no_genome_says_so_and_writes_empty_genomes_parquet(tmp_path: Path) -> None:
    paths = write_daily_report(tmp_path, _data(genomes=()))
    assert "No genome traded today." in paths.summary_md.read_text(encoding="utf-8")
    frame = pd.read_parquet(paths.genomes)
    assert list(frame.columns) == _stored("genomes", "usd") and len(frame) == 0


def test_genome_row_non_finite_figure_raises() -> None:
    with pytest.raises(ReportInputError, match="residual must be finite"):
        _genome("aggressive", "g", 1.0, 2.0, residual=float("nan"))
    with pytest.raises(ReportInputError, match="duplicate genome rows"):
        _data(genomes=(GENOMES[0], GENOMES[0]))


# --------------------------------------------------------------------------- units
def _bare(stored: str, code: str) -> str:
    return stored.removesuffix("_minor").removesuffix(f"_{code}")


def _ledger_like_frame(table: str) -> pd.DataFrame:
    # One row with a value of each column's kind: minor units int, currency float, price text.
    values: dict[str, list[Any]] = {}
    for name, kind in PARQUET_COLUMNS[table].items():
        sample = {"minor": 12_345, "currency": 123.45, "price": "10.0100"}.get(kind or "", "x")
        values[name] = [sample]
    return pd.DataFrame(values)


@pytest.mark.parametrize(("currency", "code"), [("CNY", "cny"), ("USD", "usd")])
def test_parquet_money_columns_end_with_the_currency_in_every_file(
    tmp_path: Path, currency: str, code: str
) -> None:
    assert set(PARQUET_COLUMNS) == set(STORED)
    for table in STORED:
        frame = _ledger_like_frame(table)[[_bare(name, code) for name in _stored(table, code)]]
        path = tmp_path / f"{table}.parquet"
        write_parquet_table(path, table, frame, currency=currency)
        restored = pd.read_parquet(path)
        assert list(restored.columns) == _stored(table, code), table
        money = [name for name in restored.columns if PARQUET_COLUMNS[table][_bare(name, code)]]
        assert all(name.endswith((f"_{code}", f"_{code}_minor")) for name in money), money
        assert restored.to_numpy().tolist() == frame.to_numpy().tolist()


def test_parquet_schema_metadata_names_the_units(tmp_path: Path) -> None:
    for table in ("equity", "fills", "genomes", "risk_events"):
        write_parquet_table(
            tmp_path / f"{table}.parquet", table, _ledger_like_frame(table), currency="CNY"
        )
    key = b"alphaloop.units"
    units = {
        table: json.loads(pq.read_schema(tmp_path / f"{table}.parquet").metadata[key])
        for table in ("equity", "fills", "genomes", "risk_events")
    }
    assert UNITS_METADATA_KEY == "alphaloop.units"
    assert units["equity"] == {
        "cash_cny_minor": "0.01 CNY", "market_value_cny_minor": "0.01 CNY",
        "equity_cny_minor": "0.01 CNY", "realised_pnl_cny_minor": "0.01 CNY",
        "commission_paid_cny_minor": "0.01 CNY", "taxes_paid_cny_minor": "0.01 CNY",
    }  # fmt: skip
    assert units["fills"] == {
        "price_cny": "CNY", "notional_cny_minor": "0.01 CNY", "commission_cny_minor": "0.01 CNY",
        "taxes_cny_minor": "0.01 CNY",
    }  # fmt: skip
    assert units["genomes"] == {
        f"{name}_cny": "CNY"
        for name in ("allocation", "pnl", "expected_pnl", "execution_cost", "governor_cuts",
                     "debate_scaling", "residual")
    }  # fmt: skip
    assert units["risk_events"] == {}


def test_parquet_minor_unit_follows_the_money_digits(tmp_path: Path) -> None:
    path = tmp_path / "equity.parquet"
    frame = pd.DataFrame({"account": ["a"], "cash": [7]})
    write_parquet_table(path, "equity", frame, currency="USD", money_digits=0)
    units = json.loads(pq.read_schema(path).metadata[UNITS_METADATA_KEY.encode()])
    assert units == {"cash_usd_minor": "1 USD"}


def test_parquet_non_money_columns_keep_their_names(written: tuple[DailyReportInput, Any]) -> None:
    _, paths = written
    genomes = pd.read_parquet(paths.genomes)
    for name in ("avg_slippage_bps", "sleeve", "fill_ratio", "order_reject_count", "turnover"):
        assert name in genomes.columns
    assert genomes["avg_slippage_bps"].tolist() == [row.avg_slippage_bps for row in GENOMES]
    assert "quantity" in pd.read_parquet(paths.orders).columns


def test_report_input_column_without_a_unit_raises() -> None:
    orders = pd.DataFrame({"order_id": ["o1"], "fee_total": [12]})
    with pytest.raises(ReportInputError, match=r"DailyReportInput\.orders.*'fee_total'"):
        _data(orders=orders)
    with pytest.raises(ReportInputError, match="currency"):
        _data(currency="")


def test_write_parquet_table_unclassified_column_or_table_raises(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match=r"'mystery'.*PARQUET_COLUMNS"):
        write_parquet_table(
            tmp_path / "p.parquet", "positions", pd.DataFrame({"mystery": [1]}), currency="CNY"
        )
    with pytest.raises(ReportInputError, match="unknown table 'trades'"):
        write_parquet_table(tmp_path / "t.parquet", "trades", pd.DataFrame(), currency="CNY")
    assert not list(tmp_path.iterdir())


def test_parquet_columns_classify_every_genome_row_field() -> None:
    assert set(PARQUET_COLUMNS["genomes"]) == set(GENOME_COLUMNS)
