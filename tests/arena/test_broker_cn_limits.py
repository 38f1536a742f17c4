"""The paper broker's China price limits: the board's rule on the day traded, ST from a list."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from arena.book import AccountState, open_account, submit_order
from arena.market import Bar
from arena.money import money_from_float
from arena.rules import BrokerRules
from arena.step import ExecutionResult, execute_order
from simulators.market_rules import ChinaAShareRules

CN = BrokerRules.from_market("cn")
BEFORE_REFORM = date(2015, 6, 2)
AFTER_REFORM = date(2021, 6, 2)


def _locked_bar(symbol: str, day: date, price: float, prev_close: float = 10.0) -> Bar:
    """A one-price bar (open = high = low = close), as on a locked limit day."""
    at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    return Bar(
        symbol=symbol, day=day, at=at, open=price, high=price, low=price, close=price,
        volume=1e6, prev_close=prev_close,
    )  # fmt: skip


def _buy(bar: Bar, rules: BrokerRules = CN, quantity: int = 100) -> ExecutionResult:
    state: AccountState = open_account(
        "acct",
        initial_cash=money_from_float(1_000_000.0, rules.units.money_digits),
        units=rules.units,
        t_plus_one=rules.t_plus_one,
    )
    state, order, _ = submit_order(
        state, symbol=bar.symbol, side="buy", quantity=quantity, day=bar.day, at=bar.at
    )
    return execute_order(state, order, bar, rules)


def test_limit_pct_of_chinext_depends_on_the_day_traded() -> None:
    assert CN.limit_pct("300059", BEFORE_REFORM) == 0.10
    assert CN.limit_pct("300059", AFTER_REFORM) == 0.20
    assert CN.limit_pct("300059", date(2020, 8, 21)) == 0.10
    assert CN.limit_pct("300059", date(2020, 8, 24)) == 0.20
    assert BrokerRules.from_market("us").limit_pct("300059", AFTER_REFORM) is None


def test_chinext_locked_plus_ten_in_2015_rejected_limit_up() -> None:
    result = _buy(_locked_bar("300059.SZ", BEFORE_REFORM, 11.0))
    assert (result.status, result.reason) == ("rejected", "limit_up")


def test_chinext_same_plus_ten_bar_in_2021_fills() -> None:
    result = _buy(_locked_bar("300059.SZ", AFTER_REFORM, 11.0))
    assert result.status == "filled"
    assert result.state.held("300059.SZ") == 100


def test_symbol_with_st_letters_is_not_st_but_a_listed_one_is() -> None:
    # +6%: inside the main-board 10%, past the ST 5%.
    assert _buy(_locked_bar("sh600001_history", AFTER_REFORM, 10.6)).status == "filled"
    listed = BrokerRules.from_market(ChinaAShareRules(st_symbols=("600001.SH",)))
    assert listed.st_symbols == ("600001.SH",)
    assert listed.limit_pct("sh600001", AFTER_REFORM) == 0.05
    result = _buy(_locked_bar("sh600001", AFTER_REFORM, 10.6), listed)
    assert (result.status, result.reason) == ("rejected", "limit_up")
    assert _buy(_locked_bar("sh600002", AFTER_REFORM, 10.6), listed).status == "filled"


@pytest.mark.parametrize("symbol", ["bj430047", "830799.BJ"])
def test_beijing_buy_at_plus_25_fills_at_plus_30_rejected(symbol: str) -> None:
    assert _buy(_locked_bar(symbol, AFTER_REFORM, 12.5)).status == "filled"
    assert _buy(_locked_bar(symbol, AFTER_REFORM, 13.0)).reason == "limit_up"


def test_st_list_on_rules_built_directly_is_used() -> None:
    rules = replace(CN, st_symbols=("300059",))
    # ChiNext ST: 5% before the reform, the board's 20% after it.
    assert rules.limit_pct("300059.SZ", BEFORE_REFORM) == 0.05
    assert rules.limit_pct("300059.SZ", AFTER_REFORM) == 0.20
