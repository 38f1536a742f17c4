"""The daily cycle of the arena, as plain Python: plan the day, trade each account, close.

No Ray and no MLflow here (``arena/actors.py`` wraps :class:`AccountBook` in an actor, the CLI
logs to MLflow). A day ``D`` goes:

1. :func:`plan_day` (driver, once): :func:`arena.perceive.perceive` reads the daily bars up to
   the close of ``D-1`` only, and the genomes are compiled on that cut panel alone (its last
   :data:`HISTORY_BARS` bars), so no bar of ``D`` or later can reach a decision. Each genome
   is backtested over the last :data:`TRADE_BARS` of that history; its **target weights** are
   the positions its backtest holds at the close of ``D-1`` (value / equity) and its
   **regime statistics** (closed trades, win rate, mean trade return, by the regime at entry)
   feed the debate's quant view. Each persona picks genomes with
   :func:`arena.personas.select_genomes` among the champions, or, when none is eligible for it
   that day, among the bootstrap genomes (every genome on probation trades too); its budget
   is ``risk_budget x regime weight``, shared equally by its genomes (a genome's weights are
   scaled to sum at most 1), each name capped at the risk limit's weight, only the
   ``max_positions`` largest kept; each target's
   ``sources`` are the genomes whose sleeves asked for the name, with their shares of its
   weight (the largest is its ``genome_id``). The synthesis
   account debates the aggressive targets (:func:`arena.debate.run_debate`); the judge's
   verdict scales them, and the result is scaled by the synthesis / aggressive risk budgets.
2. :meth:`AccountBook.run_day` (one per account, in its actor): orders are the differences
   between the target and the held quantities at the previous close (whole lots; changes under
   :data:`MIN_TRADE_WEIGHT` of equity are skipped; sells first). The :class:`RiskGovernor`
   checks every order at the open against a running float view of the account (each approved
   order is assumed filled at the previous close for the next check); cuts and vetoes are
   events. Then every approved order is a parent order sliced by the execution policy and
   executed minute by minute, all of them interleaved (sells first, then buys, each minute),
   by :func:`arena.intraday.execute_day` over the day's minute bars (``generate_intraday`` on
   synthetic data): the governor sees each minute bar as it closes; a circuit-breaker freeze
   at minute ``m`` blocks the buys from minute ``m + 1`` on (sells go on), the daily-loss stop
   freezes the buys and liquidates; halts, stale feeds and broker faults come in through
   :class:`arena.intraday.DayConditions`. **Daily-only data** have no minute bars: the
   fallback executes each parent order on the single daily bar of ``D`` (one step; the fill
   model's OHLC average price and participation cap of the daily volume).
3. Close: mark to market at the closes of ``D``, attribute the day's P&L to the genomes
   (:func:`arena.ledger.attribute_day`: each name's P&L goes to the genomes of its target's
   ``sources``, else to the holders at the previous close) and write the day in one ledger
   transaction (orders, fills and positions with their genome shares, equity, the decision
   chain every order points to, the risk events, the attribution). A committed day is never
   applied twice; ``force`` replaces the last day, its attribution with it.

**Kill switch.** While the lab is paused (:mod:`arena.kill_switch`), :func:`pause_plan` turns
the day's plan into one without targets or genome sleeves, carrying the pause: the account
asks for no order at all, or, with ``flatten``, only for the sells that close what it holds
(the normal order rule against empty targets: sellable quantity, whole lots); its governor is
paused (:meth:`arena.risk.RiskGovernor.pause`, a ``kill_switch`` event of kind ``pause`` or
``flatten`` with the reason) and vetoes any other order; a position that cannot be closed
today (no bar, not sellable yet, not filled) is one more ``kill_switch`` event naming it. The
day is committed as any other (marks, equity, the events), so the ledger stays continuous;
without sleeves the review writes no genome day, so a paused day is no paper record.

Same genomes, config and data give the same ledger, bit for bit (no clock, no randomness).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.errors import DataSpecError
from arena.bootstrap import ArenaGenome
from arena.broker import (
    AccountState,
    Bar,
    BrokerRules,
    bars_from_panel,
    mark_to_market,
    open_account,
    start_day,
)
from arena.debate import DebateRecord, RegimeStats, TargetPosition, run_debate
from arena.events import FillEvent, RiskVeto
from arena.intraday import ChildOrder, DayConditions, Incident, ManualOrder, execute_day
from arena.kill_switch import Pause
from arena.ledger import (
    DayAlreadyCommitted,
    DayAttribution,
    DecisionRecord,
    EquitySnapshot,
    Ledger,
    PositionSnapshot,
    attribute_day,
    snapshots_from,
)
from arena.money import (
    money_from_float,
    money_to_float,
    quantity_from_float,
    quantity_to_float,
    units_for_market,
)
from arena.orders import Order
from arena.perceive import Perception, perceive, perception_cutoff
from arena.personas import PERSONA_NAMES, ArenaConfig, PersonaConfig, select_genomes
from arena.risk import AccountSnapshot, MarketSnapshot, OrderRequest, RiskEvent, RiskGovernor
from genome.cache import IndicatorCache
from genome.compile import compile_and_backtest
from genome.regime import classify_regimes
from simulators import detmath
from simulators.bars import Panel
from simulators.calendars import FREQUENCY_STEPS
from simulators.fill_model import bar_volatility, daily_volatility
from simulators.metrics import annualised_sharpe

__all__ = [
    "HISTORY_BARS",
    "MIN_TRADE_WEIGHT",
    "TRADE_BARS",
    "AccountBook",
    "AccountDayResult",
    "AccountPlan",
    "DayMarket",
    "DayPlan",
    "GenomeReading",
    "account_metrics",
    "benchmark_return",
    "day_index",
    "day_market",
    "liquidation_id",
    "opening_requests",
    "pause_plan",
    "plan_day",
    "read_genome",
    "trading_days",
]

# Bars of daily history a day is planned from (one year of warm-up + two of backtest).
HISTORY_BARS = 756
TRADE_BARS = 504
# Rebalancing trades smaller than this share of equity cost more than they correct.
MIN_TRADE_WEIGHT = 0.005
_REGIME_LABELS = ("bull", "bear", "range", "high_vol")


# --------------------------------------------------------------------------- calendar
def _session_day(stamp: pd.Timestamp) -> date:
    # A bar stamped at its close belongs to the session that ends then (crypto: 00:00 bar).
    return (stamp - pd.Timedelta(minutes=1)).date()


def trading_days(daily: Panel) -> list[date]:
    """Return the trading days of the daily panel, in order."""
    return [_session_day(stamp) for stamp in daily.index]


def day_index(daily: Panel, day: date) -> int:
    """Return the bar number of trading day ``day`` in ``daily``.

    Raises
    ------
    DataSpecError
        If ``day`` is not a trading day of the data, or has no earlier bar to plan from.
    """
    days = trading_days(daily)
    try:
        index = days.index(day)
    except ValueError:
        raise DataSpecError(
            f"{day.isoformat()} is not a trading day of {daily.source or 'the data'} "
            f"(days {days[0].isoformat()} .. {days[-1].isoformat()})"
        ) from None
    if index == 0:
        raise DataSpecError(
            f"{day.isoformat()} is the first day of {daily.source or 'the data'}: "
            "there is no earlier bar to plan it from"
        )
    return index


# --------------------------------------------------------------------------- genomes
@dataclass(frozen=True, slots=True, kw_only=True)
class GenomeReading:
    """What one genome says at the close of ``D-1``: target weights and regime statistics."""

    genome_id: str
    style: str
    source: str
    weights: Mapping[str, float]
    stats: Mapping[str, RegimeStats]


def read_genome(
    item: ArenaGenome, past: Panel, regimes: np.ndarray, cache: IndicatorCache
) -> GenomeReading:
    """Backtest ``item`` on ``past`` and read its positions at the last bar.

    ``regimes`` are ``classify_regimes(past)``; ``cache`` an indicator cache of ``past``.
    """
    start = max(0, past.n_bars - TRADE_BARS)
    if past.n_bars - start < 2:
        return GenomeReading(
            genome_id=item.genome.id, style=item.genome.style, source=item.source,
            weights={}, stats={},
        )  # fmt: skip
    result = compile_and_backtest(item.genome, past, cache=cache, start=start)
    equity = float(result.equity.iloc[-1])
    held = result.positions.iloc[-1]
    closes = past.close[-1]
    weights: dict[str, float] = {}
    if equity > 0:
        for column, symbol in enumerate(past.symbols):
            size = float(held.get(symbol, 0.0))
            price = float(closes[column])
            if size > 0 and math.isfinite(price) and price > 0:
                weights[symbol] = size * price / equity
    stats: dict[str, RegimeStats] = {}
    trades = result.trades
    if len(trades):
        closed = trades[trades["exit_reason"] != "open"]
        cost = closed["entry_price"].to_numpy(float) * closed["size"].to_numpy(float)
        pnl = closed["pnl"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(cost > 0, pnl / cost, 0.0)
        codes = regimes[start + closed["entry_idx"].to_numpy(int)]
        for code, label in enumerate(_REGIME_LABELS):
            mask = codes == code
            if mask.any():
                stats[label] = RegimeStats(
                    trades=int(mask.sum()),
                    win_rate=float((pnl[mask] > 0).mean()),
                    expected_return=float(np.nan_to_num(returns[mask]).mean()),
                )
    return GenomeReading(
        genome_id=item.genome.id, style=item.genome.style, source=item.source,
        weights=weights, stats=stats,
    )  # fmt: skip


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True, slots=True, kw_only=True)
class AccountPlan:
    """One account's targets for the day and the decision chain behind them.

    ``pause`` is the lab's pause when the kill switch is on (:func:`pause_plan`): the account
    then places no order, or with ``flatten`` only the sells that close its positions.
    """

    account: str
    day: date
    regime: str
    targets: tuple[TargetPosition, ...]
    decision_id: str
    decision: Mapping[str, Any]
    pause: Pause | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPlan:
    """Everything decided before the open of ``day`` (from bars up to ``D-1`` only)."""

    day: date
    perception: Perception
    accounts: Mapping[str, AccountPlan]
    debate: DebateRecord | None

    @property
    def regime(self) -> str:
        """Return the day's regime label."""
        return self.perception.regime.regime


