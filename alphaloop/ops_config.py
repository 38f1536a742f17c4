"""The operations settings: the daily runbook's calendar and the alert rules (``ops.yaml``).

:func:`load_ops_config` reads the packaged ``alphaloop/configs/ops.yaml`` with a user file
(``alphaloop daily --config FILE``) over it, key by key (:func:`alphaloop.config.load_config`).
A threshold set to ``null`` switches its rule off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig, load_config

__all__ = [
    "AlertsConfig",
    "DailyConfig",
    "OpsConfig",
    "WebhookConfig",
    "load_ops_config",
]

Weekday = Annotated[int, Field(ge=0, le=6)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class EvolutionStep(FrozenConfig):
    """The weekly evolution of ``alphaloop daily`` (:func:`arena.season.weekly_evolution`)."""

    generations: int = Field(5, ge=1, le=1000)
    population: int = Field(16, ge=4, le=100_000)
    seed: int = Field(0, ge=0)
    window: int | None = Field(None, ge=20)  # the fitness window (null: evolution.yaml's)
    holdout: int | None = Field(None, ge=10)  # days before the as-of day fitness never sees


class StressStep(FrozenConfig):
    """The weekly stress replay of ``alphaloop daily`` (:func:`arena.stress.replay`)."""

    scenarios: tuple[str, ...] = ()
    size: Literal["small", "full"] = "small"


class DailyConfig(FrozenConfig):
    """Which days the weekly and monthly steps of ``alphaloop daily`` are due on."""

    evolution_weekday: Weekday | None = 4
    weekly_report_weekday: Weekday | None = 4
    stress_weekday: Weekday | None = 4
    month_end_report: bool = True
    evolution: EvolutionStep = EvolutionStep()
    stress: StressStep = StressStep()


class LowConfidence(FrozenConfig):
    """A streak of low-confidence verdicts: ``streak`` verdict days in a row under ``below``."""

    below: float = Field(0.6, gt=0.0, le=1.0)
    streak: int = Field(3, ge=1, le=1000)


class WebhookConfig(FrozenConfig):
    """Where new alerts are POSTed as JSON (``url: null``: nowhere)."""

    url: str | None = None
    timeout_s: float = Field(5.0, gt=0.0, le=120.0)
    attempts_per_run: int = Field(2, ge=1, le=10)
    max_attempts: int = Field(6, ge=1, le=1000)

    @model_validator(mode="after")
    def _check(self) -> WebhookConfig:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook.url {self.url!r}: expected an http:// or https:// URL")
        if self.attempts_per_run > self.max_attempts:
            raise ValueError("webhook.attempts_per_run must not exceed webhook.max_attempts")
        return self


class AlertsConfig(FrozenConfig):
    """The alert rules (:mod:`alphaloop.alerts`); ``null`` switches a threshold rule off."""

    daily_loss: Fraction | None = 0.03
    drawdown: Fraction | None = 0.10
    missing_day: bool = True
    failed_step: bool = True
    stress_failed: bool = True
    stale_data_days: int | None = Field(5, ge=0, le=3650)
    low_confidence: LowConfidence | None = LowConfidence()
    lifecycle: bool = True
    webhook: WebhookConfig = WebhookConfig()


class OpsConfig(FrozenConfig):
    """The operations settings (``ops.yaml``)."""

    daily: DailyConfig = DailyConfig()
    alerts: AlertsConfig = AlertsConfig()


def load_ops_config(path: str | Path | None = None) -> OpsConfig:
    """Load the packaged ``ops.yaml`` with the user file ``path`` over it.

    Raises
    ------
    alphaloop.errors.ConfigError
        Naming the file and the key (an unknown key, a value out of range).
    """
    return load_config(OpsConfig, path, default_name="ops.yaml")
