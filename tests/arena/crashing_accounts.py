"""A test's own back end: the local accounts with a crash injected in the middle of a day.

:class:`CrashingAccounts` runs the accounts in :data:`arena.personas.PERSONA_NAMES` order as
:class:`arena.day.LocalAccounts` does and raises ``RuntimeError`` once ``fail_after`` of them
have committed, as a process killed between two commits would leave the ledger. The crash
lives here, not in the production back end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arena.day import LocalAccounts
from arena.market import DayMarket
from arena.personas import PERSONA_NAMES
from arena.plan import AccountPlan
from arena.trade import AccountDayResult


class CrashingAccounts(LocalAccounts):
    """:class:`arena.day.LocalAccounts` that crash after ``fail_after`` accounts committed."""

    def __init__(self, *args: Any, fail_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_after = fail_after

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        out = {}
        for count, name in enumerate(PERSONA_NAMES):
            if count >= self.fail_after:
                raise RuntimeError(f"injected crash after {count} account(s) committed")
            out[name] = self.books[name].run_day(plans[name], market, force=force)
        return out
