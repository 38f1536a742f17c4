"""US stocks, ETFs and crypto pairs from Yahoo Finance through ``yfinance.download``.

``yfinance.download`` answers in one of several shapes, all handled by
:func:`split_download`: MultiIndex columns ``(Price, Ticker)`` (``group_by="column"``, the
default), ``(Ticker, Price)`` (``group_by="ticker"``) or flat ``Open, High, ...`` columns
(one ticker with ``multi_level_index=False``). A ticker that failed comes back as all-NaN
columns (yfinance logs the error instead of raising), so such tickers are retried like
exceptions.

Daily bars come with naive dates and become bar-close stamps (16:00 New York for stocks,
the end of the UTC day for crypto). Intraday bars are stamped by their *open* by Yahoo, so
one bar period is added. ``end`` is inclusive here (Yahoo's is exclusive; a day is added).
With ``adjust=auto`` (the default) prices are split- and dividend-adjusted by Yahoo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from alphaloop.errors import DataSourceUnavailable
from simulators.providers import FetchResult, RetryPolicy, TransientError, call_with_retries
from simulators.providers.cache import ParquetCache
from simulators.providers.files import frame_from_table

PROVIDER = "yfinance"

INTERVALS: dict[str, str] = {
    "1m": "1min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "60m": "1h",
    "1h": "1h",
    "1d": "1D",
    "1wk": "1W",
}
_PRICE_FIELDS = {"open", "high", "low", "close", "adj close", "volume"}


def split_download(data: pd.DataFrame | None, tickers: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Split a ``yfinance.download`` result into one table per ticker (upper-case keys).

    Rows where a ticker has no price at all (the union index of a multi-ticker download
    puts weekend rows of a crypto pair into a stock's columns) are dropped; a ticker with
    no row left is absent from the result.
    """
    if data is None or data.empty:
        return {}
    columns = data.columns
    tables: dict[str, pd.DataFrame] = {}
    if isinstance(columns, pd.MultiIndex):
        level0 = {str(v).strip().lower() for v in columns.get_level_values(0)}
        ticker_level = 1 if level0 & _PRICE_FIELDS else 0
        for ticker in dict.fromkeys(columns.get_level_values(ticker_level)):
            sub = data.xs(ticker, axis=1, level=ticker_level)
            tables[str(ticker).upper()] = sub
    else:
        if len(tickers) != 1:
            raise ValueError(f"flat yfinance columns but {len(tickers)} tickers asked for")
        tables[str(tickers[0]).upper()] = data
    out = {}
    for ticker, table in tables.items():
        prices = [c for c in table.columns if str(c).strip().lower() in _PRICE_FIELDS - {"volume"}]
        table = table.dropna(how="all", subset=prices)
        if not table.empty:
            out[ticker] = table
    return out


def _download_day(value: str | None, *, exclusive_end: bool = False) -> str | None:
    if value is None:
        return None
    day = dt.date.fromisoformat(value)
    return (day + dt.timedelta(days=1)).isoformat() if exclusive_end else day.isoformat()


def fetch_yfinance(
    symbols: Sequence[str],
    *,
    cache: ParquetCache,
    market: str,
    interval: str = "1d",
    start: str | None = None,
    end: str | None = None,
    adjust: bool = True,
    refresh: bool = False,
    retry: RetryPolicy | None = None,
) -> FetchResult:
    """Return raw frames for ``symbols``, from the cache or from Yahoo.

    Parameters
    ----------
    symbols:
        Yahoo tickers (``AAPL``, ``BTC-USD``, ``^GSPC``).
    cache:
        The ``yfinance`` cache folder.
    market:
        ``us`` or ``crypto`` (chooses time zone and daily close).
    interval:
        One of :data:`INTERVALS`.
    start, end:
        ISO dates, both inclusive; None for Yahoo's defaults (full history / today).
    adjust:
        Ask Yahoo for split/dividend-adjusted prices.
    refresh:
        Download even when cached.
    retry:
        Attempts and back-off.

    Raises
    ------
    DataSourceUnavailable
        Naming the provider and every symbol that could not be downloaded and has no cache.
    """
    retry = retry or RetryPolicy()
    freq = INTERVALS[interval]
    end_key = end or dt.datetime.now(dt.UTC).date().isoformat()
    parts = (interval, "adj" if adjust else "raw", start or "-", end_key)
    result = FetchResult()
    paths = {symbol: cache.path_for(symbol, *parts) for symbol in symbols}
    for symbol in symbols:
        cached = None if refresh else cache.read(paths[symbol])
        if cached is not None:
            result.frames[symbol] = cached
    missing = [s for s in symbols if s not in result.frames]
    tables: dict[str, pd.DataFrame] = {}
    last_error = ""
    if missing:
        by_upper = {s.upper(): s for s in missing}

        def attempt() -> None:
            nonlocal last_error
            wanted = [s for s in missing if s not in tables]
            try:
                import yfinance

                data = yfinance.download(
                    wanted,
                    start=_download_day(start),
                    end=_download_day(end, exclusive_end=True),
                    interval=interval,
                    auto_adjust=adjust,
                    actions=False,
                    progress=False,
                    threads=False,
                    group_by="column",
                    multi_level_index=True,
                    timeout=retry.timeout_s,
                )
            except Exception as exc:  # any library/network failure is worth a retry
                last_error = f"{type(exc).__name__}: {exc}"
                raise TransientError(last_error) from exc
            for ticker, table in split_download(data, wanted).items():
                if ticker in by_upper:
                    tables[by_upper[ticker]] = table
            still = [s for s in wanted if s not in tables]
            if still:
                last_error = last_error or "no rows returned"
                raise TransientError(f"no data for {', '.join(still)}")

        try:
            call_with_retries(attempt, retry)
        except TransientError:
            pass
    stamp = "close" if freq in ("1D", "1W") else "open"
    failed = []
    for symbol in missing:
        if symbol in tables:
            parts_by_symbol, _ = frame_from_table(
                tables[symbol], where=f"yfinance:{symbol}", market=market, stamp=stamp, freq=freq
            )
            result.frames[symbol] = next(iter(parts_by_symbol.values()))
            result.fresh[symbol] = paths[symbol]
            continue
        stale = None if end else cache.latest_sibling(paths[symbol])
        frame = cache.read(stale) if stale is not None else None
        if frame is not None and stale is not None:
            result.frames[symbol] = frame
            result.stale.add(symbol)
            result.notes[symbol] = f"download failed ({last_error}); served cache {stale.name}"
            continue
        failed.append(symbol)
    if failed:
        raise DataSourceUnavailable(
            f"yfinance: cannot download {', '.join(failed)} after {retry.attempts} attempt(s) "
            f"({last_error or 'no data'}) and nothing is cached in {cache.folder}; "
            "check the network connection and the ticker symbols"
        )
    result.frames = {symbol: result.frames[symbol] for symbol in symbols}
    return result
