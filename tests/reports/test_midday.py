"""The midday review: the accounts' morning at the A-share lunch break."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.ledger import Ledger
from arena.market import day_market, load_arena_data
from arena.personas import load_arena_config
from reports.midday import lunch_break, midday_review

CN = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31,market=cn"
DAYS = (date(2023, 6, 1), date(2023, 6, 2))


def _run(home: LabHome, spec: str) -> object:
    config = load_arena_config()
    data = load_arena_data(spec, home)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        for day in DAYS:
            run_arena_day(accounts, data, day, home=home, config=config)
    finally:
        accounts.close()
    return data


def test_lunch_break_only_where_the_market_has_one() -> None:
    assert lunch_break("cn", date(2023, 6, 2)) == pd.Timestamp("2023-06-02 03:30", tz="UTC")
    assert lunch_break("us", date(2023, 6, 2)) is None


def test_midday_review_written_for_cn_and_its_books_close_at_the_close(
    lab_home: LabHome,
) -> None:
    data = _run(lab_home, CN)
    folder = lab_home.runs / "2023-06-02"
    review = json.loads((folder / "midday.json").read_text())
    assert review["at"] == "2023-06-02T03:30:00+00:00"
    assert set(review["accounts"]) == {"aggressive", "conservative", "synthesis"}
    for row in review["accounts"].values():
        assert row["against_benchmark"] == pytest.approx(
            row["morning_return"] - review["benchmark_morning_return"]
        )
    assert (folder / "midday.md").read_text().startswith("# AlphaLoop arena: midday review")
    # The same books taken after the last bar are the ledger's own close: every fill counted,
    # every name marked at its close.
    day = DAYS[1]
    market = day_market(data.daily, day, data.minute_bars(day))  # type: ignore[attr-defined]
    late = pd.Timestamp("2023-06-02 23:59", tz="UTC")
    with Ledger(lab_home.ledger_db) as ledger:
        whole = midday_review(ledger, day, market, late)
        for name, row in whole["accounts"].items():
            money = 10.0 ** ledger.account_record(name).units.money_digits
            close = dict(ledger.equity_history(name))[day].equity / money
            # The ledger marks at the price rounded to the market's tick (0.01 yuan): cents.
            assert row["equity_at_break"] == pytest.approx(close, rel=1e-6), name
        # The control: at the break some account's books differ from its close.
        morning = midday_review(ledger, day, market, pd.Timestamp("2023-06-02 03:30", tz="UTC"))
    assert any(
        morning["accounts"][n]["equity_at_break"]
        != pytest.approx(whole["accounts"][n]["equity_at_break"], rel=1e-6)
        for n in morning["accounts"]
    )


def test_no_midday_review_without_a_lunch_break(lab_home: LabHome) -> None:
    _run(lab_home, "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31")
    assert not (lab_home.runs / "2023-06-02" / "midday.json").exists()
    assert (lab_home.runs / "2023-06-02" / "premarket.json").exists()
