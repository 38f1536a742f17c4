"""Per-genome P&L attribution: the exact split, arena days, --force, verify."""

from __future__ import annotations

import json
import pickle
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from arena.account import AccountBook
from arena.book import InvariantViolation
from arena.debate import DebateRecord, RegimeStats, TargetPosition, run_debate
from arena.events import OrderFilled
from arena.ledger import (
    UNATTRIBUTED,
    DayAttribution,
    DayClose,
    EquitySnapshot,
    Ledger,
    LedgerError,
    PositionSnapshot,
    attribute_day,
    split_minor,
)
from arena.market import DayMarket, day_market
from arena.perceive import AssetRisk, Perception, RegimeReading
from arena.personas import load_arena_config
from arena.plan import AccountPlan
from arena.rules import BrokerRules
from arena.trade import AccountDayResult

DAY = date(2024, 3, 5)
AT = datetime(2024, 3, 5, 15, tzinfo=UTC)


# --------------------------------------------------------------------------- the pure split
def test_split_minor_uneven_shares_parts_sum_exactly() -> None:
    shares = (("a", 1 / 3), ("b", 1 / 3), ("c", 1 / 3))
    assert split_minor(100, shares) == (("a", 34), ("b", 33), ("c", 33))
    odd = (("g1", 0.1), ("g2", 0.2), ("g3", 0.3), ("g4", 0.4))
    for amount in (0, 1, 7, 99, 12_345_679, -1, -50_001, 10**15 + 3):
        parts = split_minor(amount, odd)
        assert sum(p for _, p in parts) == amount
        for (_, share), (_, part) in zip(odd, parts, strict=True):
            assert abs(part - amount * share) < 1  # each part within one minor unit


def test_split_minor_largest_remainder_wins_the_leftover_unit() -> None:
    # Quotas 6.5 / 3.9 / 0.6 of 11: floors 6, 3, 0 leave 2 units for the remainders .9 and .6.
    assert split_minor(11, (("a", 6.5 / 11), ("b", 3.9 / 11), ("c", 0.6 / 11))) == (
        ("a", 6),
        ("b", 4),
        ("c", 1),
    )


def test_split_minor_tied_remainders_go_to_smaller_genome_id() -> None:
    assert split_minor(1, (("a", 0.5), ("b", 0.5))) == (("a", 1), ("b", 0))
    assert split_minor(5, (("x", 1 / 3), ("y", 1 / 3), ("z", 1 / 3))) == (
        ("x", 2),
        ("y", 2),
        ("z", 1),
    )


def test_split_minor_negative_pnl_mirrors_the_gain() -> None:
    shares = (("a", 0.25), ("b", 0.25), ("c", 0.5))
    for amount in (1, 3, 101, 987_654):
        gain = split_minor(amount, shares)
        assert split_minor(-amount, shares) == tuple((g, -p) for g, p in gain)
    assert split_minor(-1, (("a", 0.5), ("b", 0.5))) == (("a", -1), ("b", 0))


def test_split_minor_no_shares_goes_to_unattributed() -> None:
    assert split_minor(-42, ()) == ((UNATTRIBUTED, -42),)


def test_split_minor_invalid_shares_raise() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        split_minor(10, (("a", 0.5), ("b", 0.4)))
    with pytest.raises(ValueError, match="sorted"):
        split_minor(10, (("b", 0.5), ("a", 0.5)))
    with pytest.raises(ValueError, match="> 0"):
        split_minor(10, (("a", 1.0), ("b", 0.0)))
    with pytest.raises(TypeError):
        split_minor(10.0, (("a", 1.0),))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- attribute_day
def _fill(seq: int, symbol: str, side: str, quantity: int, price: str, fee: int) -> OrderFilled:
    notional = quantity * int(Decimal(price) * 100)
    return OrderFilled(
        account="acc", at=AT, order_id=f"acc-O{seq:08d}", fill_id=f"acc-F{seq:08d}",
        fill_seq=seq, day=DAY, symbol=symbol, side=side, quantity=quantity,  # type: ignore[arg-type]
        price=Decimal(price), notional=notional, commission=fee, taxes=0, remaining=0,
    )  # fmt: skip


def _position(symbol: str, quantity: int, price: str) -> PositionSnapshot:
    value = quantity * int(Decimal(price) * 100)
    return PositionSnapshot(
        symbol=symbol, quantity=quantity, sellable=quantity, cost_basis=value,
        price=Decimal(price), value=value,
    )  # fmt: skip


