"""Reference strategies: exact, documented signal rules over a :class:`Panel`.

Each strategy maps bars ``<= t`` to an entry and an exit boolean at bar ``t`` (computed at
the bar's close), per asset. Definitions (NaN comparisons are False, so nothing fires during
an indicator's warm-up):

* ``sma-cross(fast, slow)``: ``f = sma(close, fast)``, ``s = sma(close, slow)``;
  entry at ``t`` when ``f[t] > s[t]`` and ``f[t-1] <= s[t-1]``;
  exit when ``f[t] < s[t]`` and ``f[t-1] >= s[t-1]``. Requires ``1 <= fast < slow``.
  The comparisons are those of :func:`~simulators.indicators.sma_order`: exact on a decimal
  price grid, so a bar where the averages are equal as decimals is a tie, never a cross.
* ``rsi(period, lower, upper)``: ``r = rsi(close, period)`` (Wilder);
  entry when ``r[t-1] < lower <= r[t]`` (crosses up through ``lower``);
  exit when ``r[t-1] > upper >= r[t]`` (crosses down through ``upper``).
  Requires ``period >= 2`` and ``0 < lower < upper < 100``.
* ``breakout(lookback, stop_pct)``: entry when ``close[t] > max(high[t-lookback..t-1])``;
  exit when ``close[t] < min(low[t-lookback..t-1])``; plus a stop loss ``stop_pct`` below
  the entry price (0 = none). Requires ``lookback >= 1`` and ``0 <= stop_pct < 1``.

``t`` counts each symbol's own bars (:mod:`simulators.own_bars`): the rules run on the bars
where the symbol is tradable, so a suspended day is not a bar of its averages, RSI or channel,
``t - 1`` is its previous bar, and no signal fires on a row where it has no bar. A symbol's
signals are the same whether its panel holds it alone or beside symbols trading on its
suspended days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from alphaloop.errors import StrategyParamError
from simulators.bars import Panel
from simulators.indicators import rolling_max, rolling_min, rsi, shift, sma_order
from simulators.own_bars import OwnBars

__all__ = ["STRATEGIES", "ParamSpec", "StrategySignals", "strategy_signals", "validate_params"]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One strategy parameter: its type, inclusive bounds and default."""

    name: str
    kind: type
    low: float
    high: float
    default: float | int

    def describe(self) -> str:
        """Return ``name: kind in [low, high] (default d)``."""
        return f"{self.name}: {self.kind.__name__} in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True, slots=True)
class _Bars:
    """The ``(T, N)`` prices a rule reads, in own-bar space (:class:`OwnBars`)."""

    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


@dataclass(frozen=True, slots=True)
class StrategySignals:
    """Signals of one strategy run: ``(T, N)`` entries/exits and an optional stop loss."""

    entries: np.ndarray
    exits: np.ndarray
    sl_stop: float | None
    params: dict[str, float | int]


def _crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


def _crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] < b[1:]) & (a[:-1] >= b[:-1])
    return out


def _sma_cross(panel: _Bars, p: Mapping[str, float | int]) -> StrategySignals:
    # The sign of fast - slow against 0: the same comparisons as fast against slow, made
    # exactly where the prices are decimals.
    order = sma_order(panel.close, int(p["fast"]), int(p["slow"]))
    zero = np.zeros_like(order)
    return StrategySignals(_crossed_above(order, zero), _crossed_below(order, zero), None, dict(p))


def _rsi(panel: _Bars, p: Mapping[str, float | int]) -> StrategySignals:
    values = rsi(panel.close, int(p["period"]))
    lower, upper = float(p["lower"]), float(p["upper"])
    entries = np.zeros(values.shape, dtype=bool)
    exits = np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        entries[1:] = (values[:-1] < lower) & (values[1:] >= lower)
        exits[1:] = (values[:-1] > upper) & (values[1:] <= upper)
    return StrategySignals(entries, exits, None, dict(p))


def _breakout(panel: _Bars, p: Mapping[str, float | int]) -> StrategySignals:
    lookback = int(p["lookback"])
    upper = shift(rolling_max(panel.high, lookback), 1)
    lower = shift(rolling_min(panel.low, lookback), 1)
    with np.errstate(invalid="ignore"):
        entries = panel.close > upper
        exits = panel.close < lower
    stop = float(p["stop_pct"])
    return StrategySignals(entries, exits, stop if stop > 0 else None, dict(p))


