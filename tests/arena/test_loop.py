"""The loop closes through the arena: paper days reach the pool, promotions and demotions."""

from __future__ import annotations

import json
from datetime import date

import pytest

from alphaloop.home import LabHome
from arena.bootstrap import BOOTSTRAP_GENOMES
from arena.day import LocalAccounts
from arena.ledger import Ledger
from arena.market import load_arena_data
from arena.personas import ArenaConfig
from arena.season import closed_loop, replay_season
from evolution.lifecycle import PromotionConfig
from evolution.store import GenePoolStore, MemberRecord, TransitionRecord

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
START, END = date(2023, 6, 5), date(2023, 6, 9)


def _pool_with_probation(
    home: LabHome, expected_daily_return: float, cusum_threshold: float = 5.0
) -> str:
    """A pool whose one trend genome passed the gate and is on probation (as a session does)."""
    genome = BOOTSTRAP_GENOMES["trend_ema"]
    with GenePoolStore(home.gene_pool_db) as store:
        store.create_session(
            session_id="s",
            seed=0,
            as_of="2023-06-01",
            config={},
            config_hash="c",
            data_hash="d",
            data_spec=SPEC,
            code_version="test",
        )
        store.commit_generation(
            session_id="s",
            generation=0,
            members=[
                MemberRecord(
                    genome_id=genome.id,
                    genome_json=genome.to_json(),
                    description=genome.describe(),
                    style=genome.style,
                    parents=(),
                    operator="random",
                    born_generation=0,
                    score=70.0,
                    status="alive",
                    overfit=False,
                    low_score_streak=0,
                ),
            ],
            stats={},
            transitions=[
                TransitionRecord(
                    genome_id=genome.id,
                    from_status="alive",
                    to_status="candidate",
                    reason="gate",
                    figures={
                        "expected_daily_return": expected_daily_return,
                        "expected_daily_vol": 0.01,
                        "cusum_threshold": cusum_threshold,
                    },
                ),
                TransitionRecord(
                    genome_id=genome.id,
                    from_status="candidate",
                    to_status="probation",
                    reason="auto",
                ),
            ],
        )
    return genome.id


def _without_incumbents(home: LabHome) -> None:
    """Take the aggressive persona's other bootstrap stand-ins out of trading (demoted, as the
    loop does to decayed ones), so a trend genome on probation trades without incumbents."""
    with GenePoolStore(home.gene_pool_db) as store:
        for name in ("trend_momentum", "breakout"):
            genome = BOOTSTRAP_GENOMES[name]
            store.demote_stand_in(
                genome_json=genome.to_json(), description=genome.describe(), style=genome.style,
                move=TransitionRecord(genome_id=genome.id, from_status="champion",
                                      to_status="demoted", reason="test set-up", day="2023-06-01"),
            )  # fmt: skip


def _season(home: LabHome, promotion: PromotionConfig) -> dict:
    return _replay(home, load_arena_data(SPEC, home), ArenaConfig(), promotion=promotion)


def _promote(home: LabHome, genome_id: str, day: str = "2023-06-02") -> None:
    """Move the pool's probation genome to champion (as the loop does on its paper record)."""
    with GenePoolStore(home.gene_pool_db) as store:
        store.transition(
            TransitionRecord(genome_id=genome_id, from_status="probation", to_status="champion",
                             reason="promoted", day=day),
        )  # fmt: skip


def _replay(
    home: LabHome, data, config: ArenaConfig, *, start: date = START, end: date = END,
    promotion: PromotionConfig | None = None,
) -> dict:  # fmt: skip
    """Replay ``start..end`` in ``home``; with ``promotion`` the loop is closed on its rules."""
    accounts = LocalAccounts(home, config, data.rules())
    try:
        return replay_season(
            accounts, data, start, end, home=home, config=config, write_report=False,
            close=None if promotion is None else closed_loop(home, data, promotion=promotion),
        )  # fmt: skip
    finally:
        accounts.close()


