"""The risk governor: immutable pre-trade limits, a circuit breaker and a tighten hook.

Pure Python (no Ray, no ledger): the daily cycle owns one :class:`RiskGovernor` per paper
account, calls :meth:`RiskGovernor.start_day` before the session, :meth:`RiskGovernor.on_bar`
on every minute bar and :meth:`RiskGovernor.check` before every order, and stores the
:class:`RiskEvent` values it returns. The rules, with their exact trip conditions, are written
down in ``docs/risk_governor.md``; in short:

* Size limits (an order that would breach them is cut down to the largest whole lot that fits,
  or vetoed when not one lot fits): per-trade risk, one name's weight, gross leverage, cash.
* State limits (risk-increasing orders are vetoed, reducing orders pass): daily loss, drawdown.
* Circuit breaker (every new order is vetoed for the rest of the day): the equal-weight market
  down more than ``crash_threshold`` from the previous close, or a held position down more
  than ``position_drop_threshold``. The freeze is effective from the first ``on_bar`` or
  ``check`` call at or after the trigger bar; the governor records the trigger time, the freeze
  time and flags a freeze later than ``freeze_latency_minutes``.
* A veto is final: an order id once vetoed is vetoed again whatever the conditions later.
* Daily-loss stop (intraday, :meth:`RiskGovernor.on_equity`): the marked equity more than
  ``max_daily_loss`` below the day's start equity trips a ``daily_loss`` trigger and freeze;
  the intraday executor then blocks buys and liquidates.
* Kill switch (:meth:`RiskGovernor.pause`, the lab's pause flag of :mod:`arena.kill_switch`):
  a paused account's every order is vetoed (rule ``kill_switch``), or with ``flatten`` every
  order but one that only closes a position; the other rules stay in force alongside.

A figure equal to its limit is allowed; the limit trips only strictly beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd
from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig
from arena.market import MarketSnapshot, as_timestamp
from simulators.lots import round_to_lot_nb

__all__ = [
    "AccountSnapshot",
    "FreezeState",
    "OrderRequest",
    "RiskDecision",
    "RiskEvent",
    "RiskGovernor",
    "RiskLimits",
]

Side = Literal["buy", "sell"]
EventKind = Literal[
    "veto", "clip", "trigger", "freeze", "late_freeze", "tighten", "pause", "flatten"
]
RULES: tuple[str, ...] = (
    "per_trade_risk",
    "max_position_weight",
    "gross_leverage",
    "min_cash",
    "daily_loss",
    "max_drawdown",
    "market_crash",
    "position_drop",
    "frozen",
    "final_veto",
    "high_volatility",
    "kill_switch",
)
EVENT_KINDS: tuple[str, ...] = (
    "veto", "clip", "trigger", "freeze", "late_freeze", "tighten", "pause", "flatten",
)  # fmt: skip


# --------------------------------------------------------------------------- limits
class RiskLimits(FrozenConfig):
    """The account's risk limits; frozen, so they cannot change during a run.

    Fractions are of the account's equity (marked at the prices of the check) unless said.
    """

    max_trade_risk: float = Field(default=0.05, gt=0.0, le=1.0)
    """Most equity one order may put at risk: ``qty * price * stop distance``."""
    assumed_stop_fraction: float = Field(default=0.10, gt=0.0, le=1.0)
    """Stop distance (fraction of the price) of an order that carries no stop price."""
    max_position_weight: float = Field(default=0.30, gt=0.0, le=1.0)
    """Most equity in one name, long or short (absolute market value / equity)."""
    max_gross_leverage: float = Field(default=1.5, gt=0.0, le=10.0)
    """Most gross exposure: sum of absolute market values / equity."""
    min_cash_fraction: float = Field(default=0.10, ge=0.0, lt=1.0)
    """Least cash left after a buy, as a fraction of equity."""
    max_daily_loss: float = Field(default=0.03, gt=0.0, lt=1.0)
    """Loss since the day's start beyond which risk-increasing orders are vetoed."""
    max_drawdown: float = Field(default=0.15, gt=0.0, lt=1.0)
    """Drawdown from the equity peak beyond which risk-increasing orders are vetoed."""
    crash_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Circuit breaker: the equal-weight market down more than this since the previous close."""
    position_drop_threshold: float = Field(default=0.10, gt=0.0, lt=1.0)
    """Circuit breaker: a held name down more than this since the previous close."""
    freeze_latency_minutes: int = Field(default=3, ge=0, le=60)
    """Most simulated minutes between a trigger bar and the freeze taking effect."""
    high_vol_tighten_factor: float = Field(default=0.5, gt=0.0, le=1.0)
    """Factor the size limits are scaled by on a high-volatility day (see ``tighten``)."""

    @model_validator(mode="after")
    def _check_consistency(self) -> RiskLimits:
        if self.max_position_weight > self.max_gross_leverage:
            raise ValueError(
                f"max_position_weight ({self.max_position_weight}) must not exceed "
                f"max_gross_leverage ({self.max_gross_leverage})"
            )
        if self.max_daily_loss > self.max_drawdown:
            raise ValueError(
                f"max_daily_loss ({self.max_daily_loss}) must not exceed max_drawdown "
                f"({self.max_drawdown}): one day's loss is a drawdown"
            )
        if self.max_trade_risk > self.max_position_weight:
            raise ValueError(
                f"max_trade_risk ({self.max_trade_risk}) must not exceed max_position_weight "
                f"({self.max_position_weight})"
            )
        return self

    def tightened(self, factor: float) -> RiskLimits:
        """Return limits with the exposure scaled by ``factor`` in ``(0, 1]``.

        Per-trade risk, name weight, gross leverage and daily loss are multiplied by
        ``factor``; the invested share ``1 - min_cash_fraction`` is multiplied by it too (so
        the cash floor rises). Drawdown and the circuit-breaker thresholds are unchanged: they
        measure the market, not the account's appetite.
        """
        if not (isinstance(factor, int | float) and 0.0 < factor <= 1.0):
            raise ValueError(f"tighten factor must be in (0, 1], got {factor!r}")
        return self.model_copy(
            update={
                "max_trade_risk": self.max_trade_risk * factor,
                "max_position_weight": self.max_position_weight * factor,
                "max_gross_leverage": self.max_gross_leverage * factor,
                "min_cash_fraction": 1.0 - (1.0 - self.min_cash_fraction) * factor,
                "max_daily_loss": self.max_daily_loss * factor,
            }
        )


# --------------------------------------------------------------------------- values


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A new order an account wants to send (before the governor has seen it).

    Parameters
    ----------
    order_id:
        Unique id of the order (a veto is final per id).
    account:
        The account that sends it.
    symbol, side, quantity:
        What, which way and how much (``quantity > 0``, in units of the asset).
    reference_price:
        Price used to value the order; ``None`` takes ``prices[symbol]`` of the check.
    stop_price:
        Protective stop of the order, if any; its distance from the price is the order's risk.
    lot_size:
        Smallest tradable step; a cut-down quantity is rounded down to whole lots.
    """

    order_id: str
    account: str
    symbol: str
    side: Side
    quantity: float
    reference_price: float | None = None
    stop_price: float | None = None
    lot_size: float = 1.0

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"order {self.order_id}: side must be buy or sell, got {self.side!r}")
        if _finite(self.quantity, f"order {self.order_id}: quantity") <= 0:
            raise ValueError(f"order {self.order_id}: quantity must be > 0, got {self.quantity}")
        if _finite(self.lot_size, f"order {self.order_id}: lot_size") <= 0:
            raise ValueError(f"order {self.order_id}: lot_size must be > 0, got {self.lot_size}")
        for name in ("reference_price", "stop_price"):
            value = getattr(self, name)
            if value is not None and _finite(value, f"order {self.order_id}: {name}") <= 0:
                raise ValueError(f"order {self.order_id}: {name} must be > 0, got {value}")

    @property
    def sign(self) -> int:
        """Return +1 for a buy, -1 for a sell."""
        return 1 if self.side == "buy" else -1


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSnapshot:
    """What the governor needs to know of an account at the time of a check.

    Parameters
    ----------
    account:
        Account name.
    cash:
        Cash in the quote currency (float research units; the ledger converts).
    positions:
        Signed quantity per symbol (negative is short).
    day_start_equity:
        Equity at the start of the day (previous close), for the daily-loss limit.
    peak_equity:
        Highest equity the account has had, for the drawdown limit.
    """

    account: str
    cash: float
    positions: Mapping[str, float] = field(default_factory=dict)
    day_start_equity: float
    peak_equity: float

    def __post_init__(self) -> None:
        _finite(self.cash, f"account {self.account}: cash")
        for name in ("day_start_equity", "peak_equity"):
            if _finite(getattr(self, name), f"account {self.account}: {name}") <= 0:
                raise ValueError(f"account {self.account}: {name} must be > 0")
        clean = {str(k): _finite(v, f"position {k}") for k, v in dict(self.positions).items()}
        object.__setattr__(self, "positions", MappingProxyType(clean))

    def equity(self, prices: Mapping[str, float]) -> float:
        """Return cash plus the market value of every position at ``prices``."""
        return self.cash + sum(qty * _price(prices, s) for s, qty in self.positions.items())

    def gross_exposure(self, prices: Mapping[str, float]) -> float:
        """Return the sum of the absolute market values of the positions."""
        return sum(abs(qty) * _price(prices, s) for s, qty in self.positions.items())


