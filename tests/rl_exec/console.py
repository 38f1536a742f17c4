"""The console entry point run in the test's own process, for the rl_exec CLI tests."""

from __future__ import annotations

import sys
import warnings

import pytest

from alphaloop.cli import main


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``alphaloop ARGS`` in this process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["alphaloop", *args])
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(code: int, err: str) -> str:
    """Assert exit 2 with exactly one ``error:`` line and no traceback; return that line."""
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]
