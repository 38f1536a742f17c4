"""The arena's review stage: every genome's paper day against its shadow backtest.

Plain Python (no Ray, no MLflow), run by the driver after the accounts committed day ``D``
(:func:`arena.day.run_arena_day`); the records are what the closed loop (promotion and
demotion on the paper record) reads. Everything is re-derived from the ledger and the market
data, so a review lost in a crash between the day's commit and its own write is simply run
again (crash-only). One entry: :func:`review_day`.

For each account and each genome whose **sleeve** ``s > 0`` on ``D`` (the plan's decision:
``payload["genomes"]`` of aggressive and conservative, ``payload["sleeves"]`` of synthesis,
the aggressive sleeves at the synthesis budget before the judge scaled them), with
``E = equity(D-1)`` the account's equity at the close of ``D-1`` (the ledger's), one
:class:`arena.ledger.GenomeDay`:

``allocation = s x E``
    The money the genome trades with today.
``pnl``
    The genome's attributed P&L of ``D`` (its ``attribution`` row, 0 without one).
``paper_return = pnl / allocation``
``expected_return``, ``expected_pnl = allocation x expected_return``
    The **shadow backtest**: the genome backtested by the plan's code path
    (``compile_and_backtest`` with the arena's default settings, as
    :func:`arena.plan.read_genome`) over the plan's daily bars **plus the bar of D**: the
    :data:`arena.plan.HISTORY_BARS` bars before ``D`` and ``D`` itself, trading from the
    plan's start (the last :data:`arena.plan.TRADE_BARS` bars before ``D``), so its books at
    the close of ``D-1`` are the ones the plan read. ``expected_return`` is its equity return
    on ``D`` (``equity[D] / equity[D-1] - 1``); each genome is compiled and backtested once a
    day, whatever the number of accounts trading it.

The difference ``pnl - expected_pnl`` is split into four parts (positive = the paper account
did better than the backtest), with ``w`` the genome's share of a row (the ``genomes`` shares
stored with each fill and order; for a request, the shares of today's target for the name,
else of the previous close's position, the attribution's rule):

``execution_cost``
    Over the day's fills: ``w x (side x (open_D - price) x quantity - commission - taxes)``,
    ``side`` +1 for a buy and -1 for a sell, ``open_D`` the open of the **daily** bar of ``D``
    (the price the daily backtest fills at). A buy above the open and every fee are negative.
``governor_cuts``
    Over the orders the risk governor cut or vetoed at the open (a request with a ``clip`` or
    ``veto`` event): ``w x side x (approved - requested) x (close_D - close_D-1)``, per unit of
    quantity. A buy cut on a rising name is negative (the account holds less of the gain than
    it asked for); a sell cut on a falling one too. The requested quantity is not stored: it is
    re-derived by the account's own order rule (:func:`opening_requests`, the targets against
    the books at the previous close), and checked one for one against what is stored: every
    uncut request has its order with the same quantity, every cut one its events and an order
    no larger (a clip the unit rounding undid cuts nothing), every vetoed one its events and no
    order; any disagreement raises :class:`ReviewError` rather than guessing.
``debate_scaling``
    Synthesis only (0 elsewhere): over the names of the debated targets and of the aggressive
    proposal at the synthesis budget, ``(debated - undebated weight of the genome's part) x E x
    (close_D / close_D-1 - 1)``, the genome's part of a weight being weight x its share of the
    target's sources.
``residual = (pnl - expected_pnl) - execution_cost - governor_cuts - debate_scaling``
    What the three do not explain: the arena trades at ``D`` to the backtest's positions of
    ``D-1`` while the backtest executes its own ``D-1`` signals at the open of ``D`` (one bar of
    timing); intraday fills against the open (in ``execution_cost``) but the path of the
    minutes is not the backtest's; whole lots and ``MIN_TRADE_WEIGHT`` skips; the name cap and
    ``max_positions`` of the blend and a genome's weights scaled to a gross of at most 1;
    names the backtest holds but the account does not (or holds for other genomes); exits on
    a genome's behalf of names it no longer asks for; the intraday protections (breaker
    freeze, daily-loss liquidation) and unfilled orders; equity drift between the plan's
    sizes and ``E``.

Execution quality, per genome day: ``avg_slippage_bps`` the share-weighted fill shortfall
against the **arrival price** (the open of the day's first execution bar: the first minute
bar, the daily bar on daily-only data), in bps of the arrival value, positive = a cost (0
without fills); ``fill_ratio`` the share-weighted filled over ordered quantity of the orders
carrying the genome (1.0 without an order); ``order_reject_count`` those orders ending
rejected or with nothing filled; ``risk_block_count`` the risk events on the requests
carrying the genome; ``turnover`` the share-weighted traded notional over the allocation.

Money: the account currency as float; the money figures are rounded to
:data:`arena.ledger.GENOME_DAY_GRID`, on which the four parts sum to the difference exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from alphaloop.home import LabHome
from arena.book import start_day
from arena.bootstrap import ArenaGenome, arena_genomes, bootstrap_genomes
from arena.debate import TargetPosition
from arena.ledger import (
    GenomeDay,
    GenomeShares,
    Ledger,
    OrderRecord,
    RiskEventRecord,
    to_grid,
)
from arena.market import ArenaData, DayMarket, day_index
from arena.money import money_to_float, quantity_to_float
from arena.personas import PERSONA_NAMES
from arena.plan import HISTORY_BARS, TRADE_BARS
from arena.rules import BrokerRules
from arena.trade import opening_requests
from genome.cache import IndicatorCache
from genome.compile import compile_and_backtest
from genome.genes import Genome
from simulators.bars import Panel

__all__ = [
    "GenomeDay",
    "Request",
    "ReviewError",
    "Sleeve",
    "day_sleeves",
    "opening_requests",
    "review_day",
    "shadow_returns",
]


class ReviewError(RuntimeError):
    """The review cannot be derived: an unknown genome, or stored records that disagree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleeve:
    """A genome trading in an account on a day, with its share of the account's equity."""

    genome_id: str
    source: str
    sleeve: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """An order the account asked the risk governor for at the open, and what it allowed.

    ``requested`` and ``approved`` are quantity units (``approved`` 0 for a veto);
    ``events`` the ``clip``/``veto`` events on it; ``shares`` the genomes it trades for.
    """

    request_id: str
    symbol: str
    side: str
    requested: int
    approved: int
    events: tuple[RiskEventRecord, ...]
    shares: GenomeShares

    @property
    def cut(self) -> bool:
        """Whether the governor cut or vetoed it."""
        return bool(self.events)


