"""Numba kernel of the exact bar backtester (pure: arrays in, arrays out).

The semantics are written in ``docs/fill_assumptions.md``; this module implements them and
nothing else. All inputs are C-contiguous float64/bool/int64 arrays; scalars that vary by
bar or asset arrive already broadcast to ``(T, N)`` by :mod:`simulators.backtest`.

Per bar ``t`` the kernel runs these phases, in this order:

1. **open** (``fill="next-open"`` or ``"next-bar"``): pending exits, then pending entries
   (column order), fill at ``fill_price[t]``: the open (``next-open``) or the bar's reference
   price (``next-bar``: the order executes over the bar, as the arena works a day's order over
   its minutes; :func:`simulators.fill_model.reference_prices`); an order due on a
   non-tradable bar waits for the asset's next own bar (a suspended day is not a bar of the
   asset: "next open" is the open of its next bar);
2. **time stop**: positions held ``>= time_stop`` bars of their own (tradable bars after the
   entry bar; suspended days do not count) exit at ``fill_price[t]`` (the open with
   ``close`` fills);
3. **intrabar stops** (positions filled before bar ``t``): stop loss / trailing stop
   before take profit; a gap through the level fills at the open, otherwise at the level;
4. **close** (``fill="close"`` only): exits, then entries, fill at ``close[t]``;
5. **mark**: ``equity[t] = cash + sum(size * close[t])``; with ``fill="next-open"`` the
   signals of bar ``t`` become pending orders for ``t + 1``.

Every fill pays half the spread and the square-root impact of its bar and fills at most the
participation cap of the bar's volume (:func:`trade_cost_nb`, :func:`bar_capacity_nb`; both
off when the caller passes zero costs and an infinite cap). Two accumulators record the
notional the entries intended and the part the cap let fill (:func:`simulate_nb`'s ``fills``:
the backtest's capacity).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulators.lots import MAX_LOTS, lots_size_nb, round_to_lot_nb

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
    """Return the commission of one order of traded ``value``.

    The numba twin of :func:`simulators.costs.commission_amount` (the fee model's formula).
    """
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
def square_root_impact_nb(
    quantity: float, volume: float, sigma: float, coefficient: float
) -> float:
    """The numba twin of :func:`simulators.costs.square_root_impact` (same operations)."""
    if quantity <= 0.0 or volume <= 0.0 or sigma <= 0.0 or coefficient <= 0.0:
        return 0.0
    return coefficient * sigma * np.sqrt(quantity / volume)


@njit(cache=True)
def transient_decay_nb(level: float, bars: float, half_life_bars: float) -> float:
    """The numba twin of :func:`simulators.costs.transient_decay` (same operations)."""
    if level == 0.0 or half_life_bars == 0.0:
        return 0.0
    return level * 0.5 ** (bars / half_life_bars)


@njit(cache=True)
def trade_cost_nb(
    quantity: float, volume: float, sigma: float, half_spread: float, impact_coefficient: float
) -> float:
    """Return the adverse fraction of the price one fill pays: half-spread plus impact.

    The numba twin of :meth:`simulators.costs.ConstantSpread.half_spread` plus
    :func:`simulators.costs.square_root_impact`, ``k * sigma * sqrt(quantity / volume)``; no
    impact on a bar without volume.
    """
    cost = half_spread
    if impact_coefficient > 0.0 and quantity > 0.0 and volume > 0.0 and sigma > 0.0:
        cost += impact_coefficient * sigma * np.sqrt(quantity / volume)
    return cost


@njit(cache=True)
def bar_capacity_nb(volume: float, participation_cap: float, lot: float) -> float:
    """Return the most one bar can fill of an asset: ``cap * volume`` in whole lots.

    The numba twin of :meth:`simulators.costs.VolumeParticipation.capacity`: ``inf`` when
    there is no cap; 0 on a bar without volume (the fill model's ``no_volume``).
    """
    if not np.isfinite(participation_cap):
        return np.inf
    if not volume > 0.0:
        return 0.0
    capacity = participation_cap * volume
    if lot > 0.0:
        # Down to whole lots, tolerant of float noise: the one lot rule (simulators.lots).
        capacity = round_to_lot_nb(capacity, lot)
    return capacity


@njit(cache=True)
def entry_fill_nb(
    budget: float,
    base: float,
    lot: float,
    capacity: float,
    volume: float,
    sigma: float,
    half_spread: float,
    impact_coefficient: float,
    rate: float,
    minimum: float,
    fixed: float,
) -> tuple[float, float, float]:
    """Return ``(quantity, price, wanted)`` of a buy of at most ``budget`` at price ``base``.

    ``wanted`` is what the budget affords at the price with the half-spread, before the
    participation cap: the size the strategy intended (the capacity figure's denominator,
    :func:`simulate_nb`). The quantity is ``wanted`` capped by the bar's ``capacity``, then cut
    to what the budget affords with its own impact: impact grows with the quantity, so the
    size affordable at the impact of the first estimate is taken: its own impact is no larger,
    so its cost plus commission still fits the budget (cash never goes negative).
    """
    wanted = affordable_size_nb(budget, base * (1.0 + half_spread), lot, rate, minimum, fixed)
    quantity = wanted
    if quantity > capacity:
        quantity = capacity
    if quantity <= 0.0:
        return 0.0, base, wanted
    cost = trade_cost_nb(quantity, volume, sigma, half_spread, impact_coefficient)
    if cost > half_spread:
        fit = affordable_size_nb(budget, base * (1.0 + cost), lot, rate, minimum, fixed)
        if fit < quantity:
            quantity = fit
        if quantity <= 0.0:
            return 0.0, base, wanted
        cost = trade_cost_nb(quantity, volume, sigma, half_spread, impact_coefficient)
    return quantity, base * (1.0 + cost), wanted


@njit(cache=True)
def sell_nb(
    i: int,
    t: int,
    quantity: float,
    price: float,
    fee: float,
    reason: int,
    size: np.ndarray,
    entry_price: np.ndarray,
    entry_idx: np.ndarray,
    entry_fees: np.ndarray,
    sold: np.ndarray,
    trades: np.ndarray,
    n_trades: int,
) -> int:
    """Apply one sell fill of ``quantity`` of asset ``i`` at bar ``t``; return the trade count.

    A sell smaller than the position (the bar's capacity) reduces it and is remembered in
    ``sold[i] = (quantity, value, fees, reason)``; the trade record is written once, when the
    position is closed: its size is the whole entry, its exit price the average of the sells,
    its exit reason the one of the first sell.
    """
    if quantity < size[i]:
        if sold[i, 0] == 0.0:
            sold[i, 3] = reason
        sold[i, 0] += quantity
        sold[i, 1] += quantity * price
        sold[i, 2] += fee
        size[i] -= quantity
        return n_trades
    rec = trades[n_trades]
    rec["column"] = i
    rec["entry_idx"] = entry_idx[i]
    rec["exit_idx"] = t
    rec["entry_price"] = entry_price[i]
    if sold[i, 0] == 0.0:
        rec["exit_price"] = price
        rec["size"] = size[i]
        rec["pnl"] = size[i] * (price - entry_price[i]) - entry_fees[i] - fee
        rec["fees"] = entry_fees[i] + fee
        rec["exit_reason"] = reason
    else:
        total = sold[i, 0] + quantity
        value = sold[i, 1] + quantity * price
        fees = sold[i, 2] + fee
        rec["exit_price"] = value / total
        rec["size"] = total
        rec["pnl"] = value - total * entry_price[i] - entry_fees[i] - fees
        rec["fees"] = entry_fees[i] + fees
        rec["exit_reason"] = int(sold[i, 3])
        sold[i, :] = 0.0
    size[i] = 0.0
    return n_trades + 1


@njit(cache=True)
def signal_sell_nb(
    i: int,
    t: int,
    qty: float,
    base: float,
    bar_volume: float,
    bar_sigma: float,
    half_spread: float,
    impact_coefficient: float,
    commission_rate: float,
    commission_min: float,
    commission_fixed: float,
    stamp_duty: float,
    size: np.ndarray,
    entry_price: np.ndarray,
    entry_idx: np.ndarray,
    entry_fees: np.ndarray,
    sold: np.ndarray,
    trades: np.ndarray,
    n_trades: int,
) -> tuple[float, int]:
    """Sell ``qty`` of asset ``i`` on a signal exit at ``base`` less the spread and impact.

    The one costing of a signal exit, at the open or at the close: the price is ``base x (1 -
    trade cost)`` (:func:`trade_cost_nb`), the fee the commission plus the stamp duty of the
    bar's day. Returns ``(proceeds net of fees, n_trades)``; the books are updated by
    :func:`sell_nb`.
    """
    cost = trade_cost_nb(qty, bar_volume, bar_sigma, half_spread, impact_coefficient)
    price = base * (1.0 - min(cost, 1.0))
    value = qty * price
    fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
    fee += value * stamp_duty
    n_trades = sell_nb(
        i, t, qty, price, fee, EXIT_SIGNAL, size, entry_price, entry_idx, entry_fees, sold,
        trades, n_trades,
    )  # fmt: skip
    return value - fee, n_trades


@njit(cache=True)
def simulate_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fill_price: np.ndarray,
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
    volume: np.ndarray,
    sigma: np.ndarray,
    half_spread: float,
    impact_coefficient: float,
    participation_cap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate long-only signal trading on ``(T, N)`` bars.

    Every fill pays ``half_spread + impact_coefficient * sigma * sqrt(qty / volume)`` of its
    reference price (``sigma`` and ``volume`` of the fill's bar) and fills at most
    ``participation_cap * volume`` of the bar (``inf``: no cap). The part of a buy the bar
    cannot fill is not bought; the part of a sell stays due and is retried at the next open
    (``next-open``) or close (``close``), capped again.

    Returns
    -------
    equity : (T,) float64
    cash : (T,) float64
    positions : (T, N) float64, size held at each bar close
    trades : structured array of ``TRADE_DTYPE`` (closed trades, then open ones)
    fills : (2,) float64, ``(intended, filled)``: the notional (size x reference price, before
        spread and impact) the entries' budgets afforded before the participation cap, and
        the part of it the cap let fill, summed over the entries that reached their fill bar
        (an entry the bar cannot fill at all counts whole in ``intended``, 0 in ``filled``).
        ``filled / intended`` is the backtest's capacity (:mod:`simulators.backtest`); with no
        cap the two are equal. Sells are not counted: what the cap cannot sell stays due.
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
    sold = np.zeros((n_assets, 4))  # partial sells of the open position: qty, value, fees, reason
    used = np.zeros(n_assets)  # quantity filled in the current bar (the participation cap)
    capped = np.isfinite(participation_cap)
    intended = 0.0  # notional the entries' budgets afforded, before the participation cap
    filled = 0.0  # the part of it the cap let fill

    for t in range(n_bars):
        if capped:
            used[:] = 0.0
        # ---------------------------------------------------------------- 1. open
        if not fill_at_close:
            for i in range(n_assets):
                if pending_exit[i] and size[i] > 0.0:
                    base = max(fill_price[t, i] * (1.0 - slippage), low[t, i])
                    qty = min(
                        size[i],
                        bar_capacity_nb(volume[t, i], participation_cap, lot_size[i]) - used[i],
                    )
                    if (
                        tradable[t, i]
                        and qty > 0.0
                        and base > limit_down[t, i]
                        and not (t_plus_one and day_id[t] <= day_id[entry_idx[i]])
                    ):
                        proceeds, n_trades = signal_sell_nb(
                            i, t, qty, base, volume[t, i], sigma[t, i], half_spread,
                            impact_coefficient, commission_rate, commission_min,
                            commission_fixed, stamp_duty[t], size, entry_price, entry_idx,
                            entry_fees, sold, trades, n_trades,
                        )  # fmt: skip
                        cash += proceeds
                        used[i] += qty
                        if size[i] == 0.0:
                            n_open -= 1
                            pending_exit[i] = False
                elif size[i] == 0.0:
                    pending_exit[i] = False
            # Entries are sized on equity valued at this bar's fill prices.
            open_equity = cash
            for i in range(n_assets):
                if size[i] > 0.0:
                    open_equity += size[i] * fill_price[t, i]
            for i in range(n_assets):
                if not pending_entry[i]:
                    continue
                if not tradable[t, i]:
                    continue  # not a bar of the asset: the entry waits for its next one
                pending_entry[i] = False  # an entry that cannot fill at its bar expires
                if size[i] > 0.0 or n_open >= max_positions:
                    continue
                base = min(fill_price[t, i] * (1.0 + slippage), high[t, i])
                if base >= limit_up[t, i]:
                    continue
                s = pending_signal_bar[i]
                if sizing == SIZING_ALL_IN:
                    budget = min(cash, open_equity / max_positions)
                else:
                    budget = min(cash, open_equity * fraction[s, i])
                room = max(
                    bar_capacity_nb(volume[t, i], participation_cap, lot_size[i]) - used[i], 0.0
                )
                qty, price, wanted = entry_fill_nb(
                    budget,
                    base,
                    lot_size[i],
                    room,
                    volume[t, i],
                    sigma[t, i],
                    half_spread,
                    impact_coefficient,
                    commission_rate,
                    commission_min,
                    commission_fixed,
                )
                if wanted > 0.0:
                    # The capacity figure: what the budget intended, what the cap let fill.
                    intended += wanted * base
                    filled += min(wanted, room) * base
                if qty <= 0.0:
                    continue
                used[i] += qty
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
                # An order due at the start of the bar: the price of the bar's due orders.
                raw = fill_price[t, i]
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
            base = max(raw * (1.0 - slippage), bar_low)
            if base <= limit_down[t, i]:
                if bar_high > peak[i]:
                    peak[i] = bar_high
                continue
            qty = min(
                size[i], bar_capacity_nb(volume[t, i], participation_cap, lot_size[i]) - used[i]
            )
            if qty <= 0.0:
                # No capacity left in this bar: the exit stays due (the next open or close).
                pending_exit[i] = True
                stopped_at[i] = t
                if bar_high > peak[i]:
                    peak[i] = bar_high
                continue
            cost = trade_cost_nb(qty, volume[t, i], sigma[t, i], half_spread, impact_coefficient)
            price = base * (1.0 - min(cost, 1.0))
            value = qty * price
            fee = order_fee_nb(value, commission_rate, commission_min, commission_fixed)
            fee += value * stamp_duty[t]
            cash += value - fee
            used[i] += qty
            n_trades = sell_nb(
                i,
                t,
                qty,
                price,
                fee,
                reason,
                size,
                entry_price,
                entry_idx,
                entry_fees,
                sold,
                trades,
                n_trades,
            )
            stopped_at[i] = t
            if size[i] == 0.0:
                n_open -= 1
                pending_exit[i] = False
            else:
                # What the bar's capacity could not sell stays due (the next open or close).
                pending_exit[i] = True

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
                base = max(close[t, i] * (1.0 - slippage), low[t, i])
                qty = min(
                    size[i], bar_capacity_nb(volume[t, i], participation_cap, lot_size[i]) - used[i]
                )
                if (
                    not tradable[t, i]
                    or qty <= 0.0
                    or base <= limit_down[t, i]
                    or (t_plus_one and day_id[t] <= day_id[entry_idx[i]])
                ):
                    continue  # stays pending: retried at the next close
                proceeds, n_trades = signal_sell_nb(
                    i, t, qty, base, volume[t, i], sigma[t, i], half_spread, impact_coefficient,
                    commission_rate, commission_min, commission_fixed, stamp_duty[t], size,
                    entry_price, entry_idx, entry_fees, sold, trades, n_trades,
                )  # fmt: skip
                cash += proceeds
                used[i] += qty
                if size[i] == 0.0:
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
                base = min(close[t, i] * (1.0 + slippage), high[t, i])
                if base >= limit_up[t, i]:
                    continue
                if sizing == SIZING_ALL_IN:
                    budget = min(cash, close_equity / max_positions)
                else:
                    budget = min(cash, close_equity * fraction[t, i])
                room = max(
                    bar_capacity_nb(volume[t, i], participation_cap, lot_size[i]) - used[i], 0.0
                )
                qty, price, wanted = entry_fill_nb(
                    budget,
                    base,
                    lot_size[i],
                    room,
                    volume[t, i],
                    sigma[t, i],
                    half_spread,
                    impact_coefficient,
                    commission_rate,
                    commission_min,
                    commission_fixed,
                )
                if wanted > 0.0:
                    # The capacity figure: what the budget intended, what the cap let fill.
                    intended += wanted * base
                    filled += min(wanted, room) * base
                if qty <= 0.0:
                    continue
                used[i] += qty
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
            if sold[i, 0] == 0.0:
                rec["exit_price"] = close[last, i]
                rec["size"] = size[i]
                rec["pnl"] = size[i] * (close[last, i] - entry_price[i]) - entry_fees[i]
                rec["fees"] = entry_fees[i]
            else:
                # Partly sold: the sells so far and the rest marked at the last close.
                total = sold[i, 0] + size[i]
                value = sold[i, 1] + size[i] * close[last, i]
                rec["exit_price"] = value / total
                rec["size"] = total
                rec["pnl"] = value - total * entry_price[i] - entry_fees[i] - sold[i, 2]
                rec["fees"] = entry_fees[i] + sold[i, 2]
            rec["exit_reason"] = EXIT_OPEN
            n_trades += 1
    fills = np.array([intended, filled])
    return equity, cash_curve, positions, trades[:n_trades], fills
