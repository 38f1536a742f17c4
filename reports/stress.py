"""The stress-test report: ``stress/<date>/report.md`` and a self-contained ``report.html``.

Built once as :class:`reports.html.Section` values and rendered twice (Markdown and HTML say
the same thing). Per scenario: the facts it is built on, the check lines (pass/fail and the
figures), each account's loss, intraday drawdown and exposure at the stress start, a chart of
each account's intraday equity through the stress days with a vertical marker at every moment
a limit tripped, and the table of those moments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from reports.html import (
    Image,
    Paragraph,
    Section,
    Table,
    atomic_write_text,
    figure_to_data_uri,
    new_figure,
    render_html,
    render_markdown,
)

__all__ = ["check_summary", "equity_chart", "stress_sections", "write_stress_report"]

_MARKER_COLOURS = {
    "market_crash": "#d62728",
    "position_drop": "#ff7f0e",
    "daily_loss": "#9467bd",
    "daily_loss_stop": "#9467bd",
    "halt": "#7f7f7f",
    "high_volatility": "#2ca02c",
}


def check_summary(check: Mapping[str, Any]) -> str:
    """Return a one-line summary of a check's figures (its problems first, when it failed)."""
    detail = check.get("detail") or {}
    problems = detail.get("problems") or detail.get("failed") or []
    if problems:
        head = "; ".join(str(p) for p in problems[:3])
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return head + more
    if check.get("name") == "daily_loss_within_limit":
        days = detail.get("days") or []
        if days:
            worst = max(days, key=lambda d: d.get("worst_loss", 0.0))
            return (
                f"worst {worst['worst_loss']:.2%} ({worst['account']} {worst['day']}) <= allowed "
                f"{worst['allowed']:.2%} = limit {worst.get('max_daily_loss', 0):.2%} + "
                f"slippage {worst.get('slippage_allowance', 0):.2%} + gap "
                f"{worst.get('gap_loss', 0):.2%} + overshoot {worst.get('overshoot_loss', 0):.2%}"
                f" + unsellable {worst.get('unsellable_loss', 0):.2%}"
            )
    if check.get("name") == "circuit_breaker_froze_within_3_min":
        freezes = detail.get("freezes") or []
        if freezes:
            latest = max(f["latency_minutes"] for f in freezes)
            return f"{len(freezes)} freeze(s), slowest {latest:g} min after its trigger"
    scalars = {
        k: v for k, v in detail.items() if isinstance(v, int | float | str | bool) and k != "ledger"
    }
    return ", ".join(f"{k}={v}" for k, v in scalars.items()) or "ok"


