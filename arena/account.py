"""One paper account: its books restored from the ledger, the day traded, then closed.

:class:`AccountBook` is what the Ray actor (:mod:`arena.actors`) and the local back end
(:class:`arena.day.LocalAccounts`) wrap. Crash-only: the constructor registers the account
(once) and replays the ledger's fills (:meth:`arena.ledger.Ledger.restore_state`); there is
no other start-up path. :meth:`AccountBook.run_day` calls the trade stage
(:func:`arena.trade.trade_day`) and then closes the day: marks at the closes of ``D``,
attributes the day's P&L to the genomes (:func:`arena.ledger.attribute_day`: each name's P&L
goes to the genomes of its target's ``sources``, else to the holders at the previous close)
and writes the day in one ledger transaction (orders, fills and positions with their genome
shares, equity, the decision chain every order points to, the risk events, the
attribution). A committed day is never applied twice; ``force`` replaces the last day, its
attribution with it.

Same genomes, config and data give the same ledger, bit for bit (no clock, no randomness,
apart from the commit time the ledger records).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from arena.book import AccountState, open_account
from arena.conditions import DayAdapters
from arena.intraday import liquidation_id
from arena.ledger import (
    DayAlreadyCommitted,
    DecisionRecord,
    EquitySnapshot,
    Ledger,
    attribute_day,
)
from arena.market import DayMarket
from arena.money import (
    money_from_float,
    money_to_float,
    quantity_to_float,
    units_for_market,
)
from arena.personas import ArenaConfig
from arena.plan import AccountPlan
from arena.rules import BrokerRules
from arena.trade import (
    AccountDayResult,
    trade_day,
)


def _liquidation_decision(plan: AccountPlan, result: AccountDayResult) -> DecisionRecord:
    stops = [e for e in result.risk_events if e.rule == "daily_loss"]
    payload = {
        "account": plan.account,
        "day": plan.day.isoformat(),
        "decision": "liquidate",
        "why": "daily-loss stop: the marked equity fell beyond the max daily loss",
        "plan_decision_id": plan.decision_id,
        "risk_events": [
            {"at": e.at.isoformat(), "reason": e.reason, "value": e.value, "limit": e.limit}
            for e in stops
        ],
        "orders": list(result.liquidation_order_ids),
    }
    return DecisionRecord(decision_id=liquidation_id(plan.decision_id), payload=payload)


class AccountBook:
    """One paper account: its books restored from the ledger, and its day.

    Crash-only: the constructor registers the account (once) and replays the ledger's fills
    (:meth:`arena.ledger.Ledger.restore_state`); there is no other start-up path.

    Parameters
    ----------
    ledger_path:
        The ledger file (``LabHome.ledger_db``).
    account:
        ``aggressive``, ``conservative`` or ``synthesis``.
    config:
        The arena configuration (starting capital, risk limits).
    rules:
        The market's broker rules.
    schedule:
        The execution policy (``rl_exec.registry.load_registered_policy``: an object with
        ``schedule_fraction``); ``None`` or a ``TwapPolicy`` slices by TWAP.
    """

    def __init__(
        self,
        ledger_path: str | Path,
        account: str,
        config: ArenaConfig,
        rules: BrokerRules,
        schedule: Any = None,
    ) -> None:
        self.account = account
        # TWAP is execute_parent's built-in default; passing None skips the observation work.
        self.schedule = None if type(schedule).__name__ == "TwapPolicy" else schedule
        self.config = config
        self.rules = rules
        self.ledger = Ledger(ledger_path)
        units = rules.units if rules.units else units_for_market(rules.market)
        opening = open_account(
            account,
            initial_cash=money_from_float(config.starting_capital, units.money_digits),
            units=units,
            t_plus_one=rules.t_plus_one,
        )
        self.ledger.ensure_account(opening)
        self.state: AccountState = self.ledger.restore_state(account)

    def close(self) -> None:
        """Close the ledger connection."""
        self.ledger.close()

    def last_committed_day(self) -> date | None:
        """Return the last committed day."""
        return self.ledger.last_committed_day(self.account)

    def is_committed(self, day: date) -> bool:
        """Return whether ``day`` is committed for this account."""
        return self.ledger.is_committed(self.account, day)

    def _history_before(self, day: date) -> list[tuple[date, EquitySnapshot]]:
        return [(d, e) for d, e in self.ledger.equity_history(self.account) if d < day]

    def equity_before(self, day: date) -> float:
        """Return the equity at the last close before ``day`` (the initial cash before any)."""
        digits = self.state.units.money_digits
        history = self._history_before(day)
        if history:
            return money_to_float(history[-1][1].equity, digits)
        return money_to_float(self.state.initial_cash, digits)

    def cash_and_positions(self) -> dict[str, Any]:
        """Return the current books as plain values (for status and tests)."""
        units = self.state.units
        return {
            "account": self.account,
            "day": None if self.state.day is None else self.state.day.isoformat(),
            "cash": money_to_float(self.state.cash, units.money_digits),
            "positions": {
                p.symbol: quantity_to_float(p.quantity, units.quantity_digits)
                for p in self.state.positions
            },
            "last_fill_seq": self.state.last_fill_seq,
        }

    def run_day(
        self,
        plan: AccountPlan,
        market: DayMarket,
        *,
        force: bool = False,
        adapters: DayAdapters | None = None,
    ) -> AccountDayResult:
        """Trade ``plan`` on ``market`` and commit the day (see the module docstring).

        A committed day is left alone (``already_committed``) unless ``force``, which
        recomputes it from the books before it and replaces it in one transaction.
        ``adapters`` play the day's halts, feed and broker faults
        (:func:`arena.conditions.wire_day`; ``None``: the daily arena's calm day).
        """
        day = plan.day
        if self.is_committed(day) and not force:
            return self._committed_result(day)
        start = self.ledger.restore_state(self.account, before=day) if force else self.state
        result, state = trade_day(
            start, plan, market, account=self.account, config=self.config, rules=self.rules,
            schedule=self.schedule, history=self._history_before(day),
            previous_equity=self.equity_before(day), adapters=adapters,
        )  # fmt: skip
        equity = result.equity_snapshot
        assert equity is not None
        # Who asked for each name: today's targets, else the holders at the previous close.
        attribution = attribute_day(
            previous=self.ledger.close_before(self.account, day),
            orders=result.orders,
            fills=result.fills,
            positions=result.positions,
            equity=equity,
            targets={t.symbol: t.shares for t in plan.targets},
        )
        result = replace(result, attribution=attribution)
        decisions = [DecisionRecord(decision_id=plan.decision_id, payload=plan.decision)]
        if result.liquidation_order_ids:
            decisions.append(_liquidation_decision(plan, result))
        write = self.ledger.replace_day if force else self.ledger.commit_day
        try:
            write(
                self.account,
                day,
                orders=result.orders,
                fills=result.fills,
                positions=result.positions,
                equity=equity,
                decisions=tuple(decisions),
                risk_events=result.risk_events,
                attribution=attribution,
            )
        except DayAlreadyCommitted:
            # Another process committed it meanwhile: the ledger's day wins.
            self.state = self.ledger.restore_state(self.account)
            return self._committed_result(day)
        self.state = self.ledger.restore_state(self.account)
        del state
        return result

    def _committed_result(self, day: date) -> AccountDayResult:
        equity = self.equity_before(day + timedelta(days=1))
        fills = tuple(self.ledger.fills(self.account, day))
        return AccountDayResult(
            account=self.account, day=day, already_committed=True, equity=equity,
            previous_equity=self.equity_before(day), trades=len(fills), wins=0, losses=0,
            fills=fills,
        )  # fmt: skip
