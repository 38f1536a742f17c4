"""Numba kernels of the population (grid) backtester: many SMA-cross variants, one series.

The typed wrapper is :mod:`simulators.population`; these functions take only contiguous NumPy
arrays and write into buffers the caller allocated, so that nothing is allocated per bar.

Semantics (the same as the general engine of :mod:`simulators.backtest` for ``sma-cross`` with
market ``"none"``, no fees and all-in fractional sizing):

* entry signal at ``t`` when ``fast[t] > slow[t]`` and ``fast[t-1] <= slow[t-1]``; exit signal
  when ``fast[t] < slow[t]`` and ``fast[t-1] >= slow[t-1]`` (all four values defined). Long
  only: an entry while flat opens, an exit while long closes, every other signal is ignored.
* ``fill_next_open``: a signal at ``t`` fills at ``open[t+1]`` (none on the last bar);
  otherwise it fills at ``close[t]``.
* all-in: on entry ``size = cash / price``, stepped down by ulps while ``size * price >
  cash``, and ``cash -= size * price`` (a dust of cash may stay); on exit
  ``cash += size * price``. ``pnl = size * (exit_price - entry_price)``.
* ``equity[t] = cash + size * close[t]`` after the fills of bar ``t``.
* the OHLC bars are consistent (``low <= open, close <= high``), so the general engine's
  clipping of fill prices to ``[low, high]`` never binds.

Results must be bit-identical to the general engine, so every kernel is compiled without
``fastmath`` (which would let LLVM reassociate the floating-point arithmetic).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Indices into the per-strategy ``stats`` output rows.
STAT_FINAL_VALUE = 0
STAT_RETURN_SUM = 1
STAT_RETURN_SQUARE_SUM = 2
STAT_MAX_DRAWDOWN = 3
STAT_N_TRADES = 4
STAT_N_RECORDS = 5
N_STATS = 6


# Bars of the moving-average block: its partial sums and prices stay in L1.
SMA_BLOCK = 1024


@njit(cache=True, fastmath=False)
def extend_window_sums_nb(
    close: np.ndarray,
    base: np.ndarray,
    base_window: int,
    window: int,
    out: np.ndarray,
    average: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Write the window sums of ``close`` over ``window`` bars into ``out``, exactly, and
    their averages (the sums divided by ``window``) into ``average``.

    ``out[t] = close[t-window+1] + ... + close[t]`` summed in that order from 0.0 (NaN for
    ``t < window - 1``), which is what :func:`simulators.indicators.sma` divides by the
    window. The first ``base_window`` terms of that sum are, operation for operation, the
    sum ``base[t - d]`` of the shorter window ending ``d = window - base_window`` bars
    earlier; so the longer sum continues from it and adds only the last ``d`` prices. A
    ladder of windows (5, 10, ..., 200) then costs 200 additions a bar instead of 4,100,
    with the same bits. ``base_window = 0`` starts from 0.0 (``base`` is not read).

    The sums of a block of bars advance together, four prices at a time (each bar's own sum
    still runs oldest first), so the work vectorises across bars. ``scratch`` holds the
    block: ``SMA_BLOCK`` floats.
    """
    n_bars = close.shape[0]
    lags = window - base_window
    for t in range(min(window - 1, n_bars)):
        out[t] = np.nan
        average[t] = np.nan
    block = scratch.shape[0]
    for block_start in range(window - 1, n_bars, block):
        width = min(block, n_bars - block_start)
        sums = scratch[:width]
        first_price = block_start - lags + 1
        if base_window > 0:
            for i in range(width):
                sums[i] = base[block_start - lags + i]
        else:
            for i in range(width):
                sums[i] = 0.0
        lag = 0
        while lag + 4 <= lags:
            prices = close[first_price + lag : first_price + lag + width + 3]
            for i in range(width):
                sums[i] = (((sums[i] + prices[i]) + prices[i + 1]) + prices[i + 2]) + prices[i + 3]
            lag += 4
        while lag < lags:
            prices = close[first_price + lag : first_price + lag + width]
            for i in range(width):
                sums[i] += prices[i]
            lag += 1
        for i in range(width):
            out[block_start + i] = sums[i]
            average[block_start + i] = sums[i] / window


