"""LiveFeedback: a genome's paper results per account and period, and how fitness reads them.

The arena's review stage gives, per genome, account and day, the genome's allocation, its
attributed P&L and its execution figures (``arena/review.py``). This module (pure: no Ray, no
MLflow, no ledger) turns a period of those days into one :class:`LiveFeedback` record, stored in
the gene-pool store (``feedback`` table; ``alphaloop pool feedback``; ``feedback.json`` of
``pool export``), and pools a genome's records into the paper statistics fitness reads
(:func:`paper_stats`, used by :func:`evolution.fitness.with_paper`).

Definitions (daily returns ``x_t = pnl_t / allocation_t``):

* ``total_return`` = ``prod(1 + x_t) - 1``; ``max_drawdown`` of that compounded curve;
* ``volatility`` and ``sharpe``: standard deviation and mean / standard deviation of ``x_t``,
  annualised with the market's periods per year;
* ``win_rate``: share of days with ``pnl > 0`` among days with ``pnl != 0``;
* ``turnover``: mean daily traded notional / allocation; ``avg_slippage_bps``: allocation-weighted
  mean of the days' slippage; ``fill_ratio``: mean of the days' fill ratios;
  ``order_reject_count`` and ``risk_block_count``: sums; ``events``: the days' notable events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulators.metrics import annualised_sharpe

FEEDBACK_FIELDS = (
    "total_return",
    "max_drawdown",
    "volatility",
    "sharpe",
    "win_rate",
    "turnover",
    "avg_slippage_bps",
    "fill_ratio",
    "order_reject_count",
    "risk_block_count",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DayFigures:
    """One genome's day in one account (what the arena's review stored)."""

    day: str
    allocation: float
    pnl: float
    avg_slippage_bps: float = 0.0
    fill_ratio: float = 1.0
    order_reject_count: int = 0
    risk_block_count: int = 0
    turnover: float = 0.0
    events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.allocation) and self.allocation > 0.0):
            raise ValueError(f"{self.day}: allocation must be > 0, got {self.allocation}")
        if not math.isfinite(self.pnl):
            raise ValueError(f"{self.day}: pnl must be finite, got {self.pnl}")

    @property
    def paper_return(self) -> float:
        return self.pnl / self.allocation


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveFeedback:
    """A genome's paper record in one account over one period (inclusive dates)."""

    genome_id: str
    account: str
    period_start: str
    period_end: str
    days: int
    total_return: float
    max_drawdown: float
    volatility: float
    sharpe: float
    win_rate: float
    turnover: float
    avg_slippage_bps: float
    fill_ratio: float
    order_reject_count: int
    risk_block_count: int
    events: tuple[str, ...] = field(default_factory=tuple)
    config_hash: str = ""

    def __post_init__(self) -> None:
        if self.period_end < self.period_start:
            raise ValueError(f"period {self.period_start}..{self.period_end} is reversed")
        if self.days < 1:
            raise ValueError("a feedback record covers at least one paper day")
        for name in FEEDBACK_FIELDS:
            if not math.isfinite(float(getattr(self, name))):
                raise ValueError(f"feedback {name} must be finite")

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out["events"] = list(self.events)
        return out


def _curve_stats(returns: np.ndarray, periods_per_year: float) -> dict[str, float]:
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    std = float(returns.std(ddof=1)) if returns.size > 1 else 0.0
    scale = math.sqrt(periods_per_year)
    return {
        "total_return": float(equity[-1] - 1.0) if equity.size else 0.0,
        "max_drawdown": float(np.max(1.0 - equity / peak)) if equity.size else 0.0,
        "volatility": std * scale,
        "sharpe": annualised_sharpe(returns, periods_per_year),
    }


def summarise(
    genome_id: str,
    account: str,
    days: Sequence[DayFigures],
    *,
    periods_per_year: float,
    config_hash: str = "",
) -> LiveFeedback:
    """Return the :class:`LiveFeedback` of ``days`` (one genome, one account, in date order)."""
    if not days:
        raise ValueError(f"genome {genome_id} in {account}: no paper day to summarise")
    ordered = sorted(days, key=lambda d: d.day)
    returns = np.array([d.paper_return for d in ordered], dtype=float)
    stats = _curve_stats(returns, periods_per_year)
    decided = [d.pnl for d in ordered if d.pnl != 0.0]
    allocation = np.array([d.allocation for d in ordered])
    events: list[str] = []
    for d in ordered:
        events.extend(f"{d.day}: {event}" for event in d.events)
    return LiveFeedback(
        genome_id=genome_id,
        account=account,
        period_start=ordered[0].day,
        period_end=ordered[-1].day,
        days=len(ordered),
        win_rate=float(np.mean([p > 0 for p in decided])) if decided else 0.0,
        turnover=float(np.mean([d.turnover for d in ordered])),
        avg_slippage_bps=float(
            np.average([d.avg_slippage_bps for d in ordered], weights=allocation)
        ),
        fill_ratio=float(np.mean([d.fill_ratio for d in ordered])),
        order_reject_count=int(sum(d.order_reject_count for d in ordered)),
        risk_block_count=int(sum(d.risk_block_count for d in ordered)),
        events=tuple(events),
        config_hash=config_hash,
        **stats,
    )


def pooled_returns(days_by_account: Mapping[str, Sequence[DayFigures]]) -> list[tuple[str, float]]:
    """Return a genome's daily paper returns pooled over accounts: sum(pnl) / sum(allocation)."""
    pnl: dict[str, float] = {}
    allocation: dict[str, float] = {}
    for days in days_by_account.values():
        for d in days:
            pnl[d.day] = pnl.get(d.day, 0.0) + d.pnl
            allocation[d.day] = allocation.get(d.day, 0.0) + d.allocation
    return [(day, pnl[day] / allocation[day]) for day in sorted(pnl)]


def paper_stats(returns: Sequence[float], *, periods_per_year: float) -> dict[str, float]:
    """Return the window statistics fitness scores a paper record by.

    Paper days stand in for trades (``n_trades`` = days, win rate and profit factor over days),
    so :func:`evolution.fitness.window_score` reads a paper record like a backtest window.
    """
    values = np.asarray(returns, dtype=float)
    if values.size == 0:
        return {"n_trades": 0.0}
    stats = _curve_stats(values, periods_per_year)
    gains = float(values[values > 0].sum())
    losses = float(-values[values < 0].sum())
    decided = values[values != 0]
    return {
        "sharpe": stats["sharpe"],
        "max_drawdown": stats["max_drawdown"],
        "win_rate": float((decided > 0).mean()) if decided.size else 0.0,
        "profit_factor": gains / losses if losses > 0 else (math.inf if gains > 0 else 0.0),
        "n_trades": float(values.size),
    }