# --------------------------------------------------------------------------- the plan
def _plan_decision(ledger: Ledger, account: str, day: date) -> tuple[str, dict[str, Any]] | None:
    """Return the plan's decision id and payload of the day (not the daily-loss stop's)."""
    plans = [
        (decision_id, payload)
        for decision_id, payload in ledger.decisions(account, day).items()
        if payload.get("decision") != "liquidate"
    ]
    if len(plans) > 1:
        raise ReviewError(
            f"{account} {day}: {len(plans)} plan decisions ({[d for d, _ in plans]}), expected 1"
        )
    return plans[0] if plans else None


def _targets(payload: Mapping[str, Any]) -> dict[str, TargetPosition]:
    out = {}
    for item in payload.get("targets") or ():
        target = TargetPosition(
            symbol=str(item["symbol"]), weight=float(item["weight"]),
            genome_id=str(item["genome_id"]), style=str(item.get("style", "")),
            sources=tuple(sorted(dict(item.get("sources") or {}).items())),
        )  # fmt: skip
        out[target.symbol] = target
    return out


def day_sleeves(ledger: Ledger, account: str, day: date) -> tuple[Sleeve, ...]:
    """Return the genomes with a sleeve > 0 in ``account`` on ``day``, by genome id.

    Read from the plan's stored decision: ``genomes`` (each with its source), else
    ``sleeves`` (synthesis: the source is the one the other accounts' plans recorded). A day
    planned before sleeves were recorded has none.
    """
    plan = _plan_decision(ledger, account, day)
    if plan is None:
        return ()
    payload = plan[1]
    out: dict[str, Sleeve] = {}
    if payload.get("genomes") is not None:
        for item in payload["genomes"]:
            sleeve = float(item["sleeve"])
            if sleeve > 0:
                gid = str(item["genome_id"])
                out[gid] = Sleeve(genome_id=gid, source=str(item["source"]), sleeve=sleeve)
    elif payload.get("sleeves"):
        sources: dict[str, str] = {}
        for other in PERSONA_NAMES:
            found = None if other == account else _plan_decision(ledger, other, day)
            for item in (found[1].get("genomes") or ()) if found else ():
                sources.setdefault(str(item["genome_id"]), str(item["source"]))
        for gid, value in payload["sleeves"].items():
            if float(value) > 0:
                out[gid] = Sleeve(
                    genome_id=gid, source=sources.get(gid, "unknown"), sleeve=float(value)
                )
    return tuple(out[gid] for gid in sorted(out))


