"""Gene-pool store: atomic generations, resume point, lineage, queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evolution.store import (
    SCHEMA_VERSION,
    GenePoolStore,
    MemberRecord,
    TransitionError,
    TransitionRecord,
    TrialRecord,
    VerdictRecord,
)

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
        assert store.schema_version == SCHEMA_VERSION == 3
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
    # Opening again is a no-op (already at schema 2).
    with GenePoolStore(path) as store:
        assert store.schema_version == 3 and len(store.transitions()) == len(champions)
