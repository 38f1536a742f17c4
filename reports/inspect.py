"""Data and plotting helpers of the inspection notebooks (``notebooks/*.ipynb``).

The notebooks stay short: each cell calls one function here, so what they show is unit-tested.

``strategy_inspection.ipynb`` uses :func:`inspect_genome` (pick a genome, reload the market its
session saw, rebuild the fitness windows), then :func:`gene_table`, :func:`window_equity`,
:func:`most_traded_symbol`, :func:`lineage_graph` with :func:`tree_layout` and
:func:`draw_lineage`, :func:`gate_verdict` and :func:`vectorbt_comparison`.

``generation_comparison.ipynb`` uses :func:`latest_sessions` and :func:`generation_table`,
which read the lab's MLflow store (one parent run per session, one nested run per generation,
see :mod:`evolution.tracking`), and :func:`plot_generation_comparison`.

Nothing here writes to the lab's stores: an empty or missing store is an :class:`InspectionError`
that says what is missing and where, never a new empty store.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alphaloop.errors import AlphaLoopError
from alphaloop.home import LabHome
from evolution.evaluate import (
    WINDOW_NAMES,
    Windows,
    fitness_backtest_config,
    make_windows,
    split_holdout,
    truncate_to,
)
from evolution.session import SessionConfig
from evolution.store import GenePoolStore
from genome.compile import compile_and_backtest, compile_genome
from genome.genes import Genome
from genome.random import numeric_genes
from simulators.backtest import BacktestConfig, run_backtest
from simulators.bars import Panel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    # MLflow stays behind its edge module (evolution.tracking), which owns the store layout.
    from evolution.tracking import MlflowClient

__all__ = [
    "GenomeInspection",
    "InspectionError",
    "LineageGraph",
    "VectorbtComparison",
    "WindowEquity",
    "all_trades",
    "benchmark_equity",
    "births_by_operator",
    "categorical_genes",
    "choose_sessions",
    "draw_lineage",
    "gate_verdict",
    "gene_table",
    "generation_table",
    "inspect_genome",
    "latest_sessions",
    "lineage_graph",
    "mlflow_client",
    "most_traded_symbol",
    "open_store",
    "pick_genome",
    "plot_equity",
    "plot_generation_comparison",
    "plot_trades",
    "resolve_lab_home",
    "session_comparison",
    "tree_layout",
    "vectorbt_comparison",
    "window_equity",
    "window_summary",
]

# The statuses pick_genome looks in, furthest lifecycle stage first.
PICK_ORDER = ("champion", "probation", "candidate", "alive")
SESSION_KIND = "evolution-session"
GENERATION_KIND = "evolution-generation"


class InspectionError(AlphaLoopError, LookupError):
    """What a notebook asked to inspect is not in the lab home (empty store, unknown id)."""


# --------------------------------------------------------------------------- the lab home
def resolve_lab_home(home: str | os.PathLike[str] | None = None) -> LabHome:
    """Return the lab home named by ``home``, else by ``$ALPHALOOP_HOME`` (else ``~/.alphaloop``).

    Raises
    ------
    InspectionError
        When the folder does not exist (the notebooks never create a lab home).
    """
    lab = LabHome.resolve(home)
    if not lab.root.is_dir():
        raise InspectionError(
            f"lab home {lab.root} does not exist: pass home= in the parameters cell or set "
            "$ALPHALOOP_HOME to a lab home where `alphaloop evolve` has run"
        )
    return lab


def open_store(lab: LabHome) -> GenePoolStore:
    """Open the gene pool of ``lab``; raise when it is missing or holds no genome.

    Raises
    ------
    InspectionError
        When ``gene_pool.sqlite`` is missing or empty.
    """
    if not lab.gene_pool_db.is_file():
        raise InspectionError(
            f"{lab.gene_pool_db}: no gene pool in this lab home; run `alphaloop evolve` first"
        )
    store = GenePoolStore(lab.gene_pool_db)
    if not store.list_genomes():
        store.close()
        raise InspectionError(
            f"{lab.gene_pool_db}: the gene pool is empty; run `alphaloop evolve` first"
        )
    return store


def _best(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    scored = [r for r in rows if r.get("last_score") is not None]
    if not scored:
        return None
    # Best score first; the id breaks ties so the pick never depends on row order.
    return min(scored, key=lambda r: (-float(r["last_score"]), str(r["genome_id"])))


def pick_genome(store: GenePoolStore, genome_id: str | None = None) -> str:
    """Return the id of the genome to inspect.

    Parameters
    ----------
    store:
        The gene pool.
    genome_id:
        A full id or a unique prefix; ``None`` picks the best-scored genome of the furthest
        lifecycle stage that has one: champion, then probation, then candidate, then alive
        (scores: the latest generation each genome was in).

    Raises
    ------
    InspectionError
        When the id is unknown or ambiguous, or when no genome is champion, on probation, a
        candidate or alive.
    """
    if genome_id is not None:
        record = store.genome(genome_id)
        if record is None:
            raise InspectionError(
                f"genome_id={genome_id!r}: no single genome of {store.path} has this id or "
                "prefix (see `alphaloop pool list`)"
            )
        return str(record["genome_id"])
    for status in PICK_ORDER:
        best = _best(store.list_genomes(status))
        if best is not None:
            return str(best["genome_id"])
    raise InspectionError(
        f"{store.path}: no champion, probation, candidate or alive genome to inspect; pass "
        "genome_id= explicitly"
    )


# --------------------------------------------------------------------------- one genome
@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeInspection:
    """A genome with the session context it was scored in.

    Attributes
    ----------
    lab:
        The lab home.
    genome_id, genome, record:
        The genome, and everything the store holds on it (:meth:`GenePoolStore.genome`).
    session:
        The session row the windows come from (the latest session that scored the genome).
    config:
        That session's configuration.
    data_spec:
        The market the windows are rebuilt on (the session's, unless overridden).
    panel:
        The bars up to the session's as-of date.
    windows:
        The live and year-ago windows (bar positions in ``panel``), which end where the
        session's holdout begins, as the session scored them.
    """

    lab: LabHome
    genome_id: str
    genome: Genome
    record: Mapping[str, Any]
    session: Mapping[str, Any]
    config: SessionConfig
    data_spec: str
    panel: Panel
    windows: Windows

    @property
    def backtest_config(self) -> BacktestConfig:
        """Return the fitness backtest's settings (costs and market rules on)."""
        return fitness_backtest_config(self.panel, self.config.costs)


def _scoring_session(store: GenePoolStore, record: Mapping[str, Any]) -> Mapping[str, Any]:
    sessions = [s["session_id"] for s in record["stats"]] or [record["born_session"]]
    candidates = [store.session(sid) for sid in dict.fromkeys(sessions)]
    found = [s for s in candidates if s is not None]
    if not found:
        raise InspectionError(
            f"genome {record['genome_id']}: its session {sessions[-1]} is not in {store.path}"
        )
    return max(found, key=lambda s: (float(s["created_at"]), str(s["session_id"])))


def inspect_genome(
    home: str | os.PathLike[str] | None = None,
    genome_id: str | None = None,
    data_spec: str | None = None,
) -> GenomeInspection:
    """Load a genome and rebuild the market and windows it was scored on.

    Parameters
    ----------
    home:
        The lab home (``None``: ``$ALPHALOOP_HOME``).
    genome_id:
        See :func:`pick_genome`.
    data_spec:
        A ``--data`` string; ``None`` uses the one the session recorded.

    Raises
    ------
    InspectionError
        On a missing or empty store, or an unknown genome.
    """
    from simulators.data_spec import load_market

    lab = resolve_lab_home(home)
    with open_store(lab) as store:
        chosen = pick_genome(store, genome_id)
        record = store.genome(chosen)
        if record is None:  # pick_genome returned a stored id: this is a broken store
            raise InspectionError(f"{store.path}: genome {chosen} vanished while reading")
        session = _scoring_session(store, record)
    config = SessionConfig.model_validate(json.loads(session["config_json"]))
    spec = data_spec or str(session["data_spec"])
    panel = truncate_to(load_market(spec, home=lab), str(session["as_of"]))
    # The session scored its windows on the bars before its holdout (evolution.session), so
    # the windows end where the holdout begins; their positions are the same in ``panel``.
    windows = make_windows(split_holdout(panel, config.holdout), config.fitness.window)
    return GenomeInspection(
        lab=lab,
        genome_id=chosen,
        genome=Genome.from_json(record["genome_json"]),
        record=record,
        session=session,
        config=config,
        data_spec=spec,
        panel=panel,
        windows=windows,
    )


def gene_table(genome: Genome) -> pd.DataFrame:
    """Return one row per numeric gene: ``gene, value, low, high, kind, position``.

    ``position`` is where the value sits inside its bound (0 = low, 1 = high), which shows at
    a glance which genes evolution pushed to a limit.
    """
    rows = []
    for path, gene in numeric_genes(genome).items():
        span = gene.high - gene.low
        rows.append(
            {
                "gene": path,
                "value": gene.value,
                "low": gene.low,
                "high": gene.high,
                "kind": gene.kind,
                "position": (gene.value - gene.low) / span if span > 0 else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=["gene", "value", "low", "high", "kind", "position"])


def categorical_genes(genome: Genome) -> pd.DataFrame:
    """Return the non-numeric genes (combiner, regimes, style, exit switches) as a table."""
    exits = genome.exits
    rows = [
        ("combine", genome.combine),
        ("regimes", ", ".join(genome.regimes)),
        ("style", genome.style),
        ("exits.opposite_signal", str(exits.opposite_signal)),
        ("exits.trailing", "none" if exits.trailing is None else type(exits.trailing).__name__),
        ("sizing", type(genome.sizing).__name__),
    ]
    return pd.DataFrame(rows, columns=["gene", "value"])


def benchmark_equity(panel: Panel, cash: float) -> np.ndarray:
    """Return the equity of an equal-weight buy and hold of every asset of ``panel``.

    ``cash`` is split equally at the first close over the assets priced there and held;
    a missing close is carried forward (the holding keeps its last price).

    Raises
    ------
    InspectionError
        When no asset has a price at the first bar.
    """
    close = pd.DataFrame(panel.close).ffill().to_numpy()
    start = close[0]
    priced = np.isfinite(start) & (start > 0)
    if not priced.any():
        raise InspectionError(
            f"benchmark: no asset of {panel.symbols} has a price at {panel.index[0]}"
        )
    growth = close[:, priced] / start[priced]
    return np.asarray(cash * growth.mean(axis=1), dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowEquity:
    """One fitness window of a genome: its equity, the benchmark's and its trades."""

    name: str
    equity: pd.Series
    benchmark: pd.Series
    trades: pd.DataFrame
    metrics: Mapping[str, float]
    start: int
    stop: int


def window_equity(inspection: GenomeInspection) -> dict[str, WindowEquity]:
    """Backtest the genome on each fitness window exactly as fitness did (costs on).

    Signals are compiled on the whole history up to the as-of date (indicators warm up before
    the window) and only the window's bars are traded, from a flat book: the statistics are
    those stored in the gene pool for the session.
    """
    config = inspection.backtest_config
    out: dict[str, WindowEquity] = {}
    for name in WINDOW_NAMES:
        start, stop = inspection.windows.bounds(name)
        result = compile_and_backtest(
            inspection.genome, inspection.panel, config, start=start, stop=stop
        )
        view = inspection.panel.slice_bars(start, stop)
        benchmark = pd.Series(
            benchmark_equity(view, config.cash), index=view.index, name="benchmark"
        )
        out[name] = WindowEquity(
            name=name,
            equity=result.equity,
            benchmark=benchmark,
            trades=result.trades,
            metrics=result.metrics,
            start=start,
            stop=stop,
        )
    return out


def window_summary(windows: Mapping[str, WindowEquity]) -> pd.DataFrame:
    """Return per window: the strategy's and the benchmark's return, Sharpe, drawdown, trades."""
    rows = {}
    for name, window in windows.items():
        benchmark = window.benchmark.to_numpy()
        rows[name] = {
            "strategy return": float(window.metrics["total_return"]),
            "benchmark return": float(benchmark[-1] / benchmark[0] - 1.0),
            "strategy Sharpe": float(window.metrics["sharpe"]),
            "strategy max drawdown": float(window.metrics["max_drawdown"]),
            "trades": float(len(window.trades)),
            "first bar": str(window.equity.index[0].date()),
            "last bar": str(window.equity.index[-1].date()),
        }
    return pd.DataFrame(rows)


def plot_equity(axis: Axes, window: WindowEquity) -> None:
    """Draw the strategy's equity and the equal-weight buy-and-hold benchmark of one window."""
    axis.plot(window.equity.index, window.equity.to_numpy(), label="strategy")
    axis.plot(
        window.benchmark.index,
        window.benchmark.to_numpy(),
        linestyle="--",
        label="equal-weight buy and hold",
    )
    axis.set_title(f"{window.name} window")
    axis.set_ylabel("equity")
    axis.grid(alpha=0.3)
    axis.legend(loc="best")


def all_trades(windows: Mapping[str, WindowEquity]) -> pd.DataFrame:
    """Return the trades of every window in one table with a ``window`` column."""
    frames = [w.trades.assign(window=name) for name, w in windows.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def most_traded_symbol(trades: pd.DataFrame, symbols: Sequence[str]) -> str:
    """Return the symbol with the most trades (ties: the first in ``symbols``).

    With no trade at all the first symbol is returned, so a chart can still be drawn.
    """
    if not symbols:
        raise InspectionError("most_traded_symbol: the panel has no symbol")
    counts = trades["symbol"].value_counts() if len(trades) else pd.Series(dtype=np.int64)
    return max(symbols, key=lambda s: (int(counts.get(s, 0)), -symbols.index(s)))


def plot_trades(axis: Axes, window: WindowEquity, panel: Panel, symbol: str) -> int:
    """Draw ``symbol``'s closes over the window with its entries and exits; return the trades.

    Entries are up-triangles at the fill price, exits down-triangles (an open trade has none).
    """
    view = panel.slice_bars(window.start, window.stop)
    column = view.column(symbol)
    axis.plot(view.index, view.close[:, column], color="0.35", linewidth=1.0, label=symbol)
    mine = window.trades[window.trades["symbol"] == symbol]
    axis.scatter(
        mine["entry_time"], mine["entry_price"], marker="^", color="tab:green", label="entry"
    )
    closed = mine[mine["exit_idx"] >= 0]
    axis.scatter(
        closed["exit_time"], closed["exit_price"], marker="v", color="tab:red", label="exit"
    )
    axis.set_title(f"{symbol}: {len(mine)} trades ({window.name} window)")
    axis.legend(loc="best")
    axis.grid(alpha=0.3)
    return len(mine)


def gate_verdict(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the genome's latest promotion-gate verdict (``judged`` False if never judged)."""
    verdicts = list(record.get("verdicts") or [])
    if not verdicts:
        return {
            "judged": False,
            "passed": False,
            "reasons": [
                "never judged: the gate only sees the best genomes of each generation "
                "that are not champions yet"
            ],
            "figures": {},
        }
    latest = max(verdicts, key=lambda v: (str(v["session_id"]), int(v["generation"])))
    return {"judged": True, **latest}


# --------------------------------------------------------------------------- lineage
@dataclass(frozen=True, slots=True, kw_only=True)
class LineageGraph:
    """The ancestry of a genome: nodes (with operator and birth generation) and edges.

    ``edges`` are ``(parent, child)`` pairs; ``founders`` are the ancestors without parents.
    """

    target: str
    nodes: Mapping[str, Mapping[str, Any]]
    edges: tuple[tuple[str, str], ...]

    @property
    def founders(self) -> tuple[str, ...]:
        """Return the nodes without parents, sorted."""
        children = {child for _parent, child in self.edges}
        return tuple(sorted(node for node in self.nodes if node not in children))


def lineage_graph(store: GenePoolStore, genome_id: str) -> LineageGraph:
    """Return the ancestry of ``genome_id`` back to its founders.

    Raises
    ------
    InspectionError
        When the genome has no lineage row.
    """
    rows = store.lineage(genome_id)
    if not rows:
        raise InspectionError(f"genome {genome_id}: no lineage in {store.path}")
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str]] = []
    for row in rows:
        nodes[row["genome_id"]] = {"operator": row["operator"], "generation": row["generation"]}
        for parent in row["parents"]:
            edges.append((str(parent), str(row["genome_id"])))
    for parent, _child in edges:
        # A parent without a lineage row cannot happen in a healthy store; keep it visible.
        nodes.setdefault(parent, {"operator": "unknown", "generation": -1})
    return LineageGraph(target=genome_id, nodes=nodes, edges=tuple(sorted(set(edges))))


def tree_layout(graph: LineageGraph) -> dict[str, tuple[float, float]]:
    """Return ``id -> (x, y)``: ``y`` = generations back from the target (its longest path).

    The target is at ``y = 0``, its parents at ``y = 1`` and so on, so founders sit at the top
    when ``y`` grows upwards. Within a layer nodes are ordered by the mean ``x`` of their
    children (fewer crossing edges), then by id, and spread one unit apart around 0.
    """
    parents_of: dict[str, list[str]] = {n: [] for n in graph.nodes}
    children_of: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for parent, child in graph.edges:
        parents_of[child].append(parent)
        children_of[parent].append(child)
    depth = {graph.target: 0}
    # Longest-path depth by relaxation; a lineage is a DAG, and the bound stops a broken
    # (cyclic) store from looping forever.
    for _ in range(len(graph.nodes)):
        changed = False
        for child, level in list(depth.items()):
            for parent in parents_of[child]:
                if depth.get(parent, -1) < level + 1:
                    depth[parent] = level + 1
                    changed = True
        if not changed:
            break
    for node in graph.nodes:
        depth.setdefault(node, max(depth.values()) + 1)
    layers: dict[int, list[str]] = {}
    for node, level in depth.items():
        layers.setdefault(level, []).append(node)
    position: dict[str, tuple[float, float]] = {}
    for level in sorted(layers):
        members = layers[level]

        def order(node: str) -> tuple[float, str]:
            placed = [position[c][0] for c in children_of[node] if c in position]
            return (float(np.mean(placed)) if placed else 0.0, node)

        members.sort(key=order)
        offset = (len(members) - 1) / 2.0
        for index, node in enumerate(members):
            position[node] = (index - offset, float(level))
    return position


def draw_lineage(axis: Axes, graph: LineageGraph, *, id_chars: int = 8) -> None:
    """Draw the lineage tree: boxes ``<id prefix>\\n<operator>``, arrows parent -> child."""
    position = tree_layout(graph)
    for parent, child in graph.edges:
        (x0, y0), (x1, y1) = position[parent], position[child]
        axis.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={"arrowstyle": "->", "color": "0.5", "shrinkA": 14, "shrinkB": 14},
        )
    for node, (x, y) in position.items():
        info = graph.nodes[node]
        colour = "#ffd27f" if node == graph.target else "#dfe8f5"
        axis.text(
            x,
            y,
            f"{node[:id_chars]}\n{info['operator']}",
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": colour, "edgecolor": "0.4"},
        )
    xs = [x for x, _ in position.values()]
    ys = [y for _, y in position.values()]
    axis.set_xlim(min(xs) - 1, max(xs) + 1)
    axis.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    axis.set_yticks(sorted(set(ys)))
    axis.set_ylabel("generations back")
    axis.set_xticks([])
    axis.set_title(f"lineage of {graph.target[:id_chars]} ({len(graph.nodes)} genomes)")


# --------------------------------------------------------------------------- vectorbt
@dataclass(frozen=True, slots=True, kw_only=True)
class VectorbtComparison:
    """The lab's backtest and vectorbt's on the same signals of one asset.

    Attributes
    ----------
    symbol:
        The asset.
    lab, vectorbt:
        Equity curves (same index).
    table:
        Rows ``final value`` and ``trades``; columns ``lab``, ``vectorbt``, ``difference``.
    dropped:
        Exit rules of the genome vectorbt's ``from_signals`` cannot express, left out of
        *both* runs so they stay comparable (empty: the genome ran as it is).
    """

    symbol: str
    lab: pd.Series
    vectorbt: pd.Series
    table: pd.DataFrame
    dropped: tuple[str, ...] = field(default_factory=tuple)


def _shift_down(values: np.ndarray, fill: Any) -> np.ndarray:
    out = np.empty_like(values)
    out[0] = fill
    out[1:] = values[:-1]
    return out


def _no_stop_on_exit_bar_sl(context: Any, due_exit: np.ndarray) -> tuple[float, bool]:
    # Our kernel fills an exit due at the open before any stop of that bar; vectorbt would let
    # the stop win. Switching the stop off on those bars makes both fill the open exit.
    if due_exit[context.i, context.col]:
        return np.nan, False
    return context.curr_stop, context.curr_trail


def _no_stop_on_exit_bar_tp(context: Any, due_exit: np.ndarray) -> float:
    if due_exit[context.i, context.col]:
        return np.nan
    return float(context.curr_stop)


_JITTED: dict[str, Any] = {}


def _jitted(name: str) -> Any:
    # numba compiles these on first use only, so importing this module stays cheap.
    if name not in _JITTED:
        from numba import njit

        source = {"sl": _no_stop_on_exit_bar_sl, "tp": _no_stop_on_exit_bar_tp}[name]
        _JITTED[name] = njit(source)
    return _JITTED[name]


def vectorbt_comparison(
    genome: Genome,
    panel: Panel,
    symbol: str,
    *,
    start: int = 0,
    stop: int | None = None,
    cash: float = 1_000_000.0,
) -> VectorbtComparison:
    """Run the genome's signals on one asset through the lab's backtester and vectorbt.

    Both run frictionless (no fees, no slippage, no lot rounding: vectorbt knows none of the
    lab's market rules) with next-open fills, the genome's fraction-of-equity sizing and its
    stop loss and take profit. Signals are compiled on the whole ``panel`` (the regime filter
    reads every asset) and bars ``start:stop`` of ``symbol`` are traded. Time and trailing
    stops have no exact vectorbt equivalent: they are left out of both runs and listed in
    :attr:`VectorbtComparison.dropped`.

    Raises
    ------
    InspectionError
        When ``symbol`` is not in the panel or the bar range is empty.
    """
    import vectorbt as vbt

    if symbol not in panel.symbols:
        raise InspectionError(f"vectorbt_comparison: symbol {symbol!r} not in {panel.symbols}")
    end = panel.n_bars if stop is None else stop
    if not 0 <= start < end <= panel.n_bars:
        raise InspectionError(
            f"vectorbt_comparison: bars {start}:{end} are not inside the panel's "
            f"{panel.n_bars} bars"
        )
    column = panel.column(symbol)
    compiled = compile_genome(genome, panel)
    rows = slice(start, end)
    entries = compiled.entries[rows, column].copy()
    exits = compiled.exits[rows, column].copy()
    size = compiled.size[rows, column].copy()
    dropped = []
    if compiled.time_stop is not None:
        dropped.append(f"time stop ({compiled.time_stop} bars)")
    if compiled.tsl_stop is not None:
        dropped.append(f"trailing stop ({type(genome.exits.trailing).__name__})")
    view = panel.slice_bars(start, end).select([symbol])
    lab = run_backtest(
        view,
        entries[:, None],
        exits[:, None],
        config=BacktestConfig(cash=cash, fill="next-open", market="none", slippage=0.0),
        sl_stop=compiled.sl_stop,
        tp_stop=compiled.tp_stop,
        size=size[:, None],
    )
    # vectorbt fills a signal on its own bar: shift every signal-bar input one bar later and
    # fill at the open, which is the lab's next-open rule.
    due_entry = _shift_down(entries, False)
    due_exit = _shift_down(exits, False)
    portfolio = vbt.Portfolio.from_signals(
        close=view.close[:, 0],
        entries=due_entry,
        exits=due_exit,
        price=view.open[:, 0],
        open=view.open[:, 0],
        high=view.high[:, 0],
        low=view.low[:, 0],
        size=_shift_down(size, 0.0),
        size_type="percent",
        init_cash=cash,
        fees=0.0,
        accumulate=False,
        sl_stop=np.nan if compiled.sl_stop is None else compiled.sl_stop,
        tp_stop=np.nan if compiled.tp_stop is None else compiled.tp_stop,
        stop_entry_price="fillprice",
        adjust_sl_func_nb=_jitted("sl"),
        adjust_sl_args=(due_exit.reshape(-1, 1),),
        adjust_tp_func_nb=_jitted("tp"),
        adjust_tp_args=(due_exit.reshape(-1, 1),),
        freq="1D",
    )
    lab_equity = lab.equity.rename("lab")
    theirs = pd.Series(
        np.asarray(portfolio.value(), dtype=np.float64), index=view.index, name="vectorbt"
    )
    lab_final = float(lab_equity.iloc[-1])
    their_final = float(theirs.iloc[-1])
    lab_trades = len(lab.trades)
    their_trades = len(portfolio.trades.records)
    table = pd.DataFrame(
        {
            "lab": [lab_final, float(lab_trades)],
            "vectorbt": [their_final, float(their_trades)],
            "difference": [lab_final - their_final, float(lab_trades - their_trades)],
        },
        index=pd.Index(["final value", "trades"], name=symbol),
    )
    return VectorbtComparison(
        symbol=symbol, lab=lab_equity, vectorbt=theirs, table=table, dropped=tuple(dropped)
    )


# --------------------------------------------------------------------------- MLflow
def mlflow_client(lab: LabHome) -> MlflowClient:
    """Return a client of the lab's tracking store (``$ALPHALOOP_MLFLOW_URI`` or its SQLite).

    Raises
    ------
    InspectionError
        When the lab's SQLite tracking store does not exist (nothing was ever tracked).
    """
    from evolution.tracking import client_for, tracking_uri

    uri = tracking_uri(lab)
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise InspectionError(
                f"{path}: no MLflow store in this lab home; run `alphaloop evolve` "
                "(with tracking on) first"
            )
    return client_for(lab)


def _experiment_id(client: MlflowClient) -> str:
    from evolution.tracking import EVOLUTION_EXPERIMENT

    experiment = client.get_experiment_by_name(EVOLUTION_EXPERIMENT)
    if experiment is None:
        raise InspectionError(
            f"MLflow store {client.tracking_uri}: no experiment {EVOLUTION_EXPERIMENT!r}; "
            "run `alphaloop evolve` first"
        )
    return str(experiment.experiment_id)


def latest_sessions(client: MlflowClient, count: int = 2) -> list[str]:
    """Return the ids of the ``count`` most recently started sessions, newest first.

    Raises
    ------
    InspectionError
        When the store holds no evolution session.
    """
    runs = client.search_runs(
        [_experiment_id(client)],
        filter_string=f"tags.`alphaloop.kind` = '{SESSION_KIND}'",
        order_by=["attributes.start_time DESC"],
    )
    ids = [str(run.data.tags["alphaloop.session_id"]) for run in runs]
    if not ids:
        raise InspectionError(f"MLflow store {client.tracking_uri}: no evolution session logged")
    return list(dict.fromkeys(ids))[:count]


def generation_table(client: MlflowClient, session_ids: Sequence[str]) -> pd.DataFrame:
    """Return one row per (session, generation) read from the nested generation runs.

    Columns: ``session, session_id, generation, best_score, median_score, mean_score,
    diversity, culled, promoted`` and one ``births_<operator>`` column per operator seen
    (0 where a generation had no such birth). ``session`` is the short label
    ``<id prefix> (seed <seed>)``. A generation logged twice (a resumed session) keeps its
    latest run.

    Raises
    ------
    InspectionError
        When a session has no generation run.
    """
    experiment = _experiment_id(client)
    rows: list[dict[str, Any]] = []
    for session_id in session_ids:
        parents = client.search_runs(
            [experiment],
            filter_string=(
                f"tags.`alphaloop.kind` = '{SESSION_KIND}' and "
                f"tags.`alphaloop.session_id` = '{session_id}'"
            ),
        )
        seed = parents[0].data.params.get("seed", "?") if parents else "?"
        label = f"{session_id[:8]} (seed {seed})"
        runs = client.search_runs(
            [experiment],
            filter_string=(
                f"tags.`alphaloop.kind` = '{GENERATION_KIND}' and "
                f"tags.`alphaloop.session_id` = '{session_id}'"
            ),
            order_by=["attributes.start_time ASC"],
        )
        by_generation: dict[int, dict[str, Any]] = {}
        for run in runs:
            generation = int(run.data.tags["alphaloop.generation"])
            metrics = run.data.metrics
            by_generation[generation] = {
                "session": label,
                "session_id": session_id,
                "generation": generation,
                **{key: float(value) for key, value in metrics.items()},
            }
        if not by_generation:
            raise InspectionError(
                f"MLflow store {client.tracking_uri}: session {session_id} has no generation run"
            )
        rows.extend(by_generation[g] for g in sorted(by_generation))
    table = pd.DataFrame(rows)
    births = sorted(c for c in table.columns if c.startswith("births_"))
    for column in births:
        table[column] = table[column].fillna(0.0)
    base = [
        "session",
        "session_id",
        "generation",
        "best_score",
        "median_score",
        "mean_score",
        "diversity",
        "culled",
        "promoted",
    ]
    for column in base:
        if column not in table.columns:
            table[column] = math.nan
    return table[base + births].reset_index(drop=True)


def choose_sessions(client: MlflowClient, sessions: str | Sequence[str] | None) -> list[str]:
    """Return the session ids to compare: ``sessions`` as given, else the two latest.

    Raises
    ------
    InspectionError
        When the store holds no session.
    """
    if sessions is None:
        return latest_sessions(client, 2)
    if isinstance(sessions, str):
        return [sessions]
    return [str(s) for s in sessions]


def session_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Return one column per session: generations, final and peak best score, and totals."""
    births = [c for c in table.columns if c.startswith("births_")]
    out = {}
    for label, rows in table.groupby("session", sort=False):
        rows = rows.sort_values("generation")
        out[label] = {
            "generations": float(len(rows)),
            "final best score": float(rows["best_score"].iloc[-1]),
            "peak best score": float(rows["best_score"].max()),
            "final median score": float(rows["median_score"].iloc[-1]),
            "mean diversity": float(rows["diversity"].mean()),
            "births": float(rows[births].to_numpy().sum()) if births else 0.0,
            "culled": float(rows["culled"].sum()),
            "promoted": float(rows["promoted"].sum()),
        }
    return pd.DataFrame(out)


def plot_generation_comparison(axes: Sequence[Axes], table: pd.DataFrame) -> None:
    """Draw the sessions on shared axes: scores, diversity, births, culls (four axes).

    ``axes[0]``: best (solid) and median (dashed) score; ``axes[1]``: diversity;
    ``axes[2]``: births per generation (all operators); ``axes[3]``: culls.
    """
    if len(axes) < 4:
        raise InspectionError(f"plot_generation_comparison: needs 4 axes, got {len(axes)}")
    births = [c for c in table.columns if c.startswith("births_")]
    for label, rows in table.groupby("session", sort=False):
        line = axes[0].plot(rows["generation"], rows["best_score"], marker="o", label=f"{label}")
        colour = line[0].get_color()
        axes[0].plot(rows["generation"], rows["median_score"], linestyle="--", color=colour)
        axes[1].plot(rows["generation"], rows["diversity"], marker="o", color=colour, label=label)
        total = rows[births].sum(axis=1) if births else np.zeros(len(rows))
        axes[2].plot(rows["generation"], total, marker="o", color=colour, label=label)
        axes[3].plot(rows["generation"], rows["culled"], marker="o", color=colour, label=label)
    from matplotlib.ticker import MaxNLocator

    titles = ("score: best (solid), median (dashed)", "diversity", "births", "culled")
    for axis, title in zip(axes, titles, strict=False):
        axis.set_title(title)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("generation")
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize=8)


def births_by_operator(table: pd.DataFrame) -> pd.DataFrame:
    """Return births per operator (columns) per session and generation (rows)."""
    births = [c for c in table.columns if c.startswith("births_")]
    out = table.set_index(["session", "generation"])[births]
    out.columns = [c.removeprefix("births_") for c in births]
    return out