@dataclass(frozen=True, slots=True)
class _Strategy:
    specs: tuple[ParamSpec, ...]
    build: Callable[[_Bars, Mapping[str, float | int]], StrategySignals]
    rule: str  # cross-parameter constraint, for error messages
    check: Callable[[Mapping[str, float | int]], bool]


STRATEGIES: dict[str, _Strategy] = {
    "sma-cross": _Strategy(
        specs=(ParamSpec("fast", int, 1, 1000, 10), ParamSpec("slow", int, 2, 2000, 50)),
        build=_sma_cross,
        rule="fast < slow",
        check=lambda p: p["fast"] < p["slow"],
    ),
    "rsi": _Strategy(
        specs=(
            ParamSpec("period", int, 2, 500, 14),
            ParamSpec("lower", float, 1, 99, 30.0),
            ParamSpec("upper", float, 1, 99, 70.0),
        ),
        build=_rsi,
        rule="lower < upper",
        check=lambda p: p["lower"] < p["upper"],
    ),
    "breakout": _Strategy(
        specs=(
            ParamSpec("lookback", int, 1, 1000, 20),
            ParamSpec("stop_pct", float, 0, 0.99, 0.05),
        ),
        build=_breakout,
        rule="",
        check=lambda p: True,
    ),
}


def validate_params(name: str, params: Mapping[str, object]) -> dict[str, float | int]:
    """Return ``params`` completed with defaults and coerced to their types.

    Raises
    ------
    StrategyParamError
        Naming the strategy, the parameter and the allowed parameters/ranges.
    """
    if name not in STRATEGIES:
        raise StrategyParamError(
            f"unknown strategy {name!r} (allowed: {', '.join(sorted(STRATEGIES))})"
        )
    strategy = STRATEGIES[name]
    allowed = "; ".join(spec.describe() for spec in strategy.specs)
    known = {spec.name: spec for spec in strategy.specs}
    for key in params:
        if key not in known:
            raise StrategyParamError(
                f"strategy {name!r}: unknown parameter {key!r} (allowed: {allowed})"
            )
    out: dict[str, float | int] = {}
    for spec in strategy.specs:
        raw = params.get(spec.name, spec.default)
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise StrategyParamError(
                f"strategy {name!r}: parameter {spec.name!r} must be a number, got {raw!r} "
                f"(allowed: {allowed})"
            ) from None
        if isinstance(raw, bool) or not math.isfinite(number):
            raise StrategyParamError(
                f"strategy {name!r}: parameter {spec.name!r} must be a finite number, "
                f"got {raw!r} (allowed: {allowed})"
            )
        if spec.kind is int and number != int(number):
            raise StrategyParamError(
                f"strategy {name!r}: parameter {spec.name!r} must be an integer, got {raw!r} "
                f"(allowed: {allowed})"
            )
        if not spec.low <= number <= spec.high:
            raise StrategyParamError(
                f"strategy {name!r}: parameter {spec.name!r}={raw!r} out of range "
                f"(allowed: {allowed})"
            )
        out[spec.name] = int(number) if spec.kind is int else number
    if not strategy.check(out):
        raise StrategyParamError(
            f"strategy {name!r}: parameters {out} break the rule {strategy.rule} "
            f"(allowed: {allowed})"
        )
    return out


def strategy_signals(
    panel: Panel, name: str, params: Mapping[str, object] | None = None
) -> StrategySignals:
    """Return the entry/exit signals of strategy ``name`` on ``panel``.

    The rule runs on each symbol's own bars and its signals are placed back on the panel's
    rows, False where the symbol has no bar (module docstring).

    Raises
    ------
    StrategyParamError
        If the strategy or a parameter is unknown or invalid.
    """
    checked = validate_params(name, params or {})
    own = OwnBars.of(panel.tradable)
    bars = _Bars(
        high=own.compress(panel.high), low=own.compress(panel.low), close=own.compress(panel.close)
    )
    signals = STRATEGIES[name].build(bars, checked)
    if own.identity:
        return signals
    return StrategySignals(
        own.signal(signals.entries), own.signal(signals.exits), signals.sl_stop, signals.params
    )
