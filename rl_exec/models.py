"""Market models behind :class:`~rl_exec.env.ExecutionEnv` (pure NumPy, pluggable).

A model starts an episode (a parent order and the market at its arrival) and executes one
child order per decision step, reporting what was filled, the cash exchanged and the market
after the step. The environment owns the bookkeeping (inventory, shortfall, reward), so a new
market only has to implement :class:`MarketModel`.

* :class:`AlmgrenChrissModel`: arithmetic Brownian price with linear permanent impact
  ``gamma``, linear temporary impact ``eta`` and a fixed half-spread ``epsilon``.
* :class:`ReplayModel`: one day of intraday bars (any bar size, synthetic or real) of one
  asset, child orders filled by :func:`simulators.fill_model.fill_child_order` (spread,
  square-root and transient impact, participation cap, end-of-day completion, lots, price
  limits), the arena broker's fill model.

A replayed day built from data (:func:`replay_days_from_panels`,
:func:`rl_exec.replay_data.replay_days_from_sessions`) is a view of one asset of the arena's
own market type, the :class:`simulators.day_market.DayMarket` of its date built by
:func:`simulators.day_market.day_market` from the same bars: the bars, previous close (price
limits), volatility and calendar position an order is replayed on are the ones the arena's
day of that date executes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from rl_exec.config import AcConfig, ReplayConfig
from simulators import detmath
from simulators.bars import Panel
from simulators.day_market import DayMarket, day_market, trading_days
from simulators.fill_model import (
    NO_IMPACT,
    BarQuote,
    FillParams,
    bar_volatility,
    daily_volatility,
    fill_child_order,
    reference_price,
)
from simulators.lots import floor_lots_nb, lots_size_nb

Side = Literal["buy", "sell"]

#: Floor of a replayed day's daily volatility in the observation (a flat look-back would
#: scale the price moves by zero).
MIN_DAILY_VOLATILITY = 1e-4


@dataclass(frozen=True, slots=True)
class MarketView:
    """What a trader can see at a decision point.

    Parameters
    ----------
    mid:
        Reference price now (the last close).
    spread_bps:
        Full quoted spread in basis points of ``mid``.
    volume_ratio:
        Volume of the last step against its usual (profile) volume; 1 when unknown.
    step_volatility:
        Standard deviation of the price change over one step, as a fraction of the price.
    """

    mid: float
    spread_bps: float
    volume_ratio: float
    step_volatility: float


@dataclass(frozen=True, slots=True)
class EpisodeStart:
    """A parent order and the market when it arrives."""

    side: Side
    quantity: float
    view: MarketView
    profile: np.ndarray = field(repr=False)


@dataclass(frozen=True, slots=True)
class StepFill:
    """Outcome of one decision step.

    Parameters
    ----------
    filled:
        Quantity filled during the step.
    cash:
        Sum of ``quantity * price`` of the fills (dollars).
    view:
        The market after the step.
    step_variance:
        Variance of the price change of the step, in dollars squared per share squared; the
        risk term of the reward is ``lambda * step_variance * inventory_after ** 2``.
    expected_cash, expected_move:
        Noise-free counterparts of ``cash`` and of the mid's change over the step: what the
        step costs once the zero-mean price noise is taken out (Almgren-Chriss: the
        conditional expectations given the market before the step and the child order;
        replay: the cash with each bar's own reference price moved to the mid before the
        step, so that only the spread, impact and cap of the fills remain); ``None`` when the
        model cannot say (then only the realised reward exists).
    """

    filled: float
    cash: float
    view: MarketView
    step_variance: float
    expected_cash: float | None = None
    expected_move: float | None = None


class MarketModel(Protocol):
    """A market an execution environment can run an episode on."""

    n_steps: int
    risk_aversion: float
    unfilled_penalty_bps: float
    #: Whether :meth:`execute` fills ``expected_cash`` and ``expected_move`` of its result.
    provides_expected_cost: bool

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        """Begin an episode; all randomness of the episode is drawn from ``rng`` here."""
        ...

    def execute(self, quantity: float) -> StepFill:
        """Execute a child order of ``quantity`` (``>= 0``) over the current step."""
        ...


class AlmgrenChrissModel:
    """The Almgren-Chriss market (see :mod:`rl_exec.baselines` for its closed form).

    At step ``k`` a child order of ``n_k`` shares fills at
    ``S_{k-1} -+ (epsilon + eta n_k / tau)`` (sell/buy), then the price moves to
    ``S_k = S_{k-1} + sigma sqrt(tau) xi_k -+ gamma n_k``. All ``xi`` are drawn at
    :meth:`start`, so two policies run with the same seed see the same shocks.

    The fill price is known before the shock, so ``expected_cash`` is the cash itself, and the
    expected move is the permanent impact ``-+ gamma n_k``.
    """

    provides_expected_cost = True

    def __init__(self, config: AcConfig) -> None:
        self.config = config
        self.n_steps = config.n_steps
        self.risk_aversion = config.risk_aversion
        self.unfilled_penalty_bps = 0.0
        self._shocks = np.zeros(config.n_steps)
        self._price = config.initial_price
        self._step = 0

    def _view(self) -> MarketView:
        cfg = self.config
        price = max(self._price, 1e-9)
        return MarketView(
            mid=self._price,
            spread_bps=2.0 * cfg.half_spread / price * 1e4,
            volume_ratio=1.0,
            step_volatility=cfg.sigma * math.sqrt(cfg.tau) / cfg.initial_price,
        )

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        """Draw the episode's price shocks and return the parent order at ``S0``."""
        self._shocks = rng.standard_normal(self.n_steps)
        self._price = self.config.initial_price
        self._step = 0
        return EpisodeStart(
            side=self.config.side,
            quantity=self.config.quantity,
            view=self._view(),
            profile=np.full(self.n_steps, 1.0 / self.n_steps),
        )

    def execute(self, quantity: float) -> StepFill:
        """Fill ``quantity`` in full at the linear-impact price, then move the price."""
        cfg = self.config
        if self._step >= self.n_steps:
            raise RuntimeError("AlmgrenChrissModel.execute called after the last step")
        direction = 1.0 if cfg.side == "buy" else -1.0
        price = self._price + direction * (cfg.half_spread + cfg.eta * quantity / cfg.tau)
        cash = quantity * price if quantity > 0 else 0.0
        permanent = direction * cfg.gamma * quantity
        self._price += cfg.sigma * math.sqrt(cfg.tau) * self._shocks[self._step] + permanent
        self._step += 1
        return StepFill(
            filled=quantity,
            cash=cash,
            view=self._view(),
            step_variance=cfg.sigma**2 * cfg.tau,
            expected_cash=cash,
            expected_move=permanent,
        )


