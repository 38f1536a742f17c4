"""The one table of gene bounds and categorical choices.

Every numeric gene of every genome component is looked up here by ``"<component>.<field>"``
(the component is the ``KIND`` of its class, e.g. ``"ma_cross.fast"``). Validation, random
generation, numeric mutation and Optuna refinement all read this table, so a bound changed here
changes all of them at once. Bounds are code, not configuration: a genome stored in the gene pool
must stay valid whatever a user edits later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GeneKind = Literal["int", "float"]


@dataclass(frozen=True, slots=True)
class Bound:
    """Closed interval ``[low, high]`` of one numeric gene.

    Parameters
    ----------
    low, high:
        Inclusive limits.
    kind:
        ``"int"`` for whole numbers (windows, bar counts), ``"float"`` otherwise.
    log:
        Whether the gene is naturally searched on a log scale (windows, multiples); a hint for
        random generation and Optuna.
    decimals:
        Floats are rounded to this many decimals when clipped by numeric mutation or drawn at
        random, so descriptions stay readable and ids stay stable.
    """

    low: float
    high: float
    kind: GeneKind
    log: bool = False
    decimals: int = 4

    def describe(self) -> str:
        """Return the allowed range in words, e.g. ``"integer in [5, 250]"``."""
        noun = "integer" if self.kind == "int" else "number"
        return f"{noun} in [{self.low:g}, {self.high:g}]"

    def clip(self, value: float) -> float | int:
        """Clip ``value`` into the bound and round it to the gene's kind and precision."""
        clipped = min(max(float(value), self.low), self.high)
        if self.kind == "int":
            return round(clipped)
        return round(clipped, self.decimals)


# Windows are in bars. Fractions are of the price (stops) or of equity (sizing).
BOUNDS: dict[str, Bound] = {
    # entry conditions
    "price_vs_ma.window": Bound(5, 250, "int", log=True),
    "ma_cross.fast": Bound(2, 100, "int", log=True),
    "ma_cross.slow": Bound(5, 300, "int", log=True),
    "rsi_level.window": Bound(2, 50, "int", log=True),
    "rsi_level.threshold": Bound(5.0, 95.0, "float", decimals=1),
    "bollinger_touch.window": Bound(5, 100, "int", log=True),
    "bollinger_touch.width": Bound(0.5, 4.0, "float", decimals=2),
    "donchian_breakout.window": Bound(5, 250, "int", log=True),
    "momentum.window": Bound(2, 250, "int", log=True),
    "momentum.threshold": Bound(-0.5, 0.5, "float", decimals=3),
    "volume_surge.window": Bound(5, 100, "int", log=True),
    "volume_surge.multiple": Bound(1.0, 5.0, "float", decimals=2),
    "atr_pct.window": Bound(5, 100, "int", log=True),
    "atr_pct.threshold": Bound(0.002, 0.2, "float", log=True, decimals=4),
    "rv_percentile.window": Bound(5, 100, "int", log=True),
    "rv_percentile.lookback": Bound(20, 252, "int", log=True),
    "rv_percentile.threshold": Bound(0.05, 0.95, "float", decimals=2),
    # exits
    "exits.stop_loss": Bound(0.005, 0.5, "float", log=True, decimals=4),
    "exits.take_profit": Bound(0.01, 2.0, "float", log=True, decimals=4),
    "exits.time_stop": Bound(1, 500, "int", log=True),
    "pct_trailing.pct": Bound(0.005, 0.5, "float", log=True, decimals=4),
    "atr_trailing.multiple": Bound(0.5, 8.0, "float", log=True, decimals=2),
    "atr_trailing.window": Bound(5, 100, "int", log=True),
    # sizing
    "fixed_fraction.fraction": Bound(0.01, 1.0, "float", log=True, decimals=4),
    "fixed_fraction.max_positions": Bound(1, 100, "int", log=True),
    "vol_target.target": Bound(0.02, 1.0, "float", log=True, decimals=4),
    "vol_target.window": Bound(5, 250, "int", log=True),
    "vol_target.max_positions": Bound(1, 100, "int", log=True),
    "capped_kelly.window": Bound(20, 500, "int", log=True),
    "capped_kelly.cap": Bound(0.01, 1.0, "float", log=True, decimals=4),
    "capped_kelly.max_positions": Bound(1, 100, "int", log=True),
}

MA_TYPES: tuple[str, ...] = ("sma", "ema")
SIDES: tuple[str, ...] = ("above", "below")
BANDS: tuple[str, ...] = ("lower", "upper")
BREAKOUT_SIDES: tuple[str, ...] = ("high", "low")
COMBINERS: tuple[str, ...] = ("and", "or")
# The canonical order of regimes; a genome's allowed regimes are stored in this order.
REGIMES: tuple[str, ...] = ("bull", "bear", "range", "high_vol")
STYLES: tuple[str, ...] = ("trend", "mean_reversion", "breakout", "defensive")

# Categorical genes, by "<component>.<field>".
CHOICES: dict[str, tuple[str, ...]] = {
    "price_vs_ma.ma": MA_TYPES,
    "price_vs_ma.side": SIDES,
    "ma_cross.ma": MA_TYPES,
    "ma_cross.direction": SIDES,
    "rsi_level.side": SIDES,
    "bollinger_touch.band": BANDS,
    "donchian_breakout.side": BREAKOUT_SIDES,
    "momentum.side": SIDES,
    "atr_pct.side": SIDES,
    "rv_percentile.side": SIDES,
}

MIN_CONDITIONS = 1
MAX_CONDITIONS = 3
