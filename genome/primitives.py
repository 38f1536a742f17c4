"""Indicator primitives: numba kernels over ``(T, N)`` float64 arrays.

Every kernel is causal: the value at bar ``t`` reads only bars ``<= t``, so truncating the
future never changes the past (the look-ahead tests check each kernel). A value that lacks
enough history is NaN ("warm-up"); a non-finite input inside a window makes that window NaN,
and recursive averages (EMA, Wilder's RSI and ATR) restart their warm-up after it.

The kernels take one column at a time along axis 0 and loop over columns, so a column that
starts late (an asset listed mid-panel, NaN before its first bar) warms up on its own.

The SMA is the one of :mod:`simulators.indicators` on a decimal price grid: the correctly
rounded mean of the window's decimals, so two averages equal as decimals are the same float
and a cross of them (``fast - slow`` against 0) never fires on a tie. Off the grid it is a
running float sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulators.indicators import decimal_sma, decimal_ticks_nb


def sma(
    values: np.ndarray, window: int, decimals: tuple[np.ndarray, np.ndarray, int] | None = None
) -> np.ndarray:
    """Return the simple moving average over ``window`` bars (exact on a decimal grid).

    See :func:`simulators.indicators.decimal_sma`; windows off the grid use a running sum.
    ``decimals``: :func:`decimal_ticks` of these very ``values``, when the caller keeps it
    for several windows.
    """
    return decimal_sma(np.asarray(values, dtype=np.float64), window, _running_sma, decimals)


def decimal_ticks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the decimal places and ticks of ``values`` that :func:`sma` reads (see there)."""
    return decimal_ticks_nb(np.asarray(values, dtype=np.float64))  # type: ignore[no-any-return]