@dataclass(frozen=True, slots=True)
class ReplayDay:
    """One asset's intraday bars of one day, with what was known before the day.

    Parameters
    ----------
    open, high, low, close, volume:
        The day's bars (any bar size), float64 arrays of the same length, in time order. Only
        bars that exist: a missing stretch or a halt is missing bars, never padding.
    prev_close:
        The previous daily close (reference of the price limits).
    average_daily_volume:
        Mean daily volume over the look-back window before the day (sizes the order).
    daily_volatility:
        Standard deviation of daily log returns over the look-back window
        (:func:`daily_history`, :func:`simulators.fill_model.daily_volatility`).
    label:
        Where the day comes from (``"SYM 2024-03-05"``), for messages.
    slots:
        Place of each bar in the day's session: bar ``i`` covers the ``slots[i]``-th bar
        interval of the session's regular hours (``0 .. n_slots - 1``, non-decreasing; see
        :mod:`rl_exec.replay_data`). ``None``: bar ``i`` is slot ``i`` (a complete day).
    n_slots:
        Bar intervals of the day's scheduled session (its regular hours over the bar size);
        ``None``: the number of bars.
    profile:
        Usual share of the day's volume per slot, known before the day (from the look-back
        days); ``None``: the market model's profile is used.
    market, symbol:
        The :class:`~simulators.day_market.DayMarket` of the day and the asset this day is a
        view of (:meth:`from_market`): the bars above are that market's tradable bars of
        ``symbol``, and the fills use its volatility of one bar. ``None`` for a hand-made day.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    prev_close: float
    average_daily_volume: float
    daily_volatility: float
    label: str = ""
    slots: np.ndarray | None = field(default=None, repr=False)
    n_slots: int | None = None
    profile: np.ndarray | None = field(default=None, repr=False)
    market: DayMarket | None = field(default=None, repr=False, compare=False)
    symbol: str = ""

    @classmethod
    def from_market(
        cls,
        market: DayMarket,
        symbol: str,
        *,
        average_daily_volume: float,
        label: str = "",
        slots: np.ndarray | None = None,
        n_slots: int | None = None,
        profile: np.ndarray | None = None,
    ) -> ReplayDay:
        """Return the replay day of ``symbol`` on ``market``: its tradable bars, as they are.

        The previous close and the volatility are the market's
        (``DayMarket.daily_volatility``, floored at :data:`MIN_DAILY_VOLATILITY` for the
        observation; the fills use ``DayMarket.sigma``). ``slots`` (one per tradable bar),
        ``n_slots`` and ``profile`` are as in the class; ``label`` defaults to
        ``"SYMBOL YYYY-MM-DD"``.
        """
        fields = market.bar_columns(symbol)
        live = fields["tradable"]
        names = ("open", "high", "low", "close", "volume")
        columns = {name: fields[name] if live.all() else fields[name][live] for name in names}
        return cls(
            **columns,
            prev_close=market.prev_close[symbol],
            average_daily_volume=average_daily_volume,
            daily_volatility=max(market.daily_volatility[symbol], MIN_DAILY_VOLATILITY),
            label=label or f"{symbol} {market.day.isoformat()}",
            slots=slots,
            n_slots=n_slots,
            profile=profile,
            market=market,
            symbol=symbol,
        )

    def __post_init__(self) -> None:
        n_bars = self.n_bars
        if n_bars < 1:
            raise ValueError(f"ReplayDay {self.label!r} has no bar")
        if any(getattr(self, name).shape != (n_bars,) for name in ("open", "high", "low")):
            raise ValueError(f"ReplayDay {self.label!r}: the bar arrays differ in length")
        if self.volume.shape != (n_bars,):
            raise ValueError(f"ReplayDay {self.label!r}: the bar arrays differ in length")
        n_slots = self.session_slots
        if self.slots is None:
            if n_slots != n_bars:
                raise ValueError(
                    f"ReplayDay {self.label!r}: n_slots={n_slots} without slots needs one slot "
                    f"per bar ({n_bars})"
                )
        else:
            slots = self.slots
            if slots.shape != (n_bars,) or slots[0] < 0 or slots[-1] >= n_slots:
                raise ValueError(
                    f"ReplayDay {self.label!r}: slots must be {n_bars} values in 0..{n_slots - 1}"
                )
            if np.any(np.diff(slots) < 0):
                raise ValueError(f"ReplayDay {self.label!r}: slots must be non-decreasing")
        if self.profile is not None:
            profile = self.profile
            if profile.shape != (n_slots,) or not np.isfinite(profile).all():
                raise ValueError(f"ReplayDay {self.label!r}: profile must have {n_slots} values")
            if np.any(profile < 0) or profile.sum() <= 0:
                raise ValueError(f"ReplayDay {self.label!r}: profile must be non-negative shares")

    @property
    def n_bars(self) -> int:
        """Bars in the day."""
        return int(self.close.shape[0])

    @property
    def session_slots(self) -> int:
        """Bar intervals of the day's scheduled session (``n_slots``, else ``n_bars``)."""
        return self.n_slots if self.n_slots is not None else self.n_bars

    def bar_slots(self) -> np.ndarray:
        """Return the slot of each bar (``arange(n_bars)`` for a day without ``slots``)."""
        return self.slots if self.slots is not None else np.arange(self.n_bars)

    def bar_sigma(self) -> float:
        """Return the fill model's volatility of one bar (the ``sigma`` of its impact).

        The market's (``DayMarket.sigma``) for a day built from one; else ``daily_volatility``
        over the session's slots (:func:`~simulators.fill_model.bar_volatility`).
        """
        if self.market is not None:
            return self.market.sigma[self.symbol]
        return bar_volatility(self.daily_volatility, self.session_slots)


