"""No two modules of the lab import each other, by any path, and the report layer stays apart.

Every import statement counts here: at module level, inside a function and under
``if TYPE_CHECKING:`` (a cycle hidden in a function is still two modules that cannot be
understood, or moved, one without the other). The graph is the project's own modules; a
cycle is a strongly connected component of more than one module. Two rules for the arena's
day (``docs/arena_day.md``): ``arena/`` imports ``reports/`` only inside functions, and
``reports/`` reads the arena only through its public modules (:data:`ARENA_PUBLIC`). Each
check has a control that shows it can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("alphaloop", "genome", "simulators", "evolution", "arena", "rl_exec", "reports")
# What reports/ may read of the arena: the ledger's read methods, the day's market type,
# money units, the personas' names, the executor's TWAP counterfactual and the experience
# memory's store (the judge's weights in the weekly report) and the debate's certainty label
# (arena.personas' config already holds the debate's).
ARENA_PUBLIC = frozenset(
    {
        "arena.ledger", "arena.market", "arena.money", "arena.personas", "arena.intraday",
        "arena.memory", "arena.debate",
    }
)  # fmt: skip


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, modules: dict[str, Path], *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for name in names:
            target = _resolve(name, modules)
            if target is not None:
                out.add(target)
    return out


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Return ``module -> the project modules it imports`` (every import statement)."""
    modules = _modules(root, packages)
    graph = {}
    for name, path in modules.items():
        # A package's submodules importing the package itself (its __init__) is no cycle.
        graph[name] = {
            t for t in _imports(path, modules) if t != name and not name.startswith(t + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_two_modules_import_each_other() -> None:
    assert cycles(import_graph(ROOT, PACKAGES)) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    # Control: a cycle made only of a function-level and a TYPE_CHECKING import is found.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import h\n"
        "def g():\n    return 1\n"
    )
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert cycles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c"]]


def _reports_reads(root: Path) -> dict[str, set[str]]:
    graph = import_graph(root, PACKAGES)
    return {
        module: {t for t in targets if t.startswith("arena")}
        for module, targets in graph.items()
        if module.startswith("reports")
    }


def test_reports_read_only_the_arenas_public_modules() -> None:
    wrong = {
        m: sorted(t - ARENA_PUBLIC) for m, t in _reports_reads(ROOT).items() if t - ARENA_PUBLIC
    }
    assert wrong == {}
    # Control: the day's report assembly does read the arena (the check looks at something).
    assert _reports_reads(ROOT)["reports.arena_day"] & ARENA_PUBLIC


def test_arena_imports_reports_only_inside_functions() -> None:
    modules = _modules(ROOT, PACKAGES)
    at_import = {
        name: sorted(
            t for t in _imports(path, modules, top_level_only=True) if t.startswith("reports")
        )
        for name, path in modules.items()
        if name.startswith("arena")
    }
    assert {k: v for k, v in at_import.items() if v} == {}
    # Control: arena/ does reach reports/ (the day writes its report), from a function.
    everywhere = {
        t for n, p in modules.items() if n.startswith("arena") for t in _imports(p, modules)
    }
    assert "reports.arena_day" in everywhere


def test_the_day_is_a_pipeline_of_stage_modules() -> None:
    # The day's modules exist under the names of its stages, and the day calls them in order.
    source = (ROOT / "arena" / "day.py").read_text(encoding="utf-8")
    for stage in ("perceive", "plan", "trade", "account", "review", "market"):
        assert (ROOT / "arena" / f"{stage}.py").exists(), stage
    body = source[source.index("def run_arena_day(") :]
    order = [body.index(call) for call in ("plan_day(", "accounts.run(", "review_committed_day(")]
    assert order == sorted(order)


def _rl_exec_reads_of_arena(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    return {
        module: sorted(t for t in targets if t.split(".")[0] == "arena")
        for module, targets in graph.items()
        if module.split(".")[0] == "rl_exec" and any(t.split(".")[0] == "arena" for t in targets)
    }


def test_rl_exec_imports_nothing_of_the_arena() -> None:
    # The layers: simulators/ (the day's market type) < rl_exec/ < arena/. The arena loads the
    # registered execution policy, so rl_exec/ reading the arena would tie the two together.
    graph = import_graph(ROOT, PACKAGES)
    assert _rl_exec_reads_of_arena(graph) == {}
    # Control: the arena does read rl_exec/ (the check's direction is the real one), and an
    # rl_exec module importing the arena's market module is caught.
    assert any(
        t.startswith("rl_exec") for n, ts in graph.items() if n.startswith("arena") for t in ts
    )
    graph["rl_exec.models"] = graph["rl_exec.models"] | {"arena.market"}
    assert _rl_exec_reads_of_arena(graph) == {"rl_exec.models": ["arena.market"]}
