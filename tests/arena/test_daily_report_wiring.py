"""``alphaloop arena run`` writes the full daily report of :mod:`reports.daily`."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from alphaloop import cli_arena
from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.intraday import shortfall_bps
from arena.ledger import Ledger
from arena.market import day_market, load_arena_data
from arena.personas import PERSONA_NAMES, load_arena_config
from reports.arena_day import account_score, build_report_input
from reports.daily import score_account
from reports.daily_input import PARQUET_COLUMNS

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
COMMON = ("--json", "--local", "--no-mlflow")
# The columns of every Parquet file of runs/<date>/, ``{c}`` the currency in lower case.
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


def _run(*args: str, spec: str = SPEC) -> dict:
    app = typer.Typer()
    app.add_typer(cli_arena.app, name="arena")
    command = ["arena", "run", *args, "--data", spec, *COMMON]
    result = CliRunner().invoke(app, command, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _section(markdown: str, title: str) -> str:
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


def test_arena_run_daily_report_written_with_every_section(lab_home: LabHome) -> None:
    _run("--date", "2023-06-01")
    out = _run("--date", "2023-06-02")
    folder = lab_home.runs / "2023-06-02"
    assert Path(out["report"]["markdown"]) == folder / "summary.md"
    assert Path(out["report"]["html"]) == folder / "report.html"
    for name in ("orders", "fills", "equity", "decisions"):
        frame = pd.read_parquet(folder / f"{name}.parquet")
        assert len(frame) > 0 and set(frame["day"]) == {"2023-06-02"}
    for name, columns in STORED.items():  # market=none books in USD
        stored = list(pd.read_parquet(folder / f"{name}.parquet").columns)
        assert stored == [column.format(c="usd") for column in columns], name
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""src\s*=\s*["']?https?:""", html, re.I)
    assert "data:image/png;base64," in html
    markdown = (folder / "summary.md").read_text(encoding="utf-8")
    table = _section(markdown, "Accounts against the benchmark")
    for name in (*PERSONA_NAMES, "benchmark"):
        assert re.search(rf"^\| {name} \|", table, re.M), name
    for title in ("Best trade", "Worst trade"):
        trade = _section(markdown, title)
        assert "Trade record:" in trade and "| outcome |" in trade
    assert "## Lessons" in markdown and "## Tomorrow's adjustments" in markdown
    assert "## Adjustments in force today" in markdown
    # The pre-market plan, written before execution, next to the report.
    plan = json.loads((folder / "premarket.json").read_text())
    assert set(plan["accounts"]) == set(PERSONA_NAMES)
    for entry in plan["accounts"].values():
        assert {"candidates", "targets", "risk_budget", "adjustments", "retrieved_memories"} <= set(
            entry
        )
        for target in entry["targets"]:
            assert 0 < target["stop"] < target["previous_close"]
    assert (
        "verdict" in plan["accounts"]["synthesis"] or not plan["accounts"]["synthesis"]["targets"]
    )
    assert (folder / "premarket.md").read_text().startswith("# AlphaLoop arena: pre-market plan")
    assert json.loads((folder / "summary.json").read_text())["accounts"] == out["accounts"]


def test_arena_run_json_scores_equal_score_account(lab_home: LabHome) -> None:
    out = _run("--date", "2023-06-01")
    markdown = Path(out["report"]["markdown"]).read_text(encoding="utf-8")
    for name, figures in out["accounts"].items():
        win = figures["win_rate"]
        expected = score_account(
            figures["return"], figures["sharpe"], figures["max_drawdown"],
            0.5 if win is None else win,
        )  # fmt: skip
        assert figures["score"] == expected == account_score(figures)
        assert re.search(rf"^\| {name} \|.*\| {expected:.1f} \|", markdown, re.M), name


