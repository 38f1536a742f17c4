"""Canonical bar schema and the multi-asset :class:`Panel`.

Conventions (the one place they are written down for data):

* A bar's timestamp is the **close** of the bar. A daily bar of 2024-03-05 on an exchange
  closing at 15:00 Asia/Shanghai is stamped ``2024-03-05 15:00+08:00``.
* Timestamps are timezone-aware. Exchange-local zones are stated (``Asia/Shanghai``,
  ``America/New_York``); crypto and unknown sources use ``UTC``.
* Prices are float64 in the quote currency; volume is float64 in units of the asset
  (shares, coins). Research arrays are float64 throughout; exact money lives in the ledger.
* A panel is aligned: every field is a ``(T, N)`` array over the same timestamps and symbols.
  ``tradable[t, i]`` is False where the asset cannot trade at bar ``t`` (before listing,
  suspended, missing). Prices at non-tradable bars are forward-filled (or NaN before the
  first valid bar) and must not be used to fill orders.
* A non-tradable row is **not a bar of that asset**. Its indicators and signals are computed on
  its own (tradable) bars and placed back on the panel's rows (:mod:`simulators.own_bars`, used
  by :class:`genome.cache.IndicatorCache` and :mod:`simulators.strategies`): "SMA(50)" means 50
  of its own bars; on a suspended row an indicator holds the value of its last bar (NaN before
  its first) and no entry or exit signal fires. The backtester counts time stops in own bars
  and lets an order due on a suspended row wait for the asset's next bar. An asset therefore
  backtests the same alone or in a folder whose other files trade on its suspended days (the
  forward-filled flat rows never enter its moving averages). Per-bar figures of an equity curve
  (volatility, Sharpe) do count the panel's rows: :meth:`Panel.select` with ``own_bars`` gives
  a symbol exactly its own file's rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
Frequency = Literal["1min", "5min", "15min", "30min", "1h", "1D", "1W"]
MarketName = Literal["none", "cn", "us", "crypto"]


@dataclass(frozen=True, slots=True, eq=False)
class Panel:
    """Aligned OHLCV arrays of ``N`` symbols over ``T`` bar-close timestamps.

    Parameters
    ----------
    symbols:
        Symbol names, one per column.
    index:
        Bar-close timestamps, timezone-aware, strictly increasing, length ``T``.
    open, high, low, close, volume:
        float64 arrays of shape ``(T, N)``.
    tradable:
        bool array of shape ``(T, N)``.
    freq:
        Bar frequency (``"1D"``, ``"1min"``, ...).
    market:
        The market whose rules apply by default (``"none"`` when unknown).
    source:
        Human-readable origin (the ``--data`` spec that produced it).
    """

    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tradable: np.ndarray
    freq: str = "1D"
    market: str = "none"
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_bars, n_assets = len(self.index), len(self.symbols)
        if not isinstance(self.index, pd.DatetimeIndex):
            raise TypeError("Panel.index must be a pandas DatetimeIndex")
        if self.index.tz is None:
            raise ValueError("Panel.index must be timezone-aware (bar-close timestamps)")
        if len(set(self.symbols)) != n_assets:
            raise ValueError(f"Panel.symbols has duplicates: {self.symbols}")
        for name in (*FIELDS, "tradable"):
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.shape != (n_bars, n_assets):
                raise ValueError(
                    f"Panel.{name} must be an array of shape {(n_bars, n_assets)}, "
                    f"got {getattr(array, 'shape', type(array))}"
                )
        if n_bars > 1 and not self.index.is_monotonic_increasing:
            raise ValueError("Panel.index must be sorted in increasing order")
        if self.index.has_duplicates:
            raise ValueError("Panel.index has duplicated timestamps")

    # ------------------------------------------------------------------ shape
    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    @property
    def timezone(self) -> str:
        return str(self.index.tz)

    # ------------------------------------------------------------------ views
    def column(self, symbol: str) -> int:
        """Return the column of ``symbol``; raise ``KeyError`` naming the known symbols."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise KeyError(
                f"symbol {symbol!r} not in panel (have: {', '.join(self.symbols)})"
            ) from None

    def select(self, symbols: list[str] | tuple[str, ...], *, own_bars: bool = False) -> Panel:
        """Return a panel with only ``symbols`` (in that order).

        With ``own_bars`` only the bars where at least one of them has a bar of its own
        (``tradable``) are kept: a symbol taken from a folder whose other files trade on days
        it was suspended gets exactly the rows of its own file, not the flat forward-filled
        rows :meth:`from_frames` puts in its gaps. Its indicators, signals and trades are the
        same either way (module docstring); its per-bar figures (volatility, Sharpe,
        exposure) are those of its own file only with ``own_bars``.
        """
        cols = [self.column(s) for s in symbols]
        if own_bars:
            keep = np.flatnonzero(self.tradable[:, cols].any(axis=1))
            if keep.size < self.n_bars:
                return self._replace_arrays(keep, cols, tuple(symbols))
        return self._replace_arrays(slice(None), cols, tuple(symbols))

    def slice_bars(self, start: int, stop: int) -> Panel:
        """Return bars ``start:stop`` (positional)."""
        return self._replace_arrays(slice(start, stop), list(range(self.n_assets)), self.symbols)

    def truncate_after(self, timestamp: pd.Timestamp) -> Panel:
        """Return the bars whose close is at or before ``timestamp`` (no look-ahead)."""
        stop = int(self.index.searchsorted(timestamp, side="right"))
        return self.slice_bars(0, stop)

    def _replace_arrays(
        self, rows: slice | np.ndarray, cols: list[int], symbols: tuple[str, ...]
    ) -> Panel:
        def take(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a[rows][:, cols])

        return Panel(
            symbols=symbols,
            index=self.index[rows],
            open=take(self.open),
            high=take(self.high),
            low=take(self.low),
            close=take(self.close),
            volume=take(self.volume),
            tradable=take(self.tradable),
            freq=self.freq,
            market=self.market,
            source=self.source,
            meta=dict(self.meta),
        )

    def frame(self, symbol: str) -> pd.DataFrame:
        """Return one symbol's bars as a DataFrame with columns ``open..volume, tradable``."""
        col = self.column(symbol)
        data = {name: getattr(self, name)[:, col] for name in (*FIELDS, "tradable")}
        return pd.DataFrame(data, index=self.index)

    # ------------------------------------------------------------------ identity
    def data_hash(self) -> str:
        """Return a digest of timestamps, symbols and every array (the run's data identity)."""
        digest = hashlib.sha256()
        digest.update(",".join(self.symbols).encode())
        digest.update(self.freq.encode())
        digest.update(np.ascontiguousarray(self.index.asi8).tobytes())
        for name in (*FIELDS, "tradable"):
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        frames: dict[str, pd.DataFrame],
        *,
        freq: str = "1D",
        market: str = "none",
        source: str = "",
    ) -> Panel:
        """Align per-symbol OHLCV frames (tz-aware DatetimeIndex) on the union of timestamps.

        Bars missing for a symbol are marked non-tradable; their prices are forward-filled
        (NaN before the symbol's first bar) and their volume is 0. They are not bars of the
        symbol for its indicators and signals (module docstring).
        """
        if not frames:
            raise ValueError("no symbols to build a panel from")
        symbols = tuple(frames)
        index = frames[symbols[0]].index
        for frame in frames.values():
            index = index.union(frame.index)
        index = pd.DatetimeIndex(index).sort_values()
        n_bars, n_assets = len(index), len(symbols)
        arrays = {name: np.full((n_bars, n_assets), np.nan) for name in FIELDS}
        tradable = np.zeros((n_bars, n_assets), dtype=bool)
        for col, symbol in enumerate(symbols):
            frame = frames[symbol].reindex(index)
            present = frame["close"].notna().to_numpy()
            tradable[:, col] = present
            filled = frame[list(FIELDS[:4])].ffill()
            close = filled["close"].to_numpy(dtype=float)
            for name in FIELDS[:4]:
                values = filled[name].to_numpy(dtype=float).copy()
                # A missing bar is a flat bar at the last close, not a repeat of its range.
                values[~present] = close[~present]
                arrays[name][:, col] = values
            arrays["volume"][:, col] = frame["volume"].fillna(0.0).to_numpy(dtype=float)
        return cls(
            symbols=symbols,
            index=index,
            tradable=tradable,
            freq=freq,
            market=market,
            source=source,
            open=arrays["open"],
            high=arrays["high"],
            low=arrays["low"],
            close=arrays["close"],
            volume=arrays["volume"],
        )

    def to_long_frame(self) -> pd.DataFrame:
        """Return a long DataFrame ``(timestamp, symbol, open..volume, tradable)``."""
        parts = []
        for symbol in self.symbols:
            frame = self.frame(symbol)
            frame.insert(0, "symbol", symbol)
            parts.append(frame)
        out = pd.concat(parts)
        out.index.name = "timestamp"
        return out.reset_index()