@dataclass(frozen=True, slots=True)
class _DayLayout:
    """A day's decision steps: the bars of each step and its share of the usual volume."""

    bar_buckets: list[np.ndarray]
    slot_counts: np.ndarray
    n_slots: int
    step_profile: np.ndarray


class ReplayModel:
    """Replay of intraday bars (any bar size) with the broker's fill model.

    Each episode picks one :class:`ReplayDay` with the episode's random generator, sizes a
    parent order at ``order_pct_adv`` of the average daily volume, and splits the day's
    session into ``n_steps`` buckets of consecutive slots (bar intervals of the session's
    regular hours, so a step is a stretch of clock time, the same on every complete day). A
    child order is spread evenly over the bars its bucket holds (what a bar leaves unfilled
    rolls to the next bar of the bucket; what the bucket leaves unfilled returns to the parent
    order). A bucket without bars (a halt, a missing stretch, the end of a session cut short)
    fills nothing: nothing is invented where the data has no bar. Every fill pays the spread,
    its square-root impact at the bar's volatility (:func:`~simulators.fill_model.bar_volatility`
    of the day's volatility over the session's slots) and the transient impact of the
    episode's earlier fills (carried in an :class:`~simulators.fill_model.ImpactState`, bars
    counted in session slots). The last bar of the last step completes the order without the
    participation cap (the end-of-day rule of the fill model); only what even that cannot fill
    (a locked limit, no bar at the end of a session cut short) pays ``unfilled_penalty_bps``.

    The noise-free cost of a step (``StepFill.expected_cash``, read by the ``expected``
    training reward) prices every fill against its own bar's reference price (the OHLC average
    the fill model starts from) instead of the mid before the step: what is left is the
    step's spread, square-root and transient impact, with the price path between bars taken
    out. The path is zero-mean noise for an order that
    cannot see the future on a driftless market; with a drift the realised reward is the one
    that sees it (``train.reward: realised``).

    Parameters
    ----------
    days:
        The pool of days to draw episodes from. Days with their own ``profile`` may differ in
        length; the others must all have the same number of slots (they share ``profile``).
    config:
        Order, fill and risk parameters.
    profile:
        Usual share of the day's volume per slot for the days without their own (normalised
        here); ``None`` estimates it as the mean volume share of those days.
    lot_size, limit_pct:
        Market rules for the fill model (``config`` values win when they are set).
    """

    # The cost of a fill against its own bar's reference price (spread + impact) is known once
    # the bar is; the move of the reference prices from bar to bar
    # is the zero-mean noise (on a driftless market) that the expected reward leaves out.
    provides_expected_cost = True

    def __init__(
        self,
        days: list[ReplayDay],
        config: ReplayConfig,
        *,
        profile: np.ndarray | None = None,
        lot_size: float = 1.0,
        limit_pct: float | None = None,
    ) -> None:
        if not days:
            raise ValueError("ReplayModel needs at least one day of intraday bars")
        for day in days:
            if day.session_slots < config.n_steps:
                raise ValueError(
                    f"replay.n_steps={config.n_steps} is more than the {day.session_slots} "
                    f"bars of a day ({day.label or 'unlabelled'})"
                )
        shared = [day for day in days if day.profile is None]
        minute_profile: np.ndarray | None = None
        if shared:
            n_slots = shared[0].session_slots
            if any(day.session_slots != n_slots for day in shared):
                raise ValueError(
                    "ReplayModel days without their own profile must all have the same number "
                    "of bars"
                )
            if profile is None:
                profile = np.stack([_volume_shares(day) for day in shared]).mean(axis=0)
            minute_profile = np.asarray(profile, dtype=float)
            if minute_profile.shape != (n_slots,) or minute_profile.sum() <= 0:
                raise ValueError(f"profile must have {n_slots} non-negative values")
            minute_profile = minute_profile / minute_profile.sum()
        elif profile is not None:
            minute_profile = np.asarray(profile, dtype=float)
            minute_profile = minute_profile / minute_profile.sum()
        self.days = days
        self.config = config
        self.n_steps = config.n_steps
        self.risk_aversion = config.risk_aversion
        self.unfilled_penalty_bps = config.unfilled_penalty_bps
        self.params = FillParams(
            half_spread_bps=config.half_spread_bps,
            impact_coefficient=config.impact_coefficient,
            participation_cap=config.participation_cap,
            lot_size=config.lot_size if config.lot_size is not None else lot_size,
            limit_pct=config.limit_pct if config.limit_pct is not None else limit_pct,
            transient_half_life_bars=config.transient_half_life_bars,
        )
        #: Usual volume share per slot of the days without their own profile (``None`` if all
        #: days carry one).
        self.minute_profile = minute_profile
        self._layouts: list[_DayLayout | None] = [None] * len(days)
        self._day = days[0]
        self._layout = self._layout_of(0)
        #: Bars (positions in the day) of each step, and the usual volume share of each step,
        #: of the current episode's day.
        self.buckets = self._layout.bar_buckets
        self.step_profile = self._layout.step_profile
        self._bars = _bar_rows(days[0])
        self._step = 0
        self._mid = float(days[0].open[0])
        self._impact = NO_IMPACT

    def fresh(self) -> ReplayModel:
        """Return a new model on the same days and parameters (one per vectorised env)."""
        return ReplayModel(
            self.days,
            self.config,
            profile=self.minute_profile,
            lot_size=self.params.lot_size,
            limit_pct=self.params.limit_pct,
        )

    def _layout_of(self, index: int) -> _DayLayout:
        layout = self._layouts[index]
        if layout is not None:
            return layout
        day = self.days[index]
        slot_buckets = np.array_split(np.arange(day.session_slots), self.n_steps)
        first_slots = [int(bucket[0]) for bucket in slot_buckets]
        if day.slots is None:
            # One bar per slot: the bar buckets are the slot buckets.
            bar_buckets = slot_buckets
        else:
            cuts = np.searchsorted(day.slots, [*first_slots, day.session_slots], side="left")
            bar_buckets = [np.arange(cuts[i], cuts[i + 1]) for i in range(self.n_steps)]
        profile = day.profile if day.profile is not None else self.minute_profile
        assert profile is not None  # checked in the constructor
        if day.profile is not None:
            profile = profile / profile.sum()
        layout = _DayLayout(
            bar_buckets=bar_buckets,
            slot_counts=np.array([len(bucket) for bucket in slot_buckets]),
            n_slots=day.session_slots,
            step_profile=np.array([profile[bucket].sum() for bucket in slot_buckets]),
        )
        self._layouts[index] = layout
        return layout

    def _sigma_step(self, step: int) -> float:
        # Time, not bars: a step's variance is its share of the session's bar intervals.
        layout = self._layout
        return self._day.daily_volatility * math.sqrt(layout.slot_counts[step] / layout.n_slots)

    def _view(self, volume_ratio: float) -> MarketView:
        step = min(self._step, self.n_steps - 1)
        return MarketView(
            mid=self._mid,
            spread_bps=2.0 * self.params.half_spread_bps,
            volume_ratio=volume_ratio,
            step_volatility=self._sigma_step(step),
        )

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        """Pick a day, size the parent order and return it at the day's first open."""
        index = int(rng.integers(len(self.days)))
        self._day = self.days[index]
        self._layout = self._layout_of(index)
        self.buckets = self._layout.bar_buckets
        self.step_profile = self._layout.step_profile
        self._bars = _bar_rows(self._day)
        self._step = 0
        self._mid = float(self._day.open[0])
        self._impact = NO_IMPACT
        quantity = self.config.order_pct_adv * self._day.average_daily_volume
        lot = self.params.lot_size
        quantity = float(lots_size_nb(max(floor_lots_nb(quantity, lot), 1.0), lot))
        return EpisodeStart(
            side=self.config.side,
            quantity=quantity,
            view=self._view(1.0),
            profile=self.step_profile.copy(),
        )

    def execute(self, quantity: float) -> StepFill:
        """Work ``quantity`` evenly over the bars of the current bucket."""
        if self._step >= self.n_steps:
            raise RuntimeError("ReplayModel.execute called after the last step")
        day = self._day
        bucket = self.buckets[self._step]
        sigma_step = self._sigma_step(self._step)
        sigma_bar = day.bar_sigma()
        slots = day.bar_slots()
        last_step = self._step == self.n_steps - 1
        left = quantity
        filled = 0.0
        cash = 0.0
        # Cash of the fills with each bar's reference price replaced by the mid before the
        # step: ``filled * mid + sum filled_b * (price_b - reference_b)``.
        cost_vs_bars = 0.0
        for position, bar in enumerate(bucket):
            if left <= 0:
                break
            ask = left / (len(bucket) - position)
            if ask < self.params.lot_size:
                # Too small to be a lot on its own: try the rest in one go.
                ask = left
            open_, high, low, close, volume = self._bars[bar]
            quote = BarQuote(
                open=open_,
                high=high,
                low=low,
                close=close,
                volume=volume,
                prev_close=day.prev_close,
            )
            fill = fill_child_order(
                self.config.side,
                ask,
                quote,
                sigma=sigma_bar,
                params=self.params,
                impact=self._impact,
                bar_number=int(slots[bar]),
                # The end-of-day rule: the horizon's last bar completes the order, cap-free.
                complete=last_step and position == len(bucket) - 1,
            )
            self._impact = fill.impact
            filled += fill.filled
            cash += fill.notional
            left -= fill.filled
            if fill.filled > 0:
                cost_vs_bars += fill.notional - fill.filled * fill.reference
        expected_volume = day.average_daily_volume * self.step_profile[self._step]
        realised = float(day.volume[bucket].sum())
        ratio = realised / expected_volume if expected_volume > 0 else 1.0
        step_variance = (sigma_step * self._mid) ** 2
        expected_cash = filled * self._mid + cost_vs_bars
        if len(bucket):
            # A step without a bar leaves the price where the last bar left it.
            self._mid = float(day.close[bucket[-1]])
        self._step += 1
        return StepFill(
            filled=filled,
            cash=cash,
            view=self._view(ratio),
            step_variance=step_variance,
            expected_cash=expected_cash,
            expected_move=0.0,
        )


