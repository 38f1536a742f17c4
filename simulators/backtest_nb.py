"""Numba kernel of the exact bar backtester (pure: arrays in, arrays out).

The semantics are written in ``docs/fill_assumptions.md``; this module implements them and
nothing else. All inputs are C-contiguous float64/bool/int64 arrays; scalars that vary by
bar or asset arrive already broadcast to ``(T, N)`` by :mod:`simulators.backtest`.

Per bar ``t`` the kernel runs these phases, in this order:

1. **open** (``fill="next-open"`` only): pending exits, then pending entries (column order),
   fill at ``open[t]``; an order due on a non-tradable bar waits for the asset's next own bar
   (a suspended day is not a bar of the asset: "next open" is the open of its next bar);
2. **time stop**: positions held ``>= time_stop`` bars of their own (tradable bars after the
   entry bar; suspended days do not count) exit at ``open[t]``;
3. **intrabar stops** (positions filled before bar ``t``): stop loss / trailing stop
   before take profit; a gap through the level fills at the open, otherwise at the level;
4. **close** (``fill="close"`` only): exits, then entries, fill at ``close[t]``;
5. **mark**: ``equity[t] = cash + sum(size * close[t])``; with ``fill="next-open"`` the
   signals of bar ``t`` become pending orders for ``t + 1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulators.lots import MAX_LOTS, lots_size_nb

# Exit reasons stored in TradeRecord.exit_reason.
EXIT_OPEN = 0  # still open at the last bar (marked at the last close)
EXIT_SIGNAL = 1
EXIT_STOP_LOSS = 2
EXIT_TAKE_PROFIT = 3
EXIT_TRAILING_STOP = 4
EXIT_TIME_STOP = 5
EXIT_REASON_NAMES: tuple[str, ...] = (
    "open",
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "time_stop",
)

TRADE_DTYPE = np.dtype(
    [
        ("column", np.int64),
        ("entry_idx", np.int64),
        ("exit_idx", np.int64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("size", np.float64),
        ("pnl", np.float64),
        ("fees", np.float64),
        ("exit_reason", np.int64),
    ],
    align=True,
)

SIZING_ALL_IN = 0
SIZING_FRACTION = 1


@njit(cache=True)
def order_fee_nb(value: float, rate: float, minimum: float, fixed: float) -> float:
    """Return the commission of one order of traded ``value``."""
    if value <= 0.0:
        return 0.0
    return max(rate * value, minimum) + fixed


@njit(cache=True)
def _fits_nb(
    count: float, budget: float, price: float, lot: float, rate: float, minimum: float, fixed: float
) -> bool:
    # The cost as the kernels book it: value = size * price, then value + fee.
    value = lots_size_nb(count, lot) * price
    return value + order_fee_nb(value, rate, minimum, fixed) <= budget


@njit(cache=True)
def _affordable_lots_nb(
    budget: float,
    price: float,
    lot: float,
    estimate: float,
    rate: float,
    minimum: float,
    fixed: float,
) -> float:
    # Floor the estimated size to whole lots, then correct the count both ways by the exact
    # cost: the quotient is within a lot or two of the answer but may fall either side of a
    # whole number when the budget is within ulps of a lot's cost.
    if not estimate > 0.0:
        estimate = 0.0
    count = min(np.floor(estimate / lot), MAX_LOTS)
    while count < MAX_LOTS and _fits_nb(count + 1.0, budget, price, lot, rate, minimum, fixed):
        count += 1.0
    while count > 0.0 and not _fits_nb(count, budget, price, lot, rate, minimum, fixed):
        count -= 1.0
    return count


@njit(cache=True)
def affordable_size_nb(
    budget: float, price: float, lot: float, rate: float, minimum: float, fixed: float
) -> float:
    """Return the largest size whose cost plus commission fits ``budget``.

    With ``lot > 0`` the size is a whole number of lots (:mod:`simulators.lots`), the
    largest whose ``size * price + fee`` is ``<= budget`` in float arithmetic, as the
    kernels book it; with ``lot == 0`` it is the largest representable fractional size.
    """
    if budget <= 0.0 or price <= 0.0 or not np.isfinite(price):
        return 0.0
    size = (budget - fixed) / (price * (1.0 + rate))
    if rate * size * price < minimum:
        # The minimum commission binds: it is a fixed cost for this order.
        size = (budget - fixed - minimum) / price
    if lot > 0.0:
        count = _affordable_lots_nb(budget, price, lot, size, rate, minimum, fixed)
        return lots_size_nb(count, lot)
    if size <= 0.0:
        return 0.0
    # Float rounding can make size * price exceed the budget by an ulp; cash never goes
    # negative, so step down to the next representable size.
    while size > 0.0 and size * price + order_fee_nb(size * price, rate, minimum, fixed) > budget:
        size = np.nextafter(size, 0.0)
    return size


@njit(cache=True)
def simulate_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    tradable: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    fill_at_close: bool,
    init_cash: float,
    sizing: int,
    fraction: np.ndarray,
    max_positions: int,
    sl_stop: np.ndarray,
    tp_stop: np.ndarray,
    tsl_stop: np.ndarray,
    time_stop: np.ndarray,
    lot_size: np.ndarray,
    limit_up: np.ndarray,
    limit_down: np.ndarray,
    stamp_duty: np.ndarray,
    day_id: np.ndarray,
    t_plus_one: bool,
    commission_rate: float,
    commission_min: float,
    commission_fixed: float,
    slippage: float,
    max_trades: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate long-only signal trading on ``(T, N)`` bars.

    Returns
    -------
    equity : (T,) float64
    cash : (T,) float64
    positions : (T, N) float64, size held at each bar close
    trades : structured array of ``TRADE_DTYPE`` (closed trades, then open ones)
    """
    n_bars, n_assets = close.shape
    equity = np.empty(n_bars)
    cash_curve = np.empty(n_bars)
    positions = np.zeros((n_bars, n_assets))
    trades = np.empty(max_trades + n_assets, dtype=TRADE_DTYPE)
    n_trades = 0

    cash = init_cash
    size = np.zeros(n_assets)
    entry_price = np.zeros(n_assets)
    entry_idx = np.full(n_assets, -1, dtype=np.int64)
    entry_fees = np.zeros(n_assets)
    sl_frac = np.full(n_assets, np.nan)
    tp_frac = np.full(n_assets, np.nan)
    tsl_frac = np.full(n_assets, np.nan)
    hold_limit = np.full(n_assets, np.nan)
    held_bars = np.zeros(n_assets, dtype=np.int64)  # own bars since the entry bar
    peak = np.zeros(n_assets)
    pending_entry = np.zeros(n_assets, dtype=np.bool_)
    pending_signal_bar = np.full(n_assets, -1, dtype=np.int64)
    pending_exit = np.zeros(n_assets, dtype=np.bool_)
    stopped_at = np.full(n_assets, -1, dtype=np.int64)
    n_open = 0

    for t in range(n_bars):
        # ---------------------------------------------------------------- 1. open
        if not fill_at_close:
            for i in range(n_assets):
                if pending_exit[i] and size[i] > 0.0:
                    price = max(open_[t, i] * (1.0 - slippage), low[t, i])
                    if (
                        tradable[t, i]
                        and price > limit_down[t, i]
                        and not (t_plus_one and day_id[t] <= day_id[entry_idx[i]])
                    ):
                        value = size[i] * price
                        fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
                        fee += value * stamp_duty[t]
                        cash += value - fee
                        rec = trades[n_trades]
                        rec["column"] = i
                        rec["entry_idx"] = entry_idx[i]
                        rec["exit_idx"] = t
                        rec["entry_price"] = entry_price[i]
                        rec["exit_price"] = price
                        rec["size"] = size[i]
                        rec["pnl"] = size[i] * (price - entry_price[i]) - entry_fees[i] - fee
                        rec["fees"] = entry_fees[i] + fee
                        rec["exit_reason"] = EXIT_SIGNAL
                        n_trades += 1
                        size[i] = 0.0
                        n_open -= 1
                        pending_exit[i] = False
                elif size[i] == 0.0:
                    pending_exit[i] = False
            # Entries are sized on equity valued at this bar's open (the fill prices).
            open_equity = cash
            for i in range(n_assets):
                if size[i] > 0.0:
                    open_equity += size[i] * open_[t, i]
            for i in range(n_assets):
                if not pending_entry[i]:
                    continue
                if not tradable[t, i]:
                    continue  # not a bar of the asset: the entry waits for its next one
                pending_entry[i] = False  # an entry that cannot fill at its bar expires
                if size[i] > 0.0 or n_open >= max_positions:
                    continue
                price = min(open_[t, i] * (1.0 + slippage), high[t, i])
                if price >= limit_up[t, i]:
                    continue
                s = pending_signal_bar[i]
                if sizing == SIZING_ALL_IN:
                    budget = min(cash, open_equity / max_positions)
                else:
                    budget = min(cash, open_equity * fraction[s, i])
                qty = affordable_size_nb(
                    budget, price, lot_size[i], commission_rate, commission_min, commission_fixed
                )
                if qty <= 0.0:
                    continue
                value = qty * price
                fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
                cash -= value + fee
                size[i] = qty
                entry_price[i] = price
                entry_idx[i] = t
                entry_fees[i] = fee
                sl_frac[i] = sl_stop[s, i]
                tp_frac[i] = tp_stop[s, i]
                tsl_frac[i] = tsl_stop[s, i]
                hold_limit[i] = time_stop[s, i]
                held_bars[i] = 0
                peak[i] = price
                n_open += 1

        # ---------------------------------------------------------------- 2-3. stops
        for i in range(n_assets):
            if size[i] <= 0.0 or entry_idx[i] >= t or not tradable[t, i]:
                continue
            held_bars[i] += 1
            if t_plus_one and day_id[t] <= day_id[entry_idx[i]]:
                if high[t, i] > peak[i]:
                    peak[i] = high[t, i]
                continue
            bar_open = open_[t, i]
            bar_high = high[t, i]
            bar_low = low[t, i]
            raw = np.nan
            reason = EXIT_OPEN
            if not np.isnan(hold_limit[i]) and held_bars[i] >= hold_limit[i]:
                raw = bar_open
                reason = EXIT_TIME_STOP
            else:
                # The highest of the two stop levels is the one a falling price meets first.
                stop_level = -np.inf
                stop_reason = EXIT_OPEN
                if not np.isnan(sl_frac[i]):
                    stop_level = entry_price[i] * (1.0 - sl_frac[i])
                    stop_reason = EXIT_STOP_LOSS
                if not np.isnan(tsl_frac[i]):
                    trail = peak[i] * (1.0 - tsl_frac[i])
                    if trail > stop_level:
                        stop_level = trail
                        stop_reason = EXIT_TRAILING_STOP
                target = np.inf
                if not np.isnan(tp_frac[i]):
                    target = entry_price[i] * (1.0 + tp_frac[i])
                if stop_reason != EXIT_OPEN and bar_open <= stop_level:
                    raw = bar_open
                    reason = stop_reason
                elif bar_open >= target:
                    raw = bar_open
                    reason = EXIT_TAKE_PROFIT
                elif stop_reason != EXIT_OPEN and bar_low <= stop_level:
                    raw = stop_level
                    reason = stop_reason
                elif bar_high >= target:
                    raw = target
                    reason = EXIT_TAKE_PROFIT
            if reason == EXIT_OPEN:
                if bar_high > peak[i]:
                    peak[i] = bar_high
                continue
            raw = min(max(raw, bar_low), bar_high)
            price = max(raw * (1.0 - slippage), bar_low)
            if price <= limit_down[t, i]:
                if bar_high > peak[i]:
                    peak[i] = bar_high
                continue
            value = size[i] * price
            fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
            fee += value * stamp_duty[t]
            cash += value - fee
            rec = trades[n_trades]
            rec["column"] = i
            rec["entry_idx"] = entry_idx[i]
            rec["exit_idx"] = t
            rec["entry_price"] = entry_price[i]
            rec["exit_price"] = price
            rec["size"] = size[i]
            rec["pnl"] = size[i] * (price - entry_price[i]) - entry_fees[i] - fee
            rec["fees"] = entry_fees[i] + fee
            rec["exit_reason"] = reason
            n_trades += 1
            size[i] = 0.0
            n_open -= 1
            pending_exit[i] = False
            stopped_at[i] = t

        # ---------------------------------------------------------------- 4. close
        if fill_at_close:
            for i in range(n_assets):
                if size[i] <= 0.0:
                    pending_exit[i] = False
                    continue
                if exits[t, i] and not entries[t, i]:
                    pending_exit[i] = True
                if not pending_exit[i] or entry_idx[i] == t:
                    continue
                price = max(close[t, i] * (1.0 - slippage), low[t, i])
                if (
                    not tradable[t, i]
                    or price <= limit_down[t, i]
                    or (t_plus_one and day_id[t] <= day_id[entry_idx[i]])
                ):
                    continue  # stays pending: retried at the next close
                value = size[i] * price
                fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
                fee += value * stamp_duty[t]
                cash += value - fee
                rec = trades[n_trades]
                rec["column"] = i
                rec["entry_idx"] = entry_idx[i]
                rec["exit_idx"] = t
                rec["entry_price"] = entry_price[i]
                rec["exit_price"] = price
                rec["size"] = size[i]
                rec["pnl"] = size[i] * (price - entry_price[i]) - entry_fees[i] - fee
                rec["fees"] = entry_fees[i] + fee
                rec["exit_reason"] = EXIT_SIGNAL
                n_trades += 1
                size[i] = 0.0
                n_open -= 1
                pending_exit[i] = False
            close_equity = cash
            for i in range(n_assets):
                if size[i] > 0.0:
                    close_equity += size[i] * close[t, i]
            for i in range(n_assets):
                if not entries[t, i] or exits[t, i] or size[i] > 0.0:
                    continue
                if stopped_at[i] == t or n_open >= max_positions or not tradable[t, i]:
                    continue
                price = min(close[t, i] * (1.0 + slippage), high[t, i])
                if price >= limit_up[t, i]:
                    continue
                if sizing == SIZING_ALL_IN:
                    budget = min(cash, close_equity / max_positions)
                else:
                    budget = min(cash, close_equity * fraction[t, i])
                qty = affordable_size_nb(
                    budget, price, lot_size[i], commission_rate, commission_min, commission_fixed
                )
                if qty <= 0.0:
                    continue
                value = qty * price
                fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
                cash -= value + fee
                size[i] = qty
                entry_price[i] = price
                entry_idx[i] = t
                entry_fees[i] = fee
                sl_frac[i] = sl_stop[t, i]
                tp_frac[i] = tp_stop[t, i]
                tsl_frac[i] = tsl_stop[t, i]
                hold_limit[i] = time_stop[t, i]
                held_bars[i] = 0
                peak[i] = price
                n_open += 1

        # ---------------------------------------------------------------- 5. mark
        value_now = cash
        for i in range(n_assets):
            positions[t, i] = size[i]
            if size[i] > 0.0:
                value_now += size[i] * close[t, i]
        equity[t] = value_now
        cash_curve[t] = cash
        if not fill_at_close and t + 1 < n_bars:
            for i in range(n_assets):
                if entries[t, i] and exits[t, i]:
                    continue  # conflicting signals cancel out
                if exits[t, i] and size[i] > 0.0:
                    pending_exit[i] = True
                elif entries[t, i] and size[i] == 0.0:
                    pending_entry[i] = True
                    pending_signal_bar[i] = t

    # Open positions are reported as trades marked at the last close (exit_idx = -1).
    last = n_bars - 1
    for i in range(n_assets):
        if size[i] > 0.0:
            rec = trades[n_trades]
            rec["column"] = i
            rec["entry_idx"] = entry_idx[i]
            rec["exit_idx"] = -1
            rec["entry_price"] = entry_price[i]
            rec["exit_price"] = close[last, i]
            rec["size"] = size[i]
            rec["pnl"] = size[i] * (close[last, i] - entry_price[i]) - entry_fees[i]
            rec["fees"] = entry_fees[i]
            rec["exit_reason"] = EXIT_OPEN
            n_trades += 1
    return equity, cash_curve, positions, trades[:n_trades]
