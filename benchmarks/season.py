"""The closed loop's research validity and speed over seasons (the suite's check, long version).

What it measures, per seed of a driftless synthetic market with a planted breakout edge
(``edge_strength`` E; ``edge_until`` the break for the decaying market, none for its stable twin):

1. **Decaying edge**: the pool evolves as of ``pre`` trading days before the break; the living
   trend/breakout genome that exploits the edge most (the highest daily Sharpe ratio of its
   backtest returns among those not over-fit with a fitness score of at least 50; one the
   session's gate passed qualifies) is set up as a champion with the expectation the gate would
   store (its backtest's mean and volatility, the CUSUM threshold calibrated from its own
   backtest returns). The arena then trades ``pre + horizon`` days with the loop closed; the
   check is whether the champion is demoted within ``horizon`` trading days after the break.
   **The control** sets up the genome with the best fitness score instead, whatever its Sharpe
   ratio: a weak edge cannot be seen to die within 20 days (docs/lifecycle.md), so the check
   fails more often there.
2. **Stable edge**: the same on the twin market without the break: a demotion is a false one.
3. **Closed against open loop, set-up champion**: the decaying season again with feedback
   switched off (the champion is never demoted); the synthesis account's final equity, closed
   minus open.
4. **Full season, closed against open**: 12 weeks on the decaying market (the edge stops after
   week 7) with weekly evolution (5 generations), the real gate (packaged ``evolution.yaml``:
   200 trades, deflated Sharpe 0.95) and the default 20-day paper stage; closed: the loop on,
   open: ``--open-loop``. How many champions were promoted through the paper stage (a
   challenger must also beat its incumbents), how many of them and of the bootstrap stand-ins
   (judged like champions) were demoted 1 to 20 trading days after the break (and how many
   before it), and the final equity closed minus open, of the synthesis account and of the
   three accounts together. The same on the stable twin (the edge never stops): what closing
   the loop costs or earns where nothing decays, and the stand-ins it demotes there.
5. **Driftless market**: a season with weekly evolution (5 generations), the real gate and a
   short paper stage (``paper_days`` 5, so promotion is reachable in the season) on markets with
   no edge: how many seeds end with a champion. The control: the same seasons with a gate that
   ignores the number of trials and the trade count (noise then reaches champion).
6. **Speed**: seconds per arena day and per weekly evolution of a ``--weeks`` season, loop on.

The champion of 1-3 is set up rather than promoted through the paper stage so that every seed
measures the demotion rule on a genome that exploits the edge; 4 measures the whole path. Run:
``python benchmarks/season.py [--seeds 12] [--jobs 2] [--quick]``; the last line is
``key=value`` figures (per-run rows go to stderr as JSON).
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
from arena.day import LocalAccounts  # noqa: E402
from arena.ledger import Ledger  # noqa: E402
from arena.market import (  # noqa: E402
    load_arena_data,
    trading_days,
)
from arena.personas import ArenaConfig  # noqa: E402
from arena.season import closed_loop, replay_season, weekly_evolution  # noqa: E402
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


def set_up_champion(
    home: LabHome, data: Any, as_of: date, seed: int, *, pick: str = "sharpe"
) -> str:
    """Evolve as of ``as_of`` and make the genome that exploits the edge most a champion with
    its gate expectation (``pick="score"``, the control: the best fitness score instead)."""
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
            key=lambda e: (-(_daily_sharpe(e) if pick == "sharpe" else e.score), e.genome_id),
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


class _Demoted(Exception):
    """Raised after the loop closed on the day it demoted the watched genome."""

    def __init__(self, day: date) -> None:
        super().__init__(day.isoformat())
        self.day = day


def _stopping_at_demotion(close: Any, gid: str) -> Any:
    """Wrap a loop closer so that the season stops after the day it demotes ``gid``."""

    def stopping(day: date) -> Any:
        loop_day = close(day)
        if any(
            m["genome_id"] == gid and m["to"] == "demoted"
            for m in (*loop_day.recorded, *loop_day.transitions)
        ):
            raise _Demoted(day)
        return loop_day

    return stopping


def demotion_run(
    root: Path, market: Market, *, decaying: bool, closed: bool, pre: int, horizon: int,
    promotion: PromotionConfig | None = None, pick: str = "sharpe",
    stop_when_demoted: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One seed's season around the break (see the module docstring); returns its figures.

    ``stop_when_demoted``: end the season after the day the champion is demoted (the loop
    closed on it), for a caller that reads only when it was demoted: the later days cannot
    change that day's move, only the final equity (then that of the day it stopped).
    """
    probe = load_arena_data(market.spec(), LabHome(root / "probe"))
    days = trading_days(probe.daily)
    anchor = len(days) - 1 - horizon - 5
    break_day = days[anchor]
    spec = market.spec(edge_until=break_day.isoformat() if decaying else None)
    name = f"{'decay' if decaying else 'stable'}-{'closed' if closed else 'open'}-{pick}"
    home = LabHome(root / name).ensure()
    data = load_arena_data(spec, home)
    start, end = days[anchor - pre + 1], days[anchor + horizon]
    try:
        gid = set_up_champion(home, data, days[anchor - pre], market.seed, pick=pick)
    except NoChampion as exc:
        return {"seed": market.seed, "decaying": decaying, "closed": closed, "skipped": str(exc)}
    config = ArenaConfig()
    accounts = LocalAccounts(home, config, data.rules())
    close = closed_loop(home, data, promotion=promotion) if closed else None
    if close is not None and stop_when_demoted:
        close = _stopping_at_demotion(close, gid)
    started = time.perf_counter()
    try:
        result = replay_season(
            accounts, data, start, end, home=home, config=config, write_report=False,
            close=close,
        )  # fmt: skip
    except _Demoted as stop:
        result = {"days": sum(1 for d in days if start <= d <= stop.day)}
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


