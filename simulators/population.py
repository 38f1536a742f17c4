"""Population (grid) backtester: many SMA-cross variants over one long series in one call.

Each distinct moving-average window is computed once; then every strategy is simulated in a
single pass by :mod:`simulators.population_nb` that evaluates the crosses inline and writes
its equity curve, its trades and its summary figures. Strategies are processed in chunks so
that the equity buffer stays small (342 strategies x 1,000,000 bars of float64 would be
2.7 GB); each chunk's equity block can be kept, streamed to a callback, or not written at all.

The semantics are those of the general engine (:func:`simulators.backtest.run_strategy` with
``"sma-cross"``, market ``"none"``, no fees, all-in fractional sizing) and the results are
bit-identical to it; see :mod:`simulators.population_nb` for the rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import pandas as pd

from alphaloop.errors import ConfigError, DataQualityError, StrategyParamError
from simulators import population_nb as nb
from simulators.bars import Panel
from simulators.market_rules import MARKET_NAMES
from simulators.metrics import panel_periods_per_year, sharpe_from_moments

FillMode = Literal["next-open", "close"]
FILL_MODES: tuple[str, ...] = ("next-open", "close")

#: One trade of one strategy (``strategy`` is its row in the result). As in the general
#: engine's trade table, a position still open at the last bar is a record with
#: ``exit_idx = -1``, ``exit_price`` = the last close and an unrealised ``pnl``.
TRADE_DTYPE = np.dtype(
    [
        ("strategy", np.int64),
        ("entry_idx", np.int64),
        ("exit_idx", np.int64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("size", np.float64),
        ("pnl", np.float64),
    ]
)

#: Called with (first strategy row of the chunk, equity block ``(K, T)``); the block is a
#: buffer reused for the next chunk, so a callback that keeps it must copy it.
ChunkCallback = Callable[[int, np.ndarray], None]

# numba's dispatchers carry no Python signature for mypy: call the kernels as plain callables.
_simulate_chunk = cast(Callable[..., None], nb.simulate_chunk_nb)
_simulate_chunk_parallel = cast(Callable[..., None], nb.simulate_chunk_parallel_nb)
_compact_trades = cast(Callable[..., int], nb.compact_trades_nb)
_moving_averages = cast(Callable[..., None], nb.moving_averages_nb)

# Smallest per-strategy trade buffer; it grows to the largest count seen so far.
_MIN_TRADE_CAPACITY = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeTable:
    """Trades of every strategy, one array per field (columns, not records: cheap to build).

    The trades of strategy ``i`` are positions ``offsets[i]:offsets[i + 1]`` of every column,
    in time order; as in the general engine's trade table, a position still open at the last
    bar comes last with ``exit_idx = -1``, ``exit_price`` = the last close and an unrealised
    ``pnl``.

    Attributes
    ----------
    offsets:
        int64 ``(n + 1,)``.
    entry_idx, exit_idx:
        int64 bar positions of the fills (``exit_idx`` -1 while open).
    entry_price, exit_price, size, pnl:
        float64; ``pnl = size * (exit_price - entry_price)`` (no fees in this engine).
    """

    offsets: np.ndarray
    entry_idx: np.ndarray
    exit_idx: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    size: np.ndarray
    pnl: np.ndarray

    def __len__(self) -> int:
        return int(self.entry_idx.shape[0])

    @property
    def strategy(self) -> np.ndarray:
        """Return the strategy row of every trade, int64."""
        counts = np.diff(self.offsets)
        return np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)

    def to_records(self, row: int | None = None) -> np.ndarray:
        """Return the trades (of strategy ``row`` only, if given) as :data:`TRADE_DTYPE`."""
        if row is None:
            span, strategy = slice(None), self.strategy
        else:
            span = slice(int(self.offsets[row]), int(self.offsets[row + 1]))
            strategy = np.full(span.stop - span.start, row, dtype=np.int64)
        out = np.empty(strategy.shape[0], dtype=TRADE_DTYPE)
        out["strategy"] = strategy
        for name in TRADE_DTYPE.names[1:]:  # type: ignore[index]
            out[name] = getattr(self, name)[span]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PopulationResult:
    """Results of a population run, one row per strategy (in the order of the pairs given).

    Attributes
    ----------
    fast, slow:
        The windows of each strategy, int64 ``(n,)``.
    final_value, total_return, sharpe, max_drawdown:
        float64 ``(n,)``. ``sharpe`` is the mean over the standard deviation (ddof 1) of the
        bar returns times ``sqrt(periods_per_year)``, 0 when the returns do not vary;
        ``max_drawdown`` is a positive fraction of the running peak. The conventions are
        those of :func:`simulators.metrics.compute_metrics` (``T`` bar returns, the first
        one against the initial cash).
    n_trades:
        Closed trades per strategy, int64 ``(n,)``.
    trades:
        Trades of all strategies (closed ones and the open position, if any).
    equity:
        float64 ``(n, T)`` equity curves when they were kept, else None.
    index:
        Bar-close timestamps when known (a panel was given), else None.
    """

    fast: np.ndarray
    slow: np.ndarray
    final_value: np.ndarray
    total_return: np.ndarray
    sharpe: np.ndarray
    max_drawdown: np.ndarray
    n_trades: np.ndarray
    trades: TradeTable
    equity: np.ndarray | None
    index: pd.DatetimeIndex | None = None

    @property
    def n_strategies(self) -> int:
        """Number of strategies."""
        return int(self.fast.shape[0])

    def strategy_trades(self, row: int) -> np.ndarray:
        """Return the trades of strategy ``row`` as :data:`TRADE_DTYPE` records."""
        return self.trades.to_records(row)

    def trades_frame(self, row: int) -> pd.DataFrame:
        """Return strategy ``row``'s trades as a DataFrame shaped like the general engine's.

        Columns: ``entry_time, exit_time, entry_idx, exit_idx, entry_price, exit_price, size,
        pnl``; the times are bar timestamps (``exit_time`` NaT for the open position) when
        the index is known, else bar positions.
        """
        span = slice(int(self.trades.offsets[row]), int(self.trades.offsets[row + 1]))
        entry_idx = self.trades.entry_idx[span]
        exit_idx = self.trades.exit_idx[span]
        entry: np.ndarray | pd.DatetimeIndex = entry_idx
        exit_: np.ndarray | pd.DatetimeIndex = exit_idx
        if self.index is not None:
            entry = self.index[entry_idx]
            exit_ = self.index[np.maximum(exit_idx, 0)].where(exit_idx >= 0)
        return pd.DataFrame(
            {
                "entry_time": entry,
                "exit_time": exit_,
                "entry_idx": entry_idx,
                "exit_idx": exit_idx,
                "entry_price": self.trades.entry_price[span],
                "exit_price": self.trades.exit_price[span],
                "size": self.trades.size[span],
                "pnl": self.trades.pnl[span],
            }
        )

    def equity_series(self, row: int) -> pd.Series:
        """Return strategy ``row``'s equity curve; raise if the curves were not kept."""
        if self.equity is None:
            raise ValueError("equity curves were not kept: run with keep_equity=True")
        return pd.Series(self.equity[row], index=self.index, name=f"sma-cross {self.label(row)}")

    def label(self, row: int) -> str:
        """Return ``"fast/slow"`` of strategy ``row``."""
        return f"{int(self.fast[row])}/{int(self.slow[row])}"

    def metrics_frame(self) -> pd.DataFrame:
        """Return one row per strategy: windows, final value, return, Sharpe, drawdown, trades."""
        return pd.DataFrame(
            {
                "fast": self.fast,
                "slow": self.slow,
                "final_value": self.final_value,
                "total_return": self.total_return,
                "sharpe": self.sharpe,
                "max_drawdown": self.max_drawdown,
                "n_trades": self.n_trades,
            }
        )


