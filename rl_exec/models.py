"""Market models behind :class:`~rl_exec.env.ExecutionEnv` (pure NumPy, pluggable).

A model starts an episode (a parent order and the market at its arrival) and executes one
child order per decision step, reporting what was filled, the cash exchanged and the market
after the step. The environment owns the bookkeeping (inventory, shortfall, reward), so a new
market only has to implement :class:`MarketModel`.

* :class:`AlmgrenChrissModel`: arithmetic Brownian price with linear permanent impact
  ``gamma``, linear temporary impact ``eta`` and a fixed half-spread ``epsilon``.
* :class:`ReplayModel`: one day of intraday minute bars of one asset, child orders filled by
  :func:`simulators.fill_model.fill_child_order` (spread, square-root impact, participation
  cap, lots, price limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from rl_exec.config import AcConfig, ReplayConfig
from simulators import detmath
from simulators.bars import Panel
from simulators.fill_model import BarQuote, FillParams, fill_child_order

Side = Literal["buy", "sell"]


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
    """One asset's minute bars of one day, with what was known before the day.

    Parameters
    ----------
    open, high, low, close, volume:
        Minute bars of the day, float64 arrays of the same length.
    prev_close:
        The previous daily close (reference of the price limits).
    average_daily_volume:
        Mean daily volume over the look-back window before the day (sizes the order).
    daily_volatility:
        Standard deviation of daily log returns over the look-back window.
    label:
        Where the day comes from (``"SYM 2024-03-05"``), for messages.
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

    @property
    def n_bars(self) -> int:
        """Minute bars in the day."""
        return int(self.close.shape[0])


