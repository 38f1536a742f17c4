"""The genomes the arena trades: the gene pool's champions, or the documented bootstrap set.

A persona with no eligible champion of its styles still has to trade, so it falls back to
:data:`BOOTSTRAP_GENOMES` (per persona and per day: :func:`arena_genomes`): five hand-written
textbook strategies, one or two per style, so that every persona finds something it prefers in
every regime:

=================  ===============  =======================================================
name               style            rule
=================  ===============  =======================================================
``trend_ema``      trend            EMA(10) crosses above EMA(40); exit on the opposite cross
                                    or a 3 x ATR(14) trailing stop; 15% volatility target
``trend_momentum`` trend            60-bar momentum > 5% and price above SMA(100); exit on the
                                    opposite signal or after 40 bars; 10% per position
``breakout``       breakout         close above the 20-bar Donchian high; 8% stop loss,
                                    2.5 x ATR trailing stop, 30-bar time stop; 10% per position
``mean_reversion`` mean_reversion   RSI(14) < 30; 6% take profit, 8% stop loss, 10-bar time
                                    stop; 8% per position
``defensive``      defensive        price above SMA(200) and ATR(14) < 2.5% of the price; exit
                                    on the opposite signal or a 10% trailing stop; 10% vol target
=================  ===============  =======================================================

Every bootstrap genome has the fixed fitness :data:`BOOTSTRAP_FITNESS` (a neutral 50 on the
lab's 0-100 scale): none has earned a ranking, so a persona keeps all those of its styles
(ties broken by genome id). Champions are read from ``LabHome.gene_pool_db`` (never created
here) with their last gene-pool score as fitness, and beside them the genomes on probation
(gate candidates that trade a small allocation until their paper record decides; see
:mod:`evolution.lifecycle`). Paused genomes never trade. The closed loop judges the bootstrap
genomes that trade like champions (:mod:`arena.loop`): one whose paper record decayed is added
to the pool as demoted and is not offered again, so a persona with neither a champion nor a
stand-in of its styles holds cash in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alphaloop.home import LabHome
from arena.personas import GenomeCandidate
from genome.genes import (
    ATRPct,
    ATRTrailing,
    DonchianBreakout,
    Exits,
    FixedFraction,
    Genome,
    MACross,
    Momentum,
    PctTrailing,
    PriceVsMA,
    RSILevel,
    VolTarget,
)

__all__ = [
    "BOOTSTRAP_FITNESS",
    "BOOTSTRAP_GENOMES",
    "ArenaGenome",
    "arena_genomes",
    "bootstrap_genomes",
    "champion_genomes",
]

BOOTSTRAP_FITNESS = 50.0

BOOTSTRAP_GENOMES: dict[str, Genome] = {
    "trend_ema": Genome(
        entry=(MACross(ma="ema", fast=10, slow=40, direction="above"),),
        exits=Exits(opposite_signal=True, trailing=ATRTrailing(multiple=3.0, window=14)),
        sizing=VolTarget(target=0.15, window=20, max_positions=5),
        style="trend",
    ),
    "trend_momentum": Genome(
        entry=(
            Momentum(window=60, threshold=0.05, side="above"),
            PriceVsMA(ma="sma", window=100, side="above"),
        ),
        exits=Exits(opposite_signal=True, time_stop=40),
        sizing=FixedFraction(fraction=0.1, max_positions=8),
        style="trend",
    ),
    "breakout": Genome(
        entry=(DonchianBreakout(window=20, side="high"),),
        exits=Exits(stop_loss=0.08, trailing=ATRTrailing(multiple=2.5, window=14), time_stop=30),
        sizing=FixedFraction(fraction=0.1, max_positions=8),
        style="breakout",
    ),
    "mean_reversion": Genome(
        entry=(RSILevel(window=14, threshold=30.0, side="below"),),
        exits=Exits(take_profit=0.06, stop_loss=0.08, time_stop=10),
        sizing=FixedFraction(fraction=0.08, max_positions=6),
        style="mean_reversion",
    ),
    "defensive": Genome(
        entry=(
            PriceVsMA(ma="sma", window=200, side="above"),
            ATRPct(window=14, threshold=0.025, side="below"),
        ),
        exits=Exits(opposite_signal=True, trailing=PctTrailing(pct=0.1)),
        sizing=VolTarget(target=0.1, window=20, max_positions=6),
        style="defensive",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ArenaGenome:
    """A genome the arena may trade, with the persona-facing facts of it."""

    genome: Genome
    fitness: float
    source: str  # "champion", "probation" or "bootstrap:<name>"

    @property
    def probation(self) -> bool:
        """Whether the genome trades on a probation allocation."""
        return self.source == "probation"

    def candidate(self) -> GenomeCandidate:
        """Return the :class:`GenomeCandidate` the personas select from."""
        return GenomeCandidate(
            genome_id=self.genome.id,
            style=self.genome.style,
            regimes=tuple(self.genome.regimes),
            fitness=self.fitness,
            probation=self.probation,
            bootstrap=self.source.startswith("bootstrap:"),
        )


def bootstrap_genomes() -> list[ArenaGenome]:
    """Return the bootstrap set (see the module docstring), ordered by name."""
    return [
        ArenaGenome(genome=genome, fitness=BOOTSTRAP_FITNESS, source=f"bootstrap:{name}")
        for name, genome in sorted(BOOTSTRAP_GENOMES.items())
    ]


def _pool_genomes(gene_pool: str | Path) -> tuple[dict[str, list[ArenaGenome]], set[str]]:
    """Read the pool once: its champion and probation genomes (paused ones left out) and the
    ids it took out of trading (demoted, retired or paused).

    A missing file means nothing is promoted yet (the file is not created).
    """
    trading: dict[str, list[ArenaGenome]] = {"champion": [], "probation": []}
    barred: set[str] = set()
    path = Path(gene_pool)
    if not path.exists():
        return trading, barred
    from evolution.store import GenePoolStore

    with GenePoolStore(path) as store:
        for row in store.list_genomes():
            genome_id, status = str(row["genome_id"]), str(row["status"])
            if row.get("paused") or status in ("demoted", "retired"):
                barred.add(genome_id)
                continue
            if status not in trading:
                continue
            stored = store.genome(genome_id)
            if stored is None:
                continue
            score = row.get("last_score")
            fitness = float(score) if score is not None else BOOTSTRAP_FITNESS
            genome = Genome.from_json(str(stored["genome_json"]))
            trading[status].append(ArenaGenome(genome=genome, fitness=fitness, source=status))
    return trading, barred


def champion_genomes(gene_pool: str | Path, status: str = "champion") -> list[ArenaGenome]:
    """Return the gene pool's genomes of ``status`` (``champion`` or ``probation``), by id.

    Paused genomes do not trade and are left out. A missing file means nothing is promoted yet
    (the file is not created).
    """
    return _pool_genomes(gene_pool)[0][status]


def arena_genomes(home: LabHome) -> list[ArenaGenome]:
    """Return what ``home``'s arena may trade: its champions, the bootstrap set and its genomes
    on probation, paused ones left out.

    A persona trades the bootstrap genomes of its styles only on a day no champion is eligible
    for it (:func:`arena.plan.plan_day`): a pool whose champions are all of the conservative
    styles leaves the aggressive persona its bootstrap genomes rather than cash. A bootstrap
    genome the pool demoted, retired or a user paused does not come back.
    """
    trading, barred = _pool_genomes(home.gene_pool_db)
    # A bootstrap genome the pool holds trades under its pool status (once).
    held = barred | {item.genome.id for items in trading.values() for item in items}
    bootstrap = [item for item in bootstrap_genomes() if item.genome.id not in held]
    return trading["champion"] + bootstrap + trading["probation"]
