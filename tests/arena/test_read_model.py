"""One read model per store: only each store's own module talks SQL to its file.

Every module of ``arena/``, ``reports/``, ``alphaloop/`` and ``evolution/`` is scanned (its
syntax tree, not its text): outside ``arena/ledger.py`` (the ledger), ``evolution/store.py``
(the gene pool) and the smaller stores' modules (:data:`STORE_MODULES`) no module imports
``sqlite3`` or calls pandas' ``read_sql*``, and no string in
it is an SQL statement or names one of the two stores' tables after an SQL keyword. The one
exception is ``arena/stress.py``, which imports ``sqlite3`` for the sandbox snapshot only: it
may open connections and call SQLite's online backup API, nothing else (checked below).
"""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

from arena.ledger import Ledger
from evolution.store import GenePoolStore

ROOT = Path(__file__).resolve().parents[2]
SCANNED_PACKAGES = ("arena", "reports", "alphaloop", "evolution")
# The writer and reader of each store: the only modules that may hold its SQL.
STORE_MODULES = {
    "arena/ledger.py",
    "evolution/store.py",
    "arena/memory.py",  # the experience memory (memory.sqlite)
    "arena/adjustments.py",  # the daily review's adjustments (adjustments.sqlite)
    "alphaloop/alert_store.py",  # alerts and the daily routine's step records (ops.sqlite)
}
# Imports sqlite3 for SQLite's online backup API (a consistent sandbox copy), no SQL.
BACKUP_ONLY_MODULES = {"arena/stress.py"}
FORBIDDEN_IMPORTS = {"sqlite3", "_sqlite3"}
FORBIDDEN_CALLS = {"read_sql", "read_sql_query", "read_sql_table"}
# A string that starts like an SQL statement.
_STATEMENT = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|PRAGMA|BEGIN|WITH)\s"
)
# A word only a query has, beside a table named after FROM / JOIN / INTO / UPDATE / TABLE.
_QUERY_WORD = re.compile(r"\b(SELECT|WHERE|ORDER\s+BY|GROUP\s+BY|VALUES|SET|LIMIT)\b", re.I)
# The SQLite calls a backup-only module may make on a connection.
BACKUP_CALLS = {"connect", "backup", "close"}
# Whole-file maintenance (backup, integrity check, VACUUM): no table is ever named.
MAINTENANCE_MODULES = {"alphaloop/sqlite_files.py"}
MAINTENANCE_STATEMENTS = {"PRAGMA integrity_check", "VACUUM"}


def _store_tables(folder: Path) -> set[str]:
    """Return the table names of a new ledger and a new gene pool (their current schemas)."""
    names: set[str] = set()
    with Ledger(folder / "ledger.sqlite"):
        pass
    with GenePoolStore(folder / "gene_pool.sqlite"):
        pass
    for name in ("ledger.sqlite", "gene_pool.sqlite"):
        connection = sqlite3.connect(folder / name)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            names.update(str(row[0]) for row in rows if not str(row[0]).startswith("sqlite_"))
        finally:
            connection.close()
    return names


def _strings(tree: ast.AST) -> list[str]:
    """Return every string literal; an f-string's literal parts joined around ``{}``."""
    out: list[str] = []
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstrings.add(id(value))
                is_text = isinstance(value, ast.Constant) and isinstance(value.value, str)
                parts.append(value.value if is_text else "{}")  # type: ignore[union-attr]
            out.append("".join(parts))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in inside_fstrings:
                out.append(node.value)
    return out