def _previous() -> DayClose:
    held = (_position("OLD", 10, "50.00"), _position("RAW", 4, "25.00"))
    cash = 100_000
    return DayClose(
        day=DAY - timedelta(days=1),
        cash=cash,
        equity=cash + sum(p.value for p in held),
        positions=held,
        # OLD was bought for g1 and g2; RAW came from a schema-1 day (no genome).
        genomes=(("OLD", (("g1", 0.5), ("g2", 0.5))),),
    )


def test_attribute_day_pnl_by_rule_sums_to_equity_change() -> None:
    previous = _previous()
    fills = (
        _fill(1, "OLD", "sell", 10, "51.00", 3),  # exit: sold for 51.00, was marked 50.00
        _fill(2, "NEW", "buy", 20, "10.00", 2),  # new name for g1 (30%) and g3 (70%)
        _fill(3, "ODD", "buy", 1, "7.00", 1),  # bought, no target names it
    )
    closing = (
        _position("NEW", 20, "10.50"),
        _position("ODD", 1, "7.10"),
        _position("RAW", 4, "24.00"),
    )
    cash = previous.cash + 51_000 - 3 - 20_000 - 2 - 700 - 1
    equity = EquitySnapshot(
        cash=cash, market_value=sum(p.value for p in closing),
        equity=cash + sum(p.value for p in closing), realised_pnl=0, commission_paid=0,
        taxes_paid=0,
    )  # fmt: skip
    result = attribute_day(
        previous=previous, orders=(), fills=fills, positions=closing, equity=equity,
        targets={"NEW": (("g1", 0.3), ("g3", 0.7))},
    )  # fmt: skip
    by_symbol = {s.symbol: s for s in result.symbols}
    assert by_symbol["OLD"].pnl == 51_000 - 3 - 50_000 and by_symbol["OLD"].basis == "position"
    assert by_symbol["OLD"].parts == (("g1", 499), ("g2", 498))  # tie: smaller id gets the unit
    assert by_symbol["NEW"].pnl == 21_000 - 20_000 - 2 and by_symbol["NEW"].basis == "target"
    assert by_symbol["NEW"].parts == (("g1", 299), ("g3", 699))
    assert by_symbol["ODD"].parts == ((UNATTRIBUTED, 710 - 700 - 1),)
    assert by_symbol["RAW"].parts == ((UNATTRIBUTED, -400),)  # held, migrated: no genome
    assert result.pnl == equity.equity - previous.equity
    assert sum(p for _, p in result.by_genome()) == result.pnl
    assert dict(result.by_genome()) == {"g1": 798, "g2": 498, "g3": 699, UNATTRIBUTED: -391}
    assert result.shares_of("OLD") == (("g1", 0.5), ("g2", 0.5))
    assert result.shares_of("NEW") == (("g1", 0.3), ("g3", 0.7))
    assert pickle.loads(pickle.dumps(result)) == result  # it crosses Ray in the day result


def test_attribute_day_cash_moved_outside_fills_raises() -> None:
    previous = _previous()
    equity = EquitySnapshot(
        cash=previous.cash + 1, market_value=previous.equity - previous.cash,
        equity=previous.equity + 1, realised_pnl=0, commission_paid=0, taxes_paid=0,
    )  # fmt: skip
    with pytest.raises(InvariantViolation, match="cash moved outside the fills"):
        attribute_day(
            previous=previous, orders=(), fills=(), positions=previous.positions,
            equity=equity, targets={},
        )  # fmt: skip


def test_day_attribution_not_summing_to_equity_change_raises() -> None:
    with pytest.raises(InvariantViolation, match="equity moved"):
        DayAttribution(previous_equity=100, equity=90, symbols=())


# --------------------------------------------------------------------------- targets
def test_target_position_sources_validated_and_kept_by_scaling() -> None:
    target = TargetPosition(
        symbol="A", weight=0.2, genome_id="gB", style="trend",
        sources=[["gA", 0.25], ["gB", 0.75]],  # type: ignore[arg-type]  # as after JSON
    )  # fmt: skip
    assert target.sources == (("gA", 0.25), ("gB", 0.75))
    assert target.scaled(0.5).sources == target.sources
    assert TargetPosition(symbol="A", weight=0.1, genome_id="g", style="s").shares == (("g", 1.0),)
    with pytest.raises(ValueError, match="sum to 1"):
        TargetPosition(symbol="A", weight=0.1, genome_id="g", style="s", sources=(("g", 0.9),))
    with pytest.raises(ValueError, match="not among its sources"):
        TargetPosition(symbol="A", weight=0.1, genome_id="x", style="s", sources=(("g", 1.0),))


