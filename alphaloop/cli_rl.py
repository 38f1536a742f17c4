"""``alphaloop rl``: train, evaluate and register execution policies.

* ``alphaloop rl train --algo ppo|sac --env ac|replay [--data SPEC] --timesteps N --seed S
  --out PATH [--json]`` (a progress bar on stderr);
* ``alphaloop rl evaluate --policy PATH|twap|vwap|ac --env ac|replay [--data SPEC]
  --episodes N --seed S [--json]`` (one JSON object on stdout);
* ``alphaloop rl register PATH --name NAME [--data SPEC] [--episodes N] [--seed S] [--force]
  [--json]``: the arena's broker uses this policy from now on, if it was trained on the arena's
  environment and market and beats TWAP there (``--force`` overrides; :mod:`rl_exec.registry`);
* ``alphaloop rl registry [--name NAME] [--json]``: the versions with their evaluation;
* ``alphaloop rl rollback [--json]``: back to the version active before the current one.

Policies are ``PATH.safetensors`` + ``PATH.json`` (:mod:`rl_exec.policy_file`); a
stable-baselines3 ``.zip`` or any other pickle-bearing file is refused with an ``error:`` line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from alphaloop.errors import ConfigError

app = typer.Typer(
    help="Learn to execute orders (gymnasium + stable-baselines3) and register the policy.",
    no_args_is_help=True,
)

_ENVS = ("ac", "replay")


def _config(env: str, data: str | None, config: str | None) -> Any:
    from rl_exec.config import load_rl_config

    if env not in _ENVS:
        raise ConfigError(f"--env must be one of {', '.join(_ENVS)}, got {env!r}")
    overrides: dict[str, Any] = {"env": {"model": env}}
    if data is not None:
        if env != "replay":
            raise ConfigError("--data applies to --env replay only (the AC market is a model)")
        overrides["env"]["replay"] = {"data": data}
    return load_rl_config(config, overrides=overrides)


@app.command()
def train(
    algo: Annotated[str, typer.Option("--algo", help="ppo or sac.")],
    env: Annotated[str, typer.Option("--env", help="ac (Almgren-Chriss) or replay.")],
    timesteps: Annotated[int, typer.Option("--timesteps", help="Environment steps.")],
    out: Annotated[
        Path, typer.Option("--out", help="Policy path (writes PATH.safetensors + PATH.json).")
    ],
    seed: Annotated[int, typer.Option("--seed", help="Seed (same seed, same policy).")] = 0,
    data: Annotated[
        str | None, typer.Option("--data", help="Data spec for --env replay (default synthetic).")
    ] = None,
    discrete: Annotated[
        bool, typer.Option("--discrete", help="Train on the discrete-action variant (PPO).")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option("--config", help="YAML file; its keys override the packaged rl_exec.yaml."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a PPO or SAC execution policy and save it with its metadata."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from alphaloop.home import LabHome
    from rl_exec.train import train_policy

    algo = algo.lower()
    if algo not in ("ppo", "sac"):
        raise ConfigError(f"--algo must be 'ppo' or 'sac', got {algo!r}")
    rl_config = _config(env, data, config)
    from rich.console import Console

    console = Console(file=sys.stderr)
    with Progress(
        TextColumn(f"training {algo} on {env}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
    ) as bar:
        task = bar.add_task("train", total=timesteps)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = train_policy(
            algo,  # type: ignore[arg-type]
            rl_config.env,
            rl_config.train,
            timesteps=timesteps,
            seed=seed,
            out=out,
            discrete=discrete,
            home=LabHome.resolve(),
            progress=progress,
        )
    payload = {
        "policy": str(result.path),
        "metadata": str(result.path.with_suffix(".json")),
        "algo": algo,
        "env": env,
        "timesteps": timesteps,
        "seed": seed,
        "train_seconds": result.seconds,
        "env_config_hash": result.metadata["env_config_hash"],
        "final_objective_bps": result.curve[-1][1] if result.curve else None,
    }
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        typer.echo(f"saved {result.path} ({result.seconds:.1f} s)")


@app.command()
def evaluate(
    policy: Annotated[
        str, typer.Option("--policy", help="PATH of a trained policy, twap, vwap, ac.")
    ],
    env: Annotated[str, typer.Option("--env", help="ac (Almgren-Chriss) or replay.")],
    episodes: Annotated[
        int, typer.Option("--episodes", help="Episodes (common random numbers).")
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Root seed of the episodes.")] = 0,
    data: Annotated[
        str | None, typer.Option("--data", help="Data spec for --env replay (default synthetic).")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="YAML file; its keys override the packaged rl_exec.yaml."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a policy: implementation shortfall (bps) and the mean-variance objective."""
    from alphaloop.home import LabHome
    from rl_exec.env import ExecutionEnv
    from rl_exec.evaluate import evaluate_policy
    from rl_exec.policy import LearnedPolicy, builtin_policy
    from rl_exec.train import make_env

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    rl_config = _config(env, data, config)
    if policy in ("twap", "vwap", "ac"):
        chosen = builtin_policy(policy, ac_config=rl_config.env.ac)
    else:
        chosen = LearnedPolicy(policy)
    environment = make_env(rl_config.env, home=LabHome.resolve(), holdout=True)
    assert isinstance(environment, ExecutionEnv)
    result = evaluate_policy(chosen, environment, episodes=episodes, seed=seed, env_name=env)
    payload = result.to_json()
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        typer.echo(
            f"{payload['policy']} on {env}: shortfall {result.mean_shortfall_bps:.2f} "
            f"+/- {result.std_shortfall_bps:.2f} bps, objective {result.objective:.2f} bps "
            f"({episodes} episodes)"
        )


