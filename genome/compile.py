"""Compile a genome into the arrays the backtester takes, over a multi-asset panel.

Signals at bar ``t`` use bars ``<= t`` only; the backtester fills them at the next bar's open.
What a compiled genome holds (all ``(T, N)`` unless said otherwise):

* ``entries`` - the entry rule (conditions joined by AND/OR), and only where the asset is
  tradable, the bar's regime is allowed, the position size is positive, a needed ATR stop is
  known and the exit rule does not fire on the same bar;
* ``exits`` - the opposite signal when the genome asks for it, else all False;
* ``sl_stop``, ``tp_stop`` - fractions of the entry price (scalars) or ``None``;
* ``tsl_stop`` - a fraction (scalar) for a percent trailing stop, or ``multiple * ATR / close``
  per bar for an ATR trailing stop, or ``None``;
* ``time_stop`` - bars, or ``None``; ``size`` - fraction of equity per new position;
  ``max_positions`` - the most positions held at once.

Every indicator goes through an :class:`~genome.cache.IndicatorCache`, and so does every
condition's boolean signal, so a population compiled on one panel computes each distinct
indicator and condition once. Nothing here evaluates text: genomes are data.

Own bars: the cache computes each symbol's indicators on its own (tradable) bars and holds
them flat over the rows where it has none (:mod:`simulators.own_bars`), so a condition read on
a row where the symbol trades compares its own bars (a cross's "before" is its previous bar,
however many suspended rows lie between); conditions, and so entries and exits, are False on
rows where it does not trade. The backtester counts a time stop in the symbol's own bars too.
A symbol's signals are therefore the same whether it is compiled alone or in a panel whose
other symbols trade on its suspended days (only the market regime, a property of the whole
panel, depends on the other symbols).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphaloop.errors import GenomeError
from genome.bounds import REGIMES
from genome.cache import CacheKey, IndicatorCache
from genome.genes import (
    ATRPct,
    ATRTrailing,
    BollingerTouch,
    CappedKelly,
    Condition,
    DonchianBreakout,
    FixedFraction,
    Genome,
    MACross,
    Momentum,
    PriceVsMA,
    RSILevel,
    RVPercentile,
    Sizing,
    VolTarget,
    VolumeSurge,
)
from genome.primitives import (
    clipped_weight,
    compare_arrays,
    compare_level,
    compare_lower_band,
    compare_upper_band,
    cross,
    mask_entries,
    surge,
    vol_target_weight,
)
from genome.random import numeric_genes
from genome.regime import REGIME_CODES, RegimeSpec
from simulators.backtest import BacktestConfig, BacktestResult, run_backtest
from simulators.bars import Panel
from simulators.metrics import panel_periods_per_year


def periods_per_year(panel: Panel) -> float:
    """Return how many bars make a year on ``panel`` (252 trading days; 365 for crypto)."""
    try:
        return panel_periods_per_year(panel)
    except ValueError:
        raise GenomeError(
            f"panel.freq: cannot annualise bars of frequency {panel.freq!r}"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledGenome:
    """The backtester's inputs for one genome on one panel (see the module docstring)."""

    genome_id: str
    entries: np.ndarray
    exits: np.ndarray
    sl_stop: float | None
    tp_stop: float | None
    tsl_stop: float | np.ndarray | None
    time_stop: int | None
    size: np.ndarray
    max_positions: int

    def slice_bars(self, start: int, stop: int) -> CompiledGenome:
        """Return the arrays of bars ``start:stop`` (to backtest one window of a longer panel).

        Compile on the whole history, so indicators are warmed up, then slice to the window;
        pair it with ``panel.slice_bars(start, stop)``.
        """
        rows = slice(start, stop)
        tsl = self.tsl_stop[rows] if isinstance(self.tsl_stop, np.ndarray) else self.tsl_stop
        return dataclasses.replace(
            self,
            entries=self.entries[rows],
            exits=self.exits[rows],
            size=self.size[rows],
            tsl_stop=tsl,
        )

    def backtest_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments of ``simulators.backtest.run_backtest`` after ``panel``."""
        return {
            "entries": self.entries,
            "exits": self.exits,
            "sl_stop": self.sl_stop,
            "tp_stop": self.tp_stop,
            "tsl_stop": self.tsl_stop,
            "time_stop": self.time_stop,
            "size": self.size,
        }


# --------------------------------------------------------------------------- conditions
def condition_signal(condition: Condition, cache: IndicatorCache) -> np.ndarray:
    """Return the ``(T, N)`` bool signal of one entry condition (cached by the condition).

    The signal is False wherever the asset has no bar of its own (``tradable`` False): a
    suspended day fires no entry and no exit (see the module docstring).
    """
    return cache.get(("signal", condition), lambda: _compute_signal(condition, cache))


# The comparison codes of genome.primitives' signal kernels.
_LT, _GT, _LE, _GE = 0, 1, 2, 3


def _compute_signal(condition: Condition, cache: IndicatorCache) -> np.ndarray:
    """Return the condition's signal where the asset trades (one numba pass per signal).

    NaN comparisons are False, so warm-up bars never signal.
    """
    panel = cache.panel
    close = panel.close
    tradable = panel.tradable
    if isinstance(condition, PriceVsMA):
        average = cache.moving_average(condition.ma, "close", condition.window)
        side = _GT if condition.side == "above" else _LT
        return compare_arrays(close, average, side, tradable)  # type: ignore[no-any-return]
    if isinstance(condition, MACross):
        fast = cache.moving_average(condition.ma, "close", condition.fast)
        slow = cache.moving_average(condition.ma, "close", condition.slow)
        return cross(fast, slow, condition.direction == "above", tradable)  # type: ignore[no-any-return]
    if isinstance(condition, RSILevel):
        side = _LT if condition.side == "below" else _GT
        level = float(condition.threshold)
        return compare_level(cache.rsi(condition.window), level, side, tradable)  # type: ignore[no-any-return]
    if isinstance(condition, BollingerTouch):
        middle = cache.sma("close", condition.window)
        deviation = cache.std("close", condition.window)
        band = compare_lower_band if condition.band == "lower" else compare_upper_band
        return band(close, middle, float(condition.width), deviation, tradable)  # type: ignore[no-any-return]
    if isinstance(condition, DonchianBreakout):
        if condition.side == "high":
            return compare_arrays(
                close, cache.previous("max_high", condition.window), _GT, tradable
            )  # type: ignore[no-any-return]
        return compare_arrays(close, cache.previous("min_low", condition.window), _LT, tradable)  # type: ignore[no-any-return]
    if isinstance(condition, Momentum):
        side = _GT if condition.side == "above" else _LT
        level = float(condition.threshold)
        return compare_level(cache.rate_of_change(condition.window), level, side, tradable)  # type: ignore[no-any-return]
    if isinstance(condition, VolumeSurge):
        average = cache.previous("sma_volume", condition.window)
        return surge(panel.volume, average, float(condition.multiple), tradable)  # type: ignore[no-any-return]
    if isinstance(condition, ATRPct):
        side = _LT if condition.side == "below" else _GT
        level = float(condition.threshold)
        return compare_level(cache.atr_pct(condition.window), level, side, tradable)  # type: ignore[no-any-return]
    if isinstance(condition, RVPercentile):
        rank = cache.rv_percentile(condition.window, condition.lookback)
        side = _LE if condition.side == "below" else _GE
        level = float(condition.threshold)
        return compare_level(rank, level, side, tradable)  # type: ignore[no-any-return]
    raise GenomeError(f"entry: unknown condition type {type(condition).__name__}")


def combine_signals(
    conditions: Iterable[Condition], combiner: str, cache: IndicatorCache
) -> np.ndarray:
    """Return the conditions' signals joined by ``"and"`` or ``"or"`` (all False if none)."""
    panel = cache.panel
    signals = [condition_signal(condition, cache) for condition in conditions]
    if not signals:
        return np.zeros((panel.n_bars, panel.n_assets), dtype=bool)
    joined = signals[0].copy()
    for signal in signals[1:]:
        if combiner == "and":
            joined &= signal
        else:
            joined |= signal
    return joined


