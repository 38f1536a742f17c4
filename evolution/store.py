"""The gene-pool store: one SQLite file under the lab home.

Tables: ``sessions``, ``genomes`` (content-addressed, the JSON form), ``lineage`` (parents,
operator, generation of birth), ``members`` (who was in the population of each generation,
with its score and status), ``window_stats`` (per genome, generation and window), ``generations``
(per-generation statistics), ``verdicts`` (promotion-gate verdicts with their reasons),
``generation_nodes`` (the Ray node ids and worker processes that evaluated each generation),
``trials`` (the trial registry: every genome the pool ever evaluated, across sessions and
restarts, with its per-period Sharpe ratio; the deflated Sharpe counts these) and
``transitions`` (every change of a genome's lifecycle status, with who, when, why and the
figures).

Statuses
--------
``alive`` (in the population), ``culled`` (dead), ``candidate`` (passed the backtest gate),
``probation`` (trades in the arena on a small allocation), ``champion`` (earned promotion on
paper), ``demoted`` (its paper record decayed; evolution culls it), ``retired`` (taken out for
good, e.g. rejected by a user). ``paused`` is a flag beside the status: a paused genome stays in
the pool but does not trade. The lifecycle statuses (candidate, probation, champion, demoted,
retired) change only through a stored transition (:meth:`GenePoolStore.transition`, or the
transitions committed with a generation); a generation's own verdict (alive or culled) is kept
per generation in ``members`` and never overwrites a lifecycle status.

Schema versions and migrations
------------------------------
The ``meta`` table holds the schema version. Opening a store at an older version upgrades it
in place (:data:`MIGRATIONS`, one transaction per step, the version written last); a newer
version than this code knows is refused untouched.

A generation is committed in ONE transaction (:meth:`GenePoolStore.commit_generation`): a crash
mid-write leaves the previous generation as the last committed one, and ``--resume`` continues
from there. The store never deletes: culled genomes keep their rows with status ``culled``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alphaloop.errors import AlphaLoopError

SCHEMA_VERSION = 4
STATUSES = ("alive", "culled", "candidate", "probation", "champion", "demoted", "retired")
# Statuses whose genomes evolution continues from (a new session starts from these).
LIVING = ("alive", "candidate", "probation", "champion")
# Statuses that trade in the arena (a paused genome does not).
TRADING = ("probation", "champion")
# Statuses set only by a stored transition, never by a generation's alive/culled verdict.
LIFECYCLE = ("candidate", "probation", "champion", "demoted", "retired")
# A generation's own verdict on a member (kept per generation in ``members``).
GENERATION_STATUSES = ("alive", "culled")
# The lifecycle's allowed moves (anything else raises); pause/resume are a flag, not a move.
ALLOWED_TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    "alive": ("candidate", "retired"),
    "candidate": ("probation", "retired"),
    "probation": ("champion", "demoted", "retired"),
    "champion": ("demoted", "retired"),
    "culled": (),
    "demoted": ("retired",),
    "retired": (),
}
# Who may act: the lab itself, or a user command.
SYSTEM_ACTOR = "system"

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
    mlflow_parent_run_id TEXT,
    start_json TEXT
);
CREATE TABLE IF NOT EXISTS genomes (
    genome_id TEXT PRIMARY KEY,
    genome_json TEXT NOT NULL,
    description TEXT NOT NULL,
    style TEXT NOT NULL,
    first_session TEXT NOT NULL,
    first_generation INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('alive', 'culled', 'candidate', 'probation',
                                           'champion', 'demoted', 'retired')),
    paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1))
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

# Tables added by schema 2 (created by the migration on older stores, by _SCHEMA on new ones).
_SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS trials (
    genome_id TEXT PRIMARY KEY,
    sharpe REAL,
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    genome_id TEXT NOT NULL REFERENCES genomes(genome_id),
    at TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('status', 'pause', 'resume')),
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    figures_json TEXT NOT NULL,
    session_id TEXT,
    day TEXT
);
CREATE INDEX IF NOT EXISTS transitions_genome ON transitions(genome_id, seq);
"""

