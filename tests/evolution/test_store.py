"""Gene-pool store: atomic generations, resume point, lineage, queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evolution.store import GenePoolStore, MemberRecord, VerdictRecord


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
            _member("aaa1", status="champion"),
            _member("ccc3", parents=("aaa1", "bbb2"), operator="crossover", born=1),
        ],
        stats={"best": 61.0},
        verdicts=[
            VerdictRecord(genome_id="aaa1", passed=True, reasons=("ok",), figures={"pf": 1.5})
        ],
    )
    assert store.last_generation("s1") == 1
    assert [g["best"] for g in store.generation_stats("s1")] == [50.0, 61.0]
    assert [g["genome_id"] for g in store.list_genomes("champion")] == ["aaa1"]
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
    with pytest.raises(ValueError, match="alive, culled, champion"):
        _store(tmp_path).list_genomes("zombie")


def test_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "pool.sqlite"
    GenePoolStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(RuntimeError, match="refusing"):
        GenePoolStore(path)