def _calm(*symbols: str) -> Perception:
    regime = RegimeReading(
        regime="bull", trend_return=0.12, index_volatility=0.15, vol_percentile=0.4,
        breadth=0.6, trend_window=100, trend_threshold=0.05, vol_window=20, vol_lookback=252,
        high_vol_rank=0.8,
    )  # fmt: skip
    figures = {"last_close": 50.0, "volatility": 0.10, "drawdown": 0.025, "max_drawdown": 0.05}
    assets = tuple(
        AssetRisk(symbol=s, avg_volume=2e7, avg_turnover=1e9, tradable=True, **figures)
        for s in symbols
    )
    return Perception(
        date="2024-03-05", as_of="2024-03-04T16:00:00+00:00", bars_used=500, regime=regime,
        assets=assets,
    )  # fmt: skip


def test_debate_record_json_round_trip_keeps_target_sources() -> None:
    proposal = (
        TargetPosition(
            symbol="A", weight=0.05, genome_id="g1", style="trend",
            sources=(("g0", 0.4), ("g1", 0.6)),
        ),
        TargetPosition(symbol="B", weight=0.05, genome_id="g1", style="trend"),
    )  # fmt: skip
    stats = {"g1": {"bull": RegimeStats(trades=120, win_rate=0.56, expected_return=0.008)}}
    record = run_debate(
        proposal=proposal, perception=_calm("A", "B"), backtest_stats=stats, equity=1e6
    )
    assert [t.sources for t in record.targets] == [t.sources for t in proposal]
    restored = DebateRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert restored == record


# --------------------------------------------------------------------------- arena days
@pytest.fixture(scope="module")
def markets() -> tuple[DayMarket, DayMarket]:
    from simulators.synthetic import SyntheticSpec, generate_daily, generate_intraday

    spec = SyntheticSpec.from_options(
        {"seed": "9", "assets": "3", "start": "2023-01-02", "end": "2023-03-31"}
    )
    daily = generate_daily(spec)
    out = []
    for index in (40, 41):
        day = (daily.index[index] - timedelta(minutes=1)).date()
        out.append(day_market(daily, day, generate_intraday(spec, daily, index)))
    return out[0], out[1]


def _plan(market: DayMarket, targets: tuple[TargetPosition, ...], tag: str) -> AccountPlan:
    return AccountPlan(
        account="synthesis", day=market.day, regime="range", targets=targets,
        decision_id=f"synthesis-{market.day}-{tag}", decision={"note": tag},
    )  # fmt: skip


def _shared(symbol: str) -> TargetPosition:
    # Two sleeves asked for the name: gA for a quarter of its weight, gB for the rest.
    return TargetPosition(
        symbol=symbol, weight=0.2, genome_id="gB", style="trend",
        sources=(("gA", 0.25), ("gB", 0.75)),
    )  # fmt: skip


def _single(symbol: str, genome_id: str) -> TargetPosition:
    return TargetPosition(
        symbol=symbol, weight=0.15, genome_id=genome_id, style="breakout",
        sources=((genome_id, 1.0),),
    )  # fmt: skip


def _book(path: Path) -> AccountBook:
    return AccountBook(path, "synthesis", load_arena_config(), BrokerRules.from_market("us"))


def _symbol_pnl(result: AccountDayResult, previous_values: dict[str, int]) -> dict[str, int]:
    """The rule, recomputed independently from the day's fills and snapshots."""
    pnl = {p.symbol: p.value for p in result.positions}
    for symbol, value in previous_values.items():
        pnl[symbol] = pnl.get(symbol, 0) - value
    for f in result.fills:
        flow = (f.notional if f.side == "sell" else -f.notional) - f.commission - f.taxes
        pnl[f.symbol] = pnl.get(f.symbol, 0) + flow
    return pnl


def _equity_change(ledger: Ledger, day: date) -> int:
    history = ledger.equity_history("synthesis")
    equities = [ledger.opening_state("synthesis").cash] + [e.equity for _, e in history]
    index = [d for d, _ in history].index(day)
    return equities[index + 1] - equities[index]


