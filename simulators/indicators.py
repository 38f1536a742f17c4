"""Rolling indicators over ``(T, N)`` float64 arrays, compiled with numba.

Every function takes and returns ``(T, N)`` float64 arrays (1-D input is accepted by the
public wrappers and returned 1-D). Output ``[t, i]`` depends only on rows ``<= t`` of the
input (no look-ahead). The warm-up is NaN: a value is defined only once a full window of
valid inputs exists. A NaN in the input makes the outputs that would use it NaN; recursive
indicators (EMA, RSI, ATR) start again from scratch (a new warm-up) after a NaN.

Definitions (the one place they are written down; the reference strategies and the genome
compiler use exactly these):

* ``sma(x, n)[t] = (x[t-n+1] + ... + x[t]) / n``. On a decimal price grid (every price of
  the window the float nearest to a decimal of ``d <= 8`` places, as parsed from a file: see
  :func:`decimal_ticks_nb`) it is the exact mean of those decimals, correctly rounded: the
  window's ticks are summed as integers and divided once. On A-shares' two-decimal yuan, two
  averages equal as decimals are then the same float, and an exact tie never resolves by
  rounding noise (float sums put SMA(10) a hair below SMA(50) on such a day and exited a day
  early). A window with a price off the grid (``0.1 + 0.2``, adjusted prices) falls back to
  the float sum, in that order for every ``t`` (no running sum, so a value never depends on
  how far back the series starts). The choice is made per window from its own prices (and,
  for the size of its integer sum, the places of earlier ones), never from later bars.
  The genome's SMA (:func:`genome.primitives.sma`) is the same on the grid.
* ``sma_order(x, fast, slow)[t]``: the sign (+1, 0, -1) of
  ``sma(x, fast)[t] - sma(x, slow)[t]``, NaN while either is undefined. Where both windows
  are on the grid it compares ``sum_fast * slow`` with ``sum_slow * fast`` in integers (a
  decimal tie is 0); elsewhere it compares the float averages. Crosses of two SMAs read it.
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

from collections.abc import Callable

import numpy as np
from numba import njit

from alphaloop.errors import StrategyParamError

__all__ = [
    "DECIMALS_MAX",
    "atr",
    "decimal_sma",
    "ema",
    "rolling_max",
    "rolling_min",
    "rsi",
    "shift",
    "sma",
    "sma_order",
]


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


# The decimal grid: a price is on it when it is the float nearest to a decimal of d <= 8
# places (what a parser returns for the decimal's text, and ``np.round(x, d)``), within half
# an ulp of it. With at most 2**35 ticks a float off the grid is on it by chance less than
# once in 2**17 (an ulp over a tick); a window needs every one of its prices on it, and a
# window of one such price still gets that very price as its mean.
DECIMALS_MAX = 8
_TICKS_MAX = 2.0**35
_OFF_GRID = -1
_MISSING = -2
_SCALES = np.array([10.0**d for d in range(DECIMALS_MAX + 1)])
_POWERS = np.array([10**d for d in range(DECIMALS_MAX + 1)], dtype=np.int64)
# A tick sum or a divisor is an exact float up to 2**53; the bounds are checked in float, so
# one bit of margin. Products compared in int64 stay below 2**62.
_EXACT_MAX = 2.0**52
_PRODUCT_MAX = 2.0**62


@njit(cache=True)
def decimal_ticks_nb(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Return each value's decimal places, its number of ticks of ``10**-places``, and the
    longest run of values on the grid in one column.

    ``places[t, i]`` is the fewest decimals ``d <= DECIMALS_MAX`` for which the value is the
    float nearest to ``ticks[t, i] * 10**-d`` (at most ``2**35`` ticks): -1 when there is
    none (off the grid, infinite or too large), -2 for NaN. No window longer than the run
    can be on the grid.
    """
    n_bars, n_assets = values.shape
    places = np.full((n_bars, n_assets), _OFF_GRID, dtype=np.int8)
    ticks = np.zeros((n_bars, n_assets), dtype=np.int64)
    runs = np.zeros(n_assets, dtype=np.int64)
    longest = 0
    for t in range(n_bars):
        for col in range(n_assets):
            x = values[t, col]
            run = runs[col]
            runs[col] = 0  # until the value is found on the grid
            if np.isnan(x):
                places[t, col] = _MISSING
                continue
            if not np.isfinite(x):
                continue
            # A decimal of d places is one of d + 1 places too, so one test at the most
            # places that fit decides whether the value is on the grid at all.
            top = DECIMALS_MAX
            while top >= 0 and abs(x) * _SCALES[top] > _TICKS_MAX:
                top -= 1
            if top < 0:
                continue
            # A float nearest to a decimal is within 2**-17 ticks of it, so rint finds the
            # ticks; both operands of the division are exact, so it gives the float nearest
            # to the decimal.
            if np.rint(x * _SCALES[top]) / _SCALES[top] != x:
                continue
            for d in range(top + 1):
                scaled = x * _SCALES[d]
                nearest = np.rint(scaled)
                # The cheap test first (the decimal's own places pass it); the exact one after.
                if abs(scaled - nearest) <= 2.0**-16 and nearest / _SCALES[d] == x:
                    places[t, col] = d
                    ticks[t, col] = np.int64(nearest)
                    break
            runs[col] = run + 1
            longest = max(longest, run + 1)
    return places, ticks, longest


