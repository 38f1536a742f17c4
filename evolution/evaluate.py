"""Scoring genomes on the live window and the year-ago window (pure; Ray wraps it).

Windows, as of a date ``D`` (inclusive; only bars whose close is at or before ``D`` are ever
seen):

* **live**: the last ``W`` bars up to ``D``;
* **year_ago**: ``W`` bars ending at the last bar whose close is at or before ``D - 365 days``.

An evolution session hands this module the bars up to ``D = as_of - holdout`` only: the last
``holdout`` bars before the as-of date are scored by :class:`HoldoutEvaluator` alone, for the
promotion gate's out-of-sample figures, so fitness, Optuna and selection never see them.

Indicators are computed once on the whole history up to ``D`` (they need their warm-up, and
the history before a window is the past, never the future). A genome's signals are then
compiled only on the bars from just before the year-ago window to ``D``: compilation combines
those indicator values bar by bar (looking back at most :data:`COMPILE_LOOKBACK` bars), so
its values there are exactly those of a compilation on the whole history, at a fraction of the
cost on long histories. Each window is backtested from a flat book with costs and the market's
rules on. Fitness is never cost-free: bars of the frictionless ``none`` market (the embedded
synthetic market's) are scored with the fractional sizes and no fees, as the arena trades them
(its ``BrokerRules``). Every fill pays the arena's half-spread and square-root impact at
the lab's capital and fills at most the arena's share of the bar's volume
(:class:`CostConfig`), at the next bar's reference price (``fill="next-bar"``: the bar's VWAP
proxy, the price the arena's fill model starts from; not the open). (Scoring them under whole US
shares made every genome untradeable once a synthetic price rose above the account's cash,
while the arena still traded it: the gate's holdout then saw no trade.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from alphaloop.config import FrozenConfig
from alphaloop.errors import ConfigError, GenomeError
from evolution.fitness import Fitness, FitnessConfig, combine
from genome.cache import CacheKey, IndicatorCache
from genome.compile import compile_genome
from genome.genes import Genome
from genome.regime import RegimeSpec
from simulators.backtest import BacktestConfig, prepare_panel, run_backtest_arrays
from simulators.bars import Panel
from simulators.fill_model import FillParams

WINDOW_NAMES: tuple[str, ...] = ("live", "year_ago")
# Bars before its first bar that genome compilation reads beyond the cached indicators: a
# moving-average cross compares with the previous bar (genome.compile, MACross).
COMPILE_LOOKBACK = 1
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
    "capacity",  # share of the intended entry notional the participation cap let fill
)


_ARENA_FILL = FillParams()


class CostConfig(FrozenConfig):
    """Costs of fitness backtests (always on): the arena's fill model at the lab's capital.

    ``cash`` is the lab's capital (the arena's ``starting_capital``; the packaged defaults
    agree). Each fill pays half the spread and the square-root impact
    ``impact_coefficient * sigma * sqrt(qty / bar volume)``, and fills at most
    ``participation_cap`` of the bar's volume; the defaults are the arena broker's
    (:class:`simulators.fill_model.FillParams`). So a genome whose orders are large against
    the volume it trades is scored with the impact and the unfilled orders it would meet.
    ``slippage`` is an extra flat cost on top (0: the arena has none).
    """

    cash: float = Field(1_000_000.0, gt=0)
    slippage: float = Field(0.0, ge=0.0, le=0.05, description="extra adverse fraction per fill")
    half_spread_bps: float = Field(_ARENA_FILL.half_spread_bps, ge=0.0, le=500.0)
    impact_coefficient: float = Field(_ARENA_FILL.impact_coefficient, ge=0.0, le=100.0)
    participation_cap: float | None = Field(_ARENA_FILL.participation_cap, gt=0.0, le=1.0)


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


def make_windows(
    panel: Panel, window: int, warmup: int = 60, *, label: str | None = None
) -> Windows:
    """Return the live and year-ago windows of a panel already truncated at ``D``.

    ``label`` names the date in the error (default ``--as-of D``).

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
            f"{label or f'--as-of {as_of.date()}'}: the data start {first} leave {year_ago[0]} "
            "bars before the "
            f"year-ago window of {window} bars; need at least {warmup} (use a later --as-of, "
            "a smaller --window or longer data)"
        )
    return Windows(live=live, year_ago=year_ago, as_of=as_of)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window's statistics (:data:`STAT_KEYS`) and daily returns of the equity curve."""

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
    """Return the backtest settings fitness scores ``panel`` with (module docstring)."""
    market = panel.market if panel.market in ("cn", "us", "crypto") else "none"
    return BacktestConfig(
        cash=costs.cash,
        # The arena decides at the close of D-1 and works the order over day D at its bars'
        # reference prices: a daily bar's own reference is that price at the bar's size.
        fill="next-bar",
        market=market,
        sizing="fraction",
        slippage=costs.slippage,
        half_spread_bps=costs.half_spread_bps,
        impact_coefficient=costs.impact_coefficient,
        participation_cap=costs.participation_cap,
    )