def test_arena_day_two_genomes_one_name_split_by_shares_sums_to_equity_change(
    tmp_path: Path, markets: tuple[DayMarket, DayMarket]
) -> None:
    market = markets[0]
    first, second = sorted(market.bars)[:2]
    book = _book(tmp_path / "ledger.sqlite")
    try:
        result = book.run_day(_plan(market, (_shared(first), _single(second, "gC")), "d1"), market)
    finally:
        book.close()
    assert {f.symbol for f in result.fills} == {first, second}
    attribution = result.attribution
    assert attribution is not None
    pnl = _symbol_pnl(result, {})
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        rows = ledger.attribution("synthesis", start=market.day, end=market.day)
        change = _equity_change(ledger, market.day)
        assert ledger.verify().ok
        order_shares = ledger.order_genomes("synthesis", market.day)
        fill_shares = ledger.fill_genomes("synthesis", market.day)
        position_shares = ledger.position_genomes("synthesis", market.day)
    assert sum(r.pnl for r in rows) == change == attribution.pnl != 0
    assert [(r.genome_id, r.pnl) for r in rows] == list(attribution.by_genome())
    by_genome = {r.genome_id: r.pnl for r in rows}
    assert set(by_genome) == {"gA", "gB", "gC"}
    assert by_genome["gA"] + by_genome["gB"] == pnl[first]
    assert abs(by_genome["gA"] - 0.25 * pnl[first]) <= 0.5  # exact up to the remainder unit
    assert by_genome["gC"] == pnl[second]
    assert all(r.money_digits == 2 and r.pnl_float == r.pnl / 100 for r in rows)
    shares = {first: (("gA", 0.25), ("gB", 0.75)), second: (("gC", 1.0),)}
    symbol_of = {o.order_id: o.symbol for o in result.orders}
    assert order_shares == {oid: shares[symbol_of[oid]] for oid in order_shares}
    assert fill_shares == {f.fill_id: shares[f.symbol] for f in result.fills}
    assert position_shares == {p.symbol: shares[p.symbol] for p in result.positions}


def test_arena_exit_day_name_no_longer_targeted_goes_to_previous_holders(
    tmp_path: Path, markets: tuple[DayMarket, DayMarket]
) -> None:
    first, second = sorted(markets[0].bars)[:2]
    book = _book(tmp_path / "ledger.sqlite")
    try:
        one = book.run_day(
            _plan(markets[0], (_shared(first), _single(second, "gC")), "d1"), markets[0]
        )
        # Day 2: the second name is no longer targeted: it is sold on gC's behalf.
        two = book.run_day(_plan(markets[1], (_shared(first),), "d2"), markets[1])
    finally:
        book.close()
    assert any(f.symbol == second and f.side == "sell" for f in two.fills)
    assert second not in {p.symbol for p in two.positions}
    assert two.attribution is not None
    (exit_row,) = [s for s in two.attribution.symbols if s.symbol == second]
    assert exit_row.basis == "position" and exit_row.parts == (("gC", exit_row.pnl),)
    pnl = _symbol_pnl(two, {p.symbol: p.value for p in one.positions})
    assert exit_row.pnl == pnl[second]
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        rows = {r.genome_id: r.pnl for r in ledger.attribution("synthesis", start=markets[1].day)}
        assert rows["gC"] == pnl[second]
        assert rows["gA"] + rows["gB"] == pnl[first]
        assert sum(rows.values()) == _equity_change(ledger, markets[1].day)
        sells = [f.fill_id for f in two.fills if f.symbol == second]
        fill_shares = ledger.fill_genomes("synthesis", markets[1].day)
        assert {fill_shares[fid] for fid in sells} == {(("gC", 1.0),)}
        assert [r.genome_id for r in ledger.attribution(genome_id="gC")] == ["gC", "gC"]
        assert ledger.verify().ok


def test_arena_force_replacement_replaces_attribution(
    tmp_path: Path, markets: tuple[DayMarket, DayMarket]
) -> None:
    first, second = sorted(markets[0].bars)[:2]
    path = tmp_path / "ledger.sqlite"
    book = _book(path)
    try:
        book.run_day(_plan(markets[0], (_shared(first), _single(second, "gC")), "d1"), markets[0])
        book.run_day(_plan(markets[1], (_shared(first),), "d2"), markets[1])
        with Ledger(path) as ledger:
            before = {r.genome_id for r in ledger.attribution(start=markets[1].day)}
        # --force with another plan: the first name is exited, gD now asks for the second.
        forced = book.run_day(
            _plan(markets[1], (_single(second, "gD"),), "d2-forced"), markets[1], force=True
        )
    finally:
        book.close()
    assert before == {"gA", "gB", "gC"}
    assert forced.attribution is not None
    with Ledger(path) as ledger:
        rows = ledger.attribution("synthesis", start=markets[1].day)
        assert [(r.genome_id, r.pnl) for r in rows] == list(forced.attribution.by_genome())
        assert {r.genome_id for r in rows} == {"gA", "gB", "gD"}
        assert sum(r.pnl for r in rows) == _equity_change(ledger, markets[1].day)
        assert len(ledger.attribution("synthesis", end=markets[0].day)) == 3  # day 1 untouched
        report = ledger.verify()
        assert report.ok, report.to_dict()
        assert report.days_unattributed == 0


