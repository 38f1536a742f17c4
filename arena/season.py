"""Driving the arena: one day, a season (replay ``A..B`` with weekly evolution), status.

The accounts are reached through an :class:`Accounts` back end chosen once where the objects
are wired: :class:`LocalAccounts` (three :class:`~arena.cycle.AccountBook` in this process)
or ``arena.actors.RayAccounts`` (one Ray actor each). Everything else is the same code.

A day whose three accounts are committed is not run again (``already_committed``); a day
where only some accounts committed (a crash between two commits) runs the others only, from
the same plan, so the ledger ends as an uninterrupted run's. A season skips committed days
and so resumes where it stopped; its weekly evolution is keyed by its ``as_of`` day in the
gene pool (``EvolutionSession(..., resume=True)`` continues an interrupted one).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from arena.bootstrap import ArenaGenome, arena_genomes
from arena.broker import BrokerRules
from arena.cycle import (
    AccountBook,
    AccountDayResult,
    AccountPlan,
    DayMarket,
    account_metrics,
    benchmark_return,
    day_index,
    day_market,
    plan_day,
    trading_days,
)
from arena.ledger import Ledger
from arena.personas import PERSONA_NAMES, ArenaConfig
from simulators.bars import Panel

__all__ = [
    "Accounts",
    "ArenaData",
    "LocalAccounts",
    "arena_status",
    "load_arena_data",
    "replay_season",
    "run_arena_day",
]


# --------------------------------------------------------------------------- data
@dataclass(frozen=True, slots=True, kw_only=True)
class ArenaData:
    """The market the arena trades: the daily panel and, for synthetic data, its spec."""

    daily: Panel
    spec: str
    synthetic: Any = None  # simulators.synthetic.SyntheticSpec for synthetic data

    def minute_bars(self, day: date) -> Panel | None:
        """Return the minute bars of ``day`` (synthetic data), or ``None`` (daily only)."""
        if self.synthetic is None:
            return None
        from simulators.synthetic import generate_intraday

        return generate_intraday(self.synthetic, self.daily, day_index(self.daily, day))

    def rules(self) -> BrokerRules:
        """Return the market's broker rules."""
        return BrokerRules.from_market(self.daily.market)


def load_arena_data(spec: str | None, home: LabHome) -> ArenaData:
    """Load ``--data SPEC`` (the embedded synthetic market when ``None``)."""
    from simulators.data_spec import load_market, parse_data_spec

    parsed = parse_data_spec(spec)
    if parsed.kind == "synthetic":
        from simulators.synthetic import SyntheticSpec, generate_daily

        synthetic = SyntheticSpec.from_options(dict(parsed.options))
        # The minute bars are generated from this very panel, so it is built here, not cached.
        return ArenaData(daily=generate_daily(synthetic), spec=parsed.raw, synthetic=synthetic)
    return ArenaData(daily=load_market(spec, home=home), spec=parsed.raw or str(spec))


# --------------------------------------------------------------------------- back ends
class Accounts(Protocol):
    """Where the three accounts live (this process or Ray actors)."""

    def committed(self, day: date) -> dict[str, bool]:
        """Return, per account, whether ``day`` is committed."""
        ...

    def equity_before(self, day: date) -> dict[str, float]:
        """Return, per account, the equity at the last close before ``day``."""
        ...

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        """Trade and commit each account's day; return the results by account."""
        ...

    def close(self) -> None:
        """Release the accounts."""
        ...


class LocalAccounts:
    """The three accounts as :class:`AccountBook` objects in this process.

    ``fail_after`` (tests only) raises ``RuntimeError`` after that many accounts committed,
    to simulate a crash in the middle of a day.
    """

    def __init__(
        self,
        home: LabHome,
        config: ArenaConfig,
        rules: BrokerRules,
        schedule: Any = None,
        *,
        fail_after: int | None = None,
    ) -> None:
        self.books = {
            name: AccountBook(home.ledger_db, name, config, rules, schedule)
            for name in PERSONA_NAMES
        }
        self.fail_after = fail_after

    def committed(self, day: date) -> dict[str, bool]:
        return {name: book.is_committed(day) for name, book in self.books.items()}

    def equity_before(self, day: date) -> dict[str, float]:
        return {name: book.equity_before(day) for name, book in self.books.items()}

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        out = {}
        for count, name in enumerate(PERSONA_NAMES):
            if self.fail_after is not None and count >= self.fail_after:
                raise RuntimeError(f"injected crash after {count} account(s) committed")
            out[name] = self.books[name].run_day(plans[name], market, force=force)
        return out

    def close(self) -> None:
        for book in self.books.values():
            book.close()


