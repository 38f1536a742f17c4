"""The arena's broker slices orders with the registered execution policy, TWAP without one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphaloop.cli import app
from alphaloop.home import LabHome
from rl_exec.policy import LearnedPolicy, TwapPolicy
from rl_exec.registry import load_registered_policy

SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
DAY = "2023-06-01"


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fills(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "ledger.sqlite") as db:
        return db.execute(
            "SELECT account, symbol, side, quantity, price FROM fills ORDER BY fill_id"
        ).fetchall()


def _orders(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "ledger.sqlite") as db:
        return db.execute(
            "SELECT account, order_id, symbol, side, quantity, decision_id FROM orders "
            "ORDER BY order_id"
        ).fetchall()


def _run_day(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("ALPHALOOP_HOME", str(home))
    out = _invoke("arena", "run", "--date", DAY, "--data", SPEC, "--json", "--local", "--no-mlflow")
    return json.loads(out.strip().splitlines()[-1])


def test_arena_uses_the_registered_policy_and_twap_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, learned_home = tmp_path / "plain", tmp_path / "learned"
    assert isinstance(load_registered_policy(LabHome(plain)), TwapPolicy)
    _run_day(plain, monkeypatch)
    twap_fills = _fills(plain)
    assert twap_fills, "the day must trade for the comparison to mean anything"

    monkeypatch.setenv("ALPHALOOP_HOME", str(learned_home))
    policy_path = tmp_path / "policy"
    _invoke(
        "rl",
        "train",
        "--algo",
        "ppo",
        "--env",
        "ac",
        "--timesteps",
        "64",
        "--seed",
        "3",
        "--out",
        str(policy_path),
        "--json",
    )
    # Trained on the AC market (the point here is that the arena uses what is registered):
    # forced past the registry's gate, which refuses another environment.
    _invoke(
        "rl", "register", str(policy_path) + ".safetensors", "--name", "tiny-ppo",
        "--force", "--episodes", "4",
    )  # fmt: skip
    assert isinstance(load_registered_policy(LabHome(learned_home)), LearnedPolicy)
    _run_day(learned_home, monkeypatch)
    learned_fills = _fills(learned_home)

    # Same decisions (the same parent orders), different slicing through the day.
    assert _orders(learned_home) == _orders(plain)
    assert learned_fills != twap_fills
    verified = json.loads(_invoke("ledger", "verify", "--json").strip().splitlines()[-1])
    assert verified["ok"] is True