@njit(cache=True, fastmath=False)
def moving_averages_nb(
    close: np.ndarray,
    windows: np.ndarray,
    out: np.ndarray,
    sums: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Write the simple moving average of each of the increasing ``windows`` into ``out``.

    Row ``j`` of ``out`` (``(len(windows), T)``) is built on the window sums of row
    ``j - 1`` (:func:`extend_window_sums_nb`); ``sums`` (``(2, T)``) holds the sums of the
    previous and the current window in turn.
    """
    previous_window = 0
    for j in range(windows.shape[0]):
        window = windows[j]
        extend_window_sums_nb(
            close, sums[(j + 1) % 2], previous_window, window, sums[j % 2], out[j], scratch
        )
        previous_window = window


@njit(cache=True, fastmath=False)
def compact_trades_nb(
    counts: np.ndarray,
    entry_idx: np.ndarray,
    exit_idx: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    trade_size: np.ndarray,
    trade_pnl: np.ndarray,
    out_entry_idx: np.ndarray,
    out_exit_idx: np.ndarray,
    out_entry_price: np.ndarray,
    out_exit_price: np.ndarray,
    out_size: np.ndarray,
    out_pnl: np.ndarray,
    position: int,
) -> int:
    """Append the first ``counts[k]`` records of each row ``k`` of the ``(K, capacity)``
    buffers to the flat outputs from ``position``; return the position after them."""
    for k in range(counts.shape[0]):
        for i in range(counts[k]):
            out_entry_idx[position] = entry_idx[k, i]
            out_exit_idx[position] = exit_idx[k, i]
            out_entry_price[position] = entry_price[k, i]
            out_exit_price[position] = exit_price[k, i]
            out_size[position] = trade_size[k, i]
            out_pnl[position] = trade_pnl[k, i]
            position += 1
    return position


@njit(cache=True, fastmath=False, inline="always")
def buy_all_in_nb(cash: float, price: float) -> float:
    """Return the size that spends ``cash`` at ``price`` without exceeding it.

    ``cash / price`` can be one ulp too large (``size * price > cash``); step down as the
    general engine's ``affordable_size_nb`` does, so the cash left is ``>= 0`` and identical.
    """
    size = cash / price
    while size > 0.0 and size * price > cash:
        size = np.nextafter(size, 0.0)
    return size


@njit(cache=True, fastmath=False, inline="always")
def _drawdown_floor_nb(peak: float, max_drawdown: float) -> float:
    """Return the value below which a bar may deepen the maximum drawdown.

    Above ``peak * (1 - max_drawdown)`` (with a 1e-12 margin far above the rounding of the
    exact ``1 - value / peak``) the drawdown cannot exceed the current maximum, so the
    division is skipped on most bars without changing the result.
    """
    return peak * (1.0 - max_drawdown) * (1.0 + 1e-12)


@njit(cache=True, fastmath=False, inline="always")
def _mark_nb(
    value: float,
    previous: float,
    return_sum: float,
    square_sum: float,
    peak: float,
    max_drawdown: float,
) -> tuple[float, float, float, float]:
    """Account one bar's value in the running metrics (exact: for the bars with a fill)."""
    bar_return = value / previous - 1.0
    return_sum += bar_return
    square_sum += bar_return * bar_return
    if value > peak:
        peak = value
    else:
        drawdown = 1.0 - value / peak
        if drawdown > max_drawdown:
            max_drawdown = drawdown
    return return_sum, square_sum, peak, max_drawdown


@njit(cache=True, fastmath=False)
def simulate_sma_cross_nb(
    close: np.ndarray,
    open_: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    start: int,
    fill_next_open: bool,
    init_cash: float,
    equity: np.ndarray,
    write_equity: bool,
    entry_idx: np.ndarray,
    exit_idx: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    trade_size: np.ndarray,
    trade_pnl: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Simulate one SMA-cross strategy over the whole series in a single pass.

    Parameters
    ----------
    close, open_:
        Prices, shape ``(T,)``.
    fast, slow:
        The two moving averages, shape ``(T,)``, NaN before they are defined.
    start:
        First bar at which a signal can occur (``max(fast_window, slow_window)``); before it
        the strategy is flat and its equity is ``init_cash``.
    fill_next_open:
        Fill a signal of bar ``t`` at ``open[t+1]`` (True) or at ``close[t]`` (False).
    init_cash:
        Starting cash.
    equity:
        Output, shape ``(T,)``; written only when ``write_equity``.
    write_equity:
        Whether to store the equity curve (the metrics are computed either way).
    entry_idx, exit_idx, entry_price, exit_price, trade_size, trade_pnl:
        Output trade buffers, shape ``(capacity,)``: the closed trades in time order, then the
        position still open at the end (``exit_idx = -1``, marked at the last close). Records
        beyond the capacity are counted but not stored (the caller re-runs with more room).
    stats:
        Output, shape ``(N_STATS,)``: final value, sum and sum of squares of the ``T`` bar
        returns (the first one against ``init_cash``), maximum drawdown, closed trades,
        records (closed trades plus the open position, if any).

    Notes
    -----
    The pass alternates two tight loops. Flat, the value is the cash at every bar: its
    returns are exactly 0 and it can set no new peak or drawdown, so the loop only compares
    the averages and stores the cash. Long, the loop marks the position and watches for the
    exit. The bars with a fill are accounted between the loops.
    """
    n_bars = close.shape[0]
    capacity = entry_idx.shape[0]
    cash = init_cash
    size = 0.0
    n_trades = 0
    open_bar = -1
    open_price = 0.0
    previous = init_cash
    peak = init_cash
    max_drawdown = 0.0
    return_sum = 0.0
    square_sum = 0.0

    t = min(start, n_bars)
    if write_equity:
        for bar in range(t):
            equity[bar] = init_cash
    # Both averages are defined at start - 1, so the comparison there is a real one.
    previous_gt = t >= 1 and fast[t - 1] > slow[t - 1]
    previous_lt = False
    while t < n_bars:
        # ------------------------------------------------------------ flat
        signal = False
        while t < n_bars:
            if write_equity:
                equity[t] = cash
            gt = fast[t] > slow[t]
            if gt and not previous_gt:
                signal = True
                break
            previous_gt = gt
            t += 1
        if not signal:
            break
        if fill_next_open:
            t += 1
            if t >= n_bars:
                break
            price = open_[t]
        else:
            price = close[t]
        size = buy_all_in_nb(cash, price)
        cash -= size * price
        open_bar = t
        open_price = price
        # The entry bar compared fast > slow, so it was not fast < slow.
        previous_lt = False
        if not fill_next_open:
            value = cash + size * close[t]
            if write_equity:
                equity[t] = value
            return_sum, square_sum, peak, max_drawdown = _mark_nb(
                value, previous, return_sum, square_sum, peak, max_drawdown
            )
            previous = value
            t += 1

        # ------------------------------------------------------------ long
        floor = _drawdown_floor_nb(peak, max_drawdown)
        signal = False
        while t < n_bars:
            value = cash + size * close[t]
            if write_equity:
                equity[t] = value
            bar_return = value / previous - 1.0
            return_sum += bar_return
            square_sum += bar_return * bar_return
            if value > peak:
                peak = value
                floor = _drawdown_floor_nb(peak, max_drawdown)
            elif value < floor:
                drawdown = 1.0 - value / peak
                if drawdown > max_drawdown:
                    max_drawdown = drawdown
                    floor = _drawdown_floor_nb(peak, max_drawdown)
            previous = value
            lt = fast[t] < slow[t]
            if lt and not previous_lt:
                signal = True
                break
            previous_lt = lt
            t += 1
        if not signal:
            break
        if fill_next_open:
            t += 1
            if t >= n_bars:
                break
            price = open_[t]
        else:
            price = close[t]
        cash += size * price
        if n_trades < capacity:
            entry_idx[n_trades] = open_bar
            exit_idx[n_trades] = t
            entry_price[n_trades] = open_price
            exit_price[n_trades] = price
            trade_size[n_trades] = size
            trade_pnl[n_trades] = size * (price - open_price)
        n_trades += 1
        size = 0.0
        open_bar = -1
        if fill_next_open:
            # Flat from this open on: the bar's value is the cash (the flat loop stores it).
            return_sum, square_sum, peak, max_drawdown = _mark_nb(
                cash, previous, return_sum, square_sum, peak, max_drawdown
            )
            previous = cash
        else:
            # Bar t was marked long as cash + size * close[t]: the same bits as the new cash.
            t += 1
        # The exit bar compared fast < slow, so it was not fast > slow.
        previous_gt = False

    n_records = n_trades
    if open_bar >= 0:
        if n_records < capacity:
            last_close = close[n_bars - 1]
            entry_idx[n_records] = open_bar
            exit_idx[n_records] = -1
            entry_price[n_records] = open_price
            exit_price[n_records] = last_close
            trade_size[n_records] = size
            trade_pnl[n_records] = size * (last_close - open_price)
        n_records += 1
    stats[STAT_FINAL_VALUE] = previous
    stats[STAT_RETURN_SUM] = return_sum
    stats[STAT_RETURN_SQUARE_SUM] = square_sum
    stats[STAT_MAX_DRAWDOWN] = max_drawdown
    stats[STAT_N_TRADES] = n_trades
    stats[STAT_N_RECORDS] = n_records


@njit(cache=True, fastmath=False)
def simulate_chunk_nb(
    close: np.ndarray,
    open_: np.ndarray,
    averages: np.ndarray,
    fast_row: np.ndarray,
    slow_row: np.ndarray,
    starts: np.ndarray,
    fill_next_open: bool,
    init_cash: float,
    equity: np.ndarray,
    write_equity: bool,
    entry_idx: np.ndarray,
    exit_idx: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    trade_size: np.ndarray,
    trade_pnl: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Simulate a chunk of strategies one after the other (one thread).

    ``averages`` is ``(n_windows, T)``; strategy ``k`` uses rows ``fast_row[k]`` and
    ``slow_row[k]``. The per-strategy outputs are row ``k`` of ``equity`` ``(K, T)``, of the
    trade buffers ``(K, capacity)`` and of ``stats`` ``(K, N_STATS)``.
    """
    for k in range(fast_row.shape[0]):
        simulate_sma_cross_nb(
            close,
            open_,
            averages[fast_row[k]],
            averages[slow_row[k]],
            starts[k],
            fill_next_open,
            init_cash,
            equity[k],
            write_equity,
            entry_idx[k],
            exit_idx[k],
            entry_price[k],
            exit_price[k],
            trade_size[k],
            trade_pnl[k],
            stats[k],
        )


@njit(cache=True, fastmath=False, parallel=True)
def simulate_chunk_parallel_nb(
    close: np.ndarray,
    open_: np.ndarray,
    averages: np.ndarray,
    fast_row: np.ndarray,
    slow_row: np.ndarray,
    starts: np.ndarray,
    fill_next_open: bool,
    init_cash: float,
    equity: np.ndarray,
    write_equity: bool,
    entry_idx: np.ndarray,
    exit_idx: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    trade_size: np.ndarray,
    trade_pnl: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Simulate a chunk of strategies across numba's threads (same outputs as the serial one)."""
    for k in prange(fast_row.shape[0]):
        simulate_sma_cross_nb(
            close,
            open_,
            averages[fast_row[k]],
            averages[slow_row[k]],
            starts[k],
            fill_next_open,
            init_cash,
            equity[k],
            write_equity,
            entry_idx[k],
            exit_idx[k],
            entry_price[k],
            exit_price[k],
            trade_size[k],
            trade_pnl[k],
            stats[k],
        )
