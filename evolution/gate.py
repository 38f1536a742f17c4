"""The promotion gate (champion/challenger): what a genome must show before it may trade.

In-sample is the two fitness windows (live and year-ago: the weaker profit factor of the two
must clear the in-sample bar) and out-of-sample is the **holdout**: the last ``holdout`` trading
days before the as-of date, which fitness, Optuna and selection never see
(:class:`evolution.evaluate.HoldoutEvaluator`), and, once the genome has one, its paper record
in the arena (the weaker profit factor of the two). Trades are closed round trips after costs over
the windows and the holdout. A genome passes only when every rule holds; the verdict keeps one
line per rule that failed, with the figures, so a user can see exactly why a strategy was kept
out. Passing makes a genome a *candidate*, not a champion: it must still earn promotion on
paper (:mod:`evolution.lifecycle`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from alphaloop.config import FrozenConfig


class GateConfig(FrozenConfig):
    """Thresholds of the promotion gate (the SPEC's defaults)."""

    min_profit_factor_in_sample: float = Field(1.3, ge=1.0, le=10.0)
    min_profit_factor_out_of_sample: float = Field(1.1, ge=1.0, le=10.0)
    max_drawdown_vs_pool: float = Field(1.3, gt=0.0, le=10.0)
    max_champion_correlation: float = Field(0.4, ge=-1.0, le=1.0)
    min_trades: int = Field(200, ge=1, le=100_000)
    min_deflated_sharpe: float = Field(0.95, ge=0.0, le=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateFigures:
    """The figures one verdict is made of."""

    profit_factor_in_sample: float
    profit_factor_out_of_sample: float
    max_drawdown: float
    pool_average_drawdown: float
    champion_correlation: float
    n_trades: int
    deflated_sharpe: float
    holdout_return: float = 0.0  # for the record; no rule reads it
    holdout_sharpe: float = 0.0
    paper_days: int = 0  # paper days in the out-of-sample profit factor (0: holdout alone)

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in self.__slots__}


@dataclass(frozen=True, slots=True, kw_only=True)
class GateVerdict:
    passed: bool
    reasons: tuple[str, ...]
    figures: Mapping[str, float]


def judge(figures: GateFigures, config: GateConfig) -> GateVerdict:
    """Return the verdict on ``figures``; ``reasons`` lists each failed rule (or ``passed``)."""
    failures: list[str] = []
    if not figures.profit_factor_in_sample >= config.min_profit_factor_in_sample:
        failures.append(
            f"profit factor in-sample {figures.profit_factor_in_sample:.3f} "
            f"< {config.min_profit_factor_in_sample}"
        )
    if not figures.profit_factor_out_of_sample >= config.min_profit_factor_out_of_sample:
        failures.append(
            f"profit factor out-of-sample {figures.profit_factor_out_of_sample:.3f} "
            f"< {config.min_profit_factor_out_of_sample}"
        )
    limit = config.max_drawdown_vs_pool * figures.pool_average_drawdown
    if not figures.max_drawdown <= limit:
        failures.append(
            f"max drawdown {figures.max_drawdown:.2%} > {config.max_drawdown_vs_pool} x pool "
            f"average {figures.pool_average_drawdown:.2%} = {limit:.2%}"
        )
    correlation = figures.champion_correlation
    if math.isnan(correlation) or correlation > config.max_champion_correlation:
        failures.append(
            f"daily-return correlation with champions {correlation:.3f} "
            f"> {config.max_champion_correlation}"
        )
    if figures.n_trades < config.min_trades:
        failures.append(f"{figures.n_trades} trades after costs < {config.min_trades}")
    if not figures.deflated_sharpe >= config.min_deflated_sharpe:
        failures.append(
            f"deflated Sharpe probability {figures.deflated_sharpe:.3f} "
            f"< {config.min_deflated_sharpe}"
        )
    passed = not failures
    return GateVerdict(
        passed=passed,
        reasons=("passed every rule",) if passed else tuple(failures),
        figures=figures.as_dict(),
    )
