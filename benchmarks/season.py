"""The closed loop's research validity and speed over seasons (the suite's check, long version).

What it measures, per seed of a driftless synthetic market with a planted breakout edge
(``edge_strength`` E; ``edge_until`` the break for the decaying market, none for its stable twin):

1. **Decaying edge**: the pool evolves as of ``pre`` trading days before the break; its best
   genome (not over-fit) is set up as a champion with the expectation the gate would store (its
   backtest's mean and volatility, the CUSUM threshold calibrated from its own backtest returns).
   The arena then trades ``pre + horizon`` days with the loop closed; the check is whether the
   champion is demoted within ``horizon`` trading days after the break.
2. **Stable edge**: the same on the twin market without the break: a demotion is a false one.
3. **Closed against open loop**: the decaying season again with feedback switched off (the champion
   is never demoted); the synthesis account's final equity, closed minus open.
4. **Driftless market**: a season with weekly evolution (5 generations), the real gate and a
   short paper stage (``paper_days`` 5, so promotion is reachable in the season) on markets with
   no edge: how many seeds end with a champion. The control: the same seasons with a gate that
   ignores the number of trials and the trade count (noise then reaches champion).
5. **Speed**: seconds per arena day and per weekly evolution of a ``--weeks`` season, loop on.

The champion is set up rather than promoted through the paper stage so that every seed measures
the demotion rule on a genome that exploits the edge; the promotion path is tested on its own
(``tests/arena/test_loop.py``). Run: ``python benchmarks/season.py [--seeds 10] [--quick]``;
the last line is ``key=value`` figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alphaloop.home import LabHome  # noqa: E402
from arena.cycle import trading_days  # noqa: E402
from arena.ledger import Ledger  # noqa: E402
from arena.personas import ArenaConfig  # noqa: E402
from arena.season import (  # noqa: E402
    LocalAccounts,
    closed_loop,
    load_arena_data,
    replay_season,
    weekly_evolution,
)
from evolution.engine import EvolutionConfig  # noqa: E402
from evolution.gate import GateConfig  # noqa: E402
from evolution.lifecycle import PromotionConfig, calibrate  # noqa: E402
from evolution.refine import RefineConfig  # noqa: E402
from evolution.session import EvolutionSession, SessionConfig, _returns  # noqa: E402
from evolution.store import GenePoolStore, TransitionRecord  # noqa: E402

SETUP_ACTOR = "season-validity-setup"
# The statuses a genome is set up as champion from, in lifecycle order.
_SET_UP_FROM = ("alive", "candidate", "probation")
# The least fitness score (0-100) of the genome set up as champion.
MIN_CHAMPION_SCORE = 50.0


def _daily_sharpe(evaluation: Any) -> float:
    values = np.asarray(_returns(evaluation), dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2 or not values.std(ddof=1) > 0:
        return 0.0
    return float(values.mean() / values.std(ddof=1))


class NoChampion(RuntimeError):
    """The seed's evolution left no living genome: there is no champion to demote."""


@dataclass(frozen=True, slots=True)
class Market:
    seed: int
    assets: int = 6
    edge_strength: float = 12.0
    start: str = "2021-01-01"
    end: str = "2024-06-28"

    def spec(self, *, edge: bool = True, edge_until: str | None = None) -> str:
        parts = [
            f"seed={self.seed}", f"assets={self.assets}", f"start={self.start}",
            f"end={self.end}", "drift=0",
        ]  # fmt: skip
        if edge:
            parts += ["edge=breakout", f"edge_strength={self.edge_strength:g}"]
            if edge_until:
                parts.append(f"edge_until={edge_until}")
        return "synthetic:" + ",".join(parts)


def _evolution_config() -> SessionConfig:
    return SessionConfig(
        evolution=EvolutionConfig(population=16, immigrants=2), refine=RefineConfig(top=1, trials=4)
    )


