"""Rolling indicators over ``(T, N)`` float64 arrays, compiled with numba.

Every function takes and returns ``(T, N)`` float64 arrays (1-D input is accepted by the
public wrappers and returned 1-D). Output ``[t, i]`` depends only on rows ``<= t`` of the
input (no look-ahead). The warm-up is NaN: a value is defined only once a full window of
valid inputs exists. A NaN in the input makes the outputs that would use it NaN; recursive
indicators (EMA, RSI, ATR) start again from scratch (a new warm-up) after a NaN.

Definitions (the one place they are written down; the reference strategies and the genome
compiler use exactly these):

* ``sma(x, n)[t] = (x[t-n+1] + ... + x[t]) / n``, summed in that order for every ``t``
  (no running sum, so a value never depends on how far back the series starts).
* ``ema(x, n)``: ``alpha = 2 / (n + 1)``, seeded at the first full window with the SMA of it,
  then ``e[t] = e[t-1] + alpha * (x[t] - e[t-1])``.
* ``rsi(close, n)`` (Wilder): ``d[t] = close[t] - close[t-1]``; the first average gain/loss
  at ``t = n`` is the mean of ``max(d, 0)`` / ``max(-d, 0)`` over ``d[1..n]``, then
  ``avg[t] = (avg[t-1] * (n - 1) + value[t]) / n``.
  ``rsi = 100 - 100 / (1 + avg_gain / avg_loss)``; 100 when ``avg_loss == 0 < avg_gain``,
  50 when both are 0.
* ``rolling_max(x, n)[t] = max(x[t-n+1..t])``, ``rolling_min`` likewise. Use
  :func:`shift` to exclude the current bar (``shift(rolling_max(high, n), 1)``).
* ``atr(high, low, close, n)`` (Wilder): ``tr[0] = high[0] - low[0]``,
  ``tr[t] = max(high[t] - low[t], |high[t] - close[t-1]|, |low[t] - close[t-1]|)``,
  ``atr[n-1] = mean(tr[0..n-1])``, then ``atr[t] = (atr[t-1] * (n - 1) + tr[t]) / n``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alphaloop.errors import StrategyParamError

__all__ = ["atr", "ema", "rolling_max", "rolling_min", "rsi", "shift", "sma"]


@njit(cache=True)
def sma_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of each column; NaN until a full window of valid values."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(window - 1, n_bars):
            total = 0.0
            for k in range(t - window + 1, t + 1):
                total += values[k, col]
            # NaN propagates through the sum, which is the wanted warm-up behaviour.
            out[t, col] = total / window
    return out


@njit(cache=True)
def ema_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average seeded with the SMA of the first full valid window."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    alpha = 2.0 / (window + 1.0)
    for col in range(n_assets):
        run = 0
        total = 0.0
        prev = np.nan
        for t in range(n_bars):
            x = values[t, col]
            if np.isnan(x):
                run = 0
                total = 0.0
                prev = np.nan
                continue
            if run < window:
                run += 1
                total += x
                if run == window:
                    prev = total / window
                    out[t, col] = prev
            else:
                prev = prev + alpha * (x - prev)
                out[t, col] = prev
    return out


@njit(cache=True)
def rsi_nb(close: np.ndarray, window: int) -> np.ndarray:
    """Wilder's relative strength index (0..100), NaN during the warm-up."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        run = 0  # number of valid price changes seen since the last restart
        gain_sum = 0.0
        loss_sum = 0.0
        avg_gain = 0.0
        avg_loss = 0.0
        for t in range(1, n_bars):
            prev_price = close[t - 1, col]
            price = close[t, col]
            if np.isnan(prev_price) or np.isnan(price):
                run = 0
                gain_sum = 0.0
                loss_sum = 0.0
                continue
            change = price - prev_price
            gain = change if change > 0.0 else 0.0
            loss = -change if change < 0.0 else 0.0
            if run < window:
                run += 1
                gain_sum += gain
                loss_sum += loss
                if run < window:
                    continue
                avg_gain = gain_sum / window
                avg_loss = loss_sum / window
            else:
                avg_gain = (avg_gain * (window - 1) + gain) / window
                avg_loss = (avg_loss * (window - 1) + loss) / window
            if avg_loss == 0.0:
                out[t, col] = 100.0 if avg_gain > 0.0 else 50.0
            else:
                out[t, col] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


