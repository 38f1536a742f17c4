"""Performance metrics of an equity curve and its trades.

Conventions (also in ``docs/fill_assumptions.md``):

* Returns are simple bar-to-bar returns of the equity curve; the first bar's return is
  measured against the initial cash.
* Annualisation uses :func:`periods_per_year`: the market's trading sessions a year
  (:data:`TRADING_DAYS`: ``cn`` 243 from the XSHG calendar, ``us`` and ``none`` 252,
  ``crypto`` 365); intraday bars multiply by the bars in
  a session (US 390 minutes, China 240 minutes, crypto 1440 minutes); weekly bars use 52.
* The risk-free rate is 0. Sharpe = mean / std (ddof=1) * sqrt(P); Sortino uses the
  downside deviation ``sqrt(mean(min(r, 0)^2))``; a zero denominator gives 0.
* Max drawdown is a positive fraction (0.25 = a 25% fall from the running peak).
* Calmar = CAGR / max drawdown (0 when there is no drawdown).
* Trade statistics count closed trades only; profit factor = gross profit / gross loss
  (``inf`` with profits and no losses, 0 with no closed trades).
* Exposure = mean over bars of (value of positions / equity).
* Turnover = traded value (entries + exits) / mean equity / years (times a year).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "TRADING_DAYS",
    "annualised_sharpe",
    "compute_metrics",
    "daily_periods_per_year",
    "max_drawdown",
    "panel_periods_per_year",
    "periods_per_year",
    "sharpe_from_moments",
]

METRIC_NAMES: tuple[str, ...] = (
    "final_equity",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "n_trades",
    "exposure",
    "turnover",
)

_SESSION_MINUTES = {"us": 390.0, "cn": 240.0, "none": 390.0, "crypto": 1440.0}
_FREQ_MINUTES = {"1min": 1.0, "5min": 5.0, "15min": 15.0, "30min": 30.0, "1h": 60.0}


# Trading sessions in a year of each market: XSHG held 242.95 sessions a year on average over
# 2006-2025 (exchange_calendars 4.13: 242 or 243 every year since 2020), XNYS 251.55 (252 is
# the usual convention and within a session of every year since 2006); crypto trades every
# day; ``none`` (the synthetic market) keeps the 252 convention the lab's figures were
# calibrated with, although its Monday-Friday calendar has no holidays.
TRADING_DAYS: dict[str, float] = {"cn": 243.0, "us": 252.0, "none": 252.0, "crypto": 365.0}


def periods_per_year(freq: str, market: str) -> float:
    """Return the number of bars of ``freq`` in a year of ``market`` (:data:`TRADING_DAYS`)."""
    days = TRADING_DAYS.get(market, 252.0)
    if freq == "1D":
        return days
    if freq == "1W":
        return 52.0
    if freq in _FREQ_MINUTES:
        session = _SESSION_MINUTES.get(market, 390.0)
        return days * session / _FREQ_MINUTES[freq]
    raise ValueError(f"periods_per_year: unknown frequency {freq!r} (allowed: 1D, 1W, 1min..1h)")


def sharpe_from_moments(mean: Any, std: Any, periods: float) -> Any:
    """Return ``mean / std x sqrt(periods)``, 0 where ``std`` is not positive.

    The one Sharpe formula of the lab (risk-free rate 0): ``mean`` and ``std`` (ddof=1) are
    per period, ``periods`` the periods a year (:func:`periods_per_year`; 1 for a per-period
    ratio). Scalars give a float, arrays an array (the population kernel's streamed moments).
    """
    mean_values = np.asarray(mean, dtype=np.float64)
    std_values = np.asarray(std, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(std_values > 0.0, mean_values / std_values, 0.0) * math.sqrt(periods)
    return float(ratio) if ratio.ndim == 0 else ratio


def annualised_sharpe(returns: Any, periods: float) -> float:
    """Return the Sharpe ratio of per-period ``returns``: ``mean / std (ddof=1) x
    sqrt(periods)`` (:func:`sharpe_from_moments`; 0 with fewer than two returns or no spread)."""
    values = np.asarray(returns, dtype=np.float64)
    if values.size < 2:
        return 0.0
    return float(sharpe_from_moments(np.mean(values), np.std(values, ddof=1), periods))


def daily_periods_per_year(days: Any, market: str | None = None) -> float:
    """Return the trading days in a year of a daily record.

    With ``market`` its :data:`TRADING_DAYS`; without (a ledger does not say its market), the
    record's own calendar: a 24/7 market's (``crypto``) when it holds a Saturday or Sunday,
    else ``us``'s.
    """
    if market is not None:
        return periods_per_year("1D", market)
    weekends = any(day.weekday() >= 5 for day in days)
    return TRADING_DAYS["crypto"] if weekends else TRADING_DAYS["us"]


def panel_periods_per_year(panel: Any, market: str | None = None) -> float:
    """Return the bars of ``panel`` in a year of ``market`` (default: the panel's).

    Daily and weekly bars as :func:`periods_per_year`. Intraday bars count the bars a session
    of the data actually holds (the median number of bars per local trading day) times the
    trading days of a year, so a US hourly file with seven bars a day (the last one a half
    hour) is annualised at 7 x 252, not 6.5 x 252; a file without a full day falls back to
    the market's session length.
    """
    market = market or panel.market
    if panel.freq not in _FREQ_MINUTES or panel.n_bars == 0:
        return periods_per_year(panel.freq, market)
    from simulators.market_rules import trading_day_ids

    _, counts = np.unique(trading_day_ids(panel.index), return_counts=True)
    days = TRADING_DAYS.get(market, 252.0)
    return days * float(np.median(counts))


def calendar_years(index: Any) -> float:
    """Return the calendar time ``index`` spans, in years of 365.25 days.

    The ``T`` bars stand for ``T`` periods: the span from the first to the last bar times
    ``T / (T - 1)`` (the first bar's own period included), so 252 daily bars of one year give
    about one year whatever their weekends, holidays and suspensions; 0 for fewer than 2 bars.
    """
    n = len(index)
    if n < 2:
        return 0.0
    seconds = (index[-1] - index[0]).total_seconds()
    return seconds * n / (n - 1) / (365.25 * 86_400.0)


def max_drawdown(equity: np.ndarray) -> float:
    """Return the largest fall from a running peak as a positive fraction."""
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdowns = np.where(peaks > 0, 1.0 - values / peaks, 0.0)
    return float(max(0.0, np.max(drawdowns)))


def compute_metrics(
    equity: np.ndarray,
    *,
    init_cash: float,
    trade_pnl: np.ndarray,
    trade_closed: np.ndarray,
    traded_value: float,
    position_value: np.ndarray,
    periods: float,
    years: float | None = None,
) -> dict[str, float]:
    """Return every metric of :data:`METRIC_NAMES` as a float.

    Parameters
    ----------
    equity:
        ``(T,)`` equity at each bar close.
    init_cash:
        Starting cash (the base of the first return).
    trade_pnl, trade_closed:
        Per trade: net profit and whether it is closed.
    traded_value:
        Sum of the absolute value of every fill.
    position_value:
        ``(T,)`` value of all positions at each bar close.
    periods:
        Bars per year (see :func:`periods_per_year`): annualises volatility, Sharpe and Sortino.
    years:
        The calendar time the bars span (:func:`calendar_years`), for CAGR, Calmar and turnover;
        ``None``: ``T / periods`` (bar counts, exact only for bars without gaps).
    """
    values = np.asarray(equity, dtype=np.float64)
    n_bars = values.size
    final = float(values[-1]) if n_bars else float(init_cash)
    total_return = final / init_cash - 1.0
    previous = np.concatenate(([init_cash], values[:-1])) if n_bars else np.empty(0)
    returns = values / previous - 1.0 if n_bars else np.empty(0)
    if years is None or not years > 0:
        years = n_bars / periods if periods > 0 else 0.0
    if years > 0 and final > 0:
        cagr = (final / init_cash) ** (1.0 / years) - 1.0
    else:
        cagr = -1.0 if final <= 0 else 0.0
    std = float(np.std(returns, ddof=1)) if n_bars > 1 else 0.0
    mean = float(np.mean(returns)) if n_bars else 0.0
    scale = math.sqrt(periods)
    sharpe = annualised_sharpe(returns, periods)
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if n_bars else 0.0
    sortino = mean / downside * scale if downside > 0 else 0.0
    drawdown = max_drawdown(values)
    calmar = cagr / drawdown if drawdown > 0 else 0.0

    pnl = np.asarray(trade_pnl, dtype=np.float64)[np.asarray(trade_closed, dtype=bool)]
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    win_rate = float(wins.size / pnl.size) if pnl.size else 0.0
    gross_loss = float(-losses.sum())
    gross_profit = float(wins.sum())
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(values > 0, np.asarray(position_value) / values, 0.0)
    exposure = float(np.mean(share)) if n_bars else 0.0
    mean_equity = float(np.mean(values)) if n_bars else float(init_cash)
    turnover = traded_value / mean_equity / years if years > 0 and mean_equity > 0 else 0.0
    return {
        "final_equity": final,
        "total_return": float(total_return),
        "cagr": float(cagr),
        "volatility": std * scale,
        "sharpe": float(sharpe),
        "sortino": float(sortino),
        "max_drawdown": drawdown,
        "calmar": float(calmar),
        "win_rate": win_rate,
        "profit_factor": float(profit_factor),
        "n_trades": float(pnl.size),  # closed round trips only (an open trade has no result)
        "exposure": exposure,
        "turnover": float(turnover),
    }
