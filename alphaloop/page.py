"""The supervision page of ``alphaloop serve``: watch the lab, pause it, approve candidates.

``GET /page`` renders one server-side HTML page (no script; equity curves and the fitness
trend are inline SVG) from one read of the home: :func:`alphaloop.observe.read_lab`'s
snapshot (the figures the exporter and ``alphaloop status`` show) and, for what only a person
reads, the ledger's equity history, positions and decisions of the last committed day and the
gene pool's candidates, probation records, lineage and generations (:func:`read_page`, read
only, through the stores' own read APIs). The controls are forms that ``POST`` to
``/page/pause``, ``/page/resume``, ``/page/approve`` and ``/page/reject``; they call the
same functions as the CLI (:func:`arena.kill_switch.pause_lab` / ``resume_lab``,
:func:`alphaloop.pool_acts.approve` / ``reject``), so a move from the page is stored exactly
as one from ``alphaloop arena pause`` or ``alphaloop pool approve``.

Security. ``GET`` never changes state. A control is carried out only when every check
passes, else it answers ``403`` and changes nothing:

* the ``Host`` header names this server (a loopback name, the bound address or this
  machine's host name, with the bound port): a DNS-rebinding page cannot reach it;
* the ``Origin`` header (or, without one, the ``Referer``) is this server's own origin;
* the form's CSRF field is the HMAC, under a key made at start, of the browser's session
  cookie (``HttpOnly``, ``SameSite=Strict``, set by ``GET /page``): another site cannot
  read it;
* the form's ``token`` field is the control token: ``$ALPHALOOP_SERVE_TOKEN`` when set,
  else a random one made at start and printed once on ``alphaloop serve``'s ``serving:``
  line. Whoever can read the page cannot steer the lab without it.

Every value shown is escaped (:func:`html.escape`); the responses carry a Content Security
Policy that allows no script at all.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import math
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alphaloop.errors import AlphaLoopError, GenomeError
from alphaloop.home import LabHome
from alphaloop.observe import LabSnapshot, read_lab

__all__ = [
    "CONTROL_PATHS",
    "PAGE_PATH",
    "TOKEN_ENV",
    "PageData",
    "SupervisionPage",
    "control_token",
    "read_page",
    "render_page",
]

PAGE_PATH = "/page"
CONTROL_PATHS = ("/page/pause", "/page/resume", "/page/approve", "/page/reject")
#: The environment variable that sets the control token (else one is made at start).
TOKEN_ENV = "ALPHALOOP_SERVE_TOKEN"
COOKIE = "alphaloop_session"
MAX_FORM_BYTES = 16 * 1024
#: How many genomes' lineage the page lists (candidates, probation, champions first).
MAX_LINEAGE = 12
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("", "0.0.0.0", "::")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def control_token(environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """Return ``(token, from_env)``: ``$ALPHALOOP_SERVE_TOKEN`` when set, else a new one."""
    env = os.environ if environ is None else environ
    given = env.get(TOKEN_ENV, "").strip()
    if given:
        return given, True
    return secrets.token_urlsafe(24), False


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True, slots=True, kw_only=True)
class PageData:
    """What the page shows: the snapshot and the details only a person reads."""

    snapshot: LabSnapshot
    curves: dict[str, list[tuple[date, float]]] = field(default_factory=dict)
    positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    genomes: list[dict[str, Any]] = field(default_factory=list)
    probation: list[dict[str, Any]] = field(default_factory=list)
    lineage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    generations: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _why(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _read_ledger_details(path: Any, out: dict[str, Any]) -> None:
    from arena.ledger import Ledger

    with Ledger(path) as ledger:
        for record in ledger.account_records():
            name = record.account
            money = 10.0**record.units.money_digits
            shares = 10.0**record.units.quantity_digits
            history = ledger.equity_history(name)
            out["curves"][name] = [(day, snap.equity / money) for day, snap in history]
            if not history:
                continue
            last = history[-1][0]
            out["positions"][name] = [
                {
                    "symbol": p.symbol,
                    "quantity": p.quantity / shares,
                    "price": float(p.price),
                    "value": p.value / money,
                }
                for p in ledger.positions(name, last)
            ]
            out["decisions"][name] = [
                {"decision_id": key, **value} for key, value in ledger.decisions(name, last).items()
            ]


def _read_pool_details(path: Any, out: dict[str, Any]) -> None:
    from evolution.store import GenePoolStore

    with GenePoolStore(path) as store:
        genomes = store.list_genomes()
        out["genomes"] = genomes
        for row in genomes:
            if row["status"] != "probation":
                continue
            days = store.paper_days(row["genome_id"])
            moves = [
                m for m in store.transitions(row["genome_id"]) if m["to_status"] == "probation"
            ]
            out["probation"].append(
                {
                    "genome_id": row["genome_id"],
                    "since": moves[-1]["at"] if moves else None,
                    "by": moves[-1]["actor"] if moves else None,
                    "days": len({d.day for d in days}),
                    "pnl": sum(d.pnl for d in days),
                    "paused": row["paused"],
                }
            )
        order = {"candidate": 0, "probation": 1, "champion": 2, "alive": 3}
        shown = sorted(
            (g for g in genomes if g["status"] in order),
            key=lambda g: (order[g["status"]], -(g["last_score"] or 0.0), g["genome_id"]),
        )[:MAX_LINEAGE]
        out["lineage"] = {g["genome_id"]: store.lineage(g["genome_id"]) for g in shown}
        out["generations"] = sorted(
            (
                {
                    "session_id": g["session_id"],
                    "generation": g["generation"],
                    "committed_at": g["committed_at"],
                    "best_score": g.get("best_score"),
                    "median_score": g.get("median_score"),
                }
                for g in store.all_generations()
            ),
            key=lambda g: (g["committed_at"], g["session_id"], g["generation"]),
        )


def read_page(home: LabHome) -> PageData:
    """Read what the page shows from ``home``, read-only (an unreadable store is reported)."""
    snapshot = read_lab(home)
    out: dict[str, Any] = {
        "curves": {},
        "positions": {},
        "decisions": {},
        "genomes": [],
        "probation": [],
        "lineage": {},
        "generations": [],
    }
    errors: dict[str, str] = {}
    if snapshot.stores.get("ledger") and "ledger" not in snapshot.errors:
        try:
            _read_ledger_details(home.ledger_db, out)
        except Exception as exc:  # shown on the page, never raised at the reader
            errors["ledger"] = f"{home.ledger_db}: {_why(exc)}"
    if snapshot.stores.get("gene_pool") and "gene_pool" not in snapshot.errors:
        try:
            _read_pool_details(home.gene_pool_db, out)
        except Exception as exc:
            errors["gene_pool"] = f"{home.gene_pool_db}: {_why(exc)}"
    return PageData(snapshot=snapshot, errors=errors, **out)


# --------------------------------------------------------------------------- rendering
def esc(value: Any) -> str:
    """Return ``value`` as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def _money(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:+.4%}"