def _traded(home: LabHome, genome_id: str) -> dict[str, str]:
    """Day -> the source the plan traded the genome as (from the stored decisions)."""
    out: dict[str, str] = {}
    with Ledger(home.ledger_db) as ledger:
        for day in ledger.committed_days("aggressive"):
            for payload in ledger.decisions("aggressive", day).values():
                for item in payload.get("genomes", []):
                    if item["genome_id"] == genome_id:
                        out[day.isoformat()] = item["source"]
    return out


def test_probation_paper_days_reach_the_pool_and_a_consistent_record_is_promoted(tmp_path):
    home = LabHome(tmp_path / "promote").ensure()
    gid = _pool_with_probation(home, expected_daily_return=0.0)
    promotion = PromotionConfig(paper_days=3, min_days=2, promote_z=10.0, demote_z=10.0)
    result = _season(home, promotion)
    with GenePoolStore(home.gene_pool_db) as store:
        days = store.paper_days(gid)
        moves = [m for m in store.transitions(gid) if m["actor"] == "system"]
        status = store.status_of(gid)
        feedback = store.feedback(gid)
    with Ledger(home.ledger_db) as ledger:
        reviewed = ledger.genome_days(genome_id=gid)
    # Every genome day the review stored is in the pool, allocation and P&L unchanged.
    assert days and len(days) == len(reviewed)
    assert sorted((d.account, d.day, d.allocation, d.pnl) for d in days) == sorted(
        (r.account, r.day.isoformat(), r.allocation, r.pnl) for r in reviewed
    )
    assert status == ("champion", False)
    promoted = moves[-1]
    assert (promoted["from_status"], promoted["to_status"]) == ("probation", "champion")
    # Promoted from the paper stage (3 days) on, on the first day it also beat its
    # incumbents (the bootstrap genomes beside it in the same accounts).
    paper = sorted({d.day for d in days})
    assert promoted["day"] >= paper[2]
    assert promoted["figures"]["paper_days"] == paper.index(promoted["day"]) + 1
    figures = promoted["figures"]
    assert figures["incumbent_days"] >= 3
    assert figures["challenger_mean"] >= figures["incumbent_mean"]
    assert result["loop"]["promoted"][0]["genome_id"] == gid
    assert feedback and {f["account"] for f in feedback} <= {"aggressive", "conservative",
                                                             "synthesis"}  # fmt: skip
    # Traded on probation until promoted, then as a champion.
    traded = _traded(home, gid)
    assert traded[min(traded)] == "probation" and traded[max(traded)] == "champion"


def test_probation_record_far_below_its_backtest_is_demoted_and_stops_trading(tmp_path):
    home = LabHome(tmp_path / "demote").ensure()
    # The backtest "expected" +5% a day: no paper record is consistent with that.
    gid = _pool_with_probation(home, expected_daily_return=0.05)
    promotion = PromotionConfig(paper_days=10, min_days=2, demote_z=2.5)
    result = _season(home, promotion)
    with GenePoolStore(home.gene_pool_db) as store:
        status = store.status_of(gid)
        moves = store.transitions(gid)
    assert status == ("demoted", False)
    demoted = moves[-1]
    assert demoted["to_status"] == "demoted" and demoted["figures"]["z"] < -2.5
    assert result["loop"]["demoted"][0]["genome_id"] == gid
    traded = _traded(home, gid)
    assert traded and max(traded) <= demoted["day"]  # not traded after the demotion day
    assert max(traded) < END.isoformat()


def test_open_loop_season_leaves_the_pool_alone(tmp_path):
    """The control: without the loop the same season stores no paper day and moves nothing."""
    home = LabHome(tmp_path / "open").ensure()
    gid = _pool_with_probation(home, expected_daily_return=0.05)
    data = load_arena_data(SPEC, home)
    config = ArenaConfig()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        result = replay_season(
            accounts, data, START, END, home=home, config=config, write_report=False
        )
    finally:
        accounts.close()
    with GenePoolStore(home.gene_pool_db) as store:
        assert store.paper_days(gid) == [] and store.status_of(gid) == ("probation", False)
    assert result["loop"] is None


