"""The arena's experience memory: every closed trade and every arena day as an episode.

Plain Python, NumPy and SQLite (no Ray, no MLflow). The rules are written in
``docs/memory.md``; in short:

* **Episodes** (:class:`Episode`) are derived from the committed ledger alone, after the day's
  review (:func:`record_day`, called by :func:`arena.day.run_arena_day`): one ``day`` episode
  per arena day (the regime inputs, the synthesis debate's figures, the day's execution
  figures; outcome: each account's day return and each genome style's paper return) and one
  ``trade`` episode per round trip that closed that day (the entry day's regime inputs, the
  genome's style and genes; outcome: the trade's return after fees). Re-deriving a day gives
  the same episodes (same ids), so a day whose episodes a crash lost is simply recorded again.
* **When an outcome is known** (``known``): the day of a day episode, the exit day of a
  trade. Retrieval for a decision on day ``D`` sees only episodes with ``known < D``.
* **Similarity** (:func:`nearest_days`): the Euclidean distance between context vectors of
  :data:`CONTEXT_FEATURES`, each standardised by the mean and (population) standard deviation
  over the episodes eligible for the decision (a feature without spread counts 0); ties by
  the later day first, then the id.
* **Importance and forgetting**: ``importance = |r| / (|r| + IMPORTANCE_SCALE)`` with ``r``
  the episode's outcome return (for a day, its largest style return in absolute value). When
  a kind holds more than ``capacity`` episodes, those with the lowest retention
  ``importance x 0.5 ** (age / half_life_days)`` are deleted, the age counted in calendar days
  from the newest episode's day (never the wall clock: a replay forgets the same episodes).
* **Judge weights** (:class:`JudgeWeights`): the synthesis judge's persona weights and their
  history live in the same store (:mod:`arena.judge`).

The store (``<home>/memory.sqlite``) has its own schema version (``meta.schema_version``) and
migrations (:data:`MIGRATIONS`), applied in the transaction that opens an older file; every
write is one SQLite transaction. It is written only by the arena's day, which runs under the
ledger's lock (:mod:`alphaloop.locks`), so it needs no lock of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alphaloop.errors import AlphaLoopError
from arena.ledger import Ledger, apply_schema

__all__ = [
    "CONTEXT_FEATURES",
    "DEFAULT_CAPACITY",
    "DEFAULT_HALF_LIFE_DAYS",
    "IMPORTANCE_SCALE",
    "SCHEMA_VERSION",
    "Contrast",
    "Episode",
    "JudgeWeights",
    "MemoryStore",
    "MemoryStoreError",
    "Neighbour",
    "account_contrast",
    "context_of",
    "contrast_of",
    "day_episodes",
    "importance",
    "nearest_days",
    "record_day",
]

SCHEMA_VERSION = 1
# The regime inputs a day is compared by (arena.perceive.RegimeReading's figures).
CONTEXT_FEATURES: tuple[str, ...] = (
    "trend_return",
    "index_volatility",
    "vol_percentile",
    "breadth",
)
# A return of this size is half as important as the largest ones.
IMPORTANCE_SCALE = 0.01
DEFAULT_CAPACITY = 5000
DEFAULT_HALF_LIFE_DAYS = 365.0

Kind = Literal["day", "trade"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS episodes (
    episode_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('day', 'trade')),
    day TEXT NOT NULL,
    known TEXT NOT NULL,
    account TEXT NOT NULL,
    regime TEXT NOT NULL,
    style TEXT,
    genome_id TEXT,
    outcome_return REAL NOT NULL,
    importance REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS episodes_known ON episodes (kind, known);
CREATE TABLE IF NOT EXISTS recorded_days (day TEXT PRIMARY KEY, episodes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS judge_weights (
    effective_from TEXT PRIMARY KEY,
    aggressive REAL NOT NULL,
    conservative REAL NOT NULL,
    basis TEXT NOT NULL
)
"""
# version -> statements taking a file from version - 1 to version (none yet beyond 1).
MIGRATIONS: dict[int, tuple[str, ...]] = {}


class MemoryStoreError(AlphaLoopError, ValueError):
    """The memory store cannot be read (a newer schema, a broken row) or a query is invalid."""