def equity_chart(
    title: str,
    curves: Mapping[str, Sequence[tuple[datetime, float]]],
    markers: Sequence[Mapping[str, Any]],
) -> str:
    """Return a PNG data URI: each account's equity by minute, a vertical line per limit trip.

    The minutes of all the stress days are laid end to end (no overnight gaps); a dotted line
    separates the days.
    """
    figure = new_figure(10.0, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    stamps: list[datetime] = sorted({t for curve in curves.values() for t, _ in curve})
    position = {t: k for k, t in enumerate(stamps)}
    for account, curve in sorted(curves.items()):
        if not curve:
            continue
        start = curve[0][1]
        axes.plot(
            [position[t] for t, _ in curve],
            [100.0 * (v / start - 1.0) if start else 0.0 for _, v in curve],
            label=account,
            linewidth=1.2,
        )
    days = sorted({t.date() for t in stamps})
    for day in days[1:]:
        first = next(k for k, t in enumerate(stamps) if t.date() == day)
        axes.axvline(first, color="#bbbbbb", linestyle=":", linewidth=0.8)
    seen: set[str] = set()
    for marker in markers:
        at = datetime.fromisoformat(str(marker["time"]))
        index = _nearest(stamps, at)
        if index is None:
            continue
        rule = str(marker["rule"])
        label = rule if rule not in seen else None
        seen.add(rule)
        axes.axvline(
            index, color=_MARKER_COLOURS.get(rule, "#17becf"), linestyle="--", linewidth=0.9,
            label=label,
        )  # fmt: skip
    if days:
        ticks = [next(k for k, t in enumerate(stamps) if t.date() == d) for d in days]
        axes.set_xticks(ticks, [d.isoformat() for d in days], rotation=30, fontsize=8)
    axes.set_ylabel("equity vs stress start (%)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    return figure_to_data_uri(figure)


def _nearest(stamps: Sequence[datetime], at: datetime) -> int | None:
    if not stamps:
        return None
    best = None
    for k, stamp in enumerate(stamps):
        if stamp.date() == at.date() and stamp >= at:
            return k
        if stamp.date() == at.date():
            best = k
    return best


def _percent(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2%}"


def stress_sections(result: Mapping[str, Any], runs: Sequence[Any]) -> list[Section]:
    """Return the report's sections for a replay's ``result`` and its scenario runs."""
    by_name = {run.scenario.name: run for run in runs}
    overview = Table(
        headers=("scenario", "result", "checks passed", "largest account loss", "stress days"),
        rows=tuple(
            (
                s["name"],
                "PASS" if s["passed"] else "FAIL",
                f"{sum(c['passed'] for c in s['checks'])}/{len(s['checks'])}",
                _percent(max((a["loss"] for a in s["accounts"].values()), default=None)),
                f"{s['stress_days'][0]} .. {s['stress_days'][-1]}" if s["stress_days"] else "-",
            )
            for s in result["scenarios"]
        ),
        numeric=frozenset({3}),
    )
    sections = [
        Section(
            title="Summary",
            blocks=(
                Paragraph(
                    text=f"Seed {result['seed']}, size {result['size']}, stress config "
                    f"{result['config_hash']}, arena config {result['arena_config_hash']}; "
                    f"genomes: {', '.join(result['genomes'])}. Everything ran in the sandbox "
                    "under this folder: the arena's ledger and gene pool were only read."
                ),
                overview,
            ),
        )
    ]
    for scenario in result["scenarios"]:
        run = by_name.get(scenario["name"])
        blocks: list[Any] = [
            Paragraph(
                text=f"{scenario['title']} (market {scenario['market']}, data "
                f"{scenario['source']}); the book was {scenario['book']}."
            ),
            Paragraph(text="Facts: " + " | ".join(run.scenario.facts) if run else "", note=True),
            Table(
                headers=("check", "result", "figures"),
                rows=tuple(
                    (c["name"], "PASS" if c["passed"] else "FAIL", check_summary(c))
                    for c in scenario["checks"]
                ),
            ),
            Table(
                headers=("account", "loss", "max drawdown", "exposure at start", "seeded"),
                rows=tuple(
                    (
                        name,
                        _percent(figures["loss"]),
                        _percent(figures["max_drawdown"]),
                        f"{figures['exposure_at_start']:.2f}",
                        "yes" if figures["seeded"] else "no",
                    )
                    for name, figures in scenario["accounts"].items()
                ),
                numeric=frozenset({1, 2, 3}),
            ),
        ]
        if run is not None:
            curves: dict[str, list[tuple[datetime, float]]] = {}
            for item in run.stress_runs():
                curves.setdefault(item.account, []).extend(item.result.intraday_equity)
            markers = [
                m for m in scenario["limits_tripped"] if m["kind"] in ("trigger", "daily_loss_stop",
                                                                        "halt", "tighten")
            ]  # fmt: skip
            if any(curves.values()):
                blocks.append(
                    Image(
                        data_uri=equity_chart(scenario["name"], curves, markers),
                        caption=f"{scenario['name']}: intraday equity of each account; dashed "
                        "lines: moments a limit tripped (breaker, daily-loss stop, halt)",
                    )
                )
        tripped = scenario["limits_tripped"]
        if tripped:
            blocks.append(
                Table(
                    headers=("time", "account", "kind", "rule"),
                    rows=tuple(
                        (str(t["time"]), str(t["account"]), str(t["kind"]), str(t["rule"]))
                        for t in tripped[:60]
                        if t["kind"] != "veto"
                    ),
                )
            )
        else:
            blocks.append(Paragraph(text="No limit tripped."))
        sections.append(Section(title=f"{scenario['name']}: "
                                f"{'PASS' if scenario['passed'] else 'FAIL'}",
                                blocks=tuple(blocks)))  # fmt: skip
    return sections


def write_stress_report(
    folder: Path, result: Mapping[str, Any], runs: Sequence[Any]
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` in ``folder``; return their paths."""
    title = f"Stress-test replay {result['date']}"
    sections = stress_sections(result, runs)
    markdown = folder / "report.md"
    page = folder / "report.html"
    atomic_write_text(markdown, render_markdown(title, sections))
    atomic_write_text(page, render_html(title, sections))
    return {"markdown": markdown, "html": page}
