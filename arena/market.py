"""The arena's market: the data it trades on, and the one market type of a trading day.

:class:`ArenaData` is the ``--data`` market (daily bars, and the intraday bars of a real
file or the synthetic market's generator): :func:`load_arena_data` loads it. A trading day
``D`` is a :class:`~simulators.day_market.DayMarket` (:func:`~simulators.day_market.day_market`):
its position in the calendar (``index``), the previous and the day's closes, the execution bars
of every tradable symbol (:class:`~simulators.day_market.Bar`), one
:class:`~simulators.day_market.MarketSnapshot` per bar and the per-symbol volatility the fill
model's impact uses. The type and its builder live in :mod:`simulators.day_market`, below the
arena and :mod:`rl_exec` both (the replay environment's days are the same type, built by the
same function); they are re-exported here, where the arena's modules, the reports and the
tests import them; :meth:`ArenaData.day_market` is the one builder of the arena's day from its
data (the trade stage, the review, the reports), and the stress replay's days are built the
same way (:meth:`simulators.scenarios.Scenario.day_market`). The plan reads only the daily bars
up to ``D-1`` (:mod:`arena.perceive`, :mod:`arena.plan`); the trade stage executes on the day's
:class:`DayMarket`; the review, the reports and the stress replay read the same type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from alphaloop.errors import DataSpecError
from alphaloop.home import LabHome
from arena.rules import BrokerRules
from simulators.bars import Panel
from simulators.day_market import (
    VOLATILITY_LOOKBACK_DAYS,
    Bar,
    DayMarket,
    MarketSnapshot,
    as_timestamp,
    bars_from_panel,
    benchmark_return,
    day_index,
    day_market,
    trading_days,
)

__all__ = [
    "ArenaData",
    "Bar",
    "DayMarket",
    "MarketSnapshot",
    "as_timestamp",
    "bars_from_panel",
    "benchmark_return",
    "day_index",
    "day_market",
    "load_arena_data",
    "trading_days",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArenaData:
    """The market the arena trades: the daily panel and where the day's own bars come from.

    Synthetic data generates each day's minute bars from its spec; real intraday data (bars
    of 1 minute to 1 hour) keeps its regular-hours bars in ``intraday`` and ``daily`` is their
    exact aggregate on the market's sessions (:mod:`simulators.intraday_market`); daily-only
    data has neither, and a day executes at its single daily bar.
    """

    daily: Panel
    spec: str
    synthetic: Any = None  # simulators.synthetic.SyntheticSpec for synthetic data
    intraday: Any = None  # simulators.intraday_market.IntradayMarket for real intraday data

    @property
    def has_intraday(self) -> bool:
        """Whether each day executes on its own intraday bars (not its single daily bar)."""
        return self.synthetic is not None or self.intraday is not None

    def minute_bars(self, day: date) -> Panel | None:
        """Return the intraday bars of ``day``, or ``None`` (daily-only data)."""
        if self.intraday is not None:
            return self.intraday.day_bars(day)
        if self.synthetic is None:
            return None
        from simulators.synthetic import generate_intraday

        return generate_intraday(self.synthetic, self.daily, day_index(self.daily, day))

    def session_bars(self, day: date) -> int | None:
        """Return the bar intervals of ``day``'s scheduled session on real intraday data.

        The calendar's count (:meth:`simulators.intraday_market.IntradayMarket.scheduled_bars`,
        the RL replay environment's ``n_slots``), whatever bars the data has that day; ``None``
        for synthetic data (its days are whole sessions: the bars present) and daily-only data.
        """
        if self.intraday is None:
            return None
        return int(self.intraday.scheduled_bars(self.intraday.day_row(day)))

    def day_market(
        self, day: date, *, intraday: bool = True, lookback_days: int = VOLATILITY_LOOKBACK_DAYS
    ) -> DayMarket:
        """Return the :class:`DayMarket` of ``day``: the one way the arena builds its day.

        ``intraday``: execute on the day's own bars when the data has them (``False``: its
        single daily bar, e.g. a committed day that is only read back). On real intraday data
        one bar's volatility spreads the daily volatility over the scheduled session's bar
        intervals (:meth:`session_bars`), so a missing bar or a halt does not raise it.
        """
        minute = self.minute_bars(day) if intraday else None
        return day_market(
            self.daily,
            day,
            minute,
            lookback_days=lookback_days,
            session_bars=self.session_bars(day) if minute is not None else None,
        )

    def rules(self) -> BrokerRules:
        """Return the market's broker rules."""
        return BrokerRules.from_market(self.daily.market)


def load_arena_data(spec: str | None, home: LabHome) -> ArenaData:
    """Load ``--data SPEC`` (the embedded synthetic market when ``None``)."""
    from simulators.data_spec import load_market, parse_data_spec

    parsed = parse_data_spec(spec)
    if parsed.kind == "synthetic":
        from simulators.synthetic import SyntheticSpec, generate_daily

        synthetic = SyntheticSpec.from_options(dict(parsed.options))
        # The minute bars are generated from this very panel, so it is built here, not cached.
        return ArenaData(daily=generate_daily(synthetic), spec=parsed.raw, synthetic=synthetic)
    from simulators.calendars import is_daily_or_slower

    panel = load_market(spec, home=home)
    if is_daily_or_slower(panel.freq):
        return ArenaData(daily=panel, spec=parsed.raw or str(spec))
    from simulators.intraday_market import aggregate_sessions

    try:
        market = aggregate_sessions(panel)
    except ValueError as exc:
        raise DataSpecError(f"--data {spec}: {exc}") from None
    return ArenaData(daily=market.daily, spec=parsed.raw or str(spec), intraday=market)
