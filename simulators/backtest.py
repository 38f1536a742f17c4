"""Typed wrappers around the numba backtest kernel.

``run_backtest(panel, entries, exits, config=...)`` runs boolean signal arrays through
:func:`simulators.backtest_nb.simulate_nb` under a market's rules and returns a
:class:`BacktestResult` (pandas equity curve, trade table, metrics).
``run_strategy(panel, "sma-cross", {"fast": 10, "slow": 50}, config)`` does the same for a
reference strategy. The fill assumptions are in ``docs/fill_assumptions.md``.

``run_backtest_arrays`` is the one code path underneath: the same kernel call and metrics,
returned as arrays (:class:`ArrayBacktest`) without pandas objects, for callers that run
thousands of backtests (fitness evaluation). Those callers build a :class:`PreparedPanel`
once per panel (:func:`prepare_panel`: market-rule arrays, contiguous read-only price copies)
and pass it as ``prepared=``.

Costs of the arena's fill model (:mod:`simulators.fill_model`) are set in the configuration:
``half_spread_bps``, ``impact_coefficient`` (square-root impact ``k * sigma * sqrt(qty /
volume)`` with ``sigma`` of :func:`bar_sigma`) and ``participation_cap``; all off by default,
on in fitness (:mod:`evolution.evaluate`). They reach the kernel as the cost models of
:mod:`simulators.costs` (:func:`cost_model`, then :func:`simulators.costs.kernel_cost_args`,
the one conversion to the kernel's floats). The rules are in ``docs/fill_assumptions.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from alphaloop.errors import ConfigError
from simulators import detmath
from simulators.backtest_nb import (
    EXIT_REASON_NAMES,
    SIZING_ALL_IN,
    SIZING_FRACTION,
    simulate_nb,
)
from simulators.bars import Panel
from simulators.costs import (
    ConstantSpread,
    CostModel,
    MarketFees,
    SquareRootImpact,
    VolumeParticipation,
    kernel_cost_args,
)
from simulators.fill_model import reference_prices
from simulators.market_rules import MARKET_NAMES, RuleArrays, get_market_rules
from simulators.metrics import calendar_years, compute_metrics, panel_periods_per_year

__all__ = [
    "SIGMA_LOOKBACK",
    "ArrayBacktest",
    "BacktestConfig",
    "BacktestResult",
    "PreparedPanel",
    "bar_sigma",
    "capacity_ratio",
    "cost_model",
    "prepare_panel",
    "run_backtest",
    "run_backtest_arrays",
    "run_strategy",
]

#: Closes before a bar whose log returns make its volatility (:func:`bar_sigma`); the
#: arena's definition (``arena.cycle``: the 20 daily closes before the day traded).
SIGMA_LOOKBACK = 20

StopInput = float | np.ndarray | None


class BacktestConfig(FrozenConfig):
    """Settings of one backtest (defaults: ``alphaloop/configs/backtest.yaml``).

    Attributes
    ----------
    cash:
        Initial cash in the quote currency.
    fill:
        ``"next-open"``: a signal at bar ``t`` fills at ``open[t+1]``; ``"next-bar"``: it
        executes over bar ``t+1`` and fills at that bar's reference price (its VWAP proxy
        ``(O + H + L + C) / 4``, :func:`simulators.fill_model.reference_prices`: the price the
        arena broker and the RL environment fill at, at the bar's size); ``"close"``: at
        ``close[t]``.
    market:
        Market rules (``none``, ``cn``, ``us``, ``crypto``); ``None`` = the panel's market.
    sizing:
        ``"all-in"``: each entry spends ``min(cash, equity / max_positions)``;
        ``"fraction"``: ``min(cash, fraction * equity)``.
    fraction:
        Fraction of equity per entry when ``sizing="fraction"``.
    max_positions:
        Most positions open at once (priority: column order); ``None`` = number of assets.
    slippage:
        Adverse fraction of the price on every fill (buys higher, sells lower).
    commission_rate, commission_min, commission_fixed:
        Overrides of the market's commission (``None`` keeps the market default).
    st_symbols:
        China A-shares under special treatment (+-5% limit).
    half_spread_bps:
        Half the quoted spread paid on every fill, in basis points of the price.
    impact_coefficient:
        ``k`` of the square-root impact ``k * sigma * sqrt(qty / bar volume)`` on every fill
        (``sigma``: :func:`bar_sigma`).
    participation_cap:
        Largest share of a bar's volume one asset's fills may take in that bar; ``None`` = no
        cap. A buy is cut to it (the rest is not bought); a sell fills up to it and the rest
        stays due (retried at the next open or close). The share of the entries' intended
        notional that filled is ``metrics["capacity"]`` (:func:`capacity_ratio`).
    """

    cash: float = Field(default=100_000.0, gt=0.0, le=1e15)
    fill: Literal["next-open", "next-bar", "close"] = "next-open"
    market: Literal["none", "cn", "us", "crypto"] | None = None
    sizing: Literal["all-in", "fraction"] = "all-in"
    fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    max_positions: int | None = Field(default=None, ge=1, le=100_000)
    slippage: float = Field(default=0.0, ge=0.0, le=0.05)
    commission_rate: float | None = Field(default=None, ge=0.0, le=0.05)
    commission_min: float | None = Field(default=None, ge=0.0)
    commission_fixed: float | None = Field(default=None, ge=0.0)
    st_symbols: tuple[str, ...] = ()
    half_spread_bps: float = Field(default=0.0, ge=0.0, le=500.0)
    impact_coefficient: float = Field(default=0.0, ge=0.0, le=100.0)
    participation_cap: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_consistency(self) -> BacktestConfig:
        if self.sizing == "all-in" and self.fraction != 1.0:
            raise ValueError(
                f"fraction={self.fraction} only applies with sizing='fraction' "
                "(sizing='all-in' spends equity / max_positions per entry)"
            )
        fees = (self.commission_rate, self.commission_min, self.commission_fixed)
        if self.market == "none" and any(v not in (None, 0.0) for v in fees):
            raise ValueError("market='none' is frictionless: commission overrides must be unset")
        return self


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What a backtest produced.

    Attributes
    ----------
    equity:
        Equity at each bar close (index = bar-close timestamps).
    trades:
        One row per trade: ``symbol, column, entry_time, exit_time, entry_idx, exit_idx,
        entry_price, exit_price, size, pnl, fees, exit_reason``. A trade still open at the
        last bar has ``exit_time`` NaT, ``exit_idx`` -1, ``exit_reason`` ``"open"`` and is
        marked at the last close (``exit_price`` = last close, ``pnl`` unrealised).
    positions:
        Size held per symbol at each bar close.
    metrics:
        See :mod:`simulators.metrics`, plus ``capacity``: the share of the notional the entries
        intended that the participation cap let fill (:func:`capacity_ratio`; 1 uncapped).
    config:
        The configuration used (with the market resolved).
    """

    equity: pd.Series
    trades: pd.DataFrame
    positions: pd.DataFrame
    metrics: dict[str, float]
    config: BacktestConfig
    strategy: str = ""
    params: dict[str, float | int] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: metrics, strategy, config and the trade list.

        Times are ISO-8601 strings (``exit_time`` is ``None`` for an open trade); non-finite
        numbers become ``None``.
        """
        trades = []
        for row in self.trades.itertuples(index=False):
            trades.append(
                {
                    "symbol": row.symbol,
                    "entry_time": row.entry_time.isoformat(),
                    "exit_time": None if pd.isna(row.exit_time) else row.exit_time.isoformat(),
                    "entry_price": float(row.entry_price),
                    "exit_price": float(row.exit_price),
                    "size": float(row.size),
                    "pnl": float(row.pnl),
                    "fees": float(row.fees),
                    "exit_reason": str(row.exit_reason),
                }
            )
        out: dict[str, Any] = {key: _finite(value) for key, value in self.metrics.items()}
        out["n_trades"] = sum(1 for trade in trades if trade["exit_reason"] != "open")
        out["strategy"] = self.strategy
        out["params"] = dict(self.params)
        out["config"] = self.config.model_dump(mode="json")
        out["start"] = self.equity.index[0].isoformat() if len(self.equity) else None
        out["end"] = self.equity.index[-1].isoformat() if len(self.equity) else None
        out["trades"] = trades
        return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# The all-NaN grid of an absent stop, one per recent shape: the kernel only reads its stop
# grids, so every backtest of a shape shares one instead of allocating and filling its own
# (fitness runs thousands of backtests whose genomes leave most stops out).
_NO_STOP_GRIDS: dict[tuple[int, int], np.ndarray] = {}
_NO_STOP_SHAPES_KEPT = 4
_NO_STOP_BYTES_KEPT = 64 << 20  # larger grids are made per backtest, as before


def _no_stop_grid(shape: tuple[int, int]) -> np.ndarray:
    grid = _NO_STOP_GRIDS.get(shape)
    if grid is None:
        if shape[0] * shape[1] * 8 > _NO_STOP_BYTES_KEPT:
            return np.full(shape, np.nan)
        if len(_NO_STOP_GRIDS) >= _NO_STOP_SHAPES_KEPT:
            _NO_STOP_GRIDS.clear()
        grid = np.full(shape, np.nan)
        _NO_STOP_GRIDS[shape] = grid
    return grid


def _grid(value: StopInput, shape: tuple[int, int], name: str, default: float) -> np.ndarray:
    """Broadcast a scalar or ``(T, N)``/``(T,)`` input to a contiguous ``(T, N)`` array.

    An absent stop (``None`` with a NaN default) is a shared grid: read it, never write it.
    """
    if value is None:
        if math.isnan(default):
            return _no_stop_grid(shape)
        return np.full(shape, default)
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        # A scalar is checked once, not once per cell (fitness runs thousands of these).
        scalar = float(array)
        if scalar < 0:
            raise ConfigError(f"{name}: values must be >= 0 (NaN = no stop), got min {scalar}")
        return np.full(shape, scalar)
    if array.ndim == 1 and array.shape[0] == shape[0] and shape[1] != shape[0]:
        array = array[:, None]
    try:
        out = np.ascontiguousarray(np.broadcast_to(array, shape), dtype=np.float64)
    except ValueError:
        raise ConfigError(
            f"{name}: expected a scalar or an array of shape {shape}, got {array.shape}"
        ) from None
    # NaN compares False, so NaN cells (no stop) never count as negative.
    if np.any(out < 0):
        raise ConfigError(f"{name}: values must be >= 0 (NaN = no stop), got min {np.nanmin(out)}")
    return out


def _signals(value: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 1 and shape[1] == 1:
        array = array[:, None]
    if array.shape != shape:
        raise ConfigError(f"{name}: expected a boolean array of shape {shape}, got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class PreparedPanel:
    """The kernel inputs of one panel that no strategy changes, built once and reused.

    Build it with :func:`prepare_panel`; pass it as ``prepared=`` to :func:`run_backtest` or
    :func:`run_backtest_arrays` when many signal sets run on the same panel (a population), so
    the market's rule arrays, the contiguous price copies and the trading-day ids are made
    once instead of once per backtest.

    Attributes
    ----------
    panel:
        The panel these arrays were made from (backtests check they get this very panel).
    market:
        The resolved market whose rules the arrays hold.
    rules_key:
        The configuration fields the rule arrays depend on (market, commission overrides,
        ST symbols); a backtest whose configuration differs in one of them is refused.
    open, high, low, close, tradable:
        C-contiguous ``(T, N)`` copies of the panel's arrays (float64 / bool).
    reference:
        :func:`simulators.fill_model.reference_prices` of the bars (the ``next-bar`` fill).
    close_filled:
        ``close`` with NaN as 0 (the value of positions in assets without a price yet).
    volume:
        C-contiguous ``(T, N)`` bar volumes, NaN as 0 (the participation cap and the impact).
    sigma:
        :func:`bar_sigma` of ``close`` (the impact's volatility, known before each bar).
    rules:
        The market's rule arrays, C-contiguous.
    fees:
        The market's fee model (with the configuration's commission overrides), whose
        parameters the kernel is given (:func:`simulators.costs.kernel_cost_args`).
    periods:
        Bars per year (see :func:`simulators.metrics.periods_per_year`).
    """

    panel: Panel
    market: str
    rules_key: tuple[object, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    reference: np.ndarray
    tradable: np.ndarray
    close_filled: np.ndarray
    volume: np.ndarray
    sigma: np.ndarray
    rules: RuleArrays
    fees: MarketFees
    periods: float


@dataclass(frozen=True, slots=True)
class ArrayBacktest:
    """What :func:`run_backtest_arrays` produced: arrays only, no pandas objects.

    Attributes
    ----------
    equity:
        ``(T,)`` equity at each bar close.
    trades:
        Trade records of :data:`simulators.backtest_nb.TRADE_DTYPE`, sorted by entry bar,
        then column (the order of :attr:`BacktestResult.trades`); an open trade has
        ``exit_idx`` -1 and is marked at the last close.
    positions:
        ``(T, N)`` size held per asset at each bar close.
    metrics:
        See :mod:`simulators.metrics`, plus ``capacity`` (:func:`capacity_ratio`).
    config:
        The configuration used (with the market resolved).
    intended_notional, filled_notional:
        The notional the entries' budgets afforded before the participation cap and the part
        of it the cap let fill (their ratio is ``metrics["capacity"]``).
    """

    equity: np.ndarray
    trades: np.ndarray
    positions: np.ndarray
    metrics: dict[str, float]
    config: BacktestConfig
    intended_notional: float = 0.0
    filled_notional: float = 0.0


def _resolve_market(panel: Panel, config: BacktestConfig) -> BacktestConfig:
    market = config.market or (panel.market if panel.market in MARKET_NAMES else "none")
    if config.market == market:
        return config
    return config.model_copy(update={"market": market})


def _rules_key(config: BacktestConfig) -> tuple[object, ...]:
    return (
        config.market,
        config.commission_rate,
        config.commission_min,
        config.commission_fixed,
        config.st_symbols,
    )


def prepare_panel(panel: Panel, config: BacktestConfig | None = None) -> PreparedPanel:
    """Return the strategy-independent kernel inputs of ``panel`` under ``config``'s market.

    Only the market and the commission/ST settings of ``config`` matter here; cash, fill,
    sizing and slippage may differ between the backtests that share the result.

    Raises
    ------
    ConfigError
        If the panel has no bars or the market is unknown.
    """
    cfg = _resolve_market(panel, config or BacktestConfig())
    if panel.n_bars == 0:
        raise ConfigError(f"panel {panel.source or ''!r}: no bars to backtest")
    market = str(cfg.market)
    model = get_market_rules(
        market,
        commission_rate=cfg.commission_rate,
        commission_min=cfg.commission_min,
        commission_fixed=cfg.commission_fixed,
        st_symbols=cfg.st_symbols,
    )
    raw = model.arrays(panel)
    rules = dataclasses.replace(
        raw,
        lot_size=_frozen(raw.lot_size, np.float64),
        limit_up=_frozen(raw.limit_up, np.float64),
        limit_down=_frozen(raw.limit_down, np.float64),
        stamp_duty=_frozen(raw.stamp_duty, np.float64),
        day_id=_frozen(raw.day_id, np.int64),
        t_plus_one=bool(raw.t_plus_one),
        commission_rate=float(raw.commission_rate),
        commission_min=float(raw.commission_min),
        commission_fixed=float(raw.commission_fixed),
    )
    close = _frozen(panel.close, np.float64)
    open_ = _frozen(panel.open, np.float64)
    high = _frozen(panel.high, np.float64)
    low = _frozen(panel.low, np.float64)
    return PreparedPanel(
        panel=panel,
        market=market,
        rules_key=_rules_key(cfg),
        open=open_,
        high=high,
        low=low,
        close=close,
        reference=_frozen(reference_prices(open_, high, low, close), np.float64),
        tradable=_frozen(panel.tradable, np.bool_),
        close_filled=_frozen(np.nan_to_num(close), np.float64),
        volume=_frozen(np.nan_to_num(panel.volume), np.float64),
        sigma=_frozen(bar_sigma(close), np.float64),
        rules=rules,
        fees=model.fees,
        periods=panel_periods_per_year(panel, market),
    )


def cost_model(config: BacktestConfig, fees: MarketFees) -> CostModel:
    """Return the cost models of a backtest: the market's ``fees`` and the configuration's
    spread, square-root impact and participation cap (:mod:`simulators.costs`)."""
    return CostModel(
        fees=fees,
        spread=ConstantSpread(half_spread_bps=float(config.half_spread_bps)),
        impact=SquareRootImpact(coefficient=float(config.impact_coefficient)),
        participation=VolumeParticipation(cap=config.participation_cap),
    )


def bar_sigma(close: np.ndarray, lookback: int = SIGMA_LOOKBACK) -> np.ndarray:
    """Return the volatility of each bar's log return known before the bar, ``(T, N)``.

    ``sigma[t]`` is :func:`simulators.fill_model.daily_volatility` of the finite log returns
    between the ``lookback`` closes before bar ``t`` (``close[t - lookback : t]``): their
    sample standard deviation, one return's own size, 0 without any. This is the arena's
    definition (:func:`arena.market.day_market`: the volatility of the 20 closes before the
    day traded), in the panel's own bars: on daily bars the two are the same number (tested).
    Logs are :func:`simulators.detmath.log`, bit-reproducible.
    """
    close = np.asarray(close, dtype=np.float64)
    if close.ndim == 1:
        close = close[:, None]
    n_bars, n_assets = close.shape
    out = np.zeros((n_bars, n_assets))
    if n_bars < 3 or lookback < 3:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = np.where(np.isfinite(close) & (close > 0.0), close, np.nan)
        returns = np.diff(detmath.log(np.nan_to_num(positive, nan=1.0)), axis=0)
        returns[~np.isfinite(np.diff(positive, axis=0))] = np.nan
    width = lookback - 1  # returns between `lookback` closes
    padded = np.concatenate([np.full((width, n_assets), np.nan), returns], axis=0)
    # Window s holds returns[s - width .. s - 1], made of the closes s - width .. s: the
    # `lookback` closes before bar s + 1.
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=0)
    finite = np.isfinite(windows)
    count = finite.sum(axis=2)
    values = np.where(finite, windows, 0.0)
    mean = values.sum(axis=2) / np.maximum(count, 1)
    deviation = np.where(finite, windows - mean[:, :, None], 0.0)
    variance = (deviation * deviation).sum(axis=2) / np.maximum(count - 1, 1)
    # simulators.fill_model.daily_volatility's rules: the sample deviation (ddof=1), one
    # return's own size, 0 without any.
    single = np.abs(values.sum(axis=2))
    std = np.where(count > 1, np.sqrt(variance), np.where(count == 1, single, 0.0))
    out[1:] = std[: n_bars - 1]
    return out


def _frozen(array: np.ndarray, dtype: type) -> np.ndarray:
    # A private contiguous copy, read-only: it is shared by every backtest of the panel and
    # must not change under them (nor follow later edits of the panel's own arrays).
    out: np.ndarray = np.array(array, dtype=dtype, order="C", copy=True)
    out.setflags(write=False)
    return out


def run_backtest_arrays(
    panel: Panel,
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    config: BacktestConfig | None = None,
    sl_stop: StopInput = None,
    tp_stop: StopInput = None,
    tsl_stop: StopInput = None,
    time_stop: StopInput = None,
    size: StopInput = None,
    prepared: PreparedPanel | None = None,
) -> ArrayBacktest:
    """Run long-only signals through the exact bar backtester; return arrays only.

    The same backtest as :func:`run_backtest` (which wraps this function) without building
    any pandas object: use it where thousands of backtests run (fitness evaluation).

    Parameters
    ----------
    panel, entries, exits, config, sl_stop, tp_stop, tsl_stop, time_stop, size:
        As in :func:`run_backtest`.
    prepared:
        :func:`prepare_panel` of this very ``panel`` under the same market settings; built
        here when omitted.

    Raises
    ------
    ConfigError
        If an array has the wrong shape, a stop is negative, or ``prepared`` belongs to
        another panel or other market settings.
    """
    cfg = _resolve_market(panel, config or BacktestConfig())
    if prepared is None:
        prepared = prepare_panel(panel, cfg)
    elif prepared.panel is not panel:
        raise ConfigError("run_backtest_arrays: prepared= was built for another panel")
    elif prepared.rules_key != _rules_key(cfg):
        raise ConfigError(
            f"run_backtest_arrays: prepared= holds the rules of {prepared.rules_key}, "
            f"the configuration asks for {_rules_key(cfg)} (market, commission rate, "
            "minimum, fixed, ST symbols)"
        )
    shape = (panel.n_bars, panel.n_assets)
    entry_arr = _signals(entries, shape, "entries")
    exit_arr = _signals(exits, shape, "exits")
    if size is not None:
        sizing = SIZING_FRACTION
        fraction = _grid(size, shape, "size", 0.0)
    elif cfg.sizing == "fraction":
        sizing = SIZING_FRACTION
        fraction = np.full(shape, cfg.fraction)
    else:
        sizing = SIZING_ALL_IN
        fraction = np.ones(shape)
    max_positions = cfg.max_positions if cfg.max_positions is not None else panel.n_assets
    rules = prepared.rules
    costs = kernel_cost_args(cost_model(cfg, prepared.fees))
    equity, _cash, positions, records, fills = simulate_nb(
        prepared.open,
        prepared.high,
        prepared.low,
        prepared.close,
        prepared.reference if cfg.fill == "next-bar" else prepared.open,
        prepared.tradable,
        entry_arr,
        exit_arr,
        cfg.fill == "close",
        float(cfg.cash),
        sizing,
        fraction,
        int(max_positions),
        _grid(sl_stop, shape, "sl_stop", np.nan),
        _grid(tp_stop, shape, "tp_stop", np.nan),
        _grid(tsl_stop, shape, "tsl_stop", np.nan),
        _grid(time_stop, shape, "time_stop", np.nan),
        rules.lot_size,
        rules.limit_up,
        rules.limit_down,
        rules.stamp_duty,
        rules.day_id,
        rules.t_plus_one,
        costs.commission_rate,
        costs.commission_min,
        costs.commission_fixed,
        float(cfg.slippage),
        int(entry_arr.sum()),
        prepared.volume,
        prepared.sigma,
        costs.half_spread,
        costs.impact_coefficient,
        costs.participation_cap,
    )
    # Chronological by entry, then column: the order a reader expects and parity tests use
    # (a column enters at most once per bar, so the order is total).
    trades = records[np.lexsort((records["column"], records["entry_idx"]))]
    closed = trades["exit_idx"] >= 0
    trade_size = np.ascontiguousarray(trades["size"])
    traded = float(
        (trade_size * trades["entry_price"]).sum()
        + (trade_size * trades["exit_price"])[closed].sum()
    )
    position_value = (positions * prepared.close_filled).sum(axis=1)
    metrics = compute_metrics(
        equity,
        init_cash=float(cfg.cash),
        trade_pnl=np.ascontiguousarray(trades["pnl"]),
        trade_closed=closed,
        traded_value=traded,
        position_value=position_value,
        periods=prepared.periods,
        years=calendar_years(panel.index),
    )
    intended, filled = float(fills[0]), float(fills[1])
    metrics["capacity"] = capacity_ratio(intended, filled)
    return ArrayBacktest(
        equity=equity,
        trades=trades,
        positions=positions,
        metrics=metrics,
        config=cfg,
        intended_notional=intended,
        filled_notional=filled,
    )


def capacity_ratio(intended: float, filled: float) -> float:
    """Return the capacity of a backtest: ``filled / intended`` in [0, 1].

    ``intended`` is the notional (size x reference price) the entries' budgets afforded before
    the participation cap, ``filled`` the part of it the cap let fill (the kernel's two
    accumulators). 1 when nothing was capped, and when no entry reached its fill bar (nothing
    was intended): a strategy too large for the volume it trades scores near 0 in fitness
    (:func:`evolution.fitness.window_score`), one the market can absorb is unaffected.
    """
    if not intended > 0.0:
        return 1.0
    return min(1.0, max(0.0, filled / intended))


def run_backtest(
    panel: Panel,
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    config: BacktestConfig | None = None,
    sl_stop: StopInput = None,
    tp_stop: StopInput = None,
    tsl_stop: StopInput = None,
    time_stop: StopInput = None,
    size: StopInput = None,
    strategy: str = "",
    params: Mapping[str, float | int] | None = None,
    prepared: PreparedPanel | None = None,
) -> BacktestResult:
    """Run long-only signals through the exact bar backtester.

    Parameters
    ----------
    panel:
        Bars of ``N`` assets over ``T`` bar closes.
    entries, exits:
        ``(T, N)`` (or ``(T,)`` for one asset) booleans computed at bar close.
    config:
        Cash, fill mode, market, sizing, costs; defaults to :class:`BacktestConfig()`.
    sl_stop, tp_stop, tsl_stop:
        Stop loss / take profit / trailing stop as fractions of the entry price (trailing:
        of the highest high since entry), scalar or ``(T, N)``; read at the signal bar and
        fixed for the life of the position; NaN or ``None`` = no stop.
    time_stop:
        Bars after the entry fill at which the position exits at the open.
    size:
        Fraction of equity per entry (scalar or ``(T, N)``, read at the signal bar); when
        given, it replaces the configured sizing (``sizing="fraction"``).
    prepared:
        Optional :func:`prepare_panel` of this panel (see :func:`run_backtest_arrays`).

    Raises
    ------
    ConfigError
        If an array has the wrong shape or a stop is negative.
    """
    # One code path: the array backtest, wrapped in pandas objects for readers.
    result = run_backtest_arrays(
        panel,
        entries,
        exits,
        config=config,
        sl_stop=sl_stop,
        tp_stop=tp_stop,
        tsl_stop=tsl_stop,
        time_stop=time_stop,
        size=size,
        prepared=prepared,
    )
    index = panel.index
    return BacktestResult(
        equity=pd.Series(result.equity, index=index, name="equity"),
        trades=_trade_frame(result.trades, panel),
        positions=pd.DataFrame(result.positions, index=index, columns=list(panel.symbols)),
        metrics=result.metrics,
        config=result.config,
        strategy=strategy,
        params=dict(params or {}),
    )


def _trade_frame(records: np.ndarray, panel: Panel) -> pd.DataFrame:
    """Return the trade table of records already sorted by entry bar, then column."""
    entry_idx = records["entry_idx"].astype(np.int64)
    exit_idx = records["exit_idx"].astype(np.int64)
    index = panel.index
    exit_times = pd.DatetimeIndex([index[k] if k >= 0 else pd.NaT for k in exit_idx], tz=index.tz)
    return pd.DataFrame(
        {
            "symbol": [panel.symbols[c] for c in records["column"]],
            "column": records["column"].astype(np.int64),
            "entry_time": index[entry_idx] if len(entry_idx) else pd.DatetimeIndex([], tz=index.tz),
            "exit_time": exit_times,
            "entry_idx": entry_idx,
            "exit_idx": exit_idx,
            "entry_price": records["entry_price"].astype(np.float64),
            "exit_price": records["exit_price"].astype(np.float64),
            "size": records["size"].astype(np.float64),
            "pnl": records["pnl"].astype(np.float64),
            "fees": records["fees"].astype(np.float64),
            "exit_reason": [EXIT_REASON_NAMES[r] for r in records["exit_reason"]],
        }
    )


def run_strategy(
    panel: Panel,
    name: str,
    params: Mapping[str, float | int] | None = None,
    config: BacktestConfig | None = None,
) -> BacktestResult:
    """Run reference strategy ``name`` with ``params`` on ``panel``.

    Raises
    ------
    StrategyParamError
        If ``name`` is unknown or a parameter is unknown or out of range.
    """
    from simulators.strategies import strategy_signals

    signals = strategy_signals(panel, name, params or {})
    return run_backtest(
        panel,
        signals.entries,
        signals.exits,
        config=config,
        sl_stop=signals.sl_stop,
        strategy=name,
        params=signals.params,
    )