def condition_indicator_keys(condition: Condition) -> tuple[CacheKey, ...]:
    """Return the :class:`~genome.cache.IndicatorCache` keys a condition's signal reads.

    It mirrors :func:`_compute_signal` (a test compiles genomes on a fresh cache and compares),
    so a scheduler can tell which genomes share indicators without computing anything.
    """
    if isinstance(condition, PriceVsMA):
        return ((condition.ma, "close", condition.window),)
    if isinstance(condition, MACross):
        return ((condition.ma, "close", condition.fast), (condition.ma, "close", condition.slow))
    if isinstance(condition, RSILevel):
        return (("rsi", condition.window),)
    if isinstance(condition, BollingerTouch):
        return (("sma", "close", condition.window), ("std", "close", condition.window))
    if isinstance(condition, DonchianBreakout):
        name = "max_high" if condition.side == "high" else "min_low"
        return (("prev", name, condition.window),)
    if isinstance(condition, Momentum):
        return (("roc", condition.window),)
    if isinstance(condition, VolumeSurge):
        return (("prev", "sma_volume", condition.window),)
    if isinstance(condition, ATRPct):
        return (("atr_pct", condition.window),)
    if isinstance(condition, RVPercentile):
        return (
            ("rv_pct", condition.window, condition.lookback),
            ("rv", condition.window),
            ("log_returns",),
        )
    raise GenomeError(f"entry: unknown condition type {type(condition).__name__}")


