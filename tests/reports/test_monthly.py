"""The monthly report: round trips, biases on hand-built cases, trades and direction on a season."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from arena.ledger import Ledger
from evolution.store import GenePoolStore, MemberRecord, TransitionRecord
from reports.biases import (
    BiasConfig,
    BuyRecord,
    RoundTripError,
    chasing,
    disposition,
    over_trading,
    round_trips,
)
from reports.monthly import gene_values, select_trades, write_monthly_report
from reports.weekly import ReportDataMissing, closes_frame, parse_month

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
T0 = datetime(2023, 6, 1, 10, 0, tzinfo=UTC)


def _fills(rows: list[tuple]) -> pd.DataFrame:
    """Fill rows (side, symbol, quantity, price, fees, hours after T0, order id), 2 digits."""
    records = []
    for seq, (side, symbol, quantity, price, fees, hours, order) in enumerate(rows, start=1):
        records.append(
            {
                "account": "acct", "seq": seq, "fill_id": f"F{seq}", "order_id": order,
                "at": (T0 + timedelta(hours=hours)).isoformat(), "symbol": symbol,
                "side": side, "quantity": quantity, "notional": round(quantity * price * 100),
                "commission": fees, "taxes": 0,
            }
        )  # fmt: skip
    return pd.DataFrame(records)


DIGITS = {"acct": (2, 0)}


def test_round_trips_average_cost_pnl_fees_and_holding_time() -> None:
    fills = _fills(
        [
            ("buy", "AAA", 100, 10.0, 500, 0, "O1"),
            ("buy", "AAA", 100, 12.0, 200, 24, "O2"),
            ("sell", "AAA", 150, 13.0, 300, 72, "O3"),
            ("sell", "AAA", 50, 9.0, 100, 96, "O4"),
        ]
    )
    first, second = round_trips(fills, DIGITS)
    # The holding: 200 units costing 2,200 (average 11), buy fees 7, bought at 0 h and 24 h.
    # 150 sold at 13 take three quarters of the cost and of the buy fees; fees 3 + 5.25.
    assert first.pnl == pytest.approx(150 * 13 - 2200 * 0.75 - 3 - 7 * 0.75)
    assert first.entry_price == pytest.approx(11.0) and first.fees == pytest.approx(3 + 5.25)
    # Mean age of the units sold: 72 h minus the average acquisition time (12 h) = 2.5 days.
    assert first.holding_days == pytest.approx(2.5)
    assert first.entry_order_ids == ("O1", "O2") and first.exit_order_id == "O3"
    # The last 50 units keep the average cost 11 and age: sold at 9 at 96 h.
    assert second.pnl == pytest.approx(50 * 9 - 550 - 1 - 1.75)
    assert second.entry_price == pytest.approx(11.0)
    assert second.holding_days == pytest.approx(3.5) and second.entry_order_ids == ("O1", "O2")
    # A new holding after the name went flat starts its own average and entry time.
    again = _fills(
        [
            ("buy", "AAA", 10, 10.0, 0, 0, "B1"),
            ("sell", "AAA", 10, 11.0, 0, 24, "S1"),
            ("buy", "AAA", 10, 20.0, 0, 48, "B2"),
            ("sell", "AAA", 10, 19.0, 0, 72, "S2"),
        ]
    )
    _, later = round_trips(again, DIGITS)
    assert later.entry_price == pytest.approx(20.0) and later.pnl == pytest.approx(-10.0)
    assert later.holding_days == pytest.approx(1.0) and later.entry_order_ids == ("B2",)
    oversold = _fills([("buy", "AAA", 10, 10.0, 0, 0, "O1"), ("sell", "AAA", 20, 11.0, 0, 1, "O2")])
    with pytest.raises(RoundTripError, match="AAA"):
        round_trips(oversold, DIGITS)


def test_disposition_losers_held_longer_detected_with_figures() -> None:
    fills = _fills(
        [
            ("buy", "WIN", 10, 10.0, 0, 0, "B1"),
            ("sell", "WIN", 10, 11.0, 0, 24, "S1"),  # winner held 1 day
            ("buy", "LOS", 10, 10.0, 0, 0, "B2"),
            ("sell", "LOS", 10, 9.0, 0, 96, "S2"),  # loser held 4 days
        ]
    )
    found = disposition("acct", round_trips(fills, DIGITS))
    assert found.detected and (found.winners, found.losers) == (1, 1)
    assert found.mean_hold_winners == pytest.approx(1.0)
    assert found.mean_hold_losers == pytest.approx(4.0) and found.ratio == pytest.approx(4.0)
    reverse = _fills(
        [
            ("buy", "WIN", 10, 10.0, 0, 0, "B1"),
            ("sell", "WIN", 10, 11.0, 0, 96, "S1"),
            ("buy", "LOS", 10, 10.0, 0, 0, "B2"),
            ("sell", "LOS", 10, 9.0, 0, 24, "S2"),
        ]
    )
    assert not disposition("acct", round_trips(reverse, DIGITS)).detected


def test_chasing_buy_after_strong_rise_detected_and_outcomes_compared() -> None:
    days = [date(2023, 6, 1) + timedelta(days=k) for k in range(12)]
    hot = [10, 10, 10, 10.5, 11, 11.5, 12, 12, 11, 10.8, 10.8, 10.8]
    calm = [20.0] * 7 + [20, 20.5, 21, 21, 21]
    closes = pd.DataFrame({"HOT": hot, "CALM": calm}, index=pd.Index(days), dtype=float)
    config = BiasConfig(chase_lookback_days=5, chase_threshold=0.05, chase_outcome_days=3)
    buys = [
        BuyRecord(account="acct", symbol="HOT", day=days[7], price=12.0, order_id="B1"),
        BuyRecord(account="acct", symbol="CALM", day=days[7], price=20.0, order_id="B2"),
        BuyRecord(account="acct", symbol="HOT", day=days[2], price=10.0, order_id="B3"),
    ]
    found = chasing("acct", buys, closes, config)
    # HOT rose 12 / 10 - 1 = 20% over the 5 days before day 7; CALM was flat.
    assert found.chasing_orders == ("B1",) and found.assessed_buys == 2  # B3: no history
    assert found.mean_prior_move_chasing == pytest.approx(0.2)
    assert found.mean_outcome_chasing == pytest.approx(10.8 / 12.0 - 1.0)
    assert found.mean_outcome_other == pytest.approx(21.0 / 20.0 - 1.0)
    assert found.detected
    winning = [BuyRecord(account="acct", symbol="HOT", day=days[5], price=11.0, order_id="B4")]
    assert not chasing("acct", winning, closes, BiasConfig(chase_threshold=0.01)).detected


def test_over_trading_counts_days_above_ratio_of_the_mean() -> None:
    counts = {date(2023, 6, d): n for d, n in zip(range(1, 8), [1, 1, 1, 1, 6, 7, 1], strict=True)}
    found = over_trading(
        "acct", counts, BiasConfig(over_trading_ratio=1.5, over_trading_min_days=2)
    )
    assert found.mean_per_day == pytest.approx(18 / 7)
    assert found.over_days == (date(2023, 6, 5), date(2023, 6, 6)) and found.detected
    calm = over_trading("acct", dict.fromkeys(counts, 2))
    assert calm.over_days == () and not calm.detected


def test_gene_values_flatten_kinds_and_skip_non_numbers() -> None:
    genome = {
        "schema_version": 1, "style": "trend", "combine": "and",
        "entry": [{"kind": "rsi_level", "window": 14, "threshold": 30.0},
                  {"kind": "rsi_level", "window": 6, "threshold": 40.0}],
        "exits": {"stop_loss": 0.05, "take_profit": None, "opposite_signal": True},
        "sizing": {"kind": "vol_target", "target": 0.2, "max_positions": 5},
    }  # fmt: skip
    assert gene_values(genome) == {
        "entry.rsi_level.threshold": 35.0,
        "entry.rsi_level.window": 10.0,
        "exits.stop_loss": 0.05,
        "sizing.vol_target.max_positions": 5.0,
        "sizing.vol_target.target": 0.2,
    }


@pytest.fixture(scope="module")
def season(report_season_home: LabHome) -> tuple[LabHome, dict]:
    from arena.market import load_arena_data

    home = report_season_home
    closes = closes_frame(load_arena_data(SPEC, home).daily)
    return home, write_monthly_report(home, parse_month("2023-06"), closes=closes, track=False)


def _recomputed_pnl(ledger: Ledger, account: str, symbol: str, exit_order: str) -> float:
    """Average-cost P&L of one sell order, replayed here from the ledger's fills (money units,
    net of the sell fees and of the sold share of the holding's buy fees). The cost that leaves
    with a sale is the documented rule, in minor units: all of it on a full sale, else
    ``cost x sold / held`` rounded half up."""
    held, cost, buy_fees = 0, 0, 0.0  # units, minor units without fees, buy fees (minor units)
    fills = [f for f in ledger.fills(account) if f.symbol == symbol]
    pnl = 0.0
    for fill in fills:
        fees = float(fill.commission + fill.taxes)
        if fill.side == "buy":
            held += fill.quantity
            cost += fill.notional
            buy_fees += fees
            continue
        sold = fill.quantity
        removed = cost if sold == held else int(Fraction(cost * sold, held) + Fraction(1, 2))
        fee_share = buy_fees if sold == held else buy_fees * sold / held
        proceeds = (fill.notional - removed - fees - fee_share) / 100.0
        held, cost, buy_fees = held - sold, cost - removed, buy_fees - fee_share
        if fill.order_id == exit_order:
            pnl += proceeds
    return pnl


def test_round_trips_sum_to_the_ledgers_realised_pnl(season) -> None:
    from reports.weekly import LedgerView

    home, _ = season
    trips = LedgerView.load(home.ledger_db).round_trips()
    assert len(trips) >= 10
    with Ledger(home.ledger_db) as ledger:
        for account in ("aggressive", "conservative", "synthesis"):
            realised = ledger.equity_history(account)[-1][1].realised_pnl / 100.0
            mine = [t for t in trips if t.account == account]
            assert sum(t.pnl + t.fees for t in mine) == pytest.approx(realised, abs=1e-6)


def test_monthly_top_and_bottom_trades_recomputed_from_fills(season) -> None:
    home, out = season
    assert out["round_trips"] >= 10
    top, bottom = out["top_trades"], out["bottom_trades"]
    assert len(top) == len(bottom) == 5
    assert [t["pnl"] for t in top] == sorted((t["pnl"] for t in top), reverse=True)
    assert [t["pnl"] for t in bottom] == sorted(t["pnl"] for t in bottom)
    assert top[0]["pnl"] >= top[-1]["pnl"] > bottom[-1]["pnl"] >= bottom[0]["pnl"]
    connection = sqlite3.connect(home.ledger_db)
    assert {row[0] for row in connection.execute("SELECT money_digits FROM accounts")} == {2}
    with Ledger(home.ledger_db) as ledger:
        for trade in (top[0], bottom[0]):
            expected = _recomputed_pnl(
                ledger, trade["account"], trade["symbol"], trade["exit_order_id"]
            )
            assert trade["pnl"] == pytest.approx(expected, rel=1e-9, abs=1e-6)
            decision_id = connection.execute(
                "SELECT decision_id FROM orders WHERE account=? AND order_id=?",
                (trade["account"], trade["exit_order_id"]),
            ).fetchone()[0]
            assert trade["exit_decision"] == ledger.decision(trade["account"], decision_id)
            assert trade["exit_decision"], "the decision chain is stored with the order"
    connection.close()
    markdown = Path(out["markdown"]).read_text()
    assert (
        "Decision chain of the exit" in markdown and "## Principles the month suggests" in markdown
    )


def test_monthly_direction_matches_store_final_generations(season) -> None:
    home, out = season
    with GenePoolStore(home.gene_pool_db) as store:
        for row in out["direction"]:
            sid = row["session_id"]
            last = store.generation_stats(sid)[-1]["generation"]
            population = store.population(sid, last)
            survivors = [m for m in population if m["status"] != "culled"]
            group = survivors or population
            styles = Counter(json.loads(m["genome_json"])["style"] for m in group)
            assert row["styles"] == pytest.approx({k: v / len(group) for k, v in styles.items()})
            assert row["survivors"] == len(survivors) and row["population"] == len(population)
            assert row["operators"] == dict(Counter(m["operator"] for m in survivors))
    assert [row["as_of"] for row in out["direction"]] == ["2023-06-02", "2023-06-16"]


def test_monthly_biases_and_principles_consistent(season) -> None:
    _, out = season
    assert set(out["biases"]) == {"aggressive", "conservative", "synthesis"}
    detected = [
        (account, name)
        for account, found in out["biases"].items()
        for name, figures in found.items()
        if figures and figures["detected"]
    ]
    words = {"over_trading": "trade at most", "chasing": "do not buy", "disposition": "cut losers"}
    for account, name in detected:
        assert any(rule.startswith(f"{account}: {words[name]}") for rule in out["principles"])
    assert out["principles"]
    html = Path(out["html"]).read_text()
    assert "http://" not in html and "https://" not in html
    assert html.count('src="data:image/png;base64,') >= 4


def test_parse_month_bad_format_and_empty_month(lab_home: LabHome) -> None:
    for text in ("2023-13", "2023-6", "June", "2023-00"):
        with pytest.raises(ConfigError, match="--month"):
            parse_month(text)
    with pytest.raises(ReportDataMissing, match="2020-01"):
        write_monthly_report(lab_home, parse_month("2020-01"), track=False)


def test_select_trades_breaks_ties_deterministically() -> None:
    fills = _fills(
        [
            ("buy", "AAA", 10, 10.0, 0, 0, "B1"),
            ("sell", "AAA", 5, 11.0, 0, 1, "S1"),
            ("sell", "AAA", 5, 11.0, 0, 2, "S2"),
        ]
    )
    trips = round_trips(fills, DIGITS)
    best, worst = select_trades(list(reversed(trips)), count=1)
    assert best[0].exit_order_id == "S1" and worst[0].exit_order_id == "S1"
    assert Decimal(str(best[0].pnl)) == Decimal("5.0")


def _member(genome_id: str) -> MemberRecord:
    return MemberRecord(
        genome_id=genome_id, genome_json='{"style": "trend"}', description=genome_id,
        style="trend", parents=(), operator="random", born_generation=0, score=50.0,
        status="alive", overfit=False, low_score_streak=0,
    )  # fmt: skip


def _path(genome_id: str, *path: str, day: str | None = None) -> list[TransitionRecord]:
    return [
        TransitionRecord(genome_id=genome_id, from_status=a, to_status=b, reason=f"{b}", day=day)
        for a, b in pairwise(path)
    ]


def test_monthly_lists_the_months_promotions_and_demotions(lab_home: LabHome, season) -> None:
    with GenePoolStore(lab_home.gene_pool_db) as store:
        store.create_session(
            session_id="s1", seed=0, as_of="2023-05-26", config={}, config_hash="c",
            data_hash="d", data_spec="synthetic", code_version="test",
        )  # fmt: skip
        store.commit_generation(
            session_id="s1", generation=0, stats={"best_score": 50.0, "median_score": 50.0},
            members=[_member(g) for g in ("aaaa", "bbbb", "cccc")],
            transitions=[
                move for g in ("aaaa", "bbbb", "cccc")
                for move in _path(g, "alive", "candidate", "probation")
            ],
        )  # fmt: skip
        store.transition(*_path("aaaa", "probation", "champion", day="2023-06-20"))
        store.transition(*_path("bbbb", "probation", "champion", day="2023-06-05"))
        store.transition(*_path("bbbb", "champion", "demoted", day="2023-06-28"))
        store.transition(*_path("cccc", "probation", "demoted", day="2023-07-03"))  # July
    out = write_monthly_report(lab_home, parse_month("2023-06"), track=False)
    assert out["promotions"] == ["aaaa", "bbbb"] and out["demotions"] == ["bbbb"]
    assert [(t["genome_id"], t["to"], t["day"]) for t in out["transitions"]] == [
        ("aaaa", "champion", "2023-06-20"),
        ("bbbb", "champion", "2023-06-05"),
        ("bbbb", "demoted", "2023-06-28"),
    ]
    markdown = Path(out["markdown"]).read_text()
    assert "## Lifecycle" in markdown and "champion -> demoted" in markdown
    assert "probation -> demoted" not in markdown  # cccc's move is in July
    # The May session's gate moves belong to May.
    may = write_monthly_report(lab_home, parse_month("2023-05"), track=False)
    assert len(may["transitions"]) == 6 and may["promotions"] == []
    # Control: the season's June has no lifecycle move.
    _, season_out = season
    assert season_out["transitions"] == [] and season_out["promotions"] == []
    assert "Lifecycle moves in month 2023-06: none." in Path(season_out["markdown"]).read_text()
