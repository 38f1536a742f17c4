"""Core packages stay free of Ray and MLflow; only named edge modules may import them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_PACKAGES = ("genome", "simulators", "evolution", "arena", "rl_exec", "reports")
# The thin edges: Ray tasks/actors and the driver-side MLflow writers.
EDGE_MODULES = {
    "evolution/distributed.py",
    "evolution/tracking.py",
    "evolution/session.py",
    "arena/actors.py",
    "arena/tracking.py",
    "arena/season.py",
    "rl_exec/train.py",
    "rl_exec/tracking.py",
    "reports/tracking.py",
}
FORBIDDEN = {"ray", "mlflow"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def core_violations() -> list[str]:
    found = []
    for package in CORE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in EDGE_MODULES:
                continue
            bad = _imported_roots(path) & FORBIDDEN
            if bad:
                found.append(f"{rel}: imports {', '.join(sorted(bad))}")
    return found


def test_core_modules_import_neither_ray_nor_mlflow() -> None:
    assert core_violations() == []


def test_core_purity_check_detects_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "leaky.py"
    module.write_text("import numpy\nfrom ray import remote\nimport mlflow.tracking\n")
    assert _imported_roots(module) & FORBIDDEN == {"ray", "mlflow"}
