"""Rule-based lessons of a trading day and tomorrow's adjustments. No model, no LLM.

:func:`detect_lessons` reads a :class:`reports.daily_input.DailyReportInput` and returns the
:class:`Lesson` values its detectors find, in account order then detector order. Every rule
compares one figure against one threshold of :class:`LessonConfig` and fires only when the
threshold is strictly passed, so a figure exactly at its threshold stays silent:

================  ==========================================================================
kind              fires for an account when
================  ==========================================================================
``over_trading``  ``typical_trades > 0`` and ``trades_today > over_trading_ratio *
                  typical_trades`` (default 1.5x the usual daily count; no history, no rule)
``high_vol_loss`` the day's regime label is one of ``high_vol_regimes`` and
                  ``day_return < -high_vol_min_loss`` (default: any loss)
``poor_fills``    ``slippage_bps > max_slippage_bps`` (absolute shortfall against the
                  arrival price) or ``twap_slippage_bps > max_twap_shortfall_bps`` (worse
                  than a TWAP of the same orders); only on days with at least one trade
                  and only when the day executed on intraday bars (with daily bars only
                  every order fills at the single daily bar: slicing cannot change that)
``concentration`` some position has ``|weight| > max_position_weight`` (one lesson per
                  account, naming the largest position)
================  ==========================================================================

Sign conventions: slippage figures are costs in basis points, positive = worse. The regime
label is ``regime["label"]``, or ``regime["regime"]`` when the arena passes the fields of
:class:`arena.perceive.RegimeReading` as they are.

:func:`adjustments` turns the lessons (and the day's change in market volatility) into plain
sentences for tomorrow, one rule each:

* volatility rose by more than ``vol_rise_threshold`` (relative; 0.70, the 95% quantile of
  the 5-day against the 20-day sd under no change, so that noise alone rarely fires it):
  scale every account's risk budget by ``1 / (1 + volatility_change)``, floored at
  ``min_risk_scale``;
* ``high_vol_loss``: scale that account's risk by ``high_vol_risk_scale`` while the regime lasts;
* ``over_trading``: cap that account's trades at its usual count (rounded up);
* ``poor_fills``: slice that account's orders more thinly (halve its participation cap) and
  fall back to TWAP when it did worse than TWAP;
* ``concentration``: cap the named position at ``max_position_weight``;
* nothing found: one sentence saying settings stay as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from alphaloop.config import FrozenConfig

if TYPE_CHECKING:
    from reports.daily_input import AccountDay, DailyReportInput

__all__ = [
    "LESSON_KINDS",
    "Lesson",
    "LessonConfig",
    "LessonKind",
    "adjustments",
    "detect_lessons",
    "regime_label",
]

LessonKind = Literal["over_trading", "high_vol_loss", "poor_fills", "concentration"]
LESSON_KINDS: tuple[LessonKind, ...] = (
    "over_trading",
    "high_vol_loss",
    "poor_fills",
    "concentration",
)


class LessonConfig(FrozenConfig):
    """Thresholds of the lesson detectors and of tomorrow's adjustments (module docstring)."""

    over_trading_ratio: float = Field(default=1.5, gt=1.0)
    high_vol_regimes: tuple[str, ...] = ("high_vol",)
    high_vol_min_loss: float = Field(default=0.0, ge=0.0, lt=1.0)
    max_slippage_bps: float = Field(default=20.0, ge=0.0)
    max_twap_shortfall_bps: float = Field(default=5.0, ge=0.0)
    max_position_weight: float = Field(default=0.25, gt=0.0, le=1.0)
    # The 5-day sd of the index above its 20-day sd by more than this is the 95% quantile
    # of the ratio under no change (sqrt(F(4, 19) at 0.95) - 1 = 0.70): a 20% rise came
    # from noise alone on one day in five.
    vol_rise_threshold: float = Field(default=0.7, gt=0.0)
    min_risk_scale: float = Field(default=0.25, gt=0.0, le=1.0)
    high_vol_risk_scale: float = Field(default=0.75, gt=0.0, le=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lesson:
    """One finding of a detector: its kind, the account, a sentence and the figures behind it."""

    kind: LessonKind
    account: str
    detail: str
    figures: dict[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in LESSON_KINDS:
            raise ValueError(f"Lesson.kind {self.kind!r} is not one of {LESSON_KINDS}")


def regime_label(regime: dict[str, object]) -> str:
    """Return the regime label of a report's ``regime`` dict (``"unknown"`` when absent)."""
    for key in ("label", "regime"):
        value = regime.get(key)
        if isinstance(value, str) and value:
            return value
    return "unknown"


# --------------------------------------------------------------------------- detectors
def _over_trading(account: AccountDay, config: LessonConfig) -> Lesson | None:
    usual = account.typical_trades
    if usual <= 0:
        return None
    limit = config.over_trading_ratio * usual
    if account.trades_today <= limit:
        return None
    return Lesson(
        kind="over_trading",
        account=account.name,
        detail=(
            f"{account.name} traded {account.trades_today} times against a usual "
            f"{usual:g} ({account.trades_today / usual:.1f}x, limit "
            f"{config.over_trading_ratio:g}x)"
        ),
        figures={
            "trades_today": float(account.trades_today),
            "typical_trades": float(usual),
            "ratio": account.trades_today / usual,
            "threshold": config.over_trading_ratio,
            "day_return": account.day_return,
        },
    )


def _high_vol_loss(account: AccountDay, label: str, config: LessonConfig) -> Lesson | None:
    if label not in config.high_vol_regimes:
        return None
    if not account.day_return < -config.high_vol_min_loss:
        return None
    return Lesson(
        kind="high_vol_loss",
        account=account.name,
        detail=(
            f"{account.name} lost {-account.day_return:.2%} in a {label} regime "
            f"(threshold {config.high_vol_min_loss:.2%})"
        ),
        figures={
            "day_return": account.day_return,
            "regime": label,
            "threshold": -config.high_vol_min_loss,
        },
    )


def _poor_fills(account: AccountDay, config: LessonConfig) -> Lesson | None:
    if account.trades_today <= 0:
        return None
    absolute = account.slippage_bps > config.max_slippage_bps
    versus_twap = account.twap_slippage_bps > config.max_twap_shortfall_bps
    if not (absolute or versus_twap):
        return None
    reasons = []
    if absolute:
        reasons.append(f"slippage {account.slippage_bps:.1f} bps > {config.max_slippage_bps:g} bps")
    if versus_twap:
        reasons.append(
            f"{account.twap_slippage_bps:.1f} bps worse than TWAP "
            f"(> {config.max_twap_shortfall_bps:g} bps)"
        )
    return Lesson(
        kind="poor_fills",
        account=account.name,
        detail=f"{account.name} filled poorly: " + "; ".join(reasons),
        figures={
            "slippage_bps": account.slippage_bps,
            "twap_slippage_bps": account.twap_slippage_bps,
            "max_slippage_bps": config.max_slippage_bps,
            "max_twap_shortfall_bps": config.max_twap_shortfall_bps,
            "versus_twap": float(versus_twap),
            "day_return": account.day_return,
        },
    )


def _concentration(account: AccountDay, config: LessonConfig) -> Lesson | None:
    if not account.positions:
        return None
    # Sorted by name first so that equal weights name the same symbol on every run.
    symbol, weight = max(sorted(account.positions.items()), key=lambda item: abs(item[1]))
    if not abs(weight) > config.max_position_weight:
        return None
    over = sum(1 for value in account.positions.values() if abs(value) > config.max_position_weight)
    return Lesson(
        kind="concentration",
        account=account.name,
        detail=(
            f"{account.name} holds {symbol} at {weight:.1%} of equity "
            f"(threshold {config.max_position_weight:.0%}; {over} position(s) above it)"
        ),
        figures={
            "symbol": symbol,
            "weight": weight,
            "threshold": config.max_position_weight,
            "positions_above": float(over),
        },
    )


def detect_lessons(data: DailyReportInput, config: LessonConfig | None = None) -> list[Lesson]:
    """Return the lessons of the day, in account order then detector order.

    Parameters
    ----------
    data:
        The day's report input.
    config:
        Thresholds; the defaults of :class:`LessonConfig` when ``None``.
    """
    config = config or LessonConfig()
    label = regime_label(data.regime)
    found: list[Lesson] = []
    for account in data.accounts:
        for lesson in (
            _over_trading(account, config),
            _high_vol_loss(account, label, config),
            None if data.execution_bars == "daily" else _poor_fills(account, config),
            _concentration(account, config),
        ):
            if lesson is not None:
                found.append(lesson)
    return found


# --------------------------------------------------------------------------- adjustments
def adjustments(
    data: DailyReportInput, lessons: list[Lesson], config: LessonConfig | None = None
) -> list[str]:
    """Return tomorrow's adjustments as sentences, one rule each (module docstring).

    Parameters
    ----------
    data:
        The day's report input (for the volatility change and the account list).
    lessons:
        What :func:`detect_lessons` found for ``data``.
    config:
        Thresholds; the defaults of :class:`LessonConfig` when ``None``.
    """
    config = config or LessonConfig()
    advice: list[str] = []
    change = data.volatility_change
    if change is not None and math.isfinite(change) and change > config.vol_rise_threshold:
        scale = max(1.0 / (1.0 + change), config.min_risk_scale)
        advice.append(
            f"Market volatility rose {change:.0%} (above {config.vol_rise_threshold:.0%}): "
            f"scale every account's risk budget to {scale:.0%}."
        )
    for lesson in lessons:
        figures = lesson.figures
        if lesson.kind == "high_vol_loss":
            advice.append(
                f"{lesson.account}: scale risk to {config.high_vol_risk_scale:.0%} while the "
                f"regime stays {figures['regime']}."
            )
        elif lesson.kind == "over_trading":
            cap = math.ceil(float(figures["typical_trades"]))
            advice.append(
                f"{lesson.account}: cap tomorrow's trades at the usual {cap} "
                f"(today {int(float(figures['trades_today']))})."
            )
        elif lesson.kind == "poor_fills":
            sentence = f"{lesson.account}: halve the participation cap and slice orders thinner"
            if float(figures["versus_twap"]) > 0:
                sentence += "; fall back to TWAP until the policy beats it again"
            advice.append(sentence + ".")
        elif lesson.kind == "concentration":
            advice.append(
                f"{lesson.account}: trim {figures['symbol']} to at most "
                f"{config.max_position_weight:.0%} of equity."
            )
    if not advice:
        advice.append("No lesson and no volatility rise: keep today's settings.")
    return advice