def sma_cross_grid(fast: Iterable[int], slow: Iterable[int]) -> np.ndarray:
    """Return the ``(n, 2)`` int64 pairs ``(f, s)`` of ``fast x slow`` with ``f < s``.

    The order is fast-major (all slows of the first fast first), like nested loops.
    """
    slow_values = list(slow)
    pairs = [(f, s) for f in fast for s in slow_values if f < s]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def moving_averages(close: np.ndarray, windows: Sequence[int]) -> np.ndarray:
    """Return the ``(len(windows), T)`` simple moving averages of ``close``, one row a window.

    The values are bit-identical to :func:`simulators.indicators.sma` of each window; each
    distinct window is computed once, on the sums of the next shorter one.
    """
    prices = np.ascontiguousarray(close, dtype=np.float64)
    requested = np.asarray(windows, dtype=np.int64).reshape(-1)
    if (requested < 1).any():
        raise StrategyParamError(f"moving_averages: windows must be >= 1, got {requested.tolist()}")
    distinct = np.unique(requested)
    averages = np.empty((distinct.shape[0], prices.shape[0]), dtype=np.float64)
    sums = np.empty((2, prices.shape[0]))
    _moving_averages(prices, distinct, averages, sums, np.empty(nb.SMA_BLOCK))
    if np.array_equal(distinct, requested):
        return averages
    return averages[np.searchsorted(distinct, requested)]


