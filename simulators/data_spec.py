"""``--data SPEC``: one string that says where market data comes from, understood everywhere.

Syntax
------
==================================================  =============================================
spec                                                meaning
==================================================  =============================================
*(nothing)*, ``synthetic``                          the seeded synthetic market (the default)
``synthetic:seed=7,assets=5``                       ... with options (``,`` or ``;`` separated)
``sample``                                          the small sample market shipped with the lab
``yfinance:AAPL,MSFT,BTC-USD``                      Yahoo Finance tickers
``yfinance:SPY;start=2020-01-01;end=2023-12-31``    ... with ``;key=value`` options
``akshare:600036,000002,sh000001;interval=5m``      China A-share stocks and indices
``path/to/AAPL.csv``, ``path/to/folder``            CSV/Parquet file(s); symbol = file stem
``file:path/to/bars.csv;market=cn``                 ... with ``;key=value`` options
==================================================  =============================================

Options
-------
* yfinance: ``start``, ``end`` (ISO dates, inclusive), ``interval`` (``1d`` default, ``1wk``,
  ``1h``/``60m``, ``30m``, ``15m``, ``5m``, ``1m``), ``adjust`` (``auto`` default or ``none``),
  ``market``, ``refresh`` (``1``: download even when cached).
* akshare: ``start``, ``end``, ``interval`` (``1d`` default, ``60m``, ``30m``, ``15m``, ``5m``,
  ``1m``), ``adjust`` (``qfq`` default, ``hfq``, ``none``), ``market``, ``refresh``.
* files: ``market`` (``none`` default, ``cn``, ``us``, ``crypto``), ``tz`` (zone of naive
  timestamps, default the market's), ``stamp`` (``close`` default, or ``open`` when intraday
  bars are stamped by their open), ``freq`` (keep only files of that frequency in a folder),
  ``symbol`` (name of a single-file symbol).
* synthetic: passed as is to :meth:`simulators.synthetic.SyntheticSpec.from_options`.

Markets: akshare is ``cn``; yfinance is ``us`` unless every symbol is a crypto pair
(``BTC-USD``...), then ``crypto``. Files without ``market=`` get the market their symbols
obviously belong to (:func:`infer_market`): every symbol an A-share code with its exchange
(``sh600000``, ``sz300059_history``, ``600000.SH``, ``bj430047``) gives ``cn``, every symbol a
crypto pair (``BTC-USD``, ``BTCUSDT``, ``ETH_USDT_1h``, ``Binance_BTCUSDT_1h``) ``crypto``;
the quality report notes the inference (``market_inferred``). Otherwise a file is ``none``
(fractional sizes, no fees, no price limits, UTC for naive times) with a
:class:`~alphaloop.errors.DataWarning` and a ``market_default`` note that say so and how to
set it.
Naive file timestamps are exchange-local time of that market (UTC for ``none``/``crypto``).

Loading validates every symbol (:mod:`simulators.validation`) under a
:class:`~simulators.validation.QualityPolicy` (default: ``alphaloop/configs/data.yaml``) and only
then writes what was downloaded to ``<lab home>/cache/<provider>/``.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alphaloop.config import FrozenConfig, load_config
from alphaloop.errors import DataSpecError, DataWarning
from alphaloop.home import LabHome
from simulators.bars import FIELDS, Panel
from simulators.calendars import (
    MARKETS,
)
from simulators.providers import FetchResult, RetryPolicy
from simulators.validation import DataQualityReport, QualityIssue, QualityPolicy, validate_frames

KINDS: tuple[str, ...] = ("synthetic", "sample", "yfinance", "akshare", "file")

_NETWORK_OPTIONS = ("start", "end", "interval", "adjust", "market", "refresh")
ALLOWED_OPTIONS: dict[str, tuple[str, ...]] = {
    "sample": (),
    "yfinance": _NETWORK_OPTIONS,
    "akshare": _NETWORK_OPTIONS,
    "file": ("market", "tz", "stamp", "freq", "symbol"),
}
_CRYPTO = re.compile(r"^[A-Z0-9]+-(USD|USDT|USDC|EUR|BTC|ETH)$", re.IGNORECASE)
# A file symbol that is obviously an A-share code with its exchange, or a crypto pair (a file
# stem may carry a suffix after an underscore: sz300059_history, BTCUSDT_1h).
_ASHARE_FILE = re.compile(r"^(?:(?:sh|sz|bj)[._]?\d{6}|\d{6}[._](?:sh|sz|bj|ss))(?:_.*)?$", re.I)
# Without a separator only crypto quote assets count (BTCUSDT, ETHBTC): AUDUSD is a currency.
_CRYPTO_FILE = re.compile(
    r"^(?:[A-Za-z]+_)?[A-Z0-9]{2,10}"
    r"(?:[-_/](?:USDT|USDC|BUSD|USD|EUR|BTC|ETH)|(?:USDT|USDC|BUSD|BTC|ETH))(?:_.*)?$",
    re.IGNORECASE,
)


def infer_market(symbols: Iterable[str]) -> str | None:
    """Return ``cn`` when every symbol is an A-share code with its exchange, ``crypto`` when
    every one is a crypto pair, else ``None`` (see the module docstring)."""
    names = [str(s) for s in symbols]
    if not names:
        return None
    if all(_ASHARE_FILE.match(n) for n in names):
        return "cn"
    if all(_CRYPTO_FILE.match(n) and not _ASHARE_FILE.match(n) for n in names):
        return "crypto"
    return None


_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".zip")


class DataConfig(FrozenConfig):
    """``alphaloop/configs/data.yaml``: the quality policy and the network retry policy."""

    quality: QualityPolicy = QualityPolicy()
    retry: RetryPolicy = RetryPolicy()


def load_data_config(path: str | Path | None = None) -> DataConfig:
    """Load the packaged ``data.yaml`` with the user file ``path`` (if any) over it."""
    return load_config(DataConfig, path, default_name="data.yaml")


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` string.

    Attributes
    ----------
    kind:
        ``synthetic``, ``sample``, ``yfinance``, ``akshare`` or ``file``.
    options:
        ``key=value`` options (strings, as written).
    symbols:
        Symbols for the network providers (empty otherwise).
    path:
        File or folder for ``file``.
    raw:
        The spec as given (``synthetic`` when none was).
    """

    kind: str
    options: dict[str, str] = field(default_factory=dict)
    symbols: tuple[str, ...] = ()
    path: Path | None = None
    raw: str = ""

    @property
    def market(self) -> str:
        """The market whose clock and rules apply (see the module docstring)."""
        if "market" in self.options:
            return self.options["market"]
        if self.kind == "akshare":
            return "cn"
        if self.kind == "yfinance":
            return "crypto" if all(_CRYPTO.match(s) for s in self.symbols) else "us"
        return "none"


