"""Scoring genomes on the live window and the year-ago window (pure; Ray wraps it).

Windows, as of a date ``D`` (inclusive; only bars whose close is at or before ``D`` are ever
seen):

* **live**: the last ``W`` bars up to ``D``;
* **year_ago**: ``W`` bars ending at the last bar whose close is at or before ``D - 365 days``.

A genome is compiled once on the whole history up to ``D`` (indicators need their warm-up,
and the history before a window is the past, never the future), then each window is
backtested from a flat book with costs and the market's rules on. The frictionless ``none``
market is never used for fitness: bars of an unknown market are scored under US-equity rules
plus the configured slippage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

from alphaloop.config import FrozenConfig
from alphaloop.errors import ConfigError
from evolution.fitness import Fitness, FitnessConfig, combine
from genome.cache import IndicatorCache
from genome.compile import compile_genome
from genome.genes import Genome
from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel

STAT_KEYS = (
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "n_trades",
    "exposure",
    "turnover",
    "volatility",
)


class CostConfig(FrozenConfig):
    """Costs of fitness backtests (always on)."""

    cash: float = Field(1_000_000.0, gt=0)
    slippage: float = Field(0.0005, ge=0.0, le=0.05, description="adverse fraction per fill")


@dataclass(frozen=True, slots=True)
class Windows:
    """Bar positions ``[start, stop)`` of the two windows inside the panel up to ``D``."""

    live: tuple[int, int]
    year_ago: tuple[int, int]
    as_of: pd.Timestamp

    def bounds(self, name: str) -> tuple[int, int]:
        return self.live if name == "live" else self.year_ago


def _as_of_timestamp(panel: Panel, as_of: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is None:
        # A date means the whole day D in the exchange's zone: every bar closing that day.
        stamp = stamp.tz_localize(panel.index.tz) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return stamp


def truncate_to(panel: Panel, as_of: str | pd.Timestamp) -> Panel:
    """Return the bars whose close is at or before the end of day ``as_of`` (no look-ahead)."""
    return panel.truncate_after(_as_of_timestamp(panel, as_of))


def make_windows(panel: Panel, window: int, warmup: int = 60) -> Windows:
    """Return the live and year-ago windows of a panel already truncated at ``D``.

    Raises
    ------
    ConfigError
        When the data are too short for a year-ago window of ``window`` bars plus ``warmup``.
    """
    n = panel.n_bars
    if n == 0:
        raise ConfigError("no bars at or before the as-of date")
    as_of = panel.index[-1]
    live = (n - window, n)
    year_end = int(panel.index.searchsorted(as_of - pd.Timedelta(days=365), side="right"))
    year_ago = (year_end - window, year_end)
    if live[0] < 0 or year_ago[0] < warmup:
        first = panel.index[0].date()
        raise ConfigError(
            f"--as-of {as_of.date()}: the data start {first} leave {year_ago[0]} bars before the "
            f"year-ago window of {window} bars; need at least {warmup} (use a later --as-of, "
            "a smaller --window or longer data)"
        )
    return Windows(live=live, year_ago=year_ago, as_of=as_of)


@dataclass(frozen=True, slots=True)
class WindowResult:
    stats: Mapping[str, float]
    daily_returns: np.ndarray


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one genome scored: per-window statistics and returns, and the combined fitness."""

    genome_id: str
    windows: Mapping[str, WindowResult]
    fitness: Fitness

    @property
    def score(self) -> float:
        return self.fitness.score

    def total_trades(self) -> int:
        return int(sum(result.stats.get("n_trades", 0.0) for result in self.windows.values()))


def fitness_backtest_config(panel: Panel, costs: CostConfig) -> BacktestConfig:
    market = panel.market if panel.market in ("cn", "us", "crypto") else "us"
    return BacktestConfig(
        cash=costs.cash, fill="next-open", market=market, sizing="fraction", slippage=costs.slippage
    )


def _slice(value: float | np.ndarray | None, start: int, stop: int) -> float | np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value[start:stop]
    return value


class GenomeEvaluator:
    """Evaluates genomes on one panel (already truncated at ``D``) with a shared indicator cache.

    Parameters
    ----------
    panel:
        Bars up to the as-of date.
    window:
        Bars per window.
    fitness, costs:
        Scoring and cost settings.
    """

    def __init__(
        self,
        panel: Panel,
        *,
        window: int = 250,
        fitness: FitnessConfig | None = None,
        costs: CostConfig | None = None,
    ) -> None:
        self.panel = panel
        self.fitness_config = fitness or FitnessConfig(window=window)
        self.windows = make_windows(panel, window)
        self.cache = IndicatorCache(panel)
        self.backtest_config = fitness_backtest_config(panel, costs or CostConfig())
        self._views = {
            name: panel.slice_bars(*self.windows.bounds(name)) for name in ("live", "year_ago")
        }

    def evaluate(self, genome: Genome) -> Evaluation:
        compiled = compile_genome(genome, self.panel, self.cache)
        results: dict[str, WindowResult] = {}
        for name, view in self._views.items():
            start, stop = self.windows.bounds(name)
            config = self.backtest_config.model_copy(
                update={"max_positions": compiled.max_positions}
            )
            result = run_backtest(
                view,
                compiled.entries[start:stop],
                compiled.exits[start:stop],
                config=config,
                sl_stop=compiled.sl_stop,
                tp_stop=compiled.tp_stop,
                tsl_stop=_slice(compiled.tsl_stop, start, stop),
                time_stop=compiled.time_stop,
                size=compiled.size[start:stop],
            )
            equity = result.equity.to_numpy(dtype=float)
            returns = np.diff(equity) / equity[:-1] if equity.size > 1 else np.zeros(0)
            stats = {key: float(result.metrics.get(key, 0.0)) for key in STAT_KEYS}
            results[name] = WindowResult(stats=stats, daily_returns=returns)
        fitness = combine(results["live"].stats, results["year_ago"].stats, self.fitness_config)
        return Evaluation(genome_id=genome.id, windows=results, fitness=fitness)

    def evaluate_many(self, genomes: Iterable[Genome]) -> dict[str, Evaluation]:
        """Evaluate genomes; results keyed by genome id (never by order)."""
        return {genome.id: self.evaluate(genome) for genome in genomes}
