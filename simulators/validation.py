"""Validation of market data at ingest: find bad bars, then raise, warn or repair.

Every per-symbol frame that enters the lab passes :func:`validate_frames` before it becomes
a :class:`~simulators.bars.Panel`. Each kind of problem has one action in the
:class:`QualityPolicy` (defaults in ``alphaloop/configs/data.yaml``):

``raise``
    the problem is reported and, once every symbol has been checked, a
    :class:`~alphaloop.errors.DataQualityError` names symbol, kind, first timestamps and
    count (:meth:`DataQualityReport.raise_for_errors`);
``warn``
    the problem is reported, the data is kept as it is;
``repair``
    the affected bars are repaired and each one is listed (by timestamp) in the report.

Repairs, in the order they are applied: sort by time (stable), drop duplicated timestamps
keeping the last, drop rows with NaN/Inf prices (NaN/Inf volume becomes 0), drop rows with
non-positive prices, clip high/low so that ``low <= min(open, close) <= max(open, close) <=
high``, drop isolated outlier bars, drop zero-volume bars, drop bars outside the session and
extended-hours bars. Jumps, gaps, mixed bar sizes, missing and truncated sessions cannot be
repaired (nobody knows the true prices), only warned about or raised.

Checks against the market's calendar (:func:`simulators.calendars.market_sessions`; ``cn``
XSHG, ``us`` XNYS), after the value checks:

``mixed_bar_sizes`` (every market; default ``raise``)
    one file mixes bar sizes: several bars on one day of a daily file (intraday rows appended
    to daily rows), bars closer together than the file's bar size, a day of coarser bars, or
    a lone date-only row among intraday days. Such a file would be read at one wrong size.
``missing_session`` (XSHG, XNYS; ``warn``)
    sessions of the calendar between the first and the last bar with no bar at all (a
    holiday is not a session, so it is never missing; a suspended stock's days are). One
    issue lists every such session (its close stamp).
``truncated_session`` (XSHG, XNYS, intraday; ``warn``)
    a session whose last regular-hours bar closes more than ``truncated_session_minutes``
    (and more than one bar) before the session's close, e.g. the A-share circuit-breaker
    days 2016-01-04 (stopped at 13:34) and 2016-01-07 (at 09:59). Early closes are known
    to the calendar and are not truncations.
``outside_session`` (XSHG, XNYS; ``warn``)
    bars on a day that is not a session (weekend, holiday) or, intraday, outside regular
    hours (before the open, in the A-share lunch break, after the close) and not in XNYS's
    extended hours. A bar counts as in the session when its interval ``(stamp - bar, stamp]``
    overlaps it; a 1-minute bar stamped at the XSHG open (09:30, the opening auction) too.
``extended_hours`` (XNYS, intraday; ``warn``)
    pre-market (04:00 to the open) and post-market (the close to 20:00) bars, counted.

``none`` (the ``weekdays`` calendar) and ``crypto`` (``24/7``) keep the gap rule above and
are not checked against sessions; the synthetic market is checked against ``weekdays``
(the calendar it is generated on) whatever its market.

Frames here are "raw frames": a tz-aware ``DatetimeIndex`` of bar-close timestamps (maybe
unsorted or duplicated) and float columns ``open, high, low, close, volume``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import model_validator

from alphaloop.config import FrozenConfig
from alphaloop.errors import DataQualityError
from simulators.bars import FIELDS
from simulators.calendars import (
    EXCHANGE_CALENDARS,
    FREQUENCY_STEPS,
    is_daily_or_slower,
    market_calendar,
    market_sessions,
    market_timezone,
    missing_business_days,
    session_dates,
)

PRICES: tuple[str, ...] = FIELDS[:4]

RaiseOrRepair = Literal["raise", "repair"]
RaiseOrWarn = Literal["raise", "warn"]
AnyAction = Literal["raise", "warn", "repair"]

# Kinds, in the order the checks run (and the report lists them).
ISSUE_KINDS: tuple[str, ...] = (
    "unsorted",
    "duplicate_timestamp",
    "nan",
    "non_positive",
    "ohlc_inconsistent",
    "outlier",
    "zero_volume",
    "jump",
    "gap",
    "mixed_bar_sizes",
    "missing_session",
    "truncated_session",
    "outside_session",
    "extended_hours",
)

# How many timestamps of one issue the text table shows (the dict has them all).
_SHOWN_TIMESTAMPS = 3


class QualityPolicy(FrozenConfig):
    """What to do with each kind of bad data, and the thresholds that define "bad".

    Duplicated timestamps, NaN prices and non-positive prices cannot be kept in a panel
    (a panel has one bar per timestamp, and a NaN or negative price breaks every
    computation downstream), so their action is ``raise`` or ``repair``. Jumps and gaps
    cannot be repaired, so theirs is ``raise`` or ``warn``.
    """

    unsorted: AnyAction = "repair"
    duplicate_timestamp: RaiseOrRepair = "repair"
    nan: RaiseOrRepair = "repair"
    non_positive: RaiseOrRepair = "raise"
    ohlc_inconsistent: AnyAction = "repair"
    outlier: AnyAction = "repair"
    zero_volume: AnyAction = "warn"
    jump: RaiseOrWarn = "warn"
    gap: RaiseOrWarn = "warn"
    mixed_bar_sizes: RaiseOrWarn = "raise"
    missing_session: RaiseOrWarn = "warn"
    truncated_session: RaiseOrWarn = "warn"
    outside_session: AnyAction = "warn"
    """``repair`` drops the bars outside the session."""
    extended_hours: AnyAction = "warn"
    """``repair`` drops the pre- and post-market bars (regular hours only)."""

    jump_log_return: float = 0.4
    """A close-to-close ``|log return|`` above this is a jump (0.4: +49% or -33%)."""
    jump_log_return_crypto: float = 0.7
    outlier_log_distance: float = 1.0
    """A bar is an outlier when one of its prices is this far (in log) from the median close
    of its neighbours on every side that has neighbours (1.0: a factor of e)."""
    outlier_neighbours: int = 3
    gap_business_days: int = 6
    """Daily equity data: report a gap when more than this many business days in a row are
    missing (holidays such as the Chinese Golden Week skip up to 6)."""
    gap_crypto_bars: int = 0
    """Crypto: report a gap when more than this many bars in a row are missing."""
    truncated_session_minutes: int = 30
    """Intraday: a session is truncated when its last regular bar closes more than this many
    minutes (and more than one bar) before the session close."""

    @model_validator(mode="after")
    def _check_thresholds(self) -> QualityPolicy:
        for name in ("jump_log_return", "jump_log_return_crypto", "outlier_log_distance"):
            value = getattr(self, name)
            if not (0.0 < value <= 10.0):
                raise ValueError(f"{name} must be in (0, 10] (got {value})")
        if not (1 <= self.outlier_neighbours <= 50):
            raise ValueError(
                f"outlier_neighbours must be in [1, 50] (got {self.outlier_neighbours})"
            )
        for name in ("gap_business_days", "gap_crypto_bars"):
            value = getattr(self, name)
            if not (0 <= value <= 10_000):
                raise ValueError(f"{name} must be in [0, 10000] (got {value})")
        if not (1 <= self.truncated_session_minutes <= 1440):
            raise ValueError(
                "truncated_session_minutes must be in [1, 1440] "
                f"(got {self.truncated_session_minutes})"
            )
        return self

    def action(self, kind: str) -> str:
        """Return the action configured for ``kind``."""
        return str(getattr(self, kind))


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityIssue:
    """One kind of problem found in one symbol's bars.

    Attributes
    ----------
    symbol:
        The symbol (or file, for ``skipped_file``) the issue is about.
    kind:
        One of :data:`ISSUE_KINDS`, or a note such as ``skipped_file``, ``stale_cache``,
        ``calendar_range`` (bars past the days an exchange calendar records).
    action:
        What was done: ``raise`` (the data is rejected), ``warn`` (kept as is) or ``repair``
        (the listed bars were repaired).
    count:
        How many bars (or events) are affected.
    timestamps:
        ISO timestamps of every affected bar, in time order.
    detail:
        A short human explanation (the threshold, the worst value...).
    """

    symbol: str
    kind: str
    action: str
    count: int
    timestamps: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if self.action not in ("raise", "warn", "repair"):
            raise ValueError(f"QualityIssue.action must be raise/warn/repair, got {self.action!r}")
        if self.count < 0:
            raise ValueError(f"QualityIssue.count must be >= 0, got {self.count}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "symbol": self.symbol,
            "kind": self.kind,
            "action": self.action,
            "count": self.count,
            "timestamps": list(self.timestamps),
            "detail": self.detail,
        }

    def summary(self) -> str:
        """Return one line naming symbol, kind, count and the first timestamps."""
        shown = ", ".join(self.timestamps[:_SHOWN_TIMESTAMPS])
        more = (
            f" (+{len(self.timestamps) - _SHOWN_TIMESTAMPS} more)"
            if len(self.timestamps) > _SHOWN_TIMESTAMPS
            else ""
        )
        where = f", first at {shown}{more}" if shown else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.symbol}: {self.kind}: {self.count} bar(s){where}{detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataQualityReport:
    """Everything validation found in one load, per symbol.

    Attributes
    ----------
    source:
        The ``--data`` spec that was loaded.
    market, freq:
        Market and bar frequency the checks assumed.
    calendar:
        The calendar the bars were checked against (``XSHG``, ``XNYS``, ``24/7``,
        ``weekdays``; see :func:`simulators.calendars.market_sessions`).
    bars:
        Bars per symbol after the repairs.
    issues:
        Every issue found, grouped by symbol in load order, kinds in check order.
    """

    source: str
    market: str
    freq: str
    calendar: str = ""
    bars: dict[str, int] = field(default_factory=dict)
    issues: tuple[QualityIssue, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no issue is under a ``raise`` action (warnings and repairs are fine)."""
        return not self.errors

    @property
    def errors(self) -> tuple[QualityIssue, ...]:
        """The issues whose action is ``raise``."""
        return tuple(issue for issue in self.issues if issue.action == "raise")

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols that were checked."""
        return tuple(self.bars)

    def for_symbol(self, symbol: str) -> tuple[QualityIssue, ...]:
        """Return the issues of ``symbol``."""
        return tuple(issue for issue in self.issues if issue.symbol == symbol)

    def kinds(self, symbol: str | None = None) -> set[str]:
        """Return the issue kinds found (for one symbol, or for all)."""
        return {i.kind for i in self.issues if symbol is None or i.symbol == symbol}

    def with_issues(
        self, extra: tuple[QualityIssue, ...] | list[QualityIssue]
    ) -> DataQualityReport:
        """Return a copy with ``extra`` issues appended (ingest notes, skipped files)."""
        return DataQualityReport(
            source=self.source,
            market=self.market,
            freq=self.freq,
            calendar=self.calendar,
            bars=dict(self.bars),
            issues=(*self.issues, *extra),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (``json.dumps`` works on it as is)."""
        return {
            "source": self.source,
            "market": self.market,
            "freq": self.freq,
            "calendar": self.calendar,
            "ok": self.ok,
            "bars": dict(self.bars),
            "counts": {
                action: sum(1 for i in self.issues if i.action == action)
                for action in ("raise", "warn", "repair")
            },
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def to_json(self) -> str:
        """Return :meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """Return table rows ``(symbol, kind, action, count, first timestamps, detail)``."""
        out = []
        for issue in self.issues:
            shown = ", ".join(issue.timestamps[:_SHOWN_TIMESTAMPS])
            if len(issue.timestamps) > _SHOWN_TIMESTAMPS:
                shown += f" (+{len(issue.timestamps) - _SHOWN_TIMESTAMPS})"
            out.append(
                (issue.symbol, issue.kind, issue.action, str(issue.count), shown, issue.detail)
            )
        return out

    def to_text(self) -> str:
        """Return a readable plain-text table (one line per issue, then a verdict)."""
        header = ("symbol", "kind", "action", "count", "first timestamps", "detail")
        rows = self.rows()
        widths = [max([len(header[k])] + [len(r[k]) for r in rows]) for k in range(len(header))]
        widths[-1] = len(header[-1])  # the last column is left ragged

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

        bars = ", ".join(f"{symbol}={count}" for symbol, count in self.bars.items())
        out = [
            f"data: {self.source}  market={self.market}  calendar={self.calendar}  "
            f"freq={self.freq}  bars: {bars}"
        ]
        if rows:
            out.append(line(header).rstrip())
            out.extend(line(row).rstrip() for row in rows)
        else:
            out.append("no issues")
        verdict = "OK" if self.ok else f"FAILED: {len(self.errors)} issue(s) under 'raise'"
        out.append(verdict)
        return "\n".join(out)

    def raise_for_errors(self) -> None:
        """Raise :class:`DataQualityError` listing every issue under ``raise``; else return."""
        if self.ok:
            return
        lines = [f"data quality check failed for {self.source!r}:"]
        lines.extend(f"  {issue.summary()} (policy: {issue.kind}=raise)" for issue in self.errors)
        raise DataQualityError("\n".join(lines))


# ---------------------------------------------------------------------- policy loading


# ---------------------------------------------------------------------- checks
def _stamps(index: pd.Index) -> tuple[str, ...]:
    return tuple(pd.Timestamp(t).isoformat() for t in index)


def _issue(
    symbol: str, kind: str, action: str, index: pd.Index, detail: str, count: int | None = None
) -> QualityIssue:
    stamps = _stamps(pd.DatetimeIndex(index).sort_values())
    return QualityIssue(
        symbol=symbol,
        kind=kind,
        action=action,
        count=len(stamps) if count is None else count,
        timestamps=stamps,
        detail=detail,
    )


def _outlier_prices(frame: pd.DataFrame, neighbours: int, threshold: float) -> np.ndarray:
    """Flag prices that are far from the median close of their bar's neighbours on every side.

    Each price of a bar is compared with the median close of the ``neighbours`` bars before
    the bar and, on its own, with the median of the ``neighbours`` bars after it; it is off
    only when it is off on *both* sides (or on the one side an edge bar has). A split or a
    crash is off on one side only and is left to the jump check.

    Returns
    -------
    numpy.ndarray
        bool array of shape ``(T, 4)``: open, high, low, close.
    """
    if len(frame) < 3:
        return np.zeros((len(frame), len(PRICES)), dtype=bool)
    close = frame["close"].reset_index(drop=True)
    before = close.shift(1).rolling(neighbours, min_periods=1).median().to_numpy()
    after = close[::-1].shift(1).rolling(neighbours, min_periods=1).median()[::-1].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        # Non-positive prices left under a 'raise' policy give NaN here and are never "off".
        prices = np.log(frame[list(PRICES)].to_numpy(dtype=float))

    def off(reference: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            far = np.abs(prices - np.log(reference)[:, None]) > threshold
        return np.where(np.isnan(reference)[:, None], True, far)

    has_side = ~(np.isnan(before) & np.isnan(after))
    return np.asarray(off(before) & off(after) & has_side[:, None], dtype=bool)


def validate_frame(
    symbol: str,
    frame: pd.DataFrame,
    *,
    market: str,
    freq: str,
    policy: QualityPolicy,
    calendar: str | None = None,
) -> tuple[pd.DataFrame, list[QualityIssue]]:
    """Check one symbol's raw frame; return the (repaired) frame and the issues found.

    Never raises for bad data: issues under ``raise`` are returned with that action and the
    data they concern is left untouched (see :meth:`DataQualityReport.raise_for_errors`).

    Parameters
    ----------
    symbol:
        Name used in the issues.
    frame:
        tz-aware ``DatetimeIndex`` and columns ``open, high, low, close, volume``.
    market:
        ``none``, ``cn``, ``us`` or ``crypto`` (chooses the gap rule and jump threshold).
    freq:
        Bar frequency (``1D``, ``1h``, ``1min``...).
    policy:
        What to do with each kind.
    calendar:
        The calendar to check sessions against (default: the market's own,
        :func:`simulators.calendars.market_calendar`).
    """
    missing = [name for name in FIELDS if name not in frame.columns]
    if missing:
        raise ValueError(f"{symbol}: frame lacks columns {missing}")
    out = frame[list(FIELDS)].astype(float)
    issues: list[QualityIssue] = []

    # -- unsorted: a bar whose stamp is earlier than the one before it.
    stamps = out.index.as_unit("ns").asi8
    if len(stamps) > 1 and (np.diff(stamps) < 0).any():
        backwards = np.concatenate([[False], np.diff(stamps) < 0])
        action = policy.unsorted
        issues.append(
            _issue(
                symbol,
                "unsorted",
                action,
                out.index[backwards],
                "timestamp earlier than the bar before it",
            )
        )
        if action == "repair":
            out = out.sort_index(kind="stable")

    # -- duplicated timestamps: keep the last one delivered (the latest correction).
    duplicated = out.index.duplicated(keep="last")
    if duplicated.any():
        action = policy.duplicate_timestamp
        issues.append(
            _issue(
                symbol, "duplicate_timestamp", action, out.index[duplicated], "kept the last bar"
            )
        )
        if action == "repair":
            out = out[~duplicated]

    # -- NaN / Inf
    prices = out[list(PRICES)].to_numpy(dtype=float)
    bad_price = ~np.isfinite(prices).all(axis=1)
    bad_volume = ~np.isfinite(out["volume"].to_numpy(dtype=float))
    if bad_price.any() or bad_volume.any():
        action = policy.nan
        detail = (
            f"{int(bad_price.sum())} bar(s) with NaN/Inf prices, "
            f"{int(bad_volume.sum())} with NaN/Inf volume"
        )
        if action == "repair":
            detail += "; dropped the price rows, volume set to 0"
        issues.append(_issue(symbol, "nan", action, out.index[bad_price | bad_volume], detail))
        if action == "repair":
            out = out[~bad_price].copy()
            volume = out["volume"].to_numpy(dtype=float)
            out["volume"] = np.where(np.isfinite(volume), volume, 0.0)

    # -- non-positive prices (NaN compares False, so NaN rows left under 'raise' are skipped)
    with np.errstate(invalid="ignore"):
        non_positive = (out[list(PRICES)].to_numpy(dtype=float) <= 0).any(axis=1)
    if non_positive.any():
        action = policy.non_positive
        worst = float(np.nanmin(out[list(PRICES)].to_numpy(dtype=float)[non_positive]))
        issues.append(
            _issue(
                symbol, "non_positive", action, out.index[non_positive], f"lowest price {worst:g}"
            )
        )
        if action == "repair":
            out = out[~non_positive]

    # -- OHLC consistency: low <= min(open, close) <= max(open, close) <= high
    o, h, low, c = (out[name].to_numpy(dtype=float) for name in PRICES)
    with np.errstate(invalid="ignore"):
        inconsistent = (low > np.minimum(o, c)) | (h < np.maximum(o, c)) | (low > h)
    if inconsistent.any():
        action = policy.ohlc_inconsistent
        detail = "low <= min(open, close) <= max(open, close) <= high violated"
        if action == "repair":
            detail += "; high/low widened to cover open and close"
        issues.append(_issue(symbol, "ohlc_inconsistent", action, out.index[inconsistent], detail))
        if action == "repair":
            out = out.copy()
            out["high"] = np.fmax(np.fmax(h, o), c)
            out["low"] = np.fmin(np.fmin(low, o), c)

    # Value checks below need time order; under a non-repairing policy use a sorted view.
    ordered = out if out.index.is_monotonic_increasing else out.sort_index(kind="stable")

    # -- isolated outlier bars (e.g. a bogus first bar with open/high 4x the next closes)
    off = _outlier_prices(ordered, policy.outlier_neighbours, policy.outlier_log_distance)
    outliers = off.any(axis=1)
    if outliers.any():
        action = policy.outlier
        # A bad wick (high or low only, e.g. a low 10x too small) is clipped to the body;
        # a bar whose open or close is off cannot be trusted at all and is dropped.
        wick_only = outliers & ~off[:, 0] & ~off[:, 3]
        detail = (
            f"a price more than exp({policy.outlier_log_distance:g})x away from the median close "
            f"of its {policy.outlier_neighbours} neighbours on each side"
        )
        if action == "repair":
            detail += (
                f"; {int(wick_only.sum())} wick(s) clipped to open/close, "
                f"{int((outliers & ~wick_only).sum())} bar(s) dropped"
            )
        issues.append(_issue(symbol, "outlier", action, ordered.index[outliers], detail))
        if action == "repair":
            ordered = ordered.copy()
            body_high = ordered[["open", "close"]].max(axis=1).to_numpy()
            body_low = ordered[["open", "close"]].min(axis=1).to_numpy()
            ordered.loc[wick_only & off[:, 1], "high"] = body_high[wick_only & off[:, 1]]
            ordered.loc[wick_only & off[:, 2], "low"] = body_low[wick_only & off[:, 2]]
            ordered = ordered[~(outliers & ~wick_only)]
            out = ordered

    # -- zero volume
    zero_volume = ordered["volume"].to_numpy(dtype=float) == 0
    if zero_volume.any():
        action = policy.zero_volume
        detail = "no volume traded" + ("; bar dropped" if action == "repair" else "")
        issues.append(_issue(symbol, "zero_volume", action, ordered.index[zero_volume], detail))
        if action == "repair":
            out = out[~out.index.isin(ordered.index[zero_volume])]
            ordered = ordered[~zero_volume]

    # -- impossible jumps (close to close)
    threshold = policy.jump_log_return_crypto if market == "crypto" else policy.jump_log_return
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.diff(np.log(ordered["close"].to_numpy(dtype=float)))
    jumps = np.concatenate([[False], np.abs(returns) > threshold])
    # A move across a long gap in the data (a suspension) is not evidence of a split.
    after_gap = np.zeros(len(ordered), dtype=bool)
    if jumps.any() and market != "crypto" and is_daily_or_slower(freq) and freq != "1W":
        skipped = missing_business_days(ordered.index, market)
        after_gap[1:] = skipped > policy.gap_business_days
    for mask, why in (
        (jumps & ~after_gap, "split, bad tick or wrong adjustment?"),
        (
            jumps & after_gap,
            f"across a gap of more than {policy.gap_business_days} missing business days "
            "(a suspension or missing data: the price moved while no bar was recorded)",
        ),
    ):
        if mask.any():
            moves = np.abs(returns[mask[1:]])
            worst = float(returns[mask[1:]][int(np.nanargmax(moves))])
            issues.append(
                _issue(
                    symbol, "jump", policy.jump, ordered.index[mask],
                    f"|log return| > {threshold:g} (largest {worst:+.3f}); {why}",
                )
            )  # fmt: skip

    # -- gaps against the market calendar
    issues.extend(_gap_issues(symbol, ordered.index, market=market, freq=freq, policy=policy))

    # -- bar sizes and sessions of the calendar
    found, outside = _session_issues(
        symbol,
        ordered.index,
        market=market,
        freq=freq,
        calendar=calendar or market_calendar(market),
        policy=policy,
    )
    issues.extend(found)
    if outside.any():
        out = out[~out.index.isin(ordered.index[outside])]
    return out, issues


def _gap_issues(
    symbol: str, index: pd.DatetimeIndex, *, market: str, freq: str, policy: QualityPolicy
) -> list[QualityIssue]:
    if len(index) < 2:
        return []
    if market == "crypto":
        # 24/7: every missing bar is a gap, whatever the frequency.
        step = FREQUENCY_STEPS.get(freq, pd.Timedelta(days=1))
        missing = np.round(np.diff(index.as_unit("ns").asi8) / step.value).astype(np.int64) - 1
        unit, limit = "bar", policy.gap_crypto_bars
        after = index[1:][missing > limit]
        sizes = missing[missing > limit]
    else:
        # Equities and unknown markets: business days missing between consecutive bars'
        # dates (intraday bars: between trading days; gaps inside a session are not checked).
        if is_daily_or_slower(freq) and freq == "1W":
            return []
        dates = index if is_daily_or_slower(freq) else _last_bar_per_day(index, market)
        missing = missing_business_days(dates, market)
        unit, limit = "business day", policy.gap_business_days
        after = dates[1:][missing > limit]
        sizes = missing[missing > limit]
    if len(after) == 0:
        return []
    detail = (
        f"{len(after)} gap(s) of more than {limit} missing {unit}(s); longest {int(sizes.max())} "
        f"(timestamps are the bars after each gap)"
    )
    return [_issue(symbol, "gap", policy.gap, after, detail, count=int(sizes.sum()))]


# ---------------------------------------------------------------------- calendar checks
_NANOS_PER_MINUTE = 60_000_000_000
# A lone midnight bar this far from its neighbours is a date-only (daily) row.
_DAILY_ROW_APART = pd.Timedelta(hours=3).value
# Lone bars at the session close on this many days in a row are daily rows, not thin days.
_DAILY_ROW_RUN = 3


def _run_lengths(flags: np.ndarray) -> np.ndarray:
    """Return, for each True, the length of the run of Trues it belongs to (0 for False)."""
    out = np.zeros(len(flags), dtype=np.int64)
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
    for begin, stop in zip(edges[::2], edges[1::2], strict=True):
        out[begin:stop] = stop - begin
    return out


def _session_issues(
    symbol: str,
    index: pd.DatetimeIndex,
    *,
    market: str,
    freq: str,
    calendar: str,
    policy: QualityPolicy,
) -> tuple[list[QualityIssue], np.ndarray]:
    """Check bar sizes (every calendar) and sessions (exchange calendars) of sorted bars.

    Returns the issues and a mask over ``index`` of the bars a ``repair`` action drops.
    """
    drop = np.zeros(len(index), dtype=bool)
    if len(index) == 0:
        return [], drop
    dates = session_dates(index, market)
    sessions = market_sessions(market, dates[0], dates[-1], calendar=calendar)
    position = sessions.index.get_indexer(dates)
    issues: list[QualityIssue] = []

    mixed, why = _mixed_bar_sizes(index, dates, position, sessions, freq=freq)
    if mixed.any():
        issues.append(
            _issue(
                symbol, "mixed_bar_sizes", policy.mixed_bar_sizes, index[mixed],
                f"the file's bars are {freq} but {why}; split the file by bar size",
            )
        )  # fmt: skip
    if calendar not in EXCHANGE_CALENDARS or freq == "1W":
        return issues, drop

    bounds = sessions.attrs["bounds"]
    known = np.asarray((dates >= bounds[0]) & (dates <= bounds[1]), dtype=bool)
    if not known.all():
        issues.append(
            _issue(
                symbol, "calendar_range", "warn", index[~known],
                f"outside {bounds[0].date()}..{bounds[1].date()}, the days the {calendar} "
                "calendar records: not checked against sessions",
            )
        )  # fmt: skip
    checked = known & ~mixed
    on_session = position >= 0

    # -- missing sessions: a session day between the first and the last bar without any bar
    missing = sessions.index[~sessions.index.isin(dates)]
    if len(missing):
        closes = sessions.loc[missing, "close"]
        issues.append(
            _issue(
                symbol, "missing_session", policy.missing_session, pd.DatetimeIndex(closes),
                f"{len(missing)} {calendar} session(s) between the first and the last bar have no "
                "bar (missing data or a suspension; holidays are not sessions); timestamps are "
                "the sessions' closes",
            )
        )  # fmt: skip

    if is_daily_or_slower(freq):
        outside = checked & ~on_session
        if outside.any():
            issues.append(
                _issue(
                    symbol, "outside_session", policy.outside_session, index[outside],
                    f"daily bar on a day that is not a {calendar} session (weekend or holiday)"
                    + ("; bar dropped" if policy.outside_session == "repair" else ""),
                )
            )  # fmt: skip
            if policy.outside_session == "repair":
                drop |= outside
        return issues, drop

    step = FREQUENCY_STEPS.get(freq, pd.Timedelta(days=1)).value
    regular, extended = regular_and_extended(index, position, sessions, step=step)
    regular &= checked
    extended &= checked & ~regular
    outside = checked & ~regular & ~extended
    if outside.any():
        local = index.tz_convert(market_timezone(market))
        off_day = outside & ~on_session
        in_break = np.zeros(len(index), dtype=bool)
        if sessions["break_start"].notna().any():
            starts = _column(sessions, "break_start", position)
            ends = _column(sessions, "break_end", position)
            stamps = index.as_unit("ns").asi8
            in_break = outside & on_session & (stamps > starts) & (stamps <= ends)
        other = outside & ~off_day & ~in_break
        parts = [
            f"{int(off_day.sum())} on days that are not sessions",
            *([f"{int(in_break.sum())} in the lunch break"] if in_break.any() else []),
            f"{int(other.sum())} before the open or after the close",
        ]
        first_times = sorted({t.strftime("%H:%M") for t in local[in_break | other][:1000]})
        detail = f"{', '.join(parts)} of {calendar}"
        if first_times:
            detail += f" (local times such as {', '.join(first_times[:4])})"
        if policy.outside_session == "repair":
            detail += "; bars dropped"
        issues.append(
            _issue(symbol, "outside_session", policy.outside_session, index[outside], detail)
        )
        if policy.outside_session == "repair":
            drop |= outside
    if extended.any():
        stamps = index.as_unit("ns").asi8
        pre = extended & (stamps <= _column(sessions, "open", position))
        days = len(np.unique(position[extended]))
        detail = (
            f"{int(pre.sum())} pre-market (04:00 to the open) and {int((extended & ~pre).sum())} "
            f"post-market (the close to 20:00) bar(s) on {days} session(s); not regular hours"
            + ("; bars dropped" if policy.extended_hours == "repair" else "")
        )
        issues.append(
            _issue(symbol, "extended_hours", policy.extended_hours, index[extended], detail)
        )
        if policy.extended_hours == "repair":
            drop |= extended

    truncated = _truncated_sessions(
        index, position, sessions, present=checked & on_session, regular=regular,
        step=step, minutes=policy.truncated_session_minutes,
    )  # fmt: skip
    if len(truncated):
        local = pd.DatetimeIndex(index[truncated]).tz_convert(market_timezone(market))
        first = local[0]
        close = sessions["close"].iloc[position[truncated[0]]]
        issues.append(
            _issue(
                symbol, "truncated_session", policy.truncated_session, index[truncated],
                f"{len(truncated)} session(s) whose last regular bar closes more than "
                f"{policy.truncated_session_minutes} min before the session close (first: "
                f"{first.date()} last bar {first.strftime('%H:%M')}, close "
                f"{close.strftime('%H:%M')}); timestamps are those last bars",
            )
        )  # fmt: skip
    return issues, drop


def _column(sessions: pd.DataFrame, column: str, position: np.ndarray) -> np.ndarray:
    """Return ``sessions[column]`` of each bar's session as int64 ns (NaT/no session: min int)."""
    values = pd.DatetimeIndex(sessions[column]).as_unit("ns").asi8
    out = np.full(len(position), np.iinfo(np.int64).min, dtype=np.int64)
    found = position >= 0
    out[found] = values[position[found]]
    return out


def regular_and_extended(
    index: pd.DatetimeIndex, position: np.ndarray, sessions: pd.DataFrame, *, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return masks of the bars in regular hours and in extended hours of their session.

    A bar is ``(stamp - step, stamp]``; it is in a part of the session when the two overlap.
    A bar stamped at the XSHG open is the opening call auction and counts as regular.
    """
    nat = np.iinfo(np.int64).min
    stamps = index.as_unit("ns").asi8
    begin = stamps - step
    on_session = position >= 0
    opens, closes = _column(sessions, "open", position), _column(sessions, "close", position)
    breaks, resumes = (_column(sessions, name, position) for name in ("break_start", "break_end"))
    has_break = breaks != nat
    morning_end = np.where(has_break, breaks, closes)
    regular = on_session & (stamps > opens) & (begin < morning_end)
    regular |= on_session & has_break & (stamps > resumes) & (begin < closes)
    if sessions.attrs.get("calendar") == "XSHG":
        regular |= on_session & (stamps == opens)
    ext_open = _column(sessions, "extended_open", position)
    ext_close = _column(sessions, "extended_close", position)
    extended = on_session & (ext_open != nat) & (stamps > ext_open) & (begin < ext_close)
    return regular, extended & ~regular


def _truncated_sessions(
    index: pd.DatetimeIndex,
    position: np.ndarray,
    sessions: pd.DataFrame,
    *,
    present: np.ndarray,
    regular: np.ndarray,
    step: int,
    minutes: int,
) -> np.ndarray:
    """Return the positions (in ``index``) of the last bar of each truncated session."""
    stamps = index.as_unit("ns").asi8
    closes = _column(sessions, "close", position)
    slack = max(step, minutes * _NANOS_PER_MINUTE)
    rows = np.flatnonzero(present)
    if len(rows) == 0:
        return rows
    frame = pd.DataFrame({"session": position[rows], "row": rows, "regular": regular[rows]})
    last_any = frame.groupby("session")["row"].max()
    last_regular = frame[frame["regular"]].groupby("session")["row"].max()
    last = last_regular.reindex(last_any.index)
    no_regular = last.isna()
    last = last.fillna(last_any).astype(np.int64).to_numpy()
    early = stamps[last] < closes[last] - slack
    return np.sort(last[early | no_regular.to_numpy()])


def _mixed_bar_sizes(
    index: pd.DatetimeIndex,
    dates: pd.DatetimeIndex,
    position: np.ndarray,
    sessions: pd.DataFrame,
    *,
    freq: str,
) -> tuple[np.ndarray, str]:
    """Return a mask of the bars that are of another size than ``freq``, and why.

    Daily files: bars sharing a day with another bar. Weekly files: bars under half a week
    after the one before. Intraday files: bars closer than one bar after the one before
    (except a shorter bar ending at a session close or at the lunch break), days whose bars
    are all a whole multiple (at least 2) of the bar size apart (a day of coarser bars), and a
    lone bar on its day stamped at midnight or at the session close among days of several
    bars (a daily row).
    """
    mask = np.zeros(len(index), dtype=bool)
    if len(index) < 2:
        return mask, ""
    stamps = index.as_unit("ns").asi8
    diffs = np.diff(stamps)
    day = dates.as_unit("ns").asi8
    same_day = day[1:] == day[:-1]
    step = FREQUENCY_STEPS.get(freq, pd.Timedelta(days=1)).value
    if freq == "1D":
        shared = same_day & (diffs > 0)
        mask[1:] |= shared
        mask[:-1] |= shared
        days = len(np.unique(day[mask]))
        return mask, f"{days} day(s) hold several bars (intraday rows among daily ones?)"
    if is_daily_or_slower(freq):
        mask[1:] |= (diffs > 0) & (diffs < step // 2)
        return mask, "some bars are less than half a week apart"
    reasons = []
    boundaries = np.concatenate(
        [
            pd.DatetimeIndex(sessions[name].dropna()).as_unit("ns").asi8
            for name in ("close", "break_start")
        ]
    )
    finer = (diffs > 0) & (diffs < step) & ~np.isin(stamps[1:], boundaries)
    if finer.any():
        mask[1:] |= finer
        reasons.append(f"{int(finer.sum())} bar(s) follow the one before by less than one bar")
    # Per day: number of bars and the smallest spacing inside the day.
    starts = np.flatnonzero(np.r_[True, ~same_day])
    counts = np.diff(np.r_[starts, len(index)])
    inner = np.where(same_day & (diffs > 0), diffs, np.iinfo(np.int64).max)
    smallest = (
        np.minimum.reduceat(np.r_[inner, np.iinfo(np.int64).max], starts)
        if len(inner)
        else np.full(len(starts), np.iinfo(np.int64).max)
    )
    standard = {value.value for value in FREQUENCY_STEPS.values()}
    coarse = (
        (counts >= 3)
        & (smallest >= 2 * step)
        & (smallest % step == 0)
        & np.isin(smallest, list(standard))
    )
    if coarse.any():
        for start, count in zip(starts[coarse], counts[coarse], strict=True):
            mask[start : start + count] = True
        reasons.append(f"{int(coarse.sum())} day(s) hold bars of a larger size")
    # Most bars sit on days of several bars (a median over bars, not days).
    if np.median(np.repeat(counts, counts)) >= 4:
        lone = counts == 1
        first = starts[lone]
        local = index[first].tz_convert(sessions.attrs["timezone"])
        before = np.r_[np.iinfo(np.int64).max, diffs][first]
        after = np.r_[diffs, np.iinfo(np.int64).max][first]
        apart = (before >= _DAILY_ROW_APART) & (after >= _DAILY_ROW_APART)
        # A date-only row read as midnight, hours away from the bars around it ...
        midnight = np.zeros(len(starts), dtype=bool)
        midnight[lone] = np.asarray(local == local.normalize(), dtype=bool) & apart
        # ... or rows stamped at the session close, day after day.
        at_close = np.zeros(len(starts), dtype=bool)
        at_close[lone] = stamps[first] == _column(sessions, "close", position[first])
        runs = _run_lengths(at_close)
        daily_rows = midnight | (at_close & (runs >= _DAILY_ROW_RUN))
        if daily_rows.any():
            mask[starts[daily_rows]] = True
            reasons.append(
                f"{int(daily_rows.sum())} day(s) hold one bar stamped at midnight or at the "
                "close (daily rows among intraday ones?)"
            )
    return mask, "; ".join(reasons)


def _last_bar_per_day(index: pd.DatetimeIndex, market: str) -> pd.DatetimeIndex:
    local = index.tz_convert(market_timezone(market))
    days = local.normalize()
    keep = ~pd.Index(days).duplicated(keep="last")
    return index[keep]


def validate_frames(
    frames: Mapping[str, pd.DataFrame],
    *,
    market: str,
    freq: str,
    policy: QualityPolicy | None = None,
    source: str = "",
    calendar: str | None = None,
) -> tuple[dict[str, pd.DataFrame], DataQualityReport]:
    """Validate every symbol's frame; return the repaired frames and one report.

    Does not raise for bad data; call :meth:`DataQualityReport.raise_for_errors` (the
    loaders do) to turn issues under ``raise`` into a :class:`DataQualityError`.
    ``calendar`` overrides the market's own (the synthetic market uses ``weekdays``).
    """
    policy = policy or QualityPolicy()
    calendar = calendar or market_calendar(market)
    repaired: dict[str, pd.DataFrame] = {}
    issues: list[QualityIssue] = []
    for symbol, frame in frames.items():
        out, found = validate_frame(
            symbol, frame, market=market, freq=freq, policy=policy, calendar=calendar
        )
        repaired[symbol] = out
        issues.extend(found)
    report = DataQualityReport(
        source=source,
        market=market,
        freq=freq,
        calendar=calendar,
        bars={symbol: len(frame) for symbol, frame in repaired.items()},
        issues=tuple(issues),
    )
    return repaired, report
