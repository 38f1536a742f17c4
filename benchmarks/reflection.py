"""The experience memory and the adjustments against the same account without them.

Issue 15 item 7. Per seed, one season of arena days is replayed twice (three times with
``--decompose``) on the same data
with the same genomes (an empty gene pool: every arena trades the packaged bootstrap genomes,
so all arms trade the same pool; no evolution, the loop left open, so nothing but the
reflection layer differs):

* **on**: the packaged ``arena.yaml`` (the experience memory's rule in the judge, the daily
  review's adjustments applied to the next days' plans);
* **off**: ``adjustments.enabled: false`` and the memory rule out of reach:
  ``debate.memory_k`` and ``debate.memory_min_days`` 1000 (the rule needs that many similar
  past days on which the proposal's styles traded; a season of fewer than 1000 days never has
  them, and the 1000 recalled days are then every past day, so the contrast the rule acts on
  is 0 by construction; the quant view still cites it, which changes nothing). The judge's
  weekly persona weights (issue 15 item 3) learn in every arm;
* **memory** (the decomposition): the memory on, the adjustments off.

Markets: 6 assets, ``drift=1`` (the bull regime is a visible uptrend), a planted breakout edge
of strength 12. **Regime-dependent** (the claim): ``edge_regime=bull`` (the edge pays on bull
days, loses as much on high_vol days, nothing otherwise; ``docs/synthetic_market.md``).
**Control**: the plain ``edge=breakout`` market of the same seed (the edge pays in every
regime), where the memory has nothing regime-specific to learn: the arms should be within
noise. The season (``--days``, 120) is the latest window ending before the data's last week
that holds at least ``--need`` (10) bull and 10 high_vol days by the regime market's true
labels (:func:`season_window`; its control market uses the same window); a seed whose market
has no such window is skipped for the next one. The rule reads the labels only, never an
outcome, and is the same for every seed. (The first run of this benchmark took the last 90
days of every seed: 3 of its 6 seasons held no high_vol day and 3 no bull day.)

Figures: the synthesis account's final equity, on minus off (and memory minus off with
``--decompose``), per seed (paired), the mean and standard error, and how many seeds it
wins; the days on which the memory rule changed the synthesis verdict, and the adjustments
made. Run: ``python benchmarks/reflection.py [--seeds 6] [--days 120] [--decompose]
[--quick]`` (``--quick``: 2 seeds, 60-day seasons holding 5 days of each regime); per-run
rows go to stderr as JSON (with the figures so far after each seed), the last line is
``memory_wins=<k>/<n> mean_gain=<x> control_wins=<k>/<n> control_mean_gain=<y>`` followed
by the other figures.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from season import _equities  # noqa: E402  (benchmarks/season.py: every account's equity)

from alphaloop.home import LabHome  # noqa: E402
from arena.day import LocalAccounts  # noqa: E402
from arena.ledger import Ledger  # noqa: E402
from arena.market import load_arena_data, trading_days  # noqa: E402
from arena.personas import ArenaConfig, load_arena_config  # noqa: E402
from arena.season import replay_season, season_days  # noqa: E402
from simulators.synthetic import SyntheticSpec, regime_path  # noqa: E402

# The memory rule out of reach (see the module docstring): it needs this many similar days.
MEMORY_OUT_OF_REACH = 1000
# The judge's rule text when the memory rule resized a verdict (arena.debate._memory_rule).
_MEMORY_RULE = re.compile(r"memory: \d+ similar days returned")
ADJUSTMENTS_OFF: dict[str, Any] = {"adjustments": {"enabled": False}}
MEMORY_OFF: dict[str, Any] = {
    "debate": {"memory_k": MEMORY_OUT_OF_REACH, "memory_min_days": MEMORY_OUT_OF_REACH}
}
# The arms: the packaged config (both on), the memory alone, both off.
ARMS: dict[str, dict[str, Any] | None] = {
    "on": None,
    "memory": ADJUSTMENTS_OFF,
    "off": {**ADJUSTMENTS_OFF, **MEMORY_OFF},
}


def market_spec(seed: int, *, regime: bool, edge_strength: float = 12.0) -> str:
    """The season's market: the regime-dependent edge, or (control) the plain edge."""
    parts = [
        f"seed={seed}", "assets=6", "start=2021-01-01", "end=2024-06-28", "drift=1",
        "edge=breakout", f"edge_strength={edge_strength:g}",
    ]  # fmt: skip
    if regime:
        parts.append("edge_regime=bull")
    return "synthetic:" + ",".join(parts)