# --------------------------------------------------------------------------- episodes
@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """One remembered decision with its context and outcome (module docstring).

    ``context`` holds the :data:`CONTEXT_FEATURES` (``None`` where unknown); ``outcome`` the
    figures of what happened (``return`` always; a day also ``accounts`` and ``styles``).
    """

    episode_id: str
    kind: Kind
    day: date
    known: date
    account: str
    regime: str
    style: str | None
    genome_id: str | None
    context: Mapping[str, float | None]
    genes: Mapping[str, Any] = field(default_factory=dict)
    debate: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    outcome: Mapping[str, Any] = field(default_factory=dict)
    importance: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("day", "trade"):
            raise ValueError(f"episode kind must be day or trade, got {self.kind!r}")
        if self.known < self.day:
            raise ValueError(f"episode {self.episode_id}: known {self.known} before day {self.day}")
        ret = self.outcome.get("return")
        if not isinstance(ret, int | float) or not math.isfinite(ret):
            raise ValueError(f"episode {self.episode_id}: outcome return must be finite")

    @property
    def outcome_return(self) -> float:
        """Return the episode's outcome return."""
        return float(self.outcome["return"])

    def vector(self) -> np.ndarray:
        """Return the context as a float64 vector of :data:`CONTEXT_FEATURES` (NaN: unknown)."""
        values = [self.context.get(name) for name in CONTEXT_FEATURES]
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``memory show --json``)."""
        return {
            "episode_id": self.episode_id,
            "kind": self.kind,
            "day": self.day.isoformat(),
            "known": self.known.isoformat(),
            "account": self.account,
            "regime": self.regime,
            "style": self.style,
            "genome_id": self.genome_id,
            "context": dict(self.context),
            "genes": dict(self.genes),
            "debate": dict(self.debate),
            "execution": dict(self.execution),
            "outcome": dict(self.outcome),
            "importance": self.importance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        """Rebuild an episode from :meth:`to_dict` output."""
        return cls(
            episode_id=str(data["episode_id"]),
            kind=data["kind"],
            day=date.fromisoformat(data["day"]),
            known=date.fromisoformat(data["known"]),
            account=str(data["account"]),
            regime=str(data["regime"]),
            style=data.get("style"),
            genome_id=data.get("genome_id"),
            context=dict(data["context"]),
            genes=dict(data.get("genes") or {}),
            debate=dict(data.get("debate") or {}),
            execution=dict(data.get("execution") or {}),
            outcome=dict(data["outcome"]),
            importance=float(data.get("importance", 0.0)),
        )


def importance(outcome_return: float) -> float:
    """Return ``|r| / (|r| + IMPORTANCE_SCALE)``: 0 for a flat outcome, towards 1 for large."""
    size = abs(float(outcome_return))
    return size / (size + IMPORTANCE_SCALE)


def _episode_id(kind: str, account: str, day: date, key: str) -> str:
    text = f"{kind}\n{account}\n{day.isoformat()}\n{key}"
    return f"{kind[0]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def context_of(regime: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Return the :data:`CONTEXT_FEATURES` of a stored perception's regime dict."""
    regime = regime or {}
    return {name: _finite(regime.get(name)) for name in CONTEXT_FEATURES}


# --------------------------------------------------------------------------- judge weights
@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeWeights:
    """The synthesis judge's persona weights from ``effective_from`` on (:mod:`arena.judge`)."""

    effective_from: date
    aggressive: float
    conservative: float
    basis: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("aggressive", "conservative"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"judge weight {name} must be in [0, 1], got {value!r}")
        if abs(self.aggressive + self.conservative - 1.0) > 1e-9:
            raise ValueError("judge weights must sum to 1")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "effective_from": self.effective_from.isoformat(),
            "aggressive": self.aggressive,
            "conservative": self.conservative,
            "basis": dict(self.basis),
        }


