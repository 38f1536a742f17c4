"""The broker as the day's executor meets it: a gateway that takes, refuses or loses child orders.

Pure Python (no Ray, no MLflow). :func:`arena.intraday.execute_day` sends every child order
through a :class:`BrokerGateway` (in the spirit of nautilus_trader's execution clients: the
executor does not know which broker it talks to). Two gateways exist:

* :class:`SimulatedGateway`: the paper broker of the daily arena; every send is accepted.
* :class:`FaultyGateway`: the stress replay's broker API that rejects sends and times out
  (:class:`BrokerFaults`, seeded; ``docs/execution.md``).

The client's side (idempotency keys, asking the broker by key before a retry, back-off, the
manual-order hand-off) is the executor's and runs the same with every gateway. A gateway is
stateful for one account-day (it remembers the keys it holds): the wiring
(:func:`arena.conditions.wire_day`) makes a fresh one for each :func:`execute_day` call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["BrokerFaults", "BrokerGateway", "FaultyGateway", "Sent", "SimulatedGateway"]

#: What a send of a child order came to: taken, refused, or no answer.
SendOutcome = Literal["ok", "reject", "timeout"]


@dataclass(frozen=True, slots=True)
class Sent:
    """The broker's answer to one send: ``outcome``, and whether it now holds the order.

    ``taken`` is the broker's side of the story: ``True`` for an accepted send, and for a
    time-out the broker nevertheless took (the client cannot tell; it finds out by asking the
    broker by key, :meth:`BrokerGateway.has_order`).
    """

    outcome: SendOutcome
    taken: bool


class BrokerGateway(Protocol):
    """A broker's order API for one account-day (see the module docstring)."""

    @property
    def max_retries(self) -> int:
        """Retries after the first send before the child goes to a person."""
        ...

    def backoff(self, attempt: int) -> int:
        """Return the minutes to wait after failed send number ``attempt`` (0-based)."""
        ...

    def send(self, key: str, attempt: int) -> Sent:
        """Send the child order ``key`` (send number ``attempt``, 0-based)."""
        ...

    def has_order(self, key: str) -> bool:
        """Ask the broker by idempotency key whether it holds the order ``key``."""
        ...


class SimulatedGateway:
    """The daily arena's paper broker: every send is accepted."""

    max_retries = 3

    def __init__(self) -> None:
        self._held: set[str] = set()

    def backoff(self, attempt: int) -> int:
        """Return 1 minute (never used: no send fails)."""
        return 1

    def send(self, key: str, attempt: int) -> Sent:
        """Accept the order."""
        self._held.add(key)
        return Sent(outcome="ok", taken=True)

    def has_order(self, key: str) -> bool:
        """Return whether ``key`` was sent."""
        return key in self._held


@dataclass(frozen=True, slots=True)
class BrokerFaults:
    """Broker API faults on child orders (deterministic for a ``seed``).

    Parameters
    ----------
    reject_rate, timeout_rate:
        Probabilities that a send is rejected or times out (their sum at most 1).
    seed:
        Seed of the draws (a hash of the key, the attempt and the seed; no global RNG).
    max_retries:
        Retries after the first send; then the child becomes a manual order.
    backoff_minutes:
        Wait before retry ``k`` (the last entry repeats).
    timeout_filled_share:
        Probability that the broker did take a timed-out order (the client cannot tell).
    """

    reject_rate: float = 0.0
    timeout_rate: float = 0.0
    seed: int = 0
    max_retries: int = 3
    backoff_minutes: tuple[int, ...] = (1, 2, 4)
    timeout_filled_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("reject_rate", "timeout_rate", "timeout_filled_share"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"BrokerFaults.{name} must be in [0, 1], got {value!r}")
        if self.reject_rate + self.timeout_rate > 1.0 + 1e-12:
            raise ValueError(
                f"BrokerFaults: reject_rate + timeout_rate = "
                f"{self.reject_rate + self.timeout_rate} > 1"
            )
        if isinstance(self.max_retries, bool) or not (
            isinstance(self.max_retries, int) and self.max_retries >= 0
        ):
            raise ValueError(f"BrokerFaults.max_retries must be an int >= 0: {self.max_retries}")
        object.__setattr__(self, "backoff_minutes", tuple(int(m) for m in self.backoff_minutes))
        if not self.backoff_minutes or any(m < 1 for m in self.backoff_minutes):
            raise ValueError(
                f"BrokerFaults.backoff_minutes must be >= 1 minute each: {self.backoff_minutes}"
            )

    def backoff(self, attempt: int) -> int:
        """Return the minutes to wait after failed send number ``attempt`` (0-based)."""
        return self.backoff_minutes[min(attempt, len(self.backoff_minutes) - 1)]


def _draw(key: str, attempt: int, seed: int, salt: str) -> float:
    digest = hashlib.sha256(f"{seed}|{key}|{attempt}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class FaultyGateway:
    """A broker API with the seeded faults of ``faults``.

    Send ``attempt`` of ``key`` draws ``u = sha256(seed|key|attempt|"send")`` in ``[0, 1)``:
    a reject below ``reject_rate``, a time-out below ``reject_rate + timeout_rate``, else
    accepted. A time-out was taken by the broker anyway when a second draw (``"taken"``) is
    below ``timeout_filled_share``.
    """

    def __init__(self, faults: BrokerFaults) -> None:
        self.faults = faults
        self._held: set[str] = set()

    @property
    def max_retries(self) -> int:
        """Return the faults' ``max_retries``."""
        return self.faults.max_retries

    def backoff(self, attempt: int) -> int:
        """Return the faults' back-off after failed send ``attempt``."""
        return self.faults.backoff(attempt)

    def send(self, key: str, attempt: int) -> Sent:
        """Draw the broker's answer to send ``attempt`` of ``key``."""
        faults = self.faults
        draw = _draw(key, attempt, faults.seed, "send")
        if draw < faults.reject_rate:
            return Sent(outcome="reject", taken=False)
        if draw < faults.reject_rate + faults.timeout_rate:
            taken = _draw(key, attempt, faults.seed, "taken") < faults.timeout_filled_share
            if taken:
                self._held.add(key)
            return Sent(outcome="timeout", taken=taken)
        self._held.add(key)
        return Sent(outcome="ok", taken=True)

    def has_order(self, key: str) -> bool:
        """Return whether the broker took ``key`` on some send (accepted or timed out)."""
        return key in self._held
