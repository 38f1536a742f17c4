"""``alphaloop rl`` through typer's CliRunner on the real application."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.home import LabHome
from rl_exec.policy import LearnedPolicy
from rl_exec.registry import load_registered_policy

runner = CliRunner()
FIELDS = {"policy", "env", "episodes", "mean_shortfall_bps", "std_shortfall_bps", "objective"}


def test_cli_rl_train_evaluate_register_round_trip(tmp_path: Path, lab_home: LabHome) -> None:
    out = tmp_path / "pol"
    trained = runner.invoke(
        app,
        [
            "rl",
            "train",
            "--algo",
            "ppo",
            "--env",
            "ac",
            "--timesteps",
            "64",
            "--seed",
            "1",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert trained.exit_code == 0, trained.output
    payload = json.loads(trained.stdout.strip().splitlines()[-1])
    assert Path(payload["policy"]).is_file() and payload["algo"] == "ppo"
    assert (lab_home.root / "mlflow.db").is_file()  # the learning curve went to MLflow

    evaluated = runner.invoke(
        app,
        [
            "rl",
            "evaluate",
            "--policy",
            str(out) + ".safetensors",
            "--env",
            "ac",
            "--episodes",
            "3",
            "--seed",
            "0",
            "--json",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert FIELDS <= set(result) and result["episodes"] == 3 and result["env"] == "ac"

    # Trained on the AC market: the arena's gate refuses it unless forced (test_registry.py).
    registered = runner.invoke(
        app,
        [
            "rl",
            "register",
            str(out) + ".safetensors",
            "--name",
            "cli",
            "--force",
            "--episodes",
            "4",
        ],
    )
    assert registered.exit_code == 0, registered.output
    assert isinstance(load_registered_policy(lab_home), LearnedPolicy)


def test_cli_rl_evaluate_builtins_common_random_numbers_ac_best() -> None:
    objectives = {}
    for name in ("twap", "vwap", "ac"):
        done = runner.invoke(
            app,
            [
                "rl",
                "evaluate",
                "--policy",
                name,
                "--env",
                "ac",
                "--episodes",
                "20",
                "--seed",
                "3",
                "--json",
            ],
        )
        assert done.exit_code == 0, done.output
        objectives[name] = json.loads(done.stdout)["objective"]
    assert objectives["ac"] < objectives["twap"]
    assert objectives["vwap"] == objectives["twap"]  # flat profile: the same schedule


def test_cli_rl_evaluate_replay_synthetic_json() -> None:
    done = runner.invoke(
        app,
        ["rl", "evaluate", "--policy", "vwap", "--env", "replay", "--episodes", "2", "--json"],
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["env"] == "replay"


def test_cli_rl_unknown_algo_is_user_error() -> None:
    done = runner.invoke(
        app,
        ["rl", "train", "--algo", "dqn", "--env", "ac", "--timesteps", "1", "--out", "x"],
    )
    assert done.exit_code != 0
