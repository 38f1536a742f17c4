"""Decision quality: the judge's reliability table, Brier score, accuracy, debate value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from reports.decision_quality import decision_quality, decision_quality_section


@dataclass
class _Trip:
    account: str
    symbol: str
    pnl: float
    entry_order_ids: tuple[str, ...]
    exit_time: datetime = datetime(2023, 6, 2, 15, tzinfo=UTC)


@dataclass
class _Day:
    account: str
    pnl: float
    debate_scaling: float


class _View:
    def __init__(self, confidences: dict[str, float]) -> None:
        self.orders = pd.DataFrame(
            {
                "account": ["synthesis"] * len(confidences),
                "order_id": list(confidences),
                "decision_id": [f"d-{k}" for k in confidences],
            }
        )
        self._chains = {f"d-{k}": {"debate": {"confidence": c}} for k, c in confidences.items()}

    def decision(self, account: str, decision_id: Any) -> dict[str, Any] | None:
        return self._chains.get(decision_id)


def test_decision_quality_scores_the_judges_confidence_against_outcomes() -> None:
    view = _View({"o1": 0.9, "o2": 0.7, "o3": 0.55, "o4": 0.1})
    trips = [
        _Trip("synthesis", "AAA", 10.0, ("o1",)),  # confident, right
        _Trip("synthesis", "BBB", -5.0, ("o2",)),  # confident, wrong
        _Trip("synthesis", "CCC", -1.0, ("o3",)),  # low-certainty, wrong
        _Trip("synthesis", "DDD", 2.0, ("o4",)),  # unconfident, made money
        _Trip("aggressive", "EEE", 99.0, ("o1",)),  # not the judge's trade
    ]
    days = [_Day("synthesis", 30.0, -12.5), _Day("aggressive", 50.0, 0.0)]
    figures = decision_quality(view, trips, days)
    assert figures["trades"] == 4
    # Brier by hand: (0.9-1)^2 + (0.7-0)^2 + (0.55-0)^2 + (0.1-1)^2, over 4.
    assert figures["brier"] == pytest.approx((0.01 + 0.49 + 0.3025 + 0.81) / 4)
    # Right when (confidence >= 0.5) == made money: only AAA.
    assert figures["accuracy"] == pytest.approx(0.25)
    by_bin = {row["bin"]: row for row in figures["reliability"]}
    assert by_bin["[0.8, 1.0]"]["trades"] == 1 and by_bin["[0.8, 1.0]"]["made_money"] == 1.0
    assert by_bin["[0.6, 0.8)"]["made_money"] == 0.0
    assert by_bin["[0.2, 0.4)"]["trades"] == 0 and by_bin["[0.2, 0.4)"]["made_money"] is None
    assert figures["debate_value"] == -12.5 and figures["aggressive_pnl"] == 50.0
    assert [t["symbol"] for t in figures["low_certainty"]] == ["CCC", "DDD"]
    text = str(decision_quality_section(figures))
    assert "low-certainty" in text and "Brier score 0.4031" in text


def test_decision_quality_without_a_scored_trade_has_no_figures() -> None:
    figures = decision_quality(_View({}), [], [])
    assert figures["trades"] == 0 and figures["brier"] is None and figures["accuracy"] is None
    assert "No closed synthesis trade" in str(decision_quality_section(figures))
