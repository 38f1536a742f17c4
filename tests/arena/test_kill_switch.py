"""The kill switch: ``arena pause [--flatten]`` / ``arena resume``, and a fire drill.

A small synthetic market, local accounts, no Ray. The drill trades a few days so that
positions exist, pauses with ``--flatten`` through the CLI, and checks the next days: no buy,
every position sold (or an event naming why not), the pause's risk events carry the reason,
then cash only; ``status`` says paused; after ``resume`` the accounts trade again; the ledger
verifies throughout. Controls: the same days without a pause place buys, a plain pause keeps
the positions and places no order.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from alphaloop import cli_arena
from alphaloop.home import LabHome
from arena.bootstrap import arena_genomes, bootstrap_genomes
from arena.conditions import DayConditions, Halt, wire_day
from arena.day import LocalAccounts, run_arena_day
from arena.kill_switch import RULE, Pause, pause_lab, read_pause, resume_lab
from arena.ledger import Ledger
from arena.market import ArenaData, day_market, load_arena_data
from arena.personas import PERSONA_NAMES, load_arena_config
from arena.plan import pause_plan, plan_day
from arena.review import review_committed_day
from arena.risk import AccountSnapshot, OrderRequest, RiskGovernor, RiskLimits

SPEC = "synthetic:seed=3,assets=5,start=2022-01-01,end=2023-12-31"
# Unpaused, the accounts hold positions after the warm-up and buy on PAUSED (the control).
WARM_UP = (date(2023, 6, 1), date(2023, 6, 2), date(2023, 6, 5), date(2023, 6, 6), date(2023, 6, 7))
PAUSED, CASH, RESUMED = date(2023, 6, 8), date(2023, 6, 9), date(2023, 6, 12)
# After these days two accounts hold positions (for the partial flatten).
SHORT_WARM_UP, SHORT_PAUSED, SHORT_NEXT = WARM_UP[:3], date(2023, 6, 6), date(2023, 6, 7)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ArenaData:
    return load_arena_data(SPEC, LabHome(tmp_path_factory.mktemp("data")))


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(cli_arena.app, name="arena")
    app.add_typer(cli_arena.ledger_app, name="ledger")
    return app


def _cli(*args: str) -> tuple[dict[str, Any], str]:
    """Run a command (the lab home is ``$ALPHALOOP_HOME``); return its JSON and its stderr."""
    result = CliRunner().invoke(_app(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def _days(home: LabHome, data: ArenaData, days: tuple[date, ...], **kwargs: Any) -> None:
    config = load_arena_config()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        for day in days:
            summary = run_arena_day(accounts, data, day, home=home, config=config, **kwargs)
            assert not summary["already_committed"]
    finally:
        accounts.close()


def _orders(home: LabHome, day: date) -> dict[str, list[Any]]:
    with Ledger(home.ledger_db) as ledger:
        return {name: ledger.orders(name, day) for name in PERSONA_NAMES}


def _held(home: LabHome, day: date) -> dict[str, dict[str, int]]:
    with Ledger(home.ledger_db) as ledger:
        return {
            name: {p.symbol: p.quantity for p in ledger.positions(name, day) if p.quantity}
            for name in PERSONA_NAMES
        }


def _kill_switch_events(home: LabHome, day: date) -> dict[str, list[Any]]:
    with Ledger(home.ledger_db) as ledger:
        return {
            name: [e for e in ledger.risk_events(name, day) if e.rule == RULE]
            for name in PERSONA_NAMES
        }


def _verify_ok(home: LabHome) -> None:
    out, _ = _cli("ledger", "verify", "--json")
    assert out["ok"], out["issues"]


# --------------------------------------------------------------------------- the fire drill
def test_kill_switch_fire_drill_flatten_then_cash_then_resume_trades(
    lab_home: LabHome, data: ArenaData
) -> None:
    _days(lab_home, data, WARM_UP, write_report=False)
    before = _held(lab_home, WARM_UP[-1])
    assert sum(len(held) for held in before.values()) > 0, "the drill needs positions to flatten"

    paused, _ = _cli("arena", "pause", "--flatten", "--reason", "fire drill", "--json")
    assert paused["action"] == "paused" and paused["changed"]
    assert paused["paused"]["reason"] == "fire drill" and paused["paused"]["flatten"]
    since = paused["paused"]["since"]

    # The flatten day: no buy at all, every position sold, the reason in each account's events.
    _days(lab_home, data, (PAUSED,), write_report=True)
    orders = _orders(lab_home, PAUSED)
    assert not [o for name in PERSONA_NAMES for o in orders[name] if o.side == "buy"]
    events = _kill_switch_events(lab_home, PAUSED)
    after = _held(lab_home, PAUSED)
    for name in PERSONA_NAMES:
        sold = {o.symbol: o.quantity for o in orders[name] if o.side == "sell"}
        assert sold == before[name], f"{name}: every held position gets one closing sell"
        assert events[name], f"{name}: the paused day has a kill_switch event"
        assert events[name][0].reason.startswith("flatten: ")
        assert all("fire drill" in e.reason and since in e.reason for e in events[name])
        for symbol in after[name]:  # what is left is explained, by name
            assert any(symbol in e.reason for e in events[name][1:]), (name, symbol)
    assert after == {name: {} for name in PERSONA_NAMES}
    with Ledger(lab_home.ledger_db) as ledger:
        for name in PERSONA_NAMES:
            decision = next(iter(ledger.decisions(name, PAUSED).values()))
            assert decision["decision"] == "flatten"
            assert decision["kill_switch"]["reason"] == "fire drill"
        # No genome traded, so none has a paper day (no false verdicts from a paused day).
        assert ledger.genome_days(start=PAUSED, end=PAUSED) == []
    report = (lab_home.runs / PAUSED.isoformat() / "summary.md").read_text(encoding="utf-8")
    assert "paused by the kill switch" in report and "fire drill" in report

    # The day after, through `arena run`: no order at all, equity = cash; it says paused.
    run, stderr = _cli(
        "arena", "run", "--date", CASH.isoformat(), "--data", SPEC, "--json", "--local",
        "--no-mlflow",
    )  # fmt: skip
    assert run["paused"]["reason"] == "fire drill"
    assert "PAUSED" in stderr and "fire drill" in stderr
    assert _orders(lab_home, CASH) == {name: [] for name in PERSONA_NAMES}
    with Ledger(lab_home.ledger_db) as ledger:
        for name in PERSONA_NAMES:
            day, snapshot = ledger.last_equities()[name]
            assert day == CASH and snapshot.market_value == 0
            assert snapshot.equity == snapshot.cash
    assert all(_kill_switch_events(lab_home, CASH).values())

    status, _ = _cli("arena", "status", "--json")
    assert status["paused"] == paused["paused"]
    text = CliRunner().invoke(_app(), ["arena", "status"])
    assert "paused: yes" in text.stdout and "fire drill" in text.stdout
    _verify_ok(lab_home)

    resumed, _ = _cli("arena", "resume", "--reason", "drill over", "--json")
    assert resumed["action"] == "resumed" and resumed["paused"] is None
    status, _ = _cli("arena", "status", "--json")
    assert status["paused"] is None
    _days(lab_home, data, (RESUMED,), write_report=False)
    orders = _orders(lab_home, RESUMED)
    assert sum(len(o) for o in orders.values()) > 0, "after resume the accounts trade again"
    assert any(o.side == "buy" for name in PERSONA_NAMES for o in orders[name])
    assert not any(_kill_switch_events(lab_home, RESUMED).values())
    _verify_ok(lab_home)
    journal = lab_home.kill_switch_journal.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["action"] for line in journal] == ["pause", "resume"]
    assert json.loads(journal[-1])["reason"] == "drill over"


def test_kill_switch_without_pause_same_days_place_buys(lab_home: LabHome, data: ArenaData) -> None:
    # The control of the drill: unpaused, the flatten day buys.
    _days(lab_home, data, (*WARM_UP, PAUSED, CASH), write_report=False)
    assert [o for orders in _orders(lab_home, PAUSED).values() for o in orders if o.side == "buy"]
    assert not any(e for day in (PAUSED, CASH) for e in _kill_switch_events(lab_home, day).values())


def test_kill_switch_plain_pause_keeps_positions_and_places_no_order(
    lab_home: LabHome, data: ArenaData
) -> None:
    _days(lab_home, data, WARM_UP, write_report=False)
    before = _held(lab_home, WARM_UP[-1])
    pause_lab(lab_home, reason="plain drill")
    replay, stderr = _cli(
        "arena", "replay", "--start", PAUSED.isoformat(), "--end", CASH.isoformat(),
        "--data", SPEC, "--evolve-weekday", "-1", "--open-loop", "--json", "--local",
        "--no-mlflow",
    )  # fmt: skip
    assert replay["paused_days"] == [PAUSED.isoformat(), CASH.isoformat()]
    assert replay["paused"]["reason"] == "plain drill" and not replay["paused"]["flatten"]
    assert "PAUSED" in stderr
    for day in (PAUSED, CASH):
        assert _orders(lab_home, day) == {name: [] for name in PERSONA_NAMES}
        assert _held(lab_home, day) == before
        for name, events in _kill_switch_events(lab_home, day).items():
            assert len(events) == 1, name
            assert events[0].reason.startswith("pause: ") and "plain drill" in events[0].reason
    _verify_ok(lab_home)


def test_kill_switch_flatten_names_what_it_cannot_close_and_closes_it_next_day(
    lab_home: LabHome, data: ArenaData
) -> None:
    # No bar of one held name for one account, an exchange halt all day for another: what is
    # left is named in the day's events, and the next paused day closes it.
    _days(lab_home, data, SHORT_WARM_UP, write_report=False)
    before = _held(lab_home, SHORT_WARM_UP[-1])
    no_bar, halted = "aggressive", "conservative"
    assert before[no_bar] and before[halted]
    missing = sorted(before[no_bar])[0]
    pause = pause_lab(lab_home, reason="partial drill", flatten=True).pause
    assert pause is not None
    config = load_arena_config()
    accounts = LocalAccounts(lab_home, config, data.rules())
    try:
        plan = plan_day(
            data.daily,
            SHORT_PAUSED,
            arena_genomes(lab_home),
            config,
            accounts.equity_before(SHORT_PAUSED),
        )
        plan = pause_plan(plan, pause)
        market = day_market(data.daily, SHORT_PAUSED, data.minute_bars(SHORT_PAUSED))
        gap = replace(market, bars={s: b for s, b in market.bars.items() if s != missing})
        end = max(bar.at for bars in market.bars.values() for bar in bars)
        halt = DayConditions(
            halts=(Halt(start=market.open_time, end=end + timedelta(minutes=1), reason="drill"),)
        )
        for name in PERSONA_NAMES:
            book = accounts.books[name]
            if name == no_bar:
                book.run_day(plan.accounts[name], gap)
            elif name == halted:
                book.run_day(plan.accounts[name], market, adapters=wire_day(halt))
            else:
                book.run_day(plan.accounts[name], market)
    finally:
        accounts.close()
    review_committed_day(lab_home, data, SHORT_PAUSED)
    left = _held(lab_home, SHORT_PAUSED)
    events = _kill_switch_events(lab_home, SHORT_PAUSED)
    assert list(left[no_bar]) == [missing]
    assert any(missing in e.reason and "no bar today" in e.reason for e in events[no_bar])
    assert left[halted] == before[halted]
    for symbol in before[halted]:
        assert any(f"{symbol}: sold 0 of" in e.reason for e in events[halted]), symbol
    assert all("partial drill" in e.reason for found in events.values() for e in found)
    assert not [
        o for orders in _orders(lab_home, SHORT_PAUSED).values() for o in orders if o.side == "buy"
    ]

    _days(lab_home, data, (SHORT_NEXT,), write_report=False)
    assert _held(lab_home, SHORT_NEXT) == {name: {} for name in PERSONA_NAMES}
    _verify_ok(lab_home)


# --------------------------------------------------------------------------- the switch
def test_kill_switch_pause_twice_and_resume_twice_are_idempotent(lab_home: LabHome) -> None:
    first, _ = _cli("arena", "pause", "--reason", "one", "--json")
    again, _ = _cli("arena", "pause", "--reason", "two", "--json")
    assert (first["action"], again["action"]) == ("paused", "already_paused")
    assert not again["changed"] and again["paused"] == first["paused"]
    flat, _ = _cli("arena", "pause", "--flatten", "--json")  # a plain pause may escalate
    assert flat["action"] == "flattening" and flat["paused"]["flatten"]
    assert flat["paused"]["since"] == first["paused"]["since"]
    assert flat["paused"]["reason"] == "one"
    text = CliRunner().invoke(_app(), ["arena", "pause"])
    assert text.exit_code == 0 and "already paused" in text.stdout
    done, _ = _cli("arena", "resume", "--json")
    none, _ = _cli("arena", "resume", "--json")
    assert (done["action"], none["action"]) == ("resumed", "not_paused")
    assert not none["changed"] and read_pause(lab_home) is None
    assert not lab_home.pause_flag.exists()


def test_kill_switch_unreadable_flag_still_pauses(lab_home: LabHome) -> None:
    lab_home.pause_flag.write_bytes(b"\x00not json")
    pause = read_pause(lab_home)
    assert pause is not None and not pause.flatten
    assert "unreadable pause flag" in pause.reason
    assert resume_lab(lab_home).action == "resumed"
    assert read_pause(lab_home) is None


def test_kill_switch_flag_round_trip_keeps_reason_time_and_person(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "h")
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    change = pause_lab(home, reason="  two\nlines ", flatten=True, who="alice", now=now)
    assert change.pause is not None
    assert read_pause(home) == change.pause
    assert change.pause.reason == "two lines"  # one line everywhere it is shown
    stored = json.loads(home.pause_flag.read_text(encoding="utf-8"))
    assert stored == {
        "reason": "two lines", "since": "2024-01-02T03:04:05+00:00", "who": "alice",
        "flatten": True,
    }  # fmt: skip


def test_kill_switch_paused_governor_vetoes_every_order_flatten_passes_closing_sells() -> None:
    now = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    account = AccountSnapshot(
        account="a", cash=50_000.0, positions={"X": 100.0}, day_start_equity=60_000.0,
        peak_equity=60_000.0,
    )  # fmt: skip
    prices = {"X": 100.0, "Y": 50.0}

    def order(k: int, symbol: str, side: str, quantity: float) -> OrderRequest:
        return OrderRequest(
            order_id=f"a-{k}", account="a", symbol=symbol, side=side,  # type: ignore[arg-type]
            quantity=quantity, reference_price=prices[symbol],
        )  # fmt: skip

    plain = RiskGovernor(RiskLimits(), "a")
    event = plain.pause(now, reason="why", flatten=False, exposure=1 / 6)
    assert (event.rule, event.kind, event.message) == ("kill_switch", "pause", "why")
    for k, (symbol, side, qty) in enumerate((("Y", "buy", 1.0), ("X", "sell", 10.0))):
        decision = plain.check(order(k, symbol, side, qty), account, prices, now)
        assert not decision.approved and decision.events[0].rule == "kill_switch"

    flat = RiskGovernor(RiskLimits(), "a")
    flat.pause(now, reason="why", flatten=True, exposure=1 / 6)
    assert flat.check(order(1, "X", "sell", 100.0), account, prices, now).approved
    for k, (symbol, side, qty) in enumerate((("Y", "buy", 1.0), ("X", "sell", 150.0)), start=2):
        decision = flat.check(order(k, symbol, side, qty), account, prices, now)
        assert not decision.approved and decision.events[0].rule == "kill_switch"


def test_kill_switch_paused_plan_pickle_round_trip(data: ArenaData) -> None:
    # A paused plan crosses Ray to the account actors.
    config = load_arena_config()
    equities = dict.fromkeys(PERSONA_NAMES, config.starting_capital)
    pause = Pause(reason="drill", since=datetime(2024, 1, 2, tzinfo=UTC), who="alice", flatten=True)
    plan = pause_plan(plan_day(data.daily, PAUSED, bootstrap_genomes(), config, equities), pause)
    again = pickle.loads(pickle.dumps(plan))
    for name in PERSONA_NAMES:
        assert again.accounts[name] == plan.accounts[name]
        assert again.accounts[name].pause == pause and again.accounts[name].targets == ()
    assert again.accounts["aggressive"].decision["suspended_targets"]