# ---------------------------------------------------------------------- parsing
def _parse_options(text: str, separators: str, where: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in re.split(f"[{re.escape(separators)}]", text):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:
            raise DataSpecError(f"{where}: option {item!r} is not key=value")
        if key in options:
            raise DataSpecError(f"{where}: option {key!r} is given twice")
        options[key] = value
    return options


def _check_date(value: str, key: str, where: str) -> None:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise DataSpecError(f"{where}: option {key}={value!r} is not a date (YYYY-MM-DD)") from None


def _check_options(kind: str, options: dict[str, str], where: str) -> None:
    allowed = ALLOWED_OPTIONS.get(kind)
    if allowed is None:  # synthetic: its own module checks
        return
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listing = ", ".join(allowed) if allowed else "none"
        raise DataSpecError(f"{where}: unknown option(s) {', '.join(unknown)} (allowed: {listing})")
    if "market" in options and options["market"] not in MARKETS:
        raise DataSpecError(
            f"{where}: market={options['market']!r} is not one of {', '.join(MARKETS)}"
        )
    for key in ("start", "end"):
        if key in options:
            _check_date(options[key], key, where)
    if "start" in options and "end" in options and options["start"] > options["end"]:
        raise DataSpecError(f"{where}: start={options['start']} is after end={options['end']}")
    if "refresh" in options and options["refresh"] not in ("0", "1", "true", "false"):
        raise DataSpecError(f"{where}: refresh={options['refresh']!r} must be 1 or 0")
    if kind in ("yfinance", "akshare"):
        from simulators.providers import akshare_provider, yfinance_provider

        module = yfinance_provider if kind == "yfinance" else akshare_provider
        interval = options.get("interval", "1d")
        if interval not in module.INTERVALS:
            raise DataSpecError(
                f"{where}: interval={interval!r} is not one of {', '.join(module.INTERVALS)}"
            )
        adjustments = ("auto", "none") if kind == "yfinance" else tuple(module.ADJUSTMENTS)
        if options.get("adjust", adjustments[0]) not in adjustments:
            raise DataSpecError(
                f"{where}: adjust={options['adjust']!r} is not one of {', '.join(adjustments)}"
            )
    if kind == "file":
        if options.get("stamp", "close") not in ("close", "open"):
            raise DataSpecError(f"{where}: stamp={options['stamp']!r} must be close or open")
        if "freq" in options:
            from simulators.calendars import FREQUENCY_STEPS

            if options["freq"] not in FREQUENCY_STEPS:
                raise DataSpecError(
                    f"{where}: freq={options['freq']!r} is not one of {', '.join(FREQUENCY_STEPS)}"
                )
        if "tz" in options:
            try:
                pd.Timestamp("2020-01-01").tz_localize(options["tz"])
            except Exception:
                raise DataSpecError(f"{where}: tz={options['tz']!r} is not a time zone") from None


def parse_data_spec(spec: str | None) -> DataSpec:
    """Parse a ``--data`` string (see the module docstring for the syntax).

    Parameters
    ----------
    spec:
        The string, or None/empty for the default synthetic market.

    Raises
    ------
    DataSpecError
        For an unknown kind, a missing file, no symbols, an unknown or invalid option; the
        message quotes the spec and says what is allowed.
    """
    if spec is None or not spec.strip():
        return DataSpec(kind="synthetic", raw="synthetic")
    text = spec.strip()
    where = f"--data {text!r}"
    head, colon, rest = text.partition(":")
    kind = head.strip().lower()
    if kind == "synthetic":
        options = _parse_options(rest, ",;", where) if colon else {}
        return DataSpec(kind="synthetic", options=options, raw=text)
    if kind == "sample":
        options = _parse_options(rest, ",;", where) if colon else {}
        _check_options("sample", options, where)
        return DataSpec(kind="sample", options=options, raw=text)
    if kind in ("yfinance", "akshare") and colon:
        symbol_text, _, option_text = rest.partition(";")
        symbols = tuple(s.strip() for s in symbol_text.split(",") if s.strip())
        if not symbols:
            raise DataSpecError(
                f"{where}: no symbols after '{kind}:' (e.g. {kind}:{_example(kind)})"
            )
        if len(set(symbols)) != len(symbols):
            raise DataSpecError(f"{where}: a symbol is listed twice")
        options = _parse_options(option_text, ";", where)
        _check_options(kind, options, where)
        if kind == "yfinance":
            symbols = tuple(s.upper() for s in symbols)
        else:
            from simulators.providers.akshare_provider import classify_symbol

            for symbol in symbols:
                classify_symbol(symbol)
        return DataSpec(kind=kind, options=options, symbols=symbols, raw=text)
    if kind in ("yfinance", "akshare"):
        raise DataSpecError(f"{where}: {kind} needs symbols, e.g. {kind}:{_example(kind)}")
    # A path, with or without the "file:" prefix; options after the first ';'.
    path_text = rest if kind == "file" and colon else text
    path_part, _, option_text = path_text.partition(";")
    path = Path(path_part.strip()).expanduser()
    options = _parse_options(option_text, ";", where)
    if not path.exists():
        looks_like_path = (
            kind == "file"
            or path.suffix.lower() in _FILE_SUFFIXES
            or ("/" in path_part or "\\" in path_part)
        )
        if looks_like_path:
            raise DataSpecError(f"{where}: no such file or folder: {path}")
        raise DataSpecError(
            f"{where}: not a data spec and not an existing path; use one of: "
            "synthetic[:k=v,...], sample, yfinance:SYM1,SYM2[;k=v], akshare:CODE1,CODE2[;k=v], "
            "PATH[;k=v], file:PATH[;k=v]"
        )
    if path.is_file() and path.suffix.lower() not in _FILE_SUFFIXES:
        raise DataSpecError(f"{where}: {path} is not a .csv, .parquet or .zip file")
    _check_options("file", options, where)
    return DataSpec(kind="file", options=options, path=path, raw=text)


def _example(kind: str) -> str:
    return "AAPL,MSFT,BTC-USD" if kind == "yfinance" else "600036,000002,sh000001"


# ---------------------------------------------------------------------- loading
@dataclass(slots=True)
class _Loaded:
    frames: dict[str, pd.DataFrame]
    freq: str
    market: str
    notes: list[QualityIssue]
    fetched: FetchResult | None = None
    cache: object | None = None
    panel: Panel | None = None
    calendar: str | None = None  # None: the market's own (simulators.calendars.market_calendar)


def _panel_frames(panel: Panel) -> dict[str, pd.DataFrame]:
    # The tradable bars are the ones the source delivered; the others are Panel fill-ins.
    frames = {}
    for symbol in panel.symbols:
        frame = panel.frame(symbol)
        frames[symbol] = frame.loc[frame["tradable"], list(FIELDS)]
    return frames


def _fetch(spec: DataSpec, home: LabHome, retry: RetryPolicy) -> _Loaded:
    options = spec.options
    market = spec.market
    if spec.kind == "synthetic":
        from simulators.synthetic import SyntheticSpec, generate_daily

        panel = generate_daily(SyntheticSpec.from_options(dict(options)))
        # Generated on weekdays (every day for crypto), not on the exchange's holidays.
        calendar = "24/7" if panel.market == "crypto" else "weekdays"
        return _Loaded(
            _panel_frames(panel), panel.freq, panel.market, [], panel=panel, calendar=calendar
        )
    if spec.kind == "sample":
        from simulators.sample import load_sample

        panel = load_sample()
        return _Loaded(_panel_frames(panel), panel.freq, panel.market, [], panel=panel)
    if spec.kind == "file":
        from simulators.providers.files import load_path

        assert spec.path is not None

        def read(market: str) -> Any:
            assert spec.path is not None
            return load_path(
                spec.path,
                market=market,
                tz=options.get("tz"),
                stamp=options.get("stamp", "close"),
                freq=options.get("freq"),
                symbol=options.get("symbol"),
            )

        load = read(market)
        notes = []
        if "market" not in options:
            inferred = infer_market(load.frames)
            if inferred is not None:
                # Read again: naive timestamps are local time of the market.
                market, load = inferred, read(inferred)
                notes.append(
                    QualityIssue(
                        symbol="*", kind="market_inferred", action="warn", count=0,
                        detail=f"market={inferred} from the symbols ({', '.join(load.frames)}); "
                        "add ;market=... to the --data spec to choose another",
                    )
                )  # fmt: skip
            elif load.frames:
                why = (
                    f"{spec.raw}: no market= given and the symbols do not name one, so "
                    "market=none (fractional sizes, no fees, no price limits, naive times UTC);"
                    " add ;market=cn, ;market=us or ;market=crypto for a real market's rules"
                )
                warnings.warn(why, DataWarning, stacklevel=4)
                notes.append(
                    QualityIssue(
                        symbol="*", kind="market_default", action="warn", count=0, detail=why
                    )
                )
        notes += [
            QualityIssue(symbol=name, kind="skipped_file", action="warn", count=1, detail=why)
            for name, why in load.skipped.items()
        ]
        return _Loaded(load.frames, load.freq, market, notes)
    from simulators.providers.cache import ParquetCache

    refresh = options.get("refresh", "0") in ("1", "true")
    interval = options.get("interval", "1d")
    if spec.kind == "yfinance":
        from simulators.providers.yfinance_provider import INTERVALS, fetch_yfinance

        cache = ParquetCache(home.cache, "yfinance")
        fetched = fetch_yfinance(
            spec.symbols,
            cache=cache,
            market=market,
            interval=interval,
            start=options.get("start"),
            end=options.get("end"),
            adjust=options.get("adjust", "auto") == "auto",
            refresh=refresh,
            retry=retry,
        )
    else:
        from simulators.providers.akshare_provider import INTERVALS, fetch_akshare

        cache = ParquetCache(home.cache, "akshare")
        fetched = fetch_akshare(
            spec.symbols,
            cache=cache,
            interval=interval,
            start=options.get("start"),
            end=options.get("end"),
            adjust=options.get("adjust", "qfq"),
            refresh=refresh,
            retry=retry,
        )
    notes = [
        QualityIssue(symbol=symbol, kind="stale_cache", action="warn", count=1, detail=note)
        for symbol, note in fetched.notes.items()
    ]
    return _Loaded(dict(fetched.frames), INTERVALS[interval], market, notes, fetched, cache)


def _load(
    spec: str | None,
    home: LabHome | None,
    policy: QualityPolicy | None,
    retry: RetryPolicy | None,
) -> tuple[_Loaded, dict[str, pd.DataFrame], DataQualityReport, DataSpec]:
    parsed = parse_data_spec(spec)
    if policy is None or retry is None:
        config = load_data_config()
        policy = policy or config.quality
        retry = retry or config.retry
    home = home or LabHome.resolve()
    loaded = _fetch(parsed, home, retry)
    frames, report = validate_frames(
        loaded.frames,
        market=loaded.market,
        freq=loaded.freq,
        policy=policy,
        source=parsed.raw,
        calendar=loaded.calendar,
    )
    report = report.with_issues(loaded.notes)
    if loaded.fetched is not None and loaded.cache is not None:
        # Only what passed validation reaches the cache: bad data never replaces good data.
        from simulators.providers.cache import ParquetCache

        assert isinstance(loaded.cache, ParquetCache)
        failed = {issue.symbol for issue in report.errors}
        for symbol, path in loaded.fetched.fresh.items():
            if symbol not in failed:
                loaded.cache.write(path, loaded.fetched.frames[symbol])
    return loaded, frames, report, parsed


def check_market(
    spec: str | None = None,
    *,
    home: LabHome | None = None,
    policy: QualityPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> DataQualityReport:
    """Load and validate ``spec``; return the report without raising for bad data.

    Unreadable specs and unreachable sources still raise (``DataSpecError``,
    ``DataSourceUnavailable``). Data that passed validation is cached as usual.
    """
    _, _, report, _ = _load(spec, home, policy, retry)
    return report


def load_market_with_report(
    spec: str | None = None,
    *,
    home: LabHome | None = None,
    policy: QualityPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[Panel, DataQualityReport]:
    """Load ``spec`` into a validated :class:`Panel` and return the quality report with it.

    Parameters
    ----------
    spec:
        A ``--data`` string; None for the default synthetic market.
    home:
        Lab home whose ``cache/`` is used (default: resolved from the environment).
    policy:
        Quality policy (default: ``quality:`` of ``alphaloop/configs/data.yaml``).
    retry:
        Network retry policy (default: ``retry:`` of ``alphaloop/configs/data.yaml``).

    Raises
    ------
    DataSpecError
        The spec cannot be understood, or a file cannot be read.
    DataSourceUnavailable
        A provider cannot be reached and nothing is cached (one error for all symbols).
    DataQualityError
        A problem under a ``raise`` action (symbol, kind, first timestamps, count).
    """
    loaded, frames, report, parsed = _load(spec, home, policy, retry)
    report.raise_for_errors()
    if loaded.panel is not None and not any(i.action == "repair" for i in report.issues):
        # Nothing was changed: keep the generator's own panel (and its metadata).
        return loaded.panel, report
    empty = [symbol for symbol, frame in frames.items() if frame.empty]
    if empty:
        raise DataSpecError(f"--data {parsed.raw!r}: no bars left for {', '.join(empty)}")
    panel = Panel.from_frames(
        {symbol: frame.sort_index() for symbol, frame in frames.items()},
        freq=loaded.freq,
        market=loaded.market,
        source=parsed.raw,
    )
    return panel, report


def load_market(
    spec: str | None = None,
    *,
    home: LabHome | None = None,
    policy: QualityPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> Panel:
    """Load ``spec`` into a validated :class:`Panel` (see :func:`load_market_with_report`)."""
    panel, _ = load_market_with_report(spec, home=home, policy=policy, retry=retry)
    return panel


__all__ = [
    "KINDS",
    "DataConfig",
    "DataSpec",
    "check_market",
    "infer_market",
    "load_data_config",
    "load_market",
    "load_market_with_report",
    "parse_data_spec",
]


def load_quality_policy(path: str | Path | None = None) -> QualityPolicy:
    """Load the ``quality:`` section of the packaged ``data.yaml``, with ``path`` over it.

    Raises
    ------
    ConfigError
        When the packaged file is missing, a file is malformed or a key or action is not
        allowed (the message names the file and the key).
    """
    # data_spec imports this module; the config model of the whole file lives there.
    from simulators.data_spec import load_data_config

    return load_data_config(path).quality
