"""The lab's default market: a seeded synthetic multi-asset market (``--data synthetic``).

Everything here is a pure function of a :class:`SyntheticSpec`; the same spec gives the same
bytes on every machine. What the market is made of (the full description, with the numbers, is
in ``docs/synthetic_market.md``):

* **Regimes.** A Markov chain over :data:`REGIMES` (bull, bear, range, high_vol) with expected
  stays of weeks to months sets, per day, the market drift, the market and sector volatility,
  the idiosyncratic volatility multiplier and the volume level.
* **Returns.** Daily log-return of asset ``i`` on day ``t``::

      r[t, i] = drift * (beta_i * mu[regime_t] + alpha_i)
              + beta_i * (market_sd[regime_t] * z_m[t] + market_jump[t])
              + gamma_i * sector_sd[regime_t] * z_s[t, sector_i]
              + idio_mult[regime_t] * idio_sd_i * z_i[t] + asset_jump[t, i]
              + edge term (see below)

  Every noise and jump term has mean zero and every mean term is multiplied by ``drift``, so
  ``drift=0`` is driftless noise (expected log-return 0 in every regime; regimes then change
  only volatility and volume).
* **Bars.** Close-to-close returns are split into an overnight gap and an intraday move; the
  high and the low are the exact maximum and minimum of a Brownian bridge from open to close
  (sampled in closed form), so ``low <= min(open, close) <= max(open, close) <= high`` and all
  prices are positive. Volumes are positive integers that rise with ``|return|`` and with
  volatile regimes (lots of 100 shares on ``market=cn``).
* **Calendar.** Mon-Fri for ``none``/``us``/``cn`` (no holidays), every day for ``crypto``.
  Timestamps are bar closes: cn 15:00 Asia/Shanghai, us 16:00 America/New_York, none 16:00 UTC,
  crypto 00:00 UTC of the next day (the bar covers one UTC day). On ``cn`` closes, opens,
  highs and lows are kept inside the +/-10% daily price limit of the previous close (limits
  are not rounded to ticks). Every bar is tradable (no suspensions are simulated).
* **Planted edge** (``edge=breakout``). After a close strictly above the highest of the
  previous :data:`EDGE_LOOKBACK` closes (a Donchian breakout on closes) at day ``s``, each of
  the days ``s+1 .. s+EDGE_HOLD`` gets an extra log drift of
  ``edge_strength * EDGE_DAILY_DRIFT * vol_scale`` (a new breakout restarts the count). The
  drift of day ``t`` depends only on closes up to ``t-1``: no look-ahead.
* **Edge that stops paying** (``edge_until=YYYY-MM-DD``, with ``edge=breakout`` only). The
  edge drift term of every trading day strictly after ``edge_until`` is multiplied by 0; the
  breakout detection keeps running on the realised closes but pays nothing. So days up to and
  including ``edge_until`` are bit-identical to the ``edge=breakout`` market of the same spec,
  and from the day after on every day's log-return (before the ``cn`` limit clip, which is the
  same in both) is bit-identical to the ``edge=none`` market's; only the price level carries
  what the edge earned before. A trading day is the session date of a bar (on ``crypto`` the
  UTC day the bar covers, the day before its 00:00 stamp).
* **Edge that depends on the regime** (``edge_regime=R``, with ``edge=breakout`` only; ``R``
  one of :data:`EDGE_REGIMES`). The edge drift term of day ``t`` is multiplied by ``+1`` when
  the true regime of day ``t`` is ``R``, by ``-1`` when it is ``high_vol`` (a breakout that
  follows through in ``R`` reverses in high volatility) and by ``0`` in the other regimes;
  the breakout detection is unchanged. Unset, nothing changes (the spec strings and the data
  of specs without it are what they were before the key existed).

Randomness: one root ``SeedSequence(spec.seed)``; child ``(0,)`` feeds the daily market
(one grandchild per random array, so a shorter ``end`` gives a bit-identical prefix of a
longer one), child ``(1, day)`` feeds the minute bars of daily bar ``day`` so any day can be
generated on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from alphaloop.errors import DataQualityError, DataSpecError
from simulators import detmath
from simulators.bars import Panel

__all__ = [
    "EDGES",
    "EDGE_DAILY_DRIFT",
    "EDGE_HOLD",
    "EDGE_LOOKBACK",
    "EDGE_REGIMES",
    "MARKETS",
    "REGIMES",
    "SyntheticSpec",
    "breakout_edge_returns",
    "generate_daily",
    "generate_intraday",
    "intraday_profile",
    "regime_path",
    "session_minutes",
]

REGIMES: tuple[str, ...] = ("bull", "bear", "range", "high_vol")
MARKETS: tuple[str, ...] = ("none", "cn", "us", "crypto")
EDGES: tuple[str, ...] = ("none", "breakout")
# The regimes ``edge_regime`` may name: the edge pays there and loses in high_vol.
EDGE_REGIMES: tuple[str, ...] = tuple(r for r in REGIMES if r != "high_vol")
GENERATOR_VERSION = "2"  # 2: exp/log/cos from simulators.detmath (same bits on any CPU)

# --------------------------------------------------------------------------- model constants
# Per regime, in REGIMES order. Daily log units.
_REGIME_MU = np.array([0.0010, -0.0010, 0.0002, -0.0006])  # market drift per day (x drift)
_REGIME_MARKET_SD = np.array([0.007, 0.012, 0.006, 0.022])
_REGIME_IDIO_MULT = np.array([1.0, 1.2, 0.9, 1.8])
_REGIME_VOLUME = np.array([0.0, 0.15, -0.15, 0.45])  # log volume level shift
_REGIME_MARKET_JUMP_MU = np.array([0.0, -0.01, 0.0, -0.02])  # (x drift)
_REGIME_MARKET_JUMP_P = np.array([0.001, 0.003, 0.001, 0.008])
# Expected stay in days (persistence of weeks to months) and where a regime goes when it ends.
_REGIME_STAY = np.array([80.0, 45.0, 60.0, 20.0])
_REGIME_NEXT = np.array(
    [
        [0.0, 0.3, 0.5, 0.2],
        [0.2, 0.0, 0.4, 0.4],
        [0.5, 0.3, 0.0, 0.2],
        [0.3, 0.4, 0.3, 0.0],
    ]
)
_SECTORS = 4
_SECTOR_SD_RATIO = 0.6  # sector factor sd as a share of the market factor sd
_MARKET_JUMP_SD = 0.03
_ASSET_JUMP_P = 0.003
_ASSET_JUMP_SD = 0.05
_GAP_SHARE = 0.25  # share of the close-to-close move that happens overnight
_GAP_NOISE = 0.3  # overnight noise (cancelled intraday) in units of the day's sd
_INTRADAY_SD_SHARE = 0.8  # bridge sd for the high/low in units of the day's sd
_VOLUME_RETURN_LOADING = 0.35  # log volume per unit of |return| / typical sd
_VOLUME_NOISE_SD = 0.25
_VOL_SCALE = {"none": 1.0, "cn": 1.0, "us": 1.0, "crypto": 2.0}
_CN_LIMIT = 0.10

EDGE_LOOKBACK = 20
EDGE_HOLD = 10
EDGE_DAILY_DRIFT = 0.0015

_CLOSE_TIME = {"none": (16, 0), "us": (16, 0), "cn": (15, 0)}
_TIMEZONE = {"none": "UTC", "us": "America/New_York", "cn": "Asia/Shanghai", "crypto": "UTC"}

# Named streams of the daily child; the order is part of the format (never reorder, append).
_STREAMS = (
    "regime",
    "structure",
    "market_noise",
    "sector_noise",
    "idio_noise",
    "market_jump_hit",
    "market_jump_size",
    "asset_jump_hit",
    "asset_jump_size",
    "gap_noise",
    "high_excursion",
    "low_excursion",
    "volume_noise",
)
_DAILY_CHILD = 0
_INTRADAY_CHILD = 1


# --------------------------------------------------------------------------- the spec
def _spec_error(key: str, value: object, expected: str) -> DataSpecError:
    return DataSpecError(f"synthetic data spec: {key}={value!r} is invalid; expected {expected}")


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    """What synthetic market to generate (``--data synthetic:key=value,...``).

    Parameters
    ----------
    seed:
        Root seed (non-negative integer); same spec, same bytes.
    assets:
        Number of symbols (``SYN000``, ``SYN001``, ...), 1 to 5000.
    start, end:
        First and last calendar day (ISO ``YYYY-MM-DD``), inclusive.
    market:
        ``none``, ``cn``, ``us`` or ``crypto``: calendar, timezone, session, lots and limits.
    drift:
        Scale of every mean term (regime drifts, jump means, asset alphas), ``>= 0``;
        ``0`` gives driftless noise.
    edge:
        ``none`` or ``breakout``: the planted edge (see the module docstring).
    edge_strength:
        Scale of the planted edge, ``>= 0``.
    edge_until:
        ``None`` (the edge pays on every day) or an ISO date ``YYYY-MM-DD``: the planted edge
        pays nothing on trading days strictly after it (see the module docstring). Needs
        ``edge=breakout``. Left out of :meth:`to_spec_string` when ``None``, so specs without
        it keep their spec string and their data.
    edge_regime:
        ``None`` (the edge pays in every regime) or a regime of :data:`EDGE_REGIMES`: the
        planted edge pays only on days of that true regime, is reversed (loses the same drift)
        on ``high_vol`` days and is 0 on the others (see the module docstring). Needs
        ``edge=breakout``. Left out of :meth:`to_spec_string` when ``None``.
    """

    seed: int = 7
    assets: int = 20
    start: str = "2015-01-01"
    end: str = "2025-12-31"
    market: str = "none"
    drift: float = 1.0
    edge: str = "none"
    edge_strength: float = 1.0
    edge_until: str | None = None
    edge_regime: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise _spec_error("seed", self.seed, "a non-negative integer")
        if isinstance(self.assets, bool) or not isinstance(self.assets, int):
            raise _spec_error("assets", self.assets, "an integer from 1 to 5000")
        if not 1 <= self.assets <= 5000:
            raise _spec_error("assets", self.assets, "an integer from 1 to 5000")
        days = []
        for key in ("start", "end"):
            value = getattr(self, key)
            try:
                day = date.fromisoformat(str(value))
            except ValueError:
                raise _spec_error(key, value, "a date YYYY-MM-DD") from None
            # Canonical form, so that equal specs compare and print equal.
            object.__setattr__(self, key, day.isoformat())
            days.append(day)
        if days[0] > days[1]:
            raise DataSpecError(
                f"synthetic data spec: start={self.start} is after end={self.end}; "
                "expected start <= end"
            )
        if self.market not in MARKETS:
            raise _spec_error("market", self.market, f"one of {', '.join(MARKETS)}")
        if self.edge not in EDGES:
            raise _spec_error("edge", self.edge, f"one of {', '.join(EDGES)}")
        for key in ("drift", "edge_strength"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _spec_error(key, value, "a finite number >= 0")
            if not math.isfinite(value) or value < 0:
                raise _spec_error(key, value, "a finite number >= 0")
            object.__setattr__(self, key, float(value))
        if self.edge_until is not None:
            try:
                until = date.fromisoformat(str(self.edge_until))
            except ValueError:
                raise _spec_error(
                    "edge_until", self.edge_until, "a date YYYY-MM-DD (or no edge_until)"
                ) from None
            if self.edge == "none":
                raise _spec_error(
                    "edge_until",
                    self.edge_until,
                    f"no edge_until with edge=none (edge_until needs edge="
                    f"{', '.join(e for e in EDGES if e != 'none')})",
                )
            object.__setattr__(self, "edge_until", until.isoformat())
        if self.edge_regime is not None:
            if self.edge_regime not in EDGE_REGIMES:
                raise _spec_error(
                    "edge_regime", self.edge_regime, f"one of {', '.join(EDGE_REGIMES)}"
                )
            if self.edge == "none":
                raise _spec_error(
                    "edge_regime",
                    self.edge_regime,
                    f"no edge_regime with edge=none (edge_regime needs edge="
                    f"{', '.join(e for e in EDGES if e != 'none')})",
                )

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> SyntheticSpec:
        """Build a spec from ``key=value`` strings; missing keys keep their defaults.

        Raises
        ------
        DataSpecError
            On an unknown key (naming it and the allowed keys) or a bad value (naming the key,
            the value and what is allowed).
        """
        allowed = [f.name for f in fields(cls)]
        parsed: dict[str, object] = {}
        for raw_key, raw_value in options.items():
            key = str(raw_key).strip()
            value = str(raw_value).strip()
            if key not in allowed:
                raise DataSpecError(
                    f"synthetic data spec: unknown key {key!r}; allowed keys: {', '.join(allowed)}"
                )
            if key in ("seed", "assets"):
                try:
                    parsed[key] = int(value)
                except ValueError:
                    expected = "a non-negative integer" if key == "seed" else "an integer"
                    raise _spec_error(key, value, expected) from None
            elif key in ("drift", "edge_strength"):
                try:
                    parsed[key] = float(value)
                except ValueError:
                    raise _spec_error(key, value, "a finite number >= 0") from None
            elif key in ("market", "edge", "edge_regime"):
                parsed[key] = value.lower()
            else:
                parsed[key] = value
        return cls(**parsed)  # type: ignore[arg-type]

    @classmethod
    def from_spec_string(cls, text: str) -> SyntheticSpec:
        """Parse ``synthetic`` or ``synthetic:key=value,...`` (the ``--data`` form)."""
        head, _, tail = text.strip().partition(":")
        if head.strip() != "synthetic":
            raise DataSpecError(f"data spec {text!r} is not a synthetic spec ('synthetic:...')")
        options: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in tail.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise DataSpecError(
                    f"synthetic data spec: item {item!r} is not key=value (in {text!r})"
                )
            if key.strip() in options:
                raise DataSpecError(f"synthetic data spec: key {key.strip()!r} given twice")
            options[key.strip()] = value
        return cls.from_options(options)

    def to_spec_string(self) -> str:
        """Return the canonical ``synthetic:seed=...,...`` string (every key, fixed order).

        An optional key that is unset (``edge_until=None``, ``edge_regime=None``) is left out,
        so the strings of specs that do not use it are the same as before it existed.
        """
        parts = [
            f"{f.name}={getattr(self, f.name)!s}"
            for f in fields(self)
            if getattr(self, f.name) is not None
        ]
        return "synthetic:" + ",".join(parts)


# --------------------------------------------------------------------------- calendar
def _daily_index(spec: SyntheticSpec) -> pd.DatetimeIndex:
    if spec.market == "crypto":
        days = pd.date_range(spec.start, spec.end, freq="D")
        stamps = days + pd.Timedelta(days=1)
    else:
        days = pd.bdate_range(spec.start, spec.end)
        hour, minute = _CLOSE_TIME[spec.market]
        stamps = days + pd.Timedelta(hours=hour, minutes=minute)
    if len(stamps) == 0:
        raise DataSpecError(
            f"synthetic data spec: start={spec.start}, end={spec.end} contains no trading day "
            f"for market={spec.market}"
        )
    index = pd.DatetimeIndex(stamps).as_unit("ns").tz_localize(_TIMEZONE[spec.market])
    index.name = "timestamp"
    return index


@lru_cache(maxsize=8)
def _session_offsets(market: str) -> np.ndarray:
    """Minutes after local midnight of each minute bar's close (read-only)."""
    if market == "cn":
        morning = np.arange(9 * 60 + 31, 11 * 60 + 31)
        afternoon = np.arange(13 * 60 + 1, 15 * 60 + 1)
        offsets = np.concatenate([morning, afternoon])
    elif market in ("us", "none"):
        offsets = np.arange(9 * 60 + 31, 16 * 60 + 1)
    elif market == "crypto":
        offsets = np.arange(1, 24 * 60 + 1)
    else:
        raise DataSpecError(f"market={market!r} is unknown; expected one of {', '.join(MARKETS)}")
    offsets.setflags(write=False)
    return offsets