def set_up_champion(home: LabHome, data: Any, as_of: date, seed: int) -> str:
    """Evolve as of ``as_of`` and make the best genome a champion with its gate expectation."""
    config = _evolution_config()
    session = EvolutionSession(
        home=home, panel=data.daily, data_spec=data.spec, as_of=as_of.isoformat(), seed=seed,
        config=config, workers=0, track=False,
    )  # fmt: skip
    try:
        session.run(5)
        # The champion that exploits a breakout edge trades in the accounts that prefer the
        # trend and breakout styles (aggressive, and synthesis through the debate); it is the
        # living genome of those styles, not over-fit and in the upper half of the pool's
        # fitness, whose backtest exploits the edge most: the highest daily Sharpe ratio of
        # its backtest returns (what the gate's deflated Sharpe ranks on). A genome the
        # session's own gate passed (candidate or on probation) qualifies too.
        living = {row["genome_id"]: row["status"] for row in session.store.living()}
        alive = sorted(
            (
                e
                for gid, e in session.evaluations.items()
                if living.get(gid) in _SET_UP_FROM
                and not e.fitness.overfit
                and e.score >= MIN_CHAMPION_SCORE
            ),
            key=lambda e: (-_daily_sharpe(e), e.genome_id),
        )
        preferred = [e for e in alive if session.genome(e.genome_id).style in ("trend", "breakout")]
        if not alive:
            raise NoChampion(f"seed {seed}: evolution left no living genome to set up")
        # Without a living trend or breakout genome, the best of any style (it then trades
        # in the accounts that prefer its style only).
        best = (preferred or alive)[0]
        expectation = calibrate(best.genome_id, _returns(best), config.promotion)
    finally:
        session.close()
    gid = best.genome_id
    moves = [("alive", "candidate"), ("candidate", "probation"), ("probation", "champion")]
    moves = moves[_SET_UP_FROM.index(living[gid]) :]
    with GenePoolStore(home.gene_pool_db) as store:
        store.transition(
            *(
                TransitionRecord(
                    genome_id=gid, from_status=a, to_status=b, actor=SETUP_ACTOR,
                    reason="set up as champion: the claim under test is its demotion",
                    figures=expectation.as_dict(),
                )
                for a, b in moves
            )
        )  # fmt: skip
    return gid


def _synthesis_equity(home: LabHome) -> float:
    with Ledger(home.ledger_db) as ledger:
        history = ledger.equity_history("synthesis")
        digits = ledger.money_digits("synthesis")
    return history[-1][1].equity / 10.0**digits