def _quantity_digits(home: LabHome, account: str) -> int:
    conn = sqlite3.connect(str(home.ledger_db))
    try:
        row = conn.execute(
            "SELECT quantity_digits FROM accounts WHERE account=?", (account,)
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def test_report_input_twap_policy_zero_twap_gap_and_ledger_figures(lab_home: LabHome) -> None:
    out = _run("--date", "2023-06-01")
    data = load_arena_data(SPEC, lab_home)
    day = date(2023, 6, 1)
    market = day_market(data.daily, day, data.minute_bars(day))
    report = build_report_input(lab_home, data, market, out)
    arrival = {symbol: bars[0].open for symbol, bars in market.bars.items()}
    traded = 0
    with Ledger(lab_home.ledger_db) as ledger:
        for account in report.accounts:
            fills = ledger.fills(account.name, day)
            assert account.trades_today == len(fills)
            # No policy is registered: the arena slices by TWAP, so the counterfactual is itself.
            assert account.twap_slippage_bps == 0.0
            digits = _quantity_digits(lab_home, account.name)
            assert account.slippage_bps == shortfall_bps(fills, arrival, digits)
            assert account.typical_trades == 0.0  # first day: no history
            equity = out["accounts"][account.name]["equity"]
            assert float(account.equity_history.iloc[-1]) == equity
            assert len({t.symbol for t in account.trades}) == len({f.symbol for f in fills})
            traded += bool(fills)
    assert traded and any(a.slippage_bps != 0.0 for a in report.accounts if a.trades_today)
    bench = report.benchmark_history
    assert bench.index[-1] == day
    assert abs(bench.iloc[-1] / bench.iloc[-2] - 1.0 - out["benchmark"]["return"]) < 1e-12


def test_report_input_front_loaded_policy_differs_from_twap(lab_home: LabHome) -> None:
    config = load_arena_config()
    data = load_arena_data(SPEC, lab_home)
    day = date(2023, 6, 1)
    # Everything remaining at every step: the whole order goes in the first slice.
    accounts = LocalAccounts(lab_home, config, data.rules(), lambda observation: 1.0)
    try:
        summary = run_arena_day(accounts, data, day, home=lab_home, config=config)
    finally:
        accounts.close()
    market = day_market(data.daily, day, data.minute_bars(day))
    report = build_report_input(lab_home, data, market, summary)
    traded = [a for a in report.accounts if a.trades_today]
    assert traded and all(a.twap_slippage_bps != 0.0 for a in traded)
    assert all(a.twap_slippage_bps == 0.0 for a in report.accounts if not a.trades_today)
    markdown = Path(summary["report"]["markdown"]).read_text(encoding="utf-8")
    for account in traded:
        assert f"{account.twap_slippage_bps:+.1f}" in _section(
            markdown, "Execution shortfall against TWAP"
        )


def test_arena_run_genomes_section_parquet_and_json_agree_with_the_ledger(
    lab_home: LabHome,
) -> None:
    out = _run("--date", "2023-06-01")
    folder = lab_home.runs / "2023-06-01"
    with Ledger(lab_home.ledger_db) as ledger:
        rows = ledger.genome_days(start=date(2023, 6, 1), end=date(2023, 6, 1))
    assert rows and {r.account for r in rows} == set(PERSONA_NAMES)
    fields = (
        "account", "genome_id", "source", "sleeve", "pnl", "expected_pnl", "paper_return",
        "expected_return", "execution_cost", "governor_cuts", "debate_scaling", "residual",
    )  # fmt: skip
    assert [tuple(item) for item in out["genomes"]] == [fields] * len(rows)
    assert out["genomes"] == [{name: getattr(r, name) for name in fields} for r in rows]
    frame = pd.read_parquet(folder / "genomes.parquet")
    assert list(zip(frame["account"], frame["genome_id"], strict=True)) == [
        (r.account, r.genome_id) for r in rows
    ]
    assert frame["residual_usd"].tolist() == [r.residual for r in rows]
    section = _section(
        (folder / "summary.md").read_text(encoding="utf-8"), "Genomes: paper vs shadow backtest"
    )
    for row in rows:
        residual = re.escape(f"{row.residual:+,.2f}")
        assert re.search(
            rf"^\| {row.account} \| {row.genome_id} \|.*\| {residual} \|$",
            section,
            re.M,
        ), (row.account, row.genome_id)
    again = _run("--date", "2023-06-01")  # committed and reviewed: the same genome days
    assert again["already_committed"] and again["genomes"] == out["genomes"]


@pytest.mark.parametrize(("market", "code"), [("cn", "cny"), ("us", "usd")])
def test_arena_run_parquet_money_columns_carry_the_account_currency(
    lab_home: LabHome, market: str, code: str
) -> None:
    out = _run("--date", "2023-06-01", spec=f"{SPEC},market={market}")
    folder = lab_home.runs / "2023-06-01"
    assert out["accounts"] and (folder / "fills.parquet").exists()
    for name, columns in STORED.items():
        path = folder / f"{name}.parquet"
        expected = [column.format(c=code) for column in columns]
        assert list(pd.read_parquet(path).columns) == expected, name
        units = json.loads(pq.read_schema(path).metadata[b"alphaloop.units"])
        money = {
            column: (f"0.01 {code.upper()}" if column.endswith("_minor") else code.upper())
            for column in expected
            if column.endswith((f"_{code}", f"_{code}_minor"))
        }
        assert units == money, name
    genomes = pd.read_parquet(folder / "genomes.parquet")
    assert len(genomes) > 0 and "avg_slippage_bps" in genomes.columns


def test_parquet_columns_classify_every_ledger_column(lab_home: LabHome) -> None:
    # A new ledger column must be classified (money or not) before arena run can write it.
    with Ledger(lab_home.ledger_db) as ledger:
        for table in ("orders", "fills", "equity", "decisions", "positions", "risk_events"):
            assert set(ledger.table_columns(table)) == set(PARQUET_COLUMNS[table]), table