@njit(cache=True)
def decimal_window_sums_nb(
    places: np.ndarray, ticks: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact tick sum of every full window and the places it counts in.

    ``sums[t, i]`` counts ticks of ``10**-window_places[t, i]``: the most places of any
    value of the column up to ``t`` (so it is read from the past only). ``window_places``
    is -1 when a value of the window is off the grid or the sum (or ``window * 10**places``)
    is too large to be an exact float, -2 when a value is NaN or the window is not full.
    """
    n_bars, n_assets = places.shape
    window_places = np.full((n_bars, n_assets), _MISSING, dtype=np.int8)
    sums = np.zeros((n_bars, n_assets), dtype=np.int64)
    # Running state of every column, walked row by row (the arrays are row-major). The int64
    # running sum is exact modulo 2**64 whatever it passed through, so it is the exact sum
    # whenever the float bound of its magnitude says that is below 2**52. The bound is exact
    # below 2**53 and otherwise off by far less than the bit of margin.
    totals = np.zeros(n_assets, dtype=np.int64)
    bounds = np.zeros(n_assets)
    resolution = np.zeros(n_assets, dtype=np.int64)
    missing = np.zeros(n_assets, dtype=np.int64)
    off_grid = np.zeros(n_assets, dtype=np.int64)
    for t in range(n_bars):
        for col in range(n_assets):
            d = places[t, col]
            r = resolution[col]
            if d > r:
                totals[col] *= _POWERS[d - r]
                bounds[col] *= _SCALES[d - r]
                r = d
                resolution[col] = d
            if d >= 0:
                count = ticks[t, col] * _POWERS[r - d]  # at most 2**35 * 10**8 < 2**62
                totals[col] += count
                bounds[col] += abs(count)
            elif d == _MISSING:
                missing[col] += 1
            else:
                off_grid[col] += 1
            if t >= window:
                d = places[t - window, col]
                if d >= 0:
                    count = ticks[t - window, col] * _POWERS[r - d]
                    totals[col] -= count
                    bounds[col] -= abs(count)
                elif d == _MISSING:
                    missing[col] -= 1
                else:
                    off_grid[col] -= 1
            if t < window - 1 or missing[col] > 0:
                continue
            window_places[t, col] = _OFF_GRID
            if off_grid[col] > 0 or bounds[col] > _EXACT_MAX or window * _SCALES[r] > _EXACT_MAX:
                continue
            sums[t, col] = totals[col]
            window_places[t, col] = r
    return window_places, sums


@njit(cache=True)
def decimal_means_nb(window_places: np.ndarray, sums: np.ndarray, window: int) -> np.ndarray:
    """Return ``sums / (window * 10**places)`` (correctly rounded), NaN off the grid."""
    n_bars, n_assets = sums.shape
    out = np.full((n_bars, n_assets), np.nan)
    for t in range(n_bars):
        for col in range(n_assets):
            d = window_places[t, col]
            if d >= 0:
                # Both operands are exact floats, so the one division rounds correctly.
                out[t, col] = float(sums[t, col]) / (window * _SCALES[d])
    return out


@njit(cache=True)
def sma_order_nb(
    fast_places: np.ndarray,
    fast_sums: np.ndarray,
    fast_means: np.ndarray,
    fast: int,
    slow_places: np.ndarray,
    slow_sums: np.ndarray,
    slow_means: np.ndarray,
    slow: int,
) -> np.ndarray:
    """Return the sign of ``fast_means - slow_means``, from the tick sums where both have them."""
    n_bars, n_assets = fast_means.shape
    out = np.full((n_bars, n_assets), np.nan)
    for t in range(n_bars):
        for col in range(n_assets):
            fast_d = fast_places[t, col]
            slow_d = slow_places[t, col]
            if fast_d == _MISSING or slow_d == _MISSING:
                continue
            if fast_d >= 0 and slow_d >= 0:
                top = max(fast_d, slow_d)
                fast_scale = _POWERS[top - fast_d] * slow
                slow_scale = _POWERS[top - slow_d] * fast
                if (
                    abs(fast_sums[t, col]) * float(fast_scale) < _PRODUCT_MAX
                    and abs(slow_sums[t, col]) * float(slow_scale) < _PRODUCT_MAX
                ):
                    # sum_fast / fast vs sum_slow / slow, both over 10**top: cross-multiplied.
                    left = fast_sums[t, col] * fast_scale
                    right = slow_sums[t, col] * slow_scale
                    out[t, col] = 1.0 if left > right else (-1.0 if left < right else 0.0)
                    continue
            a = fast_means[t, col]
            b = slow_means[t, col]
            if a > b:
                out[t, col] = 1.0
            elif a < b:
                out[t, col] = -1.0
            elif a == b:
                out[t, col] = 0.0
    return out


def _decimal_windows(
    values: np.ndarray,
    decimals: tuple[np.ndarray, np.ndarray, int],
    window: int,
    fallback: Callable[[np.ndarray, int], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the places, tick sums and means of every window (see :func:`decimal_sma`)."""
    places, ticks, longest = decimals
    if longest < window:
        # No window is on the grid: every one is the fallback's (NaN ones included).
        off_grid = np.full(values.shape, _OFF_GRID, dtype=np.int8)
        return off_grid, np.zeros(values.shape, dtype=np.int64), fallback(values, window)
    window_places, sums = decimal_window_sums_nb(places, ticks, window)
    means: np.ndarray = decimal_means_nb(window_places, sums, window)
    off = window_places == _OFF_GRID
    if off.any():
        np.copyto(means, fallback(values, window), where=off)
    return window_places, sums, means


def decimal_sma(
    values: np.ndarray,
    window: int,
    fallback: Callable[[np.ndarray, int], np.ndarray],
    decimals: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> np.ndarray:
    """Return the SMA of ``(T, N)`` float64 ``values``, exact on the decimal grid.

    A window whose prices are all on the grid gets the correctly rounded mean of their
    decimals (see the module docstring); a window with a NaN gets NaN; any other window
    gets ``fallback(values, window)``'s value, which is computed only if there is one.
    ``decimals`` is :func:`decimal_ticks_nb` of these very ``values`` when the caller keeps
    it for several windows (computed here when omitted).
    """
    if decimals is None:
        decimals = decimal_ticks_nb(values)
    if decimals[2] < window:
        # No window is on the grid: every one is the fallback's (NaN ones included).
        result: np.ndarray = fallback(values, window)
        return result
    return _decimal_windows(values, decimals, window, fallback)[2]


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
    return _unwrap(decimal_sma(array, _check_window(window, "sma"), sma_nb), flat)


def sma_order(values: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Return the sign of ``sma(values, fast) - sma(values, slow)``: +1, 0 or -1, NaN if undefined.

    On the decimal grid the sign is exact (a decimal tie is 0); see the module docstring.
    """
    array, flat = _as_2d(values, "sma_order")
    fast = _check_window(fast, "sma_order")
    slow = _check_window(slow, "sma_order")
    decimals = decimal_ticks_nb(array)
    fast_places, fast_sums, fast_means = _decimal_windows(array, decimals, fast, sma_nb)
    slow_places, slow_sums, slow_means = _decimal_windows(array, decimals, slow, sma_nb)
    order = sma_order_nb(
        fast_places, fast_sums, fast_means, fast, slow_places, slow_sums, slow_means, slow
    )
    return _unwrap(order, flat)


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
