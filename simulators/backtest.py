"""Typed wrappers around the numba backtest kernel.

``run_backtest(panel, entries, exits, config=...)`` runs boolean signal arrays through
:func:`simulators.backtest_nb.simulate_nb` under a market's rules and returns a
:class:`BacktestResult` (pandas equity curve, trade table, metrics).
``run_strategy(panel, "sma-cross", {"fast": 10, "slow": 50}, config)`` does the same for a
reference strategy. The fill assumptions are in ``docs/fill_assumptions.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from alphaloop.errors import ConfigError
from simulators.backtest_nb import (
    EXIT_REASON_NAMES,
    SIZING_ALL_IN,
    SIZING_FRACTION,
    simulate_nb,
)
from simulators.bars import Panel
from simulators.market_rules import MARKET_NAMES, get_market_rules
from simulators.metrics import compute_metrics, periods_per_year

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "run_backtest",
    "run_strategy",
]

StopInput = float | np.ndarray | None


class BacktestConfig(FrozenConfig):
    """Settings of one backtest (defaults: ``configs/backtest.yaml``).

    Attributes
    ----------
    cash:
        Initial cash in the quote currency.
    fill:
        ``"next-open"``: a signal at bar ``t`` fills at ``open[t+1]``; ``"close"``: at
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
    """

    cash: float = Field(default=100_000.0, gt=0.0, le=1e15)
    fill: Literal["next-open", "close"] = "next-open"
    market: Literal["none", "cn", "us", "crypto"] | None = None
    sizing: Literal["all-in", "fraction"] = "all-in"
    fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    max_positions: int | None = Field(default=None, ge=1, le=100_000)
    slippage: float = Field(default=0.0, ge=0.0, le=0.05)
    commission_rate: float | None = Field(default=None, ge=0.0, le=0.05)
    commission_min: float | None = Field(default=None, ge=0.0)
    commission_fixed: float | None = Field(default=None, ge=0.0)
    st_symbols: tuple[str, ...] = ()

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
        See :mod:`simulators.metrics`.
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
        out["n_trades"] = len(trades)
        out["strategy"] = self.strategy
        out["params"] = dict(self.params)
        out["config"] = self.config.model_dump(mode="json")
        out["start"] = self.equity.index[0].isoformat() if len(self.equity) else None
        out["end"] = self.equity.index[-1].isoformat() if len(self.equity) else None
        out["trades"] = trades
        return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _grid(value: StopInput, shape: tuple[int, int], name: str, default: float) -> np.ndarray:
    """Broadcast a scalar or ``(T, N)``/``(T,)`` input to a contiguous ``(T, N)`` array."""
    if value is None:
        return np.full(shape, default)
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 1 and array.shape[0] == shape[0] and shape[1] != shape[0]:
        array = array[:, None]
    try:
        out = np.ascontiguousarray(np.broadcast_to(array, shape), dtype=np.float64)
    except ValueError:
        raise ConfigError(
            f"{name}: expected a scalar or an array of shape {shape}, got {array.shape}"
        ) from None
    finite = out[~np.isnan(out)]
    if np.any(finite < 0):
        raise ConfigError(f"{name}: values must be >= 0 (NaN = no stop), got min {finite.min()}")
    return out


def _signals(value: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 1 and shape[1] == 1:
        array = array[:, None]
    if array.shape != shape:
        raise ConfigError(f"{name}: expected a boolean array of shape {shape}, got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.bool_)


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

    Raises
    ------
    ConfigError
        If an array has the wrong shape or a stop is negative.
    """
    cfg = config or BacktestConfig()
    market = cfg.market or (panel.market if panel.market in MARKET_NAMES else "none")
    cfg = cfg.model_copy(update={"market": market})
    if panel.n_bars == 0:
        raise ConfigError(f"panel {panel.source or ''!r}: no bars to backtest")
    shape = (panel.n_bars, panel.n_assets)
    entry_arr = _signals(entries, shape, "entries")
    exit_arr = _signals(exits, shape, "exits")
    rules = get_market_rules(
        market,
        commission_rate=cfg.commission_rate,
        commission_min=cfg.commission_min,
        commission_fixed=cfg.commission_fixed,
        st_symbols=cfg.st_symbols,
    ).arrays(panel)
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
    equity, _cash, positions, records = simulate_nb(
        np.ascontiguousarray(panel.open, dtype=np.float64),
        np.ascontiguousarray(panel.high, dtype=np.float64),
        np.ascontiguousarray(panel.low, dtype=np.float64),
        np.ascontiguousarray(panel.close, dtype=np.float64),
        np.ascontiguousarray(panel.tradable, dtype=np.bool_),
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
        np.ascontiguousarray(rules.lot_size, dtype=np.float64),
        np.ascontiguousarray(rules.limit_up, dtype=np.float64),
        np.ascontiguousarray(rules.limit_down, dtype=np.float64),
        np.ascontiguousarray(rules.stamp_duty, dtype=np.float64),
        np.ascontiguousarray(rules.day_id, dtype=np.int64),
        bool(rules.t_plus_one),
        float(rules.commission_rate),
        float(rules.commission_min),
        float(rules.commission_fixed),
        float(cfg.slippage),
        int(entry_arr.sum()),
    )
    index = panel.index
    trades = _trade_frame(records, panel)
    closed = trades["exit_idx"].to_numpy() >= 0
    traded = float(
        (trades["size"] * trades["entry_price"]).sum()
        + (trades["size"] * trades["exit_price"])[closed].sum()
    )
    position_value = (positions * np.nan_to_num(panel.close)).sum(axis=1)
    metrics = compute_metrics(
        equity,
        init_cash=float(cfg.cash),
        trade_pnl=trades["pnl"].to_numpy(),
        trade_closed=closed,
        traded_value=traded,
        position_value=position_value,
        periods=periods_per_year(panel.freq, market),
    )
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity"),
        trades=trades,
        positions=pd.DataFrame(positions, index=index, columns=list(panel.symbols)),
        metrics=metrics,
        config=cfg,
        strategy=strategy,
        params=dict(params or {}),
    )


def _trade_frame(records: np.ndarray, panel: Panel) -> pd.DataFrame:
    entry_idx = records["entry_idx"].astype(np.int64)
    exit_idx = records["exit_idx"].astype(np.int64)
    index = panel.index
    exit_times = pd.DatetimeIndex([index[k] if k >= 0 else pd.NaT for k in exit_idx], tz=index.tz)
    frame = pd.DataFrame(
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
    # Chronological by entry, then column: the order a reader expects and parity tests use.
    return frame.sort_values(["entry_idx", "column"], kind="stable").reset_index(drop=True)


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