@pytest.mark.parametrize("again", [1])
def test_closing_the_same_day_twice_decides_nothing_twice(tmp_path, again):
    home = LabHome(tmp_path / "twice").ensure()
    gid = _pool_with_probation(home, expected_daily_return=0.05)
    promotion = PromotionConfig(paper_days=10, min_days=2)
    _season(home, promotion)
    data = load_arena_data(SPEC, home)
    with GenePoolStore(home.gene_pool_db) as store:
        before = (json.dumps(store.transitions(gid), default=str), len(store.paper_days(gid)))
    for _ in range(again):
        closed_loop(home, data, promotion=promotion)(END)
    with GenePoolStore(home.gene_pool_db) as store:
        after = (json.dumps(store.transitions(gid), default=str), len(store.paper_days(gid)))
    assert after == before


def test_a_genome_moves_at_most_once_a_day_even_when_the_day_is_closed_again(tmp_path):
    home = LabHome(tmp_path / "once").ensure()
    # Promotable at once (z >= -10), then demotable at once as a champion (threshold ~0).
    gid = _pool_with_probation(home, expected_daily_return=0.05, cusum_threshold=1e-9)
    _without_incumbents(home)  # nothing beside it to beat: promoted on its own record
    promotion = PromotionConfig(paper_days=2, min_days=2, promote_z=10.0, demote_z=10.0)
    data = load_arena_data(SPEC, home)
    config = ArenaConfig()
    close = closed_loop(home, data, promotion=promotion)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        replay_season(
            accounts, data, START, date(2023, 6, 6), home=home, config=config,
            write_report=False, close=close,
        )  # fmt: skip
        with GenePoolStore(home.gene_pool_db) as store:
            assert store.status_of(gid) == ("champion", False)
        again = close(date(2023, 6, 6))
        assert again.transitions == ()
        with GenePoolStore(home.gene_pool_db) as store:
            assert store.status_of(gid) == ("champion", False)
        # The control: the next day the champion rule does act.
        replay_season(
            accounts, data, date(2023, 6, 7), date(2023, 6, 7), home=home, config=config,
            write_report=False, close=close,
        )  # fmt: skip
    finally:
        accounts.close()
    with GenePoolStore(home.gene_pool_db) as store:
        assert store.status_of(gid) == ("demoted", False)
        days = [m["day"] for m in store.transitions(gid) if m["day"] is not None]
    assert days == ["2023-06-06", "2023-06-07"]


def _sources(home: LabHome, account: str) -> dict[str, set[str]]:
    """Day -> the sources of the genomes the account's plan traded (stored decisions)."""
    out: dict[str, set[str]] = {}
    with Ledger(home.ledger_db) as ledger:
        for day in ledger.committed_days(account):
            for payload in ledger.decisions(account, day).values():
                for item in payload.get("genomes", []):
                    out.setdefault(day.isoformat(), set()).add(item["source"])
    return out


def test_a_persona_without_an_eligible_champion_trades_its_bootstrap_genomes(tmp_path):
    # The pool's one champion is a trend genome: the aggressive persona trades it alone, the
    # conservative persona (defensive and mean-reversion styles) keeps its bootstrap genomes
    # rather than cash; once the champion is demoted the aggressive persona's come back.
    home = LabHome(tmp_path / "per-persona").ensure()
    gid = _pool_with_probation(home, expected_daily_return=0.001)
    _promote(home, gid)
    data = load_arena_data(SPEC, home)
    config = ArenaConfig()
    _replay(home, data, config, end=date(2023, 6, 6))
    with GenePoolStore(home.gene_pool_db) as store:
        store.transition(
            TransitionRecord(genome_id=gid, from_status="champion", to_status="demoted",
                             reason="cusum", day="2023-06-06"),
        )  # fmt: skip
    _replay(home, data, config, start=date(2023, 6, 7))
    aggressive, conservative = _sources(home, "aggressive"), _sources(home, "conservative")
    champion_days = ["2023-06-05", "2023-06-06"]
    assert all(aggressive[d] == {"champion"} for d in champion_days), aggressive
    after = [d for d in aggressive if d > "2023-06-06"]
    assert after and all(
        aggressive[d] and all(s.startswith("bootstrap:") for s in aggressive[d]) for d in after
    ), aggressive
    assert all(
        conservative[d] and all(s.startswith("bootstrap:") for s in conservative[d])
        for d in conservative
    ), conservative
    # The demoted champion itself never trades again.
    assert max(_traded(home, gid)) <= "2023-06-06"


