"""What a backtest is measured against, and why a backtest without trades had none.

* :func:`buy_and_hold`: the baseline of a backtest. The same panel, costs and market rules, an
  equal-weight buy of every symbol at the first bar it can be bought (the first signal bar
  whose fill passes the kernel's checks: ``open[1]`` with ``fill="next-open"`` (the reference
  price of bar 1 with ``"next-bar"``), ``close[0]``
  with ``fill="close"``, later for a symbol not yet listed, suspended or at its limit-up
  price), held to the last bar. It runs through :func:`simulators.backtest.run_backtest_arrays`
  like any strategy: an entry signal at that bar, no exits, ``sizing="all-in"`` over every
  symbol (each buy spends ``min(cash, equity / N)``). A symbol whose one lot does not fit its
  share of equity at that bar stays in cash (buy-and-hold does not wait for a lower price).
* :func:`why_no_trades`: a sentence that says why a backtest closed no trade, read from the
  data and the signals. While no position has ever been opened the kernel's state is the
  initial cash and nothing else, so each entry signal's fate is decided by its fill bar:
  cancelled by an exit on the same bar, on the last bar (``next-open`` has no next bar), on
  a non-tradable (suspended) bar (with ``next-open`` the entry waits for the asset's next own
  bar, so only a suspension lasting to the last bar stops it), at the limit-up price, or one
  lot (price with slippage times the lot, plus commission) costing more than the entry's
  budget. The checks are the kernel's own, in its order (``docs/fill_assumptions.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.backtest import (
    ArrayBacktest,
    BacktestConfig,
    PreparedPanel,
    StopInput,
    prepare_panel,
    run_backtest_arrays,
)
from simulators.backtest_nb import affordable_size_nb, order_fee_nb
from simulators.bars import Panel

__all__ = ["BUY_AND_HOLD_METRICS", "BuyAndHold", "buy_and_hold", "why_no_trades"]

#: The metrics shown for the buy-and-hold baseline beside the strategy's.
BUY_AND_HOLD_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "max_drawdown",
    "final_equity",
)

# What an entry signalled at bar s meets at its fill bar, in the kernel's order of checks.
_FILLABLE = 0  # passes every check but the budget
_CONFLICT = 1  # an exit signal on the same bar cancels it
_LAST_BAR = 2  # next-open fill with no next bar
_NOT_TRADABLE = 3
_LIMIT_UP = 4
_NO_PRICE = 5


@dataclass(frozen=True, slots=True)
class BuyAndHold:
    """The buy-and-hold baseline of a panel.

    Attributes
    ----------
    result:
        The backtest of the baseline (equity, trades, metrics).
    bought:
        Symbols bought, in column order.
    not_bought:
        Symbols never bought: no bar they could be bought at, or one lot beyond their share.
    """

    result: ArrayBacktest
    bought: tuple[str, ...]
    not_bought: tuple[str, ...]


def _fill_prices(prepared: PreparedPanel, config: BacktestConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return, per signal bar, the entry fill price and what the fill bar's checks say.

    Row ``s`` is an entry signalled at the close of bar ``s``: it fills at the open of the
    asset's next own bar (``next-open``: ``open[s + 1]``, or later when the asset is suspended
    then; never when it has no bar after ``s``), at that bar's reference price (``next-bar``)
    or at ``close[s]`` (``close``), with slippage,
    capped at the bar's high; the checks are the kernel's, in its order (tradable, limit-up, a
    price).
    """
    n_bars, n_assets = prepared.close.shape
    columns = np.arange(n_assets)[None, :]
    if config.fill == "close":
        fill_rows = np.broadcast_to(np.arange(n_bars)[:, None], (n_bars, n_assets))
        raw = prepared.close
        code = np.zeros((n_bars, n_assets), dtype=np.int64)
    else:
        # The asset's first own bar after s (n_bars when there is none).
        rows = np.where(prepared.tradable, np.arange(n_bars)[:, None], n_bars)
        upcoming = np.minimum.accumulate(rows[::-1], axis=0)[::-1]
        after = np.full((n_bars, n_assets), n_bars, dtype=np.int64)
        after[:-1] = upcoming[1:]
        last_row = n_bars - 1
        code = np.where(
            np.arange(n_bars)[:, None] == last_row,
            _LAST_BAR,
            np.where(after >= n_bars, _NOT_TRADABLE, _FILLABLE),
        )
        fill_rows = np.minimum(after, last_row)
        due = prepared.reference if config.fill == "next-bar" else prepared.open
        raw = due[fill_rows, columns]
    with np.errstate(invalid="ignore"):
        fill = np.minimum(raw * (1.0 + float(config.slippage)), prepared.high[fill_rows, columns])
        at_limit = fill >= prepared.rules.limit_up[fill_rows, columns]
    pending = code == _FILLABLE
    code = np.where(
        pending,
        np.select(
            [~prepared.tradable[fill_rows, columns], at_limit, ~np.isfinite(fill)],
            [_NOT_TRADABLE, _LIMIT_UP, _NO_PRICE],
            default=_FILLABLE,
        ),
        code,
    )
    price = np.where(pending, fill, np.nan)
    return price, code


