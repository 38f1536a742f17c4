"""The default configs ship inside the package (issue 14 item 7).

The lab is built as a real, non-editable install into a folder of its own and used from a
directory outside the checkout: the main job's steps (``data check``, ``evolve``, ``arena run``,
``ledger verify``) in a tiny form run on the YAML files of that install, read through
``importlib.resources``; ``--arena-config FILE`` with a partial file changes the day's limits
and capital, and ``stress replay`` takes it and its own ``--config FILE``; a bad user file is
one ``error:`` line; a missing packaged file is an error, not a silent fall-back to the models'
defaults. In-process: a user file merges over the packaged defaults, and the files users
already pass keep their config hash.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from alphaloop import config as config_module
from alphaloop.config import FrozenConfig, packaged_config, read_yaml, validate_config
from alphaloop.errors import ConfigError
from alphaloop.ops_config import OpsConfig, load_ops_config
from arena.personas import ArenaConfig, load_arena_config
from arena.stress import StressConfig, load_stress_config
from evolution.session import SessionConfig, load_session_config
from rl_exec.config import RlConfig, load_rl_config
from simulators.data_spec import DataConfig, load_data_config, load_quality_policy

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_CONFIGS = ROOT / "alphaloop" / "configs"
SPEC = "synthetic:seed=4,assets=4,start=2023-06-01,end=2025-03-31"
AS_OF = "2025-03-14"
DAY = "2025-03-17"
# What `evolve --population 4 --window 40` overrides (the CLI adds immigrants 1 at population 4).
EVOLVE_OVERRIDES = {"evolution": {"population": 4, "immigrants": 1}, "fitness": {"window": 40}}
USER_LIMIT = 0.01
USER_ARENA = {
    "starting_capital": 2_500_000.0,
    "risk": {"max_position_weight": USER_LIMIT, "max_trade_risk": USER_LIMIT},
}
TOP_PACKAGES = ("alphaloop", "arena", "evolution", "genome", "reports", "rl_exec", "simulators")
LOADERS: dict[str, tuple[type[FrozenConfig], Any]] = {
    "arena.yaml": (ArenaConfig, load_arena_config),
    "evolution.yaml": (SessionConfig, load_session_config),
    "stress.yaml": (StressConfig, load_stress_config),
    "data.yaml": (DataConfig, load_data_config),
    "rl_exec.yaml": (RlConfig, load_rl_config),
    "ops.yaml": (OpsConfig, load_ops_config),
}


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ----------------------------------------------------------------------------- in-process
def test_packaged_configs_live_in_the_package_and_nowhere_else() -> None:
    assert str(config_module.packaged_configs()) == str(CHECKOUT_CONFIGS)
    assert not (ROOT / "configs").exists()
    names = sorted(p.name for p in CHECKOUT_CONFIGS.glob("*.yaml"))
    assert names == sorted([*LOADERS, "backtest.yaml", "markets.yaml", "season_demo.yaml"])


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_packaged_default_equals_the_model_defaults(name: str) -> None:
    # So merging a user file over the packaged file means what validating it alone meant.
    model, load = LOADERS[name]
    assert load() == model()
    direct = validate_config(model, read_yaml(packaged_config(name)), name)
    assert load().stable_hash() == direct.stable_hash()
    assert load().stable_hash() == model().stable_hash()


def test_partial_user_file_merges_over_the_packaged_defaults(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(USER_ARENA), encoding="utf-8")
    loaded = load_arena_config(path)
    packaged = load_arena_config()
    assert loaded.starting_capital == 2_500_000.0
    assert loaded.risk.max_position_weight == USER_LIMIT
    assert loaded.risk.max_daily_loss == packaged.risk.max_daily_loss
    assert loaded.personas == packaged.personas and loaded.debate == packaged.debate
    merged = _merge(read_yaml(packaged_config("arena.yaml")), USER_ARENA)
    expected = validate_config(ArenaConfig, merged, "x")
    assert loaded.stable_hash() == expected.stable_hash() != packaged.stable_hash()


def test_partial_user_file_replaces_a_mapping_value_whole(tmp_path: Path) -> None:
    # regime_weights is one value (every regime named), not a section: no packaged weight
    # fills in for the ones a user left out.
    path = tmp_path / "weights.yaml"
    path.write_text("personas:\n  synthesis:\n    regime_weights: {bull: 1.0}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"weights\.yaml.*regime_weights.*missing"):
        load_arena_config(path)
    path.write_text("personas:\n  synthesis:\n    max_positions: 3\n", encoding="utf-8")
    loaded = load_arena_config(path)
    assert loaded.personas.synthesis.max_positions == 3
    assert (
        loaded.personas.synthesis.regime_weights == ArenaConfig().personas.synthesis.regime_weights
    )


def test_existing_evolution_files_keep_their_config_hash() -> None:
    # `make run` passes season_demo.yaml; merged over evolution.yaml it is the same session.
    demo = packaged_config("season_demo.yaml")
    alone = validate_config(SessionConfig, read_yaml(demo), str(demo))
    assert load_session_config(Path(str(demo))).stable_hash() == alone.stable_hash()


def test_bad_key_in_partial_user_file_names_the_user_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("risk:\n  max_daily_loss: 2.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mine\.yaml: key 'risk\.max_daily_loss'"):
        load_arena_config(path)


def test_missing_packaged_default_is_an_error_not_the_model_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module, "packaged_configs", lambda: tmp_path)
    for name, (_, load) in LOADERS.items():
        with pytest.raises(ConfigError, match=rf"{name}.*missing.*reinstall"):
            load()
    with pytest.raises(ConfigError, match=r"data\.yaml.*missing"):
        load_quality_policy()
    # A model without a packaged file (no default_name) keeps its own defaults.
    assert config_module.load_config(ArenaConfig) == ArenaConfig()


# ---------------------------------------------------------------------- a real install
@dataclass(frozen=True)
class Installed:
    site: Path
    work: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "ALPHALOOP_HOME", "RAY_ADDRESS")
        }
        env["PYTHONPATH"] = str(self.site)
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env, cwd=self.work,
            timeout=timeout,
        )  # fmt: skip

    def cli(self, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "alphaloop.cli", "--home", str(home), *args)


def _packaged_sources(destination: Path) -> Path:
    """Copy what a build needs (pyproject, README, the packages it lists) out of the checkout,
    so that no stale in-tree ``build/`` can reach the install and the checkout stays clean."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, destination / name)
    for folder in sorted(ROOT.iterdir()):
        if (folder / "__init__.py").is_file() and any(
            fnmatch.fnmatch(folder.name, p) for p in patterns
        ):
            shutil.copytree(
                folder, destination / folder.name, ignore=shutil.ignore_patterns("__pycache__")
            )
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    source = _packaged_sources(base / "src")
    site = base / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet"]
    # Without setuptools in this environment, pip builds in isolation (it fetches setuptools).
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")
    subprocess.run(
        [*command, "--target", str(site), str(source)], check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    shutil.rmtree(source)
    work = base / "work"
    work.mkdir()
    assert not work.resolve().is_relative_to(ROOT)
    return Installed(site=site, work=work)


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _expected_hash(installed: Installed, name: str, extra: Mapping[str, Any] | None = None) -> str:
    """The hash of the installed packaged file ``name`` read directly with PyYAML."""
    model, _ = LOADERS[name]
    data = yaml.safe_load((installed.site / "alphaloop" / "configs" / name).read_text("utf-8"))
    return validate_config(model, _merge(data, extra or {}), name).stable_hash()


def _max_weights(home: Path, day: str) -> dict[str, float]:
    """Each account's largest position weight at the day's close, from the day's Parquet files."""
    folder = home / "runs" / day
    positions = pd.read_parquet(folder / "positions.parquet")
    equity = pd.read_parquet(folder / "equity.parquet").set_index("account")
    value = next(c for c in positions.columns if c.startswith("value_"))
    money = next(c for c in equity.columns if c.startswith("equity_"))
    weight = positions[value].abs() / positions["account"].map(equity[money])
    return {str(k): float(v) for k, v in weight.groupby(positions["account"]).max().items()}


PROBE = """
import json, importlib, importlib.resources as resources
from arena.personas import load_arena_config
from evolution.session import load_session_config
from arena.stress import load_stress_config
from simulators.data_spec import load_data_config
from rl_exec.config import load_rl_config
print(json.dumps({
    "configs": str(resources.files("alphaloop") / "configs"),
    "modules": {name: importlib.import_module(name).__file__ for name in %r},
    "hashes": {
        "arena.yaml": load_arena_config().stable_hash(),
        "evolution.yaml": load_session_config().stable_hash(),
        "stress.yaml": load_stress_config().stable_hash(),
        "data.yaml": load_data_config().stable_hash(),
        "rl_exec.yaml": load_rl_config().stable_hash(),
    },
}))
""" % (TOP_PACKAGES,)  # noqa: UP031


@pytest.fixture(scope="module")
def main_job(installed: Installed) -> dict[str, Any]:
    """The main job's steps, tiny, on one home of the installed lab (no Ray, no MLflow)."""
    home = installed.work / "home"
    results: dict[str, Any] = {"home": home}
    results["data_check"] = _json(installed.cli(home, "data", "check", SPEC, "--json"))
    results["evolve"] = _json(
        installed.cli(
            home, "evolve", "--data", SPEC, "--as-of", AS_OF, "--generations", "1",
            "--population", "4", "--window", "40", "--seed", "7", "--workers", "0",
            "--no-mlflow", "--json",
        )
    )  # fmt: skip
    # The gene pool as the evolution left it, for the same day under a user's arena config.
    pool = installed.work / "pool"
    pool.mkdir()
    for file in home.glob("gene_pool.sqlite*"):
        shutil.copy2(file, pool / file.name)
    results["arena"] = _json(
        installed.cli(
            home, "arena", "run", "--date", DAY, "--data", SPEC, "--local", "--no-mlflow",
            "--json",
        )
    )  # fmt: skip
    results["verify"] = _json(installed.cli(home, "ledger", "verify", "--json"))
    return results


def test_installed_lab_reads_its_packaged_configs_from_the_install(installed: Installed) -> None:
    probe = _json(installed.run("-c", PROBE))
    site = installed.site.resolve()
    assert Path(probe["configs"]).resolve() == site / "alphaloop" / "configs"
    for name, file in probe["modules"].items():
        assert Path(file).resolve().is_relative_to(site), (name, file)
        assert not Path(file).resolve().is_relative_to(ROOT), (name, file)
    for name, digest in probe["hashes"].items():
        assert digest == _expected_hash(installed, name), name
    for file in sorted(CHECKOUT_CONFIGS.glob("*.yaml")):
        shipped = site / "alphaloop" / "configs" / file.name
        assert shipped.read_bytes() == file.read_bytes(), file.name


def test_installed_lab_runs_the_main_job_on_the_packaged_configs(
    installed: Installed, main_job: dict[str, Any]
) -> None:
    assert main_job["data_check"]["ok"] is True
    assert main_job["evolve"]["config_hash"] == _expected_hash(
        installed, "evolution.yaml", EVOLVE_OVERRIDES
    )
    assert len(main_job["evolve"]["generations"]) == 1
    arena = main_job["arena"]
    assert arena["date"] == DAY and arena["already_committed"] is False
    assert arena["arena_config_hash"] == _expected_hash(installed, "arena.yaml")
    for figures in arena["accounts"].values():
        assert figures["equity"] == pytest.approx(1_000_000.0, rel=0.01)
    assert main_job["verify"]["ok"] is True and main_job["verify"]["days_checked"] > 0


def test_installed_lab_arena_config_partial_file_changes_the_run(
    installed: Installed, main_job: dict[str, Any]
) -> None:
    user = installed.work / "limits.yaml"
    user.write_text(yaml.safe_dump(USER_ARENA), encoding="utf-8")
    home = installed.work / "user-home"
    home.mkdir()
    for file in (installed.work / "pool").iterdir():
        shutil.copy2(file, home / file.name)
    day = _json(
        installed.cli(
            home, "arena", "run", "--date", DAY, "--data", SPEC, "--local", "--no-mlflow",
            "--json", "--arena-config", str(user),
        )
    )  # fmt: skip
    assert day["arena_config_hash"] == _expected_hash(installed, "arena.yaml", USER_ARENA)
    assert day["arena_config_hash"] != main_job["arena"]["arena_config_hash"]
    # The starting capital and the position limit of the user file, in the day's books.
    for figures in day["accounts"].values():
        assert figures["equity"] == pytest.approx(2_500_000.0, rel=0.01)
    packaged = _max_weights(main_job["home"], DAY)
    limited = _max_weights(home, DAY)
    assert limited, "the limited run holds no position: nothing to compare"
    assert max(packaged.values()) > USER_LIMIT * 1.05, packaged
    assert max(limited.values()) <= USER_LIMIT * 1.02, limited
    # The home was started with 2.5 M: the packaged 1 M is refused with one error line.
    refused = installed.cli(
        home, "arena", "run", "--date", "2025-03-18", "--data", SPEC, "--local", "--no-mlflow"
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "starting_capital" in errors[0], refused.stderr[-2000:]
    assert "2,500,000.00" in errors[0] and "1,000,000.00" in errors[0], errors[0]
    status = _json(installed.cli(home, "arena", "status", "--json"))
    assert status["last_committed"] == DAY


def test_installed_lab_stress_replay_takes_both_config_files(installed: Installed) -> None:
    arena = installed.work / "stress-arena.yaml"
    arena.write_text("risk:\n  max_daily_loss: 0.02\n", encoding="utf-8")
    stress = installed.work / "stress.yaml"
    stress.write_text("min_exposure: 0.4\n", encoding="utf-8")
    result = _json(
        installed.cli(
            installed.work / "stress-home", "stress", "replay", "--scenario", "black-swan-gap",
            "--size", "small", "--no-mlflow", "--json", "--arena-config", str(arena),
            "--config", str(stress),
        )
    )  # fmt: skip
    assert result["config_hash"] == _expected_hash(
        installed, "stress.yaml", {"min_exposure": 0.4, "size": "small"}
    )
    arena_hash = _expected_hash(installed, "arena.yaml", {"risk": {"max_daily_loss": 0.02}})
    assert result["arena_config_hash"] == arena_hash
    (scenario,) = result["scenarios"]
    (check,) = [c for c in scenario["checks"] if c["name"] == "daily_loss_within_limit"]
    assert check["detail"]["days"]
    assert {day["max_daily_loss"] for day in check["detail"]["days"]} == {0.02}


@pytest.mark.parametrize(
    ("option", "command", "text", "key"),
    [
        ("--arena-config", ("arena", "run", "--local"), "risk:\n  max_position_weight: 2\n",
         "risk.max_position_weight"),
        ("--arena-config", ("arena", "replay", "--start", DAY, "--end", DAY, "--local"),
         "starting_capital: -5\n", "starting_capital"),
        ("--arena-config", ("stress", "replay", "--scenario", "black-swan-gap"),
         "risk:\n  max_daily_loss: 1.5\n", "risk.max_daily_loss"),
        ("--config", ("stress", "replay", "--scenario", "black-swan-gap"),
         "size: huge\n", "size"),
        ("--config", ("evolve", "--workers", "0"), "evolution:\n  elite: -1\n",
         "evolution.elite"),
    ],
)  # fmt: skip
def test_installed_lab_bad_user_file_is_one_error_line(
    installed: Installed, option: str, command: tuple[str, ...], text: str, key: str
) -> None:
    bad = installed.work / f"bad-{command[0]}-{option.strip('-')}.yaml"
    bad.write_text(text, encoding="utf-8")
    home = installed.work / f"bad-home-{command[0]}-{command[1]}-{option.strip('-')}"
    result = installed.cli(home, *command, "--no-mlflow", option, str(bad))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert bad.name in errors[0] and f"'{key}'" in errors[0], errors[0]


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("arena.yaml", ("arena", "run", "--local", "--no-mlflow")),
        ("data.yaml", ("data", "check", SPEC)),
        ("evolution.yaml", ("evolve", "--workers", "0", "--no-mlflow")),
    ],
)
def test_installed_lab_missing_packaged_default_is_an_error_line(
    installed: Installed, name: str, command: tuple[str, ...]
) -> None:
    shipped = installed.site / "alphaloop" / "configs" / name
    aside = shipped.with_name(name + ".aside")
    shipped.rename(aside)
    try:
        result = installed.cli(installed.work / f"missing-{name}", *command)
    finally:
        aside.rename(shipped)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and name in errors[0] and "missing" in errors[0], result.stderr
