"""The accounts of an arena command, wired once: in-process books or Ray actors.

The one wiring of ``arena run``, ``arena replay`` and ``alphaloop daily`` (here, not in the
arena's core modules, which never import Ray).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alphaloop.home import LabHome
from arena.day import LocalAccounts
from arena.market import ArenaData
from arena.personas import ArenaConfig


@contextmanager
def open_accounts(
    local: bool, home: LabHome, config: ArenaConfig, data: ArenaData
) -> Iterator[Any]:
    """Wire the accounts once: in-process books (``local``) or Ray actors; close them after.

    The registered execution policy is loaded first, so that a refused one is the command's
    error line before any Ray starts (the actors load it again themselves). A private Ray
    started here (no cluster named) is shut down on the way out.
    """
    from rl_exec.registry import load_registered_policy

    policy = load_registered_policy(home)
    started = False
    if local:
        accounts: Any = LocalAccounts(home, config, data.rules(), policy)
    else:
        from arena.actors import RayAccounts, ensure_ray

        started = ensure_ray()
        accounts = RayAccounts(home, config, data.daily.market)
    try:
        yield accounts
    finally:
        accounts.close()
        if started:
            import ray

            ray.shutdown()
