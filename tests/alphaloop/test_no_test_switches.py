"""No production module carries a switch that only tests use: tests bring their own adapters.

A test-only switch shows itself two ways: in words (a docstring or comment saying a parameter
or flag is "for tests only", "test-only", "only tests switch it", "for fault-injection
tests") or in a name (a parameter or field called ``test``, ``tests``, ``testing``,
``test_mode``, ``for_tests``...). Both are looked for in every module of the production
packages; each check has a control that plants an example and shows it is caught.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("alphaloop", "arena", "evolution", "genome", "reports", "rl_exec", "simulators")

#: Words that mark something as being there for the tests.
PHRASES = re.compile(
    r"\btests?[- ]only\b|\bonly (?:the |for )?tests\b|\bfor testing only\b"
    r"|\bfault[- ]injection tests?\b|\bonly (?:used )?(?:by|in) tests\b",
    re.IGNORECASE,
)
#: A name made of words one of which is ``test``/``tests``/``testing`` (not ``backtest``).
TEST_NAME = re.compile(r"(?:^|_)(?:tests?|testing)(?:_|$)", re.IGNORECASE)


def _names(tree: ast.AST) -> list[tuple[int, str]]:
    """Return ``(line, name)`` of every parameter and class-level field in ``tree``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            found += [(a.lineno, a.arg) for a in every]
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    found.append((item.lineno, item.target.id))
    return found


def switches(path: Path) -> list[str]:
    """Return ``path:line: why`` for every sign of a test-only switch in ``path``."""
    text = path.read_text(encoding="utf-8")
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = PHRASES.search(line)
        if match:
            problems.append(f"{path}:{number}: says {match.group(0)!r}")
    for number, name in _names(ast.parse(text, filename=str(path))):
        if TEST_NAME.search(name):
            problems.append(f"{path}:{number}: parameter or field {name!r}")
    return problems


def _production_modules() -> list[Path]:
    return sorted(p for package in PRODUCTION for p in (ROOT / package).rglob("*.py"))


def test_production_modules_have_no_test_only_switch() -> None:
    modules = _production_modules()
    assert len(modules) > 50  # the packages were found
    problems = [problem for path in modules for problem in switches(path)]
    assert not problems, "\n".join(problems)


def test_planted_test_only_switches_are_caught(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "def replay(names, *, drop_halts: bool = False):\n"
        '    """Replay ``names``.\n\n'
        "    drop_halts:\n"
        "        Tests only: hide the exchange halts from the executor.\n"
        '    """\n\n\n'
        "class Protections:\n"
        '    """Which protections run: all in production; only tests switch one off."""\n\n'
        "    testing: bool = False\n\n\n"
        "def pool(batch_pause: float = 0.0, for_tests: bool = False):\n"
        "    pass  # batch_pause exists for fault-injection tests\n",
        encoding="utf-8",
    )
    found = switches(planted)
    assert any(":5: says 'Tests only'" in f for f in found)
    assert any(":10: says 'only tests'" in f for f in found)
    assert any("'testing'" in f for f in found)
    assert any("'for_tests'" in f for f in found)
    assert any("fault-injection tests" in f for f in found)


def test_words_that_only_look_alike_are_not_caught(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text(
        "def calibrate(backtest_returns, size: str = 'small'):\n"
        '    """Build at ``size`` (``small`` for tests and quick runs, ``full``)."""\n\n\n'
        "def pid():\n"
        '    """Return the process id (tests kill it)."""\n',
        encoding="utf-8",
    )
    assert switches(clean) == []