# --------------------------------------------------------------------------- shadow backtest
def shadow_returns(genomes: Mapping[str, Genome], daily: Panel, day: date) -> dict[str, float]:
    """Return each genome's shadow-backtest equity return on ``day`` (module docstring).

    The bars are the plan's (the :data:`HISTORY_BARS` before ``day``) and the bar of ``day``;
    trading starts where the plan's backtest started. One indicator cache serves every genome
    and each genome is backtested once. A history too short for the plan's backtest (fewer
    than two bars to trade) gives 0, as the plan then reads no weights.
    """
    index = day_index(daily, day)
    first = max(0, index - HISTORY_BARS)
    panel = daily.slice_bars(first, index + 1)
    before = index - first  # the plan's bars: those before D
    start = max(0, before - TRADE_BARS)
    out: dict[str, float] = {}
    if before - start < 2:
        return dict.fromkeys(genomes, 0.0)
    cache = IndicatorCache(panel)
    for genome_id in sorted(genomes):
        result = compile_and_backtest(genomes[genome_id], panel, cache=cache, start=start)
        equity = result.equity.to_numpy(dtype=float)
        out[genome_id] = float(equity[-1] / equity[-2] - 1.0) if equity[-2] > 0 else 0.0
    return out


# --------------------------------------------------------------------------- requests