def simulate_sma_cross_population(
    close: np.ndarray,
    open_: np.ndarray,
    pairs: np.ndarray | Sequence[tuple[int, int]],
    *,
    fill: FillMode = "next-open",
    init_cash: float = 1_000_000.0,
    chunk_size: int = 8,
    keep_equity: bool = False,
    on_chunk: ChunkCallback | None = None,
    periods_per_year: float = 252.0,
    parallel: bool = False,
    index: pd.DatetimeIndex | None = None,
) -> PopulationResult:
    """Backtest every ``(fast, slow)`` SMA-cross pair over one price series.

    Parameters
    ----------
    close, open_:
        float64 ``(T,)`` prices, finite and positive.
    pairs:
        ``(n, 2)`` integer windows ``(fast, slow)``, each >= 1 (see :func:`sma_cross_grid`).
    fill:
        ``"next-open"`` (a signal at ``t`` fills at ``open[t+1]``) or ``"close"``.
    init_cash:
        Starting cash of every strategy.
    chunk_size:
        Strategies simulated per kernel call; the equity buffer is ``chunk_size x T``
        (8 x 1,000,000 bars = 64 MB; small chunks also keep it warm in the cache).
    keep_equity:
        Keep every equity curve in ``result.equity`` (``n x T`` float64: mind the memory).
    on_chunk:
        Called after each chunk with its first row and its ``(K, T)`` equity block.
    periods_per_year:
        Bars per year, to annualise the Sharpe ratio.
    parallel:
        Spread each chunk's strategies over numba's threads.
    index:
        Bar timestamps to attach to the result.

    Returns
    -------
    PopulationResult
        Equity curves (if kept), trades and metrics of every strategy.

    Notes
    -----
    Equity curves are written only when ``keep_equity`` or ``on_chunk`` asks for them; the
    metrics and the trades are computed either way.
    """
    close, open_ = _validated_prices(close, open_)
    pair_array = _validated_pairs(pairs)
    if fill not in FILL_MODES:
        raise ConfigError(f"fill: unknown fill mode {fill!r} (allowed: {', '.join(FILL_MODES)})")
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ConfigError(f"chunk_size: must be an integer >= 1 (got {chunk_size!r})")
    if not (math.isfinite(init_cash) and init_cash > 0):
        raise ConfigError(f"init_cash: must be finite and > 0 (got {init_cash!r})")
    if index is not None and len(index) != close.shape[0]:
        raise ValueError(f"index has {len(index)} timestamps for {close.shape[0]} bars")

    n_bars = close.shape[0]
    n_strategies = pair_array.shape[0]
    windows = np.unique(pair_array)
    averages = moving_averages(close, windows.tolist())
    fast_rows = np.searchsorted(windows, pair_array[:, 0]).astype(np.int64)
    slow_rows = np.searchsorted(windows, pair_array[:, 1]).astype(np.int64)
    starts = pair_array.max(axis=1).astype(np.int64)

    write_equity = keep_equity or on_chunk is not None
    block = min(chunk_size, max(n_strategies, 1))
    full_equity = np.empty((n_strategies, n_bars)) if keep_equity else None
    # Without kept curves the kernel still needs a (K, T) target; a 1-bar one when unused.
    scratch = np.empty((block, n_bars if write_equity else 1))
    stats = np.empty((n_strategies, nb.N_STATS))
    kernel = _simulate_chunk_parallel if parallel else _simulate_chunk
    capacity = min(_MIN_TRADE_CAPACITY, n_bars // 2 + 1)
    buffers = _TradeBuffers(block, capacity)
    store = _TradeStore(n_strategies * capacity)

    for first in range(0, n_strategies, block):
        last = min(first + block, n_strategies)
        rows = slice(first, last)
        equity = full_equity[rows] if full_equity is not None else scratch[: last - first]
        for _attempt in range(2):
            kernel(
                close,
                open_,
                averages,
                fast_rows[rows],
                slow_rows[rows],
                starts[rows],
                fill == "next-open",
                float(init_cash),
                equity,
                write_equity,
                *buffers.arrays(last - first),
                stats[rows],
            )
            needed = int(stats[rows, nb.STAT_N_RECORDS].max())
            if needed <= buffers.capacity:
                break
            # The counts are exact after one pass, so one re-run with room for them suffices.
            buffers = _TradeBuffers(block, needed)
        store.append(buffers, stats[rows, nb.STAT_N_RECORDS].astype(np.int64))
        if on_chunk is not None:
            on_chunk(first, equity)

    return _result(
        pair_array,
        stats,
        store,
        full_equity,
        init_cash=float(init_cash),
        n_bars=n_bars,
        periods_per_year=periods_per_year,
        index=index,
    )


def run_sma_cross_population(
    panel: Panel,
    pairs: np.ndarray | Sequence[tuple[int, int]],
    *,
    symbol: str | None = None,
    fill: FillMode = "next-open",
    init_cash: float = 1_000_000.0,
    chunk_size: int = 8,
    keep_equity: bool = False,
    on_chunk: ChunkCallback | None = None,
    periods_per_year: float | None = None,
    parallel: bool = False,
) -> PopulationResult:
    """Backtest SMA-cross ``pairs`` on one symbol of ``panel`` (the first when not named).

    Every bar of that symbol must be tradable and its OHLC consistent (``low <= open, close
    <= high``): the population kernel has no notion of a suspended bar and fills at the raw
    open or close. ``periods_per_year`` defaults to :func:`simulators.metrics.periods_per_year`
    of the panel's frequency and market. See :func:`simulate_sma_cross_population` for the
    other parameters.
    """
    name = panel.symbols[0] if symbol is None else symbol
    column = panel.column(name)
    tradable = panel.tradable[:, column]
    if not tradable.all():
        bad = int(np.argmin(tradable))
        raise DataQualityError(
            f"symbol {name!r}: bar {bad} ({panel.index[bad]}) is not tradable; the population "
            "backtester needs every bar tradable"
        )
    high, low = panel.high[:, column], panel.low[:, column]
    body_top = np.maximum(panel.open[:, column], panel.close[:, column])
    body_bottom = np.minimum(panel.open[:, column], panel.close[:, column])
    inconsistent = ~((low <= body_bottom) & (body_top <= high))
    if inconsistent.any():
        bad = int(np.argmax(inconsistent))
        raise DataQualityError(
            f"symbol {name!r}: bar {bad} ({panel.index[bad]}) has open/close outside "
            f"[low, high] ({panel.open[bad, column]!r}, {panel.close[bad, column]!r} vs "
            f"[{low[bad]!r}, {high[bad]!r}])"
        )
    if periods_per_year is None:
        market = panel.market if panel.market in MARKET_NAMES else "none"
        periods_per_year = panel_periods_per_year(panel, market)
    return simulate_sma_cross_population(
        np.ascontiguousarray(panel.close[:, column]),
        np.ascontiguousarray(panel.open[:, column]),
        pairs,
        fill=fill,
        init_cash=init_cash,
        chunk_size=chunk_size,
        keep_equity=keep_equity,
        on_chunk=on_chunk,
        periods_per_year=periods_per_year,
        parallel=parallel,
        index=panel.index,
    )


class _TradeBuffers:
    """Per-chunk trade output buffers ``(K, capacity)``, one array per field."""

    def __init__(self, n_rows: int, capacity: int) -> None:
        self.capacity = capacity
        self.entry_idx = np.empty((n_rows, capacity), dtype=np.int64)
        self.exit_idx = np.empty((n_rows, capacity), dtype=np.int64)
        self.entry_price = np.empty((n_rows, capacity))
        self.exit_price = np.empty((n_rows, capacity))
        self.size = np.empty((n_rows, capacity))
        self.pnl = np.empty((n_rows, capacity))

    def arrays(self, n_rows: int) -> tuple[np.ndarray, ...]:
        return (
            self.entry_idx[:n_rows],
            self.exit_idx[:n_rows],
            self.entry_price[:n_rows],
            self.exit_price[:n_rows],
            self.size[:n_rows],
            self.pnl[:n_rows],
        )


class _TradeStore:
    """Growing columns that the chunks' trades are appended to."""

    def __init__(self, capacity: int) -> None:
        self.length = 0
        self.columns = self._allocate(max(capacity, 1))

    @staticmethod
    def _allocate(capacity: int) -> list[np.ndarray]:
        return [np.empty(capacity, dtype=np.int64) for _ in range(2)] + [
            np.empty(capacity) for _ in range(4)
        ]

    def append(self, buffers: _TradeBuffers, counts: np.ndarray) -> None:
        needed = self.length + int(counts.sum())
        capacity = self.columns[0].shape[0]
        if needed > capacity:
            # Doubling keeps the copies amortised O(1) per trade.
            grown = self._allocate(max(needed, 2 * capacity))
            for old, new in zip(self.columns, grown, strict=True):
                new[: self.length] = old[: self.length]
            self.columns = grown
        self.length = _compact_trades(
            counts, *buffers.arrays(counts.shape[0]), *self.columns, self.length
        )

    def table(self, counts: np.ndarray) -> TradeTable:
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        # Trim a buffer that grew well past the trades, so the result does not hold it.
        trim = self.columns[0].shape[0] > self.length + self.length // 4
        columns = [c[: self.length].copy() if trim else c[: self.length] for c in self.columns]
        return TradeTable(
            offsets=offsets,
            entry_idx=columns[0],
            exit_idx=columns[1],
            entry_price=columns[2],
            exit_price=columns[3],
            size=columns[4],
            pnl=columns[5],
        )


def _result(
    pairs: np.ndarray,
    stats: np.ndarray,
    store: _TradeStore,
    equity: np.ndarray | None,
    *,
    init_cash: float,
    n_bars: int,
    periods_per_year: float,
    index: pd.DatetimeIndex | None,
) -> PopulationResult:
    n_trades = stats[:, nb.STAT_N_TRADES].astype(np.int64)
    n_returns = n_bars
    sharpe = np.zeros(pairs.shape[0])
    if n_returns >= 2:
        mean = stats[:, nb.STAT_RETURN_SUM] / n_returns
        square_sum = stats[:, nb.STAT_RETURN_SQUARE_SUM]
        variance = (square_sum - n_returns * mean * mean) / (n_returns - 1)
        # Rounding can leave a tiny negative variance for a curve that never moves: no spread.
        spread = np.sqrt(np.maximum(variance, 0.0))
        sharpe = sharpe_from_moments(mean, spread, float(periods_per_year))
    final_value = stats[:, nb.STAT_FINAL_VALUE].copy()
    trades = store.table(stats[:, nb.STAT_N_RECORDS].astype(np.int64))
    return PopulationResult(
        fast=pairs[:, 0].copy(),
        slow=pairs[:, 1].copy(),
        final_value=final_value,
        total_return=final_value / init_cash - 1.0,
        sharpe=sharpe,
        max_drawdown=stats[:, nb.STAT_MAX_DRAWDOWN].copy(),
        n_trades=n_trades,
        trades=trades,
        equity=equity,
        index=index,
    )


def _validated_prices(close: np.ndarray, open_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, values in (("close", close), ("open", open_)):
        array = np.ascontiguousarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise DataQualityError(f"{name}: expected a 1-D price series, got shape {array.shape}")
        bad = ~(np.isfinite(array) & (array > 0.0))
        if bad.any():
            where = int(np.argmax(bad))
            raise DataQualityError(
                f"{name}: bar {where} has a non-finite or non-positive price ({array[where]!r})"
            )
        arrays.append(array)
    if arrays[0].shape != arrays[1].shape:
        raise DataQualityError(
            f"close has {arrays[0].shape[0]} bars but open has {arrays[1].shape[0]}"
        )
    if arrays[0].shape[0] == 0:
        raise DataQualityError("close: the price series is empty")
    return arrays[0], arrays[1]


def _validated_pairs(pairs: np.ndarray | Sequence[tuple[int, int]]) -> np.ndarray:
    array = np.asarray(pairs)
    if array.size == 0:
        raise StrategyParamError("pairs: no (fast, slow) pair given")
    if array.ndim != 2 or array.shape[1] != 2:
        raise StrategyParamError(f"pairs: expected shape (n, 2), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        rounded = np.rint(array)
        if not np.array_equal(rounded, array):
            raise StrategyParamError("pairs: windows must be whole numbers of bars")
        array = rounded
    array = array.astype(np.int64)
    if (array < 1).any():
        row = int(np.argmax((array < 1).any(axis=1)))
        raise StrategyParamError(f"pairs: row {row} {tuple(array[row])} has a window < 1 bar")
    return np.ascontiguousarray(array)