def indicator_keys(genome: Genome) -> frozenset[CacheKey]:
    """Return every indicator key (never a ``"signal"`` key) that compiling ``genome`` reads.

    Exactly the non-signal keys a fresh :class:`~genome.cache.IndicatorCache` holds after
    :func:`compile_genome`; used to send genomes that share indicators to the same worker.
    """
    keys: set[CacheKey] = set()
    conditions = genome.entry
    if genome.exits.opposite_signal:
        # A mirrored breakout reads the other channel (high <-> low).
        conditions = conditions + genome.opposite_conditions()
    for condition in conditions:
        keys.update(condition_indicator_keys(condition))
    sizing = genome.sizing
    if isinstance(sizing, VolTarget):
        keys.update({("rv", sizing.window), ("log_returns",)})
    elif isinstance(sizing, CappedKelly):
        keys.update({("kelly", sizing.window), ("returns",)})
    if len(genome.regimes) != len(REGIMES):
        keys.add(("regimes", RegimeSpec()))
    if isinstance(genome.exits.trailing, ATRTrailing):
        keys.add(("atr_pct", genome.exits.trailing.window))
    return frozenset(keys)


# --------------------------------------------------------------------------- sizing
def position_size(sizing: Sizing, cache: IndicatorCache) -> np.ndarray:
    """Return the fraction of equity for a new position at each bar, ``(T, N)``, >= 0.

    Not cached: nearly every genome has its own sizing numbers, and the indicators behind
    them (realised volatility, the Kelly ratio) are cached already.
    """
    panel = cache.panel
    if isinstance(sizing, FixedFraction):
        return np.full((panel.n_bars, panel.n_assets), sizing.fraction)
    # No estimate yet (warm-up) means no position, not a guess: the kernels give 0 there.
    if isinstance(sizing, VolTarget):
        # A flat asset (sigma 0) fills its slot; an unknown sigma (warm-up) gets nothing.
        return vol_target_weight(  # type: ignore[no-any-return]
            cache.realised_volatility(sizing.window),
            math.sqrt(periods_per_year(panel)),
            float(sizing.target),
            int(sizing.max_positions),
        )
    if isinstance(sizing, CappedKelly):
        return clipped_weight(  # type: ignore[no-any-return]
            cache.kelly_ratio(sizing.window), float(sizing.cap)
        )
    raise GenomeError(f"sizing: unknown sizing type {type(sizing).__name__}")


# --------------------------------------------------------------------------- genome
def allowed_regime_mask(genome: Genome, cache: IndicatorCache) -> np.ndarray | None:
    """Return the ``(T,)`` bars whose regime the genome allows, or ``None`` if it allows all.

    Bars whose regime is unknown (too little history) are allowed only by a genome that
    trades in every regime.
    """
    if len(genome.regimes) == len(REGIMES):
        return None
    codes = cache.regimes()
    # A lookup table over the codes (-1 unknown, then 0..): what np.isin gives, without its
    # sorting on every genome.
    allowed = np.zeros(len(REGIMES) + 1, dtype=bool)
    for regime in genome.regimes:
        allowed[REGIME_CODES[regime] + 1] = True
    mask: np.ndarray = allowed[codes.astype(np.int64) + 1]
    return mask


