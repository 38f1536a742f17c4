"""The gene-pool store: one SQLite file under the lab home.

Tables: ``sessions``, ``genomes`` (content-addressed, the JSON form), ``lineage`` (parents,
operator, generation of birth), ``members`` (who was in the population of each generation,
with its score and status), ``window_stats`` (per genome, generation and window), ``generations``
(per-generation statistics), ``verdicts`` (promotion-gate verdicts with their reasons),
``generation_nodes`` (the Ray node ids and worker processes that evaluated each generation; a
table of its own, created when missing, so stores written before it still open).

A generation is committed in ONE transaction (:meth:`GenePoolStore.commit_generation`): a crash
mid-write leaves the previous generation as the last committed one, and ``--resume`` continues
from there. The store never deletes: culled genomes keep their rows with status ``culled``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("alive", "culled", "champion")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    seed INTEGER NOT NULL,
    as_of TEXT NOT NULL,
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    data_spec TEXT NOT NULL,
    code_version TEXT NOT NULL,
    mlflow_experiment_id TEXT,
    mlflow_parent_run_id TEXT
);
CREATE TABLE IF NOT EXISTS genomes (
    genome_id TEXT PRIMARY KEY,
    genome_json TEXT NOT NULL,
    description TEXT NOT NULL,
    style TEXT NOT NULL,
    first_session TEXT NOT NULL,
    first_generation INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('alive', 'culled', 'champion'))
);
CREATE TABLE IF NOT EXISTS lineage (
    genome_id TEXT PRIMARY KEY REFERENCES genomes(genome_id),
    parents_json TEXT NOT NULL,
    operator TEXT NOT NULL,
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    genome_id TEXT NOT NULL REFERENCES genomes(genome_id),
    score REAL NOT NULL,
    status TEXT NOT NULL,
    overfit INTEGER NOT NULL,
    low_score_streak INTEGER NOT NULL,
    PRIMARY KEY (session_id, generation, genome_id)
);
CREATE TABLE IF NOT EXISTS window_stats (
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    genome_id TEXT NOT NULL,
    window TEXT NOT NULL,
    stats_json TEXT NOT NULL,
    PRIMARY KEY (session_id, generation, genome_id, window)
);
CREATE TABLE IF NOT EXISTS generations (
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    committed_at REAL NOT NULL,
    stats_json TEXT NOT NULL,
    PRIMARY KEY (session_id, generation)
);
CREATE TABLE IF NOT EXISTS verdicts (
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    genome_id TEXT NOT NULL,
    passed INTEGER NOT NULL,
    reasons_json TEXT NOT NULL,
    figures_json TEXT NOT NULL,
    PRIMARY KEY (session_id, generation, genome_id)
);
CREATE TABLE IF NOT EXISTS generation_nodes (
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    nodes_json TEXT NOT NULL,
    worker_processes INTEGER NOT NULL,
    PRIMARY KEY (session_id, generation)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRecord:
    """One genome's place in one generation's population."""

    genome_id: str
    genome_json: str
    description: str
    style: str
    parents: tuple[str, ...]
    operator: str
    born_generation: int
    score: float
    status: str
    overfit: bool
    low_score_streak: int
    window_stats: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"member status must be one of {STATUSES}, got {self.status!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementRecord:
    """Where one generation's evaluations ran.

    Parameters
    ----------
    nodes:
        The Ray node ids that evaluated genomes (empty without Ray).
    worker_processes:
        How many distinct worker processes evaluated genomes (0 without Ray).
    """

    nodes: tuple[str, ...]
    worker_processes: int

    def __post_init__(self) -> None:
        if self.worker_processes < 0:
            raise ValueError(f"worker_processes must be >= 0, got {self.worker_processes}")
        if list(self.nodes) != sorted(set(self.nodes)):
            raise ValueError(f"nodes must be sorted and distinct, got {self.nodes!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictRecord:
    """A promotion-gate verdict."""

    genome_id: str
    passed: bool
    reasons: tuple[str, ...]
    figures: Mapping[str, float]


class GenePoolStore:
    """SQLite-backed gene pool. Cheap to open; safe to open again after a crash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.executescript(_SCHEMA)
        row = self._connection.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._connection.execute(
                "INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row["value"]) != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: gene-pool schema {row['value']} is not {SCHEMA_VERSION}; "
                "refusing to touch it"
            )

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> GenePoolStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        else:
            self._connection.execute("COMMIT")

    # ------------------------------------------------------------------ sessions
    def create_session(
        self,
        *,
        session_id: str,
        seed: int,
        as_of: str,
        config: Mapping[str, Any],
        config_hash: str,
        data_hash: str,
        data_spec: str,
        code_version: str,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sessions(session_id, created_at, seed, as_of, config_json, "
                "config_hash, data_hash, data_spec, code_version) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    session_id,
                    time.time(),
                    seed,
                    as_of,
                    json.dumps(config, sort_keys=True),
                    config_hash,
                    data_hash,
                    data_spec,
                    code_version,
                ),
            )

    def set_mlflow_ids(self, session_id: str, experiment_id: str, parent_run_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE sessions SET mlflow_experiment_id=?, mlflow_parent_run_id=? "
                "WHERE session_id=?",
                (experiment_id, parent_run_id, session_id),
            )

    def session(self, session_id: str) -> dict[str, Any] | None:
        row = self._connection.execute(
            "SELECT * FROM sessions WHERE session_id=?", (session_id,)
        ).fetchone()
        return None if row is None else dict(row)

    def latest_session(self) -> dict[str, Any] | None:
        row = self._connection.execute(
            "SELECT * FROM sessions ORDER BY created_at DESC, session_id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else dict(row)

    def find_session(self, *, config_hash: str, data_hash: str, seed: int) -> str | None:
        """Return the newest session with this identity (for ``--resume``)."""
        row = self._connection.execute(
            "SELECT session_id FROM sessions WHERE config_hash=? AND data_hash=? AND seed=? "
            "ORDER BY created_at DESC LIMIT 1",
            (config_hash, data_hash, seed),
        ).fetchone()
        return None if row is None else str(row["session_id"])

    # ------------------------------------------------------------------ generations
    def last_generation(self, session_id: str) -> int | None:
        row = self._connection.execute(
            "SELECT MAX(generation) AS g FROM generations WHERE session_id=?", (session_id,)
        ).fetchone()
        return None if row is None or row["g"] is None else int(row["g"])

    def commit_generation(
        self,
        *,
        session_id: str,
        generation: int,
        members: Sequence[MemberRecord],
        stats: Mapping[str, Any],
        verdicts: Sequence[VerdictRecord] = (),
        placement: PlacementRecord | None = None,
    ) -> None:
        """Write one whole generation atomically; a generation is committed at most once.

        ``placement`` (where the evaluations ran) is written in the same transaction.
        """
        last = self.last_generation(session_id)
        expected = 0 if last is None else last + 1
        if generation != expected:
            raise RuntimeError(
                f"session {session_id}: generation {generation} out of order "
                f"(last committed: {last})"
            )
        with self._transaction() as db:
            for member in members:
                db.execute(
                    "INSERT OR IGNORE INTO genomes(genome_id, genome_json, description, style, "
                    "first_session, first_generation, status) VALUES (?,?,?,?,?,?,?)",
                    (
                        member.genome_id,
                        member.genome_json,
                        member.description,
                        member.style,
                        session_id,
                        member.born_generation,
                        member.status,
                    ),
                )
                db.execute(
                    "UPDATE genomes SET status=? WHERE genome_id=?",
                    (member.status, member.genome_id),
                )
                db.execute(
                    "INSERT OR IGNORE INTO lineage(genome_id, parents_json, operator, session_id, "
                    "generation) VALUES (?,?,?,?,?)",
                    (
                        member.genome_id,
                        json.dumps(list(member.parents)),
                        member.operator,
                        session_id,
                        member.born_generation,
                    ),
                )
                db.execute(
                    "INSERT INTO members(session_id, generation, genome_id, score, status, "
                    "overfit, low_score_streak) VALUES (?,?,?,?,?,?,?)",
                    (
                        session_id,
                        generation,
                        member.genome_id,
                        float(member.score),
                        member.status,
                        int(member.overfit),
                        member.low_score_streak,
                    ),
                )
                for window, values in member.window_stats.items():
                    db.execute(
                        "INSERT INTO window_stats(session_id, generation, genome_id, window, "
                        "stats_json) VALUES (?,?,?,?,?)",
                        (
                            session_id,
                            generation,
                            member.genome_id,
                            window,
                            json.dumps(dict(values), sort_keys=True),
                        ),
                    )
            for verdict in verdicts:
                db.execute(
                    "INSERT INTO verdicts(session_id, generation, genome_id, passed, reasons_json, "
                    "figures_json) VALUES (?,?,?,?,?,?)",
                    (
                        session_id,
                        generation,
                        verdict.genome_id,
                        int(verdict.passed),
                        json.dumps(list(verdict.reasons)),
                        json.dumps(dict(verdict.figures), sort_keys=True),
                    ),
                )
            db.execute(
                "INSERT INTO generations(session_id, generation, committed_at, stats_json) "
                "VALUES (?,?,?,?)",
                (session_id, generation, time.time(), json.dumps(dict(stats), sort_keys=True)),
            )
            if placement is not None:
                db.execute(
                    "INSERT INTO generation_nodes(session_id, generation, nodes_json, "
                    "worker_processes) VALUES (?,?,?,?)",
                    (
                        session_id,
                        generation,
                        json.dumps(list(placement.nodes)),
                        placement.worker_processes,
                    ),
                )

    def placements(self, session_id: str) -> dict[int, PlacementRecord]:
        """Return where each generation of a session was evaluated, by generation.

        Generations committed before placements were recorded are absent.
        """
        rows = self._connection.execute(
            "SELECT generation, nodes_json, worker_processes FROM generation_nodes "
            "WHERE session_id=? ORDER BY generation",
            (session_id,),
        ).fetchall()
        return {
            int(r["generation"]): PlacementRecord(
                nodes=tuple(json.loads(r["nodes_json"])),
                worker_processes=int(r["worker_processes"]),
            )
            for r in rows
        }

    def generation_stats(self, session_id: str) -> list[dict[str, Any]]:
        rows = self._connection.execute(
            "SELECT generation, stats_json FROM generations WHERE session_id=? ORDER BY generation",
            (session_id,),
        ).fetchall()
        return [{"generation": int(r["generation"]), **json.loads(r["stats_json"])} for r in rows]

    def verdicts(self, session_id: str, generation: int) -> list[dict[str, Any]]:
        """Return the gate verdicts of one generation (ordered by genome id)."""
        rows = self._connection.execute(
            "SELECT genome_id, passed, reasons_json FROM verdicts WHERE session_id=? AND "
            "generation=? ORDER BY genome_id",
            (session_id, generation),
        ).fetchall()
        return [
            {
                "genome_id": r["genome_id"],
                "passed": bool(r["passed"]),
                "reasons": json.loads(r["reasons_json"]),
            }
            for r in rows
        ]

    def population(self, session_id: str, generation: int) -> list[dict[str, Any]]:
        """Return the members of one generation (ordered by genome id) with their genome JSON."""
        rows = self._connection.execute(
            "SELECT m.genome_id, m.score, m.status, m.overfit, m.low_score_streak, g.genome_json, "
            "g.description, l.parents_json, l.operator, l.generation AS born "
            "FROM members m JOIN genomes g USING (genome_id) JOIN lineage l USING (genome_id) "
            "WHERE m.session_id=? AND m.generation=? ORDER BY m.genome_id",
            (session_id, generation),
        ).fetchall()
        return [
            {
                "genome_id": r["genome_id"],
                "score": float(r["score"]),
                "status": r["status"],
                "overfit": bool(r["overfit"]),
                "low_score_streak": int(r["low_score_streak"]),
                "genome_json": r["genome_json"],
                "description": r["description"],
                "parents": tuple(json.loads(r["parents_json"])),
                "operator": r["operator"],
                "born_generation": int(r["born"]),
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ queries
    def list_genomes(self, status: str | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        query = (
            "SELECT g.genome_id, g.description, g.style, g.status, g.first_session, "
            "g.first_generation, l.operator, "
            "(SELECT score FROM members m WHERE m.genome_id=g.genome_id "
            " ORDER BY m.rowid DESC LIMIT 1) AS last_score "
            "FROM genomes g JOIN lineage l USING (genome_id)"
        )
        params: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE g.status=?"
            params = (status,)
        query += " ORDER BY g.genome_id"
        return [dict(r) for r in self._connection.execute(query, params).fetchall()]

    def genome(self, genome_id: str) -> dict[str, Any] | None:
        """Return everything stored on a genome (or ``None``); accepts a unique id prefix."""
        rows = self._connection.execute(
            "SELECT genome_id FROM genomes WHERE genome_id LIKE ? ORDER BY genome_id LIMIT 2",
            (genome_id + "%",),
        ).fetchall()
        if len(rows) != 1:
            return None
        gid = rows[0]["genome_id"]
        row = self._connection.execute(
            "SELECT g.*, l.parents_json, l.operator, l.session_id AS born_session, "
            "l.generation AS born_generation FROM genomes g JOIN lineage l USING (genome_id) "
            "WHERE genome_id=?",
            (gid,),
        ).fetchone()
        out = dict(row)
        out["parents"] = json.loads(out.pop("parents_json"))
        out["stats"] = [
            {
                "session_id": r["session_id"],
                "generation": int(r["generation"]),
                "window": r["window"],
                **json.loads(r["stats_json"]),
            }
            for r in self._connection.execute(
                "SELECT * FROM window_stats WHERE genome_id=? ORDER BY session_id, generation, "
                "window",
                (gid,),
            ).fetchall()
        ]
        out["verdicts"] = [
            {
                "session_id": r["session_id"],
                "generation": int(r["generation"]),
                "passed": bool(r["passed"]),
                "reasons": json.loads(r["reasons_json"]),
                "figures": json.loads(r["figures_json"]),
            }
            for r in self._connection.execute(
                "SELECT * FROM verdicts WHERE genome_id=? ORDER BY session_id, generation",
                (gid,),
            ).fetchall()
        ]
        return out

    def lineage(self, genome_id: str) -> list[dict[str, Any]]:
        """Return the ancestry of a genome back to its founders (breadth first, no repeats)."""
        seen: set[str] = set()
        frontier = [genome_id]
        out: list[dict[str, Any]] = []
        while frontier:
            current = frontier.pop(0)
            if current in seen:
                continue
            seen.add(current)
            row = self._connection.execute(
                "SELECT * FROM lineage WHERE genome_id=?", (current,)
            ).fetchone()
            if row is None:
                continue
            parents = json.loads(row["parents_json"])
            out.append(
                {
                    "genome_id": current,
                    "parents": parents,
                    "operator": row["operator"],
                    "generation": int(row["generation"]),
                }
            )
            frontier.extend(parents)
        return out

    def champions(self) -> list[dict[str, Any]]:
        return self.list_genomes("champion")

    def all_generations(self) -> list[dict[str, Any]]:
        rows = self._connection.execute(
            "SELECT session_id, generation, committed_at, stats_json FROM generations "
            "ORDER BY session_id, generation"
        ).fetchall()
        return [
            {
                "session_id": r["session_id"],
                "generation": int(r["generation"]),
                "committed_at": float(r["committed_at"]),
                **json.loads(r["stats_json"]),
            }
            for r in rows
        ]