def _decision_id(account: str, day: date, payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{account}-{day.isoformat()}-{digest}"


def sleeves(
    persona: PersonaConfig,
    main: Sequence[str],
    probation: Sequence[str],
    regime: str,
    config: ArenaConfig,
) -> dict[str, float]:
    """Return each chosen genome's sleeve: the share of equity it trades with today.

    The persona's budget is ``risk_budget x regime weight``. Each probation genome gets
    ``probation_share`` of it (all of them together at most ``max_probation_share``, shared
    equally when more ask); the main genomes share the rest equally, or the whole budget when
    none is on probation.
    """
    budget = persona.risk_budget * persona.regime_weight(regime)
    each = 0.0
    if probation:
        each = min(config.probation_share, config.max_probation_share / len(probation)) * budget
    rest = budget - each * len(probation)
    out = {gid: rest / len(main) for gid in main}
    out.update({gid: each for gid in probation})
    return out


def _blend(
    persona: PersonaConfig,
    chosen: Mapping[str, float],
    readings: Mapping[str, GenomeReading],
    max_weight: float,
) -> tuple[TargetPosition, ...]:
    if not chosen:
        return ()
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, str, str]] = {}
    parts: dict[str, dict[str, float]] = {}
    for genome_id, sleeve in chosen.items():
        reading = readings[genome_id]
        gross = sum(reading.weights.values())
        scale = 1.0 / gross if gross > 1.0 else 1.0
        for symbol, weight in sorted(reading.weights.items()):
            part = sleeve * weight * scale
            totals[symbol] = totals.get(symbol, 0.0) + part
            if part > 0:
                by_genome = parts.setdefault(symbol, {})
                by_genome[genome_id] = by_genome.get(genome_id, 0.0) + part
            if symbol not in best or part > best[symbol][0]:
                best[symbol] = (part, genome_id, reading.style)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    kept = [(s, min(w, max_weight)) for s, w in ranked[: persona.max_positions] if w > 0]
    return tuple(
        TargetPosition(
            symbol=s, weight=w, genome_id=best[s][1], style=best[s][2],
            sources=_sources(parts[s]),
        )
        for s, w in sorted(kept)
    )  # fmt: skip