def _requests(
    ledger: Ledger,
    account: str,
    day: date,
    decision_id: str,
    targets: Mapping[str, TargetPosition],
    orders: Sequence[OrderRecord],
    market: DayMarket,
    rules: BrokerRules,
) -> list[Request]:
    """Re-derive the day's requests and check them one for one against the stored records."""
    where = f"review {account} {day.isoformat()}"
    state = start_day(ledger.restore_state(account, before=day), day)
    previous = ledger.close_before(account, day)
    weights = {symbol: target.weight for symbol, target in targets.items()}
    asked = opening_requests(state, weights, market, rules.lot_units)
    prefix = f"{account}-{day.isoformat()}-R"
    events: dict[str, list[RiskEventRecord]] = {}
    for event in ledger.risk_events(account, day):
        # Only the checks at the open name an order (a request); freezes and triggers do not.
        if event.order_id:
            events.setdefault(event.order_id, []).append(event)
    planned = [o for o in orders if o.decision_id == decision_id]
    by_symbol = {o.symbol: o for o in planned}
    if len(by_symbol) != len(planned):
        raise ReviewError(f"{where}: two planned orders for one name")
    out = []
    for k, (symbol, side, quantity) in enumerate(asked, start=1):
        request_id = f"{prefix}{k:03d}"
        own = tuple(events.pop(request_id, ()))
        order = by_symbol.pop(symbol, None)
        approved = 0 if order is None else order.quantity
        if order is not None and order.side != side:
            raise ReviewError(f"{where}: {request_id} asks to {side} {symbol}, its order sides")
        # A clip may cut nothing: the governor's float quantity can round back to the request
        # (a sell whose reducing part covers it); it is an event, not a cut.
        if own and approved > quantity:
            raise ReviewError(
                f"{where}: {request_id} ({side} {quantity} {symbol}) has risk events but its "
                f"order is for more, {approved}"
            )
        if not own and approved != quantity:
            raise ReviewError(
                f"{where}: {request_id} ({side} {quantity} {symbol}) has no risk event but "
                f"its order is for {approved}: the stored orders do not follow the order rule"
            )
        target = targets.get(symbol)
        shares = target.shares if target is not None else previous.shares_of(symbol)
        out.append(
            Request(
                request_id=request_id, symbol=symbol, side=side, requested=quantity,
                approved=approved, events=own, shares=shares,
            )
        )  # fmt: skip
    stray = sorted(e for e in events if e.startswith(prefix))
    if by_symbol or stray:
        raise ReviewError(
            f"{where}: stored orders {sorted(by_symbol)} / risk events on {stray} match no "
            "request of the order rule"
        )
    return out


# --------------------------------------------------------------------------- review
def review_day(
    ledger: Ledger,
    day: date,
    *,
    daily: Panel,
    market: DayMarket,
    rules: BrokerRules,
    genomes: Mapping[str, Genome],
    accounts: Sequence[str] = PERSONA_NAMES,
) -> tuple[GenomeDay, ...]:
    """Return the genome days of ``accounts`` on the committed ``day`` (module docstring).

    Parameters
    ----------
    ledger:
        The ledger holding the committed day (read only).
    day:
        The trading day.
    daily:
        The daily panel (later bars are not read: the shadow backtest stops at ``day``).
    market:
        The day's execution bars, as the accounts traded them
        (:meth:`arena.market.ArenaData.day_market`: the minute bars when the data has them).
    rules:
        The market's broker rules (lot size of the order rule).
    genomes:
        The genomes by id; it must hold every genome with a sleeve (see
        :func:`day_sleeves`).
    accounts:
        The accounts to review.

    Raises
    ------
    ReviewError
        If a genome with a sleeve is missing from ``genomes``, or the stored orders and risk
        events do not follow from the plan (see ``governor_cuts``).
    """
    sleeves = {account: day_sleeves(ledger, account, day) for account in accounts}
    needed = sorted({s.genome_id for items in sleeves.values() for s in items})
    missing = [gid for gid in needed if gid not in genomes]
    if missing:
        raise ReviewError(f"review {day.isoformat()}: unknown genomes {missing}")
    expected = shadow_returns({gid: genomes[gid] for gid in needed}, daily, day)
    index = day_index(daily, day)
    opens = {
        symbol: float(daily.open[index, column]) for column, symbol in enumerate(daily.symbols)
    }
    out: list[GenomeDay] = []
    for account in accounts:
        if sleeves[account]:
            out.extend(
                _review_account(
                    ledger, account, day, sleeves[account], expected, opens, market, rules
                )
            )
    return tuple(out)


def _add(totals: dict[str, float], shares: GenomeShares, amount: float) -> None:
    for genome_id, share in shares:
        totals[genome_id] = totals.get(genome_id, 0.0) + share * amount