def test_committed_day_again_result_has_no_new_attribution(
    tmp_path: Path, markets: tuple[DayMarket, DayMarket]
) -> None:
    first, _ = sorted(markets[0].bars)[:2]
    book = _book(tmp_path / "ledger.sqlite")
    try:
        plan = _plan(markets[0], (_shared(first),), "d1")
        book.run_day(plan, markets[0])
        again = book.run_day(plan, markets[0])
    finally:
        book.close()
    assert again.already_committed and again.attribution is None
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        assert [r.genome_id for r in ledger.attribution()] == ["gA", "gB"]


def test_commit_attribution_from_a_stale_close_raises_and_writes_nothing(
    tmp_path: Path, markets: tuple[DayMarket, DayMarket]
) -> None:
    first, _ = sorted(markets[0].bars)[:2]
    path = tmp_path / "ledger.sqlite"
    book = _book(path)
    try:
        one = book.run_day(_plan(markets[0], (_shared(first),), "d1"), markets[0])
        two = book.run_day(_plan(markets[1], (_shared(first),), "d2"), markets[1])
    finally:
        book.close()
    assert one.attribution is not None and two.attribution is not None and two.equity_snapshot
    with Ledger(path) as ledger:
        ledger.replace_day(
            "synthesis", markets[1].day, orders=two.orders, fills=two.fills,
            positions=two.positions, equity=two.equity_snapshot, attribution=two.attribution,
        )  # fmt: skip
        rows = ledger.attribution()
        # Attributed against the opening books instead of day 1's close: refused.
        stale = attribute_day(
            previous=ledger.close_before("synthesis", markets[0].day), orders=two.orders,
            fills=(), positions=(), equity=EquitySnapshot(
                cash=ledger.opening_state("synthesis").cash, market_value=0,
                equity=ledger.opening_state("synthesis").cash, realised_pnl=0,
                commission_paid=0, taxes_paid=0,
            ), targets={first: _shared(first).shares},
        )  # fmt: skip
        with pytest.raises(LedgerError, match="does not follow"):
            ledger.replace_day(
                "synthesis", markets[1].day, orders=two.orders, fills=two.fills,
                positions=two.positions, equity=two.equity_snapshot, attribution=stale,
            )  # fmt: skip
        assert ledger.attribution() == rows
        assert ledger.verify().ok


def test_verify_tampered_attribution_row_reports_attribution_mismatch(
    tmp_path: Path, markets: tuple[DayMarket, DayMarket]
) -> None:
    first, second = sorted(markets[0].bars)[:2]
    path = tmp_path / "ledger.sqlite"
    book = _book(path)
    try:
        book.run_day(_plan(markets[0], (_shared(first), _single(second, "gC")), "d1"), markets[0])
        book.run_day(_plan(markets[1], (_shared(first),), "d2"), markets[1])
    finally:
        book.close()
    with Ledger(path) as ledger:
        assert ledger.verify().ok  # the control: untouched, it passes
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE attribution SET pnl = pnl + 1 WHERE day = ? AND genome_id = 'gA'",
            (markets[1].day.isoformat(),),
        )
        conn.execute("UPDATE fills SET genomes = '{\"gA\": 0.5}' WHERE seq = 1")
    with Ledger(path) as ledger:
        report = ledger.verify()
    found = [(i.kind, i.day) for i in report.issues]
    assert not report.ok
    assert ("attribution_mismatch", markets[1].day) in found
    assert ("attribution_mismatch", markets[0].day) in found  # the fill's shares sum to 0.5
    # Both edited days are also no longer what their commits hashed.
    assert {i.kind for i in report.issues} == {"attribution_mismatch", "chain_mismatch"}
    assert {i.day for i in report.issues if i.kind == "chain_mismatch"} == {
        markets[0].day, markets[1].day
    }  # fmt: skip