def season_window(
    spec: str, calendar: list[Any], days: int, *, need: int
) -> tuple[int, int] | None:
    """Return the ``(start, end)`` calendar indices of the season: the latest ``days``-day
    window ending before the data's last week that holds at least ``need`` days of the edge's
    regime (bull) and ``need`` high_vol days (the true labels of the regime market of the
    seed; its control market uses the same window). ``None`` when the market has none: the
    benchmark then skips the seed and takes the next one.

    The rule looks at the market's regime labels only, never at any outcome, and is the same
    for every seed: a season without both regimes cannot test a memory of the regime's
    effect (the first run of this benchmark held none in 3 of its 6 seasons).
    """
    labels = regime_path(SyntheticSpec.from_spec_string(spec))
    sessions = (labels.index.tz_localize(None) - pd.Timedelta(minutes=1)).date
    label_of = {d: str(r) for d, r in zip(sessions, labels, strict=True)}
    last = len(calendar) - 6
    for end in range(last, days - 2, -1):
        window = [label_of.get(d) for d in calendar[end - days + 1 : end + 1]]
        if window.count("bull") >= need and window.count("high_vol") >= need:
            return end - days + 1, end
    return None


def _memory_shrinks(home: LabHome) -> int:
    """Days on which the memory rule resized the synthesis verdict (its rule text says so)."""
    with Ledger(home.ledger_db) as ledger:
        chains = ledger.decisions("synthesis").values()
        return sum(1 for chain in chains if _MEMORY_RULE.search(json.dumps(chain)))


def season_run(
    root: Path,
    seed: int,
    *,
    regime: bool,
    arm: str,
    days: int,
    edge_strength: float,
    need: int = 10,
) -> dict[str, Any]:
    """One seed's season on one market with the reflection layer of ``arm`` (:data:`ARMS`)."""
    spec = market_spec(seed, regime=regime, edge_strength=edge_strength)
    name = f"s{seed}-{'regime' if regime else 'plain'}-{arm}"
    home = LabHome(root / name).ensure()
    data = load_arena_data(spec, home)
    calendar = trading_days(data.daily)
    window = season_window(
        market_spec(seed, regime=True, edge_strength=edge_strength), calendar, days, need=need
    )
    if window is None:
        raise ValueError(f"seed {seed}: no {days}-day window with both regimes")
    start, end = calendar[window[0]], calendar[window[1]]
    config: ArenaConfig = load_arena_config(overrides=ARMS[arm])
    made = 0

    def on_day(summary: dict[str, Any]) -> None:
        nonlocal made
        made += len((summary.get("adjustments") or {}).get("made", ()))

    accounts = LocalAccounts(home, config, data.rules())
    began = time.perf_counter()
    try:
        replay_season(
            accounts, data, start, end, home=home, config=config, write_report=False,
            on_day=on_day,
        )  # fmt: skip
    finally:
        accounts.close()
    seconds = time.perf_counter() - began
    labels = regime_path(SyntheticSpec.from_spec_string(spec))
    season = {d.isoformat() for d in season_days(data, start, end)}
    sessions = (labels.index.tz_localize(None) - pd.Timedelta(minutes=1)).date
    regimes = Counter(
        str(r) for d, r in zip(sessions, labels, strict=True) if d.isoformat() in season
    )
    equity = _equities(home)
    return {
        "seed": seed,
        "market": "regime" if regime else "plain",
        "reflection": arm,
        "synthesis_equity": equity["synthesis"],
        "equity": equity,
        "memory_shrinks": _memory_shrinks(home),
        "adjustments_made": made,
        "regime_days": dict(sorted(regimes.items())),
        "season": [start.isoformat(), end.isoformat()],
        "seconds": round(seconds, 1),
    }