def scan_source(
    source: str, tables: set[str], *, backup_only: bool = False, maintenance: bool = False
) -> list[str]:
    """Return the raw-store accesses of a module's ``source`` (empty when it has none).

    Parameters
    ----------
    tables:
        The stores' table names (an SQL keyword followed by one of them is a raw query).
    backup_only:
        The module may import ``sqlite3``, but only to open connections and back them up.
    maintenance:
        The module may import ``sqlite3`` and execute :data:`MAINTENANCE_STATEMENTS` only.
    """
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_IMPORTS and not (
                    backup_only or maintenance
                ):
                    found.append(f"line {node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_IMPORTS and not (backup_only or maintenance):
                found.append(f"line {node.lineno}: imports from {node.module}")
        elif isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: calls {node.attr}")
            if backup_only:
                named = isinstance(node.value, ast.Name) and node.value.id == "sqlite3"
                if named and node.attr not in {"connect", "Connection"}:
                    found.append(f"line {node.lineno}: uses sqlite3.{node.attr}")
                if node.attr in {"execute", "executemany", "executescript", "cursor"}:
                    found.append(f"line {node.lineno}: calls .{node.attr} (not backup-only)")
    names = "|".join(sorted(map(re.escape, tables)))
    mentions = re.compile(rf"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+({names})\b", re.IGNORECASE)
    for text in _strings(tree):
        if maintenance and text in MAINTENANCE_STATEMENTS:
            continue
        if _STATEMENT.match(text):
            found.append(f"SQL statement {text.strip()[:60]!r}")
            continue
        hit = mentions.search(text)
        # Prose says "from positions"; a query (in any case) has SELECT / WHERE / ORDER BY ...
        if hit and _QUERY_WORD.search(text):
            found.append(f"SQL against {hit.group(2)!r}: {text.strip()[:60]!r}")
    return found


def read_model_violations(tables: set[str]) -> list[str]:
    """Return ``path: problem`` for every scanned module that reads a store behind its API."""
    out = []
    for package in SCANNED_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in STORE_MODULES:
                continue
            source = path.read_text(encoding="utf-8")
            problems = scan_source(
                source,
                tables,
                backup_only=rel in BACKUP_ONLY_MODULES,
                maintenance=rel in MAINTENANCE_MODULES,
            )
            out.extend(f"{rel}: {problem}" for problem in problems)
    return out


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return _store_tables(tmp_path_factory.mktemp("stores"))


def test_store_tables_include_the_ledger_and_the_pool(tables: set[str]) -> None:
    assert {"fills", "orders", "positions", "days", "equity", "decisions"} <= tables
    assert {"genomes", "members", "sessions", "lineage", "transitions"} <= tables


def test_modules_outside_the_stores_read_them_only_through_their_read_methods(
    tables: set[str],
) -> None:
    assert read_model_violations(tables) == []


def test_stress_uses_sqlite_only_for_the_backup_snapshot(tables: set[str]) -> None:
    source = (ROOT / "arena" / "stress.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    snapshot = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "snapshot_database"
    )
    inside = {id(node) for node in ast.walk(snapshot)}
    uses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "sqlite3"
    ]
    # sqlite3 is touched in the snapshot only, and only to connect ...
    assert uses and all(id(node) in inside and node.attr == "connect" for node in uses)
    connections = {
        target.id
        for node in ast.walk(snapshot)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "connect"
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    called = {
        node.func.attr
        for node in ast.walk(snapshot)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in connections
    }
    # ... and the connections only back up and close: no SQL reaches either file.
    assert connections == {"reader", "writer"}
    assert called == BACKUP_CALLS - {"connect"}
    assert scan_source(source, tables, backup_only=True) == []
    # Without the exception the import itself is caught.
    assert any("imports sqlite3" in problem for problem in scan_source(source, tables))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import sqlite3\n", "imports sqlite3"),
        ("from sqlite3 import connect\n", "imports from sqlite3"),
        ("import pandas as pd\nframe = pd.read_sql('x', con)\n", "calls read_sql"),
        (
            "def last(conn):\n"
            "    return conn.execute('SELECT MAX(day) AS day FROM days').fetchone()\n",
            "SQL statement",
        ),
        (
            "QUERY = (\n"
            "    'SELECT e.account, e.equity '\n"
            "    'FROM equity e JOIN accounts a USING (account)'\n"
            ")\n",
            "SQL statement",
        ),
        ("def rows(t):\n    return f'SELECT * FROM {t} WHERE day=?'\n", "SQL statement"),
        ("SQL = 'count(*) from fills where side = ? ORDER BY seq'\n", "SQL against 'fills'"),
        ("SQL = '  select genome_id from genomes'\n", "SQL against 'genomes'"),
        ("def f(c):\n    c.execute(f'UPDATE days SET reviewed = {1}')\n", "SQL statement"),
    ],
)
def test_scan_catches_a_planted_raw_query(source: str, expected: str, tables: set[str]) -> None:
    problems = scan_source(source, tables)
    assert any(expected in problem for problem in problems), problems


def test_scan_catches_a_planted_query_in_a_backup_only_module(tables: set[str]) -> None:
    source = (
        "import sqlite3\n"
        "def peek(path):\n"
        "    conn = sqlite3.connect(path)\n"
        "    return conn.execute('SELECT payload FROM decisions WHERE day = ?', ('x',))\n"
    )
    problems = scan_source(source, tables, backup_only=True)
    assert any("calls .execute" in problem for problem in problems), problems
    assert any("SQL statement" in problem for problem in problems), problems


def test_scan_leaves_prose_about_the_tables_alone(tables: set[str]) -> None:
    source = (
        '"""Read the fills from the ledger; rows from positions and days come sorted."""\n'
        "NOTE = 'the equity from days before the week'\n"
    )
    assert scan_source(source, tables) == []


def test_scan_lets_a_maintenance_module_run_only_the_file_statements(tables: set[str]) -> None:
    source = (ROOT / "alphaloop" / "sqlite_files.py").read_text(encoding="utf-8")
    assert scan_source(source, tables, maintenance=True) == []
    assert any("imports sqlite3" in problem for problem in scan_source(source, tables))
    planted = (
        "import sqlite3\n"
        "def peek(c):\n"
        "    c.execute('PRAGMA integrity_check')\n"
        "    c.execute('PRAGMA table_info(fills)')\n"
        "    return c.execute('SELECT * FROM fills WHERE day = ?', ('x',))\n"
    )
    problems = scan_source(planted, tables, maintenance=True)
    assert len(problems) == 2 and all("SQL statement" in p for p in problems), problems