@njit(cache=True)
def rolling_max_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling maximum over the last ``window`` rows including the current one."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(window - 1, n_bars):
            best = values[t - window + 1, col]
            for k in range(t - window + 2, t + 1):
                x = values[k, col]
                if x > best or np.isnan(x):
                    best = x
                if np.isnan(best):
                    break
            out[t, col] = best
    return out


@njit(cache=True)
def rolling_min_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling minimum over the last ``window`` rows including the current one."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(window - 1, n_bars):
            best = values[t - window + 1, col]
            for k in range(t - window + 2, t + 1):
                x = values[k, col]
                if x < best or np.isnan(x):
                    best = x
                if np.isnan(best):
                    break
            out[t, col] = best
    return out


@njit(cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Wilder's average true range, NaN during the warm-up."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        run = 0
        total = 0.0
        prev = np.nan
        for t in range(n_bars):
            h = high[t, col]
            lo = low[t, col]
            if np.isnan(h) or np.isnan(lo):
                run = 0
                total = 0.0
                continue
            true_range = h - lo
            if run > 0 and t > 0 and not np.isnan(close[t - 1, col]):
                c = close[t - 1, col]
                true_range = max(true_range, abs(h - c), abs(lo - c))
            if run < window:
                run += 1
                total += true_range
                if run == window:
                    prev = total / window
                    out[t, col] = prev
            else:
                prev = (prev * (window - 1) + true_range) / window
                out[t, col] = prev
    return out


def _as_2d(values: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        return np.ascontiguousarray(array.reshape(-1, 1)), True
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 1-D or (T, N) array, got shape {array.shape}")
    return np.ascontiguousarray(array), False


def _check_window(window: int, name: str) -> int:
    if isinstance(window, bool) or int(window) != window or int(window) < 1:
        raise StrategyParamError(f"{name}: window must be an integer >= 1, got {window!r}")
    return int(window)


def _unwrap(out: np.ndarray, flat: bool) -> np.ndarray:
    return out[:, 0] if flat else out


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Return the simple moving average of ``values`` (see the module docstring)."""
    array, flat = _as_2d(values, "sma")
    return _unwrap(sma_nb(array, _check_window(window, "sma")), flat)


def ema(values: np.ndarray, window: int) -> np.ndarray:
    """Return the SMA-seeded exponential moving average of ``values``."""
    array, flat = _as_2d(values, "ema")
    return _unwrap(ema_nb(array, _check_window(window, "ema")), flat)


def rsi(close: np.ndarray, window: int) -> np.ndarray:
    """Return Wilder's RSI of ``close`` in ``[0, 100]``."""
    array, flat = _as_2d(close, "rsi")
    return _unwrap(rsi_nb(array, _check_window(window, "rsi")), flat)


def rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    """Return the rolling maximum over the last ``window`` rows (current row included)."""
    array, flat = _as_2d(values, "rolling_max")
    return _unwrap(rolling_max_nb(array, _check_window(window, "rolling_max")), flat)


def rolling_min(values: np.ndarray, window: int) -> np.ndarray:
    """Return the rolling minimum over the last ``window`` rows (current row included)."""
    array, flat = _as_2d(values, "rolling_min")
    return _unwrap(rolling_min_nb(array, _check_window(window, "rolling_min")), flat)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Return Wilder's average true range."""
    h, flat = _as_2d(high, "atr")
    lo, _ = _as_2d(low, "atr")
    c, _ = _as_2d(close, "atr")
    if not (h.shape == lo.shape == c.shape):
        raise ValueError(f"atr: high/low/close shapes differ: {h.shape}, {lo.shape}, {c.shape}")
    return _unwrap(atr_nb(h, lo, c, _check_window(window, "atr")), flat)


def shift(values: np.ndarray, periods: int = 1) -> np.ndarray:
    """Return ``values`` moved down by ``periods`` rows, NaN-filled at the top."""
    array = np.asarray(values, dtype=np.float64)
    out = np.full(array.shape, np.nan)
    if periods <= 0:
        raise ValueError(f"shift: periods must be >= 1, got {periods}")
    if periods < array.shape[0]:
        out[periods:] = array[:-periods]
    return out