@njit(cache=True)
def _running_sma(values: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Return the simple moving average over ``window`` bars from a running float sum."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        total = 0.0
        bad = 0
        for t in range(n_bars):
            value = values[t, col]
            if np.isfinite(value):
                total += value
            else:
                bad += 1
            if t >= window:
                old = values[t - window, col]
                if np.isfinite(old):
                    total -= old
                else:
                    bad -= 1
            if t >= window - 1 and bad == 0:
                out[t, col] = total / window
    return out


@njit(cache=True)
def rolling_std(values: np.ndarray, window: int, ddof: int) -> np.ndarray:  # pragma: no cover
    """Return the rolling standard deviation over ``window`` bars with ``ddof``."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    if window <= ddof:
        return out
    # Two passes per column: the running sums (sequential) into small buffers, then the
    # divisions and square roots, branch-free, in a loop LLVM vectorises (they bound a
    # one-pass loop). The same operations on the same values: the same floats.
    totals = np.empty(n_bars)
    sums_of_squares = np.empty(n_bars)
    valid = np.zeros(n_bars, dtype=np.bool_)
    column = np.empty(n_bars)
    for col in range(n_assets):
        # Running sums of deviations from an origin that is moved to the current value (and
        # the sums recomputed exactly) once per window: the difference of squares then only
        # cancels over one window's moves, so small variances keep their precision and a flat
        # window is exactly 0, at O(1) amortised cost per bar.
        for t in range(n_bars):
            column[t] = values[t, col]
        origin = np.nan
        total = 0.0
        squares = 0.0
        bad = 0
        since = window
        for t in range(n_bars):
            valid[t] = False
            totals[t] = 0.0
            sums_of_squares[t] = 0.0
            value = column[t]
            if np.isfinite(value):
                if np.isnan(origin):
                    origin = value
                total += value - origin
                squares += (value - origin) * (value - origin)
            else:
                bad += 1
            if t >= window:
                old = column[t - window]
                if np.isfinite(old):
                    total -= old - origin
                    squares -= (old - origin) * (old - origin)
                else:
                    bad -= 1
            since += 1
            if t < window - 1 or bad > 0:
                continue
            if since >= window:
                origin = value
                total = 0.0
                squares = 0.0
                for k in range(t - window + 1, t + 1):
                    deviation = column[k] - origin
                    total += deviation
                    squares += deviation * deviation
                since = 0
            valid[t] = True
            totals[t] = total
            sums_of_squares[t] = squares
        for t in range(n_bars):
            total = totals[t]
            variance = (sums_of_squares[t] - total * total / window) / (window - ddof)
            root = np.sqrt(variance)
            column[t] = (root if variance > 0.0 else 0.0) if valid[t] else np.nan
        for t in range(n_bars):
            out[t, col] = column[t]
    return out


@njit(cache=True)
def ema(values: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Return the exponential moving average, ``alpha = 2 / (window + 1)``, seeded by an SMA."""
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    alpha = 2.0 / (window + 1.0)
    for col in range(n_assets):
        run = 0
        seed = 0.0
        level = 0.0
        for t in range(n_bars):
            value = values[t, col]
            if not np.isfinite(value):
                run = 0
                seed = 0.0
                continue
            run += 1
            if run < window:
                seed += value
            elif run == window:
                level = (seed + value) / window
                out[t, col] = level
            else:
                level = alpha * value + (1.0 - alpha) * level
                out[t, col] = level
    return out


@njit(cache=True)
def _rolling_extreme(
    values: np.ndarray, window: int, sign: float
) -> np.ndarray:  # pragma: no cover - numba
    # van Herk / Gil-Werman: cut the bars into blocks of ``window`` bars; a window is the
    # suffix of one block and the prefix of the next, so its extreme is the better of the
    # previous block's suffix extreme and the current block's running prefix extreme. The
    # loops run over all columns of a row at once (contiguous and branch-free: they
    # vectorise), about 3 comparisons per value instead of a deque's unpredictable branches,
    # and only one block of suffixes is held. Ties go to the later value, as a deque keeps the
    # latest of equal values, so the result is the very value (bits included) the deque gives:
    # always one of the window's own values. ``sign`` = 1 for max, -1 for min.
    n_bars, n_assets = values.shape
    out = np.empty((n_bars, n_assets))
    if window > n_bars or window < 1:
        out[:] = np.nan
        return out
    suffix = np.empty((window, n_assets))  # the previous block's suffix extremes
    prefix = np.empty(n_assets)  # the current block's running prefix extremes
    bad = np.zeros(n_assets, dtype=np.int64)  # non-finite values in the current window
    for start in range(0, n_bars, window):
        stop = min(start + window, n_bars)
        for t in range(start, stop):
            row = values[t]
            if t == start:
                prefix[:] = row
            else:
                for col in range(n_assets):
                    value = row[col]
                    best = prefix[col]
                    prefix[col] = value if sign * value >= sign * best else best
            for col in range(n_assets):
                bad[col] += not np.isfinite(row[col])
            if t >= window:
                old = values[t - window]
                for col in range(n_assets):
                    bad[col] -= not np.isfinite(old[col])
            target = out[t]
            if t < window - 1:
                target[:] = np.nan
                continue
            first = t - window + 1
            if first == start:
                for col in range(n_assets):
                    target[col] = prefix[col] if bad[col] == 0 else np.nan
            else:
                early_row = suffix[first - (start - window)]
                for col in range(n_assets):
                    late = prefix[col]
                    early = early_row[col]
                    best = late if sign * late >= sign * early else early
                    # A non-finite value inside the window makes it undefined, as a scan's.
                    target[col] = best if bad[col] == 0 else np.nan
        # This block's suffix extremes, for the windows that end in the next block.
        suffix[stop - 1 - start] = values[stop - 1]
        for t in range(stop - 2, start - 1, -1):
            row = values[t]
            later = suffix[t + 1 - start]
            here = suffix[t - start]
            for col in range(n_assets):
                value = row[col]
                best = later[col]
                here[col] = value if sign * value > sign * best else best
    return out


@njit(cache=True)
def rolling_max(values: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Return the highest value of the last ``window`` bars (the current one included)."""
    return _rolling_extreme(values, window, 1.0)


@njit(cache=True)
def rolling_min(values: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Return the lowest value of the last ``window`` bars (the current one included)."""
    return _rolling_extreme(values, window, -1.0)


@njit(cache=True)
def rsi(close: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Return Wilder's relative strength index in [0, 100] (50 on a perfectly flat window)."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        run = 0
        gain = 0.0
        loss = 0.0
        for t in range(1, n_bars):
            now = close[t, col]
            before = close[t - 1, col]
            if not (np.isfinite(now) and np.isfinite(before)):
                run = 0
                gain = 0.0
                loss = 0.0
                continue
            change = now - before
            up = change if change > 0.0 else 0.0
            down = -change if change < 0.0 else 0.0
            run += 1
            if run <= window:
                gain += up / window
                loss += down / window
                if run < window:
                    continue
            else:
                gain = (gain * (window - 1) + up) / window
                loss = (loss * (window - 1) + down) / window
            if loss == 0.0:
                out[t, col] = 50.0 if gain == 0.0 else 100.0
            else:
                out[t, col] = 100.0 - 100.0 / (1.0 + gain / loss)
    return out


@njit(cache=True)
def atr(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int
) -> np.ndarray:  # pragma: no cover - numba
    """Return Wilder's average true range over ``window`` bars."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        run = 0
        level = 0.0
        for t in range(n_bars):
            top = high[t, col]
            bottom = low[t, col]
            if not (np.isfinite(top) and np.isfinite(bottom) and np.isfinite(close[t, col])):
                run = 0
                level = 0.0
                continue
            true_range = top - bottom
            if t > 0 and np.isfinite(close[t - 1, col]):
                previous = close[t - 1, col]
                true_range = max(true_range, abs(top - previous), abs(bottom - previous))
            run += 1
            if run <= window:
                level += true_range / window
                if run < window:
                    continue
            else:
                level = (level * (window - 1) + true_range) / window
            out[t, col] = level
    return out


@njit(cache=True)
def rate_of_change(close: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Return ``close[t] / close[t - window] - 1``."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(window, n_bars):
            before = close[t - window, col]
            now = close[t, col]
            if np.isfinite(before) and np.isfinite(now) and before > 0.0:
                out[t, col] = now / before - 1.0
    return out


@njit(cache=True)
def log_returns(close: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """Return ``log(close[t] / close[t - 1])`` (NaN on the first bar or a non-positive price)."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(1, n_bars):
            before = close[t - 1, col]
            now = close[t, col]
            if np.isfinite(before) and np.isfinite(now) and before > 0.0 and now > 0.0:
                out[t, col] = np.log(now / before)
    return out


@njit(cache=True)
def simple_returns(close: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """Return ``close[t] / close[t - 1] - 1`` (NaN on the first bar or a non-positive price)."""
    n_bars, n_assets = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    for col in range(n_assets):
        for t in range(1, n_bars):
            before = close[t - 1, col]
            now = close[t, col]
            if np.isfinite(before) and np.isfinite(now) and before > 0.0:
                out[t, col] = now / before - 1.0
    return out


@njit(cache=True)
def percentile_rank(
    values: np.ndarray, lookback: int, min_periods: int
) -> np.ndarray:  # pragma: no cover - numba
    """Return the share of the last ``lookback`` finite values (today's included) <= today's.

    NaN where today's value is not finite or fewer than ``min_periods`` values are finite.
    """
    # Each column is copied contiguous with its non-finite values as NaN (a NaN compares
    # False, so the count below skips them without a branch and the comparison loop
    # vectorises); the finite count of the window is kept as a running count. The counts are
    # the same integers as a scan's, so the ranks are the same floats.
    n_bars, n_assets = values.shape
    out = np.full((n_bars, n_assets), np.nan)
    column = np.empty(n_bars)
    ranks = np.empty(n_bars)
    for col in range(n_assets):
        for t in range(n_bars):
            value = values[t, col]
            column[t] = value if np.isfinite(value) else np.nan
        count = 0
        for t in range(n_bars):
            today = column[t]
            if not np.isnan(today):
                count += 1
            first = t - lookback + 1
            if first > 0 and not np.isnan(column[first - 1]):
                count -= 1
            ranks[t] = np.nan
            if np.isnan(today) or count < min_periods:
                continue
            # A loop over a count (not over two bounds) is the form LLVM vectorises.
            low = max(0, first)
            below = 0
            for k in range(t + 1 - low):
                below += column[low + k] <= today
            ranks[t] = below / count
        for t in range(n_bars):
            out[t, col] = ranks[t]
    return out


@njit(cache=True)
def kelly_from_moments(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Return ``mean / sd**2`` (``+inf`` where the variance is 0 and the mean positive).

    0 where both are 0 or the mean is not positive over a zero variance; NaN where the mean is
    NaN. One pass over the arrays instead of NumPy's chain of ``where`` (the same floats).
    """
    n_bars, n_assets = mean.shape
    out = np.empty((n_bars, n_assets))
    for t in range(n_bars):
        for col in range(n_assets):
            average = mean[t, col]
            variance = sd[t, col] * sd[t, col]
            if np.isnan(average):
                out[t, col] = np.nan
            elif variance > 0.0:
                out[t, col] = average / variance
            elif average > 0.0:
                out[t, col] = np.inf
            else:
                out[t, col] = 0.0
    return out


@njit(cache=True)
def vol_target_weight(
    volatility: np.ndarray, annualise: float, target: float, slots: int
) -> np.ndarray:  # pragma: no cover - numba
    """Return ``min(1, target / sigma) / slots`` with ``sigma = volatility * annualise``.

    A flat asset (sigma 0) gets its whole slot, an unknown sigma (NaN) no position (0).
    """
    n_bars, n_assets = volatility.shape
    out = np.empty((n_bars, n_assets))
    for t in range(n_bars):
        for col in range(n_assets):
            sigma = volatility[t, col] * annualise
            if sigma > 0.0:
                ratio = target / sigma
                scale = ratio if ratio < 1.0 else 1.0
            elif sigma == 0.0:
                scale = 1.0
            else:
                scale = np.nan
            weight = scale / slots
            out[t, col] = weight if np.isfinite(weight) else 0.0
    return out


@njit(cache=True)
def clipped_weight(ratio: np.ndarray, cap: float) -> np.ndarray:  # pragma: no cover - numba
    """Return ``ratio`` clipped to ``[0, cap]`` as ``np.clip`` does, non-finite results as 0."""
    n_bars, n_assets = ratio.shape
    out = np.empty((n_bars, n_assets))
    for t in range(n_bars):
        for col in range(n_assets):
            value = ratio[t, col]
            if np.isnan(value):
                out[t, col] = 0.0
                continue
            # np.clip's order: max with the floor, then min with the cap (so -0.0 stays -0.0).
            value = value if value >= 0.0 else 0.0
            value = value if value <= cap else cap
            out[t, col] = value if np.isfinite(value) else 0.0
    return out


# --------------------------------------------------------------------------- signals
# One pass per condition signal instead of NumPy's chain of temporaries (comparison, shift,
# ``& tradable``): the same float operations in the same order, so the same booleans. A NaN
# compares False, so warm-up bars never signal. ``side``: 0 ``<``, 1 ``>``, 2 ``<=``, 3 ``>=``.
@njit(cache=True, inline="always")
def _compare(a: float, b: float, side: int) -> bool:  # pragma: no cover - numba
    if side == 0:
        return a < b
    if side == 1:
        return a > b
    if side == 2:
        return a <= b
    return a >= b


@njit(cache=True)
def compare_level(
    values: np.ndarray, level: float, side: int, tradable: np.ndarray
) -> np.ndarray:  # pragma: no cover - numba
    """Return ``values <side> level`` where ``tradable`` (a threshold signal)."""
    n_bars, n_assets = values.shape
    out = np.empty((n_bars, n_assets), dtype=np.bool_)
    for t in range(n_bars):
        for col in range(n_assets):
            out[t, col] = tradable[t, col] and _compare(values[t, col], level, side)
    return out


@njit(cache=True)
def compare_arrays(
    values: np.ndarray, other: np.ndarray, side: int, tradable: np.ndarray
) -> np.ndarray:  # pragma: no cover - numba
    """Return ``values <side> other`` where ``tradable``."""
    n_bars, n_assets = values.shape
    out = np.empty((n_bars, n_assets), dtype=np.bool_)
    for t in range(n_bars):
        for col in range(n_assets):
            out[t, col] = tradable[t, col] and _compare(values[t, col], other[t, col], side)
    return out


@njit(cache=True)
def compare_upper_band(
    values: np.ndarray,
    middle: np.ndarray,
    width: float,
    spread: np.ndarray,
    tradable: np.ndarray,
) -> np.ndarray:  # pragma: no cover - numba
    """Return ``values >= middle + width * spread`` where ``tradable``."""
    n_bars, n_assets = values.shape
    out = np.empty((n_bars, n_assets), dtype=np.bool_)
    for t in range(n_bars):
        for col in range(n_assets):
            bound = middle[t, col] + width * spread[t, col]
            out[t, col] = tradable[t, col] and values[t, col] >= bound
    return out


@njit(cache=True)
def compare_lower_band(
    values: np.ndarray,
    middle: np.ndarray,
    width: float,
    spread: np.ndarray,
    tradable: np.ndarray,
) -> np.ndarray:  # pragma: no cover - numba
    """Return ``values <= middle - width * spread`` where ``tradable``."""
    n_bars, n_assets = values.shape
    out = np.empty((n_bars, n_assets), dtype=np.bool_)
    for t in range(n_bars):
        for col in range(n_assets):
            bound = middle[t, col] - width * spread[t, col]
            out[t, col] = tradable[t, col] and values[t, col] <= bound
    return out


@njit(cache=True)
def cross(
    fast: np.ndarray, slow: np.ndarray, upward: bool, tradable: np.ndarray
) -> np.ndarray:  # pragma: no cover - numba
    """Return where ``fast - slow`` crosses 0 (upward: ``> 0`` now, ``<= 0`` the bar before)."""
    n_bars, n_assets = fast.shape
    out = np.empty((n_bars, n_assets), dtype=np.bool_)
    for col in range(n_assets):
        out[0, col] = False  # no bar before the first
    for t in range(1, n_bars):
        for col in range(n_assets):
            now = fast[t, col] - slow[t, col]
            before = fast[t - 1, col] - slow[t - 1, col]
            if upward:
                fired = now > 0.0 and before <= 0.0
            else:
                fired = now < 0.0 and before >= 0.0
            out[t, col] = tradable[t, col] and fired
    return out


@njit(cache=True)
def surge(
    volume: np.ndarray, average: np.ndarray, multiple: float, tradable: np.ndarray
) -> np.ndarray:  # pragma: no cover - numba
    """Return ``average > 0 and volume > multiple * average`` where ``tradable``."""
    n_bars, n_assets = volume.shape
    out = np.empty((n_bars, n_assets), dtype=np.bool_)
    for t in range(n_bars):
        for col in range(n_assets):
            level = average[t, col]
            out[t, col] = tradable[t, col] and level > 0.0 and volume[t, col] > multiple * level
    return out


@njit(cache=True)
def mask_entries(
    entries: np.ndarray,
    tradable: np.ndarray,
    size: np.ndarray,
    exits: np.ndarray,
    regimes: np.ndarray,
    use_regimes: bool,
    trailing: np.ndarray,
    use_trailing: bool,
) -> None:  # pragma: no cover - numba
    """Keep, in place, the entries on tradable bars with ``size > 0``, no exit, an allowed
    regime (``regimes[t]``, when ``use_regimes``) and a finite trailing stop (when
    ``use_trailing``)."""
    n_bars, n_assets = entries.shape
    for t in range(n_bars):
        allowed = regimes[t] if use_regimes else True
        for col in range(n_assets):
            keep = (
                entries[t, col]
                and allowed
                and tradable[t, col]
                and size[t, col] > 0.0
                and not exits[t, col]
            )
            if keep and use_trailing:
                keep = np.isfinite(trailing[t, col])
            entries[t, col] = keep


def shift(values: np.ndarray, bars: int = 1) -> np.ndarray:
    """Return ``values`` delayed by ``bars`` (the first ``bars`` rows NaN): yesterday's value."""
    out = np.full(values.shape, np.nan)
    if bars < values.shape[0]:
        out[bars:] = values[: values.shape[0] - bars]
    return out


def realised_volatility(close: np.ndarray, window: int) -> np.ndarray:
    """Return the sample standard deviation of log returns over ``window`` bars (per bar)."""
    return rolling_std(log_returns(close), window, 1)  # type: ignore[no-any-return]