def _percent(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4%}"


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{float(value):,.{digits}f}"


def svg_line(
    points: Sequence[tuple[str, float]], *, label: str, width: int = 560, height: int = 160
) -> str:
    """Return an inline SVG line chart of ``points`` (x label, value): no script, no fonts."""
    values = [v for _, v in points if math.isfinite(v)]
    if len(values) < 1:
        return f'<p class="muted">no {esc(label)} yet</p>'
    low, high = min(values), max(values)
    span = high - low or abs(high) or 1.0
    pad = 24
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = []
    for i, (_, value) in enumerate(points):
        if not math.isfinite(value):
            continue
        x = pad + i * step
        y = height - pad - (value - low) / span * (height - 2 * pad)
        coords.append(f"{x:.1f},{y:.1f}")
    dots = "".join(
        f'<circle cx="{c.split(",")[0]}" cy="{c.split(",")[1]}" r="2.5"><title>'
        f"{esc(points[i][0])}: {esc(_number(points[i][1], 2))}</title></circle>"
        for i, c in enumerate(coords)
    )
    return (
        f'<svg class="chart" role="img" aria-label="{esc(label)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfcfe" stroke="#ccd"/>'
        f'<polyline fill="none" stroke="#2458a6" stroke-width="2" points="{" ".join(coords)}"/>'
        f"{dots}"
        f'<text x="{pad}" y="14" font-size="11">{esc(_number(high, 2))}</text>'
        f'<text x="{pad}" y="{height - 6}" font-size="11">{esc(_number(low, 2))}</text>'
        f'<text x="{width - pad}" y="{height - 6}" font-size="11" text-anchor="end">'
        f"{esc(points[0][0])} .. {esc(points[-1][0])}</text></svg>"
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    """Rows are already-escaped cells (``<td>`` contents)."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    heads = "".join(f"<th>{esc(h)}</th>" for h in head)
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _tree(value: Any, depth: int = 0) -> str:
    """Render nested JSON as a list of ``<details>`` (escaped; deep branches summarised)."""
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(f"[{i}]", v) for i, v in enumerate(value)]
    else:
        return esc(_scalar(value))
    if depth >= 6:
        return f'<span class="muted">({len(items)} more entries)</span>'
    out = []
    for key, item in items[:40]:
        if isinstance(item, dict | list) and item:
            out.append(
                f"<li><details><summary>{esc(key)}</summary>{_tree(item, depth + 1)}</details></li>"
            )
        else:
            out.append(f"<li><b>{esc(key)}</b>: {_tree(item, depth + 1)}</li>")
    if len(items) > 40:
        out.append(f'<li class="muted">... {len(items) - 40} more</li>')
    return '<ul class="tree">' + "".join(out) + "</ul>"


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return "(empty)"
    return "null" if value is None else str(value)


def _form(action: str, csrf: str, fields: str, button: str, *, cls: str = "") -> str:
    return (
        f'<form method="post" action="{esc(action)}" class="control {esc(cls)}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">{fields}'
        '<label>control token <input type="password" name="token" autocomplete="off" '
        "required></label>"
        f'<button type="submit">{esc(button)}</button></form>'
    )


_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em auto; max-width: 80em;
       padding: 0 1em; color: #1d1d1f; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0 1em 0; font-size: .93em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; vertical-align: top; }
th { background: #eef1f5; text-align: left; } td.num { text-align: right; }
.muted { color: #777; } .paused { background: #fde2e1; border: 2px solid #b00020;
  padding: .6em; } .running { background: #e6f4ea; padding: .6em; }
.error { color: #b00020; } form.control { display: inline-block; margin: .2em 0; }
form.control input[type=text] { width: 14em; }
form.control label { margin-right: .6em; } ul.tree { margin: .1em 0; padding-left: 1.2em; }
.account { display: inline-block; vertical-align: top; margin-right: 1.5em; }
"""


def render_page(data: PageData, *, csrf: str) -> str:
    """Return the whole page (every value escaped; the forms carry ``csrf``)."""
    snap = data.snapshot
    parts: list[str] = []
    last = snap.last_day
    parts.append(
        f"<h1>AlphaLoop lab: supervision</h1><p>home <code>{esc(snap.home)}</code>; read at "
        f"{esc(snap.read_at.isoformat(timespec='seconds'))}; last committed day "
        f'<span id="last-day">{esc(last.isoformat() if last else "none")}</span>; regime '
        f"{esc(snap.regime or '-')}</p>"
    )
    errors = {**snap.errors, **data.errors}
    if errors:
        parts.append(
            '<ul class="error" id="errors">'
            + "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in sorted(errors.items()))
            + "</ul>"
        )
    # --- trading: the kill switch
    parts.append('<h2 id="trading">Trading</h2>')
    if snap.pause is not None:
        what = (
            "flatten: each day only closes positions"
            if snap.pause["flatten"]
            else ("no new orders, positions kept")
        )
        parts.append(
            f'<div class="paused" id="pause-state" data-paused="yes"><b>PAUSED</b> since '
            f"{esc(snap.pause['since'])} by {esc(snap.pause['who'])} ({esc(what)}): "
            f"{esc(snap.pause['reason'])}</div>"
        )
        parts.append(
            _form(
                "/page/resume",
                csrf,
                '<label>reason <input type="text" name="reason" maxlength="500"></label>',
                "Resume trading",
                cls="resume",
            )
        )
    else:
        parts.append(
            '<div class="running" id="pause-state" data-paused="no">trading: the next '
            "<code>arena run</code> trades</div>"
        )
    parts.append(
        _form(
            "/page/pause",
            csrf,
            '<label>reason <input type="text" name="reason" maxlength="500"></label> '
            '<label><input type="checkbox" name="flatten" value="1"> flatten</label>',
            "Pause trading",
            cls="pause",
        )
    )
    # --- alerts (the alert rules' records, when the snapshot carries them)
    parts.append('<h2 id="alerts">Alerts</h2>')
    alerts = getattr(snap, "alerts", None)
    if alerts:
        rows = []
        for alert in alerts:
            item = alert.to_dict() if hasattr(alert, "to_dict") else dict(alert)
            rows.append(
                [
                    esc(item.get("at", item.get("day", ""))),
                    esc(item.get("rule", "")),
                    esc(item.get("severity", item.get("level", ""))),
                    esc(item.get("message", "")),
                ]
            )
        parts.append(_table(("when", "rule", "level", "message"), rows))
    else:
        parts.append('<p class="muted">no alerts</p>')
    # --- accounts
    parts.append('<h2 id="accounts">Accounts</h2>')
    if not snap.accounts:
        parts.append('<p class="muted">no committed day yet</p>')
    rows = []
    for name, view in snap.accounts.items():
        rows.append(
            [
                esc(name),
                esc(view.last_day.isoformat()),
                f'<span data-account="{esc(name)}" data-field="equity">{esc(_money(view.equity))}'
                "</span>",
                f'<span data-account="{esc(name)}" data-field="cash">{esc(_money(view.cash))}'
                "</span>",
                esc(_money(view.daily_pnl)),
                esc(_ratio(view.total_return)),
                esc(_ratio(-view.drawdown)),
                esc(_ratio(-view.max_drawdown)),
                f'<span data-account="{esc(name)}" data-field="orders">{view.orders}</span>',
                f'<span data-account="{esc(name)}" data-field="fills">{view.fills}</span>',
                esc(view.rejects),
                esc(sum(sum(k.values()) for k in view.risk_events.values())),
            ]
        )
    if rows:
        parts.append(
            _table(
                (
                    "account",
                    "day",
                    "equity",
                    "cash",
                    "day P&L",
                    "return",
                    "drawdown",
                    "max drawdown",
                    "orders",
                    "fills",
                    "rejects",
                    "risk events",
                ),
                rows,
                cls="accounts",
            )
        )
    for name in snap.accounts:
        curve = data.curves.get(name, [])
        positions = data.positions.get(name, [])
        chart = svg_line([(d.isoformat(), v) for d, v in curve], label=f"{name} equity")
        held = (
            _table(
                ("symbol", "quantity", "price", "value"),
                [
                    [
                        esc(p["symbol"]),
                        esc(_number(p["quantity"], 2)),
                        esc(_number(p["price"], 4)),
                        esc(_money(p["value"])),
                    ]
                    for p in positions
                ],
            )
            if positions
            else '<p class="muted">no positions</p>'
        )
        parts.append(
            f'<div class="account" id="account-{esc(name)}"><h3>{esc(name)}</h3>{chart}'
            f"<h4>positions at the close</h4>{held}</div>"
        )
    # --- decisions of the last committed day
    parts.append(f'<h2 id="decisions">Decisions of {esc(last.isoformat() if last else "-")}</h2>')
    any_decision = False
    for name, decisions in data.decisions.items():
        for decision in decisions:
            any_decision = True
            targets = decision.get("targets") or []
            debate = decision.get("debate")
            head = f"{name}: {decision.get('decision_id', '')}"
            confidence = debate.get("confidence") if isinstance(debate, dict) else None
            summary = _table(
                ("symbol", "weight", "genome", "style"),
                [
                    [
                        esc(t.get("symbol", "")),
                        esc(_percent(t.get("weight"))),
                        esc(t.get("genome_id", "")),
                        esc(t.get("style", "")),
                    ]
                    for t in targets
                    if isinstance(t, dict)
                ],
            )
            chain = (
                f"<details open><summary>debate (confidence {esc(_number(confidence, 3))})"
                f"</summary>{_tree(debate)}</details>"
                if debate is not None
                else '<p class="muted">no debate recorded for this account</p>'
            )
            rest = {k: v for k, v in decision.items() if k not in ("debate", "decision_id")}
            parts.append(
                f'<div class="decision"><h3>{esc(head)}</h3>{summary}{chain}'
                f"<details><summary>the whole decision</summary>{_tree(rest)}</details></div>"
            )
    if not any_decision:
        parts.append('<p class="muted">no decisions recorded</p>')
    # --- the pool
    parts.append('<h2 id="pool">Gene pool</h2>')
    if snap.pool:
        parts.append(
            _table(
                ("status", "genomes"),
                [
                    [esc(status), f'<span data-status="{esc(status)}">{int(count)}</span>']
                    for status, count in snap.pool.items()
                ],
                cls="pool-counts",
            )
        )
    else:
        parts.append('<p class="muted">no gene pool</p>')
    candidates = [g for g in data.genomes if g["status"] == "candidate"]
    parts.append(f'<h3 id="candidates">Candidates waiting for approval ({len(candidates)})</h3>')
    if candidates:
        rows = []
        for g in candidates:
            gid = esc(g["genome_id"])
            hidden = f'<input type="hidden" name="genome_id" value="{gid}">'
            rows.append(
                [
                    f'<span class="genome-id">{gid}</span>',
                    esc(g["style"]),
                    esc(_number(g["last_score"], 2)),
                    f'<span class="description">{esc(g["description"])}</span>',
                    _form(
                        "/page/approve",
                        csrf,
                        hidden + '<label>reason <input type="text" name="reason" '
                        'value="approved" maxlength="500"></label>',
                        "Approve",
                        cls=f"approve approve-{gid}",
                    )
                    + _form(
                        "/page/reject",
                        csrf,
                        hidden + '<label>reason <input type="text" name="reason" required '
                        'maxlength="500"></label>',
                        "Reject",
                        cls=f"reject reject-{gid}",
                    ),
                ]
            )
        parts.append(
            _table(("genome", "style", "score", "description", "act"), rows, cls="candidates")
        )
    else:
        parts.append('<p class="muted">none</p>')
    parts.append(f'<h3 id="probation">On probation ({len(data.probation)})</h3>')
    if data.probation:
        parts.append(
            _table(
                ("genome", "since", "approved by", "paper days", "paper P&L", "paused"),
                [
                    [
                        f'<span class="genome-id">{esc(p["genome_id"])}</span>',
                        esc(p["since"] or "-"),
                        esc(p["by"] or "-"),
                        esc(p["days"]),
                        esc(_money(p["pnl"])),
                        "yes" if p["paused"] else "no",
                    ]
                    for p in data.probation
                ],
                cls="probation",
            )
        )
    else:
        parts.append('<p class="muted">none</p>')
    parts.append('<h3 id="lineage">Lineage</h3>')
    status_of = {g["genome_id"]: g["status"] for g in data.genomes}
    if data.lineage:
        items = []
        for gid, nodes in data.lineage.items():
            steps = "".join(
                f"<li>{esc(n['genome_id'])} &lt;- {esc(n['operator'])} "
                f"({esc(', '.join(n['parents']) or 'founder')}), generation "
                f"{esc(n['generation'])}</li>"
                for n in nodes
            )
            items.append(
                f"<li><details><summary>{esc(gid)} ({esc(status_of.get(gid, '?'))})</summary>"
                f"<ul>{steps}</ul></details></li>"
            )
        parts.append("<ul>" + "".join(items) + "</ul>")
    else:
        parts.append('<p class="muted">no living genomes</p>')
    parts.append('<h3 id="fitness">Fitness trend (best and median score per generation)</h3>')
    labels = [f"{g['session_id'][:8]}/{g['generation']}" for g in data.generations]
    best = [
        float(g["best_score"]) if g["best_score"] is not None else math.nan
        for g in data.generations
    ]
    median = [
        float(g["median_score"]) if g["median_score"] is not None else math.nan
        for g in data.generations
    ]
    parts.append(svg_line(list(zip(labels, best, strict=True)), label="best score"))
    parts.append(svg_line(list(zip(labels, median, strict=True)), label="median score"))
    if data.generations:
        parts.append(
            _table(
                ("generation", "best", "median"),
                [
                    [esc(lab), esc(_number(b, 2)), esc(_number(m, 2))]
                    for lab, b, m in zip(labels, best, median, strict=True)
                ],
            )
        )
    if snap.stress is not None:
        mark = "passed" if snap.stress.passed else "FAILED"
        parts.append(
            f'<h2 id="stress">Last stress replay</h2><p>{esc(snap.stress.date.isoformat())}: '
            f"{esc(mark)}</p>"
        )
    return _document("AlphaLoop supervision", "".join(parts))


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


# --------------------------------------------------------------------------- the WSGI app
_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]