def _sources(parts: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    # Each sleeve's part of the name over their sum: the cap on the name's weight scales
    # every part alike, so the shares are those of the uncapped weight.
    total = math.fsum(parts.values())
    return tuple((genome_id, part / total) for genome_id, part in sorted(parts.items()))


def plan_day(
    daily: Panel,
    day: date,
    genomes: Sequence[ArenaGenome],
    config: ArenaConfig,
    equities: Mapping[str, float],
) -> DayPlan:
    """Decide every account's targets for ``day`` from the bars up to the close of ``D-1``.

    Parameters
    ----------
    daily:
        The daily panel (it may hold later bars: they are cut off first).
    day:
        The trading day to plan.
    genomes:
        The genomes the arena may trade (:func:`arena.bootstrap.arena_genomes`).
    config:
        The arena configuration.
    equities:
        Each account's equity at the close of ``D-1`` (the synthesis account's sizes the
        debate's liquidity objection).
    """
    perception = perceive(daily, day)
    past = daily.truncate_after(perception_cutoff(daily, day))
    past = past.slice_bars(max(0, past.n_bars - HISTORY_BARS), past.n_bars)
    regime = perception.regime.regime
    candidates = [item.candidate() for item in genomes]
    by_id = {item.genome.id: item for item in genomes}
    chosen: dict[str, dict[str, float]] = {}
    for name in PERSONA_NAMES:
        persona = config.personas.get(name)
        champions = [c for c in candidates if not c.probation and not c.bootstrap]
        trial = [c for c in candidates if c.probation]
        # The bootstrap genomes of the persona's styles stand in only when no champion is
        # eligible for it today.
        picked = [c.genome_id for c in select_genomes(persona, champions, regime)] or [
            c.genome_id
            for c in select_genomes(persona, [c for c in candidates if c.bootstrap], regime)
        ]
        # Every eligible genome on probation trades (it needs a paper record), best first.
        on_probation = [
            c.genome_id for c in select_genomes(persona, trial, regime, limit=len(trial))
        ]
        chosen[name] = sleeves(persona, picked, on_probation, regime, config)
    needed = sorted({gid for ids in chosen.values() for gid in ids})
    cache = IndicatorCache(past)
    codes = classify_regimes(past)
    readings = {gid: read_genome(by_id[gid], past, codes, cache) for gid in needed}
    max_weight = config.risk.max_position_weight
    perception_summary = {
        "as_of": perception.as_of,
        "regime": perception.to_dict()["regime"],
    }
    plans: dict[str, AccountPlan] = {}
    targets = {
        name: _blend(config.personas.get(name), chosen[name], readings, max_weight)
        for name in ("aggressive", "conservative")
    }
    for name in ("aggressive", "conservative"):
        payload = {
            "account": name,
            "day": day.isoformat(),
            "perception": perception_summary,
            "genomes": [
                {
                    "genome_id": gid,
                    "source": by_id[gid].source,
                    "style": by_id[gid].genome.style,
                    "sleeve": sleeve,
                }
                for gid, sleeve in chosen[name].items()
            ],
            "targets": [_target_dict(t) for t in targets[name]],
        }
        plans[name] = AccountPlan(
            account=name, day=day, regime=regime, targets=targets[name],
            decision_id=_decision_id(name, day, payload), decision=payload,
        )  # fmt: skip
    debate: DebateRecord | None = None
    synthesis_payload: dict[str, Any] = {
        "account": "synthesis",
        "day": day.isoformat(),
        "perception": perception_summary,
    }
    synthesis_targets: tuple[TargetPosition, ...] = ()
    if targets["aggressive"]:
        equity = float(equities.get("synthesis", config.starting_capital))
        debate = run_debate(
            proposal=targets["aggressive"],
            perception=perception,
            backtest_stats={gid: dict(r.stats) for gid, r in readings.items()},
            equity=equity if equity > 0 else config.starting_capital,
            config=config.debate,
            account="synthesis",
        )
        ratio = config.personas.synthesis.risk_budget / config.personas.aggressive.risk_budget
        synthesis_targets = tuple(t.scaled(ratio) for t in debate.targets if t.weight * ratio > 0)
        synthesis_payload["debate"] = debate.to_dict()
        synthesis_payload["budget_ratio"] = ratio
        # The aggressive sleeves at the synthesis budget, before the judge's verdict scales them.
        synthesis_payload["sleeves"] = {
            gid: sleeve * ratio for gid, sleeve in chosen["aggressive"].items()
        }
    else:
        synthesis_payload["debate"] = None
        synthesis_payload["note"] = "no aggressive proposal: nothing to debate, hold cash"
    synthesis_payload["targets"] = [_target_dict(t) for t in synthesis_targets]
    plans["synthesis"] = AccountPlan(
        account="synthesis", day=day, regime=regime, targets=synthesis_targets,
        decision_id=_decision_id("synthesis", day, synthesis_payload),
        decision=synthesis_payload,
    )  # fmt: skip
    return DayPlan(day=day, perception=perception, accounts=plans, debate=debate)


def pause_plan(plan: DayPlan, pause: Pause) -> DayPlan:
    """Return ``plan`` as the paused lab trades it: no targets, no sleeves, the pause carried.

    Each account's decision keeps the perception and records the pause
    (``"decision": "pause"`` or ``"flatten"``, ``"kill_switch"``: the pause) and what the plan
    would have traded (``"suspended_targets"``); its ``genomes`` (or the synthesis
    ``sleeves``) are empty, so no genome is reviewed on a day it did not trade, and its
    ``targets`` are empty, so the order rule closes every position (``flatten``) and the
    account asks for nothing otherwise (:meth:`AccountBook.run_day`).
    """
    if pause.flatten:
        why = "the lab is paused (kill switch, flatten): close every position, buy nothing"
    else:
        why = "the lab is paused (kill switch): no new orders, positions kept"
    accounts: dict[str, AccountPlan] = {}
    for name, account in plan.accounts.items():
        payload: dict[str, Any] = {
            "account": name,
            "day": plan.day.isoformat(),
            "perception": account.decision.get("perception"),
            "decision": pause.mode,
            "why": why,
            "kill_switch": pause.to_dict(),
            "suspended_targets": [_target_dict(t) for t in account.targets],
            "genomes": [],
            "targets": [],
        }
        if name == "synthesis":
            payload["debate"] = None
        accounts[name] = replace(
            account, targets=(), decision=payload, pause=pause,
            decision_id=_decision_id(name, plan.day, payload),
        )  # fmt: skip
    return replace(plan, accounts=accounts, debate=None)


def _target_dict(target: TargetPosition) -> dict[str, Any]:
    return {
        "symbol": target.symbol,
        "weight": target.weight,
        "genome_id": target.genome_id,
        "style": target.style,
        "sources": dict(target.sources),
    }


# --------------------------------------------------------------------------- the day's bars
@dataclass(frozen=True, slots=True, kw_only=True)
class DayMarket:
    """The bars of trading day ``D`` the accounts execute on (read after the plan)."""

    day: date
    index: int
    intraday: bool
    open_time: datetime
    prev_close: Mapping[str, float]
    close: Mapping[str, float]
    bars: Mapping[str, tuple[Bar, ...]]
    snapshots: tuple[MarketSnapshot, ...]
    sigma: Mapping[str, float] = field(default_factory=dict)


def day_market(daily: Panel, day: date, minute: Panel | None = None) -> DayMarket:
    """Return the execution bars of ``day``.

    Parameters
    ----------
    daily:
        The daily panel.
    day:
        A trading day of it (not the first).
    minute:
        The day's own intraday bars (``simulators.synthetic.generate_intraday``, or a real
        file's bars of that session: :mod:`simulators.intraday_market`; any bar size from 1
        minute to 1 hour); ``None`` for daily-only data: the single daily bar of ``day`` is
        the fallback (see the module docstring).
    """
    index = day_index(daily, day)
    prev: dict[str, float] = {}
    close: dict[str, float] = {}
    for column, symbol in enumerate(daily.symbols):
        before = float(daily.close[index - 1, column])
        after = float(daily.close[index, column])
        if math.isfinite(before) and before > 0:
            prev[symbol] = before
        if math.isfinite(after) and after > 0:
            close[symbol] = after
        elif symbol in prev:
            close[symbol] = prev[symbol]
    bars: dict[str, tuple[Bar, ...]] = {}
    if minute is not None:
        source = minute
        bars_per_day = float(minute.n_bars)
    else:
        source = daily.slice_bars(index, index + 1)
        bars_per_day = 1.0
    for symbol in daily.symbols:
        column = source.column(symbol)
        if not np.isfinite(source.close[:, column]).all():
            continue
        bars[symbol] = tuple(bars_from_panel(source, symbol, day=day, prev_close=prev.get(symbol)))
    snapshots = tuple(MarketSnapshot.from_panel_row(source, row) for row in range(source.n_bars))
    first = source.index[0]
    step = (
        FREQUENCY_STEPS.get(minute.freq, pd.Timedelta(minutes=1))
        if minute is not None
        else pd.Timedelta(0)
    )
    open_time = (first - step).to_pydatetime()
    returns = np.diff(detmath.log(daily.close[max(0, index - 20) : index]), axis=0)
    sigma: dict[str, float] = {}
    for column, symbol in enumerate(daily.symbols):
        values = returns[:, column] if returns.size else np.array([])
        # The fill model's one volatility definition (the replay environment's too).
        sigma[symbol] = bar_volatility(daily_volatility(values), bars_per_day)
    return DayMarket(
        day=day, index=index, intraday=minute is not None, open_time=open_time,
        prev_close=prev, close=close, bars=bars, snapshots=snapshots, sigma=sigma,
    )  # fmt: skip


def benchmark_return(market: DayMarket) -> float:
    """Return the equal-weight close-to-close return of day ``D`` (the benchmark)."""
    moves = [
        market.close[s] / market.prev_close[s] - 1.0
        for s in sorted(market.prev_close)
        if s in market.close
    ]
    return float(np.mean(moves)) if moves else 0.0


def opening_requests(
    state: AccountState, weights: Mapping[str, float], market: DayMarket, lot: int
) -> list[tuple[str, str, int]]:
    """Return the ``(symbol, side, quantity units)`` orders an account asks for at the open.

    The rule of :meth:`arena.cycle.AccountBook.run_day` (the module docstring of
    :mod:`arena.cycle`): the difference between the target and the held quantity at the
    previous close, in whole lots, changes under ``MIN_TRADE_WEIGHT`` of the equity skipped
    unless they close a name no target asks for, sells capped at the sellable quantity, sells
    first. ``state`` is the books at the open of the day (after ``start_day``); request ``k``
    (from 1) is the governor's ``<account>-<day>-R<k:03d>``.
    """
    units = state.units
    qdigits = units.quantity_digits
    marks = {s: market.prev_close.get(s, market.close.get(s, 0.0)) for s in market.close}
    equity0 = money_to_float(mark_to_market(state, marks).equity, units.money_digits)
    held = {p.symbol for p in state.positions}
    requests: list[tuple[str, str, int]] = []
    for symbol in sorted(set(weights) | held):
        price = market.prev_close.get(symbol)
        if price is None or symbol not in market.bars:
            continue
        target_units = (
            quantity_from_float(weights.get(symbol, 0.0) * equity0 / price, qdigits) // lot
        ) * lot
        current = state.held(symbol)
        delta = target_units - current
        if abs(quantity_to_float(abs(delta), qdigits) * price) < MIN_TRADE_WEIGHT * equity0:
            if not (target_units == 0 and current > 0 and symbol not in weights):
                continue
        if delta < 0:
            quantity = min(-delta, state.sellable(symbol))
            if quantity < current:
                quantity = (quantity // lot) * lot
            if quantity > 0:
                requests.append((symbol, "sell", quantity))
        elif delta > 0:
            requests.append((symbol, "buy", delta))
    requests.sort(key=lambda r: (r[1] != "sell", r[0]))
    return requests


# --------------------------------------------------------------------------- one account
@dataclass(frozen=True, slots=True, kw_only=True)
class AccountDayResult:
    """One account's committed day (what the ledger got, plus figures for the report).

    ``attribution`` is the day's P&L per symbol and genome as committed
    (:func:`arena.ledger.attribute_day`); ``None`` on an ``already_committed`` result (read
    the committed rows with :meth:`arena.ledger.Ledger.attribution`).
    """

    account: str
    day: date
    already_committed: bool
    equity: float
    previous_equity: float
    trades: int
    wins: int
    losses: int
    orders: tuple[Order, ...] = ()
    fills: tuple[FillEvent, ...] = ()
    positions: tuple[PositionSnapshot, ...] = ()
    risk_events: tuple[RiskVeto, ...] = ()
    decision: Mapping[str, Any] = field(default_factory=dict)
    equity_snapshot: EquitySnapshot | None = None
    intraday_equity: tuple[tuple[datetime, float], ...] = ()
    incidents: tuple[Incident, ...] = ()
    manual_orders: tuple[ManualOrder, ...] = ()
    fill_keys: Mapping[str, str] = field(default_factory=dict)
    child_orders: tuple[ChildOrder, ...] = ()
    stale_fill_ids: tuple[str, ...] = ()
    liquidation_order_ids: tuple[str, ...] = ()
    attribution: DayAttribution | None = None


def liquidation_id(decision_id: str) -> str:
    """Return the decision id of the daily-loss stop's sells of the day of ``decision_id``."""
    return f"{decision_id}-liquidation"


def _liquidation_decision(plan: AccountPlan, result: AccountDayResult) -> DecisionRecord:
    stops = [e for e in result.risk_events if e.rule == "daily_loss"]
    payload = {
        "account": plan.account,
        "day": plan.day.isoformat(),
        "decision": "liquidate",
        "why": "daily-loss stop: the marked equity fell beyond the max daily loss",
        "plan_decision_id": plan.decision_id,
        "risk_events": [
            {"at": e.at.isoformat(), "reason": e.reason, "value": e.value, "limit": e.limit}
            for e in stops
        ],
        "orders": list(result.liquidation_order_ids),
    }
    return DecisionRecord(decision_id=liquidation_id(plan.decision_id), payload=payload)


def _to_veto(event: RiskEvent) -> RiskVeto:
    return RiskVeto(
        account=event.account,
        at=event.time.to_pydatetime(),
        order_id=event.order_id,
        rule=event.rule,
        reason=f"{event.kind}: {event.message}",
        value=event.value,
        limit=event.limit,
    )


class AccountBook:
    """One paper account: its books restored from the ledger, and its day.

    Crash-only: the constructor registers the account (once) and replays the ledger's fills
    (:meth:`arena.ledger.Ledger.restore_state`); there is no other start-up path.

    Parameters
    ----------
    ledger_path:
        The ledger file (``LabHome.ledger_db``).
    account:
        ``aggressive``, ``conservative`` or ``synthesis``.
    config:
        The arena configuration (starting capital, risk limits).
    rules:
        The market's broker rules.
    schedule:
        The execution policy (``rl_exec.policy.load_registered_policy``: an object with
        ``schedule_fraction``); ``None`` or a ``TwapPolicy`` slices by TWAP.
    """

    def __init__(
        self,
        ledger_path: str | Path,
        account: str,
        config: ArenaConfig,
        rules: BrokerRules,
        schedule: Any = None,
    ) -> None:
        self.account = account
        # TWAP is execute_parent's built-in default; passing None skips the observation work.
        self.schedule = None if type(schedule).__name__ == "TwapPolicy" else schedule
        self.config = config
        self.rules = rules
        self.ledger = Ledger(ledger_path)
        units = rules.units if rules.units else units_for_market(rules.market)
        opening = open_account(
            account,
            initial_cash=money_from_float(config.starting_capital, units.money_digits),
            units=units,
            t_plus_one=rules.t_plus_one,
        )
        self.ledger.ensure_account(opening)
        self.state: AccountState = self.ledger.restore_state(account)

    def close(self) -> None:
        """Close the ledger connection."""
        self.ledger.close()

    def last_committed_day(self) -> date | None:
        """Return the last committed day."""
        return self.ledger.last_committed_day(self.account)

    def is_committed(self, day: date) -> bool:
        """Return whether ``day`` is committed for this account."""
        return self.ledger.is_committed(self.account, day)

    def _history_before(self, day: date) -> list[tuple[date, EquitySnapshot]]:
        return [(d, e) for d, e in self.ledger.equity_history(self.account) if d < day]

    def equity_before(self, day: date) -> float:
        """Return the equity at the last close before ``day`` (the initial cash before any)."""
        digits = self.state.units.money_digits
        history = self._history_before(day)
        if history:
            return money_to_float(history[-1][1].equity, digits)
        return money_to_float(self.state.initial_cash, digits)

    def cash_and_positions(self) -> dict[str, Any]:
        """Return the current books as plain values (for status and tests)."""
        units = self.state.units
        return {
            "account": self.account,
            "day": None if self.state.day is None else self.state.day.isoformat(),
            "cash": money_to_float(self.state.cash, units.money_digits),
            "positions": {
                p.symbol: quantity_to_float(p.quantity, units.quantity_digits)
                for p in self.state.positions
            },
            "last_fill_seq": self.state.last_fill_seq,
        }

    def run_day(
        self,
        plan: AccountPlan,
        market: DayMarket,
        *,
        force: bool = False,
        conditions: DayConditions | None = None,
    ) -> AccountDayResult:
        """Trade ``plan`` on ``market`` and commit the day (see the module docstring).

        A committed day is left alone (``already_committed``) unless ``force``, which
        recomputes it from the books before it and replaces it in one transaction.
        ``conditions`` are the day's halts, feed and broker faults and protections
        (:class:`arena.intraday.DayConditions`; ``None``: the daily arena, no faults, every
        protection on).
        """
        day = plan.day
        if self.is_committed(day) and not force:
            return self._committed_result(day)
        start = self.ledger.restore_state(self.account, before=day) if force else self.state
        result, state = self._trade(start, plan, market, conditions)
        equity = result.equity_snapshot
        assert equity is not None
        # Who asked for each name: today's targets, else the holders at the previous close.
        attribution = attribute_day(
            previous=self.ledger.close_before(self.account, day),
            orders=result.orders,
            fills=result.fills,
            positions=result.positions,
            equity=equity,
            targets={t.symbol: t.shares for t in plan.targets},
        )
        result = replace(result, attribution=attribution)
        decisions = [DecisionRecord(decision_id=plan.decision_id, payload=plan.decision)]
        if result.liquidation_order_ids:
            decisions.append(_liquidation_decision(plan, result))
        write = self.ledger.replace_day if force else self.ledger.commit_day
        try:
            write(
                self.account,
                day,
                orders=result.orders,
                fills=result.fills,
                positions=result.positions,
                equity=equity,
                decisions=tuple(decisions),
                risk_events=result.risk_events,
                attribution=attribution,
            )
        except DayAlreadyCommitted:
            # Another process committed it meanwhile: the ledger's day wins.
            self.state = self.ledger.restore_state(self.account)
            return self._committed_result(day)
        self.state = self.ledger.restore_state(self.account)
        del state
        return result

    def _committed_result(self, day: date) -> AccountDayResult:
        equity = self.equity_before(day + timedelta(days=1))
        fills = tuple(self.ledger.fills(self.account, day))
        return AccountDayResult(
            account=self.account, day=day, already_committed=True, equity=equity,
            previous_equity=self.equity_before(day), trades=len(fills), wins=0, losses=0,
            fills=fills,
        )  # fmt: skip

    def _trade(
        self,
        state: AccountState,
        plan: AccountPlan,
        market: DayMarket,
        conditions: DayConditions | None = None,
    ) -> tuple[AccountDayResult, AccountState]:
        day = plan.day
        units = state.units
        qdigits = units.quantity_digits
        lot = self.rules.lot_units
        state = start_day(state, day)
        conditions = conditions or DayConditions()
        opening = mark_to_market(
            state, {s: market.prev_close.get(s, market.close.get(s, 0.0)) for s in market.close}
        )
        equity0 = money_to_float(opening.equity, units.money_digits)
        governor = RiskGovernor(self.config.risk, self.account)
        governor.start_day(dict(market.prev_close), start_equity=equity0 if equity0 > 0 else None)
        if conditions.protections.high_vol_tighten:
            governor.tighten_for_regime(conditions.force_regime or plan.regime, market.open_time)
        history = self._history_before(day)
        peak = max(
            [money_to_float(e.equity, units.money_digits) for _, e in history]
            + [money_to_float(state.initial_cash, units.money_digits), equity0]
        )
        cash = money_to_float(state.cash, units.money_digits)
        held = {p.symbol: quantity_to_float(p.quantity, qdigits) for p in state.positions}
        wanted = {t.symbol: t.weight for t in plan.targets}

        # Orders: differences to the targets at the previous close, sells first.
        requests = opening_requests(state, wanted, market, lot)
        pause = plan.pause
        if pause is not None:
            # Paused: no targets, so the requests above close every position; a plain pause
            # asks for none of them. The paused governor vetoes anything else.
            requests = _paused_requests(
                governor, pause, state, requests, market, equity0, self.rules
            )

        approved: list[tuple[str, str, int]] = []
        for k, (symbol, side, quantity) in enumerate(requests, start=1):
            price = market.prev_close[symbol]
            request = OrderRequest(
                order_id=f"{self.account}-{day.isoformat()}-R{k:03d}",
                account=self.account,
                symbol=symbol,
                side=side,  # type: ignore[arg-type]
                quantity=quantity_to_float(quantity, qdigits),
                reference_price=price,
                lot_size=quantity_to_float(lot, qdigits),
            )
            snapshot = AccountSnapshot(
                account=self.account,
                cash=cash,
                positions=held,
                day_start_equity=equity0 if equity0 > 0 else 1.0,
                peak_equity=peak if peak > 0 else 1.0,
            )
            prices = {s: market.prev_close[s] for s in set(held) | {symbol}}
            decision = governor.check(request, snapshot, prices, market.open_time)
            if not decision.approved:
                continue
            allowed = quantity_from_float(decision.quantity, qdigits)
            if side == "sell" and allowed >= quantity:
                allowed = quantity
            if allowed <= 0:
                continue
            approved.append((symbol, side, allowed))
            amount = quantity_to_float(allowed, qdigits)
            sign = 1.0 if side == "buy" else -1.0
            cash -= sign * amount * price
            held[symbol] = held.get(symbol, 0.0) + sign * amount
            if held[symbol] <= 1e-12:
                held.pop(symbol)

        # Every parent order works minute by minute, interleaved, with the intraday
        # protections (arena.intraday): the breaker and the daily-loss stop act causally.
        outcome = execute_day(
            state,
            approved,  # type: ignore[arg-type]
            market,
            self.rules,
            decision_id=plan.decision_id,
            liquidation_decision_id=liquidation_id(plan.decision_id),
            schedule=self.schedule,
            governor=governor,
            conditions=conditions,
            watched=sorted(set(held) | {p.symbol for p in state.positions}),
        )
        state = outcome.state
        if pause is not None and pause.flatten:
            _unfilled_closes(
                governor, pause, outcome.orders, plan.decision_id, market, qdigits, equity0
            )
        orders = list(outcome.orders)
        fills = list(outcome.fills)
        wins, losses = outcome.wins, outcome.losses
        valuation = mark_to_market(state, market.close)
        positions_snap, equity_snap = snapshots_from(state, valuation)
        result = AccountDayResult(
            account=self.account,
            day=day,
            already_committed=False,
            equity=money_to_float(equity_snap.equity, units.money_digits),
            previous_equity=self.equity_before(day),
            trades=len(fills),
            wins=int(wins),
            losses=int(losses),
            orders=tuple(orders),
            fills=tuple(fills),
            positions=positions_snap,
            risk_events=tuple(_to_veto(e) for e in governor.events),
            decision=plan.decision,
            equity_snapshot=equity_snap,
            intraday_equity=outcome.intraday_equity,
            incidents=outcome.incidents,
            manual_orders=outcome.manual_orders,
            fill_keys=dict(outcome.fill_keys),
            child_orders=outcome.child_orders,
            stale_fill_ids=outcome.stale_fill_ids,
            liquidation_order_ids=outcome.liquidation_order_ids,
        )
        return result, state


# --------------------------------------------------------------------------- kill switch
def _pause_note(pause: Pause) -> str:
    return f"kill switch: {pause.reason!r} (paused since {pause.since.isoformat()} by {pause.who})"


def _paused_requests(
    governor: RiskGovernor,
    pause: Pause,
    state: AccountState,
    closing: Sequence[tuple[str, str, int]],
    market: DayMarket,
    equity: float,
    rules: BrokerRules,
) -> list[tuple[str, str, int]]:
    """Pause the governor; return the paused day's requests (``closing``: the order rule's
    against empty targets) and record each position flatten cannot close at the open."""
    qdigits = state.units.quantity_digits
    marks = {s: market.prev_close.get(s, market.close.get(s, 0.0)) for s in market.close}
    values = {
        p.symbol: quantity_to_float(p.quantity, qdigits) * marks.get(p.symbol, 0.0)
        for p in state.positions
    }
    scale = equity if equity > 0 else 1.0
    exposure = math.fsum(abs(v) for v in values.values()) / scale
    what = "closing every position, no buys" if pause.flatten else "no new orders, positions kept"
    governor.pause(
        market.open_time,
        reason=f"{_pause_note(pause)}; {what}; {len(values)} position(s) held at the open",
        flatten=pause.flatten,
        exposure=exposure,
    )
    if not pause.flatten:
        return []
    asked = {symbol: quantity for symbol, side, quantity in closing if side == "sell"}
    for position in state.positions:
        symbol, held = position.symbol, position.quantity
        selling = asked.get(symbol, 0)
        if selling >= held:
            continue
        sellable = state.sellable(symbol)
        if symbol not in market.bars or symbol not in market.prev_close:
            why = "no bar today (halted, suspended or no data)"
        elif sellable < held:
            why = (
                f"{quantity_to_float(sellable, qdigits):g} of "
                f"{quantity_to_float(held, qdigits):g} sellable today (T+1)"
            )
        else:
            why = f"whole lots of {quantity_to_float(rules.lot_units, qdigits):g} only"
        governor.pause(
            market.open_time,
            reason=(
                f"{symbol}: {quantity_to_float(held - selling, qdigits):g} of "
                f"{quantity_to_float(held, qdigits):g} not closed today, {why}, the next "
                f"paused day closes it; {_pause_note(pause)}"
            ),
            flatten=True,
            exposure=abs(values.get(symbol, 0.0)) / scale,
            symbol=symbol,
        )
    return [request for request in closing if request[1] == "sell"]


def _unfilled_closes(
    governor: RiskGovernor,
    pause: Pause,
    orders: Sequence[Order],
    decision_id: str,
    market: DayMarket,
    qdigits: int,
    equity: float,
) -> None:
    """Record each closing sell of a flattening day that did not fill in full."""
    at = market.snapshots[-1].time if market.snapshots else market.open_time
    for order in orders:
        if order.decision_id != decision_id or order.side != "sell":
            continue
        if order.filled >= order.quantity:
            continue
        price = market.close.get(order.symbol, 0.0)
        left = quantity_to_float(order.quantity - order.filled, qdigits)
        governor.pause(
            at,
            reason=(
                f"{order.symbol}: sold {quantity_to_float(order.filled, qdigits):g} of "
                f"{quantity_to_float(order.quantity, qdigits):g} ({order.status}"
                f"{', ' + order.reason if order.reason else ''}), the next paused day closes "
                f"the rest; {_pause_note(pause)}"
            ),
            flatten=True,
            exposure=left * price / (equity if equity > 0 else 1.0),
            symbol=order.symbol,
        )


# --------------------------------------------------------------------------- figures
def account_metrics(
    equity: Sequence[float],
    initial: float,
    wins: int,
    losses: int,
    trades: int,
    *,
    periods_per_year: float,
) -> dict[str, float | int | None]:
    """Return the report figures of an account from its close equities (oldest first).

    ``return`` is the last day's, ``max_drawdown`` over the whole history (from the initial
    capital), ``sharpe`` the annualised mean / std of daily returns
    (:func:`simulators.metrics.annualised_sharpe` over the market's ``periods_per_year``
    trading days: 365 on crypto; 0 with fewer than two),
    ``win_rate`` the share of the day's closing sells that made money (``None`` without any),
    and ``score`` = ``clip(50 + 15 * sharpe - 100 * max_drawdown + 20 * (win_rate - 0.5))``
    in ``[0, 100]``.
    """
    curve = np.asarray([initial, *equity], dtype=float)
    returns = curve[1:] / curve[:-1] - 1.0 if curve.size > 1 else np.array([])
    last = float(returns[-1]) if returns.size else 0.0
    peak = np.maximum.accumulate(curve)
    drawdown = float(np.max(1.0 - curve / peak)) if curve.size else 0.0
    sharpe = annualised_sharpe(returns, periods_per_year)
    closed = wins + losses
    win_rate = wins / closed if closed else None
    score = 50.0 + 15.0 * sharpe - 100.0 * drawdown
    if win_rate is not None:
        score += 20.0 * (win_rate - 0.5)
    return {
        "equity": float(curve[-1]),
        "return": last,
        "trades": int(trades),
        "win_rate": win_rate,
        "max_drawdown": drawdown,
        "sharpe": sharpe,
        "score": float(min(max(score, 0.0), 100.0)),
    }