def _without_trend(config: ArenaConfig) -> ArenaConfig:
    """The arena with no persona that trades the trend style (a trend champion sits out)."""
    personas = config.personas
    update = {
        name: getattr(personas, name).model_copy(
            update={
                "preferred_styles": tuple(
                    s for s in getattr(personas, name).preferred_styles if s != "trend"
                )
            }
        )
        for name in ("aggressive", "conservative", "synthesis")
    }
    return config.model_copy(update={"personas": personas.model_copy(update=update)})


def test_a_champion_that_sits_out_is_judged_on_its_same_day_backtest(tmp_path):
    from arena.review import shadow_returns

    home = LabHome(tmp_path / "sat").ensure()
    # The backtest claims 5% a day: the live bars give far less, so the CUSUM must cross.
    gid = _pool_with_probation(home, expected_daily_return=0.05, cusum_threshold=3.0)
    _promote(home, gid)
    data = load_arena_data(SPEC, home)
    config = _without_trend(ArenaConfig())
    result = _replay(home, data, config, promotion=PromotionConfig())
    assert _traded(home, gid) == {}  # it never had a sleeve
    with GenePoolStore(home.gene_pool_db) as store:
        stored = store.shadow_days(gid)
        assert store.paper_days(gid) == []
        (move,) = [m for m in store.transitions(gid) if m["to_status"] == "demoted"]
    # One sat-out day per arena day until the demotion, each the review's shadow return.
    days = [d for d, _ in stored]
    assert days[0] == START.isoformat() and days[-1] == move["day"]
    genome = BOOTSTRAP_GENOMES["trend_ema"]
    for day, value in stored:
        expected = shadow_returns({gid: genome}, data.daily, date.fromisoformat(day))[gid]
        assert value == expected
    # (0.05 - b) / 0.01 - 0.5 x 5 a day is about 2.5: crossing 3 takes two days.
    assert len(stored) == 2 and "CUSUM" in move["reason"]
    assert move["figures"]["sat_out_days"] == 2.0
    assert result["loop"]["demoted"][0]["genome_id"] == gid
    # The control: a paused champion sits out unjudged (no backtested day, no move).
    home2 = LabHome(tmp_path / "paused").ensure()
    gid2 = _pool_with_probation(home2, expected_daily_return=0.05, cusum_threshold=3.0)
    _promote(home2, gid2)
    with GenePoolStore(home2.gene_pool_db) as store:
        store.transition(
            TransitionRecord(genome_id=gid2, from_status="champion", to_status="champion",
                             kind="pause", actor="test", reason="out", day="2023-06-02"),
        )  # fmt: skip
    _replay(home2, data, config, promotion=PromotionConfig())
    with GenePoolStore(home2.gene_pool_db) as store:
        assert store.shadow_days(gid2) == [] and store.status_of(gid2) == ("champion", True)


def test_a_day_the_accounts_held_none_of_the_genome_is_not_paper_evidence(tmp_path):
    from arena.loop import paper_record
    from evolution.store import PaperDayRecord

    home = LabHome(tmp_path / "unexecuted").ensure()
    gid = _pool_with_probation(home, expected_daily_return=0.001)

    def row(day: str, account: str, pnl: float, turnover: float, shadow: float):
        return PaperDayRecord(
            genome_id=gid, account=account, day=day, allocation=1000.0, pnl=pnl,
            shadow_return=shadow, figures={"turnover": turnover},
        )  # fmt: skip

    with GenePoolStore(home.gene_pool_db) as store:
        store.write_paper_days(
            [
                row("2023-06-05", "aggressive", 5.0, 0.2, 0.004),  # traded
                row("2023-06-06", "aggressive", 0.0, 0.0, 0.010),  # nothing held or traded
                row("2023-06-06", "synthesis", 0.0, 0.0, 0.010),
                row("2023-06-07", "aggressive", 0.0, 0.0, 0.0),  # flat, as its backtest was
                row("2023-06-08", "aggressive", 0.0, 0.3, -0.002),  # traded, no P&L yet
            ]
        )
        probation = paper_record(store, gid, until="2023-06-08")
        champion = paper_record(store, gid, until="2023-06-08", sat_out=True)
    assert [d.day for d in probation] == ["2023-06-05", "2023-06-07", "2023-06-08"]
    assert all(d.traded for d in probation)
    assert [(d.day, d.traded, d.paper_return) for d in champion] == [
        ("2023-06-05", True, 0.005),
        ("2023-06-06", False, 0.010),  # read as a sat-out day: its same-day backtest
        ("2023-06-07", True, 0.0),
        ("2023-06-08", True, 0.0),
    ]