def _review_account(
    ledger: Ledger,
    account: str,
    day: date,
    sleeves: Sequence[Sleeve],
    expected: Mapping[str, float],
    opens: Mapping[str, float],
    market: DayMarket,
    rules: BrokerRules,
) -> list[GenomeDay]:
    plan = _plan_decision(ledger, account, day)
    assert plan is not None  # there are sleeves
    decision_id, payload = plan
    units = ledger.opening_state(account).units
    money, qdigits = units.money_digits, units.quantity_digits
    equity = money_to_float(ledger.close_before(account, day).equity, money)
    attributed = {r.genome_id: r.pnl_float for r in ledger.attribution(account, start=day, end=day)}
    targets = _targets(payload)
    orders = ledger.orders(account, day)

    execution: dict[str, float] = {}
    shortfall: dict[str, float] = {}
    arrival_value: dict[str, float] = {}
    traded: dict[str, float] = {}
    fill_shares = ledger.fill_genomes(account, day)
    for fill in ledger.fills(account, day):
        shares = fill_shares.get(fill.fill_id, ())
        quantity = quantity_to_float(fill.quantity, qdigits)
        price = float(fill.price)
        side = 1.0 if fill.side == "buy" else -1.0
        open_price = opens.get(fill.symbol, math.nan)
        open_price = open_price if math.isfinite(open_price) and open_price > 0 else price
        fees = money_to_float(fill.commission + fill.taxes, money)
        _add(execution, shares, side * (open_price - price) * quantity - fees)
        bars = market.bars.get(fill.symbol)
        arrival = float(bars[0].open) if bars else open_price
        _add(shortfall, shares, side * (price - arrival) * quantity)
        _add(arrival_value, shares, arrival * quantity)
        _add(traded, shares, money_to_float(fill.notional, money))

    ordered: dict[str, float] = {}
    filled: dict[str, float] = {}
    rejects: dict[str, int] = {}
    for order in orders:
        _add(ordered, order.genomes, float(order.quantity))
        _add(filled, order.genomes, float(order.filled))
        if order.status == "rejected" or order.filled == 0:
            for genome_id, _ in order.genomes:
                rejects[genome_id] = rejects.get(genome_id, 0) + 1

    cuts: dict[str, float] = {}
    blocks: dict[str, int] = {}
    for request in _requests(ledger, account, day, decision_id, targets, orders, market, rules):
        if not request.cut:
            continue
        move = market.close.get(request.symbol, 0.0) - market.prev_close.get(request.symbol, 0.0)
        side = 1.0 if request.side == "buy" else -1.0
        missed = quantity_to_float(request.approved - request.requested, qdigits)
        _add(cuts, request.shares, side * missed * move)
        for genome_id, _ in request.shares:
            blocks[genome_id] = blocks.get(genome_id, 0) + len(request.events)

    scaling = _debate_scaling(payload, targets, equity, market)

    out = []
    for item in sleeves:
        gid = item.genome_id
        allocation = item.sleeve * equity
        if not allocation > 0:
            continue  # an account without equity trades nothing
        pnl = to_grid(attributed.get(gid, 0.0))
        expected_pnl = to_grid(allocation * expected[gid])
        execution_cost = to_grid(execution.get(gid, 0.0))
        governor_cuts = to_grid(cuts.get(gid, 0.0))
        debate_scaling = to_grid(scaling.get(gid, 0.0))
        explained = execution_cost + governor_cuts + debate_scaling
        value = arrival_value.get(gid, 0.0)
        wanted = ordered.get(gid, 0.0)
        out.append(
            GenomeDay(
                account=account, day=day, genome_id=gid, source=item.source,
                sleeve=item.sleeve, allocation=allocation, pnl=pnl,
                paper_return=pnl / allocation, expected_return=expected[gid],
                expected_pnl=expected_pnl, execution_cost=execution_cost,
                governor_cuts=governor_cuts, debate_scaling=debate_scaling,
                residual=(pnl - expected_pnl) - explained,
                avg_slippage_bps=1e4 * shortfall.get(gid, 0.0) / value if value > 0 else 0.0,
                fill_ratio=min(1.0, filled.get(gid, 0.0) / wanted) if wanted > 0 else 1.0,
                order_reject_count=rejects.get(gid, 0), risk_block_count=blocks.get(gid, 0),
                turnover=traded.get(gid, 0.0) / allocation,
            )
        )  # fmt: skip
    return out


