"""A season of the arena: days ``A..B`` with weekly evolution and the closed loop, and status.

:func:`replay_season` runs each trading day of ``[A, B]`` through the day's pipeline
(:func:`arena.day.run_arena_day`: perceive, plan, trade, close, review; ``docs/arena_day.md``)
on an :class:`arena.day.Accounts` back end (local or Ray), skipping the committed days, so a
season resumes where it stopped. After each day the loop is closed (:func:`closed_loop`: the
day's paper record into the gene pool, then promotions and demotions); after the weekly
evolution day the gene pool evolves (:func:`weekly_evolution`, keyed by its ``as_of`` day in the
gene pool, so ``EvolutionSession(..., resume=True)`` continues an interrupted one).
:func:`arena_status` reports the accounts, the last committed and any partially committed
day, and the kill switch (:mod:`arena.kill_switch`): while the lab is paused each day trades
:func:`arena.plan.pause_plan`'s plan and every summary carries ``"paused"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
from arena.day import Accounts, refuse_broken_ledger, run_arena_day
from arena.kill_switch import read_pause
from arena.ledger import Ledger
from arena.market import ArenaData, trading_days
from arena.personas import PERSONA_NAMES, ArenaConfig
from simulators.metrics import periods_per_year

__all__ = ["arena_status", "replay_season"]


# --------------------------------------------------------------------------- data


# --------------------------------------------------------------------------- back ends


# --------------------------------------------------------------------------- one day


# --------------------------------------------------------------------------- outputs


# --------------------------------------------------------------------------- season
def season_days(data: ArenaData, start: date, end: date) -> list[date]:
    """Return the trading days of the data in ``[start, end]`` that have an earlier bar."""
    days = trading_days(data.daily)
    return [d for d in days[1:] if start <= d <= end]


def replay_season(
    accounts: Accounts,
    data: ArenaData,
    start: date,
    end: date,
    *,
    home: LabHome,
    config: ArenaConfig,
    evolve_weekday: int | None = 4,
    evolve: Callable[[date], dict[str, Any]] | None = None,
    on_day: Callable[[dict[str, Any]], None] | None = None,
    write_report: bool = True,
    close: Callable[[date], Any] | None = None,
) -> dict[str, Any]:
    """Run every trading day in ``[start, end]``, skipping committed ones; evolve weekly.

    Parameters
    ----------
    evolve_weekday:
        Weekday (Monday 0 ... Sunday 6) after whose close the gene pool evolves; ``None``
        never evolves.
    evolve:
        ``as_of day -> summary``: the weekly evolution (see :func:`weekly_evolution`).
    on_day:
        Called with each day's summary (progress).
    close:
        ``day -> LoopDay``: closes the loop after each day (:func:`closed_loop`): the day's
        paper record into the gene pool, then promotions and demotions. ``None`` leaves the
        pool alone (an open loop).
    """
    days = season_days(data, start, end)
    if not days:
        raise ConfigError(f"arena replay: no trading day of {data.spec} between {start} and {end}")
    # The ledger as found is verified once in full; each day then re-links only the days
    # committed after the last verified one (the season's own).
    refuse_broken_ledger(home)
    ran = skipped = 0
    paused_days: list[str] = []
    evolutions: list[dict[str, Any]] = []
    loop_days: list[Any] = []
    for day in days:
        summary = run_arena_day(
            accounts, data, day, home=home, config=config, write_report=write_report,
            full_chain=False,
        )  # fmt: skip
        if summary["already_committed"]:
            skipped += 1
        else:
            ran += 1
            if summary["paused"] is not None:
                paused_days.append(summary["date"])
        if close is not None:
            loop_day = close(day)
            loop_days.append(loop_day)
            summary["loop"] = {"transitions": list(loop_day.transitions)}
        if on_day is not None:
            on_day(summary)
        if evolve is not None and evolve_weekday is not None and day.weekday() == evolve_weekday:
            evolutions.append(evolve(day))
    with Ledger(home.ledger_db) as ledger:
        last = ledger.last_committed_day()
    return {
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "days": len(days),
        "ran": ran,
        "skipped": skipped,
        "evolutions": evolutions,
        "last_committed": None if last is None else last.isoformat(),
        "loop": None if close is None else _loop_summary(loop_days),
        "paused_days": paused_days,
        "paused": _paused(home),
    }


def _paused(home: LabHome) -> dict[str, Any] | None:
    pause = read_pause(home)
    return None if pause is None else pause.to_dict()


def _loop_summary(days: Sequence[Any]) -> dict[str, Any]:
    from arena.loop import loop_summary

    return loop_summary(days)


def closed_loop(home: LabHome, data: ArenaData, *, promotion: Any = None) -> Callable[[date], Any]:
    """Return the season's loop closer: after each day, :func:`arena.loop.close_loop`.

    It reads the day's genome days (the review's records in the ledger) and applies the
    lifecycle of ``promotion`` (the packaged ``evolution.yaml``'s ``promotion:`` by default).
    """
    from arena.loop import close_loop
    from evolution.session import load_session_config

    config = promotion if promotion is not None else load_session_config().promotion
    periods = periods_per_year(data.daily.freq, data.daily.market)
    calibrations: dict[tuple[str, str], Any] = {}  # the stand-ins', kept across the days

    def close(day: date) -> Any:
        with Ledger(home.ledger_db) as ledger:
            rows = ledger.genome_days(start=day, end=day)
        # Promotions and demotions change the statuses an evolution session works on: not
        # while one runs on this home (alphaloop.locks).
        with store_lock(home, "gene_pool", purpose=f"closing the loop of {day.isoformat()}"):
            return close_loop(
                home, day, rows, config=config, periods_per_year=periods,
                config_hash=config.stable_hash(), daily=data.daily, calibrations=calibrations,
            )  # fmt: skip

    return close


def weekly_evolution(
    home: LabHome,
    data: ArenaData,
    *,
    generations: int = 5,
    population: int = 16,
    seed: int = 0,
    window: int | None = None,
    holdout: int | None = None,
    track: bool = False,
    config: Any = None,
) -> Callable[[date], dict[str, Any]]:
    """Return the season's weekly evolution: a small ``EvolutionSession`` as of the day.

    Each week continues the pool's living population (one living pool: lineage and the trial
    registry span the weeks), with enough generations (default 5) that mutants and hybrids are
    born and scored. The session is identified by (seed, config, data, as_of) and resumed when
    it exists, so a season interrupted during an evolution continues it rather than starting a
    second one. ``config`` (a ``SessionConfig``) replaces the small default configuration.
    """

    def evolve(day: date) -> dict[str, Any]:
        from evolution.session import EvolutionSession, load_session_config

        session_config = config
        if session_config is None:
            overrides: dict[str, Any] = {
                "evolution": {"population": population, "elite": 2, "immigrants": 2},
                "refine": {"top": 1, "trials": 4},
                "gate_top": 2,
            }
            if window is not None:
                overrides["fitness"] = {"window": window}
            if holdout is not None:
                overrides["holdout"] = holdout
            session_config = load_session_config(overrides=overrides)
        session = EvolutionSession(
            home=home, panel=data.daily, data_spec=data.spec, as_of=day.isoformat(),
            seed=seed, config=session_config, workers=0, track=track,
        )  # fmt: skip
        try:
            summary = session.run(generations, resume=True)
        finally:
            session.close()
        births: dict[str, int] = {}
        for generation in summary.get("generations", ()):
            for operator, count in generation.get("births", {}).items():
                births[operator] = births.get(operator, 0) + int(count)
        return {
            "as_of": day.isoformat(),
            "session": summary.get("session_id"),
            "generations": len(summary.get("generations", ())),
            "births": dict(sorted(births.items())),
            "passed_gate": sum(int(g.get("promoted", 0)) for g in summary.get("generations", ())),
        }

    return evolve


# --------------------------------------------------------------------------- status
def arena_status(home: LabHome) -> dict[str, Any]:
    """Return the last committed day, each account's equity there and the pause (``arena
    status``; ``"paused"``: :meth:`arena.kill_switch.Pause.to_dict`, ``None`` when not paused).

    ``"partial"`` is ``None``, or, when only some accounts committed the last day (a crash
    between two commits), ``{"day", "committed", "missing"}``: the day is not complete until
    ``arena run --date DAY`` commits the missing accounts.
    """
    path = home.ledger_db
    accounts: dict[str, Any] = {}
    last_day: str | None = None
    if not path.exists():
        # Reading never creates the ledger.
        return {
            "ledger": str(path), "last_committed": last_day, "partial": None,
            "accounts": accounts, "paused": _paused(home),
        }  # fmt: skip
    with Ledger(path) as ledger:
        registered = {record.account: record for record in ledger.account_records()}
        closes = ledger.last_equities()
    for name, (day, snapshot) in closes.items():
        record = registered[name]
        scale = 10.0**record.units.money_digits
        equity = snapshot.equity / scale
        initial = record.initial_cash / scale
        accounts[name] = {
            "day": day.isoformat(),
            "equity": equity,
            "cash": snapshot.cash / scale,
            "total_return": equity / initial - 1.0 if initial > 0 else math.nan,
        }
        last_day = day.isoformat() if last_day is None or day.isoformat() > last_day else last_day
    # A day some accounts committed and others not (a crash between two commits): partial.
    names = sorted(set(PERSONA_NAMES) | set(registered))
    behind = [name for name in names if name not in accounts or accounts[name]["day"] != last_day]
    partial = None
    if last_day is not None and behind:
        partial = {
            "day": last_day,
            "committed": [name for name in names if name not in behind],
            "missing": behind,
        }
    return {
        "ledger": str(path), "last_committed": last_day, "partial": partial,
        "accounts": accounts, "paused": _paused(home),
    }  # fmt: skip