# --------------------------------------------------------------------------- one day
def _read_rows(path: Path, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    conn = sqlite3.connect(str(path), timeout=60.0)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, tuple(params)).fetchall()]
    finally:
        conn.close()


def _summary(
    home: LabHome,
    day: date,
    market: DayMarket,
    config: ArenaConfig,
    already: bool,
    results: Mapping[str, AccountDayResult],
) -> dict[str, Any]:
    path = home.ledger_db
    iso = day.isoformat()
    accounts: dict[str, Any] = {}
    with Ledger(path) as ledger:
        for name in PERSONA_NAMES:
            history = [e for d, e in ledger.equity_history(name) if d <= day]
            digits = 2
            rows = _read_rows(path, "SELECT money_digits FROM accounts WHERE account=?", (name,))
            if rows:
                digits = int(rows[0]["money_digits"])
            scale = 10.0**digits
            curve = [e.equity / scale for e in history]
            result = results.get(name)
            n_fills = len(ledger.fills(name, day))
            accounts[name] = account_metrics(
                curve,
                config.starting_capital,
                0 if result is None else result.wins,
                0 if result is None else result.losses,
                n_fills,
            )
    risk = _read_rows(
        path,
        "SELECT account, at, order_id, rule, reason, value, limit_value FROM risk_events "
        "WHERE day=? ORDER BY account, seq",
        (iso,),
    )
    decision = _read_rows(
        path,
        "SELECT payload FROM decisions WHERE day=? AND account='synthesis'",
        (iso,),
    )
    regime: Any = None
    if decision:
        payload = json.loads(decision[0]["payload"])
        regime = payload.get("perception", {}).get("regime")
    return {
        "date": iso,
        "already_committed": already,
        "accounts": accounts,
        "benchmark": {"return": benchmark_return(market)},
        "regime": regime,
        "risk_events": risk,
    }


def run_arena_day(
    accounts: Accounts,
    data: ArenaData,
    day: date,
    *,
    home: LabHome,
    config: ArenaConfig,
    genomes: Sequence[ArenaGenome] | None = None,
    force: bool = False,
    write_report: bool = True,
) -> dict[str, Any]:
    """Run (or recognise as committed) trading day ``day``; return the ``--json`` object."""
    home.ensure()
    committed = accounts.committed(day)
    already = all(committed.values()) and not force
    market = day_market(data.daily, day, None if already else data.minute_bars(day))
    results: dict[str, AccountDayResult] = {}
    if not already:
        equities = accounts.equity_before(day)
        chosen = list(genomes) if genomes is not None else arena_genomes(home)
        plan = plan_day(data.daily, day, chosen, config, equities)
        results = accounts.run(plan.accounts, market, force=force)
    summary = _summary(home, day, market, config, already, results)
    report: dict[str, str | None] = {"markdown": None, "html": None}
    if write_report:
        report = write_day_outputs(home, day, summary)
    summary["report"] = report
    return summary


