"""A person's acts on one genome of the gene pool: approve, reject, pause, resume.

One function, :func:`act`, applies them, under the pool's store lock; ``alphaloop pool
approve|reject|pause|resume`` and the supervision page (:mod:`alphaloop.page`) both call it,
so a genome moved from the page is moved exactly as from the command line (the same checks,
the same stored transition). Bad input (no such genome, a genome in a status the act does not
apply to) raises :class:`alphaloop.errors.GenomeError` with one line naming the genome and why;
nothing is written then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alphaloop.errors import ConfigError, GenomeError
from alphaloop.home import LabHome

if TYPE_CHECKING:
    from evolution.store import TransitionRecord

__all__ = ["act", "approve", "flag", "reject"]

MakeMove = Callable[[str, str, bool], "TransitionRecord"]


def act(
    home: LabHome, genome_id: str, verb: str, allowed: tuple[str, ...], make: MakeMove
) -> dict[str, Any]:
    """Apply ``make``'s move to one genome (exact id or unique prefix) of ``home``'s pool.

    ``make(genome_id, status, paused)`` returns the transition to store; the genome must be
    in one of ``allowed``. Returns what changed (``genome_id``, ``act``, ``from_status``,
    ``status``, ``paused``, ``actor``, ``reason``).
    """
    from alphaloop.locks import store_lock
    from evolution.store import GenePoolStore, TransitionError

    if not genome_id.strip():
        # An empty prefix would match every genome, and act on a pool's only one.
        raise GenomeError(f"pool {verb}: needs a genome id or a prefix of one, got {genome_id!r}")
    if not home.gene_pool_db.is_file():
        raise ConfigError(f"no gene pool at {home.gene_pool_db}: run 'alphaloop evolve' first")
    # Under the pool's write lock: an evolution or the loop's close of a day reads a genome's
    # status and moves it later; a user's act in between would be overwritten by a stale move.
    lock = store_lock(home, "gene_pool", purpose=f"pool {verb} {genome_id}")
    with GenePoolStore(home.gene_pool_db) as store, lock:
        record = store.genome(genome_id)
        if record is None:
            raise GenomeError(f"pool {verb} {genome_id}: no single genome with that id or prefix")
        gid, status, paused = record["genome_id"], record["status"], record["paused"]
        if status not in allowed:
            raise GenomeError(
                f"pool {verb} {gid}: the genome is {status}; {verb} applies to "
                f"{' or '.join(allowed)} genomes"
                + (" (it never passed the promotion gate)" if verb == "approve" else "")
            )
        move = make(gid, status, paused)
        try:
            store.transition(move)
        except TransitionError as exc:
            raise GenomeError(f"pool {verb} {gid}: {exc}") from None
        after = store.status_of(gid)
    assert after is not None
    return {
        "genome_id": gid,
        "act": verb,
        "from_status": status,
        "status": after[0],
        "paused": after[1],
        "actor": move.actor,
        "reason": move.reason,
    }


def approve(
    home: LabHome, genome_id: str, *, actor: str, reason: str = "approved"
) -> dict[str, Any]:
    """Approve a gate candidate: it starts probation on paper."""
    from evolution.store import TransitionRecord

    return act(
        home,
        genome_id,
        "approve",
        ("candidate",),
        lambda gid, status, _paused: TransitionRecord(
            genome_id=gid, from_status=status, to_status="probation", actor=actor, reason=reason
        ),
    )


def reject(home: LabHome, genome_id: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Reject a gate candidate (``reason`` required): it is retired and never trades."""
    from evolution.store import TransitionRecord

    if not reason.strip():
        raise ConfigError("reject: needs a reason")
    return act(
        home,
        genome_id,
        "reject",
        ("candidate",),
        lambda gid, status, _paused: TransitionRecord(
            genome_id=gid,
            from_status=status,
            to_status="retired",
            actor=actor,
            reason=f"rejected: {reason}",
        ),
    )


def flag(home: LabHome, genome_id: str, kind: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Pause or resume (``kind``) a living genome: the flag, stored as a transition."""
    from evolution.store import LIVING, TransitionRecord

    return act(
        home,
        genome_id,
        kind,
        LIVING,
        lambda gid, status, _paused: TransitionRecord(
            genome_id=gid,
            from_status=status,
            to_status=status,
            kind=kind,
            actor=actor,
            reason=reason,
        ),
    )