def session_minutes(market: str, session_date: date | str) -> pd.DatetimeIndex:
    """Return the minute-bar close timestamps of one session of ``market``.

    cn: 09:31-11:30 and 13:01-15:00 Asia/Shanghai (240); us: 09:31-16:00 America/New_York and
    none: the same hours in UTC (390); crypto: 00:01 of ``session_date`` to 00:00 of the next
    day, UTC (1440).
    """
    offsets = _session_offsets(market)
    midnight = np.datetime64(pd.Timestamp(session_date).date(), "ns")
    values = midnight + offsets.astype("timedelta64[m]").astype("timedelta64[ns]")
    index = pd.DatetimeIndex(values).tz_localize(_TIMEZONE[market])
    index.name = "timestamp"
    return index


@lru_cache(maxsize=8)
def _profile(market: str) -> np.ndarray:
    n_minutes = len(_session_offsets(market))
    position = (np.arange(n_minutes) + 0.5) / n_minutes
    if market == "crypto":
        # No open or close: a smooth diurnal wave peaking at 15:00 UTC (US/EU overlap).
        weights = 1.0 + 0.4 * detmath.cos(2.0 * np.pi * (position - 15.0 / 24.0))
    else:
        # Heavy first minutes after the open, heavier last minutes into the close.
        weights = (
            1.0 + 2.0 * detmath.exp(-position / 0.05) + 3.0 * detmath.exp(-(1.0 - position) / 0.04)
        )
        if market == "cn":
            # The afternoon session reopens after the lunch break with a small burst.
            afternoon = position - 0.5
            weights += np.where(afternoon > 0, 0.8 * detmath.exp(-afternoon / 0.03), 0.0)
    profile = weights / weights.sum()
    profile.setflags(write=False)
    return profile