class Refused(Exception):
    """A control request that fails a check: answered ``403``, nothing changed."""


class SupervisionPage:
    """The page's WSGI handlers for one home (one control token, one CSRF key per process).

    Parameters
    ----------
    token:
        The control token a form must carry.
    bind_host:
        The address the server listens on (a name ``Host`` may carry besides loopback).
    actor:
        Who the stored moves name (default: this process's login name, ``(page)`` appended).
    """

    def __init__(
        self, home: LabHome, *, token: str, bind_host: str = "127.0.0.1", actor: str | None = None
    ) -> None:
        from arena.kill_switch import current_user

        if not token:
            raise ValueError("SupervisionPage: the control token must not be empty")
        self.home = home
        self._token = token
        self._key = secrets.token_bytes(32)
        names = set(_LOOPBACK_NAMES)
        if bind_host not in _WILDCARDS:
            names.add(f"[{bind_host}]" if ":" in bind_host else bind_host)
        else:
            names.update({socket.gethostname(), socket.getfqdn()})
        self._names = frozenset(n.lower() for n in names)
        self.actor = actor or f"{current_user()} (page)"

    # -- checks
    def _csrf_for(self, session: str) -> str:
        return hmac.new(self._key, session.encode("ascii"), hashlib.sha256).hexdigest()

    @staticmethod
    def _session(environ: Mapping[str, Any]) -> str | None:
        cookie = SimpleCookie()
        try:
            cookie.load(str(environ.get("HTTP_COOKIE", "")))
        except Exception:
            return None
        morsel = cookie.get(COOKIE)
        value = morsel.value if morsel is not None else ""
        return value if _SESSION_RE.match(value) else None

    def _host_ok(self, environ: Mapping[str, Any]) -> str | None:
        """Return the request's ``Host`` when it names this server, else ``None``."""
        host = str(environ.get("HTTP_HOST", "")).strip().lower()
        port = str(environ.get("SERVER_PORT", ""))
        for name in self._names:
            if host == f"{name}:{port}" or (port == "80" and host == name):
                return host
        return None

    def _check(self, environ: Mapping[str, Any], form: Mapping[str, str]) -> None:
        host = self._host_ok(environ)
        if host is None:
            raise Refused(f"Host {environ.get('HTTP_HOST', '')!r} is not this server")
        origin = str(environ.get("HTTP_ORIGIN", "")).strip()
        if not origin:
            referer = urlsplit(str(environ.get("HTTP_REFERER", "")))
            origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else ""
        if origin.lower() != f"http://{host}":
            raise Refused(f"the request's origin {origin or '(none)'!r} is not this page's")
        session = self._session(environ)
        if session is None:
            raise Refused("no session cookie: open the page first")
        if not hmac.compare_digest(form.get("csrf", "").encode(), self._csrf_for(session).encode()):
            raise Refused("the form's CSRF field does not match this session: reload the page")
        if not hmac.compare_digest(form.get("token", "").encode(), self._token.encode()):
            raise Refused("wrong control token")

    # -- responses
    @staticmethod
    def _respond(
        start_response: StartResponse, status: str, body: str, extra: Sequence[tuple[str, str]] = ()
    ) -> list[bytes]:
        payload = body.encode("utf-8")
        start_response(
            status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(payload))),
                *_HEADERS,
                *extra,
            ],
        )
        return [payload]

    def _message(
        self, start_response: StartResponse, status: str, title: str, text: str
    ) -> list[bytes]:
        body = (
            f'<h1>{esc(title)}</h1><p id="result">{esc(text)}</p>'
            f'<p><a id="back" href="{PAGE_PATH}">back to the page</a></p>'
        )
        return self._respond(start_response, status, _document(title, body))

    def page(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """``GET /page``: read the home and render it (sets the session cookie if needed)."""
        if self._host_ok(environ) is None:
            return self._message(
                start_response,
                "403 Forbidden",
                "refused",
                f"Host {environ.get('HTTP_HOST', '')!r} is not this server",
            )
        session = self._session(environ)
        extra: list[tuple[str, str]] = []
        if session is None:
            session = secrets.token_urlsafe(24)
            extra.append(("Set-Cookie", f"{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict"))
        body = render_page(read_page(self.home), csrf=self._csrf_for(session))
        return self._respond(start_response, "200 OK", body, extra)

    def _control(self, act: Callable[[Mapping[str, str]], str]) -> WsgiApp:
        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_FORM_BYTES:
                return self._message(
                    start_response, "400 Bad Request", "refused", "the form is missing or too large"
                )
            raw = environ["wsgi.input"].read(length).decode("utf-8", "replace")
            form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            try:
                self._check(environ, form)
            except Refused as exc:
                return self._message(start_response, "403 Forbidden", "refused", str(exc))
            try:
                said = act(form)
            except AlphaLoopError as exc:
                return self._message(start_response, "400 Bad Request", "not done", str(exc))
            return self._message(start_response, "200 OK", "done", said)

        return app

    def _pause(self, form: Mapping[str, str]) -> str:
        from arena.kill_switch import pause_lab

        change = pause_lab(
            self.home,
            reason=form.get("reason") or "paused from the page",
            flatten=form.get("flatten") == "1",
            who=self.actor,
        )
        return change.message

    def _resume(self, form: Mapping[str, str]) -> str:
        from arena.kill_switch import resume_lab

        reason = form.get("reason") or "resumed from the page"
        return resume_lab(self.home, reason=reason, who=self.actor).message

    @staticmethod
    def _genome_id(form: Mapping[str, str]) -> str:
        gid = form.get("genome_id", "").strip()
        if not gid:
            raise GenomeError("the form names no genome")
        return gid

    def _approve(self, form: Mapping[str, str]) -> str:
        from alphaloop.pool_acts import approve

        done = approve(
            self.home,
            self._genome_id(form),
            actor=self.actor,
            reason=form.get("reason") or "approved",
        )
        return f"{done['genome_id']}: {done['from_status']} -> {done['status']}: {done['reason']}"

    def _reject(self, form: Mapping[str, str]) -> str:
        from alphaloop.pool_acts import reject

        done = reject(
            self.home, self._genome_id(form), actor=self.actor, reason=form.get("reason", "")
        )
        return f"{done['genome_id']}: {done['from_status']} -> {done['status']}: {done['reason']}"

    def routes(self) -> dict[str, WsgiApp]:
        """The ``GET`` routes (for :func:`alphaloop.serve.make_app`'s ``routes``)."""
        return {PAGE_PATH: self.page}

    def post_routes(self) -> dict[str, WsgiApp]:
        """The ``POST`` routes (for :func:`alphaloop.serve.make_app`'s ``post_routes``)."""
        acts = (self._pause, self._resume, self._approve, self._reject)
        return {path: self._control(act) for path, act in zip(CONTROL_PATHS, acts, strict=True)}
