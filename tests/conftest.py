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
    """A local Ray with 2 CPUs shared by every test that needs one (started once)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