def intraday_profile(market: str) -> np.ndarray:
    """Return the expected share of the day's volume traded in each minute (sums to 1).

    U-shaped for session markets (``none``, ``us``, ``cn``; cn adds a small burst after the
    lunch break); a smooth 24-hour wave peaking at 15:00 UTC for ``crypto``. This is the
    profile :func:`generate_intraday` splits the daily volume with, so a VWAP schedule built
    from it is the right baseline.
    """
    return _profile(market).copy()


# --------------------------------------------------------------------------- daily market
def _streams(spec: SyntheticSpec) -> dict[str, np.random.Generator]:
    daily = np.random.SeedSequence(spec.seed, spawn_key=(_DAILY_CHILD,))
    children = daily.spawn(len(_STREAMS))
    return {
        name: np.random.Generator(np.random.PCG64(child))
        for name, child in zip(_STREAMS, children, strict=True)
    }


def _regime_states(n_bars: int, rng: np.random.Generator) -> np.ndarray:
    stay = 1.0 - 1.0 / _REGIME_STAY
    transition = (1.0 - stay)[:, None] * _REGIME_NEXT + np.diag(stay)
    cumulative = np.cumsum(transition, axis=1)
    cumulative[:, -1] = 1.0
    uniforms = rng.random(n_bars)
    states = np.empty(n_bars, dtype=np.int64)
    state = int(uniforms[0] * len(REGIMES))
    states[0] = state
    for t in range(1, n_bars):
        state = int(np.searchsorted(cumulative[state], uniforms[t], side="right"))
        states[t] = state
    return states