class ReplayModel:
    """Replay of intraday minute bars with the broker's fill model.

    Each episode picks one :class:`ReplayDay` with the episode's random generator, sizes a
    parent order at ``order_pct_adv`` of the average daily volume, and splits the day into
    ``n_steps`` buckets of consecutive minute bars. A child order is spread evenly over its
    bucket's bars (what a bar leaves unfilled rolls to the next bar of the bucket; what the
    bucket leaves unfilled returns to the parent order).

    The noise-free cost of a step (``StepFill.expected_cash``, read by the ``expected``
    training reward) prices every fill against its own bar's reference price (the OHLC average
    the fill model starts from) instead of the mid before the step: what is left is the
    step's spread, square-root impact and (at the end) the participation-cap shortfall, with
    the price path between bars taken out. The path is zero-mean noise for an order that
    cannot see the future on a driftless market; with a drift the realised reward is the one
    that sees it (``train.reward: realised``).

    Parameters
    ----------
    days:
        The pool of days to draw episodes from (all with the same number of bars).
    config:
        Order, fill and risk parameters.
    profile:
        Usual share of the day's volume per minute bar (normalised here); ``None`` estimates
        it as the mean volume share of the pool.
    lot_size, limit_pct:
        Market rules for the fill model (``config`` values win when they are set).
    """

    # The cost of a fill against its own bar's reference price (spread + impact, clipped to the
    # bar's range) is known once the bar is; the move of the reference prices from bar to bar
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
        n_bars = days[0].n_bars
        if any(day.n_bars != n_bars for day in days):
            raise ValueError("ReplayModel days must all have the same number of minute bars")
        if n_bars < config.n_steps:
            raise ValueError(
                f"replay.n_steps={config.n_steps} is more than the {n_bars} bars of a day"
            )
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
        )
        self.buckets = np.array_split(np.arange(n_bars), config.n_steps)
        if profile is None:
            shares = np.stack([d.volume / max(d.volume.sum(), 1e-12) for d in days])
            profile = shares.mean(axis=0)
        minute_profile = np.asarray(profile, dtype=float)
        if minute_profile.shape != (n_bars,) or minute_profile.sum() <= 0:
            raise ValueError(f"profile must have {n_bars} non-negative values")
        minute_profile = minute_profile / minute_profile.sum()
        self.minute_profile = minute_profile
        self.step_profile = np.array([minute_profile[b].sum() for b in self.buckets])
        self._day = days[0]
        self._bars = _bar_rows(days[0])
        self._step = 0
        self._mid = float(days[0].open[0])

    def _sigma_step(self, bucket: np.ndarray) -> float:
        return self._day.daily_volatility * math.sqrt(len(bucket) / self._day.n_bars)

    def _view(self, volume_ratio: float) -> MarketView:
        step = min(self._step, self.n_steps - 1)
        return MarketView(
            mid=self._mid,
            spread_bps=2.0 * self.params.half_spread_bps,
            volume_ratio=volume_ratio,
            step_volatility=self._sigma_step(self.buckets[step]),
        )

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        """Pick a day, size the parent order and return it at the day's first open."""
        self._day = self.days[int(rng.integers(len(self.days)))]
        self._bars = _bar_rows(self._day)
        self._step = 0
        self._mid = float(self._day.open[0])
        quantity = self.config.order_pct_adv * self._day.average_daily_volume
        lot = self.params.lot_size
        quantity = max(math.floor(quantity / lot + 1e-9), 1) * lot
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
        sigma_step = self._sigma_step(bucket)
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
                sigma=day.daily_volatility,
                params=self.params,
            )
            filled += fill.filled
            cash += fill.notional
            left -= fill.filled
            if fill.filled > 0:
                cost_vs_bars += fill.notional - fill.filled * bar_reference_price(quote)
        expected_volume = day.average_daily_volume * self.step_profile[self._step]
        realised = float(day.volume[bucket].sum())
        ratio = realised / expected_volume if expected_volume > 0 else 1.0
        step_variance = (sigma_step * self._mid) ** 2
        expected_cash = filled * self._mid + cost_vs_bars
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

    The same reference as :func:`simulators.fill_model.fill_child_order`: a fill's cost
    against its bar is ``price - bar_reference_price(quote)`` (times the side's sign).
    """
    return (quote.open + quote.high + quote.low + quote.close) / 4.0


def _bar_rows(day: ReplayDay) -> list[tuple[float, float, float, float, float]]:
    # Python floats once per episode: indexing NumPy arrays bar by bar is the slow part.
    columns = (day.open, day.high, day.low, day.close, day.volume)
    return list(zip(*(column.tolist() for column in columns), strict=True))


def replay_days_from_panels(
    daily: Panel,
    intraday: dict[int, Panel],
    *,
    lookback_days: int,
) -> list[ReplayDay]:
    """Build replay days from a daily panel and minute panels of some of its days.

    Parameters
    ----------
    daily:
        Daily bars of every asset (for the previous close, volume and volatility).
    intraday:
        Minute bars keyed by the position of their day in ``daily`` (at least
        ``lookback_days`` after the first daily bar, so the look-back is complete).
    lookback_days:
        Days of history for the average volume and the volatility.
    """
    days: list[ReplayDay] = []
    log_close = detmath.log(np.where(daily.close > 0, daily.close, np.nan))
    for day_index in sorted(intraday):
        if day_index < lookback_days:
            raise ValueError(
                f"day {day_index} has fewer than lookback_days={lookback_days} days before it"
            )
        minutes = intraday[day_index]
        window = slice(day_index - lookback_days, day_index)
        for column, symbol in enumerate(minutes.symbols):
            col = daily.column(symbol)
            if not (daily.tradable[day_index, col] and minutes.tradable[:, column].all()):
                continue
            returns = np.diff(log_close[window, col])
            volume = daily.volume[window, col]
            if not np.isfinite(returns).all() or volume.mean() <= 0:
                continue
            days.append(
                ReplayDay(
                    open=minutes.open[:, column].copy(),
                    high=minutes.high[:, column].copy(),
                    low=minutes.low[:, column].copy(),
                    close=minutes.close[:, column].copy(),
                    volume=minutes.volume[:, column].copy(),
                    prev_close=float(daily.close[day_index - 1, col]),
                    average_daily_volume=float(volume.mean()),
                    daily_volatility=float(max(returns.std(ddof=1), 1e-4)),
                    label=f"{symbol} {daily.index[day_index].date()}",
                )
            )
    return days
