"""Indicator results computed once per panel and shared by every genome compiled on it.

A population of hundreds of genomes uses a few dozen distinct indicators (SMA(20), RSI(14),
ATR(14)...). :class:`IndicatorCache` keys each result by ``(primitive, params)`` for one panel,
so the second genome that needs SMA(20) gets the first one's array. Arrays are handed out
read-only: a compiled genome can never corrupt another genome's inputs. Entries beyond
``max_bytes`` are evicted least recently used first.

Every per-symbol indicator is computed on the symbol's own bars (its tradable rows, see
:mod:`simulators.own_bars`) and placed back on the panel's rows: a suspended day is not a bar
of the symbol, so "SMA(50)" is the mean of its last 50 bars, and on a suspended row an
indicator holds the value of the symbol's last bar (NaN before its first). An indicator built
from another (realised volatility from log returns) is computed on own bars from the other's
own-bar values. The market regime is the one exception: it is a property of the whole panel
(one code per row, from the symbols that traded), not of a symbol.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from genome import primitives as prim
from genome.regime import RegimeSpec, classify_regimes
from simulators.bars import Panel
from simulators.own_bars import OwnBars

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
        self._own_bars: OwnBars | None = None
        self._own_fields: dict[str, np.ndarray] = {}
        # The decimal ticks of each series an SMA is taken of, shared by its windows.
        self._decimals: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}

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
        self._own_fields.clear()
        self._decimals.clear()

    def _field(self, name: str) -> np.ndarray:
        if name not in PRICE_FIELDS:
            raise ValueError(f"unknown panel field {name!r}; allowed: {', '.join(PRICE_FIELDS)}")
        array: np.ndarray = getattr(self.panel, name)
        return array

    @property
    def own_bars(self) -> OwnBars:
        """Return the own bars of the panel's symbols (built on first use)."""
        if self._own_bars is None:
            self._own_bars = OwnBars.of(self.panel.tradable)
        return self._own_bars

    def _on_own_bars(self, function: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
        """Return ``function(*arrays)`` computed on each symbol's own bars (module docstring)."""
        own = self.own_bars
        if own.identity:
            return function(*arrays)
        return own.expand(function(*(self._compressed(array) for array in arrays)))

    def _compressed(self, array: np.ndarray) -> np.ndarray:
        # The price fields are read by most indicators: compress each of them once.
        for name in PRICE_FIELDS:
            if array is getattr(self.panel, name):
                found = self._own_fields.get(name)
                if found is None:
                    found = self.own_bars.compress(array)  # private: never handed out
                    self._own_fields[name] = found
                return found
        return self.own_bars.compress(array)

    def _sma(self, source: str, values: np.ndarray, window: int) -> np.ndarray:
        """Return :func:`genome.primitives.sma` of ``values``, the own-bar series ``source``.

        The decimal ticks of a series are found once and kept (private, never handed out):
        every window of its SMA reads the same ones.
        """
        decimals = self._decimals.get(source)
        if decimals is None:
            decimals = prim.decimal_ticks(values)
            self._decimals[source] = decimals
        return prim.sma(values, window, decimals)

    # ------------------------------------------------------------------ primitives
    def sma(self, field: str, window: int) -> np.ndarray:
        """Return the SMA of a panel field."""
        return self.get(
            ("sma", field, window),
            lambda: self._on_own_bars(lambda x: self._sma(field, x, window), self._field(field)),
        )

    def ema(self, field: str, window: int) -> np.ndarray:
        """Return the EMA of a panel field."""
        return self.get(
            ("ema", field, window),
            lambda: self._on_own_bars(lambda x: prim.ema(x, window), self._field(field)),
        )

    def moving_average(self, kind: str, field: str, window: int) -> np.ndarray:
        """Return the ``"sma"`` or ``"ema"`` of a panel field."""
        return self.sma(field, window) if kind == "sma" else self.ema(field, window)

    def std(self, field: str, window: int) -> np.ndarray:
        """Return the rolling population standard deviation of a panel field."""
        return self.get(
            ("std", field, window),
            lambda: self._on_own_bars(lambda x: prim.rolling_std(x, window, 0), self._field(field)),
        )

    def rolling_max(self, field: str, window: int) -> np.ndarray:
        """Return the highest value of a field over the last ``window`` bars."""
        return self.get(
            ("max", field, window),
            lambda: self._on_own_bars(lambda x: prim.rolling_max(x, window), self._field(field)),
        )

    def rolling_min(self, field: str, window: int) -> np.ndarray:
        """Return the lowest value of a field over the last ``window`` bars."""
        return self.get(
            ("min", field, window),
            lambda: self._on_own_bars(lambda x: prim.rolling_min(x, window), self._field(field)),
        )

    def rsi(self, window: int) -> np.ndarray:
        """Return Wilder's RSI of the close."""
        return self.get(
            ("rsi", window),
            lambda: self._on_own_bars(lambda c: prim.rsi(c, window), self.panel.close),
        )

    def atr(self, window: int) -> np.ndarray:
        """Return Wilder's ATR."""
        panel = self.panel
        return self.get(
            ("atr", window),
            lambda: self._on_own_bars(
                lambda h, lo, c: prim.atr(h, lo, c, window), panel.high, panel.low, panel.close
            ),
        )

    def atr_pct(self, window: int) -> np.ndarray:
        """Return ATR as a fraction of the close."""
        panel = self.panel
        # ATR itself is not kept: only its ratio to the close is used by genomes.
        return self.get(
            ("atr_pct", window),
            lambda: self._on_own_bars(
                lambda h, lo, c: prim.atr(h, lo, c, window) / c, panel.high, panel.low, panel.close
            ),
        )

    def rate_of_change(self, window: int) -> np.ndarray:
        """Return the close's rate of change over ``window`` bars."""
        return self.get(
            ("roc", window),
            lambda: self._on_own_bars(lambda c: prim.rate_of_change(c, window), self.panel.close),
        )

    def returns(self) -> np.ndarray:
        """Return the close's simple bar returns."""
        return self.get(
            ("returns",), lambda: self._on_own_bars(prim.simple_returns, self.panel.close)
        )

    def log_returns(self) -> np.ndarray:
        """Return the close's log bar returns."""
        return self.get(
            ("log_returns",), lambda: self._on_own_bars(prim.log_returns, self.panel.close)
        )

    def realised_volatility(self, window: int) -> np.ndarray:
        """Return the per-bar realised volatility (sample sd of log returns)."""
        return self.get(
            ("rv", window),
            lambda: self._on_own_bars(lambda r: prim.rolling_std(r, window, 1), self.log_returns()),
        )

    def rv_percentile(self, window: int, lookback: int) -> np.ndarray:
        """Return the rank of realised volatility among its last ``lookback`` values."""
        return self.get(
            ("rv_pct", window, lookback),
            lambda: self._on_own_bars(
                lambda v: prim.percentile_rank(v, lookback, lookback),
                self.realised_volatility(window),
            ),
        )

    def previous(self, name: str, window: int) -> np.ndarray:
        """Return yesterday's ``"max_high"``, ``"min_low"`` or ``"sma_volume"`` over ``window``.

        A breakout or a volume surge compares today's bar with a channel that excludes it.
        The unshifted arrays are not kept: nothing else reads them.
        """
        panel = self.panel
        sources: dict[str, tuple[Callable[[np.ndarray, int], np.ndarray], np.ndarray]] = {
            "max_high": (prim.rolling_max, panel.high),
            "min_low": (prim.rolling_min, panel.low),
            "sma_volume": (lambda x, w: self._sma("volume", x, w), panel.volume),
        }
        if name not in sources:
            raise ValueError(f"unknown shifted indicator {name!r}; allowed: {list(sources)}")
        function, values = sources[name]
        # Shifted on own bars: the channel of the symbol's bars before this one.
        return self.get(
            ("prev", name, window),
            lambda: self._on_own_bars(lambda x: prim.shift(function(x, window)), values),
        )

    def kelly_ratio(self, window: int) -> np.ndarray:
        """Return ``mean(r) / var(r)`` of the bar returns over ``window`` bars (uncapped).

        ``+inf`` where the variance is zero and the mean positive; NaN during warm-up.
        """

        def ratio_of(returns: np.ndarray) -> np.ndarray:
            return prim.kelly_from_moments(  # type: ignore[no-any-return]
                self._sma("returns", returns, window), prim.rolling_std(returns, window, 1)
            )

        return self.get(("kelly", window), lambda: self._on_own_bars(ratio_of, self.returns()))

    def regimes(self, spec: RegimeSpec | None = None) -> np.ndarray:
        """Return :func:`genome.regime.classify_regimes` of the panel."""
        spec = spec or RegimeSpec()
        return self.get(("regimes", spec), lambda: classify_regimes(self.panel, spec))