def bar_reference_price(quote: BarQuote) -> float:
    """Return the price a fill on ``quote`` starts from before costs (the OHLC average).

    :func:`simulators.fill_model.reference_price`, the fill model's own: a fill's cost against
    its bar is ``price - bar_reference_price(quote)`` (times the side's sign).
    """
    return reference_price(quote)


def _volume_shares(day: ReplayDay) -> np.ndarray:
    if day.slots is None:
        return day.volume / max(day.volume.sum(), 1e-12)
    per_slot = np.bincount(day.slots, weights=day.volume, minlength=day.session_slots)
    return per_slot / max(per_slot.sum(), 1e-12)


def _bar_rows(day: ReplayDay) -> list[tuple[float, float, float, float, float]]:
    # Python floats once per episode: indexing NumPy arrays bar by bar is the slow part.
    columns = (day.open, day.high, day.low, day.close, day.volume)
    return list(zip(*(column.tolist() for column in columns), strict=True))


def daily_history(
    daily: Panel, log_close: np.ndarray, day_index: int, column: int, *, lookback_days: int
) -> tuple[float, float, float] | None:
    """Return ``(prev_close, average_daily_volume, daily_volatility)`` known before a day.

    Parameters
    ----------
    daily:
        Daily bars.
    log_close:
        ``log(daily.close)`` (NaN where the close is not positive), computed once per panel.
    day_index, column:
        The day (row of ``daily``, at least ``lookback_days``) and the asset.
    lookback_days:
        Days of history for the average volume and the volatility.

    Returns
    -------
    tuple or None
        ``None`` when the look-back has a missing price or no volume.
    """
    window = slice(day_index - lookback_days, day_index)
    returns = np.diff(log_close[window, column])
    volume = daily.volume[window, column]
    if not np.isfinite(returns).all() or volume.mean() <= 0:
        return None
    # The floor keeps the observation's price scaling finite on a flat look-back.
    return (
        float(daily.close[day_index - 1, column]),
        float(volume.mean()),
        max(daily_volatility(returns), 1e-4),
    )


