"""The Ray edge of the arena: one actor per paper account.

Each :class:`AccountActor` wraps an :class:`arena.account.AccountBook`. Crash-only: its
constructor opens the ledger and replays the committed fills, and that is also what Ray runs
when it restarts a dead actor (``max_restarts``), so a restarted account is exactly its last
committed day. ``run_day`` is idempotent (a committed day is reported, never applied twice),
which is why its retry after a restart (``max_task_retries``) is safe.

The actors reserve no CPU (``num_cpus=0``): they spend most of a day waiting for the driver,
and three of them must fit a two-core machine beside the evaluator pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import ray

from alphaloop.home import LabHome
from arena.account import AccountBook
from arena.market import DayMarket
from arena.personas import PERSONA_NAMES, ArenaConfig
from arena.plan import AccountPlan
from arena.rules import BrokerRules
from arena.trade import AccountDayResult

__all__ = ["MAX_RESTARTS", "AccountActor", "RayAccounts", "ensure_ray"]

MAX_RESTARTS = 3
MAX_TASK_RETRIES = 1


def ensure_ray(
    num_cpus: int | None = None, *, join_running: bool = True, address: str | None = None
) -> bool:
    """Join the cluster the user named, else start a private local Ray.

    The cluster is named by ``address`` or ``RAY_ADDRESS`` (``ray job submit`` sets it), never
    found by discovery (:func:`alphaloop.ray_session.connect_ray` has the rules).
    ``join_running=False`` starts a private local Ray even when a cluster is named (benchmarks).

    Returns
    -------
    bool
        True when this call started a local Ray (the caller shuts it down).

    Raises
    ------
    RayClusterUnavailable
        The named cluster cannot be reached.
    """
    from alphaloop.ray_session import connect_ray

    return connect_ray(address=address, num_cpus=num_cpus, private=not join_running).started


@ray.remote(num_cpus=0, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)
class AccountActor:
    """One paper account in its own process (see the module docstring).

    Parameters
    ----------
    home_root:
        The lab home (the ledger and the registered execution policy live there).
    account:
        The account's name.
    config:
        The arena configuration.
    market:
        The market name whose broker rules apply.
    """

    def __init__(self, home_root: str, account: str, config: ArenaConfig, market: str) -> None:
        from rl_exec.registry import load_registered_policy

        home = LabHome(Path(home_root))
        rules = BrokerRules.from_market(market)
        self.book = AccountBook(
            home.ledger_db, account, config, rules, load_registered_policy(home)
        )

    def committed(self, day: date) -> bool:
        """Return whether ``day`` is committed."""
        return self.book.is_committed(day)

    def equity_before(self, day: date) -> float:
        """Return the equity at the last close before ``day``."""
        return self.book.equity_before(day)

    def books(self) -> dict[str, Any]:
        """Return the current cash and positions (plain values)."""
        return self.book.cash_and_positions()

    def run_day(
        self, plan: AccountPlan, market: DayMarket, force: bool, adapters: Any = None
    ) -> AccountDayResult:
        """Trade and commit the day (idempotent: a committed day is only reported)."""
        return self.book.run_day(plan, market, force=force, adapters=adapters)

    def pid(self) -> int:
        """Return the worker's process id (tests kill it)."""
        import os

        return os.getpid()


class RayAccounts:
    """The three accounts as :class:`AccountActor` handles (the ``Accounts`` back end)."""

    def __init__(self, home: LabHome, config: ArenaConfig, market: str) -> None:
        root = str(home.ensure().root)
        self.actors = {
            name: AccountActor.remote(root, name, config, market)  # type: ignore[attr-defined]
            for name in PERSONA_NAMES
        }

    def committed(self, day: date) -> dict[str, bool]:
        refs = {name: actor.committed.remote(day) for name, actor in self.actors.items()}
        return {name: bool(ray.get(ref)) for name, ref in refs.items()}

    def equity_before(self, day: date) -> dict[str, float]:
        refs = {name: actor.equity_before.remote(day) for name, actor in self.actors.items()}
        return {name: float(ray.get(ref)) for name, ref in refs.items()}

    def run(
        self, plans: Mapping[str, AccountPlan], market: DayMarket, *, force: bool
    ) -> dict[str, AccountDayResult]:
        # The day's bars are shared by the three actors: put them in the object store once.
        market_ref = ray.put(market)
        refs = {
            name: actor.run_day.remote(plans[name], market_ref, force)
            for name, actor in self.actors.items()
        }
        # Results are keyed by account, never by completion order.
        return {name: ray.get(ref) for name, ref in refs.items()}

    def close(self) -> None:
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        self.actors = {}