# --------------------------------------------------------------------------- outputs
def write_day_outputs(
    home: LabHome, day: date, summary: Mapping[str, Any]
) -> dict[str, str | None]:
    """Write ``runs/<date>/``: ``summary.md``, ``report.html``, ``summary.json`` and Parquet.

    The Parquet files (orders, fills, equity, decisions) are read back from the ledger, so a
    re-run of a committed day rewrites the same files.
    """
    folder = home.runs / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    iso = day.isoformat()
    for table in ("orders", "fills", "equity", "decisions", "positions", "risk_events"):
        rows = _read_rows(home.ledger_db, f"SELECT * FROM {table} WHERE day=?", (iso,))
        frame = pd.DataFrame(rows)
        frame.to_parquet(folder / f"{table}.parquet", index=False)
    lines = [
        f"# Arena day {iso}",
        "",
        f"Regime: {(summary.get('regime') or {}).get('regime', 'unknown')}; "
        f"benchmark return {summary['benchmark']['return']:.4%}",
        "",
        "| account | equity | return | trades | win rate | max drawdown | Sharpe | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in summary["accounts"].items():
        win = figures["win_rate"]
        lines.append(
            f"| {name} | {figures['equity']:,.2f} | {figures['return']:.4%} | "
            f"{figures['trades']} | {'-' if win is None else f'{win:.0%}'} | "
            f"{figures['max_drawdown']:.2%} | {figures['sharpe']:.2f} | {figures['score']:.1f} |"
        )
    lines += ["", f"Risk events: {len(summary['risk_events'])}", ""]
    for event in summary["risk_events"][:50]:
        lines.append(f"- {event['account']} {event['rule']}: {event['reason']}")
    markdown = "\n".join(lines) + "\n"
    md_path = folder / "summary.md"
    html_path = folder / "report.html"
    _atomic_write(md_path, markdown)
    body = "".join(f"<p>{line}</p>" if line else "" for line in lines)
    _atomic_write(html_path, f"<!doctype html><html><body>{body}</body></html>\n")
    _atomic_write(folder / "summary.json", json.dumps(summary, sort_keys=True, default=str))
    return {"markdown": str(md_path), "html": str(html_path)}


def _atomic_write(path: Path, text: str) -> None:
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


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
    """
    days = season_days(data, start, end)
    if not days:
        raise ConfigError(f"arena replay: no trading day of {data.spec} between {start} and {end}")
    ran = skipped = 0
    evolutions: list[dict[str, Any]] = []
    for day in days:
        summary = run_arena_day(
            accounts, data, day, home=home, config=config, write_report=write_report
        )
        if summary["already_committed"]:
            skipped += 1
        else:
            ran += 1
        if on_day is not None:
            on_day(summary)
        if evolve is not None and evolve_weekday is not None and day.weekday() == evolve_weekday:
            evolutions.append(evolve(day))
    last = _read_rows(home.ledger_db, "SELECT MAX(day) AS day FROM days", ())
    return {
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "days": len(days),
        "ran": ran,
        "skipped": skipped,
        "evolutions": evolutions,
        "last_committed": last[0]["day"] if last else None,
    }


def weekly_evolution(
    home: LabHome,
    data: ArenaData,
    *,
    generations: int = 1,
    population: int = 16,
    seed: int = 0,
    window: int | None = None,
    track: bool = False,
) -> Callable[[date], dict[str, Any]]:
    """Return the season's weekly evolution: a small ``EvolutionSession`` as of the day.

    The session is identified by (seed, config, data, as_of) and resumed when it exists, so a
    season interrupted during an evolution continues it rather than starting a second one.
    """

    def evolve(day: date) -> dict[str, Any]:
        from evolution.session import EvolutionSession, load_session_config

        overrides: dict[str, Any] = {
            "evolution": {"population": population, "elite": 2, "immigrants": 2},
            "refine": {"top": 0, "trials": 1},
            "gate_top": 2,
        }
        if window is not None:
            overrides["fitness"] = {"window": window}
        config = load_session_config(overrides=overrides)
        session = EvolutionSession(
            home=home, panel=data.daily, data_spec=data.spec, as_of=day.isoformat(),
            seed=seed, config=config, workers=0, track=track,
        )  # fmt: skip
        try:
            summary = session.run(generations, resume=True)
        finally:
            session.close()
        return {"as_of": day.isoformat(), "session": summary.get("session_id")}

    return evolve


# --------------------------------------------------------------------------- status
def arena_status(home: LabHome) -> dict[str, Any]:
    """Return the last committed day and each account's equity there (``arena status``)."""
    path = home.ledger_db
    accounts: dict[str, Any] = {}
    last_day: str | None = None
    rows = _read_rows(
        path,
        "SELECT e.account, e.day, e.equity, e.cash, a.money_digits, a.initial_cash "
        "FROM equity e JOIN accounts a USING (account) "
        "WHERE e.day = (SELECT MAX(day) FROM equity WHERE account = e.account) "
        "ORDER BY e.account",
        (),
    )
    for row in rows:
        scale = 10.0 ** int(row["money_digits"])
        equity = row["equity"] / scale
        initial = row["initial_cash"] / scale
        accounts[row["account"]] = {
            "day": row["day"],
            "equity": equity,
            "cash": row["cash"] / scale,
            "total_return": equity / initial - 1.0 if initial > 0 else math.nan,
        }
        last_day = row["day"] if last_day is None or row["day"] > last_day else last_day
    return {"ledger": str(path), "last_committed": last_day, "accounts": accounts}
