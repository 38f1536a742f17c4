"""Each rule of the promotion gate fires on its own, and a clean genome passes."""

from __future__ import annotations

import dataclasses

import pytest

from evolution.gate import GateConfig, GateFigures, judge

CLEAN = GateFigures(
    profit_factor_in_sample=1.6,
    profit_factor_out_of_sample=1.4,
    max_drawdown=0.10,
    pool_average_drawdown=0.12,
    champion_correlation=0.1,
    n_trades=350,
    deflated_sharpe=0.99,
)


def test_gate_clean_figures_pass() -> None:
    verdict = judge(CLEAN, GateConfig())
    assert verdict.passed and verdict.reasons == ("passed every rule",)
    assert verdict.figures["n_trades"] == 350


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"profit_factor_in_sample": 1.29}, "in-sample"),
        ({"profit_factor_out_of_sample": 1.05}, "out-of-sample"),
        ({"max_drawdown": 0.16}, "max drawdown"),
        ({"champion_correlation": 0.41}, "correlation"),
        ({"champion_correlation": float("nan")}, "correlation"),
        ({"n_trades": 199}, "trades"),
        ({"deflated_sharpe": 0.94}, "deflated Sharpe"),
    ],
)
def test_gate_each_rule_fails_alone_with_its_reason(change: dict, fragment: str) -> None:
    verdict = judge(dataclasses.replace(CLEAN, **change), GateConfig())
    assert not verdict.passed
    assert len(verdict.reasons) == 1 and fragment in verdict.reasons[0]


def test_gate_reports_every_failed_rule() -> None:
    bad = dataclasses.replace(CLEAN, n_trades=10, deflated_sharpe=0.2, profit_factor_in_sample=0.9)
    assert len(judge(bad, GateConfig()).reasons) == 3
