"""Fixtures of the genome tests: small hand-made panels (no files, no network)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from simulators.bars import Panel

PanelFactory = Callable[..., Panel]


def make_panel(
    seed: int = 0,
    n_bars: int = 400,
    n_assets: int = 6,
    *,
    late_listing: bool = True,
    suspension: bool = True,
) -> Panel:
    """Return a random-walk OHLCV panel.

    With ``late_listing`` the last asset has no bars before bar 60 (NaN prices, not tradable);
    with ``suspension`` asset 1 is suspended on bars 100-109 (flat forward-filled bars, zero
    volume, not tradable) so kernels meet the states a real panel has.
    """
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.015, (n_bars, n_assets))
    close = 50.0 * np.exp(np.cumsum(returns, axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.004, (n_bars, n_assets)))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.006, (n_bars, n_assets))))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.006, (n_bars, n_assets))))
    volume = np.round(1e5 * np.exp(rng.normal(0.0, 0.5, (n_bars, n_assets))))
    tradable = np.ones((n_bars, n_assets), dtype=bool)
    if suspension and n_assets > 1 and n_bars > 110:
        stop = slice(100, 110)
        for array in (open_, high, low, close):
            array[stop, 1] = close[99, 1]
        volume[stop, 1] = 0.0
        tradable[stop, 1] = False
    if late_listing and n_bars > 60:
        for array in (open_, high, low, close):
            array[:60, -1] = np.nan
        volume[:60, -1] = 0.0
        tradable[:60, -1] = False
    index = pd.date_range("2020-01-01 16:00", periods=n_bars, freq="D", tz="America/New_York")
    return Panel(
        symbols=tuple(f"A{i}" for i in range(n_assets)),
        index=index,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        tradable=tradable,
        source=f"test:seed={seed}",
    )


@pytest.fixture
def panel() -> Panel:
    """A 400-bar, 6-asset random-walk panel with a late listing and a suspension."""
    return make_panel()


@pytest.fixture
def panel_factory() -> PanelFactory:
    """Build more panels: ``panel_factory(seed=..., n_bars=..., n_assets=...)``."""
    return make_panel
