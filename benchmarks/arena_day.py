"""Seconds per arena day: default config (20 assets, 3 accounts as Ray actors, minute bars).

Reports the Ray start apart, the first (warm-up: numba, imports, actor start) day apart, the
mean seconds per day after warm-up, a 60-day season (replay, no weekly evolution) and, as a
reference measured in the same run, the same season with the accounts in-process (no Ray).
The last line is ``seconds_per_day=<x>`` (the 60-day season on Ray actors).

Usage: ``python benchmarks/arena_day.py [--days 60] [--data SPEC]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--data", default="synthetic")
    args = parser.parse_args()

    import ray

    from alphaloop.home import LabHome
    from arena.actors import RayAccounts, ensure_ray
    from arena.day import LocalAccounts
    from arena.market import load_arena_data
    from arena.personas import load_arena_config
    from arena.season import replay_season, season_days

    config = load_arena_config()
    root = Path(tempfile.mkdtemp(prefix="arena_bench_"))
    ray_home = LabHome(root / "ray").ensure()
    local_home = LabHome(root / "local").ensure()
    data = load_arena_data(args.data, ray_home)
    days = season_days(data, date(1900, 1, 1), date(2999, 1, 1))
    season = days[-args.days :]
    warm = days[-args.days - 1]
    print(f"data: {data.spec}: {data.daily.n_assets} assets, {data.daily.n_bars} days")

    started = time.perf_counter()
    ensure_ray(num_cpus=2, join_running=False)
    ray_start = time.perf_counter() - started
    print(f"ray start: {ray_start:.2f} s")

    accounts = RayAccounts(ray_home, config, data.daily.market)
    started = time.perf_counter()
    replay_season(accounts, data, warm, warm, home=ray_home, config=config, evolve=None)
    print(
        f"warm-up day {warm} (actors start, numba, imports): {time.perf_counter() - started:.2f} s"
    )

    started = time.perf_counter()
    result = replay_season(
        accounts, data, season[0], season[-1], home=ray_home, config=config, evolve=None
    )
    ray_season = time.perf_counter() - started
    accounts.close()
    per_day = ray_season / result["ran"]
    print(
        f"season {season[0]}..{season[-1]} on Ray actors: {result['ran']} days "
        f"in {ray_season:.1f} s ({per_day:.3f} s/day)"
    )

    local = LocalAccounts(local_home, config, data.rules())
    replay_season(local, data, warm, warm, home=local_home, config=config, evolve=None)
    started = time.perf_counter()
    replay_season(local, data, season[0], season[-1], home=local_home, config=config, evolve=None)
    local_season = time.perf_counter() - started
    local.close()
    print(
        f"same season in-process (reference): {local_season:.1f} s "
        f"({local_season / len(season):.3f} s/day); Ray / in-process = "
        f"{ray_season / local_season:.2f}"
    )
    ray.shutdown()
    print(f"seconds_per_day={per_day:.3f}")


if __name__ == "__main__":
    main()
