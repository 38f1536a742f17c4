"""Fixtures of the operations tests: the small lab home of ``ops_home.py``, built once."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from alphaloop.home import LabHome

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ops_home import build_ops_home


@pytest.fixture(scope="session")
def ops_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the operations home once per test session; never write it (copy it)."""
    return build_ops_home(tmp_path_factory.mktemp("ops-template") / "home").root


@pytest.fixture
def ops_home(ops_home_template: Path, tmp_path: Path) -> LabHome:
    """A private copy of the operations home."""
    copy = tmp_path / "home"
    shutil.copytree(ops_home_template, copy)
    return LabHome(copy)