def daily_log_close(daily: Panel) -> np.ndarray:
    """Return ``log(daily.close)`` with NaN where the close is not positive."""
    return detmath.log(np.where(daily.close > 0, daily.close, np.nan))


def replay_days_from_panels(
    daily: Panel,
    intraday: dict[int, Panel],
    *,
    lookback_days: int,
    symbols: list[str] | tuple[str, ...] | None = None,
) -> list[ReplayDay]:
    """Build replay days from a daily panel and minute panels of some of its days.

    Each day is one asset of the :class:`~simulators.day_market.DayMarket` of its date
    (:func:`~simulators.day_market.day_market` with ``lookback_days`` of history), the type
    and the builder of the arena's day.

    Parameters
    ----------
    daily:
        Daily bars of every asset (for the previous close, volume and volatility).
    intraday:
        Minute bars keyed by the position of their day in ``daily`` (at least
        ``lookback_days`` after the first daily bar, so the look-back is complete), of the
        same assets as ``daily`` (the synthetic market's generator draws for every column, so
        a day's minute bars are generated from the whole panel, as the arena's are).
    lookback_days:
        Days of history for the average volume and the volatility.
    symbols:
        Assets to replay (default: those of the minute panels), in this order.
    """
    days: list[ReplayDay] = []
    log_close = daily_log_close(daily)
    calendar = trading_days(daily)
    for day_index in sorted(intraday):
        if day_index < lookback_days:
            raise ValueError(
                f"day {day_index} has fewer than lookback_days={lookback_days} days before it"
            )
        minutes = intraday[day_index]
        market = day_market(daily, calendar[day_index], minutes, lookback_days=lookback_days)
        for symbol in symbols if symbols is not None else minutes.symbols:
            col = daily.column(symbol)
            column = minutes.column(symbol)
            if not (daily.tradable[day_index, col] and minutes.tradable[:, column].all()):
                continue
            history = daily_history(daily, log_close, day_index, col, lookback_days=lookback_days)
            if history is None or symbol not in market.bars:
                continue
            days.append(
                ReplayDay.from_market(
                    market,
                    symbol,
                    average_daily_volume=history[1],
                    label=f"{symbol} {daily.index[day_index].date()}",
                )
            )
    return days
