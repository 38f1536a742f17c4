"""Benchmark: PPO learns to execute on the Almgren-Chriss market and on the replay market.

* AC (standard parameters): the learned policy's mean-variance objective against the closed-form
  optimum (gap in %, target <= 5%) and against TWAP, on the same paths (common random numbers).
* Replay (synthetic driftless market, U-shaped intraday volume, participation cap): the learned
  policy's mean shortfall against TWAP's (gain in %, target >= 10%), spread shown, on hold-out
  days the policy never saw.

Run: ``python benchmarks/rl_execution.py [--ac-steps N] [--replay-steps N] [--episodes N]``.
The last line is ``ac_gap_pct=<x> replay_gain_vs_twap_pct=<y> train_seconds=<z>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rl_exec.config import load_rl_config
from rl_exec.env import ExecutionEnv
from rl_exec.evaluate import EvaluationResult, evaluate_policy
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
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base = load_rl_config()
    folder = Path(tempfile.mkdtemp(prefix="rl_bench_"))
    train_seconds = 0.0

    print(f"== Almgren-Chriss, PPO {args.ac_steps} steps")
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
    train_seconds = max(train_seconds, ac_seconds)
    env = make_env(base.env)
    assert isinstance(env, ExecutionEnv)
    results = {
        policy.name: evaluate_policy(policy, env, episodes=args.episodes, seed=12345)
        for policy in (LearnedPolicy(ac.path), AcPolicy.from_config(base.env.ac), TwapPolicy())
    }
    for result in results.values():
        _show(result)
    learned = results[f"ppo:{ac.path.name}"].objective
    ac_gap = (learned / results["ac"].objective - 1.0) * 100.0
    print(
        f"  train {ac_seconds:.1f} s; gap to the AC optimum {ac_gap:.2f}%; "
        f"cut vs TWAP {(1 - learned / results['twap'].objective) * 100:.1f}%"
    )

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
    train_seconds = max(train_seconds, replay_seconds)
    holdout = make_env(replay_env_config, holdout=True)
    assert isinstance(holdout, ExecutionEnv)
    results = {
        policy.name: evaluate_policy(policy, holdout, episodes=args.episodes, seed=54321)
        for policy in (LearnedPolicy(replay.path), TwapPolicy(), VwapPolicy())
    }
    for result in results.values():
        _show(result)
    learned_shortfall = results[f"ppo:{replay.path.name}"].mean_shortfall_bps
    gain = (1.0 - learned_shortfall / results["twap"].mean_shortfall_bps) * 100.0
    print(f"  train {replay_seconds:.1f} s; gain vs TWAP {gain:.2f}%")
    print(
        f"ac_gap_pct={ac_gap:.2f} replay_gain_vs_twap_pct={gain:.2f} "
        f"train_seconds={train_seconds:.1f}"
    )


if __name__ == "__main__":
    main()