def demotion_run(
    root: Path, market: Market, *, decaying: bool, closed: bool, pre: int, horizon: int,
    promotion: PromotionConfig | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One seed's season around the break (see the module docstring); returns its figures."""
    probe = load_arena_data(market.spec(), LabHome(root / "probe"))
    days = trading_days(probe.daily)
    anchor = len(days) - 1 - horizon - 5
    break_day = days[anchor]
    spec = market.spec(edge_until=break_day.isoformat() if decaying else None)
    home = LabHome(root / f"{'decay' if decaying else 'stable'}-{'closed' if closed else 'open'}")
    home.ensure()
    data = load_arena_data(spec, home)
    start, end = days[anchor - pre + 1], days[anchor + horizon]
    try:
        gid = set_up_champion(home, data, days[anchor - pre], market.seed)
    except NoChampion as exc:
        return {"seed": market.seed, "decaying": decaying, "closed": closed, "skipped": str(exc)}
    config = ArenaConfig()
    accounts = LocalAccounts(home, config, data.rules())
    started = time.perf_counter()
    try:
        result = replay_season(
            accounts, data, start, end, home=home, config=config, write_report=False,
            close=closed_loop(home, data, promotion=promotion) if closed else None,
        )  # fmt: skip
    finally:
        accounts.close()
    seconds = time.perf_counter() - started
    with GenePoolStore(home.gene_pool_db) as store:
        moves = [m for m in store.transitions(gid) if m["to_status"] == "demoted"]
        status = store.status_of(gid)
    demoted_on = moves[0]["day"] if moves else None
    after = None
    if demoted_on is not None:
        after = sum(1 for d in days if break_day < d <= date.fromisoformat(demoted_on))
    return {
        "seed": market.seed,
        "genome": gid,
        "break": break_day.isoformat(),
        "decaying": decaying,
        "closed": closed,
        "demoted_on": demoted_on,
        "days_after_break": after,
        "status": status[0] if status else None,
        "reason": moves[0]["reason"] if moves else None,
        "synthesis_equity": _synthesis_equity(home),
        "arena_days": result["days"],
        "seconds": seconds,
    }


def champion_season(
    root: Path,
    market: Market,
    *,
    edge: bool,
    weeks: int,
    paper_days: int = 5,
    lax_gate: bool = False,
) -> dict[str, Any]:
    """A season with weekly evolution and the real gate; return the champions it ended with."""
    spec = market.spec(edge=edge)
    name = f"season-{'edge' if edge else 'none'}-{'lax' if lax_gate else 'gate'}"
    home = LabHome(root / name).ensure()
    data = load_arena_data(spec, home)
    days = trading_days(data.daily)
    end = days[-6]
    start = days[-6 - 5 * weeks + 1]
    update: dict[str, Any] = {"promotion": PromotionConfig(paper_days=paper_days)}
    if lax_gate:
        # The control: a gate that ignores the number of trials and the trade count.
        update["gate"] = GateConfig(
            min_deflated_sharpe=0.0,
            min_trades=10,
            min_profit_factor_in_sample=1.0,
            min_profit_factor_out_of_sample=1.0,
        )
    config = _evolution_config().model_copy(update=update)
    evolve = weekly_evolution(home, data, seed=market.seed, config=config)
    evolve(days[days.index(start) - 1])
    arena = ArenaConfig()
    accounts = LocalAccounts(home, arena, data.rules())
    try:
        result = replay_season(
            accounts, data, start, end, home=home, config=arena, write_report=False,
            evolve=evolve, close=closed_loop(home, data, promotion=config.promotion),
        )  # fmt: skip
    finally:
        accounts.close()
    with GenePoolStore(home.gene_pool_db) as store:
        champions = [g["genome_id"] for g in store.list_genomes("champion")]
        passed = len(store.transitions()) and sum(
            1 for m in store.transitions() if m["to_status"] == "candidate"
        )
    return {
        "seed": market.seed,
        "edge": edge,
        "lax_gate": lax_gate,
        "champions": len(champions),
        "passed_gate": passed,
        "promoted": len(result["loop"]["promoted"]),
    }


def speed(root: Path, weeks: int) -> dict[str, float]:
    """Seconds per arena day and per weekly evolution of a season on the default market."""
    home = LabHome(root / "speed").ensure()
    data = load_arena_data("synthetic", home)
    days = trading_days(data.daily)
    start, end = days[-5 * weeks - 5], days[-6]
    evolve_inner = weekly_evolution(home, data, seed=0)
    evolution_seconds: list[float] = []

    def evolve(day: date) -> dict[str, Any]:
        began = time.perf_counter()
        out = evolve_inner(day)
        evolution_seconds.append(time.perf_counter() - began)
        return out

    arena = ArenaConfig()
    accounts = LocalAccounts(home, arena, data.rules())
    began = time.perf_counter()
    try:
        result = replay_season(
            accounts, data, start, end, home=home, config=arena, write_report=True,
            evolve=evolve, close=closed_loop(home, data),
        )  # fmt: skip
    finally:
        accounts.close()
    total = time.perf_counter() - began
    return {
        "arena_days": float(result["days"]),
        "seconds_per_arena_day": (total - sum(evolution_seconds)) / result["days"],
        "seconds_per_weekly_evolution": sum(evolution_seconds) / max(1, len(evolution_seconds)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--edge-strength", type=float, default=12.0)
    parser.add_argument("--weeks", type=int, default=12, help="weeks of the speed season")
    parser.add_argument("--quick", action="store_true", help="3 seeds, a 2-week speed season")
    args = parser.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    weeks = 2 if args.quick else args.weeks
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seed in range(seeds):
            market = Market(seed=300 + seed, edge_strength=args.edge_strength)
            for decaying, closed in ((True, True), (True, False), (False, True)):
                row = demotion_run(
                    root / f"s{seed}", market, decaying=decaying, closed=closed, pre=10,
                    horizon=20,
                )  # fmt: skip
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
            for lax in (False, True):
                season = champion_season(
                    root / f"c{seed}", market, edge=False, weeks=3, lax_gate=lax
                )
                rows.append(season)
                print(json.dumps(season), file=sys.stderr)
        figures = speed(root, weeks)
    runs = [r for r in rows if "decaying" in r and "skipped" not in r]
    skipped = sorted({r["seed"] for r in rows if "skipped" in r})
    decay = [r for r in runs if r["decaying"] and r["closed"]]
    opened = {r["seed"]: r for r in runs if r["decaying"] and r["closed"] is False}
    stable = [r for r in runs if r["decaying"] is False]
    caught = sum(
        1 for r in decay if r["days_after_break"] is not None and r["days_after_break"] <= 20
    )
    false = sum(1 for r in stable if r["demoted_on"] is not None)
    better = [
        r["synthesis_equity"] - opened[r["seed"]]["synthesis_equity"]
        for r in decay
        if r["seed"] in opened
    ]
    none = [r for r in rows if r.get("lax_gate") is False]
    lax = [r for r in rows if r.get("lax_gate") is True]
    out = {
        "seeds": seeds,
        "seeds_without_champion": len(skipped),
        "decay_demoted_within_20": f"{caught}/{len(decay)}",
        "stable_false_demotions": f"{false}/{len(stable)}",
        "closed_beats_open": f"{sum(d > 0 for d in better)}/{len(better)}",
        "closed_minus_open_mean": sum(better) / len(better) if better else math.nan,
        "driftless_with_champion": f"{sum(r['champions'] > 0 for r in none)}/{len(none)}",
        "driftless_lax_gate_with_champion": f"{sum(r['champions'] > 0 for r in lax)}/{len(lax)}",
        **figures,
    }
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