# --------------------------------------------------------------------------- the store
class MemoryStore:
    """The SQLite store of episodes and judge weights (``<home>/memory.sqlite``).

    Parameters
    ----------
    path:
        The database file (created with its schema when missing).

    Raises
    ------
    MemoryStoreError
        If the file was written by a newer schema than :data:`SCHEMA_VERSION`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60.0)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA synchronous = FULL")
        with self._transaction():
            self._migrate()

    def _migrate(self) -> None:
        apply_schema(
            self._conn,
            schema=_SCHEMA,
            migrations=MIGRATIONS,
            latest=SCHEMA_VERSION,
            refuse=lambda found: MemoryStoreError(
                f"{self.path}: memory schema version {found}, this code reads versions 1 to "
                f"{SCHEMA_VERSION} (a newer AlphaLoop wrote this file?)"
            ),
        )

    def schema_version(self) -> int:
        """Return the file's schema version."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row["value"])

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ episodes
    def is_recorded(self, day: date) -> bool:
        """Return whether the episodes of arena day ``day`` are stored."""
        row = self._conn.execute(
            "SELECT 1 FROM recorded_days WHERE day = ?", (day.isoformat(),)
        ).fetchone()
        return row is not None

    def write_day(
        self,
        day: date,
        episodes: Sequence[Episode],
        *,
        capacity: int = DEFAULT_CAPACITY,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    ) -> int:
        """Store ``day``'s episodes in one transaction (replacing any of that day), then forget.

        Returns the number of episodes forgotten (:meth:`forget`).
        """
        iso = day.isoformat()
        for episode in episodes:
            if episode.known != day:
                raise ValueError(f"episode {episode.episode_id} is known on {episode.known}")
        with self._transaction() as conn:
            conn.execute("DELETE FROM episodes WHERE known = ?", (iso,))
            for episode in episodes:
                conn.execute(
                    "INSERT INTO episodes (episode_id, kind, day, known, account, regime, style, "
                    "genome_id, outcome_return, importance, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        episode.episode_id, episode.kind, episode.day.isoformat(), iso,
                        episode.account, episode.regime, episode.style, episode.genome_id,
                        episode.outcome_return, episode.importance,
                        json.dumps(episode.to_dict(), sort_keys=True, separators=(",", ":")),
                    ),
                )  # fmt: skip
            conn.execute(
                "INSERT OR REPLACE INTO recorded_days (day, episodes) VALUES (?, ?)",
                (iso, len(episodes)),
            )
            return self._forget(conn, capacity, half_life_days)

    def _forget(self, conn: sqlite3.Connection, capacity: int, half_life_days: float) -> int:
        forgotten = 0
        for kind in ("day", "trade"):
            rows = conn.execute(
                "SELECT episode_id, day, importance FROM episodes WHERE kind = ?", (kind,)
            ).fetchall()
            if len(rows) <= capacity:
                continue
            newest = max(date.fromisoformat(r["day"]) for r in rows)

            def retention(row: sqlite3.Row, newest: date = newest) -> tuple[float, str, str]:
                age = (newest - date.fromisoformat(row["day"])).days
                return (
                    float(row["importance"]) * 0.5 ** (age / half_life_days),
                    row["day"],
                    row["episode_id"],
                )

            ranked = sorted(rows, key=retention)
            for row in ranked[: len(rows) - capacity]:
                conn.execute("DELETE FROM episodes WHERE episode_id = ?", (row["episode_id"],))
                forgotten += 1
        return forgotten

    def episodes(
        self,
        *,
        kind: Kind | None = None,
        before: date | None = None,
        regime: str | None = None,
        style: str | None = None,
    ) -> list[Episode]:
        """Return the stored episodes (by day, then id); ``before``: only those with
        ``known < before`` (what a decision on ``before`` may see)."""
        sql = "SELECT body FROM episodes WHERE 1 = 1"
        params: list[Any] = []
        for column, value in (("kind", kind), ("regime", regime), ("style", style)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if before is not None:
            sql += " AND known < ?"
            params.append(before.isoformat())
        rows = self._conn.execute(sql + " ORDER BY day, episode_id", params).fetchall()
        return [Episode.from_dict(json.loads(r["body"])) for r in rows]

    def episode(self, episode_id: str) -> Episode | None:
        """Return the episode ``episode_id`` (``None`` when unknown)."""
        row = self._conn.execute(
            "SELECT body FROM episodes WHERE episode_id = ?", (episode_id,)
        ).fetchone()
        return None if row is None else Episode.from_dict(json.loads(row["body"]))

    # ------------------------------------------------------------------ judge weights
    def judge_weights(self) -> list[JudgeWeights]:
        """Return the judge weights' history, oldest first."""
        rows = self._conn.execute("SELECT * FROM judge_weights ORDER BY effective_from").fetchall()
        return [
            JudgeWeights(
                effective_from=date.fromisoformat(r["effective_from"]),
                aggressive=float(r["aggressive"]),
                conservative=float(r["conservative"]),
                basis=json.loads(r["basis"]),
            )
            for r in rows
        ]

    def write_judge_weights(self, weights: JudgeWeights) -> None:
        """Store (or replace) the weights effective from ``weights.effective_from``."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO judge_weights VALUES (?, ?, ?, ?)",
                (
                    weights.effective_from.isoformat(),
                    weights.aggressive,
                    weights.conservative,
                    json.dumps(dict(weights.basis), sort_keys=True, separators=(",", ":")),
                ),
            )


# --------------------------------------------------------------------------- retrieval
@dataclass(frozen=True, slots=True, kw_only=True)
class Neighbour:
    """A retrieved episode and its distance to the decision's context."""

    episode: Episode
    distance: float


def nearest_days(
    episodes: Sequence[Episode], context: Mapping[str, float | None], day: date, k: int
) -> list[Neighbour]:
    """Return the ``k`` day episodes nearest to ``context`` among those known before ``day``.

    Episodes known on or after ``day`` are never candidates (no look-ahead), nor those with
    an unknown context feature; an unknown feature of ``context`` returns no neighbour. The
    distance is Euclidean over the :data:`CONTEXT_FEATURES` standardised by the candidates'
    mean and population standard deviation (a feature with no spread counts 0).
    """
    if k < 1:
        return []
    query = np.array(
        [np.nan if context.get(n) is None else float(context[n]) for n in CONTEXT_FEATURES],  # type: ignore[arg-type]
        dtype=np.float64,
    )
    if not np.isfinite(query).all():
        return []
    pool = [e for e in episodes if e.kind == "day" and e.known < day]
    vectors = [e.vector() for e in pool]
    kept = [(e, v) for e, v in zip(pool, vectors, strict=True) if np.isfinite(v).all()]
    if not kept:
        return []
    matrix = np.vstack([v for _, v in kept])
    mean = matrix.mean(axis=0)
    std = matrix.std(axis=0)
    scale = np.where(std > 0, std, np.inf)
    z = (matrix - mean) / scale
    zq = (query - mean) / scale
    distances = np.sqrt(((z - zq) ** 2).sum(axis=1))
    order = sorted(
        range(len(kept)),
        key=lambda i: (float(distances[i]), -kept[i][0].day.toordinal(), kept[i][0].episode_id),
    )
    return [Neighbour(episode=kept[i][0], distance=float(distances[i])) for i in order[:k]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Contrast:
    """How the similar past days differed from every past day, for one figure.

    ``similar`` is the mean over the ``days`` similar days that have the figure, ``baseline``
    and ``baseline_sd`` the mean and population standard deviation over every past day that
    has it (``baseline_days``, the similar ones included), ``contrast = similar - baseline``
    and ``t_stat = contrast / (baseline_sd / sqrt(days))`` (0 when both are 0, +/-1e9 when
    the deviation is 0 and the contrast is not).
    """

    days: int
    similar: float
    baseline_days: int
    baseline: float
    baseline_sd: float
    contrast: float
    t_stat: float

    def worse_than_usual(self, *, min_days: int, min_t: float) -> bool:
        """Return whether the similar days lost money and significantly more than usual
        (at least ``min_days`` of them, ``similar < 0``, ``t <= -min_t``)."""
        return (
            self.days >= min_days
            and self.similar < 0.0
            and self.contrast < 0.0
            and self.t_stat <= -min_t
        )


def contrast_of(similar: Sequence[float], baseline: Sequence[float]) -> Contrast | None:
    """Return the :class:`Contrast` of ``similar`` against ``baseline`` (``None``: either is
    empty)."""
    if not similar or not baseline:
        return None
    mean = math.fsum(similar) / len(similar)
    base = math.fsum(baseline) / len(baseline)
    sd = math.sqrt(math.fsum((v - base) ** 2 for v in baseline) / len(baseline))
    contrast = mean - base
    se = sd / math.sqrt(len(similar))
    t_stat = contrast / se if se > 0 else (0.0 if contrast == 0 else math.copysign(1e9, contrast))
    return Contrast(
        days=len(similar), similar=mean, baseline_days=len(baseline), baseline=base,
        baseline_sd=sd, contrast=contrast, t_stat=t_stat,
    )  # fmt: skip


def account_contrast(
    episodes: Sequence[Episode],
    context: Mapping[str, float | None],
    day: date,
    k: int,
    accounts: Sequence[str],
) -> dict[str, Contrast | None]:
    """Return, per account, how its day return in the ``k`` day episodes nearest to
    ``context`` (known before ``day``) compared with its day return over all of them
    (:func:`nearest_days`'s eligibility; one ranking for every account); ``None`` for an
    account without a day."""
    everything = nearest_days(episodes, context, day, len(episodes))

    def returns(found: Sequence[Neighbour], account: str) -> list[float]:
        out: list[float] = []
        for n in found:
            value = (n.episode.outcome.get("accounts") or {}).get(account)
            if value is not None:
                out.append(float(value))
        return out

    return {a: contrast_of(returns(everything[:k], a), returns(everything, a)) for a in accounts}


# --------------------------------------------------------------------------- derivation
def _first_plan(ledger: Ledger, account: str, day: date) -> dict[str, Any]:
    """Return the plan's decision payload of ``account`` on ``day`` (``{}`` when none)."""
    for payload in ledger.decisions(account, day).values():
        if "perception" in payload:
            return payload
    return {}


def _day_return(ledger: Ledger, account: str, day: date) -> float | None:
    history = ledger.equity_history(account)
    previous: float | None = None
    for d, snapshot in history:
        if d == day:
            if previous is None:
                initial = ledger.account_record(account).initial_cash
                previous = float(initial)
            return float(snapshot.equity) / previous - 1.0 if previous > 0 else None
        previous = float(snapshot.equity)
    return None


def day_episodes(
    ledger: Ledger, day: date, genes: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Episode]:
    """Derive the episodes known on ``day`` from the committed ledger (module docstring).

    ``genes`` maps a genome id to its genes (``Genome.to_dict()``) for the trade episodes.
    """
    genes = genes or {}
    accounts = [a for a in ledger.accounts() if ledger.is_committed(a, day)]
    if not accounts:
        return []
    synthesis = _first_plan(ledger, "synthesis", day) if "synthesis" in accounts else {}
    reference = synthesis or _first_plan(ledger, accounts[0], day)
    regime_dict = (reference.get("perception") or {}).get("regime") or {}
    regime = str(regime_dict.get("regime") or "unknown")
    context = context_of(regime_dict)
    rows = [row for a in accounts for row in ledger.genome_days(a, start=day, end=day)]
    styles: dict[str, str] = {}
    for account in accounts:
        payload = _first_plan(ledger, account, day)
        for item in payload.get("genomes") or []:
            styles[str(item["genome_id"])] = str(item.get("style"))
        for item in payload.get("targets") or []:
            styles.setdefault(str(item["genome_id"]), str(item.get("style")))
    pnl: dict[str, float] = {}
    allocation: dict[str, float] = {}
    for row in rows:
        style = styles.get(row.genome_id, "unknown")
        pnl[style] = pnl.get(style, 0.0) + row.pnl
        allocation[style] = allocation.get(style, 0.0) + row.allocation
    style_returns = {
        s: pnl[s] / allocation[s] for s in sorted(pnl) if allocation[s] > 0 and s != "unknown"
    }
    account_returns = {a: _day_return(ledger, a, day) for a in accounts}
    debate = synthesis.get("debate") or None
    debate_figures: dict[str, Any] = {}
    if isinstance(debate, Mapping):
        debate_figures = {
            "verdict": debate.get("verdict"),
            "confidence": debate.get("confidence"),
            "scale": debate.get("scale"),
            "max_severity": max((o["severity"] for o in debate.get("objections", [])), default=0.0),
            "rounds": len(debate.get("rounds") or []),
            "quant_expected_return": (debate.get("quant") or {}).get("expected_return"),
        }
    fills = sum(len(ledger.fills(a, day)) for a in accounts)
    weights = [r.allocation for r in rows]
    total = sum(weights)
    slippage = sum(r.avg_slippage_bps * r.allocation for r in rows) / total if total > 0 else 0.0
    fill_ratio = sum(r.fill_ratio * r.allocation for r in rows) / total if total > 0 else 1.0
    synthesis_return = account_returns.get("synthesis")
    headline = synthesis_return if synthesis_return is not None else 0.0
    largest = max((abs(v) for v in style_returns.values()), default=abs(headline))
    episodes = [
        Episode(
            episode_id=_episode_id("day", "arena", day, ""),
            kind="day",
            day=day,
            known=day,
            account="arena",
            regime=regime,
            style=None,
            genome_id=None,
            context=context,
            debate=debate_figures,
            execution={
                "fills": fills,
                "avg_slippage_bps": slippage,
                "fill_ratio": fill_ratio,
                "risk_events": sum(len(ledger.risk_events(a, day)) for a in accounts),
            },
            outcome={
                "return": headline,
                "accounts": {a: v for a, v in account_returns.items() if v is not None},
                "styles": style_returns,
            },
            importance=importance(largest),
        )
    ]
    episodes.extend(_trade_episodes(ledger, day, accounts, genes))
    return episodes


def _trade_episodes(
    ledger: Ledger, day: date, accounts: Sequence[str], genes: Mapping[str, Mapping[str, Any]]
) -> list[Episode]:
    import pandas as pd

    from reports.biases import round_trips

    frame = pd.DataFrame(ledger.table_rows("fills"))
    if frame.empty:
        return []
    frame = frame[frame["account"].isin(list(accounts))]
    digits = {
        r.account: (r.units.money_digits, r.units.quantity_digits) for r in ledger.account_records()
    }
    out: list[Episode] = []
    for trip in round_trips(frame, digits):
        if trip.exit_time.date() != day:
            continue
        entry = trip.entry_time.date()
        plan = _first_plan(ledger, trip.account, entry)
        regime_dict = (plan.get("perception") or {}).get("regime") or {}
        target = next(
            (t for t in plan.get("targets") or [] if t.get("symbol") == trip.symbol), None
        )
        genome_id = None if target is None else str(target["genome_id"])
        style = None if target is None else str(target.get("style"))
        exit_plan = _first_plan(ledger, trip.account, day)
        debate = (exit_plan.get("debate") if trip.account == "synthesis" else None) or {}
        out.append(
            Episode(
                episode_id=_episode_id(
                    "trade", trip.account, day, f"{trip.symbol}\n{trip.exit_order_id}"
                ),
                kind="trade",
                day=entry,
                known=day,
                account=trip.account,
                regime=str(regime_dict.get("regime") or "unknown"),
                style=style,
                genome_id=genome_id,
                context=context_of(regime_dict),
                genes=dict(genes.get(genome_id or "", {})),
                debate={
                    "verdict": debate.get("verdict"),
                    "confidence": debate.get("confidence"),
                }
                if debate
                else {},
                execution={
                    "entry_price": trip.entry_price,
                    "exit_price": trip.exit_price,
                    "fees": trip.fees,
                    "quantity": trip.quantity,
                    "holding_days": trip.holding_days,
                },
                outcome={
                    "return": float(trip.return_),
                    "pnl": float(trip.pnl),
                    "symbol": trip.symbol,
                },
                importance=importance(float(trip.return_)),
            )
        )
    return out


def record_day(
    store: MemoryStore,
    ledger: Ledger,
    day: date,
    *,
    genes: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    capacity: int = DEFAULT_CAPACITY,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> int | None:
    """Store the episodes of committed day ``day`` unless already stored (``force``: again).

    Returns the number of episodes written, ``None`` when the day was already recorded or
    is not committed by every account.
    """
    if store.is_recorded(day) and not force:
        return None
    accounts = ledger.accounts()
    if not accounts or not all(ledger.is_committed(a, day) for a in accounts):
        return None
    episodes = day_episodes(ledger, day, genes)
    store.write_day(day, episodes, capacity=capacity, half_life_days=half_life_days)
    return len(episodes)
