"""Benchmark: PPO learns to execute on the Almgren-Chriss market and on the replay market.

* AC (standard parameters): the learned policy's mean-variance objective against the closed-form
  optimum (gap in %, target <= 5%) and against TWAP, on the same paths (common random numbers).
* Replay (synthetic driftless market, U-shaped intraday volume, participation cap): the learned
  policy's mean shortfall against TWAP's (gain in %, target >= 10%), spread shown, on hold-out
  days the policy never saw.

PPO trains on the AC market with the expected-cost reward (``train.reward: auto``: the price
noise is removed from the learning signal, see ``docs/execution.md``); every figure printed here
is the *realised* shortfall on common random numbers, with the paired standard error.

Run: ``python benchmarks/rl_execution.py [--ac-steps N] [--replay-steps N] [--episodes N]
[--only ac|replay]``. The last line is
``ac_gap_pct=<x> replay_gain_vs_twap_pct=<y> train_seconds=<z>`` (``nan`` for a skipped part).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rl_exec.baselines import ac_holdings, dollars_to_bps, mean_variance
from rl_exec.config import RlConfig, load_rl_config
from rl_exec.env import ExecutionEnv
from rl_exec.evaluate import EvaluationResult, evaluate_policy, paired_gap_pct
from rl_exec.policy import AcPolicy, LearnedPolicy, TwapPolicy, VwapPolicy
from rl_exec.train import make_env, train_policy


def _show(result: EvaluationResult) -> None:
    print(
        f"  {result.policy:<22} shortfall {result.mean_shortfall_bps:8.2f} bps "
        f"(std {result.std_shortfall_bps:7.2f})  objective {result.objective:8.2f} bps"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ac-steps", type=int, default=150_000)
    parser.add_argument("--replay-steps", type=int, default=150_000)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", choices=("ac", "replay"), default=None, help="Run one of the two parts."
    )
    args = parser.parse_args()
    base = load_rl_config()
    folder = Path(tempfile.mkdtemp(prefix="rl_bench_"))
    train_seconds = 0.0
    ac_gap = gain = float("nan")
    if args.only != "replay":
        ac_gap, ac_seconds = _almgren_chriss(args, base, folder)
        train_seconds = max(train_seconds, ac_seconds)
    if args.only != "ac":
        gain, replay_seconds = _replay(args, base, folder)
        train_seconds = max(train_seconds, replay_seconds)
    print(
        f"ac_gap_pct={ac_gap:.2f} replay_gain_vs_twap_pct={gain:.2f} "
        f"train_seconds={train_seconds:.1f}"
    )


def _almgren_chriss(args: argparse.Namespace, base: RlConfig, folder: Path) -> tuple[float, float]:
    print(f"== Almgren-Chriss, PPO {args.ac_steps} steps (reward: {base.train.reward})")
    started = time.perf_counter()
    ac = train_policy(
        "ppo",
        base.env,
        base.train,
        timesteps=args.ac_steps,
        seed=args.seed,
        out=folder / "ppo_ac",
        log_mlflow=False,
    )
    ac_seconds = time.perf_counter() - started
    env = make_env(base.env)
    assert isinstance(env, ExecutionEnv)
    results = {
        policy.name: evaluate_policy(policy, env, episodes=args.episodes, seed=12345)
        for policy in (LearnedPolicy(ac.path), AcPolicy.from_config(base.env.ac), TwapPolicy())
    }
    for result in results.values():
        _show(result)
    learned_result = results[f"ppo:{ac.path.name}"]
    learned = learned_result.objective
    ac_gap, gap_error = paired_gap_pct(learned_result, results["ac"])
    closed_form = dollars_to_bps(
        mean_variance(base.env.ac, ac_holdings(base.env.ac)).objective, base.env.ac
    )
    print(
        f"  train {ac_seconds:.1f} s ({ac.metadata['reward_mode']} reward); "
        f"gap to the AC optimum {ac_gap:.2f}% (standard error {gap_error:.2f}%, "
        f"{args.episodes} paired episodes); cut vs TWAP "
        f"{(1 - learned / results['twap'].objective) * 100:.1f}%; closed-form optimum "
        f"{closed_form:.2f} bps"
    )
    return ac_gap, ac_seconds


def _replay(args: argparse.Namespace, base: RlConfig, folder: Path) -> tuple[float, float]:
    print(f"== Replay (synthetic, drift=0), PPO {args.replay_steps} steps")
    replay_env_config = base.env.model_copy(
        update={
            "model": "replay",
            "replay": base.env.replay.model_copy(update={"data": "synthetic:drift=0", "days": 60}),
        }
    )
    started = time.perf_counter()
    replay = train_policy(
        "ppo",
        replay_env_config,
        base.train,
        timesteps=args.replay_steps,
        seed=args.seed,
        out=folder / "ppo_replay",
        log_mlflow=False,
    )
    replay_seconds = time.perf_counter() - started
    holdout = make_env(replay_env_config, holdout=True)
    assert isinstance(holdout, ExecutionEnv)
    results = {
        policy.name: evaluate_policy(policy, holdout, episodes=args.episodes, seed=54321)
        for policy in (LearnedPolicy(replay.path), TwapPolicy(), VwapPolicy())
    }
    for result in results.values():
        _show(result)
    learned_shortfalls = results[f"ppo:{replay.path.name}"].shortfalls_bps
    twap_shortfalls = results["twap"].shortfalls_bps
    ratio = float(learned_shortfalls.mean() / twap_shortfalls.mean())
    gain = (1.0 - ratio) * 100.0
    # Paired (same days) delta-method error of the ratio of means; the episodes draw the
    # hold-out asset-days with replacement, so with fewer distinct days than episodes the
    # error about the population of days is larger by about sqrt(episodes / distinct days).
    residual = learned_shortfalls - ratio * twap_shortfalls
    error = float(residual.std(ddof=1) / np.sqrt(len(residual)) / abs(twap_shortfalls.mean()))
    distinct = len(getattr(holdout.model, "days", [])) or args.episodes
    print(
        f"  train {replay_seconds:.1f} s; gain vs TWAP {gain:.2f}% (paired standard error "
        f"{error * 100:.2f}% over {args.episodes} episodes drawn from {distinct} hold-out "
        f"asset-days)"
    )
    return gain, replay_seconds


if __name__ == "__main__":
    main()