def _slice(value: float | np.ndarray | None, start: int, stop: int) -> float | np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value[start:stop]
    return value


class RowWindowCache(IndicatorCache):
    """An indicator cache over the last bars of a panel, fed by a cache of the whole panel.

    Every indicator is computed (and cached) on the whole history by ``full`` and handed out
    from bar ``start`` on, so its values are exactly those of the whole-history indicator; only
    the condition signals that :func:`genome.compile.compile_genome` builds from them are
    computed and cached on the shorter panel. Any other cached computation would run on the
    shorter panel without its warm-up, so it is refused with an error naming its key.

    Parameters
    ----------
    full:
        The cache of the whole panel.
    start:
        The first bar kept; :attr:`panel` is ``full.panel.slice_bars(start, T)``.
    """

    def __init__(self, full: IndicatorCache, start: int) -> None:
        super().__init__(full.panel.slice_bars(start, full.panel.n_bars), max_bytes=full.max_bytes)
        self.full = full
        self.start = start

    def get(self, key: CacheKey, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the signal cached under ``key`` (only ``("signal", ...)`` keys are allowed)."""
        if not key or key[0] != "signal":
            raise GenomeError(
                f"RowWindowCache: indicator {key!r} has no whole-history version here; add it "
                "to evolution.evaluate.RowWindowCache so it is computed on the full panel"
            )
        return super().get(key, compute)

    def _rows(self, array: np.ndarray) -> np.ndarray:
        return array[self.start :]

    def sma(self, field: str, window: int) -> np.ndarray:
        """Return the whole-history SMA of a panel field, from bar ``start`` on."""
        return self._rows(self.full.sma(field, window))

    def ema(self, field: str, window: int) -> np.ndarray:
        """Return the whole-history EMA of a panel field, from bar ``start`` on."""
        return self._rows(self.full.ema(field, window))

    def std(self, field: str, window: int) -> np.ndarray:
        """Return the whole-history rolling standard deviation, from bar ``start`` on."""
        return self._rows(self.full.std(field, window))

    def rolling_max(self, field: str, window: int) -> np.ndarray:
        """Return the whole-history rolling maximum, from bar ``start`` on."""
        return self._rows(self.full.rolling_max(field, window))

    def rolling_min(self, field: str, window: int) -> np.ndarray:
        """Return the whole-history rolling minimum, from bar ``start`` on."""
        return self._rows(self.full.rolling_min(field, window))

    def rsi(self, window: int) -> np.ndarray:
        """Return the whole-history RSI, from bar ``start`` on."""
        return self._rows(self.full.rsi(window))

    def atr(self, window: int) -> np.ndarray:
        """Return the whole-history ATR, from bar ``start`` on."""
        return self._rows(self.full.atr(window))

    def atr_pct(self, window: int) -> np.ndarray:
        """Return the whole-history ATR / close, from bar ``start`` on."""
        return self._rows(self.full.atr_pct(window))

    def rate_of_change(self, window: int) -> np.ndarray:
        """Return the whole-history rate of change, from bar ``start`` on."""
        return self._rows(self.full.rate_of_change(window))

    def returns(self) -> np.ndarray:
        """Return the whole-history simple returns, from bar ``start`` on."""
        return self._rows(self.full.returns())

    def log_returns(self) -> np.ndarray:
        """Return the whole-history log returns, from bar ``start`` on."""
        return self._rows(self.full.log_returns())

    def realised_volatility(self, window: int) -> np.ndarray:
        """Return the whole-history realised volatility, from bar ``start`` on."""
        return self._rows(self.full.realised_volatility(window))

    def rv_percentile(self, window: int, lookback: int) -> np.ndarray:
        """Return the whole-history realised-volatility rank, from bar ``start`` on."""
        return self._rows(self.full.rv_percentile(window, lookback))

    def previous(self, name: str, window: int) -> np.ndarray:
        """Return the whole-history shifted channel or volume average, from bar ``start`` on."""
        return self._rows(self.full.previous(name, window))

    def kelly_ratio(self, window: int) -> np.ndarray:
        """Return the whole-history Kelly ratio, from bar ``start`` on."""
        return self._rows(self.full.kelly_ratio(window))

    def regimes(self, spec: RegimeSpec | None = None) -> np.ndarray:
        """Return the whole-history regime codes, from bar ``start`` on."""
        return self._rows(self.full.regimes(spec))


class GenomeEvaluator:
    """Evaluates genomes on one panel (already truncated at ``D``) with a shared indicator cache.

    Everything that does not depend on the genome is built once here: the two window views,
    their market-rule arrays and contiguous price copies (:func:`prepare_panel`), and the
    backtest configuration per ``max_positions``. Per genome, only the compilation and the
    two array backtests (:func:`run_backtest_arrays`, no pandas objects) remain.

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
        label: str | None = None,
    ) -> None:
        self.panel = panel
        self.fitness_config = fitness or FitnessConfig(window=window)
        self.windows = make_windows(panel, window, label=label)
        self.cache = IndicatorCache(panel)
        self.backtest_config = fitness_backtest_config(panel, costs or CostConfig())
        self._views = {name: panel.slice_bars(*self.windows.bounds(name)) for name in WINDOW_NAMES}
        self._prepared = {
            name: prepare_panel(view, self.backtest_config) for name, view in self._views.items()
        }
        self._configs: dict[int, BacktestConfig] = {}
        # Compile only on the bars the windows read (plus the compiler's own look-back);
        # indicators still come from the whole history, through self.cache.
        first = min(start for start, _stop in (self.windows.live, self.windows.year_ago))
        self.compile_start = max(0, first - COMPILE_LOOKBACK)
        self._compile_cache: IndicatorCache = (
            RowWindowCache(self.cache, self.compile_start) if self.compile_start else self.cache
        )

    def _config(self, max_positions: int) -> BacktestConfig:
        config = self._configs.get(max_positions)
        if config is None:
            # model_copy skips validation; max_positions is inside the genome's bounds.
            config = self.backtest_config.model_copy(update={"max_positions": max_positions})
            self._configs[max_positions] = config
        return config

    def evaluate(self, genome: Genome) -> Evaluation:
        """Score ``genome`` on both windows (see the module docstring)."""
        compiled = compile_genome(genome, self._compile_cache.panel, self._compile_cache)
        config = self._config(compiled.max_positions)
        results: dict[str, WindowResult] = {}
        for name, view in self._views.items():
            start, stop = (bar - self.compile_start for bar in self.windows.bounds(name))
            results[name] = _window_result(
                view, compiled, start, stop, config, self._prepared[name]
            )
        fitness = combine(results["live"].stats, results["year_ago"].stats, self.fitness_config)
        return Evaluation(genome_id=genome.id, windows=results, fitness=fitness)

    def evaluate_many(self, genomes: Iterable[Genome]) -> dict[str, Evaluation]:
        """Evaluate genomes; results keyed by genome id (never by order)."""
        return {genome.id: self.evaluate(genome) for genome in genomes}


