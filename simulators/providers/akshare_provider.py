"""China A-share stocks and indices through akshare (East Money and Sina endpoints).

Symbols
-------
* a 6-digit stock code (``600036``, ``000002``; ``sh600036``/``600036.SH`` are accepted and
  the code is used);
* an index with its exchange prefix: ``sh000xxx`` or ``sz399xxx`` (``sh000001`` is the SSE
  Composite; without the prefix ``000001`` is the stock Ping An Bank).

Endpoints (checked against akshare 1.19)
----------------------------------------
========= ====================================================== ==========================
interval  stock                                                  index
========= ====================================================== ==========================
``1d``    ``stock_zh_a_hist(symbol, "daily", start, end, adjust)`` ``stock_zh_index_daily``
``Nm``    ``stock_zh_a_hist_min_em(symbol, start, end, N, adjust)`` ``index_zh_a_hist_min_em``
========= ====================================================== ==========================

East Money answers with Chinese headers (日期/时间, 开盘, 收盘, 最高, 最低, 成交量 in lots of
100 shares, 成交额, ...); Sina's index history with English ``date, open, high, low, close,
volume``. Stock volume is converted to shares; index volume is kept as delivered. Daily
bars close at 15:00 Asia/Shanghai; East Money stamps minute bars by their end (kept).
``adjust``: ``qfq`` (forward, the default: recent prices are real quotes), ``hfq`` or
``none``. ``end`` is inclusive.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import pandas as pd

from alphaloop.errors import DataSourceUnavailable, DataSpecError
from simulators.providers import FetchResult, RetryPolicy, TransientError, call_with_retries
from simulators.providers.cache import ParquetCache
from simulators.providers.files import frame_from_table

PROVIDER = "akshare"

INTERVALS: dict[str, str] = {
    "1m": "1min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "60m": "1h",
    "1d": "1D",
}
ADJUSTMENTS: dict[str, str] = {"qfq": "qfq", "hfq": "hfq", "none": ""}
_LOT = 100.0  # East Money reports stock volume in lots (手) of 100 shares

_INDEX = re.compile(r"^(sh000\d{3}|sz399\d{3})$")
_STOCK = re.compile(r"^(?:sh|sz|bj)?(\d{6})(?:\.(?:sh|sz|bj))?$")


def classify_symbol(symbol: str) -> tuple[str, str]:
    """Return ``("index", "sh000001")`` or ``("stock", "600036")`` for a user symbol.

    Raises
    ------
    DataSpecError
        For anything that is neither a 6-digit code nor a prefixed index code.
    """
    lowered = symbol.strip().lower()
    if _INDEX.match(lowered):
        return "index", lowered
    match = _STOCK.match(lowered)
    if match:
        return "stock", match.group(1)
    raise DataSpecError(
        f"akshare: symbol {symbol!r} is not an A-share code: use a 6-digit stock code "
        "(600036) or an index with its exchange prefix (sh000001, sz399001)"
    )


def _call(
    kind: str,
    code: str,
    interval: str,
    start: str | None,
    end: str | None,
    adjust: str,
    timeout: float,
) -> pd.DataFrame:
    import akshare

    if interval == "1d":
        if kind == "stock":
            return akshare.stock_zh_a_hist(
                symbol=code,
                period="daily",
                start_date=(start or "1970-01-01").replace("-", ""),
                end_date=(end or "2050-01-01").replace("-", ""),
                adjust=adjust,
                timeout=timeout,
            )
        return akshare.stock_zh_index_daily(symbol=code)
    period = interval[:-1]
    start_time = f"{start or '1979-09-01'} 09:00:00"
    end_time = f"{end or '2222-01-01'} 15:30:00"
    if kind == "stock":
        return akshare.stock_zh_a_hist_min_em(
            symbol=code, start_date=start_time, end_date=end_time, period=period, adjust=adjust
        )
    return akshare.index_zh_a_hist_min_em(
        symbol=code[2:], period=period, start_date=start_time, end_date=end_time
    )


def normalise(
    table: pd.DataFrame,
    *,
    kind: str,
    interval: str,
    symbol: str,
    start: str | None,
    end: str | None,
) -> pd.DataFrame:
    """Turn one akshare answer into a raw frame (bar-close stamps, shares, inclusive dates)."""
    parts, _ = frame_from_table(
        table, where=f"akshare:{symbol}", market="cn", freq=INTERVALS[interval]
    )
    frame = next(iter(parts.values()))
    if kind == "stock":
        frame = frame.assign(volume=frame["volume"] * _LOT)
    # Sina's index history ignores dates: cut it here so every answer covers the request.
    local_days = frame.index.tz_convert("Asia/Shanghai").normalize().tz_localize(None)
    keep = pd.Series(True, index=frame.index)
    if start:
        keep &= local_days >= pd.Timestamp(start)
    if end:
        keep &= local_days <= pd.Timestamp(end)
    return frame[keep.to_numpy()]


def fetch_akshare(
    symbols: Sequence[str],
    *,
    cache: ParquetCache,
    interval: str = "1d",
    start: str | None = None,
    end: str | None = None,
    adjust: str = "qfq",
    refresh: bool = False,
    retry: RetryPolicy | None = None,
) -> FetchResult:
    """Return raw frames for ``symbols``, from the cache or from akshare.

    Parameters
    ----------
    symbols:
        Stock codes and prefixed index codes (see :func:`classify_symbol`).
    cache:
        The ``akshare`` cache folder.
    interval:
        One of :data:`INTERVALS`.
    start, end:
        ISO dates, both inclusive.
    adjust:
        ``qfq``, ``hfq`` or ``none`` (stocks only; indices are never adjusted).
    refresh:
        Download even when cached.
    retry:
        Attempts and back-off.

    Raises
    ------
    DataSpecError
        A symbol is not an A-share code.
    DataSourceUnavailable
        Naming the provider and every symbol that could not be fetched and has no cache.
    """
    retry = retry or RetryPolicy()
    kinds = {symbol: classify_symbol(symbol) for symbol in symbols}
    end_key = end or dt.datetime.now(dt.UTC).date().isoformat()
    result = FetchResult()
    failures: dict[str, str] = {}
    for symbol in symbols:
        kind, code = kinds[symbol]
        adjust_key = adjust if kind == "stock" else "-"
        path = cache.path_for(symbol, interval, adjust_key, start or "-", end_key)
        cached = None if refresh else cache.read(path)
        if cached is not None:
            result.frames[symbol] = cached
            continue
        errors: list[str] = []

        def attempt(kind: str = kind, code: str = code, errors: list[str] = errors) -> pd.DataFrame:
            try:
                return _call(kind, code, interval, start, end, ADJUSTMENTS[adjust], retry.timeout_s)
            except Exception as exc:  # network, JSON and endpoint errors are all retried
                errors.append(f"{type(exc).__name__}: {exc}")
                raise TransientError(errors[-1]) from exc

        try:
            table = call_with_retries(attempt, retry)
        except TransientError:
            table = None
        if table is not None and not table.empty:
            frame = normalise(
                table, kind=kind, interval=interval, symbol=symbol, start=start, end=end
            )
            if not frame.empty:
                result.frames[symbol] = frame
                result.fresh[symbol] = path
                continue
            errors.append("no bars in the requested dates")
        elif table is not None:
            errors.append("empty answer (unknown code or no bars in the requested dates)")
        stale = None if end else cache.latest_sibling(path)
        frame_or_none = cache.read(stale) if stale is not None else None
        if frame_or_none is not None and stale is not None:
            result.frames[symbol] = frame_or_none
            result.stale.add(symbol)
            result.notes[symbol] = f"fetch failed ({errors[-1]}); served cache {stale.name}"
            continue
        failures[symbol] = errors[-1] if errors else "no data"
    if failures:
        listing = "; ".join(f"{symbol}: {reason}" for symbol, reason in failures.items())
        raise DataSourceUnavailable(
            f"akshare: cannot fetch {', '.join(failures)} after {retry.attempts} attempt(s) "
            f"and nothing is cached in {cache.folder} ({listing}); "
            "check the network connection and the symbols"
        )
    return result
