"""Market data providers: local files, yfinance and akshare, with a Parquet cache.

Every provider turns its source's own format into *raw frames*: one DataFrame per symbol
with a tz-aware ``DatetimeIndex`` of bar-close timestamps and float columns ``open, high,
low, close, volume`` (see :mod:`simulators.bars` for the conventions). Raw frames are not
validated here; :mod:`simulators.data_spec` validates them and only then writes what came
from the network to the cache, so bad data never replaces a good cached file.

Network providers retry transient failures with exponential back-off (tenacity) and, when a
symbol cannot be fetched and nothing is cached, raise one
:class:`~alphaloop.errors.DataSourceUnavailable` naming the provider and every such symbol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pandas as pd
from pydantic import Field
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from alphaloop.config import FrozenConfig

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying (network error, empty answer from a flaky endpoint)."""


class RetryPolicy(FrozenConfig):
    """How network providers retry: attempts and exponential back-off (seconds)."""

    attempts: int = Field(default=3, ge=1, le=20)
    wait_initial_s: float = Field(default=1.0, ge=0.0, le=60.0)
    wait_max_s: float = Field(default=30.0, ge=0.0, le=600.0)
    timeout_s: float = Field(default=20.0, gt=0.0, le=600.0)


def call_with_retries(function: Callable[[], T], policy: RetryPolicy) -> T:
    """Call ``function``; retry on :class:`TransientError` with exponential back-off.

    The last :class:`TransientError` is re-raised when every attempt failed; any other
    exception (a bug, bad arguments) propagates at once.
    """
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential(multiplier=policy.wait_initial_s, max=policy.wait_max_s),
        retry=retry_if_exception_type(TransientError),
        reraise=True,
    )
    return retrying(function)


@dataclass(slots=True)
class FetchResult:
    """What a network provider returns.

    Attributes
    ----------
    frames:
        Raw frames per symbol, in the order asked for.
    fresh:
        For symbols downloaded now: the cache file to write once the data is validated.
    notes:
        Human notes for the report (e.g. "served from a stale cache after a failure").
    stale:
        Symbols served from an older cache file because the download failed.
    """

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    fresh: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