# Placeholders of mask_entries' unused inputs (never read: their flags are False).
_ALL_REGIMES = np.ones(1, dtype=bool)
_NO_TRAILING = np.zeros((1, 1))


def compile_genome(
    genome: Genome, panel: Panel, cache: IndicatorCache | None = None
) -> CompiledGenome:
    """Turn ``genome`` into backtester inputs over ``panel`` (see the module docstring).

    Parameters
    ----------
    genome:
        A validated genome.
    panel:
        The market data.
    cache:
        An indicator cache of this very panel, shared across a population; a fresh one is
        made when omitted.

    Raises
    ------
    GenomeError
        When ``cache`` belongs to another panel.
    """
    if cache is None:
        cache = IndicatorCache(panel)
    elif cache.panel is not panel:
        raise GenomeError("compile_genome: the indicator cache was built for another panel")
    entries = combine_signals(genome.entry, genome.combine, cache)
    if genome.exits.opposite_signal:
        exits = combine_signals(genome.opposite_conditions(), genome.combine, cache)
    else:
        exits = np.zeros_like(entries)
    size = position_size(genome.sizing, cache)
    regimes = allowed_regime_mask(genome, cache)
    trailing = genome.exits.trailing
    tsl_stop: float | np.ndarray | None
    if isinstance(trailing, ATRTrailing):
        with np.errstate(invalid="ignore"):
            tsl_stop = trailing.multiple * cache.atr_pct(trailing.window)
    elif trailing is not None:
        tsl_stop = trailing.pct
    else:
        tsl_stop = None
    # An entry needs a tradable bar, a positive size, no exit on the bar, an allowed regime
    # and a known ATR stop: one pass over ``entries`` (a fresh array) instead of five.
    mask_entries(
        entries,
        panel.tradable,
        size,
        exits,
        _ALL_REGIMES if regimes is None else regimes,
        regimes is not None,
        tsl_stop if isinstance(tsl_stop, np.ndarray) else _NO_TRAILING,
        isinstance(tsl_stop, np.ndarray),
    )
    return CompiledGenome(
        genome_id=genome.id,
        entries=entries,
        exits=exits,
        sl_stop=genome.exits.stop_loss,
        tp_stop=genome.exits.take_profit,
        tsl_stop=tsl_stop,
        time_stop=genome.exits.time_stop,
        size=size,
        max_positions=genome.max_positions,
    )


def compile_population(
    genomes: Iterable[Genome], panel: Panel, cache: IndicatorCache | None = None
) -> dict[str, CompiledGenome]:
    """Compile many genomes on one panel with one shared cache; results keyed by genome id."""
    cache = cache if cache is not None else IndicatorCache(panel)
    return {genome.id: compile_genome(genome, panel, cache) for genome in genomes}


def compile_and_backtest(
    genome: Genome,
    panel: Panel,
    config: BacktestConfig | None = None,
    *,
    cache: IndicatorCache | None = None,
    start: int = 0,
    stop: int | None = None,
) -> BacktestResult:
    """Compile ``genome`` and run it through :func:`simulators.backtest.run_backtest`.

    The genome's own sizing and ``max_positions`` replace the configuration's; everything else
    (cash, fill, market rules, costs) comes from ``config`` (defaults when omitted). The result
    is labelled ``genome:<id>`` with the numeric genes as its parameters.

    Signals are compiled on the whole ``panel`` (so indicators warm up on the bars before
    ``start``) and only bars ``start:stop`` are traded: a fitness window of a longer history.
    """
    compiled = compile_genome(genome, panel, cache)
    if start != 0 or stop is not None:
        end = panel.n_bars if stop is None else stop
        if not 0 <= start < end <= panel.n_bars:
            raise GenomeError(
                f"compile_and_backtest: bars {start}:{end} are not inside the panel's "
                f"{panel.n_bars} bars"
            )
        compiled = compiled.slice_bars(start, end)
        panel = panel.slice_bars(start, end)
    base = config or BacktestConfig()
    # model_copy skips validation; max_positions is already inside the genome's bounds.
    settings = base.model_copy(update={"max_positions": compiled.max_positions})
    params = {path: gene.value for path, gene in numeric_genes(genome).items()}
    return run_backtest(
        panel,
        config=settings,
        strategy=f"genome:{genome.id}",
        params=params,
        **compiled.backtest_kwargs(),
    )