def _price(prices: Mapping[str, float], symbol: str) -> float:
    try:
        value = prices[symbol]
    except KeyError:
        raise KeyError(
            f"no price for {symbol!r} in the prices given to the risk governor"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"price of {symbol!r} must be finite and > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskEvent:
    """One thing the governor did, with its reason and the figures behind it.

    ``value`` is the measured figure and ``limit`` the limit it was compared with, both in
    the unit named by ``rule`` (fractions of equity, of the price, or minutes for
    ``late_freeze``).
    """

    kind: EventKind
    rule: str
    time: pd.Timestamp
    account: str
    message: str
    value: float
    limit: float
    symbol: str | None = None
    order_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"RiskEvent.kind must be one of {EVENT_KINDS}, got {self.kind!r}")
        if self.rule not in RULES:
            raise ValueError(f"RiskEvent.rule must be one of {RULES}, got {self.rule!r}")
        object.__setattr__(self, "time", as_timestamp(self.time, "RiskEvent.time"))
        _finite(self.value, "RiskEvent.value")
        _finite(self.limit, "RiskEvent.limit")
        if not self.message:
            raise ValueError("RiskEvent.message must say why")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (time as ISO 8601 with its offset)."""
        return {
            "kind": self.kind,
            "rule": self.rule,
            "time": self.time.isoformat(),
            "account": self.account,
            "message": self.message,
            "value": self.value,
            "limit": self.limit,
            "symbol": self.symbol,
            "order_id": self.order_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskEvent:
        """Rebuild an event from :meth:`to_dict` output."""
        return cls(**{**dict(data), "time": pd.Timestamp(data["time"])})


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskDecision:
    """The governor's answer to one order.

    ``approved`` is False for a veto (final). ``adjusted_qty`` is the quantity allowed when
    it is smaller than the one requested, else ``None``. ``reasons`` are the messages of
    ``events`` (empty when the order passed untouched).
    """

    order_id: str
    approved: bool
    requested_qty: float
    adjusted_qty: float | None
    reasons: tuple[str, ...]
    events: tuple[RiskEvent, ...]

    def __post_init__(self) -> None:
        if self.approved and self.adjusted_qty is not None:
            if not 0 < self.adjusted_qty < self.requested_qty:
                raise ValueError("adjusted_qty must be in (0, requested_qty) for an approval")
        if not self.approved and (self.adjusted_qty is not None or not self.reasons):
            raise ValueError("a veto has no adjusted quantity and at least one reason")

    @property
    def quantity(self) -> float:
        """Return the quantity that may be sent (0 for a veto)."""
        if not self.approved:
            return 0.0
        return self.requested_qty if self.adjusted_qty is None else self.adjusted_qty


@dataclass(frozen=True, slots=True, kw_only=True)
class FreezeState:
    """Why and when the circuit breaker froze new orders."""

    rule: str
    symbol: str | None
    value: float
    threshold: float
    trigger_time: pd.Timestamp
    freeze_time: pd.Timestamp

    @property
    def latency_minutes(self) -> float:
        """Return the simulated minutes from the trigger bar to the freeze."""
        return (self.freeze_time - self.trigger_time).total_seconds() / 60.0


# --------------------------------------------------------------------------- the governor
def _freeze_message(message: str, bars_left: int | None) -> str:
    """The freeze message, saying so when the trigger bar was the day's last one.

    At the day's last bar (with daily-only data, its single bar) every order of the day has
    already been executed: nothing is frozen or sold before the next day's first bar.
    """
    if bars_left is None or bars_left > 0:
        return message
    return (
        f"{message}; it tripped at the day's last bar, after every order of the day had been "
        "executed: nothing left to freeze or sell today (held positions are carried into the "
        "next session)"
    )


class RiskGovernor:
    """Pre-trade risk checks and the circuit breaker of one paper account.

    Parameters
    ----------
    limits:
        The run's limits. The governor keeps its own copy; :attr:`limits` has no setter and
        the object is frozen, so the limits cannot change during a run. Only :meth:`tighten`
        may lower the *active* limits for the day, and it records an event when it does.
    account:
        Name of the account (written on every event).
    """

    __slots__ = (
        "_account",
        "_active",
        "_events",
        "_factor",
        "_freeze",
        "_limits",
        "_loss_stop",
        "_paused",
        "_reference",
        "_start_equity",
        "_vetoed",
    )

    def __init__(self, limits: RiskLimits, account: str) -> None:
        if not isinstance(limits, RiskLimits):
            raise TypeError(f"limits must be RiskLimits, got {type(limits).__name__}")
        # A deep copy: nothing the caller does to its object can reach the governor's.
        self._limits: RiskLimits = limits.model_copy(deep=True)
        self._account = account
        self._active: RiskLimits = self._limits
        self._factor = 1.0
        self._events: list[RiskEvent] = []
        self._vetoed: set[str] = set()
        self._freeze: FreezeState | None = None
        self._loss_stop: FreezeState | None = None
        self._start_equity: float | None = None
        self._reference: dict[str, float] = {}
        self._paused: tuple[str, bool] | None = None

    # ------------------------------------------------------------------ read-only views
    @property
    def limits(self) -> RiskLimits:
        """Return the run's limits (immutable)."""
        return self._limits

    @property
    def active_limits(self) -> RiskLimits:
        """Return the limits in force now (the run's limits, or tightened ones for the day)."""
        return self._active

    @property
    def account(self) -> str:
        """Return the account's name."""
        return self._account

    @property
    def events(self) -> tuple[RiskEvent, ...]:
        """Return every event so far, oldest first."""
        return tuple(self._events)

    @property
    def freeze(self) -> FreezeState | None:
        """Return the circuit breaker's freeze of the day, or ``None``."""
        return self._freeze

    @property
    def frozen(self) -> bool:
        """Return whether new orders are frozen."""
        return self._freeze is not None

    @property
    def start_equity(self) -> float | None:
        """Return the day's start equity given to :meth:`start_day` (``None``: not given)."""
        return self._start_equity

    @property
    def loss_stop(self) -> FreezeState | None:
        """Return the daily-loss stop of the day (rule ``daily_loss``), or ``None``."""
        return self._loss_stop

    @property
    def paused(self) -> bool:
        """Return whether the kill switch paused the account (:meth:`pause`)."""
        return self._paused is not None

    # ------------------------------------------------------------------ the day
    def start_day(
        self, reference_prices: Mapping[str, float], *, start_equity: float | None = None
    ) -> None:
        """Begin a session: clear the freezes and any tightening, set the previous closes.

        ``reference_prices`` are the previous closes the intraday drops are measured from;
        ``start_equity`` is the account's equity at the previous close, the reference of the
        daily-loss stop (:meth:`on_equity`). Vetoed order ids are kept: a veto is final
        across days.
        """
        self._reference = {str(s): _price(reference_prices, s) for s in reference_prices}
        if start_equity is not None and _finite(start_equity, "start_equity") <= 0:
            raise ValueError(f"start_equity must be > 0, got {start_equity!r}")
        self._start_equity = None if start_equity is None else float(start_equity)
        self._freeze = None
        self._loss_stop = None
        self._active = self._limits
        self._factor = 1.0

    def tighten(self, factor: float, now: datetime | str, reason: str) -> RiskLimits:
        """Scale the active size limits down by ``factor`` for the rest of the day.

        The run's :attr:`limits` object is untouched; factors do not compound (the strictest
        factor of the day applies to the run's limits). Records a ``tighten`` event when the
        active limits change, and returns the active limits.
        """
        stamp = as_timestamp(now, "now")
        if isinstance(factor, bool) or not (isinstance(factor, int | float) and 0 < factor <= 1):
            raise ValueError(f"tighten factor must be in (0, 1], got {factor!r}")
        if factor >= self._factor:
            return self._active  # already as tight or tighter: nothing changes, nothing to record
        strictest = float(factor)
        self._active = self._limits.tightened(strictest)
        self._factor = strictest
        self._events.append(
            RiskEvent(
                kind="tighten",
                rule="high_volatility",
                time=stamp,
                account=self._account,
                message=f"limits tightened by a factor {strictest:g}: {reason}",
                value=strictest,
                limit=1.0,
            )
        )
        return self._active

    def tighten_for_regime(self, regime: str, now: datetime | str) -> RiskLimits:
        """Tighten by ``high_vol_tighten_factor`` when ``regime`` is ``high_vol``."""
        if regime == "high_vol":
            return self.tighten(self._limits.high_vol_tighten_factor, now, "high-volatility regime")
        return self._active

    # ------------------------------------------------------------------ kill switch
    def pause(
        self,
        now: datetime | str,
        *,
        reason: str,
        flatten: bool,
        exposure: float,
        symbol: str | None = None,
    ) -> RiskEvent:
        """Pause the account for the rest of the session (the lab's kill switch).

        From now on :meth:`check` vetoes every order (rule ``kill_switch``), or, with
        ``flatten``, every order that does not only close a position (those go on to the
        other rules, which stay in force). Records and returns a ``pause`` or ``flatten``
        event whose message is ``reason``; ``exposure`` is the account's gross exposure over
        its equity at the open (the event's figure; its limit is 0 under ``flatten``, the
        target, and the exposure itself under a plain pause, which keeps it). ``start_day``
        does not lift a pause: a paused day has its own governor. Calling it again records
        one more event (``symbol``: the name it is about, e.g. a position that cannot be
        closed today) and keeps the pause, ``flatten`` only ever widening it.
        """
        stamp = as_timestamp(now, "now")
        if not reason:
            raise ValueError("a pause must say why")
        kind: EventKind = "flatten" if flatten else "pause"
        was_flatten = self._paused is not None and self._paused[1]
        self._paused = (reason, flatten or was_flatten)
        figure = _finite(exposure, "exposure")
        event = RiskEvent(
            kind=kind,
            rule="kill_switch",
            time=stamp,
            account=self._account,
            symbol=symbol,
            message=reason,
            value=figure,
            limit=0.0 if flatten else figure,
        )
        self._events.append(event)
        return event

    def _kill_switch_veto(
        self, order: OrderRequest, account: AccountSnapshot, stamp: pd.Timestamp
    ) -> RiskDecision | None:
        if self._paused is None:
            return None
        reason, flatten = self._paused
        position = float(account.positions.get(order.symbol, 0.0))
        closing_only = order.sign * position < 0 and order.quantity <= abs(position)
        if flatten and closing_only:
            return None
        what = "only closing orders pass (flatten)" if flatten else "no new orders"
        return self._veto(
            order,
            stamp,
            [("kill_switch", f"the lab is paused, {what}: {reason}", order.quantity, 0.0)],
        )

    # ------------------------------------------------------------------ daily-loss stop
    def on_equity(
        self, equity: float, now: datetime | str, *, bars_left: int | None = None
    ) -> tuple[RiskEvent, ...]:
        """Watch the account's marked equity: stop the day beyond ``max_daily_loss``.

        Called at every minute close with the equity marked at that minute's prices. When
        ``equity / start_equity - 1`` falls strictly below ``-max_daily_loss`` (the *active*
        limit, so a high-volatility day stops sooner), the stop trips once for the day: a
        ``trigger`` and a ``freeze`` event (rule ``daily_loss``) at ``now``. From then on the
        caller blocks new buys and liquidates (see ``docs/risk_governor.md``). Returns the new
        events (empty when nothing tripped or the stop already tripped). ``bars_left`` (the
        bars of the day after this one, when the caller knows) only words the freeze message:
        with none left, nothing can be frozen or sold any more today and the message says so.

        Raises
        ------
        RuntimeError
            If :meth:`start_day` was not given a ``start_equity``.
        """
        if self._start_equity is None:
            raise RuntimeError("RiskGovernor.on_equity before start_day(start_equity=...)")
        if self._loss_stop is not None:
            return ()
        stamp = as_timestamp(now, "now")
        move = _finite(equity, "equity") / self._start_equity - 1.0
        limit = self._active.max_daily_loss
        if not -move > limit:
            return ()
        self._loss_stop = FreezeState(
            rule="daily_loss",
            symbol=None,
            value=move,
            threshold=limit,
            trigger_time=stamp,
            freeze_time=stamp,
        )
        new = (
            RiskEvent(
                kind="trigger",
                rule="daily_loss",
                time=stamp,
                account=self._account,
                message=f"account down {-move:.2%} since the previous close "
                f"(limit {limit:.2%}): stop the day",
                value=move,
                limit=-limit,
            ),
            RiskEvent(
                kind="freeze",
                rule="daily_loss",
                time=stamp,
                account=self._account,
                message=_freeze_message(
                    f"new buys frozen and positions liquidated from {stamp.isoformat()} "
                    "(daily-loss stop)",
                    bars_left,
                ),
                value=0.0,
                limit=float(self._active.freeze_latency_minutes),
            ),
        )
        self._events.extend(new)
        return new

    # ------------------------------------------------------------------ circuit breaker
    def on_bar(
        self,
        snapshot: MarketSnapshot,
        now: datetime | str,
        *,
        positions: Mapping[str, float] | Iterable[str] = (),
        bars_left: int | None = None,
    ) -> tuple[RiskEvent, ...]:
        """Watch one bar: freeze new orders on a market crash or a held name's drop.

        ``snapshot.time`` is the bar's close (the trigger time); ``now`` is the simulated time
        the governor sees it (the freeze time). ``positions`` are the held symbols (or a
        mapping symbol -> quantity; zero quantities are not held). ``bars_left`` words the
        freeze message as :meth:`on_equity` does. Returns the new events.

        Raises
        ------
        RuntimeError
            If :meth:`start_day` has not given the previous closes.
        """
        if not self._reference:
            raise RuntimeError("RiskGovernor.on_bar before start_day: no previous closes")
        held = _held(positions)
        return self._watch(
            snapshot.prices, snapshot.time, as_timestamp(now, "now"), held, bars_left=bars_left
        )

    def _watch(
        self,
        prices: Mapping[str, float],
        trigger_time: pd.Timestamp,
        now: pd.Timestamp,
        held: Iterable[str],
        *,
        whole_market: bool = True,
        bars_left: int | None = None,
    ) -> tuple[RiskEvent, ...]:
        if self._freeze is not None or not self._reference:
            return ()
        limits = self._active
        # A check's prices may cover only the order's and the held names; an "index" of those
        # few would be one stock's move, so the market rule needs every reference symbol then.
        covered = whole_market or all(symbol in prices for symbol in self._reference)
        market = _market_move(prices, self._reference) if covered else None
        trip: tuple[str, str | None, float, float] | None = None
        if market is not None and -market > limits.crash_threshold:
            trip = ("market_crash", None, market, limits.crash_threshold)
        else:
            for name in sorted(held):
                if name not in prices or name not in self._reference:
                    continue
                drop = prices[name] / self._reference[name] - 1.0
                if -drop > limits.position_drop_threshold:
                    trip = ("position_drop", name, drop, limits.position_drop_threshold)
                    break
        if trip is None:
            return ()
        rule, symbol, move, threshold = trip
        freeze_time = max(now, trigger_time)
        self._freeze = FreezeState(
            rule=rule,
            symbol=symbol,
            value=move,
            threshold=threshold,
            trigger_time=trigger_time,
            freeze_time=freeze_time,
        )
        what = "equal-weight market" if symbol is None else f"position {symbol}"
        new = [
            RiskEvent(
                kind="trigger",
                rule=rule,
                time=trigger_time,
                account=self._account,
                symbol=symbol,
                message=f"{what} down {-move:.2%} since the previous close (limit {threshold:.2%})",
                value=move,
                limit=-threshold,
            ),
            RiskEvent(
                kind="freeze",
                rule=rule,
                time=freeze_time,
                account=self._account,
                symbol=symbol,
                message=_freeze_message(
                    f"new orders frozen from {freeze_time.isoformat()} "
                    f"(trigger bar {trigger_time.isoformat()})",
                    bars_left,
                ),
                value=self._freeze.latency_minutes,
                limit=float(limits.freeze_latency_minutes),
            ),
        ]
        if self._freeze.latency_minutes > limits.freeze_latency_minutes:
            # The caller fed the bar late; the freeze still holds, but the breach is on record.
            new.append(
                RiskEvent(
                    kind="late_freeze",
                    rule=rule,
                    time=freeze_time,
                    account=self._account,
                    symbol=symbol,
                    message=f"freeze {self._freeze.latency_minutes:g} minutes after the "
                    f"trigger, beyond the {limits.freeze_latency_minutes}-minute latency",
                    value=self._freeze.latency_minutes,
                    limit=float(limits.freeze_latency_minutes),
                )
            )
        self._events.extend(new)
        return tuple(new)

    # ------------------------------------------------------------------ pre-trade check
    def check(
        self,
        order: OrderRequest,
        account: AccountSnapshot,
        prices: Mapping[str, float],
        now: datetime | str,
    ) -> RiskDecision:
        """Approve, cut down or veto ``order`` against the active limits at time ``now``.

        ``prices`` are the current prices of (at least) the order's symbol and every held
        symbol. They also feed the circuit breaker (trigger time = ``now``): the position rule
        always, the market rule when they cover every symbol given to :meth:`start_day`.
        Every cut and every veto is recorded as an event and returned in the decision.
        """
        stamp = as_timestamp(now, "now")
        if order.account != account.account:
            raise ValueError(
                f"order {order.order_id} is for account {order.account!r}, "
                f"the snapshot is of {account.account!r}"
            )
        if order.order_id in self._vetoed:
            return self._veto(
                order, stamp, [("final_veto", "order was vetoed before; a veto is final", 1, 0)]
            )
        paused = self._kill_switch_veto(order, account, stamp)
        if paused is not None:
            return paused
        held = [s for s, q in account.positions.items() if q != 0]
        self._watch(prices, stamp, stamp, held, whole_market=False)
        if self._freeze is not None and stamp >= self._freeze.freeze_time:
            freeze = self._freeze
            return self._veto(
                order,
                stamp,
                [
                    (
                        "frozen",
                        f"new orders frozen since {freeze.freeze_time.isoformat()} by "
                        f"{freeze.rule} ({freeze.value:.2%})",
                        freeze.value,
                        -freeze.threshold,
                    )
                ],
            )

        limits = self._active
        price = order.reference_price or _price(prices, order.symbol)
        equity = account.equity(prices)
        position = float(account.positions.get(order.symbol, 0.0))
        # The part of the order that only closes an existing position never adds risk.
        reducing = min(order.quantity, abs(position)) if order.sign * position < 0 else 0.0

        state: list[tuple[str, str, float, float]] = []
        if equity <= 0:
            state.append(("max_drawdown", f"equity {equity:,.2f} is not positive", equity, 0.0))
        else:
            day_move = equity / account.day_start_equity - 1.0
            if -day_move > limits.max_daily_loss:
                state.append(
                    (
                        "daily_loss",
                        f"day loss {-day_move:.2%} beyond the {limits.max_daily_loss:.2%} limit",
                        day_move,
                        -limits.max_daily_loss,
                    )
                )
            drawdown = equity / max(account.peak_equity, equity) - 1.0
            if -drawdown > limits.max_drawdown:
                state.append(
                    (
                        "max_drawdown",
                        f"drawdown {-drawdown:.2%} beyond the {limits.max_drawdown:.2%} limit",
                        drawdown,
                        -limits.max_drawdown,
                    )
                )
        if state:
            return self._cut_or_veto(order, stamp, reducing, state)

        caps = self._size_caps(order, account, prices, price, equity, position)
        binding = [cap for cap in caps if cap[4] < order.quantity]
        if not binding:
            return RiskDecision(
                order_id=order.order_id,
                approved=True,
                requested_qty=order.quantity,
                adjusted_qty=None,
                reasons=(),
                events=(),
            )
        allowed = max(min(cap[4] for cap in binding), reducing)
        return self._cut_or_veto(order, stamp, allowed, [cap[:4] for cap in binding])

    def _size_caps(
        self,
        order: OrderRequest,
        account: AccountSnapshot,
        prices: Mapping[str, float],
        price: float,
        equity: float,
        position: float,
    ) -> list[tuple[str, str, float, float, float]]:
        """Return ``(rule, message, figure, limit, largest quantity allowed)`` per size limit.

        Each post-trade figure is convex in the signed quantity and passes at zero, so the
        quantities that pass form an interval ``[0, q*]``; ``q*`` is solved in closed form.
        """
        limits = self._active
        sign, qty = order.sign, order.quantity
        notional = qty * price
        caps: list[tuple[str, str, float, float, float]] = []

        stop_distance = (
            abs(price - order.stop_price) / price
            if order.stop_price is not None
            else limits.assumed_stop_fraction
        )
        risk = notional * stop_distance / equity
        caps.append(
            (
                "per_trade_risk",
                f"order risk {risk:.2%} of equity (stop distance {stop_distance:.2%}) beyond "
                f"the {limits.max_trade_risk:.2%} limit",
                risk,
                limits.max_trade_risk,
                limits.max_trade_risk * equity / (price * stop_distance)
                if stop_distance > 0
                else math.inf,
            )
        )

        weight = abs(position + sign * qty) * price / equity
        caps.append(
            (
                "max_position_weight",
                f"{order.symbol} would be {weight:.2%} of equity, beyond the "
                f"{limits.max_position_weight:.2%} limit",
                weight,
                limits.max_position_weight,
                limits.max_position_weight * equity / price - sign * position,
            )
        )

        gross = account.gross_exposure(prices)
        own = abs(position) * _price(prices, order.symbol) if position else 0.0
        other = gross - own
        leverage = (other + abs(position + sign * qty) * price) / equity
        caps.append(
            (
                "gross_leverage",
                f"gross leverage would be {leverage:.3f}, beyond the "
                f"{limits.max_gross_leverage:.3f} limit",
                leverage,
                limits.max_gross_leverage,
                (limits.max_gross_leverage * equity - other) / price - sign * position,
            )
        )

        if sign > 0:
            cash_after = (account.cash - notional) / equity
            caps.append(
                (
                    "min_cash",
                    f"cash would be {cash_after:.2%} of equity, below the "
                    f"{limits.min_cash_fraction:.2%} floor",
                    cash_after,
                    limits.min_cash_fraction,
                    (account.cash - limits.min_cash_fraction * equity) / price,
                )
            )
        return caps

    def _cut_or_veto(
        self,
        order: OrderRequest,
        stamp: pd.Timestamp,
        allowed: float,
        reasons: list[tuple[str, str, float, float]],
    ) -> RiskDecision:
        quantity = float(round_to_lot_nb(max(allowed, 0.0), order.lot_size))
        if quantity <= 0:
            return self._veto(order, stamp, reasons)
        if quantity >= order.quantity:
            # Only possible when the reducing part covers the whole order.
            return RiskDecision(
                order_id=order.order_id,
                approved=True,
                requested_qty=order.quantity,
                adjusted_qty=None,
                reasons=(),
                events=(),
            )
        events = tuple(
            self._event("clip", rule, stamp, order, f"{message}; cut to {quantity:g}", value, lim)
            for rule, message, value, lim in reasons
        )
        self._events.extend(events)
        return RiskDecision(
            order_id=order.order_id,
            approved=True,
            requested_qty=order.quantity,
            adjusted_qty=quantity,
            reasons=tuple(event.message for event in events),
            events=events,
        )

    def _veto(
        self,
        order: OrderRequest,
        stamp: pd.Timestamp,
        reasons: list[tuple[str, str, float, float]],
    ) -> RiskDecision:
        self._vetoed.add(order.order_id)
        events = tuple(
            self._event("veto", rule, stamp, order, message, value, lim)
            for rule, message, value, lim in reasons
        )
        self._events.extend(events)
        return RiskDecision(
            order_id=order.order_id,
            approved=False,
            requested_qty=order.quantity,
            adjusted_qty=None,
            reasons=tuple(event.message for event in events),
            events=events,
        )

    def _event(
        self,
        kind: EventKind,
        rule: str,
        stamp: pd.Timestamp,
        order: OrderRequest,
        message: str,
        value: float,
        limit: float,
    ) -> RiskEvent:
        return RiskEvent(
            kind=kind,
            rule=rule,
            time=stamp,
            account=self._account,
            symbol=order.symbol,
            order_id=order.order_id,
            message=f"{order.side} {order.quantity:g} {order.symbol}: {message}",
            value=float(value),
            limit=float(limit),
        )


def _held(positions: Mapping[str, float] | Iterable[str]) -> list[str]:
    if isinstance(positions, Mapping):
        return [str(s) for s, qty in positions.items() if qty != 0]
    return [str(s) for s in positions]


def _market_move(prices: Mapping[str, float], reference: Mapping[str, float]) -> float | None:
    """Return the equal-weight mean return since the previous close, or ``None`` if unknown."""
    moves = [
        prices[s] / reference[s] - 1.0
        for s in sorted(reference)
        if s in prices and math.isfinite(prices[s]) and prices[s] > 0
    ]
    if not moves:
        return None
    return sum(moves) / len(moves)
