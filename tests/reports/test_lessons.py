"""Lesson detectors fire past their thresholds and stay silent at them; adjustments follow."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from reports.daily_input import AccountDay, DailyReportInput
from reports.lessons import Lesson, LessonConfig, adjustments, detect_lessons, regime_label

DAY = date(2024, 3, 25)


def _account(name: str = "synthesis", **overrides: Any) -> AccountDay:
    """A quiet account that no detector flags with the default thresholds."""
    values: dict[str, Any] = {
        "name": name,
        "equity_history": pd.Series([1_000_000.0, 1_001_000.0], index=[date(2024, 3, 22), DAY]),
        "day_return": 0.001,
        "trades_today": 3,
        "win_rate": 0.5,
        "max_drawdown": 0.02,
        "sharpe": 1.0,
        "score": 60.0,
        "positions": {"AAA": 0.10, "BBB": 0.05},
        "typical_trades": 3.0,
        "slippage_bps": 5.0,
        "twap_slippage_bps": 0.0,
        "trades": (),
    }
    values.update(overrides)
    return AccountDay(**values)


def _data(
    *accounts: AccountDay, regime: str = "bull", volatility_change: float | None = None
) -> DailyReportInput:
    return DailyReportInput(
        date=DAY,
        accounts=accounts or (_account(),),
        benchmark_history=pd.Series([100.0, 100.5], index=[date(2024, 3, 22), DAY]),
        benchmark_return=0.005,
        regime={"label": regime, "index_volatility": 0.2},
        risk_events=(),
        orders=pd.DataFrame(),
        fills=pd.DataFrame(),
        decisions=pd.DataFrame(),
        equity=pd.DataFrame(),
        volatility_change=volatility_change,
        periods_per_year=252.0,
    )


def _kinds(data: DailyReportInput, config: LessonConfig | None = None) -> list[str]:
    return [lesson.kind for lesson in detect_lessons(data, config)]


def test_detect_lessons_quiet_account_finds_nothing() -> None:
    assert detect_lessons(_data(_account())) == []


# --------------------------------------------------------------------------- over-trading
def test_over_trading_above_one_and_a_half_usual_count_fires() -> None:
    lessons = detect_lessons(_data(_account(trades_today=7, typical_trades=4.0)))
    assert [lesson.kind for lesson in lessons] == ["over_trading"]
    assert lessons[0].account == "synthesis"
    assert lessons[0].figures["ratio"] == pytest.approx(7 / 4)


def test_over_trading_at_one_and_a_half_usual_count_stays_silent() -> None:
    assert _kinds(_data(_account(trades_today=6, typical_trades=4.0))) == []


def test_over_trading_without_history_stays_silent() -> None:
    assert _kinds(_data(_account(trades_today=50, typical_trades=0.0))) == []


def test_over_trading_configured_ratio_moves_the_threshold() -> None:
    config = LessonConfig(over_trading_ratio=2.0)
    assert _kinds(_data(_account(trades_today=7, typical_trades=4.0)), config) == []
    assert _kinds(_data(_account(trades_today=9, typical_trades=4.0)), config) == ["over_trading"]


# --------------------------------------------------------------------------- high volatility
def test_high_vol_loss_loss_in_high_vol_regime_fires() -> None:
    lessons = detect_lessons(_data(_account(day_return=-0.01), regime="high_vol"))
    assert [lesson.kind for lesson in lessons] == ["high_vol_loss"]
    assert lessons[0].figures["regime"] == "high_vol"


def test_high_vol_loss_flat_day_in_high_vol_regime_stays_silent() -> None:
    assert _kinds(_data(_account(day_return=0.0), regime="high_vol")) == []


def test_high_vol_loss_loss_in_calm_regime_stays_silent() -> None:
    assert _kinds(_data(_account(day_return=-0.05), regime="bull")) == []


def test_high_vol_loss_minimum_loss_threshold_is_strict() -> None:
    config = LessonConfig(high_vol_min_loss=0.02)
    just_below = _data(_account(day_return=-0.0199), regime="high_vol")
    just_above = _data(_account(day_return=-0.0201), regime="high_vol")
    at_threshold = _data(_account(day_return=-0.02), regime="high_vol")
    assert _kinds(just_below, config) == []
    assert _kinds(at_threshold, config) == []
    assert _kinds(just_above, config) == ["high_vol_loss"]


def test_regime_label_reads_perception_field_name() -> None:
    assert regime_label({"regime": "high_vol", "trend_return": 0.1}) == "high_vol"
    assert regime_label({"label": "bear"}) == "bear"
    assert regime_label({}) == "unknown"


# --------------------------------------------------------------------------- fills
def test_poor_fills_absolute_slippage_above_threshold_fires() -> None:
    lessons = detect_lessons(_data(_account(slippage_bps=20.5)))
    assert [lesson.kind for lesson in lessons] == ["poor_fills"]
    assert lessons[0].figures["versus_twap"] == 0.0


def test_poor_fills_absolute_slippage_at_threshold_stays_silent() -> None:
    assert _kinds(_data(_account(slippage_bps=20.0))) == []


def test_poor_fills_worse_than_twap_fires() -> None:
    lessons = detect_lessons(_data(_account(twap_slippage_bps=5.5)))
    assert [lesson.kind for lesson in lessons] == ["poor_fills"]
    assert lessons[0].figures["versus_twap"] == 1.0


def test_poor_fills_at_twap_threshold_stays_silent() -> None:
    assert _kinds(_data(_account(twap_slippage_bps=5.0))) == []
    assert _kinds(_data(_account(twap_slippage_bps=4.99))) == []


def test_poor_fills_day_without_trades_stays_silent() -> None:
    quiet = _account(trades_today=0, slippage_bps=80.0, twap_slippage_bps=40.0)
    assert _kinds(_data(quiet)) == []


# --------------------------------------------------------------------------- concentration
def test_concentration_position_above_threshold_fires_naming_it() -> None:
    lessons = detect_lessons(_data(_account(positions={"AAA": 0.1, "BBB": 0.2501})))
    assert [lesson.kind for lesson in lessons] == ["concentration"]
    assert lessons[0].figures["symbol"] == "BBB"


def test_concentration_position_at_threshold_stays_silent() -> None:
    assert _kinds(_data(_account(positions={"AAA": 0.25, "BBB": 0.2}))) == []


def test_concentration_large_short_position_fires() -> None:
    lessons = detect_lessons(_data(_account(positions={"AAA": -0.4})))
    assert lessons[0].kind == "concentration"
    assert lessons[0].figures["weight"] == -0.4


# --------------------------------------------------------------------------- several
def test_detect_lessons_several_accounts_keeps_account_then_detector_order() -> None:
    data = _data(
        _account("aggressive", trades_today=10, day_return=-0.02, positions={"AAA": 0.5}),
        _account("conservative"),
        _account("synthesis", slippage_bps=30.0),
        regime="high_vol",
    )
    found = [(lesson.account, lesson.kind) for lesson in detect_lessons(data)]
    assert found == [
        ("aggressive", "over_trading"),
        ("aggressive", "high_vol_loss"),
        ("aggressive", "concentration"),
        ("synthesis", "poor_fills"),
    ]


def test_lesson_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="kind"):
        Lesson(kind="bad_luck", account="synthesis", detail="")  # type: ignore[arg-type]


def test_lesson_config_ratio_not_above_one_raises() -> None:
    with pytest.raises(ValidationError):
        LessonConfig(over_trading_ratio=1.0)


# --------------------------------------------------------------------------- adjustments
def test_adjustments_volatility_rise_scales_risk_down() -> None:
    data = _data(volatility_change=0.8)
    advice = adjustments(data, detect_lessons(data))
    assert len(advice) == 1
    assert f"{1 / 1.8:.0%}" in advice[0]
    assert "risk" in advice[0]


def test_adjustments_volatility_rise_at_threshold_keeps_settings() -> None:
    # 0.70: the 95% quantile of the 5-day / 20-day sd ratio under no change, minus 1.
    data = _data(volatility_change=0.7)
    advice = adjustments(data, detect_lessons(data))
    assert advice == ["No lesson and no volatility rise: keep today's settings."]


def test_adjustments_huge_volatility_rise_floors_the_scale() -> None:
    data = _data(volatility_change=9.0)
    advice = adjustments(data, [], LessonConfig(min_risk_scale=0.4))
    assert "40%" in advice[0]


def test_adjustments_over_trading_caps_trades_at_usual_count() -> None:
    data = _data(_account("aggressive", trades_today=9, typical_trades=2.5))
    advice = adjustments(data, detect_lessons(data))
    assert len(advice) == 1
    assert advice[0].startswith("aggressive:")
    assert "usual 3" in advice[0]


def test_adjustments_each_lesson_kind_gets_its_own_sentence() -> None:
    data = _data(
        _account(
            "aggressive",
            trades_today=10,
            day_return=-0.02,
            positions={"CCC": 0.6},
            twap_slippage_bps=9.0,
        ),
        regime="high_vol",
    )
    lessons = detect_lessons(data)
    assert len(lessons) == 4
    advice = adjustments(data, lessons)
    assert len(advice) == 4
    joined = " ".join(advice)
    assert "CCC" in joined
    assert "TWAP" in joined
    assert "75%" in joined