def regime_path(spec: SyntheticSpec) -> pd.Series:
    """Return the true regime label of every daily bar of :func:`generate_daily` ``(spec)``."""
    index = _daily_index(spec)
    states = _regime_states(len(index), _streams(spec)["regime"])
    labels = np.asarray(REGIMES, dtype=object)[states]
    return pd.Series(labels, index=index, name="regime")


def breakout_edge_returns(
    base_log_returns: np.ndarray,
    log_price0: np.ndarray,
    per_day: float,
    *,
    lookback: int = EDGE_LOOKBACK,
    hold: int = EDGE_HOLD,
    bounds: tuple[float, float] | None = None,
    paid_days: int | None = None,
    day_sign: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add the planted breakout drift to daily log-returns, day by day without look-ahead.

    Day ``s`` is a breakout when its log close is strictly above the maximum of the
    ``lookback`` log closes before it. Each of the days ``s+1 .. s+hold`` gets ``per_day``
    added to its log-return; a new breakout restarts the count. The drift of day ``t`` is
    decided from closes up to ``t-1`` only. With ``paid_days=k`` only days ``0 .. k-1`` can
    receive the drift: from day ``k`` on the breakout detection keeps running on the realised
    closes but the drift term is multiplied by 0, so those days' log-returns are exactly
    ``base_log_returns`` (clipped to ``bounds``) and days before ``k`` are bit-identical to the
    result without ``paid_days``. With ``day_sign`` (a ``(T,)`` array) day ``t``'s drift is
    ``per_day * day_sign[t]``; ``active`` then marks the days with a non-zero drift.

    Parameters
    ----------
    base_log_returns:
        ``(T, N)`` log-returns without the edge.
    log_price0:
        ``(N,)`` log price before the first day.
    per_day:
        Extra log drift per active day.
    lookback, hold:
        Donchian window (in closes) and how many days the drift lasts.
    bounds:
        Optional ``(low, high)`` clip of each day's log-return (price limits).
    paid_days:
        How many leading days the edge pays on (``None``: all of them).
    day_sign:
        Optional ``(T,)`` multiplier of each day's drift (``edge_regime``: +1, -1 or 0).

    Returns
    -------
    log_returns, active:
        The ``(T, N)`` log-returns with the edge and the ``(T, N)`` bool mask of the days
        that received the drift (always ``False`` from day ``paid_days`` on).
    """
    n_bars, n_assets = base_log_returns.shape
    returns = np.empty((n_bars, n_assets))
    log_close = np.empty((n_bars, n_assets))
    active = np.zeros((n_bars, n_assets), dtype=bool)
    remaining = np.zeros(n_assets, dtype=np.int64)
    previous = np.asarray(log_price0, dtype=float)
    paid = n_bars if paid_days is None else max(0, int(paid_days))
    for t in range(n_bars):
        if t - 1 >= lookback:
            prior_high = log_close[t - 1 - lookback : t - 1].max(axis=0)
            remaining = np.where(log_close[t - 1] > prior_high, hold, remaining)
        on = remaining > 0
        if t < paid and (day_sign is None or day_sign[t] != 0.0):
            scale = per_day if day_sign is None else per_day * float(day_sign[t])
            day = base_log_returns[t] + scale * on
            active[t] = on
        else:
            # The edge has stopped paying (or pays nothing in this regime): the no-edge return
            # itself (not base + 0.0 * on).
            day = base_log_returns[t].astype(float, copy=True)
        if bounds is not None:
            day = np.clip(day, bounds[0], bounds[1])
        returns[t] = day
        # The same sequential sum as np.cumsum over [log_price0, returns...].
        previous = previous + day
        log_close[t] = previous
        remaining = remaining - on
    return returns, active


def _paid_days(spec: SyntheticSpec, index: pd.DatetimeIndex) -> int | None:
    """Number of leading bars whose session date is on or before ``spec.edge_until``."""
    if spec.edge_until is None:
        return None
    # A bar's session date: the local date a minute before its close stamp (crypto: the UTC
    # day the bar covers), as in generate_intraday.
    sessions = (index.tz_localize(None) - pd.Timedelta(minutes=1)).normalize()
    return int(np.searchsorted(sessions, pd.Timestamp(spec.edge_until), side="right"))


def generate_daily(spec: SyntheticSpec) -> Panel:
    """Generate the daily bars (``freq="1D"``) of the synthetic market described by ``spec``.

    See the module docstring and ``docs/synthetic_market.md`` for the model. ``Panel.source``
    is ``spec.to_spec_string()``; ``Panel.market`` is ``spec.market``.
    """
    index = _daily_index(spec)
    n_bars, n_assets = len(index), spec.assets
    rng = _streams(spec)
    states = _regime_states(n_bars, rng["regime"])
    vol_scale = _VOL_SCALE[spec.market]

    # Cross-sectional structure: drawn in a fixed order from its own stream.
    structure = rng["structure"]
    beta = structure.uniform(0.7, 1.3, n_assets)
    sector = structure.integers(0, _SECTORS, n_assets)
    gamma = structure.uniform(0.4, 0.9, n_assets)
    idio_sd = structure.uniform(0.010, 0.020, n_assets) * vol_scale
    alpha = structure.normal(0.0, 0.0002, n_assets)
    log_price0 = structure.uniform(float(detmath.log(10.0)), float(detmath.log(100.0)), n_assets)
    dollar_volume = detmath.exp(
        structure.uniform(float(detmath.log(2e6)), float(detmath.log(2e8)), n_assets)
    )

    mu = _REGIME_MU[states]
    market_sd = _REGIME_MARKET_SD[states] * vol_scale
    sector_sd = market_sd * _SECTOR_SD_RATIO
    idio_mult = _REGIME_IDIO_MULT[states]

    market_jump = np.where(
        rng["market_jump_hit"].random(n_bars) < _REGIME_MARKET_JUMP_P[states],
        spec.drift * _REGIME_MARKET_JUMP_MU[states]
        + _MARKET_JUMP_SD * vol_scale * rng["market_jump_size"].standard_normal(n_bars),
        0.0,
    )
    market = market_sd * rng["market_noise"].standard_normal(n_bars) + market_jump
    sectors = sector_sd[:, None] * rng["sector_noise"].standard_normal((n_bars, _SECTORS))
    idio = (idio_mult[:, None] * idio_sd) * rng["idio_noise"].standard_normal((n_bars, n_assets))
    asset_jump = np.where(
        rng["asset_jump_hit"].random((n_bars, n_assets)) < _ASSET_JUMP_P,
        _ASSET_JUMP_SD * vol_scale * rng["asset_jump_size"].standard_normal((n_bars, n_assets)),
        0.0,
    )
    base = (
        spec.drift * (beta * mu[:, None] + alpha)
        + beta * market[:, None]
        + gamma * sectors[:, sector]
        + idio
        + asset_jump
    )
    # The day's typical sd (no jumps): sets the high/low range, the gap noise and volume.
    day_sd = np.sqrt(
        (beta * market_sd[:, None]) ** 2
        + (gamma * sector_sd[:, None]) ** 2
        + (idio_mult[:, None] * idio_sd) ** 2
    )

    bounds = (
        (float(detmath.log(1.0 - _CN_LIMIT)), float(detmath.log(1.0 + _CN_LIMIT)))
        if spec.market == "cn"
        else None
    )
    if spec.edge == "breakout":
        per_day = spec.edge_strength * EDGE_DAILY_DRIFT * vol_scale
        sign = None
        if spec.edge_regime is not None:
            sign = np.where(
                states == REGIMES.index(spec.edge_regime),
                1.0,
                np.where(states == REGIMES.index("high_vol"), -1.0, 0.0),
            )
        returns, _ = breakout_edge_returns(
            base,
            log_price0,
            per_day,
            bounds=bounds,
            paid_days=_paid_days(spec, index),
            day_sign=sign,
        )
    else:
        returns = base if bounds is None else np.clip(base, bounds[0], bounds[1])

    log_close = np.cumsum(np.vstack([log_price0, returns]), axis=0)
    close_all = detmath.exp(log_close)
    previous_close, close = close_all[:-1], close_all[1:]

    gap = _GAP_SHARE * returns + _GAP_NOISE * day_sd * rng["gap_noise"].standard_normal(
        (n_bars, n_assets)
    )
    intraday = returns - gap
    open_ = previous_close * detmath.exp(gap)
    # Exact max/min of a Brownian bridge from 0 to x with variance s^2 (inverse-CDF sampling).
    bridge_var = (_INTRADAY_SD_SHARE * day_sd) ** 2
    up = 0.5 * (
        intraday
        + np.sqrt(
            intraday**2 + 2.0 * bridge_var * rng["high_excursion"].exponential(size=base.shape)
        )
    )
    down = 0.5 * (
        -intraday
        + np.sqrt(
            intraday**2 + 2.0 * bridge_var * rng["low_excursion"].exponential(size=base.shape)
        )
    )
    high = open_ * detmath.exp(up)
    low = open_ * detmath.exp(-down)
    if spec.market == "cn":
        lower, upper = previous_close * (1.0 - _CN_LIMIT), previous_close * (1.0 + _CN_LIMIT)
        close = np.clip(close, lower, upper)
        open_ = np.clip(open_, lower, upper)
        high = np.clip(high, lower, upper)
        low = np.clip(low, lower, upper)
    # Rounding in exp/log may leave the bridge extremes an ulp inside open/close.
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))

    unit = 100.0 if spec.market == "cn" else 1.0
    typical_sd = np.sqrt((beta * 0.009 * vol_scale) ** 2 + idio_sd**2)
    log_volume = (
        detmath.log(dollar_volume / detmath.exp(log_price0))
        + _REGIME_VOLUME[states][:, None]
        + _VOLUME_RETURN_LOADING * np.abs(returns) / typical_sd
        + _VOLUME_NOISE_SD * rng["volume_noise"].standard_normal((n_bars, n_assets))
    )
    volume = np.maximum(np.rint(detmath.exp(log_volume) / unit), 1.0) * unit

    width = max(3, len(str(n_assets - 1)))
    return Panel(
        symbols=tuple(f"SYN{i:0{width}d}" for i in range(n_assets)),
        index=index,
        open=np.ascontiguousarray(open_),
        high=np.ascontiguousarray(high),
        low=np.ascontiguousarray(low),
        close=np.ascontiguousarray(close),
        volume=np.ascontiguousarray(volume),
        tradable=np.ones((n_bars, n_assets), dtype=bool),
        freq="1D",
        market=spec.market,
        source=spec.to_spec_string(),
        meta={"generator": "simulators.synthetic", "generator_version": GENERATOR_VERSION},
    )


# --------------------------------------------------------------------------- minute bars
def generate_intraday(spec: SyntheticSpec, daily: Panel, day: int) -> Panel:
    """Generate the minute bars (``freq="1min"``) of daily bar number ``day`` of ``daily``.

    The minutes aggregate exactly (bitwise, float64) to the daily bar: the first minute's
    open is the daily open, the last minute's close the daily close, the maximum of the minute
    highs the daily high, the minimum of the minute lows the daily low, and the minute volumes
    (integers) sum to the daily volume when that volume is an integer. The path is a Brownian
    bridge from open to close pinned to touch the high and the low at random minutes and
    folded back into ``[low, high]`` by reflection; the volume is a multinomial split with
    :func:`intraday_profile` probabilities (in lots of 100 on ``cn`` when the daily volume is a
    multiple of 100).

    The session follows ``daily.market`` (see :func:`session_minutes`); the randomness comes
    from ``SeedSequence(spec.seed, spawn_key=(1, day))`` alone, so a day does not depend on
    the others. Non-tradable columns get flat minutes at the daily close with zero volume.

    Raises
    ------
    DataSpecError
        If ``day`` is not a bar of ``daily``.
    DataQualityError
        If a tradable daily bar is not a valid OHLC bar.
    """
    if daily.freq != "1D":
        raise DataSpecError(f"generate_intraday needs a daily panel, got freq={daily.freq!r}")
    if isinstance(day, bool) or not isinstance(day, int | np.integer):
        raise DataSpecError(f"generate_intraday: day={day!r} is not an integer bar number")
    day = int(day)
    if not 0 <= day < daily.n_bars:
        raise DataSpecError(
            f"generate_intraday: day={day} is out of range; the daily panel "
            f"({daily.source or 'unnamed'}) has bars 0..{daily.n_bars - 1}"
        )
    market = daily.market if daily.market in MARKETS else "none"
    stamp = daily.index[day].tz_convert(_TIMEZONE[market])
    session_date = (stamp - pd.Timedelta(minutes=1)).date()
    index = session_minutes(market, session_date)
    profile = _profile(market)
    n_minutes, n_assets = len(index), daily.n_assets

    o, h, lo, c = (
        getattr(daily, name)[day].astype(float) for name in ("open", "high", "low", "close")
    )
    v = daily.volume[day].astype(float)
    live = daily.tradable[day].copy()
    bad = live & ~(
        np.isfinite(o)
        & np.isfinite(h)
        & np.isfinite(lo)
        & np.isfinite(c)
        & (lo > 0)
        & (lo <= np.minimum(o, c))
        & (np.maximum(o, c) <= h)
        & np.isfinite(v)
        & (v >= 0)
    )
    if bad.any():
        names = ", ".join(daily.symbols[i] for i in np.flatnonzero(bad)[:5])
        raise DataQualityError(
            f"generate_intraday: daily bar {day} ({daily.index[day]}) of {names} is not a valid "
            "OHLCV bar (need 0 < low <= min(open, close) <= max(open, close) <= high, volume >= 0)"
        )

    seed_sequence = np.random.SeedSequence(spec.seed, spawn_key=(_INTRADAY_CHILD, day))
    rng = np.random.Generator(np.random.PCG64(seed_sequence))
    # Every draw happens for every column, in a fixed order, whatever is tradable.
    touch_high = rng.integers(1, n_minutes, size=n_assets)
    touch_low = rng.integers(1, n_minutes - 1, size=n_assets)
    touch_low = touch_low + (touch_low >= touch_high)  # distinct interior points
    steps = rng.standard_normal((n_minutes, n_assets))
    wick_up = rng.exponential(size=(n_minutes, n_assets))
    wick_down = rng.exponential(size=(n_minutes, n_assets))

    # Work on safe stand-ins for non-tradable columns; they are overwritten below.
    o_, h_, lo_, c_ = (np.where(live, x, 1.0) for x in (o, h, lo, c))
    log_range = detmath.log(h_ / lo_)
    step_sd = 0.6 * log_range / math.sqrt(n_minutes)

    # Brownian bridge through the pins (0, open), (touch, high), (touch, low), (M, close):
    # subtract the walk's piecewise-linear interpolation at the pins, add the targets'.
    walk = np.vstack([np.zeros(n_assets), np.cumsum(steps * step_sd, axis=0)])
    first = np.minimum(touch_high, touch_low)
    second = np.maximum(touch_high, touch_low)
    first_level = np.where(touch_high < touch_low, detmath.log(h_), detmath.log(lo_))
    second_level = np.where(touch_high < touch_low, detmath.log(lo_), detmath.log(h_))
    columns = np.arange(n_assets)
    times = np.arange(n_minutes + 1, dtype=float)[:, None]
    pins_t = np.stack([np.zeros(n_assets), first, second, np.full(n_assets, n_minutes)])
    pins_v = np.stack([detmath.log(o_), first_level, second_level, detmath.log(c_)])
    pins_w = walk[pins_t.astype(np.int64), columns]
    path = walk.copy()
    for segment in range(3):
        t0, t1 = pins_t[segment], pins_t[segment + 1]
        inside = (times >= t0) & (times <= t1)
        weight = (times - t0) / (t1 - t0)
        target = pins_v[segment] + weight * (pins_v[segment + 1] - pins_v[segment])
        walk_line = pins_w[segment] + weight * (pins_w[segment + 1] - pins_w[segment])
        path = np.where(inside, walk - walk_line + target, path)

    # Fold the path back into [low, high] by reflection (as a walk between two mirrors would
    # move) rather than clipping, which would leave flat stretches pinned at the extremes.
    log_low = detmath.log(lo_)
    band = detmath.log(h_) - log_low
    safe_band = np.where(band > 0, band, 1.0)
    folded = np.mod(path - log_low, 2.0 * safe_band)
    folded = np.where(folded > safe_band, 2.0 * safe_band - folded, folded)
    path = np.where(band > 0, log_low + folded, log_low)
    price = np.clip(detmath.exp(path), lo_, h_)
    price[0] = o_
    price[n_minutes] = c_
    price[touch_high, columns] = h_
    price[touch_low, columns] = lo_

    m_open, m_close = price[:-1], price[1:]
    wick_sd = 0.5 * step_sd
    m_high = np.minimum(np.maximum(m_open, m_close) * detmath.exp(wick_sd * wick_up), h_)
    m_low = np.maximum(np.minimum(m_open, m_close) * detmath.exp(-wick_sd * wick_down), lo_)

    unit = 100.0 if market == "cn" and bool(np.all(np.mod(v[live], 100.0) == 0)) else 1.0
    units = np.where(live & np.isfinite(v), np.floor(v / unit), 0.0).astype(np.int64)
    m_volume = rng.multinomial(units, profile).T.astype(float) * unit
    # A fractional remainder (real data) goes to the busiest minute.
    remainder = np.where(live, v - units * unit, 0.0)
    m_volume[int(np.argmax(profile))] += remainder

    dead = ~live
    if dead.any():
        flat = np.broadcast_to(c, (n_minutes, n_assets))
        for array in (m_open, m_high, m_low, m_close):
            array[:, dead] = flat[:, dead]
        m_volume[:, dead] = 0.0

    return Panel(
        symbols=daily.symbols,
        index=index,
        open=np.ascontiguousarray(m_open),
        high=np.ascontiguousarray(m_high),
        low=np.ascontiguousarray(m_low),
        close=np.ascontiguousarray(m_close),
        volume=np.ascontiguousarray(m_volume),
        tradable=np.broadcast_to(live, (n_minutes, n_assets)).copy(),
        freq="1min",
        market=market,
        source=daily.source,
        meta={"daily_bar": str(day), "session_date": session_date.isoformat()},
    )