# Tables added by schema 3: the arena's paper record of each genome, and its LiveFeedback.
_SCHEMA_3 = """
CREATE TABLE IF NOT EXISTS paper_days (
    genome_id TEXT NOT NULL,
    account TEXT NOT NULL,
    day TEXT NOT NULL,
    allocation REAL NOT NULL CHECK (allocation > 0),
    pnl REAL NOT NULL,
    shadow_return REAL NOT NULL,
    figures_json TEXT NOT NULL,
    PRIMARY KEY (genome_id, account, day)
);
CREATE TABLE IF NOT EXISTS feedback (
    genome_id TEXT NOT NULL,
    account TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    days INTEGER NOT NULL,
    record_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    PRIMARY KEY (genome_id, account, period_start)
);
"""
# Schema 4: the days a champion sat out (no sleeve in any account), judged on its same-day
# backtest (arena.loop), and the expectation of a trading genome that has no gate figures (a
# schema-1 champion), calibrated by the loop from a backtest before its first paper day.
_SCHEMA_4 = """
CREATE TABLE IF NOT EXISTS shadow_days (
    genome_id TEXT NOT NULL,
    day TEXT NOT NULL,
    shadow_return REAL NOT NULL,
    PRIMARY KEY (genome_id, day)
);
CREATE TABLE IF NOT EXISTS expectations (
    genome_id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    reason TEXT NOT NULL,
    figures_json TEXT NOT NULL
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
    window_stats: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in GENERATION_STATUSES:
            raise ValueError(
                f"member status must be one of {GENERATION_STATUSES}, got {self.status!r}"
            )


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


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 2: the lifecycle statuses and the pause flag, the trial registry, transitions.

    SQLite cannot widen a CHECK constraint, so ``genomes`` is rebuilt (the documented
    twelve-step procedure, run with foreign keys off by the caller). The trial registry is
    back-filled with every genome a schema-1 session evaluated in a population (``members``),
    with a NULL Sharpe: schema 1 kept only annualised window statistics, so those trials count
    in ``n`` but not in the variance; Optuna trials that never entered a population were not
    stored and cannot be recovered. Schema-1 champions keep their status, with a transition
    that says where it came from.
    """
    db.execute(
        "CREATE TABLE genomes_v2 (genome_id TEXT PRIMARY KEY, genome_json TEXT NOT NULL, "
        "description TEXT NOT NULL, style TEXT NOT NULL, first_session TEXT NOT NULL, "
        "first_generation INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('alive', "
        "'culled', 'candidate', 'probation', 'champion', 'demoted', 'retired')), "
        "paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)))"
    )
    db.execute(
        "INSERT INTO genomes_v2 SELECT genome_id, genome_json, description, style, "
        "first_session, first_generation, status, 0 FROM genomes"
    )
    db.execute("DROP TABLE genomes")
    db.execute("ALTER TABLE genomes_v2 RENAME TO genomes")
    db.execute("ALTER TABLE sessions ADD COLUMN start_json TEXT")
    # Statement by statement: executescript would commit the migration's transaction.
    for statement in _SCHEMA_2.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(
        "INSERT OR IGNORE INTO trials(genome_id, sharpe, session_id, generation) "
        "SELECT genome_id, NULL, session_id, MIN(generation) FROM members "
        "GROUP BY genome_id ORDER BY genome_id"
    )
    now = _now()
    for row in db.execute(
        "SELECT genome_id FROM genomes WHERE status='champion' ORDER BY genome_id"
    ).fetchall():
        db.execute(
            "INSERT INTO transitions(genome_id, at, from_status, to_status, kind, actor, reason, "
            "figures_json) VALUES (?,?,?,?,?,?,?,?)",
            (
                row[0],
                now,
                "alive",
                "champion",
                "status",
                "migration",
                "champion under gene-pool schema 1 (promoted by the backtest gate alone)",
                "{}",
            ),
        )


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Schema 3: the paper record (``paper_days``) and its LiveFeedback (``feedback``)."""
    for statement in _SCHEMA_3.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_3_to_4(db: sqlite3.Connection) -> None:
    """Schema 4: the days a champion sat out, with its same-day backtest (``shadow_days``),
    and the expectations the loop calibrates for genomes without gate figures."""
    for statement in _SCHEMA_4.split(";"):
        if statement.strip():
            db.execute(statement)


# version -> the step that upgrades a store at that version to the next one.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
    3: _migrate_3_to_4,
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialRecord:
    """One genome evaluated for the first time by the pool (an entry of the trial registry).

    ``sharpe`` is the per-period Sharpe ratio of its daily returns over the fitness windows.
    """

    genome_id: str
    sharpe: float
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperDayRecord:
    """A genome's day in one arena account: allocation, attributed P&L, the shadow return.

    ``figures`` holds the review's other figures (execution cost, governor cuts, debate
    scaling, residual, slippage, fill ratio, rejects, risk blocks, turnover).
    """

    genome_id: str
    account: str
    day: str
    allocation: float
    pnl: float
    shadow_return: float
    figures: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.allocation > 0:
            raise ValueError(f"{self.genome_id} {self.account} {self.day}: allocation <= 0")


class GenerationOutOfOrder(AlphaLoopError, RuntimeError):
    """A session's generation was committed out of order: another command ran the session.

    Generations are committed one after the other, once each; a commit that does not follow
    the session's last one (a second writer resuming the same session) is refused and nothing
    of it is written.
    """


class TransitionError(ValueError):
    """A lifecycle move the transition table does not allow (nothing was stored)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionRecord:
    """A change of a genome's lifecycle status (``kind="status"``) or of its pause flag.

    Parameters
    ----------
    genome_id, from_status, to_status:
        The genome and the move; for ``pause``/``resume`` both statuses are the genome's
        current one.
    kind:
        ``status``, ``pause`` or ``resume``.
    actor:
        :data:`SYSTEM_ACTOR` for the lab's own rules, else the user who acted.
    reason:
        Why, in words (the rule and its figures, or the user's reason).
    figures:
        The numbers the decision was made on.
    day:
        The arena day it was decided on, if any.
    """

    genome_id: str
    from_status: str
    to_status: str
    kind: str = "status"
    actor: str = SYSTEM_ACTOR
    reason: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    day: str | None = None

    def __post_init__(self) -> None:
        for name in ("from_status", "to_status"):
            if getattr(self, name) not in STATUSES:
                raise ValueError(f"{name} must be one of {STATUSES}, got {getattr(self, name)!r}")
        if self.kind not in ("status", "pause", "resume"):
            raise ValueError(f"kind must be status, pause or resume, got {self.kind!r}")
        if self.kind == "status":
            if self.to_status not in ALLOWED_TRANSITIONS[self.from_status]:
                raise TransitionError(
                    f"genome {self.genome_id}: {self.from_status} -> {self.to_status} is not an "
                    f"allowed move (from {self.from_status}: "
                    f"{', '.join(ALLOWED_TRANSITIONS[self.from_status]) or 'none'})"
                )
        elif self.from_status != self.to_status:
            raise ValueError(f"a {self.kind} does not change the status")
        if not self.reason.strip():
            raise ValueError("a transition needs a reason")
        if not self.actor.strip():
            raise ValueError("a transition needs an actor")


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
        if self._connection.execute("SELECT value FROM meta WHERE key='schema'").fetchone() is None:
            # A new store: every table of the current schema, then its version.
            self._connection.executescript(_SCHEMA_2 + _SCHEMA_3 + _SCHEMA_4)
            self._connection.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        self._upgrade()

    @property
    def schema_version(self) -> int:
        """Return the schema version written in the store."""
        row = self._connection.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return SCHEMA_VERSION if row is None else int(row["value"])

    def _upgrade(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: gene-pool schema {version} is newer than this code's "
                f"{SCHEMA_VERSION}; refusing to touch it (upgrade alphaloop)"
            )
        while version < SCHEMA_VERSION:
            step = MIGRATIONS[version]
            # Rebuilding a referenced table needs foreign keys off (outside a transaction).
            self._connection.execute("PRAGMA foreign_keys=OFF")
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    # Another process may have upgraded it while we waited for the lock.
                    if self.schema_version != version:
                        self._connection.execute("ROLLBACK")
                        version = self.schema_version
                        continue
                    step(self._connection)
                    broken = self._connection.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"{self.path}: migration {version} -> {version + 1} broke "
                            f"{len(broken)} foreign key(s); nothing was changed"
                        )
                    self._connection.execute(
                        "UPDATE meta SET value=? WHERE key='schema'", (str(version + 1),)
                    )
                    self._connection.execute("COMMIT")
                except BaseException:
                    if self._connection.in_transaction:
                        self._connection.execute("ROLLBACK")
                    raise
            finally:
                self._connection.execute("PRAGMA foreign_keys=ON")
            version += 1

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
        start: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a new session; ``start`` is the state its first generation starts from."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sessions(session_id, created_at, seed, as_of, config_json, "
                "config_hash, data_hash, data_spec, code_version, start_json) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
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
                    None if start is None else json.dumps(start, sort_keys=True),
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
        trials: Sequence[TrialRecord] = (),
        transitions: Sequence[TransitionRecord] = (),
    ) -> None:
        """Write one whole generation atomically; a generation is committed at most once.

        ``placement`` (where the evaluations ran), the generation's new ``trials`` (registered
        once per genome, ever) and its lifecycle ``transitions`` (gate passes and the like,
        applied after the members) are written in the same transaction.
        """
        last = self.last_generation(session_id)
        expected = 0 if last is None else last + 1
        if generation != expected:
            raise GenerationOutOfOrder(
                f"gene pool {self.path}: session {session_id}: generation {generation} out of "
                f"order (last committed: {'none' if last is None else last}, expected "
                f"{expected}); another command may have run this session: nothing of "
                f"generation {generation} was written (evolve --resume continues the "
                "session from its last committed generation)"
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
                # A lifecycle status moves only by a transition (see the module docstring).
                db.execute(
                    "UPDATE genomes SET status=? WHERE genome_id=? AND status NOT IN "
                    f"({','.join('?' * len(LIFECYCLE))})",
                    (member.status, member.genome_id, *LIFECYCLE),
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
            for trial in trials:
                db.execute(
                    "INSERT OR IGNORE INTO trials(genome_id, sharpe, session_id, generation) "
                    "VALUES (?,?,?,?)",
                    (trial.genome_id, float(trial.sharpe), session_id, trial.generation),
                )
            for move in transitions:
                self._apply_transition(db, move, session_id=session_id)

    # ------------------------------------------------------------------ lifecycle
    def _apply_transition(
        self, db: sqlite3.Connection, move: TransitionRecord, *, session_id: str | None
    ) -> None:
        row = db.execute(
            "SELECT status, paused FROM genomes WHERE genome_id=?", (move.genome_id,)
        ).fetchone()
        if row is None:
            raise TransitionError(f"no genome {move.genome_id!r} in the pool")
        if row["status"] != move.from_status:
            raise TransitionError(
                f"genome {move.genome_id} is {row['status']}, not {move.from_status}"
            )
        if move.kind == "pause" and row["paused"]:
            raise TransitionError(f"genome {move.genome_id} is already paused")
        if move.kind == "resume" and not row["paused"]:
            raise TransitionError(f"genome {move.genome_id} is not paused")
        db.execute(
            "INSERT INTO transitions(genome_id, at, from_status, to_status, kind, actor, reason, "
            "figures_json, session_id, day) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                move.genome_id,
                _now(),
                move.from_status,
                move.to_status,
                move.kind,
                move.actor,
                move.reason,
                json.dumps(dict(move.figures), sort_keys=True, default=float),
                session_id,
                move.day,
            ),
        )
        if move.kind == "status":
            db.execute(
                "UPDATE genomes SET status=? WHERE genome_id=?", (move.to_status, move.genome_id)
            )
        else:
            db.execute(
                "UPDATE genomes SET paused=? WHERE genome_id=?",
                (int(move.kind == "pause"), move.genome_id),
            )

    def transition(self, *moves: TransitionRecord) -> None:
        """Apply lifecycle moves in one transaction (all or none).

        Raises
        ------
        TransitionError
            When a genome is unknown, not in the move's ``from_status``, or the move is not
            allowed; nothing is stored then.
        """
        with self._transaction() as db:
            for move in moves:
                self._apply_transition(db, move, session_id=None)

    def demote_stand_in(
        self, *, genome_json: str, description: str, style: str, move: TransitionRecord
    ) -> None:
        """Take a bootstrap stand-in out of trading: add it to the pool and demote it.

        A bootstrap genome (:mod:`arena.bootstrap`) trades outside the pool until the loop
        judges its paper record decayed; then, in one transaction, it is added (first session
        and lineage operator ``bootstrap``) as the champion it traded as, and ``move`` (champion
        -> demoted, with the decision's reasons and figures) applied. A genome the pool already
        holds raises :class:`TransitionError` and nothing is stored.
        """
        if move.from_status != "champion" or move.to_status != "demoted" or move.kind != "status":
            raise TransitionError(f"a stand-in is only demoted from champion, not {move}")
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM genomes WHERE genome_id=?", (move.genome_id,)).fetchone():
                raise TransitionError(f"genome {move.genome_id} is already in the pool")
            db.execute(
                "INSERT INTO genomes(genome_id, genome_json, description, style, first_session, "
                "first_generation, status) VALUES (?,?,?,?,?,?,?)",
                (move.genome_id, genome_json, description, style, "bootstrap", 0, "champion"),
            )
            db.execute(
                "INSERT INTO lineage(genome_id, parents_json, operator, session_id, generation) "
                "VALUES (?,?,?,?,?)",
                (move.genome_id, "[]", "bootstrap", "bootstrap", 0),
            )
            self._apply_transition(db, move, session_id=None)

    def transitions(self, genome_id: str | None = None) -> list[dict[str, Any]]:
        """Return the stored lifecycle moves (of one genome, or all), oldest first."""
        query = "SELECT * FROM transitions"
        params: tuple[Any, ...] = ()
        if genome_id is not None:
            query += " WHERE genome_id=?"
            params = (genome_id,)
        rows = self._connection.execute(query + " ORDER BY seq", params).fetchall()
        out = []
        for r in rows:
            item = dict(r)
            item["figures"] = json.loads(item.pop("figures_json"))
            out.append(item)
        return out

    def status_of(self, genome_id: str) -> tuple[str, bool] | None:
        """Return ``(status, paused)`` of a genome (exact id), or ``None`` when unknown."""
        row = self._connection.execute(
            "SELECT status, paused FROM genomes WHERE genome_id=?", (genome_id,)
        ).fetchone()
        return None if row is None else (str(row["status"]), bool(row["paused"]))

    def living(self) -> list[dict[str, Any]]:
        """Return the genomes evolution continues from (:data:`LIVING`), best last score first.

        Each row has the genome JSON, its lineage (parents, operator, generation of birth), its
        status, pause flag, last score and low-score streak (from its latest population).
        """
        marks = ",".join("?" * len(LIVING))
        rows = self._connection.execute(
            "SELECT g.genome_id, g.genome_json, g.status, g.paused, l.parents_json, l.operator, "
            "l.generation AS born, "
            "(SELECT m.score FROM members m WHERE m.genome_id=g.genome_id "
            " ORDER BY m.rowid DESC LIMIT 1) AS last_score, "
            "(SELECT m.low_score_streak FROM members m WHERE m.genome_id=g.genome_id "
            " ORDER BY m.rowid DESC LIMIT 1) AS streak "
            f"FROM genomes g JOIN lineage l USING (genome_id) WHERE g.status IN ({marks})",
            LIVING,
        ).fetchall()
        out = [
            {
                "genome_id": r["genome_id"],
                "genome_json": r["genome_json"],
                "status": r["status"],
                "paused": bool(r["paused"]),
                "parents": tuple(json.loads(r["parents_json"])),
                "operator": r["operator"],
                "born_generation": int(r["born"]),
                "last_score": float(r["last_score"]) if r["last_score"] is not None else 0.0,
                "low_score_streak": int(r["streak"]) if r["streak"] is not None else 0,
            }
            for r in rows
        ]
        out.sort(key=lambda r: (-r["last_score"], r["genome_id"]))
        return out

    # ------------------------------------------------------------------ paper record
    def write_paper_days(self, rows: Sequence[PaperDayRecord]) -> None:
        """Store genome days of the arena (one transaction; a day written again replaces)."""
        with self._transaction() as db:
            for row in rows:
                db.execute(
                    "INSERT OR REPLACE INTO paper_days(genome_id, account, day, allocation, "
                    "pnl, shadow_return, figures_json) VALUES (?,?,?,?,?,?,?)",
                    (
                        row.genome_id,
                        row.account,
                        row.day,
                        float(row.allocation),
                        float(row.pnl),
                        float(row.shadow_return),
                        json.dumps(dict(row.figures), sort_keys=True),
                    ),
                )

    def paper_days(
        self, genome_id: str | None = None, *, since: str | None = None, until: str | None = None
    ) -> list[PaperDayRecord]:
        """Return stored paper days (of one genome; ``since..until`` inclusive), ordered by
        genome, day and account."""
        query = "SELECT * FROM paper_days WHERE 1=1"
        params: list[Any] = []
        if genome_id is not None:
            query += " AND genome_id=?"
            params.append(genome_id)
        if since is not None:
            query += " AND day>=?"
            params.append(since)
        if until is not None:
            query += " AND day<=?"
            params.append(until)
        rows = self._connection.execute(
            query + " ORDER BY genome_id, day, account", params
        ).fetchall()
        return [
            PaperDayRecord(
                genome_id=r["genome_id"],
                account=r["account"],
                day=r["day"],
                allocation=float(r["allocation"]),
                pnl=float(r["pnl"]),
                shadow_return=float(r["shadow_return"]),
                figures=json.loads(r["figures_json"]),
            )
            for r in rows
        ]

    def write_shadow_days(self, rows: Sequence[tuple[str, str, float]]) -> None:
        """Store ``(genome_id, day, shadow_return)`` of champions that sat a day out (one
        transaction; a day written again replaces)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO shadow_days(genome_id, day, shadow_return) VALUES (?,?,?)",
                [(g, d, float(r)) for g, d, r in rows],
            )

    def shadow_days(self, genome_id: str, *, until: str | None = None) -> list[tuple[str, float]]:
        """Return a genome's sat-out days ``(day, shadow_return)`` up to ``until``, by day."""
        query = "SELECT day, shadow_return FROM shadow_days WHERE genome_id=?"
        params: list[Any] = [genome_id]
        if until is not None:
            query += " AND day<=?"
            params.append(until)
        rows = self._connection.execute(query + " ORDER BY day", params).fetchall()
        return [(str(r["day"]), float(r["shadow_return"])) for r in rows]

    def write_feedback(self, records: Sequence[Any]) -> None:
        """Store :class:`evolution.feedback.LiveFeedback` records (replacing a period's)."""
        with self._transaction() as db:
            for record in records:
                db.execute(
                    "INSERT OR REPLACE INTO feedback(genome_id, account, period_start, "
                    "period_end, days, record_json, config_hash) VALUES (?,?,?,?,?,?,?)",
                    (
                        record.genome_id,
                        record.account,
                        record.period_start,
                        record.period_end,
                        record.days,
                        json.dumps(record.to_dict(), sort_keys=True),
                        record.config_hash,
                    ),
                )

    def feedback(self, genome_id: str | None = None) -> list[dict[str, Any]]:
        """Return stored LiveFeedback records as dicts, by genome, account and period."""
        query = "SELECT record_json FROM feedback"
        params: tuple[Any, ...] = ()
        if genome_id is not None:
            query += " WHERE genome_id=?"
            params = (genome_id,)
        rows = self._connection.execute(
            query + " ORDER BY genome_id, account, period_start", params
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def expectation_figures(self, genome_id: str) -> dict[str, Any]:
        """Return the figures of the genome's last move to candidate (its gate verdict), or,
        when that move holds no expectation (a schema-1 champion never had one), the one the
        loop stored for it (:meth:`write_expectation`); ``{}`` when there is neither."""
        row = self._connection.execute(
            "SELECT figures_json FROM transitions WHERE genome_id=? AND to_status='candidate' "
            "ORDER BY seq DESC LIMIT 1",
            (genome_id,),
        ).fetchone()
        figures = {} if row is None else dict(json.loads(row[0]))
        if "expected_daily_return" in figures:
            return figures
        stored = self._connection.execute(
            "SELECT figures_json FROM expectations WHERE genome_id=?", (genome_id,)
        ).fetchone()
        return figures if stored is None else {**figures, **json.loads(stored[0])}

    def write_expectation(
        self, genome_id: str, figures: Mapping[str, float], *, day: str, reason: str
    ) -> None:
        """Store the expectation of a genome without gate figures (written once: a second
        write for the same genome is ignored, so the first calibration stands)."""
        if self.status_of(genome_id) is None:
            raise KeyError(f"unknown genome {genome_id}")
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO expectations(genome_id, day, reason, figures_json) "
                "VALUES (?,?,?,?)",
                (genome_id, day, reason, json.dumps(dict(figures), sort_keys=True)),
            )

    def expectation_record(self, genome_id: str) -> dict[str, Any] | None:
        """Return the loop's stored expectation of a genome (day, reason, figures) or None."""
        row = self._connection.execute(
            "SELECT day, reason, figures_json FROM expectations WHERE genome_id=?", (genome_id,)
        ).fetchone()
        if row is None:
            return None
        return {"day": row[0], "reason": row[1], "figures": json.loads(row[2])}

    # ------------------------------------------------------------------ trial registry
    def trial_ids(self) -> set[str]:
        """Return the ids of every genome the pool has ever evaluated."""
        return {r[0] for r in self._connection.execute("SELECT genome_id FROM trials")}

    def trial_sharpes(self) -> tuple[int, list[float]]:
        """Return the number of registered trials and their known Sharpe ratios (by id)."""
        rows = self._connection.execute("SELECT sharpe FROM trials ORDER BY genome_id").fetchall()
        return len(rows), [float(r[0]) for r in rows if r[0] is not None]

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

    def session_genome_ids(self, session_id: str) -> set[str]:
        """Return the ids of every genome in any committed population of a session."""
        return {
            r[0]
            for r in self._connection.execute(
                "SELECT DISTINCT genome_id FROM members WHERE session_id=?", (session_id,)
            )
        }

    def window_stats(self, session_id: str, generation: int) -> dict[str, dict[str, Any]]:
        """Return ``{genome_id: {window: stats}}`` of one generation."""
        out: dict[str, dict[str, Any]] = {}
        for r in self._connection.execute(
            "SELECT genome_id, window, stats_json FROM window_stats WHERE session_id=? AND "
            "generation=? ORDER BY genome_id, window",
            (session_id, generation),
        ).fetchall():
            out.setdefault(r["genome_id"], {})[r["window"]] = json.loads(r["stats_json"])
        return out

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
            "SELECT g.genome_id, g.description, g.style, g.status, g.paused, g.first_session, "
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
        rows = [dict(r) for r in self._connection.execute(query, params).fetchall()]
        for row in rows:
            row["paused"] = bool(row["paused"])
        return rows

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
        out["paused"] = bool(out["paused"])
        out["transitions"] = self.transitions(gid)
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

    # ------------------------------------------------------------------ read model (reports)
    # The reports (``reports/weekly.py``, ``reports/monthly.py``, ``reports/inspect.py``) read
    # the pool through these methods only: no report writes SQL against the pool's tables.
    def sessions_as_of(
        self, start: str | None = None, end: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the sessions whose ``as_of`` day lies in ``start..end`` (inclusive ISO days).

        Parameters
        ----------
        start, end:
            ``YYYY-MM-DD`` bounds; ``None`` leaves that side open.

        Returns
        -------
        list of dict
            ``session_id``, ``as_of``, ``created_at`` and ``data_spec``, ordered by the as-of
            day, then creation time, then id.
        """
        rows = self._connection.execute(
            "SELECT session_id, as_of, created_at, data_spec FROM sessions "
            "WHERE (? IS NULL OR substr(as_of, 1, 10) >= ?) "
            "AND (? IS NULL OR substr(as_of, 1, 10) <= ?) "
            "ORDER BY substr(as_of, 1, 10), created_at, session_id",
            (start, start, end, end),
        ).fetchall()
        return [dict(r) for r in rows]

    def births_by_operator(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Return how many genomes were first recorded in these sessions, by operator.

        A genome is born in the session of its lineage row (its first appearance in the pool),
        so a genome carried over from an earlier session is not counted again.
        """
        if not session_ids:
            return {}
        marks = ",".join("?" * len(session_ids))
        rows = self._connection.execute(
            f"SELECT operator, COUNT(*) AS n FROM lineage WHERE session_id IN ({marks}) "
            "GROUP BY operator ORDER BY operator",
            tuple(session_ids),
        ).fetchall()
        return {str(r["operator"]): int(r["n"]) for r in rows}

    def member_genome_ids(self, session_ids: Sequence[str], status: str) -> list[str]:
        """Return the distinct genomes with a member row of ``status`` in these sessions.

        Member rows hold a generation's own verdict (``alive`` or ``culled``); stores upgraded
        from schema 1 also hold ``champion`` member rows.

        Raises
        ------
        ValueError
            If ``status`` is not one of :data:`STATUSES`.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if not session_ids:
            return []
        marks = ",".join("?" * len(session_ids))
        rows = self._connection.execute(
            f"SELECT DISTINCT genome_id FROM members WHERE session_id IN ({marks}) "
            "AND status=? ORDER BY genome_id",
            (*session_ids, status),
        ).fetchall()
        return [str(r["genome_id"]) for r in rows]

    def ranked_population(
        self, session_id: str, generation: int | None = None
    ) -> list[dict[str, Any]]:
        """Return one generation's members best score first (ties by genome id).

        Parameters
        ----------
        session_id:
            The session.
        generation:
            The generation; ``None`` takes the session's last committed one.

        Returns
        -------
        list of dict
            ``genome_id``, ``score``, ``status`` (the member's verdict), ``description``,
            ``style``, ``genome_json``, ``operator`` and ``parents``; empty when the session
            has no such generation.
        """
        if generation is None:
            generation = self.last_generation(session_id)
            if generation is None:
                return []
        rows = self._connection.execute(
            "SELECT m.genome_id, m.score, m.status, g.description, g.style, g.genome_json, "
            "l.operator, l.parents_json FROM members m JOIN genomes g USING (genome_id) "
            "JOIN lineage l USING (genome_id) WHERE m.session_id=? AND m.generation=? "
            "ORDER BY m.score DESC, m.genome_id",
            (session_id, generation),
        ).fetchall()
        return [
            {
                "genome_id": r["genome_id"],
                "score": float(r["score"]),
                "status": r["status"],
                "description": r["description"],
                "style": r["style"],
                "genome_json": r["genome_json"],
                "operator": r["operator"],
                "parents": tuple(json.loads(r["parents_json"])),
            }
            for r in rows
        ]

    def gate_verdicts(self, session_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return the gate verdicts of these sessions with their session's as-of day.

        Returns
        -------
        list of dict
            ``session_id``, ``as_of``, ``generation``, ``genome_id``, ``passed``, ``reasons``
            and ``figures``, ordered by as-of day, generation and genome id.
        """
        if not session_ids:
            return []
        marks = ",".join("?" * len(session_ids))
        rows = self._connection.execute(
            "SELECT v.session_id, s.as_of, v.generation, v.genome_id, v.passed, v.reasons_json, "
            "v.figures_json FROM verdicts v JOIN sessions s USING (session_id) "
            f"WHERE v.session_id IN ({marks}) "
            "ORDER BY substr(s.as_of, 1, 10), v.generation, v.genome_id",
            tuple(session_ids),
        ).fetchall()
        return [
            {
                "session_id": r["session_id"],
                "as_of": r["as_of"],
                "generation": int(r["generation"]),
                "genome_id": r["genome_id"],
                "passed": bool(r["passed"]),
                "reasons": list(json.loads(r["reasons_json"])),
                "figures": dict(json.loads(r["figures_json"])),
            }
            for r in rows
        ]

    def member_histories(self, session_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return every member row, in any session, of the genomes in these sessions.

        Returns
        -------
        list of dict
            ``genome_id``, ``session_id``, ``generation``, ``status`` (the member's verdict),
            ``as_of`` and ``created_at`` of the session; ordered by genome, then the session's
            as-of day and creation time, then generation: each genome's rows in the order the
            lab lived them.
        """
        if not session_ids:
            return []
        marks = ",".join("?" * len(session_ids))
        rows = self._connection.execute(
            "SELECT m.genome_id, m.session_id, m.generation, m.status, s.as_of, s.created_at "
            "FROM members m JOIN sessions s USING (session_id) WHERE m.genome_id IN "
            f"(SELECT genome_id FROM members WHERE session_id IN ({marks})) "
            "ORDER BY m.genome_id, substr(s.as_of, 1, 10), s.created_at, m.generation",
            tuple(session_ids),
        ).fetchall()
        return [
            {
                "genome_id": r["genome_id"],
                "session_id": r["session_id"],
                "generation": int(r["generation"]),
                "status": r["status"],
                "as_of": r["as_of"],
                "created_at": float(r["created_at"]),
            }
            for r in rows
        ]

    def ancestry(self, roots: Sequence[str], *, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the ancestry of ``roots`` together, breadth first, each genome once.

        Parameters
        ----------
        roots:
            The genomes to start from (depth 0), in this order.
        limit:
            Stop once this many genomes are found (``None``: the whole ancestry).

        Returns
        -------
        list of dict
            ``genome_id``, ``parents``, ``operator``, ``generation`` (of birth) and ``depth``
            (generations of ancestry from the nearest root, as first reached), in the order
            found. Genomes without a lineage row are skipped.
        """
        seen: dict[str, dict[str, Any]] = {}
        frontier = [(root, 0) for root in roots]
        while frontier and (limit is None or len(seen) < limit):
            genome_id, depth = frontier.pop(0)
            if genome_id in seen:
                continue
            row = self._connection.execute(
                "SELECT parents_json, operator, generation FROM lineage WHERE genome_id=?",
                (genome_id,),
            ).fetchone()
            if row is None:
                continue
            parents = [str(p) for p in json.loads(row["parents_json"])]
            seen[genome_id] = {
                "genome_id": genome_id,
                "parents": parents,
                "operator": str(row["operator"]),
                "generation": int(row["generation"]),
                "depth": depth,
            }
            frontier.extend((parent, depth + 1) for parent in parents)
        return list(seen.values())

    def transitions_between(
        self, start: str | None = None, end: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the lifecycle moves whose effective day lies in ``start..end`` (inclusive).

        The effective day of a move is the lab's day it was decided on: its arena ``day`` when
        it has one; else, for a move committed with a generation (gate passes), the as-of day
        of its session (in a replayed season the wall clock ``at`` is far from it); else the
        UTC date of ``at`` (a user's command).

        Parameters
        ----------
        start, end:
            ``YYYY-MM-DD`` bounds; ``None`` leaves that side open.

        Returns
        -------
        list of dict
            The rows of :meth:`transitions` plus ``effective_day``, oldest first (by ``seq``).
        """
        rows = self._connection.execute(
            "SELECT * FROM (SELECT t.*, COALESCE(t.day, substr(s.as_of, 1, 10), "
            "substr(t.at, 1, 10)) AS effective_day FROM transitions t "
            "LEFT JOIN sessions s ON s.session_id = t.session_id) "
            "WHERE (? IS NULL OR effective_day >= ?) AND (? IS NULL OR effective_day <= ?) "
            "ORDER BY seq",
            (start, start, end, end),
        ).fetchall()
        out = []
        for r in rows:
            item = dict(r)
            item["figures"] = json.loads(item.pop("figures_json"))
            out.append(item)
        return out

    def paper_days_between(
        self, start: str, end: str, genome_id: str | None = None
    ) -> list[PaperDayRecord]:
        """Return the stored paper days in ``start..end`` (inclusive ISO days).

        Ordered by genome, day and account, like :meth:`paper_days`; of one genome if given.
        """
        return self.paper_days(genome_id, since=start, until=end)

    def feedback_between(self, start: str, end: str) -> list[dict[str, Any]]:
        """Return the LiveFeedback records whose period overlaps ``start..end`` (inclusive).

        As dicts (:meth:`feedback`), by genome, account and period start.
        """
        rows = self._connection.execute(
            "SELECT record_json FROM feedback WHERE period_start<=? AND period_end>=? "
            "ORDER BY genome_id, account, period_start",
            (end, start),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def status_counts(self) -> dict[str, int]:
        """Return how many genomes hold each status now, and how many are paused.

        Returns
        -------
        dict
            Every status of :data:`STATUSES` (zero included), in that order, then ``paused``
            (genomes carrying the pause flag, whatever their status).
        """
        counts = dict.fromkeys(STATUSES, 0)
        for r in self._connection.execute(
            "SELECT status, COUNT(*) AS n FROM genomes GROUP BY status"
        ).fetchall():
            counts[str(r["status"])] = int(r["n"])
        paused = self._connection.execute("SELECT COUNT(*) FROM genomes WHERE paused=1").fetchone()
        counts["paused"] = int(paused[0])
        return counts
