"""Incumbents in the closed loop: a challenger must beat them, a decayed stand-in is demoted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from alphaloop.home import LabHome
from arena.bootstrap import BOOTSTRAP_GENOMES, arena_genomes
from arena.loop import close_loop, incumbent_record
from arena.market import load_arena_data, trading_days
from evolution.lifecycle import PromotionConfig
from evolution.store import GenePoolStore, PaperDayRecord, TransitionError, TransitionRecord

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"


def _empty_pool(home: LabHome) -> None:
    with GenePoolStore(home.gene_pool_db) as store:
        store.create_session(
            session_id="s", seed=0, as_of="2023-01-02", config={}, config_hash="c",
            data_hash="d", data_spec=SPEC, code_version="test",
        )  # fmt: skip


def _day(gid: str, account: str, day: str, allocation: float, pnl: float, **flags: float):
    return PaperDayRecord(
        genome_id=gid, account=account, day=day, allocation=allocation, pnl=pnl,
        shadow_return=0.001, figures={"turnover": 0.1, **flags},
    )  # fmt: skip


def test_incumbents_are_the_full_sleeves_beside_the_challenger_in_its_accounts(tmp_path):
    home = LabHome(tmp_path / "inc").ensure()
    _empty_pool(home)
    with GenePoolStore(home.gene_pool_db) as store:
        store.write_paper_days(
            [
                _day("challenger", "aggressive", "2023-06-05", 100.0, 1.0, probation=1.0),
                _day("challenger", "aggressive", "2023-06-06", 100.0, 2.0, probation=1.0),
                _day("challenger", "synthesis", "2023-06-06", 50.0, 1.0, probation=1.0),
                # Full sleeves in the challenger's accounts on its days: the incumbents.
                _day("i1", "aggressive", "2023-06-05", 1000.0, 10.0, probation=0.0),
                _day("i1", "aggressive", "2023-06-06", 1000.0, -30.0, probation=0.0),
                _day("i2", "synthesis", "2023-06-06", 500.0, 15.0, probation=0.0),
                # Not incumbents: another account, another challenger, a day it did not trade.
                _day("i3", "conservative", "2023-06-05", 1000.0, 500.0, probation=0.0),
                _day("other", "aggressive", "2023-06-05", 10.0, 9.0, probation=1.0),
                _day("i1", "aggressive", "2023-06-07", 1000.0, 900.0, probation=0.0),
            ]
        )
        record = incumbent_record(store, "challenger", until="2023-06-07")
        none = incumbent_record(store, "nobody", until="2023-06-07")
    assert [d.day for d in record] == ["2023-06-05", "2023-06-06"]
    assert record[0].paper_return == pytest.approx(10.0 / 1000.0)
    assert record[1].paper_return == pytest.approx((-30.0 + 15.0) / 1500.0)
    assert none == []


@dataclass(frozen=True)
class _GenomeDay:
    """A review record of one genome and account (the fields the loop reads)."""

    genome_id: str
    account: str
    day: date
    source: str
    allocation: float
    pnl: float
    expected_return: float
    expected_pnl: float = 0.0
    execution_cost: float = 0.0
    governor_cuts: float = 0.0
    debate_scaling: float = 0.0
    residual: float = 0.0
    avg_slippage_bps: float = 0.0
    fill_ratio: float = 1.0
    order_reject_count: float = 0.0
    risk_block_count: float = 0.0
    turnover: float = 0.1


def _stand_in_days(home: LabHome, daily_return: float, days: list[date]) -> list[dict]:
    """Close the loop on ``days`` of the breakout stand-in earning ``daily_return``."""
    data = load_arena_data(SPEC, home)
    gid = BOOTSTRAP_GENOMES["breakout"].id
    moves: list[dict] = []
    for day in days:
        row = _GenomeDay(
            genome_id=gid, account="aggressive", day=day, source="bootstrap:breakout",
            allocation=100_000.0, pnl=100_000.0 * daily_return, expected_return=daily_return,
        )  # fmt: skip
        out = close_loop(
            home, day, [row], config=PromotionConfig(), periods_per_year=252.0,
            daily=data.daily,
        )  # fmt: skip
        moves += list(out.transitions)
    return moves


def _season_days(home: LabHome) -> list[date]:
    days = trading_days(load_arena_data(SPEC, home).daily)
    return [d for d in days if date(2023, 6, 5) <= d][:12]


def test_a_decayed_bootstrap_stand_in_is_demoted_and_trades_no_more(tmp_path):
    home = LabHome(tmp_path / "decay").ensure()
    _empty_pool(home)
    gid = BOOTSTRAP_GENOMES["breakout"].id
    assert gid in {g.genome.id for g in arena_genomes(home)}
    moves = _stand_in_days(home, -0.03, _season_days(home))  # -3% a day: its edge is gone
    assert [m["genome_id"] for m in moves] == [gid]
    assert moves[0]["reason"].startswith("bootstrap stand-in breakout demoted")
    with GenePoolStore(home.gene_pool_db) as store:
        assert store.status_of(gid) == ("demoted", False)
        move = store.transitions(gid)[-1]
        assert (move["from_status"], move["to_status"], move["actor"]) == (
            "champion",
            "demoted",
            "system",
        )
        assert move["figures"]["expected_daily_vol"] > 0
        assert store.lineage(gid)[0]["operator"] == "bootstrap"
        demoted_on = move["day"]
    assert demoted_on < _season_days(home)[-1].isoformat()  # caught before the record ended
    assert gid not in {g.genome.id for g in arena_genomes(home)}


def test_a_stand_in_that_keeps_earning_is_left_trading(tmp_path):
    """The control: the same stand-in earning on paper is not demoted nor added to the pool."""
    home = LabHome(tmp_path / "keep").ensure()
    _empty_pool(home)
    gid = BOOTSTRAP_GENOMES["breakout"].id
    assert _stand_in_days(home, 0.01, _season_days(home)) == []
    with GenePoolStore(home.gene_pool_db) as store:
        assert store.status_of(gid) is None
        assert len({d.day for d in store.paper_days(gid)}) == 12
    assert gid in {g.genome.id for g in arena_genomes(home)}


def test_demoting_a_stand_in_the_pool_holds_is_refused_and_stores_nothing(tmp_path):
    home = LabHome(tmp_path / "held").ensure()
    _empty_pool(home)
    genome = BOOTSTRAP_GENOMES["breakout"]
    move = TransitionRecord(
        genome_id=genome.id, from_status="champion", to_status="demoted", reason="r", day="d"
    )
    kwargs = dict(genome_json=genome.to_json(), description="x", style=genome.style)
    with GenePoolStore(home.gene_pool_db) as store:
        store.demote_stand_in(move=move, **kwargs)
        before = store.transitions()
        with pytest.raises(TransitionError, match="already in the pool"):
            store.demote_stand_in(move=move, **kwargs)
        with pytest.raises(TransitionError, match="only demoted from champion"):
            store.demote_stand_in(
                move=TransitionRecord(
                    genome_id="zz", from_status="champion", to_status="retired", reason="r"
                ),
                **kwargs,
            )
        assert store.transitions() == before
        assert store.status_of("zz") is None
