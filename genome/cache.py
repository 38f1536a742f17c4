"""Indicator results computed once per panel and shared by every genome compiled on it.

A population of hundreds of genomes uses a few dozen distinct indicators (SMA(20), RSI(14),
ATR(14)...). :class:`IndicatorCache` keys each result by ``(primitive, params)`` for one panel,
so the second genome that needs SMA(20) gets the first one's array. Arrays are handed out
read-only: a compiled genome can never corrupt another genome's inputs. Entries beyond
``max_bytes`` are evicted least recently used first.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from genome import primitives as prim
from genome.regime import RegimeSpec, classify_regimes
from simulators.bars import Panel

CacheKey = tuple[Hashable, ...]
PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class IndicatorCache:
    """Memo of indicator arrays for one :class:`~simulators.bars.Panel`.

    Parameters
    ----------
    panel:
        The panel every cached array belongs to.
    max_bytes:
        Soft memory limit; least recently used entries are dropped beyond it.

    Attributes
    ----------
    hits, misses:
        Lookups answered from the cache and lookups that computed.
    computed:
        How many times each key was computed (1 for every key unless it was evicted).
    """

    def __init__(self, panel: Panel, *, max_bytes: int = 1 << 30) -> None:
        self.panel = panel
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.computed: Counter[CacheKey] = Counter()
        self._entries: OrderedDict[CacheKey, np.ndarray] = OrderedDict()
        self._bytes = 0

    # ------------------------------------------------------------------ core
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[CacheKey]:
        """Return the cached keys, least recently used first."""
        return list(self._entries)

    @property
    def nbytes(self) -> int:
        """Return the memory held by cached arrays."""
        return self._bytes

    def get(self, key: CacheKey, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the array cached under ``key``, computing (and caching) it on a miss."""
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found
        self.misses += 1
        self.computed[key] += 1
        array = np.asarray(compute())
        array.setflags(write=False)
        self._entries[key] = array
        self._bytes += array.nbytes
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes
        return array

    def clear(self) -> None:
        """Drop every entry (the counters are kept)."""
        self._entries.clear()
        self._bytes = 0

    def _field(self, name: str) -> np.ndarray:
        if name not in PRICE_FIELDS:
            raise ValueError(f"unknown panel field {name!r}; allowed: {', '.join(PRICE_FIELDS)}")
        array: np.ndarray = getattr(self.panel, name)
        return array

    # ------------------------------------------------------------------ primitives
    def sma(self, field: str, window: int) -> np.ndarray:
        """Return the SMA of a panel field."""
        return self.get(("sma", field, window), lambda: prim.sma(self._field(field), window))

    def ema(self, field: str, window: int) -> np.ndarray:
        """Return the EMA of a panel field."""
        return self.get(("ema", field, window), lambda: prim.ema(self._field(field), window))

    def moving_average(self, kind: str, field: str, window: int) -> np.ndarray:
        """Return the ``"sma"`` or ``"ema"`` of a panel field."""
        return self.sma(field, window) if kind == "sma" else self.ema(field, window)

    def std(self, field: str, window: int) -> np.ndarray:
        """Return the rolling population standard deviation of a panel field."""
        return self.get(
            ("std", field, window), lambda: prim.rolling_std(self._field(field), window, 0)
        )

    def rolling_max(self, field: str, window: int) -> np.ndarray:
        """Return the highest value of a field over the last ``window`` bars."""
        return self.get(
            ("max", field, window), lambda: prim.rolling_max(self._field(field), window)
        )

    def rolling_min(self, field: str, window: int) -> np.ndarray:
        """Return the lowest value of a field over the last ``window`` bars."""
        return self.get(
            ("min", field, window), lambda: prim.rolling_min(self._field(field), window)
        )

    def rsi(self, window: int) -> np.ndarray:
        """Return Wilder's RSI of the close."""
        return self.get(("rsi", window), lambda: prim.rsi(self.panel.close, window))

    def atr(self, window: int) -> np.ndarray:
        """Return Wilder's ATR."""
        panel = self.panel
        return self.get(
            ("atr", window), lambda: prim.atr(panel.high, panel.low, panel.close, window)
        )

    def atr_pct(self, window: int) -> np.ndarray:
        """Return ATR as a fraction of the close."""
        panel = self.panel
        # ATR itself is not kept: only its ratio to the close is used by genomes.
        return self.get(
            ("atr_pct", window),
            lambda: prim.atr(panel.high, panel.low, panel.close, window) / panel.close,
        )

    def rate_of_change(self, window: int) -> np.ndarray:
        """Return the close's rate of change over ``window`` bars."""
        return self.get(("roc", window), lambda: prim.rate_of_change(self.panel.close, window))

    def returns(self) -> np.ndarray:
        """Return the close's simple bar returns."""
        return self.get(("returns",), lambda: prim.simple_returns(self.panel.close))

    def log_returns(self) -> np.ndarray:
        """Return the close's log bar returns."""
        return self.get(("log_returns",), lambda: prim.log_returns(self.panel.close))

    def realised_volatility(self, window: int) -> np.ndarray:
        """Return the per-bar realised volatility (sample sd of log returns)."""
        return self.get(("rv", window), lambda: prim.rolling_std(self.log_returns(), window, 1))

    def rv_percentile(self, window: int, lookback: int) -> np.ndarray:
        """Return the rank of realised volatility among its last ``lookback`` values."""
        return self.get(
            ("rv_pct", window, lookback),
            lambda: prim.percentile_rank(self.realised_volatility(window), lookback, lookback),
        )

    def previous(self, name: str, window: int) -> np.ndarray:
        """Return yesterday's ``"max_high"``, ``"min_low"`` or ``"sma_volume"`` over ``window``.

        A breakout or a volume surge compares today's bar with a channel that excludes it.
        The unshifted arrays are not kept: nothing else reads them.
        """
        panel = self.panel
        sources: dict[str, Callable[[], np.ndarray]] = {
            "max_high": lambda: prim.rolling_max(panel.high, window),
            "min_low": lambda: prim.rolling_min(panel.low, window),
            "sma_volume": lambda: prim.sma(panel.volume, window),
        }
        if name not in sources:
            raise ValueError(f"unknown shifted indicator {name!r}; allowed: {list(sources)}")
        return self.get(("prev", name, window), lambda: prim.shift(sources[name]()))

    def kelly_ratio(self, window: int) -> np.ndarray:
        """Return ``mean(r) / var(r)`` of the bar returns over ``window`` bars (uncapped).

        ``+inf`` where the variance is zero and the mean positive; NaN during warm-up.
        """

        def compute() -> np.ndarray:
            returns = self.returns()
            mean = prim.sma(returns, window)
            variance = prim.rolling_std(returns, window, 1) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(variance > 0.0, mean / variance, np.where(mean > 0.0, np.inf, 0.0))
            return np.where(np.isnan(mean), np.nan, ratio)

        return self.get(("kelly", window), compute)

    def regimes(self, spec: RegimeSpec | None = None) -> np.ndarray:
        """Return :func:`genome.regime.classify_regimes` of the panel."""
        spec = spec or RegimeSpec()
        return self.get(("regimes", spec), lambda: classify_regimes(self.panel, spec))
