"""Strict JSON on stdout for ``--json``: one object per command, NaN/inf written as null."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def clean(value: Any) -> Any:
    """Return ``value`` with NaN and infinities replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def emit(payload: Any) -> None:
    """Write ``payload`` as one line of strict JSON on stdout."""
    sys.stdout.write(json.dumps(clean(payload), allow_nan=False, default=str) + "\n")
