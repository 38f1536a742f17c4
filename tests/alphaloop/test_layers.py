"""The layer rule, transitively: no core module reaches Ray or MLflow through its imports, and
nothing imports the CLI back.

``test_core_purity.py`` checks each module's own import lines. Here the module-level imports
(those run when a module is imported; ``if TYPE_CHECKING:`` blocks and imports inside
functions are not) are followed through the project's packages, so a core module importing
an edge module (``arena/season.py`` imports MLflow) is caught too. A runtime check imports a
few core modules in a fresh interpreter and looks at ``sys.modules``. Each check has a
control that shows it can fail.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("alphaloop", "genome", "simulators", "evolution", "arena", "rl_exec", "reports")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_core_purity import CORE_PACKAGES, EDGE_MODULES, FORBIDDEN  # noqa: E402


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Dotted names imported when the module is imported (not in functions, not for types)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """``module -> imported names`` (project modules resolved, others as their root)."""
    modules = set(sources)
    graph: dict[str, set[str]] = {}
    for module, text in sources.items():
        is_package = module in {m.rsplit(".", 1)[0] for m in modules if "." in m} and (
            module.split(".")[-1] != "__init__"
        )
        names = _top_level_imports(ast.parse(text), module, is_package)
        edges: set[str] = set()
        for name in names:
            if name in modules:
                edges.add(name)
            elif name.rsplit(".", 1)[0] in modules:
                edges.add(name.rsplit(".", 1)[0])  # "from pkg.mod import func"
            else:
                edges.add(name.split(".")[0])
        # Importing a submodule imports its package first.
        parts = module.split(".")
        edges.update(
            ".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules
        )
        graph[module] = edges - {module}
    return graph


def reach(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Everything ``start`` imports transitively, each with the module it was imported from."""
    seen: dict[str, str] = {}
    stack = [start]
    while stack:
        current = stack.pop()
        for name in graph.get(current, ()):
            if name not in seen and name != start:
                seen[name] = current
                stack.append(name)
    return seen


def _chain(seen: dict[str, str], start: str, target: str) -> str:
    path = [target]
    while path[-1] != start and path[-1] in seen:
        path.append(seen[path[-1]])
    return " <- ".join(path)


def _sources() -> dict[str, str]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            out[_module_name(path)] = path.read_text(encoding="utf-8")
    return out


def _core_modules(sources: dict[str, str]) -> list[str]:
    edges = {p[:-3].replace("/", ".") for p in EDGE_MODULES}
    return [m for m in sources if m.split(".")[0] in CORE_PACKAGES and m not in edges]


def violations(sources: dict[str, str]) -> list[str]:
    graph = import_graph(sources)
    found = []
    for module in _core_modules(sources):
        seen = reach(graph, module)
        for bad in sorted(FORBIDDEN & set(seen)):
            found.append(f"{module} reaches {bad}: {_chain(seen, module, bad)}")
    for module in sources:
        if module.startswith("alphaloop.cli"):
            continue
        seen = {n for n in graph[module] if n.startswith("alphaloop.cli")}
        # The roof: the CLI is imported by nothing (not even lazily: any import line counts).
        lazy = {
            node.module
            for node in ast.walk(ast.parse(sources[module]))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alphaloop.cli")
        }
        for name in sorted(seen | lazy):
            found.append(f"{module} imports the CLI module {name}")
    return found


def test_no_core_module_reaches_ray_or_mlflow_and_nothing_imports_the_cli() -> None:
    assert violations(_sources()) == []


def test_control_a_core_module_importing_an_edge_module_is_caught() -> None:
    sources = _sources()
    # A core module gaining one innocent-looking import of an edge module (season imports
    # MLflow's tracking at module level through arena.tracking, or Ray through the actors).
    sources["simulators.metrics"] += "\nimport arena.actors\n"
    sources["genome.genes"] += "\nfrom alphaloop.cli import main\n"
    found = violations(sources)
    assert any(v.startswith("simulators.metrics reaches ray") for v in found), found
    assert any("genome.genes imports the CLI" in v for v in found), found
    # Imports for type checking only and inside functions do not count.
    sources = _sources()
    sources["simulators.metrics"] += (
        "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ray\n"
        "def _late():\n    import mlflow\n"
    )
    assert violations(sources) == []


_RUNTIME = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "mlflow"))))
"""


@pytest.mark.parametrize(
    "module", ["simulators.backtest", "genome.compile", "arena.intraday", "arena.ledger", "ray"]
)
def test_runtime_import_of_a_core_module_loads_no_ray_or_mlflow(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _RUNTIME, module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    if module == "ray":  # the control: the probe does see Ray when it is imported
        assert "ray" in loaded
    else:
        assert loaded == [], (module, loaded[:5])
