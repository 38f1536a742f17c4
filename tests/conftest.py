"""Shared fixtures. Every test gets its own lab home; nothing touches ~/.alphaloop."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphaloop.home import ENV_VAR, LabHome

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``$ALPHALOOP_HOME`` at a fresh folder for the duration of each test."""
    home = tmp_path_factory.mktemp("labhome")
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


@pytest.fixture
def lab_home(_isolated_home: Path) -> LabHome:
    """The test's lab home, created."""
    return LabHome(_isolated_home).ensure()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A private local Ray with 2 CPUs shared by every test that needs one (started once).

    Private: a bare ``ray.init()`` would join a Ray that ``ray start`` left on the machine.
    """
    import ray

    from alphaloop.ray_session import connect_ray

    connect_ray(num_cpus=2, private=True)
    yield
    ray.shutdown()


# The arena season the report tests read: June 2023 replayed on a small synthetic market with
# two weekly evolutions. Built once per test session; each module gets its own copy.
REPORT_SEASON_SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
REPORT_SEASON_EVOLVE_DAYS = ("2023-06-02", "2023-06-16")


@pytest.fixture(scope="session")
def report_season_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the report season once (see :data:`REPORT_SEASON_SPEC`); return its folder."""
    from datetime import date

    from arena.day import LocalAccounts
    from arena.market import load_arena_data
    from arena.personas import load_arena_config
    from arena.season import replay_season, weekly_evolution

    built = tmp_path_factory.mktemp("report-season")
    home = LabHome(built).ensure()
    config = load_arena_config()
    data = load_arena_data(REPORT_SEASON_SPEC, home)
    evolve = weekly_evolution(home, data, generations=2, population=8, window=60)
    days = {date.fromisoformat(d) for d in REPORT_SEASON_EVOLVE_DAYS}
    accounts = LocalAccounts(home, config, data.rules())
    try:
        replay_season(
            accounts, data, date(2023, 6, 1), date(2023, 6, 30), home=home, config=config,
            evolve=lambda day: evolve(day) if day in days else {},
            write_report=False,
        )  # fmt: skip
    finally:
        accounts.close()
    return built


@pytest.fixture(scope="module")
def report_season_home(
    report_season_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> LabHome:
    """A private copy of the report season's lab home."""
    import shutil

    copy = tmp_path_factory.mktemp("season-copy") / "home"
    shutil.copytree(report_season_template, copy)
    return LabHome(copy)