def test_schema_one_champions_get_an_expectation_calibrated_and_are_judged(tmp_path):
    import shutil
    from pathlib import Path

    import numpy as np

    from arena.market import day_index
    from arena.plan import HISTORY_BARS, TRADE_BARS
    from genome.compile import compile_and_backtest
    from genome.genes import Genome

    # A home written by the code before the lifecycle (gene-pool schema 1): four champions
    # without gate figures, which the loop could never judge.
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "home_v1"
    home = LabHome(tmp_path / "v1").ensure()
    for name in ("gene_pool.sqlite", "ledger.sqlite"):
        shutil.copyfile(fixture / name, home.root / name)
    with GenePoolStore(home.gene_pool_db) as store:
        champions = [str(g["genome_id"]) for g in store.list_genomes("champion")]
        assert champions and all(store.expectation_figures(g) == {} for g in champions)
    data = load_arena_data("synthetic", home)
    config = ArenaConfig()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        replay_season(
            accounts, data, date(2025, 7, 3), date(2025, 7, 4), home=home, config=config,
            write_report=False, close=closed_loop(home, data, promotion=PromotionConfig()),
        )  # fmt: skip
    finally:
        accounts.close()
    with GenePoolStore(home.gene_pool_db) as store:
        judged = [g for g in champions if store.paper_days(g) or store.shadow_days(g)]
        assert judged
        for gid in judged:
            record = store.expectation_record(gid)
            assert record is not None and "no gate figures" in record["reason"]
            # The documented window: the plan's backtest of the bars before its first day.
            first = record["day"]
            index = day_index(data.daily, date.fromisoformat(first))
            panel = data.daily.slice_bars(max(0, index - HISTORY_BARS), index)
            genome = Genome.from_json(str(store.genome(gid)["genome_json"]))
            start = panel.n_bars - TRADE_BARS
            equity = compile_and_backtest(genome, panel, start=start).equity.to_numpy(float)
            returns = np.diff(equity) / equity[:-1]
            figures = store.expectation_figures(gid)
            assert figures["expected_daily_return"] == pytest.approx(returns.mean(), rel=1e-12)
            assert figures["expected_daily_vol"] == pytest.approx(returns.std(ddof=1), rel=1e-12)
            assert first == "2025-07-03"  # its first paper day in this season


def test_a_season_replayed_again_on_its_home_reports_its_moves_and_decides_none_again(tmp_path):
    home = LabHome(tmp_path / "again").ensure()
    gid = _pool_with_probation(home, expected_daily_return=0.0)
    promotion = PromotionConfig(paper_days=3, min_days=2, promote_z=10.0, demote_z=10.0)
    first = _season(home, promotion)
    with GenePoolStore(home.gene_pool_db) as store:
        stored = store.transitions(gid)
    assert [m["genome_id"] for m in first["loop"]["promoted"]] == [gid]
    again = _season(home, promotion)  # every day already committed
    assert again["ran"] == 0 and again["skipped"] == first["days"]
    # The season's record is the same; nothing new was decided or stored.
    assert again["loop"]["promoted"] == first["loop"]["promoted"]
    assert again["loop"]["transitions"] == first["loop"]["transitions"]
    with GenePoolStore(home.gene_pool_db) as store:
        assert store.transitions(gid) == stored
