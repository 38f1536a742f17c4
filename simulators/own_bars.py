"""Each symbol's own bars: the indicators and signals of a panel count a symbol's bars only.

A :class:`~simulators.bars.Panel` aligns its symbols on the union of their timestamps, so a
suspended symbol has rows that are not bars of its own (``tradable`` False, prices
forward-filled flat at its last close, volume 0). Those rows must not enter its indicators: an
SMA(50) of a symbol is the mean of its last 50 own bars, however many rows of the panel they
span, and a symbol backtests the same whether it is loaded alone or from a folder.

:class:`OwnBars` is the one mapping between the two spaces, built from ``tradable``:

* :meth:`OwnBars.compress` stacks each column's own bars at the top of the column, in order,
  and pads the rest with NaN ("own-bar space"); a causal column-wise kernel run there sees the
  symbol's bars as if it had been loaded alone (the padding comes after its last bar, so it
  changes nothing the kernel returns for its bars);
* :meth:`OwnBars.expand` puts an own-bar-space result back on the panel's rows: on an own bar
  its value there, on a later non-tradable row the value of the symbol's last own bar (an
  indicator does not move while the symbol has no bar), NaN before its first bar;
* :meth:`OwnBars.signal` does the same for a boolean signal, except that a non-tradable row
  is False: no entry and no exit signal fires where the symbol has no bar.

A value read on a panel row ``t`` from :meth:`expand` of an indicator is therefore that of the
symbol's last own bar at or before ``t``, and ``shift(expanded, 1)[t]`` on an own bar ``t`` is
the value of its previous own bar: a cross or a "yesterday's channel" compared on the panel's
rows compares own bars. When every bar of the panel is tradable the mapping is the identity
(the arrays are handed back unchanged, at no cost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["OwnBars"]


@njit(cache=True)
def compress_nb(values: np.ndarray, tradable: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Return ``values`` with each column's tradable rows stacked on top, NaN below."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    taken = np.zeros(n_assets, dtype=np.int64)
    for t in range(n_bars):
        for col in range(n_assets):
            if tradable[t, col]:
                out[taken[col], col] = values[t, col]
                taken[col] += 1
    return out


@njit(cache=True)
def expand_nb(own: np.ndarray, tradable: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Return own-bar-space ``own`` on the panel's rows, held over the rows without a bar."""
    n_bars, n_assets = own.shape
    out = np.full((n_bars, n_assets), np.nan)
    last = np.full(n_assets, -1, dtype=np.int64)
    for t in range(n_bars):
        for col in range(n_assets):
            if tradable[t, col]:
                last[col] += 1
            if last[col] >= 0:
                out[t, col] = own[last[col], col]
    return out


@njit(cache=True)
def expand_signal_nb(own: np.ndarray, tradable: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Return an own-bar-space boolean signal on the panel's rows, False without a bar."""
    n_bars, n_assets = own.shape
    out = np.zeros((n_bars, n_assets), dtype=np.bool_)
    taken = np.zeros(n_assets, dtype=np.int64)
    for t in range(n_bars):
        for col in range(n_assets):
            if tradable[t, col]:
                out[t, col] = own[taken[col], col]
                taken[col] += 1
    return out


@dataclass(frozen=True, slots=True, eq=False)
class OwnBars:
    """The own bars of every column of a ``(T, N)`` ``tradable`` mask (module docstring).

    Build it with :meth:`of`. The mappings are numba loops over the rows (O(T x N)).

    Attributes
    ----------
    tradable:
        The C-contiguous ``(T, N)`` mask: ``tradable[t, i]`` when row ``t`` is a bar of
        symbol ``i``.
    identity:
        True when every row is an own bar of every symbol (nothing to map).
    """

    tradable: np.ndarray
    identity: bool

    @classmethod
    def of(cls, tradable: np.ndarray) -> OwnBars:
        """Return the own bars of ``tradable`` (a ``(T, N)`` bool array)."""
        mask = np.ascontiguousarray(tradable, dtype=np.bool_)
        if mask.ndim != 2:
            raise ValueError(f"OwnBars: tradable must be (T, N), got shape {mask.shape}")
        return cls(tradable=mask, identity=bool(mask.all()))

    def _check(self, array: np.ndarray) -> np.ndarray:
        if array.shape != self.tradable.shape:
            raise ValueError(
                f"OwnBars: expected an array of shape {self.tradable.shape}, got {array.shape}"
            )
        return np.ascontiguousarray(array)

    def compress(self, values: np.ndarray) -> np.ndarray:
        """Return ``(T, N)`` float64 ``values`` in own-bar space (own bars on top, NaN padding)."""
        array = np.asarray(values, dtype=np.float64)
        if self.identity:
            return array
        result: np.ndarray = compress_nb(self._check(array), self.tradable)
        return result

    def expand(self, own: np.ndarray) -> np.ndarray:
        """Return an own-bar-space float result on the panel's rows (forward from own bars)."""
        array = np.asarray(own, dtype=np.float64)
        if self.identity:
            return array
        result: np.ndarray = expand_nb(self._check(array), self.tradable)
        return result

    def signal(self, own: np.ndarray) -> np.ndarray:
        """Return an own-bar-space boolean signal on the panel's rows (False off own bars)."""
        array = np.asarray(own, dtype=np.bool_)
        if self.identity:
            return array
        result: np.ndarray = expand_signal_nb(self._check(array), self.tradable)
        return result

    def apply(self, function: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
        """Return ``function`` of ``arrays`` computed on own bars, placed on the panel's rows.

        ``function`` takes and returns ``(T, N)`` float64 arrays and must be causal and
        column-wise (every indicator kernel of :mod:`genome.primitives` and
        :mod:`simulators.indicators` is).
        """
        if self.identity:
            return function(*arrays)
        return self.expand(function(*(self.compress(array) for array in arrays)))
