"""Gene-pool store: atomic generations, resume point, lineage, queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evolution.store import (
    SCHEMA_VERSION,
    STATUSES,
    GenePoolStore,
    MemberRecord,
    PaperDayRecord,
    TransitionError,
    TransitionRecord,
    TrialRecord,
    VerdictRecord,
)

FIXTURE_V3 = Path(__file__).resolve().parents[1] / "fixtures" / "home_v3" / "gene_pool.sqlite"
FIXTURE_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "home_v1" / "gene_pool.sqlite"


def _member(
    gid: str,
    *,
    parents: tuple[str, ...] = (),
    status: str = "alive",
    score: float = 50.0,
    operator: str = "random",
    born: int = 0,
) -> MemberRecord:
    return MemberRecord(
        genome_id=gid,
        genome_json=f'{{"id": "{gid}"}}',
        description=f"genome {gid}",
        style="trend",
        parents=parents,
        operator=operator,
        born_generation=born,
        score=score,
        status=status,
        overfit=False,
        low_score_streak=0,
        window_stats={"live": {"sharpe": 1.0}, "year_ago": {"sharpe": 0.5}},
    )


def _store(tmp_path: Path) -> GenePoolStore:
    store = GenePoolStore(tmp_path / "pool.sqlite")
    store.create_session(
        session_id="s1",
        seed=1,
        as_of="2024-01-02",
        config={"population": 4},
        config_hash="c",
        data_hash="d",
        data_spec="synthetic",
        code_version="test",
    )
    return store


def test_store_commit_generation_then_query_everything(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(
        session_id="s1",
        generation=0,
        members=[_member("aaa1"), _member("bbb2")],
        stats={"best": 50.0},
    )
    store.commit_generation(
        session_id="s1",
        generation=1,
        members=[
            _member("aaa1"),
            _member("ccc3", parents=("aaa1", "bbb2"), operator="crossover", born=1),
        ],
        stats={"best": 61.0},
        verdicts=[
            VerdictRecord(genome_id="aaa1", passed=True, reasons=("ok",), figures={"pf": 1.5})
        ],
        transitions=[
            TransitionRecord(
                genome_id="aaa1", from_status="alive", to_status="candidate", reason="gate"
            )
        ],
    )
    assert store.last_generation("s1") == 1
    assert [g["best"] for g in store.generation_stats("s1")] == [50.0, 61.0]
    assert [g["genome_id"] for g in store.list_genomes("candidate")] == ["aaa1"]
    assert [t["to_status"] for t in store.transitions("aaa1")] == ["candidate"]
    shown = store.genome("ccc")
    assert shown is not None and shown["parents"] == ["aaa1", "bbb2"]
    assert {s["window"] for s in shown["stats"]} == {"live", "year_ago"}
    assert store.genome("aaa1")["verdicts"][0]["passed"] is True
    assert store.verdicts("s1", 1) == [{"genome_id": "aaa1", "passed": True, "reasons": ["ok"]}]
    assert store.verdicts("s1", 0) == []
    assert {r["genome_id"] for r in store.lineage("ccc3")} == {"ccc3", "aaa1", "bbb2"}
    assert [m["genome_id"] for m in store.population("s1", 1)] == ["aaa1", "ccc3"]


def test_store_failed_generation_leaves_nothing_behind(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    duplicate = [_member("zzz9"), _member("zzz9")]  # the second insert violates the primary key
    with pytest.raises(sqlite3.IntegrityError):
        store.commit_generation(session_id="s1", generation=1, members=duplicate, stats={})
    assert store.last_generation("s1") == 0
    assert store.genome("zzz9") is None
    # The next attempt of the same generation goes through.
    store.commit_generation(session_id="s1", generation=1, members=[_member("zzz9")], stats={})
    assert store.last_generation("s1") == 1


def test_store_refuses_out_of_order_generation(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(RuntimeError, match="out of order"):
        store.commit_generation(session_id="s1", generation=1, members=[], stats={})
    store.commit_generation(session_id="s1", generation=0, members=[], stats={})
    with pytest.raises(RuntimeError, match="out of order"):
        store.commit_generation(session_id="s1", generation=0, members=[], stats={})


def test_store_reopened_after_close_keeps_committed_state(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    store.close()
    again = GenePoolStore(tmp_path / "pool.sqlite")
    assert again.last_generation("s1") == 0
    assert again.find_session(config_hash="c", data_hash="d", seed=1) == "s1"
    assert again.find_session(config_hash="c", data_hash="other", seed=1) is None


def test_store_rejects_unknown_status_filter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="alive, culled, candidate, probation, champion"):
        _store(tmp_path).list_genomes("zombie")


def test_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "pool.sqlite"
    GenePoolStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(RuntimeError, match="refusing"):
        GenePoolStore(path)


def test_store_lifecycle_status_survives_a_later_generation_verdict(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    store.transition(
        TransitionRecord(genome_id="aaa1", from_status="alive", to_status="candidate", reason="g"),
        TransitionRecord(
            genome_id="aaa1", from_status="candidate", to_status="probation", reason="auto"
        ),
    )
    # The next generation culls it on its backtest: the lifecycle status stays (paper decides).
    store.commit_generation(
        session_id="s1", generation=1, members=[_member("aaa1", status="culled")], stats={}
    )
    assert store.status_of("aaa1") == ("probation", False)
    assert store.population("s1", 1)[0]["status"] == "culled"


def test_store_refused_transition_stores_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    with pytest.raises(TransitionError, match="alive -> champion is not an allowed move"):
        TransitionRecord(genome_id="aaa1", from_status="alive", to_status="champion", reason="x")
    good = TransitionRecord(
        genome_id="aaa1", from_status="alive", to_status="candidate", reason="gate"
    )
    stale = TransitionRecord(
        genome_id="aaa1", from_status="candidate", to_status="retired", reason="no"
    )
    # All or none: the second move does not match the stored status at its turn.
    with pytest.raises(TransitionError, match="is alive, not candidate"):
        store.transition(stale, good)
    assert store.status_of("aaa1") == ("alive", False)
    assert store.transitions() == []
    with pytest.raises(TransitionError, match="no genome 'nope'"):
        store.transition(
            TransitionRecord(genome_id="nope", from_status="alive", to_status="retired", reason="r")
        )


def test_store_pause_and_resume_are_stored_with_actor_and_reason(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    pause = TransitionRecord(
        genome_id="aaa1",
        from_status="alive",
        to_status="alive",
        kind="pause",
        actor="alice",
        reason="odd fills",
    )
    store.transition(pause)
    assert store.status_of("aaa1") == ("alive", True)
    with pytest.raises(TransitionError, match="already paused"):
        store.transition(pause)
    store.transition(
        TransitionRecord(
            genome_id="aaa1",
            from_status="alive",
            to_status="alive",
            kind="resume",
            actor="bob",
            reason="checked",
        )
    )
    moves = store.transitions("aaa1")
    assert [(m["kind"], m["actor"], m["reason"]) for m in moves] == [
        ("pause", "alice", "odd fills"),
        ("resume", "bob", "checked"),
    ]
    assert all(m["at"] for m in moves) and store.status_of("aaa1") == ("alive", False)


def test_store_trial_registry_counts_a_genome_once_ever(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit_generation(
        session_id="s1",
        generation=0,
        members=[_member("aaa1")],
        stats={},
        trials=[TrialRecord(genome_id="aaa1", sharpe=0.1, generation=0)],
    )
    store.commit_generation(
        session_id="s1",
        generation=1,
        members=[_member("aaa1")],
        stats={},
        trials=[
            TrialRecord(genome_id="aaa1", sharpe=0.9, generation=1),
            TrialRecord(genome_id="bbb2", sharpe=-0.2, generation=1),
        ],
    )
    assert store.trial_sharpes() == (2, [0.1, -0.2])
    assert store.trial_ids() == {"aaa1", "bbb2"}


def test_store_written_by_schema_one_code_opens_and_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "gene_pool.sqlite"
    path.write_bytes(FIXTURE_V1.read_bytes())
    old = sqlite3.connect(path)
    old_genomes = old.execute("SELECT genome_id, status FROM genomes ORDER BY genome_id").fetchall()
    old_members = old.execute("SELECT COUNT(DISTINCT genome_id) FROM members").fetchone()[0]
    old_sessions = old.execute("SELECT session_id FROM sessions").fetchall()
    assert old.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("1",)
    old.close()
    with GenePoolStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 4
        listed = [(g["genome_id"], g["status"]) for g in store.list_genomes()]
        assert listed == [tuple(row) for row in old_genomes]
        champions = [g for g, status in listed if status == "champion"]
        assert champions and all(
            [t["actor"] for t in store.transitions(g)] == ["migration"] for g in champions
        )
        # Every genome schema 1 put in a population counts as a trial (without a Sharpe).
        assert store.trial_sharpes() == (old_members, [])
        assert [s["session_id"] for s in [store.latest_session() or {}]] == [old_sessions[0][0]]
        integrity = store._connection.execute("PRAGMA foreign_key_check").fetchall()
        assert integrity == []
    # Opening again is a no-op (already at the current schema).
    with GenePoolStore(path) as store:
        assert store.schema_version == 4 and len(store.transitions()) == len(champions)


def test_store_written_by_schema_three_code_opens_and_upgrades(tmp_path: Path) -> None:
    # A pool written by today's main before shadow_days: a champion with its paper record.
    path = tmp_path / "gene_pool.sqlite"
    path.write_bytes(FIXTURE_V3.read_bytes())
    old = sqlite3.connect(path)
    assert old.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("3",)
    tables = {"genomes", "transitions", "paper_days", "feedback", "trials"}
    before = {t: old.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    old.close()
    with GenePoolStore(path) as store:
        assert store.schema_version == 4
        (champion,) = [g["genome_id"] for g in store.list_genomes("champion")]
        assert store.shadow_days(champion) == []
        assert len(store.paper_days(champion)) == 7 and len(store.paper_days()) == 19
        store.write_shadow_days([(champion, "2023-06-12", -0.01)])
        assert store.shadow_days(champion) == [("2023-06-12", -0.01)]
    after = sqlite3.connect(path)
    try:
        for table in tables:
            assert after.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() == before[table]
    finally:
        after.close()


# --------------------------------------------------------------------------- read model
def _session(store: GenePoolStore, session_id: str, as_of: str) -> None:
    store.create_session(
        session_id=session_id,
        seed=1,
        as_of=as_of,
        config={},
        config_hash="c",
        data_hash="d",
        data_spec="synthetic",
        code_version="test",
    )


def _two_sessions(tmp_path: Path) -> GenePoolStore:
    """s1 (as of 2024-01-02): aaa1, bbb2 founders, then ccc3 born and bbb2 culled; s2 (as of
    2024-01-09): aaa1 and ccc3 carried over, ddd4 born by mutation, aaa1 culled."""
    store = _store(tmp_path)
    store.commit_generation(
        session_id="s1",
        generation=0,
        members=[_member("aaa1", score=40.0), _member("bbb2", score=60.0)],
        stats={"best_score": 60.0},
    )
    store.commit_generation(
        session_id="s1",
        generation=1,
        members=[
            _member("aaa1", score=45.0),
            _member("bbb2", score=20.0, status="culled"),
            _member("ccc3", parents=("aaa1", "bbb2"), operator="crossover", born=1, score=70.0),
        ],
        stats={"best_score": 70.0},
        verdicts=[
            VerdictRecord(genome_id="ccc3", passed=True, reasons=("passed",), figures={"pf": 2.0}),
            VerdictRecord(genome_id="aaa1", passed=False, reasons=("pf low",), figures={}),
        ],
    )
    _session(store, "s2", "2024-01-09T00:00:00")
    store.commit_generation(
        session_id="s2",
        generation=0,
        members=[
            _member("aaa1", score=30.0, status="culled"),
            _member("ccc3", parents=("aaa1", "bbb2"), operator="crossover", born=1, score=80.0),
            _member("ddd4", parents=("ccc3",), operator="parameter_mutation", score=80.0),
        ],
        stats={"best_score": 80.0},
    )
    return store


def test_store_sessions_as_of_filters_by_the_as_of_day_inclusive(tmp_path: Path) -> None:
    store = _two_sessions(tmp_path)
    assert [s["session_id"] for s in store.sessions_as_of()] == ["s1", "s2"]
    assert [s["session_id"] for s in store.sessions_as_of("2024-01-03", "2024-01-09")] == ["s2"]
    assert [s["session_id"] for s in store.sessions_as_of(None, "2024-01-02")] == ["s1"]
    assert store.sessions_as_of("2024-01-10") == []
    assert set(store.sessions_as_of()[0]) == {"session_id", "as_of", "created_at", "data_spec"}


def test_store_births_and_member_genomes_count_each_genome_in_its_first_session(
    tmp_path: Path,
) -> None:
    store = _two_sessions(tmp_path)
    assert store.births_by_operator(["s1"]) == {"crossover": 1, "random": 2}
    # ccc3 was carried into s2: born once, in s1.
    assert store.births_by_operator(["s2"]) == {"parameter_mutation": 1}
    assert store.births_by_operator([]) == {}
    assert store.member_genome_ids(["s1"], "culled") == ["bbb2"]
    assert store.member_genome_ids(["s1", "s2"], "culled") == ["aaa1", "bbb2"]
    assert store.member_genome_ids(["s2"], "champion") == []
    with pytest.raises(ValueError, match="status must be one of"):
        store.member_genome_ids(["s1"], "zombie")


def test_store_ranked_population_best_first_last_generation_by_default(tmp_path: Path) -> None:
    store = _two_sessions(tmp_path)
    ranked = store.ranked_population("s1")
    assert [(m["genome_id"], m["score"], m["status"]) for m in ranked] == [
        ("ccc3", 70.0, "alive"),
        ("aaa1", 45.0, "alive"),
        ("bbb2", 20.0, "culled"),
    ]
    assert ranked[0]["parents"] == ("aaa1", "bbb2") and ranked[0]["style"] == "trend"
    assert [m["genome_id"] for m in store.ranked_population("s1", 0)] == ["bbb2", "aaa1"]
    # Equal scores: the id breaks the tie.
    assert [m["genome_id"] for m in store.ranked_population("s2")][:2] == ["ccc3", "ddd4"]
    assert store.ranked_population("nope") == []


def test_store_gate_verdicts_and_member_histories_in_lived_order(tmp_path: Path) -> None:
    store = _two_sessions(tmp_path)
    verdicts = store.gate_verdicts(["s1", "s2"])
    assert [(v["genome_id"], v["passed"], v["reasons"]) for v in verdicts] == [
        ("aaa1", False, ["pf low"]),
        ("ccc3", True, ["passed"]),
    ]
    assert verdicts[1]["figures"] == {"pf": 2.0} and verdicts[1]["as_of"] == "2024-01-02"
    assert store.gate_verdicts(["s2"]) == []
    history = store.member_histories(["s2"])
    # Every row of the genomes in s2 (bbb2 is not in s2), s1's rows before s2's.
    assert [(h["genome_id"], h["session_id"], h["generation"], h["status"]) for h in history] == [
        ("aaa1", "s1", 0, "alive"),
        ("aaa1", "s1", 1, "alive"),
        ("aaa1", "s2", 0, "culled"),
        ("ccc3", "s1", 1, "alive"),
        ("ccc3", "s2", 0, "alive"),
        ("ddd4", "s2", 0, "alive"),
    ]


def test_store_ancestry_breadth_first_with_depth_and_limit(tmp_path: Path) -> None:
    store = _two_sessions(tmp_path)
    found = store.ancestry(["ddd4"])
    assert [(n["genome_id"], n["depth"], n["operator"]) for n in found] == [
        ("ddd4", 0, "parameter_mutation"),
        ("ccc3", 1, "crossover"),
        ("aaa1", 2, "random"),
        ("bbb2", 2, "random"),
    ]
    assert found[1]["parents"] == ["aaa1", "bbb2"] and found[1]["generation"] == 1
    # Two roots share one walk: aaa1 is reached from the root first (depth 0), once.
    assert [(n["genome_id"], n["depth"]) for n in store.ancestry(["ccc3", "aaa1"])] == [
        ("ccc3", 0),
        ("aaa1", 0),
        ("bbb2", 1),
    ]
    assert len(store.ancestry(["ddd4"], limit=2)) == 2
    assert store.ancestry(["unknown"]) == []


def test_store_transitions_between_dates_a_move_by_the_day_it_was_decided(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    store = _store(tmp_path)
    store.commit_generation(
        session_id="s1",
        generation=0,
        members=[_member("aaa1"), _member("bbb2")],
        stats={},
        transitions=[
            TransitionRecord(
                genome_id="aaa1", from_status="alive", to_status="candidate", reason="gate"
            )
        ],
    )
    store.transition(
        TransitionRecord(
            genome_id="aaa1",
            from_status="candidate",
            to_status="probation",
            reason="arena",
            figures={"z": -0.5},
            day="2024-01-10",
        )
    )
    store.transition(
        TransitionRecord(
            genome_id="bbb2",
            from_status="alive",
            to_status="alive",
            kind="pause",
            actor="alice",
            reason="look first",
        )
    )
    today = datetime.now(UTC).date().isoformat()
    every = store.transitions_between()
    # Gate move: its session's as-of day; arena move: its day; a user's command: when stored.
    assert [(m["genome_id"], m["effective_day"]) for m in every] == [
        ("aaa1", "2024-01-02"),
        ("aaa1", "2024-01-10"),
        ("bbb2", today),
    ]
    assert [m["seq"] for m in every] == [m["seq"] for m in store.transitions()]
    week = store.transitions_between("2024-01-08", "2024-01-14")
    assert [(m["to_status"], m["figures"], m["actor"]) for m in week] == [
        ("probation", {"z": -0.5}, "system")
    ]
    assert [m["kind"] for m in store.transitions_between(today, today)] == ["pause"]
    assert store.transitions_between("2023-01-01", "2023-12-31") == []


def test_store_paper_days_and_feedback_between_keep_the_period_only(tmp_path: Path) -> None:
    from evolution.feedback import LiveFeedback

    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    rows = [
        PaperDayRecord(
            genome_id=gid, account=account, day=day, allocation=1000.0, pnl=pnl,
            shadow_return=0.001, figures={"execution_cost": -1.0},
        )
        for gid, account, day, pnl in (
            ("aaa1", "aggressive", "2024-01-05", 2.0),
            ("aaa1", "aggressive", "2024-01-08", 3.0),
            ("aaa1", "synthesis", "2024-01-08", -1.0),
            ("bbb2", "aggressive", "2024-01-12", 4.0),
            ("aaa1", "aggressive", "2024-01-15", 5.0),
        )
    ]  # fmt: skip
    store.write_paper_days(rows)
    found = store.paper_days_between("2024-01-08", "2024-01-14")
    assert [(r.genome_id, r.account, r.day, r.pnl) for r in found] == [
        ("aaa1", "aggressive", "2024-01-08", 3.0),
        ("aaa1", "synthesis", "2024-01-08", -1.0),
        ("bbb2", "aggressive", "2024-01-12", 4.0),
    ]
    assert found[0].figures == {"execution_cost": -1.0}
    assert [r.day for r in store.paper_days_between("2024-01-01", "2024-01-31", "aaa1")] == [
        "2024-01-05",
        "2024-01-08",
        "2024-01-08",
        "2024-01-15",
    ]

    def record(start: str, end: str) -> LiveFeedback:
        return LiveFeedback(
            genome_id="aaa1", account="aggressive", period_start=start, period_end=end, days=2,
            total_return=0.01, max_drawdown=0.0, volatility=0.1, sharpe=1.0, win_rate=0.5,
            turnover=0.2, avg_slippage_bps=3.0, fill_ratio=1.0, order_reject_count=0,
            risk_block_count=0,
        )  # fmt: skip

    store.write_feedback([record("2024-01-01", "2024-01-07"), record("2024-01-08", "2024-01-14")])
    overlapping = store.feedback_between("2024-01-07", "2024-01-08")
    assert [f["period_start"] for f in overlapping] == ["2024-01-01", "2024-01-08"]
    assert [f["period_start"] for f in store.feedback_between("2024-01-09", "2024-01-20")] == [
        "2024-01-08"
    ]
    assert store.feedback_between("2024-02-01", "2024-02-29") == []


def test_store_status_counts_every_status_and_the_paused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.status_counts() == {**dict.fromkeys(STATUSES, 0), "paused": 0}
    store.commit_generation(
        session_id="s1",
        generation=0,
        members=[_member("aaa1"), _member("bbb2"), _member("ccc3", status="culled")],
        stats={},
        transitions=[
            TransitionRecord(
                genome_id="aaa1", from_status="alive", to_status="candidate", reason="gate"
            ),
            TransitionRecord(
                genome_id="aaa1", from_status="candidate", to_status="probation", reason="auto"
            ),
            TransitionRecord(
                genome_id="aaa1",
                from_status="probation",
                to_status="probation",
                kind="pause",
                reason="look",
            ),
        ],
    )
    counts = store.status_counts()
    assert list(counts) == [*STATUSES, "paused"]
    assert [counts[key] for key in ("alive", "culled", "probation", "paused")] == [1, 1, 1, 1]
    assert sum(counts[s] for s in STATUSES) == len(store.list_genomes())


def test_store_out_of_order_generation_is_an_alphaloop_error_naming_the_pool(
    tmp_path: Path,
) -> None:
    from alphaloop.errors import AlphaLoopError
    from evolution.store import GenerationOutOfOrder

    store = _store(tmp_path)
    store.commit_generation(session_id="s1", generation=0, members=[_member("aaa1")], stats={})
    with pytest.raises(GenerationOutOfOrder) as caught:
        store.commit_generation(session_id="s1", generation=2, members=[_member("bbb2")], stats={})
    # The CLI prints an AlphaLoopError as one error line (exit 2): what, where, what to do.
    assert isinstance(caught.value, AlphaLoopError)
    message = str(caught.value)
    assert message.startswith(f"gene pool {store.path}: session s1: generation 2 out of order")
    assert "last committed: 0, expected 1" in message and "--resume" in message
    # Nothing of the refused generation was written.
    assert store.last_generation("s1") == 0 and store.genome("bbb2") is None
