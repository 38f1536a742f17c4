"""The midday review of a market with a lunch break: the three accounts' morning.

For a market whose sessions break for lunch (A-shares: 09:30-11:30 and 13:00-15:00 Asia/Shanghai,
:func:`simulators.calendars.market_sessions`' ``break_start``) and a day that executed on its
own intraday bars, :func:`write_midday_review` writes ``runs/<D>/midday.json`` and
``midday.md`` after the day's trading. Per account (:func:`midday_review`), from the ledger
alone:

* the books at the lunch break: the previous close's cash and positions plus the day's fills
  stamped at or before the break (cash net of their fees and taxes);
* each name marked at the close of its last bar at or before the break (its previous close
  when it had none);
* ``morning_return``: that equity over the previous close's, minus one; ``against_benchmark``
  its difference to the benchmark's morning (the equal-weight mean of the names' returns from
  the previous close to the break).

A market without a lunch break, or a day on daily bars only, has no midday review.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from alphaloop.files import atomic_write_text
from alphaloop.home import LabHome
from arena.ledger import Ledger
from arena.personas import PERSONA_NAMES
from simulators.calendars import market_sessions

__all__ = ["lunch_break", "midday_review", "write_midday_review"]


def lunch_break(market: str, day: date) -> pd.Timestamp | None:
    """Return the start of ``day``'s lunch break in UTC (``None``: the market has none)."""
    sessions = market_sessions(market, day, day, calendar="weekdays")
    if sessions.empty:
        return None
    start = sessions["break_start"].iloc[0]
    return None if pd.isna(start) else pd.Timestamp(start).tz_convert("UTC")


def _price_at(bars: Any, cutoff: pd.Timestamp, fallback: float) -> float:
    price = fallback
    for bar in bars:
        if pd.Timestamp(bar.at) <= cutoff:
            price = float(bar.close)
    return price


def midday_review(ledger: Ledger, day: date, market: Any, cutoff: pd.Timestamp) -> dict[str, Any]:
    """Return the morning of ``day`` up to ``cutoff`` (module docstring) as plain values.

    ``market`` is the day's :class:`arena.market.DayMarket` (intraday bars, previous closes).
    """
    prices = {
        symbol: _price_at(bars, cutoff, float(market.prev_close.get(symbol, 0.0)))
        for symbol, bars in market.bars.items()
    }
    moves = [
        prices[s] / float(market.prev_close[s]) - 1.0
        for s in sorted(prices)
        if float(market.prev_close.get(s, 0.0)) > 0
    ]
    bench = sum(moves) / len(moves) if moves else 0.0
    accounts: dict[str, Any] = {}
    for name in PERSONA_NAMES:
        record = ledger.account_record(name)
        money = 10.0**record.units.money_digits
        qunit = 10.0**record.units.quantity_digits
        opening = ledger.close_before(name, day)
        cash = float(opening.cash)
        held = {p.symbol: float(p.quantity) for p in opening.positions}
        morning = [f for f in ledger.fills(name, day) if pd.Timestamp(f.at) <= cutoff]
        for fill in morning:
            sign = 1.0 if fill.side == "buy" else -1.0
            held[fill.symbol] = held.get(fill.symbol, 0.0) + sign * fill.quantity
            cash += -sign * fill.notional - fill.commission - fill.taxes
        value = sum(
            qty / qunit * prices.get(s, float(market.prev_close.get(s, 0.0)))
            for s, qty in held.items()
        )
        equity = cash / money + value
        start = opening.equity / money
        ret = equity / start - 1.0 if start > 0 else 0.0
        accounts[name] = {
            "equity_at_break": equity,
            "previous_close_equity": start,
            "morning_return": ret,
            "against_benchmark": ret - bench,
            "morning_fills": len(morning),
        }
    return {
        "date": day.isoformat(),
        "at": cutoff.isoformat(),
        "benchmark_morning_return": bench,
        "accounts": accounts,
    }


def _render(doc: Mapping[str, Any]) -> str:
    lines = [
        f"# AlphaLoop arena: midday review {doc['date']}",
        "",
        f"At the lunch break ({doc['at']}); benchmark morning "
        f"{doc['benchmark_morning_return']:+.2%}.",
        "",
        "| account | morning | against the benchmark | fills | equity at the break |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in doc["accounts"].items():
        lines.append(
            f"| {name} | {row['morning_return']:+.2%} | {row['against_benchmark']:+.2%} | "
            f"{row['morning_fills']} | {row['equity_at_break']:,.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_midday_review(home: LabHome, day: date, market: Any, market_name: str) -> Path | None:
    """Write ``runs/<D>/midday.json`` and ``midday.md``; return the JSON's path, or ``None``
    (and write nothing) for a market without a lunch break or a day on daily bars."""
    from reports.daily import run_dir_for

    cutoff = lunch_break(market_name, day)
    if cutoff is None or not market.intraday:
        return None
    with Ledger(home.ledger_db) as ledger:
        doc = midday_review(ledger, day, market, cutoff)
    folder = run_dir_for(home, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "midday.json"
    atomic_write_text(path, json.dumps(doc, sort_keys=True, indent=1))
    atomic_write_text(folder / "midday.md", _render(doc))
    return path
