"""Research validity on the synthetic market: no edge -> nothing promoted; a planted edge is found.

Sizes (kept under a minute together on 2 cores):

* no edge: 10 seeds of driftless markets (``drift=0``, 8 assets, 3 years), 10 generations of
  16 genomes each with Optuna refinement and US-equity costs plus 5 bp slippage per fill;
  at least 9 of the 10 seeds must promote nothing.
* control: the same no-edge sessions with a gate that ignores the number of trials (deflated
  Sharpe threshold 0, 20 trades) promote noise in at least 5 of 10 seeds, so the first test
  cannot pass vacuously;
* planted edge: 6 seeds of driftless markets with ``edge=breakout``, 8 generations of 16; the
  best genome must score clearly positive Sharpe in BOTH windows and must owe it to the edge:
  the same genome on the twin market without the edge (same seed, same noise) scores at least
  10 points less. At least 4 of 6 seeds must pass.
"""

from __future__ import annotations

from pathlib import Path

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
from evolution.evaluate import GenomeEvaluator, truncate_to
from evolution.gate import GateConfig
from evolution.refine import RefineConfig
from evolution.session import EvolutionSession, SessionConfig
from simulators.synthetic import SyntheticSpec, generate_daily

AS_OF = "2023-12-29"
CONFIG = SessionConfig(
    evolution=EvolutionConfig(population=16, immigrants=2),
    refine=RefineConfig(top=1, trials=4),
)


def _market(seed: int, edge: str):
    spec = SyntheticSpec(
        seed=100 + seed, assets=8, start="2021-01-01", end=AS_OF, drift=0.0, edge=edge
    )
    return generate_daily(spec)


def _evolve(root: Path, panel, seed: int, generations: int, config: SessionConfig = CONFIG):
    session = EvolutionSession(
        home=LabHome(root),
        panel=panel,
        data_spec="synthetic",
        as_of=AS_OF,
        seed=seed,
        config=config,
        workers=0,
        track=False,
    )
    try:
        result = session.run(generations)
        # The best genome of the pool. (An Optuna child accepted in the last generation is
        # evaluated but never committed: no later generation stores it.)
        stored = [gid for gid in session.evaluations if session.store.genome(gid) is not None]
        best_id = max(stored, key=lambda gid: session.evaluations[gid].score)
        return result, session.evaluations[best_id], session.genome(best_id)
    finally:
        session.close()


def test_driftless_markets_promote_nothing_in_at_least_nine_of_ten_seeds(tmp_path) -> None:
    promoted_seeds = 0
    for seed in range(10):
        result, _, _ = _evolve(tmp_path / f"none{seed}", _market(seed, "none"), seed, 10)
        assert len(result["generations"]) == 10
        if sum(g["promoted"] for g in result["generations"]) > 0:
            promoted_seeds += 1
    assert promoted_seeds <= 1


def test_driftless_markets_do_promote_noise_when_the_gate_ignores_trials(tmp_path) -> None:
    """The control: without the deflated-Sharpe and trade-count rules, noise gets through."""
    lax = CONFIG.model_copy(update={"gate": GateConfig(min_deflated_sharpe=0.0, min_trades=20)})
    promoted_seeds = 0
    for seed in range(10):
        result, _, _ = _evolve(tmp_path / f"lax{seed}", _market(seed, "none"), seed, 10, lax)
        promoted_seeds += sum(g["promoted"] for g in result["generations"]) > 0
        champions = [c for c in result["champions"] if c["gate"]["passed"]]
        assert all(c["status"] == "probation" for c in champions)
    assert promoted_seeds >= 5


def test_planted_breakout_edge_is_found_and_exploited_in_most_seeds(tmp_path) -> None:
    found = 0
    for seed in range(6):
        _, best, genome = _evolve(tmp_path / f"edge{seed}", _market(seed, "breakout"), seed, 8)
        twin = GenomeEvaluator(truncate_to(_market(seed, "none"), AS_OF), window=250)
        without_edge = twin.evaluate(genome)
        sharpes = [best.windows[w].stats["sharpe"] for w in ("live", "year_ago")]
        if min(sharpes) >= 1.0 and best.score - without_edge.score >= 10.0:
            found += 1
    assert found >= 4
