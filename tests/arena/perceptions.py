"""A hand-made :class:`arena.perceive.Perception` for the debate, judge and memory tests.

The regime reading's figures are fixed (a calm bull market); a test chooses the regime label,
the trend's return and the assets.
"""

from __future__ import annotations

from arena.perceive import AssetRisk, Perception, RegimeReading


def perception(
    *assets: AssetRisk, regime: str = "bull", trend: float = 0.12, day: str = "2024-03-05"
) -> Perception:
    """Return the perception of ``day`` (as of the close before it) over ``assets``."""
    return Perception(
        date=day,
        as_of="2024-03-04T16:00:00+00:00",
        bars_used=500,
        regime=RegimeReading(
            regime=regime,
            trend_return=trend,
            index_volatility=0.15,
            vol_percentile=0.4,
            breadth=0.6,
            trend_window=100,
            trend_threshold=0.05,
            vol_window=20,
            vol_lookback=252,
            high_vol_rank=0.8,
        ),
        assets=assets,
    )