def split_holdout(panel: Panel, holdout: int) -> Panel:
    """Return the bars fitness may see: ``panel`` without its last ``holdout`` bars.

    Raises
    ------
    ConfigError
        When the panel has no more bars than the holdout.
    """
    if holdout < 0:
        raise ConfigError(f"holdout must be >= 0 bars, got {holdout}")
    if panel.n_bars <= holdout:
        raise ConfigError(
            f"holdout of {holdout} bars leaves nothing to evolve on: the data have "
            f"{panel.n_bars} bars up to the as-of date"
        )
    return panel.slice_bars(0, panel.n_bars - holdout)


class HoldoutEvaluator:
    """Backtests genomes on the holdout: the last ``holdout`` bars up to the as-of date.

    The same rules and costs as :class:`GenomeEvaluator`; indicators come from the whole
    history up to the as-of date (the past of each holdout bar), the backtest starts flat at
    the holdout's first bar. Only the promotion gate reads these figures.

    Parameters
    ----------
    panel:
        Bars up to the as-of date (holdout included).
    holdout:
        Bars in the holdout (``>= 2``).
    costs:
        Cost settings.
    """

    def __init__(self, panel: Panel, *, holdout: int, costs: CostConfig | None = None) -> None:
        if not 2 <= holdout < panel.n_bars:
            raise ConfigError(
                f"holdout of {holdout} bars needs 2 .. {panel.n_bars - 1} bars of data"
            )
        self.panel = panel
        self.start = panel.n_bars - holdout
        self.cache = IndicatorCache(panel)
        self.backtest_config = fitness_backtest_config(panel, costs or CostConfig())
        self.view = panel.slice_bars(self.start, panel.n_bars)
        self.prepared = prepare_panel(self.view, self.backtest_config)
        self.compile_start = max(0, self.start - COMPILE_LOOKBACK)
        self._compile_cache: IndicatorCache = (
            RowWindowCache(self.cache, self.compile_start) if self.compile_start else self.cache
        )
        self._configs: dict[int, BacktestConfig] = {}

    def evaluate(self, genome: Genome) -> WindowResult:
        """Return the genome's statistics and daily returns on the holdout."""
        compiled = compile_genome(genome, self._compile_cache.panel, self._compile_cache)
        config = self._configs.get(compiled.max_positions)
        if config is None:
            config = self.backtest_config.model_copy(
                update={"max_positions": compiled.max_positions}
            )
            self._configs[compiled.max_positions] = config
        offset = self.start - self.compile_start
        return _window_result(self.view, compiled, offset, offset + self.view.n_bars, config,
                              self.prepared)  # fmt: skip


def _window_result(
    view: Panel, compiled: Any, start: int, stop: int, config: BacktestConfig, prepared: Any
) -> WindowResult:
    result = run_backtest_arrays(
        view,
        compiled.entries[start:stop],
        compiled.exits[start:stop],
        config=config,
        sl_stop=compiled.sl_stop,
        tp_stop=compiled.tp_stop,
        tsl_stop=_slice(compiled.tsl_stop, start, stop),
        time_stop=compiled.time_stop,
        size=compiled.size[start:stop],
        prepared=prepared,
    )
    equity = result.equity
    returns = np.diff(equity) / equity[:-1] if equity.size > 1 else np.zeros(0)
    stats = {key: float(result.metrics.get(key, 0.0)) for key in STAT_KEYS}
    return WindowResult(stats=stats, daily_returns=returns)
