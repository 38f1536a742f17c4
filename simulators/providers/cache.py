"""Parquet cache of downloaded bars under ``<lab home>/cache/<provider>/``.

One file per request: ``<symbol>__<interval>__<adjust>__<start>__<end>.parquet`` (the symbol
percent-encoded). A request without an end date is keyed by today's UTC date, so it is
downloaded at most once a day; when that download fails, the newest older file of the same
request can still be served (and the report says so).

Writes are atomic (a temporary file in the same folder, then ``os.replace``): a crash never
leaves a half-written file, and an existing file is only replaced by a complete one. What
is written is the provider's normalised but *unrepaired* frame, so that validation (and its
report) is the same on a cache hit as on a download.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from simulators.bars import FIELDS

_SEPARATOR = "__"


class ParquetCache:
    """The cache folder of one provider.

    Parameters
    ----------
    root:
        The lab's cache folder (``LabHome.cache``).
    provider:
        Sub-folder name, e.g. ``yfinance``.
    """

    def __init__(self, root: Path, provider: str) -> None:
        self.folder = Path(root) / provider

    def path_for(self, symbol: str, *parts: str) -> Path:
        """Return the file of ``symbol`` for a request described by ``parts``."""
        cleaned = [quote(symbol, safe="-._")] + [quote(str(p) or "-", safe="-._") for p in parts]
        return self.folder / (_SEPARATOR.join(cleaned) + ".parquet")

    def read(self, path: Path) -> pd.DataFrame | None:
        """Return the cached frame, or None when missing or unreadable.

        An unreadable file (truncated by a crash of an old version, foreign file) is treated
        as a miss; it will be replaced by the next successful, validated download.
        """
        if not path.is_file():
            return None
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError):
            return None
        if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
            return None
        if any(name not in frame.columns for name in FIELDS):
            return None
        return frame

    def write(self, path: Path, frame: pd.DataFrame) -> None:
        """Write ``frame`` to ``path`` atomically (temporary file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
        os.close(handle)
        try:
            frame.to_parquet(temporary)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def latest_sibling(self, path: Path) -> Path | None:
        """Return the newest other file of the same request with a different end date."""
        stem_parts = path.stem.split(_SEPARATOR)
        prefix = _SEPARATOR.join(stem_parts[:-1]) + _SEPARATOR
        if not self.folder.is_dir():
            return None
        candidates = sorted(
            (p for p in self.folder.glob(f"{prefix}*.parquet") if p != path),
            key=lambda p: p.stem.split(_SEPARATOR)[-1],
        )
        return candidates[-1] if candidates else None