def buy_and_hold(
    panel: Panel, config: BacktestConfig | None = None, *, prepared: PreparedPanel | None = None
) -> BuyAndHold:
    """Return the equal-weight buy-and-hold of every symbol of ``panel`` under ``config``.

    Cash, fill, market, commission, slippage and ST settings come from ``config``; sizing
    does not (buy-and-hold spends ``min(cash, equity / N)`` on each symbol at its first bar).

    Parameters
    ----------
    prepared:
        Optional :func:`~simulators.backtest.prepare_panel` of this panel and market.
    """
    cfg = (config or BacktestConfig()).model_copy(
        update={"sizing": "all-in", "fraction": 1.0, "max_positions": None}
    )
    if prepared is None:
        prepared = prepare_panel(panel, cfg)
    _price, code = _fill_prices(prepared, cfg)
    fillable = code == _FILLABLE
    first = np.argmax(fillable, axis=0)
    columns = np.flatnonzero(fillable.any(axis=0))
    entries = np.zeros(fillable.shape, dtype=bool)
    entries[first[columns], columns] = True
    exits = np.zeros(fillable.shape, dtype=bool)
    result = run_backtest_arrays(panel, entries, exits, config=cfg, prepared=prepared)
    held = set(result.trades["column"].tolist())
    return BuyAndHold(
        result=result,
        bought=tuple(s for i, s in enumerate(panel.symbols) if i in held),
        not_bought=tuple(s for i, s in enumerate(panel.symbols) if i not in held),
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _as_grid(signals: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(signals, dtype=bool)
    if array.ndim == 1 and shape[1] == 1:
        array = array[:, None]
    if array.shape != shape:
        raise ValueError(f"why_no_trades: {name} has shape {array.shape}, expected {shape}")
    return array


def _budget(config: BacktestConfig, n_assets: int, fraction: float | None) -> tuple[float, str]:
    """Return the budget of an entry while no position is open, and how to say it."""
    cash = float(config.cash)
    if fraction is None:  # all-in: min(cash, equity / max_positions), equity = cash
        slots = config.max_positions if config.max_positions is not None else n_assets
        budget = min(cash, cash / slots)
        if slots == 1:
            return budget, f"the cash {cash:,.2f}"
        return budget, f"the budget per entry {budget:,.2f} (cash {cash:,.2f} / {slots} positions)"
    budget = min(cash, cash * fraction)
    return budget, f"the budget per entry {budget:,.2f} ({fraction:g} of the cash {cash:,.2f})"


def why_no_trades(
    panel: Panel,
    entries: np.ndarray,
    exits: np.ndarray,
    trades: pd.DataFrame,
    *,
    config: BacktestConfig | None = None,
    size: StopInput = None,
) -> str | None:
    """Return why the backtest of ``entries``/``exits`` on ``panel`` closed no trade.

    Parameters
    ----------
    entries, exits:
        The ``(T, N)`` (or ``(T,)`` for one symbol) signals that were backtested.
    trades:
        The backtest's trade table (:attr:`~simulators.backtest.BacktestResult.trades`).
    config:
        The configuration of that backtest (:attr:`~simulators.backtest.BacktestResult.config`:
        cash, fill, market, sizing, ``max_positions``, slippage, commission).
    size:
        The per-entry fraction of equity, when the backtest was given one (a genome's sizing).

    Returns
    -------
    str or None
        ``None`` when a trade was closed; otherwise one sentence: positions opened but still
        open at the last bar, the strategy never signalled an entry, or what stopped each
        signalled entry, with counts (one lot's cost against the entry's budget, price limits,
        non-tradable bars, last-bar signals, signals cancelled by an exit).

    Raises
    ------
    ValueError
        If a signal array has the wrong shape, or ``trades`` is empty but an entry of these
        signals would have filled (they are not the signals of this backtest).
    """
    if len(trades) and bool((trades["exit_idx"] >= 0).any()):
        return None
    if len(trades):
        held = ", ".join(dict.fromkeys(str(symbol) for symbol in trades["symbol"]))
        return (
            f"no trade closed: {_plural(len(trades), 'position was', 'positions were')} opened "
            f"({held}) and still open at the last bar (marked at the last close; n_trades "
            "counts closed trades)"
        )
    cfg = config or BacktestConfig()
    shape = (panel.n_bars, panel.n_assets)
    signalled = _as_grid(entries, shape, "entries")
    n_signals = int(signalled.sum())
    if n_signals == 0:
        return (
            f"the strategy never signalled an entry ({panel.n_bars:,} bars x "
            f"{_plural(panel.n_assets, 'symbol', 'symbols')})"
        )
    prepared = prepare_panel(panel, cfg)
    rules = prepared.rules
    fees = (rules.commission_rate, rules.commission_min, rules.commission_fixed)
    price, code = _fill_prices(prepared, cfg)
    code = np.where(_as_grid(exits, shape, "exits"), _CONFLICT, code)
    if size is not None:
        fractions: np.ndarray | None = np.broadcast_to(np.asarray(size, dtype=np.float64), shape)
    elif cfg.sizing == "fraction":
        fractions = np.full(shape, float(cfg.fraction))
    else:
        fractions = None
    counts = dict.fromkeys(range(_NO_PRICE + 1), 0)
    nearest: tuple[float, str] | None = None  # (cost / budget, how to say it)
    for s, i in np.argwhere(signalled):
        outcome = int(code[s, i])
        counts[outcome] += 1
        if outcome != _FILLABLE:
            continue
        budget, budget_text = _budget(
            cfg, panel.n_assets, None if fractions is None else float(fractions[s, i])
        )
        fill = float(price[s, i])
        lot = float(rules.lot_size[i])
        if affordable_size_nb(budget, fill, lot, *fees) > 0.0:
            raise ValueError(
                f"why_no_trades: the entry signalled on bar {s} for {panel.symbols[i]} would "
                "have filled, yet the backtest has no trade: these are not its signals"
            )
        symbol = panel.symbols[i]
        if lot > 0:
            cost = lot * fill + order_fee_nb(lot * fill, *fees)
            text = f"one lot ({lot:g} units) of {symbol} at {fill:,.2f} costs {cost:,.2f}"
        else:
            # Fractional sizes: only the commission's fixed parts can leave nothing to buy with.
            cost = rules.commission_min + rules.commission_fixed
            text = f"the minimum commission of an order of {symbol} is {cost:,.2f}"
        ratio = cost / budget if budget > 0 else np.inf
        if nearest is None or ratio < nearest[0]:
            nearest = (ratio, f"{text} > {budget_text}")
    parts: list[tuple[int, str]] = []
    unaffordable = counts[_FILLABLE]
    if unaffordable and nearest is not None:
        detail = f": {nearest[1]}" if unaffordable == 1 else f" (the nearest: {nearest[1]})"
        parts.append((unaffordable, f"{unaffordable:,} could not pay for one lot{detail}"))
    words = {
        _LIMIT_UP: "at the limit-up price at the fill (price limits)",
        _NOT_TRADABLE: "on a non-tradable (suspended) fill bar",
        _LAST_BAR: "on the last bar (a next-open fill needs a next bar)",
        _CONFLICT: "cancelled by an exit signal on the same bar",
        _NO_PRICE: "without a price at the fill bar",
    }
    parts.extend(
        (counts[key], f"{counts[key]:,} {text}") for key, text in words.items() if counts[key]
    )
    parts.sort(key=lambda part: -part[0])
    return (
        f"the strategy signalled {_plural(n_signals, 'entry', 'entries')} and none filled: "
        + "; ".join(text for _count, text in parts)
    )