def _evolving_season(
    home: LabHome, data: Any, config: SessionConfig, seed: int, days: list[date],
    start: date, end: date, *, closed: bool,
) -> dict[str, Any]:  # fmt: skip
    """Evolve as of the day before ``start``, then replay ``start..end`` evolving weekly; the
    loop closed on ``config.promotion`` or left open."""
    evolve = weekly_evolution(home, data, seed=seed, config=config)
    evolve(days[days.index(start) - 1])
    arena = ArenaConfig()
    accounts = LocalAccounts(home, arena, data.rules())
    try:
        return replay_season(
            accounts, data, start, end, home=home, config=arena, write_report=False,
            evolve=evolve,
            close=closed_loop(home, data, promotion=config.promotion) if closed else None,
        )  # fmt: skip
    finally:
        accounts.close()


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
    result = _evolving_season(home, data, config, market.seed, days, start, end, closed=True)
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


def _equities(home: LabHome) -> dict[str, float]:
    out = {}
    with Ledger(home.ledger_db) as ledger:
        for account in ("aggressive", "conservative", "synthesis"):
            history = ledger.equity_history(account)
            out[account] = history[-1][1].equity / 10.0 ** ledger.money_digits(account)
    return out


def full_season(
    root: Path, market: Market, *, closed: bool, weeks: int = 12, break_week: int = 7,
    decaying: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """A season on the decaying market with weekly evolution, the real gate and paper stage.

    The edge stops paying after ``break_week`` weeks of the ``weeks``-week season (with
    ``decaying=False`` it never stops: the stable twin, days still counted from that day).
    Closed: the loop on (paper days, promotion, demotion). Open: the same season with the loop
    off (``arena replay --open-loop``). Returns every account's final equity and the moves.
    """
    probe = load_arena_data(market.spec(), LabHome(root / "probe"))
    days = trading_days(probe.daily)
    end = days[-6]
    start = days[-6 - 5 * weeks + 1]
    break_day = days[days.index(start) + 5 * break_week]
    name = f"full-{'decay' if decaying else 'stable'}-{'closed' if closed else 'open'}"
    home = LabHome(root / name).ensure()
    until = break_day.isoformat() if decaying else None
    data = load_arena_data(market.spec(edge_until=until), home)
    config = _evolution_config()
    result = _evolving_season(home, data, config, market.seed, days, start, end, closed=closed)
    loop = result.get("loop") or {"promoted": [], "demoted": []}

    def after(day: str) -> int:
        # Trading days from the break to ``day`` (negative: before the break).
        moved = date.fromisoformat(day)
        if moved > break_day:
            return sum(1 for d in days if break_day < d <= moved)
        return -sum(1 for d in days if moved < d <= break_day)

    promoted = {m["genome_id"]: m["day"] for m in loop["promoted"]}
    champions = [
        {"genome": gid, "promoted": day, "demoted": m["day"], "days_after_break": after(m["day"])}
        for gid, day in sorted(promoted.items())
        for m in loop["demoted"]
        if m["genome_id"] == gid
    ]
    never = [
        {"genome": gid, "promoted": day, "demoted": None, "days_after_break": None}
        for gid, day in sorted(promoted.items())
        if gid not in {c["genome"] for c in champions}
    ]
    # The bootstrap stand-ins the loop demoted (incumbents judged like champions).
    stand_ins = [
        {"genome": m["genome_id"], "demoted": m["day"], "days_after_break": after(m["day"])}
        for m in loop["demoted"]
        if str(m.get("reason", "")).startswith("bootstrap stand-in")
    ]
    return {
        "seed": market.seed,
        "full_season": True,
        "stand_ins_demoted": stand_ins,
        "decaying": decaying,
        "closed": closed,
        "break": break_day.isoformat(),
        "equity": _equities(home),
        "champions": champions + never,
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


def seed_rows(root: Path, seed: int, edge_strength: float) -> list[dict[str, Any]]:
    """Every run of one seed (see the module docstring), as rows of figures."""
    rows: list[dict[str, Any]] = []
    market = Market(seed=seed, edge_strength=edge_strength)
    base = root / f"s{seed}"
    runs = [(True, True, "sharpe"), (True, False, "sharpe"), (False, True, "sharpe")]
    runs.append((True, True, "score"))  # the control: a champion picked by fitness score
    for decaying, closed, pick in runs:
        row = demotion_run(
            base, market, decaying=decaying, closed=closed, pre=10, horizon=20, pick=pick
        )
        rows.append(dict(row, pick=pick))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for decaying in (True, False):
        for closed in (True, False):
            rows.append(full_season(root / f"f{seed}", market, closed=closed, decaying=decaying))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for lax in (False, True):
        rows.append(champion_season(root / f"c{seed}", market, edge=False, weeks=3, lax_gate=lax))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _seed_job(job: tuple[str, int, float]) -> list[dict[str, Any]]:
    root, seed, edge_strength = job
    return seed_rows(Path(root), seed, edge_strength)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the benchmark's figures from the rows of every seed."""
    demotions = [
        r for r in rows if "decaying" in r and "skipped" not in r and not r.get("full_season")
    ]
    skipped = sorted({r["seed"] for r in rows if "skipped" in r and r.get("pick") == "sharpe"})
    decay = [r for r in demotions if r["decaying"] and r["closed"] and r["pick"] == "sharpe"]
    control = [r for r in demotions if r["decaying"] and r["closed"] and r["pick"] == "score"]
    opened = {r["seed"]: r for r in demotions if r["decaying"] and r["closed"] is False}
    stable = [r for r in demotions if r["decaying"] is False]

    def caught(runs: list[dict[str, Any]]) -> int:
        return sum(
            1 for r in runs if r["days_after_break"] is not None and 0 < r["days_after_break"] <= 20
        )

    false = sum(1 for r in stable if r["demoted_on"] is not None)
    better = [
        r["synthesis_equity"] - opened[r["seed"]]["synthesis_equity"]
        for r in decay
        if r["seed"] in opened
    ]
    full = {(r["seed"], r["closed"]): r for r in rows if r.get("full_season") and r["decaying"]}
    seeds = sorted({seed for seed, _ in full})
    synthesis = [
        full[(s, True)]["equity"]["synthesis"] - full[(s, False)]["equity"]["synthesis"]
        for s in seeds
    ]
    total = [
        sum(full[(s, True)]["equity"].values()) - sum(full[(s, False)]["equity"].values())
        for s in seeds
    ]
    promoted = [c for s in seeds for c in full[(s, True)]["champions"]]
    after = [c for c in promoted if c["days_after_break"] is not None]
    stand_ins = [c for s in seeds for c in full[(s, True)].get("stand_ins_demoted", ())]
    # The stable twin (the edge never stops): what closing the loop costs where nothing decays.
    twin = {(r["seed"], r["closed"]): r for r in rows if r.get("full_season") and not r["decaying"]}
    twin_seeds = sorted({seed for seed, _ in twin})
    twin_synthesis = [
        twin[(s, True)]["equity"]["synthesis"] - twin[(s, False)]["equity"]["synthesis"]
        for s in twin_seeds
    ]
    twin_stand_ins = sum(len(twin[(s, True)].get("stand_ins_demoted", ())) for s in twin_seeds)
    twin_champions_demoted = sum(
        1 for s in twin_seeds for c in twin[(s, True)]["champions"] if c["demoted"] is not None
    )
    none = [r for r in rows if r.get("lax_gate") is False]
    lax = [r for r in rows if r.get("lax_gate") is True]
    return {
        "seeds": len({r["seed"] for r in rows}),
        "seeds_without_champion": len(skipped),
        "decay_demoted_within_20": f"{caught(decay)}/{len(decay)}",
        "decay_days_after_break": sorted(
            r["days_after_break"] for r in decay if r["days_after_break"] is not None
        ),
        "control_by_score_demoted_within_20": f"{caught(control)}/{len(control)}",
        "stable_false_demotions": f"{false}/{len(stable)}",
        "set_up_closed_beats_open": f"{sum(d > 0 for d in better)}/{len(better)}",
        "set_up_closed_minus_open_mean": sum(better) / len(better) if better else math.nan,
        "full_seeds_with_a_promotion": f"{sum(1 for s in seeds if full[(s, True)]['champions'])}"
        f"/{len(seeds)}",
        "full_champions_promoted": len(promoted),
        "full_demoted_1_to_20_days_after_break": sum(
            1 for c in after if 0 < c["days_after_break"] <= 20
        ),
        "full_demoted_before_break": sum(1 for c in after if c["days_after_break"] <= 0),
        "full_stand_ins_demoted_1_to_20_days_after_break": sum(
            1 for c in stand_ins if 0 < c["days_after_break"] <= 20
        ),
        "full_stand_ins_demoted_before_break": sum(
            1 for c in stand_ins if c["days_after_break"] <= 0
        ),
        "full_synthesis_closed_beats_open": f"{sum(d > 0 for d in synthesis)}/{len(synthesis)}"
        f" (ties {sum(d == 0 for d in synthesis)})",
        "full_synthesis_closed_minus_open_mean": (
            sum(synthesis) / len(synthesis) if synthesis else math.nan
        ),
        "full_total_closed_beats_open": f"{sum(d > 0 for d in total)}/{len(total)}"
        f" (ties {sum(d == 0 for d in total)})",
        "full_total_closed_minus_open_mean": sum(total) / len(total) if total else math.nan,
        "stable_full_synthesis_closed_beats_open": f"{sum(d > 0 for d in twin_synthesis)}"
        f"/{len(twin_synthesis)} (ties {sum(d == 0 for d in twin_synthesis)})",
        "stable_full_synthesis_closed_minus_open_mean": (
            sum(twin_synthesis) / len(twin_synthesis) if twin_synthesis else math.nan
        ),
        "stable_full_stand_ins_demoted": twin_stand_ins,
        "stable_full_champions_demoted": twin_champions_demoted,
        "driftless_with_champion": f"{sum(r['champions'] > 0 for r in none)}/{len(none)}",
        "driftless_lax_gate_with_champion": f"{sum(r['champions'] > 0 for r in lax)}/{len(lax)}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--edge-strength", type=float, default=12.0)
    parser.add_argument("--weeks", type=int, default=12, help="weeks of the speed season")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    parser.add_argument("--quick", action="store_true", help="3 seeds, a 2-week speed season")
    args = parser.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    weeks = 2 if args.quick else args.weeks
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = [(str(root), 300 + seed, args.edge_strength) for seed in range(seeds)]
        if args.jobs > 1:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                per_seed = pool.map(_seed_job, jobs)
        else:
            per_seed = [_seed_job(job) for job in jobs]
        rows = [row for part in per_seed for row in part]
        figures = speed(root, weeks)
    out = {**summarise(rows), **figures}
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