def _debate_scaling(
    payload: Mapping[str, Any],
    targets: Mapping[str, TargetPosition],
    equity: float,
    market: DayMarket,
) -> dict[str, float]:
    """Return each genome's ``debate_scaling`` (0 for a plan without a debate)."""
    debate = payload.get("debate")
    if not isinstance(debate, Mapping) or not debate.get("proposal"):
        return {}
    ratio = float(payload["budget_ratio"])
    undebated: dict[str, dict[str, float]] = {}
    for item in debate["proposal"]:
        target = TargetPosition(**item)
        parts = undebated.setdefault(target.symbol, {})
        _add(parts, target.shares, target.weight * ratio)
    debated: dict[str, dict[str, float]] = {}
    for symbol, target in targets.items():
        _add(debated.setdefault(symbol, {}), target.shares, target.weight)
    out: dict[str, float] = {}
    for symbol in sorted(set(undebated) | set(debated)):
        before, after = market.prev_close.get(symbol), market.close.get(symbol)
        move = after / before - 1.0 if before and after else 0.0
        now, then = debated.get(symbol, {}), undebated.get(symbol, {})
        for genome_id in sorted(set(now) | set(then)):
            change = now.get(genome_id, 0.0) - then.get(genome_id, 0.0)
            out[genome_id] = out.get(genome_id, 0.0) + change * equity * move
    return out


def _genomes_by_id(
    home: LabHome, chosen: Sequence[ArenaGenome] | None, needed: set[str]
) -> dict[str, Genome]:
    """Return the genomes of ``needed`` ids: the day's, else the arena's, bootstrap or pool."""
    found = {item.genome.id: item.genome for item in chosen or ()}
    if needed - set(found):
        # A review re-derived after a crash: the genomes the plan read, looked up by id.
        for item in [*arena_genomes(home), *bootstrap_genomes()]:
            found.setdefault(item.genome.id, item.genome)
    missing = sorted(needed - set(found))
    if missing and home.gene_pool_db.exists():
        from evolution.store import GenePoolStore

        with GenePoolStore(home.gene_pool_db) as store:
            for genome_id in missing:
                stored = store.genome(genome_id)
                if stored is not None and stored["genome_id"] == genome_id:
                    found[genome_id] = Genome.from_json(str(stored["genome_json"]))
    return {genome_id: found[genome_id] for genome_id in sorted(needed) if genome_id in found}


def review_committed_day(
    home: LabHome,
    data: ArenaData,
    day: date,
    *,
    market: DayMarket | None = None,
    genomes: Sequence[ArenaGenome] | None = None,
) -> list[GenomeDay]:
    """Write the genome days of every account committed but not reviewed on ``day``.

    Crash-only: the review is derived from the ledger and the data, so the same call
    finishes a review a crash interrupted. ``market`` is the day's execution bars (rebuilt
    with the minute bars when it has none and the data has them); ``genomes`` the day's
    genomes (looked up by id in the arena's, the bootstrap set and the gene pool otherwise).

    Returns
    -------
    list of GenomeDay
        Every stored genome day of ``day``, by (account, genome id).
    """
    with Ledger(home.ledger_db) as ledger:
        pending = [
            name
            for name in PERSONA_NAMES
            if ledger.is_committed(name, day) and not ledger.is_reviewed(name, day)
        ]
        if pending:
            if market is None or (not market.intraday and data.has_intraday):
                market = data.day_market(day)
            needed = {s.genome_id for name in pending for s in day_sleeves(ledger, name, day)}
            rows = review_day(
                ledger, day, daily=data.daily, market=market, rules=data.rules(),
                genomes=_genomes_by_id(home, genomes, needed), accounts=pending,
            )  # fmt: skip
            for name in pending:
                ledger.write_genome_days(name, day, [r for r in rows if r.account == name])
        return ledger.genome_days(start=day, end=day)
