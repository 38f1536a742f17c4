"""Tomorrow's adjustments as stored records that the next days' plans apply.

The daily review's lessons (:func:`reports.lessons.detect_lessons`) and the day's change in
market volatility become :class:`Adjustment` records (:func:`propose`): one account, one
parameter, its configured value (``old_value``) and the value the plan uses while the record
is in force (``new_value``), the reason, the lesson that caused it, the day it was made and
the last day it is in force. The rules are those of :func:`reports.lessons.adjustments` (the
report's sentences), each mapped onto one knob:

=================  =======================  =================================================
cause              parameter                new value
=================  =======================  =================================================
volatility rise    ``risk_budget`` (each)   ``budget * max(1 / (1 + change), min_risk_scale)``
                                            (only with the memory's evidence, below)
``high_vol_loss``  ``risk_budget``          ``budget * high_vol_risk_scale`` (same)
``over_trading``   ``max_positions``        ``ceil(max_positions * typical / trades_today)``
                                            (only on a day the account lost money)
``poor_fills``     ``participation_cap``    half the broker's participation cap (only on a
                                            day the account lost money)
``concentration``  ``risk.max_position_w``  the lesson's weight threshold (governor limit)
=================  =======================  =================================================

The two risk-budget rules act on an account only when the experience memory says days like
today cost **that account** money, and more than usual: among the day episodes nearest to
today's context (:func:`arena.memory.account_contrast`, the debate's ``memory_k`` of them),
its mean day return is negative and below its mean over every remembered day with
``t <= -memory_min_t``, over at least ``memory_min_days`` days (the debate's settings). A
volatility rise in a market where the account's edge pays in volatile days (or a lab with no
memory yet) changes nothing: the rule is a lesson the lab must have learnt, not a fixed
volatility target.

A behaviour lesson (``over_trading``, ``poor_fills``) becomes an adjustment only on a day
that cost its account money (``figures["day_return"] < 0``) **and** with the same memory
evidence as the risk-budget rules: otherwise it stays a remark of the report. Trading more
than usual is what an account that builds positions on a breakout does, and halving the
participation of a book whose edge pays more than its slippage leaves the edge unfilled.
Measured on the reflection benchmark: before these conditions (and with the volatility
rule's old 20% threshold) one 130-day window of its regime market (seed 400) made 246
records, two every trading day, and the aggressive account ended the window at +60.8%
against +84.4% with the adjustments off; with the losing-day condition alone, the behaviour
rules still cost the synthesis account 0.4-1.5% of equity a season on the plain-edge market
(seeds 410-412: 1.5%, 0.4% and 0.3%), where the memory never acted.

**Bounds** (:class:`AdjustmentConfig`, ``adjustments:`` in ``arena.yaml``): a persona knob
(``risk_budget``, ``max_positions``, ``participation_cap``) moves only within its configured
range, given as multiples of the configured value (``risk_budget_range: [0.25, 1.0]``); a
governor limit (``risk.<name>``, :class:`arena.risk.RiskLimits`) may only be **tightened**,
never loosened (:data:`GOVERNOR_TIGHTER`: smaller is tighter except ``min_cash_fraction``),
and by at most ``max_governor_tightening`` of its configured value. A rule whose bounded
value equals the configured one makes no record. Two causes of the same (account, parameter)
on the same day make one record, the tighter value, both reasons.

**In force**: a record made on day ``C`` with expiry ``E = C + lifetime_days`` (calendar days)
applies to every planned day ``D`` with ``C < D <= E`` unless reverted. When several records
of one (account, parameter) are in force the tightest applies; every value is computed from
the *configured* value, so adjustments never compound. :func:`effective_settings` turns the
records in force into each account's persona, risk limits and participation cap, which
:func:`arena.plan.plan_day` plans with; with no record in force the plan is exactly the
configured one.

**Store** (:class:`AdjustmentStore`): ``<home>/adjustments.sqlite``, apart from the ledger
(whose hash chain covers the books only), with its own ``schema_version`` in a ``meta`` table
and migrations from every older version in one transaction (:data:`_MIGRATIONS`); a file
written by a newer version is refused. Ids are ``adj-<YYYYMMDD>-<account>-<parameter>``, so a
replayed season stores the same records. Re-running day ``C`` (``--force``) replaces ``C``'s
records (a reverted one stays reverted). ``alphaloop arena adjustments --revert ID`` marks a
record reverted; an unknown id, an already reverted one or an expired one (its expiry before
the ledger's next day) is refused and nothing changes.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from alphaloop.errors import ConfigError
from alphaloop.home import LabHome

if TYPE_CHECKING:
    from arena.memory import Contrast
    from arena.risk import RiskLimits

# arena.personas imports this module (ArenaConfig holds an AdjustmentConfig): the arena
# configuration is typed ``Any`` here, with no import back.
ArenaConfig = Any
PersonaConfig = Any

__all__ = [
    "GOVERNOR_TIGHTER",
    "PERSONA_KNOBS",
    "SCHEMA_VERSION",
    "AccountSettings",
    "Adjustment",
    "AdjustmentConfig",
    "AdjustmentStore",
    "adjustments_db",
    "effective_settings",
    "propose",
]

SCHEMA_VERSION = 1
PERSONA_KNOBS: tuple[str, ...] = ("risk_budget", "max_positions", "participation_cap")
# Governor limits an adjustment may set, and whether a smaller value is the tighter one.
GOVERNOR_TIGHTER: dict[str, bool] = {
    "max_trade_risk": True,
    "max_position_weight": True,
    "max_gross_leverage": True,
    "max_daily_loss": True,
    "min_cash_fraction": False,
}


class AdjustmentConfig(FrozenConfig):
    """Bounds of the adjustments the daily review makes (module docstring)."""

    enabled: bool = True
    """Apply the records in force to each day's plan (and store the day's proposals)."""
    lifetime_days: int = Field(default=3, ge=1, le=60)
    """Calendar days after its creation day that a record stays in force (3: Friday's
    adjustment still applies on Monday)."""
    risk_budget_range: tuple[float, float] = (0.25, 1.0)
    """Range of a persona's risk budget, in multiples of its configured budget."""
    max_positions_range: tuple[float, float] = (0.25, 1.0)
    """Range of a persona's ``max_positions``, in multiples of the configured count."""
    participation_range: tuple[float, float] = (0.25, 1.0)
    """Range of an account's participation cap, in multiples of the broker's."""
    max_governor_tightening: float = Field(default=0.5, gt=0.0, lt=1.0)
    """A governor limit moves at most this share of its configured value (0.5: to half)."""

    @model_validator(mode="after")
    def _check_ranges(self) -> AdjustmentConfig:
        for name in ("risk_budget_range", "max_positions_range", "participation_range"):
            low, high = getattr(self, name)
            if not (0.0 < low <= 1.0 <= high <= 2.0):
                raise ValueError(
                    f"{name} must be [low, high] with 0 < low <= 1 <= high <= 2, got "
                    f"[{low}, {high}]"
                )
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class Adjustment:
    """One stored adjustment (module docstring): ``parameter`` is a persona knob of
    :data:`PERSONA_KNOBS` or ``risk.<limit>`` of :data:`GOVERNOR_TIGHTER`."""

    id: str
    account: str
    parameter: str
    old_value: float
    new_value: float
    reason: str
    lesson: str
    created_day: date
    expires_day: date
    reverted_at: str | None = None

    def __post_init__(self) -> None:
        if self.parameter.startswith("risk."):
            name = self.parameter.removeprefix("risk.")
            if name not in GOVERNOR_TIGHTER:
                raise ValueError(f"Adjustment.parameter {self.parameter!r}: not a governor limit")
            smaller = GOVERNOR_TIGHTER[name]
            loosens = (
                self.new_value > self.old_value if smaller else self.new_value < self.old_value
            )
            if loosens or self.new_value == self.old_value:
                raise ValueError(
                    f"Adjustment {self.id}: {self.parameter} {self.old_value} -> "
                    f"{self.new_value} does not tighten the governor"
                )
        elif self.parameter not in PERSONA_KNOBS:
            raise ValueError(f"Adjustment.parameter {self.parameter!r} is not adjustable")
        if not (math.isfinite(self.old_value) and math.isfinite(self.new_value)):
            raise ValueError(f"Adjustment {self.id}: values must be finite")
        if self.expires_day <= self.created_day:
            raise ValueError(f"Adjustment {self.id}: expires before it could apply")

    def in_force(self, day: date) -> bool:
        """Return whether the record applies to the plan of ``day``."""
        return self.reverted_at is None and self.created_day < day <= self.expires_day

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-ready values (``--json``, decision chains, reports)."""
        return {
            "id": self.id,
            "account": self.account,
            "parameter": self.parameter,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "reason": self.reason,
            "lesson": self.lesson,
            "created_day": self.created_day.isoformat(),
            "expires_day": self.expires_day.isoformat(),
            "reverted_at": self.reverted_at,
        }


def _tighter(parameter: str, a: float, b: float) -> float:
    if parameter.startswith("risk.") and not GOVERNOR_TIGHTER[parameter.removeprefix("risk.")]:
        return max(a, b)
    return min(a, b)


# --------------------------------------------------------------------------- proposals
def _account_names(config: ArenaConfig) -> tuple[str, ...]:
    # The personas' fields, in their order (arena.personas.PERSONA_NAMES, which imports this
    # module for its configuration).
    return tuple(type(config.personas).model_fields)


def _bounded(value: float, base: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0] * base), bounds[1] * base)


def propose(
    day: date,
    lessons: Sequence[Any],
    volatility_change: float | None,
    config: ArenaConfig,
    *,
    participation_cap: float,
    vol_rise_threshold: float = 0.2,
    min_risk_scale: float = 0.25,
    high_vol_risk_scale: float = 0.75,
    evidence: Mapping[str, Contrast | None] | None = None,
    min_days: int = 5,
    min_t: float = 1.0,
) -> list[Adjustment]:
    """Return the adjustments of ``day``'s review, by id (module docstring's table).

    Parameters
    ----------
    lessons:
        :class:`reports.lessons.Lesson` values (``kind``, ``account``, ``detail``,
        ``figures``) of the day.
    volatility_change:
        The day's relative change of market volatility (``None``: unknown).
    config:
        The arena configuration (the configured values and :class:`AdjustmentConfig`).
    participation_cap:
        The broker's participation cap (:class:`arena.rules.BrokerRules`).
    min_risk_scale, high_vol_risk_scale, vol_rise_threshold:
        The lesson thresholds (:class:`reports.lessons.LessonConfig`).
    evidence, min_days, min_t:
        Per account, the experience memory's :class:`arena.memory.Contrast` of its day
        return in the past days most like today against every past day. The two
        risk-budget rules (a volatility rise, a high-volatility loss) cut an account's budget
        only when it says that account lost money in days like this, and significantly
        more than usual (:meth:`arena.memory.Contrast.worse_than_usual` with ``min_days`` and
        ``min_t``); without it (no memory yet, an account it does not know) they make no
        record.
    """
    names = _account_names(config)
    bounds = config.adjustments
    expires = day + timedelta(days=bounds.lifetime_days)
    found: dict[tuple[str, str], Adjustment] = {}

    def add(account: str, parameter: str, old: float, new: float, reason: str, lesson: str) -> None:
        if parameter == "max_positions":
            new = float(max(1, math.floor(new)))
        if new == old or not math.isfinite(new):
            return
        if parameter.startswith("risk."):
            smaller = GOVERNOR_TIGHTER[parameter.removeprefix("risk.")]
            if (new > old) if smaller else (new < old):
                return  # it would loosen the governor: never
        key = (account, parameter)
        record = Adjustment(
            id=f"adj-{day:%Y%m%d}-{account}-{parameter}",
            account=account, parameter=parameter, old_value=old, new_value=new,
            reason=reason, lesson=lesson, created_day=day, expires_day=expires,
        )  # fmt: skip
        if key in found:
            first = found[key]
            record = replace(
                first,
                new_value=_tighter(parameter, first.new_value, new),
                reason=f"{first.reason}; {reason}",
                lesson=f"{first.lesson}; {lesson}",
            )
        found[key] = record

    def backed(account: str) -> str | None:
        """The memory's sentence when days like today lost ``account`` money, more than
        usual (``None``: no such evidence, so no cut)."""
        found = (evidence or {}).get(account)
        if found is None or not found.worse_than_usual(min_days=min_days, min_t=min_t):
            return None
        return (
            f"memory: in the {found.days} days most like today {account} returned "
            f"{found.similar:+.2%} a day against {found.baseline:+.2%} over all "
            f"{found.baseline_days} (t {found.t_stat:+.1f})"
        )

    def budget(account: str, scale: float, reason: str, lesson: str) -> None:
        memory = backed(account)
        if memory is None:
            return
        old = config.personas.get(account).risk_budget
        add(account, "risk_budget", old, _bounded(old * scale, old, bounds.risk_budget_range),
            f"{reason}; {memory}", f"{lesson}; {memory}")  # fmt: skip

    threshold = vol_rise_threshold
    if volatility_change is not None and math.isfinite(volatility_change):
        if volatility_change > threshold:
            scale = max(1.0 / (1.0 + volatility_change), min_risk_scale)
            for name in names:
                budget(
                    name, scale,
                    f"market volatility rose {volatility_change:.0%} (above {threshold:.0%})",
                    f"volatility_rise: {volatility_change:+.4f}",
                )  # fmt: skip
    for lesson in lessons:
        account, figures = lesson.account, lesson.figures
        if account not in names:
            continue
        cause = f"{lesson.kind}: {lesson.detail}"
        persona = config.personas.get(account)
        if lesson.kind == "high_vol_loss":
            budget(account, high_vol_risk_scale, f"a loss in a {figures['regime']} regime", cause)
        elif lesson.kind in ("over_trading", "poor_fills") and (
            not float(figures.get("day_return", 0.0)) < 0.0 or backed(account) is None
        ):
            continue  # it did not cost money, or nothing says days like this do: a remark
        elif lesson.kind == "over_trading":
            old = float(persona.max_positions)
            ratio = float(figures["typical_trades"]) / float(figures["trades_today"])
            new = _bounded(math.ceil(old * ratio), old, bounds.max_positions_range)
            add(account, "max_positions", old, new, f"traded more than usual; {backed(account)}",
                cause)  # fmt: skip
        elif lesson.kind == "poor_fills":
            old = float(participation_cap)
            new = _bounded(old / 2.0, old, bounds.participation_range)
            add(account, "participation_cap", old, new,
                f"poor fills: slice thinner; {backed(account)}", cause)  # fmt: skip
        elif lesson.kind == "concentration":
            old = config.risk.max_position_weight
            floor = old * (1.0 - bounds.max_governor_tightening)
            new = max(float(figures["threshold"]), floor)
            add(account, "risk.max_position_weight", old, new,
                f"{figures['symbol']} above {float(figures['threshold']):.0%} of equity",
                cause)  # fmt: skip
    return [found[key] for key in sorted(found)]


# --------------------------------------------------------------------------- application
@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSettings:
    """What one account plans and trades with on a day: its persona, limits, participation."""

    persona: PersonaConfig
    risk: RiskLimits
    participation_cap: float | None
    adjustments: tuple[Adjustment, ...] = ()


def effective_settings(
    config: ArenaConfig,
    records: Iterable[Adjustment],
    day: date,
    *,
    participation_cap: float | None = None,
) -> dict[str, AccountSettings]:
    """Return each account's settings on ``day`` with the records in force applied.

    Only records in force on ``day`` count; per (account, parameter) the tightest applies,
    clamped again into the configured bounds (a record made under other bounds cannot leave
    them) and, for a governor limit, never looser than the configured limit. With no record
    in force every account gets the configured persona, ``config.risk`` and ``None`` (the
    broker's participation cap).
    """
    from arena.risk import RiskLimits

    names = _account_names(config)
    bounds = config.adjustments
    chosen: dict[tuple[str, str], float] = {}
    used: dict[str, list[Adjustment]] = {name: [] for name in names}
    for record in sorted(records, key=lambda r: r.id):
        if not record.in_force(day) or record.account not in used:
            continue
        key = (record.account, record.parameter)
        value = record.new_value
        chosen[key] = _tighter(record.parameter, chosen[key], value) if key in chosen else value
        used[record.account].append(record)
    out: dict[str, AccountSettings] = {}
    for name in names:
        persona = config.personas.get(name)
        updates: dict[str, Any] = {}
        limits: dict[str, float] = {}
        participation: float | None = None
        for (account, parameter), value in chosen.items():
            if account != name:
                continue
            if parameter == "risk_budget":
                base = persona.risk_budget
                updates["risk_budget"] = _bounded(value, base, bounds.risk_budget_range)
            elif parameter == "max_positions":
                base = float(persona.max_positions)
                updates["max_positions"] = max(
                    1, int(_bounded(value, base, bounds.max_positions_range))
                )
            elif parameter == "participation_cap" and participation_cap is not None:
                participation = _bounded(value, participation_cap, bounds.participation_range)
            elif parameter.startswith("risk."):
                field = parameter.removeprefix("risk.")
                base = float(getattr(config.risk, field))
                most = bounds.max_governor_tightening
                floor = base * (1.0 - most)
                if GOVERNOR_TIGHTER[field]:
                    limits[field] = min(max(value, floor), base)
                else:
                    limits[field] = max(min(value, 1.0 - (1.0 - base) * (1.0 - most)), base)
        risk = config.risk
        if limits:
            merged = {**config.risk.model_dump(), **limits}
            # A lower name weight also caps the per-trade risk (the limits' own rule).
            merged["max_trade_risk"] = min(merged["max_trade_risk"], merged["max_position_weight"])
            risk = RiskLimits.model_validate(merged)
        out[name] = AccountSettings(
            persona=persona.model_copy(update=updates) if updates else persona,
            risk=risk,
            participation_cap=participation,
            adjustments=tuple(used[name]),
        )
    return out


# --------------------------------------------------------------------------- store
def adjustments_db(home: Any) -> Path:
    """Return the adjustments store of a lab home (``<home>/adjustments.sqlite``)."""
    return Path(LabHome(Path(home.root)).adjustments_db)


_SCHEMA_1 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS adjustments (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        parameter TEXT NOT NULL,
        old_value REAL NOT NULL,
        new_value REAL NOT NULL,
        reason TEXT NOT NULL,
        lesson TEXT NOT NULL,
        created_day TEXT NOT NULL,
        expires_day TEXT NOT NULL,
        reverted_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS adjustments_days ON adjustments (created_day, expires_day)",
)
# Version k of the file is version k - 1 plus _MIGRATIONS[k] (version 1 is _SCHEMA_1).
_MIGRATIONS: dict[int, tuple[str, ...]] = {1: _SCHEMA_1}
_COLUMNS = (
    "id", "account", "parameter", "old_value", "new_value", "reason", "lesson",
    "created_day", "expires_day", "reverted_at",
)  # fmt: skip


class AdjustmentStore:
    """The adjustments of a lab home (module docstring). Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            self._migrate()
        except BaseException:
            self.db.close()
            raise

    def __enter__(self) -> AdjustmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    def _migrate(self) -> None:
        if self.stored_version() == SCHEMA_VERSION:
            return  # current: opening writes nothing
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.stored_version()
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.path}: adjustments schema version {version}, this AlphaLoop reads "
                    f"versions 1 to {SCHEMA_VERSION} (a newer AlphaLoop wrote this file?)"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    self.db.execute(statement)
            self.db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def stored_version(self) -> int:
        """Return the file's schema version (0: a new file)."""
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta is None:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return 0 if row is None else int(row[0])

    def replace_day(self, day: date, records: Sequence[Adjustment]) -> None:
        """Store ``records`` as ``day``'s proposals, replacing any stored for ``day`` before
        (a reverted record made again keeps its revert), in one transaction."""
        if any(r.created_day != day for r in records):
            raise ValueError(f"replace_day({day}): every record must be made on {day}")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            reverted = dict(
                self.db.execute(
                    "SELECT id, reverted_at FROM adjustments WHERE created_day = ? "
                    "AND reverted_at IS NOT NULL",
                    (day.isoformat(),),
                ).fetchall()
            )
            self.db.execute("DELETE FROM adjustments WHERE created_day = ?", (day.isoformat(),))
            for record in records:
                row = record.to_dict()
                row["reverted_at"] = reverted.get(record.id)
                self.db.execute(
                    f"INSERT INTO adjustments ({', '.join(_COLUMNS)}) VALUES "
                    f"({', '.join('?' for _ in _COLUMNS)})",
                    tuple(row[c] for c in _COLUMNS),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def all(self) -> list[Adjustment]:
        """Return every record, oldest day first, then by id."""
        rows = self.db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM adjustments ORDER BY created_day, id"
        ).fetchall()
        return [_record(row) for row in rows]

    def in_force(self, day: date) -> list[Adjustment]:
        """Return the records that apply to the plan of ``day``, by id."""
        return sorted((r for r in self.all() if r.in_force(day)), key=lambda r: r.id)

    def made_on(self, day: date) -> list[Adjustment]:
        """Return the records ``day``'s review made, by id."""
        return sorted((r for r in self.all() if r.created_day == day), key=lambda r: r.id)

    def revert(self, adjustment_id: str, *, next_day: date | None) -> Adjustment:
        """Mark ``adjustment_id`` reverted; return it as stored.

        ``next_day`` is the first day a plan could still use it (the day after the ledger's
        last committed day; ``None``: nothing committed, nothing has expired).

        Raises
        ------
        ConfigError
            The id is unknown, already reverted, or expired (its expiry before ``next_day``);
            nothing is changed.
        """
        found = [r for r in self.all() if r.id == adjustment_id]
        if not found:
            raise ConfigError(
                f"arena adjustments --revert {adjustment_id!r}: no such adjustment in "
                f"{self.path} (list them with alphaloop arena adjustments)"
            )
        record = found[0]
        if record.reverted_at is not None:
            raise ConfigError(
                f"arena adjustments --revert {adjustment_id!r}: already reverted at "
                f"{record.reverted_at}"
            )
        if next_day is not None and record.expires_day < next_day:
            raise ConfigError(
                f"arena adjustments --revert {adjustment_id!r}: expired on "
                f"{record.expires_day.isoformat()} (the next day to plan is "
                f"{next_day.isoformat()}); an expired adjustment applies to no plan"
            )
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "UPDATE adjustments SET reverted_at = ? WHERE id = ?", (stamp, adjustment_id)
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return replace(record, reverted_at=stamp)


def _record(row: Sequence[Any]) -> Adjustment:
    values: Mapping[str, Any] = dict(zip(_COLUMNS, row, strict=True))
    return Adjustment(
        id=values["id"],
        account=values["account"],
        parameter=values["parameter"],
        old_value=float(values["old_value"]),
        new_value=float(values["new_value"]),
        reason=values["reason"],
        lesson=values["lesson"],
        created_day=date.fromisoformat(values["created_day"]),
        expires_day=date.fromisoformat(values["expires_day"]),
        reverted_at=values["reverted_at"],
    )