def _paired(rows: list[dict[str, Any]], market: str, arm: str = "on") -> list[float]:
    """Per seed, the synthesis account's final equity of ``arm`` minus the off arm's."""
    by = {(r["seed"], r["reflection"]): r for r in rows if r["market"] == market}
    seeds = sorted({seed for seed, _ in by})
    return [
        by[(s, arm)]["synthesis_equity"] - by[(s, "off")]["synthesis_equity"]
        for s in seeds
        if (s, arm) in by and (s, "off") in by
    ]


def _mean_se(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The benchmark's figures from every run's row."""
    gains, control = _paired(rows, "regime"), _paired(rows, "plain")
    mean, se = _mean_se(gains)
    control_mean, control_se = _mean_se(control)
    on = [r for r in rows if r["reflection"] == "on"]
    alone, alone_control = _paired(rows, "regime", "memory"), _paired(rows, "plain", "memory")
    return {
        "memory_wins": f"{sum(g > 0 for g in gains)}/{len(gains)}",
        "mean_gain": mean,
        "control_wins": f"{sum(g > 0 for g in control)}/{len(control)}",
        "control_mean_gain": control_mean,
        "mean_gain_se": se,
        "control_mean_gain_se": control_se,
        "ties": sum(g == 0 for g in gains),
        "control_ties": sum(g == 0 for g in control),
        "gains": [round(g, 2) for g in gains],
        "control_gains": [round(g, 2) for g in control],
        "memory_alone_wins": f"{sum(g > 0 for g in alone)}/{len(alone)}",
        "memory_alone_mean_gain": _mean_se(alone)[0],
        "memory_alone_gains": [round(g, 2) for g in alone],
        "memory_alone_control_wins": f"{sum(g > 0 for g in alone_control)}/{len(alone_control)}",
        "memory_alone_control_mean_gain": _mean_se(alone_control)[0],
        "memory_alone_control_gains": [round(g, 2) for g in alone_control],
        "memory_shrink_days_on": sum(r["memory_shrinks"] for r in on if r["market"] == "regime"),
        "memory_shrink_days_memory_alone": sum(
            r["memory_shrinks"] for r in rows if r["reflection"] == "memory"
        ),
        "memory_shrink_days_off": sum(
            r["memory_shrinks"] for r in rows if r["reflection"] == "off"
        ),
        "adjustments_made_on": sum(r["adjustments_made"] for r in on),
        "seconds": round(sum(r["seconds"] for r in rows), 1),
    }


def _seeds(
    root: Path, count: int, days: int, need: int, edge_strength: float, first: int = 400
) -> list[int]:
    """The first ``count`` seeds from ``first`` whose regime market has a season window."""
    chosen: list[int] = []
    seed = first
    while len(chosen) < count and seed < first + 20 * count:
        spec = market_spec(seed, regime=True, edge_strength=edge_strength)
        calendar = trading_days(load_arena_data(spec, LabHome(root / "scratch").ensure()).daily)
        if season_window(spec, calendar, days, need=need) is not None:
            chosen.append(seed)
        else:
            print(f"seed {seed}: no {days}-day window with {need} bull and {need} high_vol "
                  "days: skipped", file=sys.stderr, flush=True)  # fmt: skip
        seed += 1
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=400)
    parser.add_argument("--days", type=int, default=120, help="arena days of each season")
    parser.add_argument("--need", type=int, default=10,
                        help="bull and high_vol days the season must hold (each)")  # fmt: skip
    parser.add_argument("--edge-strength", type=float, default=12.0)
    parser.add_argument("--decompose", action="store_true",
                        help="also run the memory-alone arm (adjustments off)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="2 seeds, 60-day seasons")
    args = parser.parse_args(argv)
    seeds = 2 if args.quick else args.seeds
    days = 60 if args.quick else args.days
    need = 5 if args.quick else args.need
    arms = [a for a in ARMS if args.decompose or a != "memory"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seed in _seeds(root, seeds, days, need, args.edge_strength, args.first_seed):
            for regime in (True, False):
                for arm in arms:
                    row = season_run(
                        root, seed, regime=regime, arm=arm, days=days,
                        edge_strength=args.edge_strength, need=need,
                    )  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
            # The figures so far (a run cut short still reports its finished seeds).
            print("so far: " + _line(summarise(rows)), file=sys.stderr, flush=True)
    print(_line(summarise(rows)))
    return 0


def _line(out: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items())


if __name__ == "__main__":
    raise SystemExit(main())