@app.command()
def register(
    path: Annotated[
        Path,
        typer.Argument(help="Trained policy (PATH.safetensors, its PATH.json next to it)."),
    ],
    name: Annotated[str, typer.Option("--name", help="Registry name.")],
    data: Annotated[
        str | None,
        typer.Option("--data", help="The arena's data (default: the synthetic market it uses)."),
    ] = None,
    episodes: Annotated[
        int, typer.Option("--episodes", help="Hold-out orders of the paired check against TWAP.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Root seed of those orders.")] = 0,
    force: Annotated[
        bool,
        typer.Option("--force", help="Register even if refused (the figures are stored)."),
    ] = False,
    config: Annotated[
        str | None,
        typer.Option("--config", help="YAML file; its keys override the packaged rl_exec.yaml."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Make a trained policy the one the arena's broker uses, if it beats TWAP there."""
    from alphaloop.home import LabHome
    from alphaloop.jsonout import emit
    from rl_exec.registry import register_policy

    if episodes < 2:
        raise ConfigError(f"--episodes must be >= 2 (a paired standard error), got {episodes}")
    rl_config = _config("replay", data, config)
    version = register_policy(
        path,
        name,
        LabHome.resolve(),
        env_config=rl_config.env,
        episodes=episodes,
        seed=seed,
        force=force,
    )
    if as_json:
        emit(version.to_json())
        return
    typer.echo(f"registered {version.label}: {version.path}")
    evaluation = version.evaluation or {}
    typer.echo(
        f"  against TWAP: paired cost difference {evaluation['cost_difference_bps']:+.3f} +/- "
        f"{evaluation['cost_difference_se_bps']:.3f} bps ({evaluation['cost_change_pct']:+.2f}%) "
        f"over {evaluation['episodes']} hold-out orders of {evaluation['data']}"
    )
    for reason in version.overridden:
        typer.echo(f"  forced: {reason}")


def _figure(evaluation: dict[str, Any] | None, key: str, error: str, digits: int) -> str:
    if not evaluation or evaluation.get(key) is None:
        return "-"
    return f"{evaluation[key]:+.{digits}f} +/- {evaluation[error]:.{digits}f}"


@app.command("registry")
def registry_list(
    name: Annotated[str | None, typer.Option("--name", help="Only this name's versions.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the registered policy versions with their evaluation; * marks the active one."""
    from alphaloop.home import LabHome
    from alphaloop.jsonout import emit
    from rl_exec.registry import list_versions

    versions = list_versions(LabHome.resolve(), name)
    if as_json:
        emit({"versions": [version.to_json() for version in versions]})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"execution policies ({len(versions)} versions; * = the arena's)")
    for column in (
        "",
        "name",
        "version",
        "registered",
        "cost vs TWAP (bps)",
        "% of TWAP",
        "realised vs TWAP (bps)",
        "beats TWAP",
        "forced",
    ):
        table.add_column(column, overflow="fold")
    for version in versions:
        evaluation = version.evaluation
        beats = "-" if not evaluation else ("yes" if evaluation.get("beats_twap") else "no")
        table.add_row(
            "*" if version.active else "",
            version.name,
            str(version.version) if version.version else "legacy",
            (version.registered_at or "-")[:19],
            _figure(evaluation, "cost_difference_bps", "cost_difference_se_bps", 3),
            _figure(evaluation, "cost_change_pct", "cost_change_se_pct", 2),
            _figure(evaluation, "objective_difference_bps", "objective_difference_se_bps", 2),
            beats,
            "yes" if version.forced else "",
        )
    Console().print(table)


@app.command()
def rollback(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Return to the policy version that was active before the current one."""
    from alphaloop.home import LabHome
    from alphaloop.jsonout import emit
    from rl_exec.registry import rollback as roll_back

    left, now = roll_back(LabHome.resolve())
    if as_json:
        emit({"left": left.to_json(), "active": now.to_json()})
        return
    typer.echo(f"rolled back from {left.label} to {now.label}: {now.path}")
