"""Small helpers for self-contained reports: tables, bullet trees, PNG charts, atomic writes.

A report is built once as a list of :class:`Section` values (paragraphs, tables, bullet trees
and images) and rendered twice, by :func:`render_markdown` and :func:`render_html`, so the
Markdown summary and the HTML page always say the same thing. The HTML page is
self-contained: the style sheet is inline, there is no script, and every chart is a PNG
embedded as a ``data:image/png;base64,...`` URI, so the file can be mailed or archived alone.
Markdown has no embedded images; there an image block becomes one line naming the chart.

Charts are drawn with matplotlib's object API on an Agg canvas (``Figure`` +
``FigureCanvasAgg``), never through ``pyplot``: pyplot keeps global figure state, which is
neither thread-safe nor needed to produce a PNG.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alphaloop.files import atomic_write_bytes, atomic_write_text

__all__ = [
    "Block",
    "BulletTree",
    "Image",
    "Paragraph",
    "Section",
    "Table",
    "atomic_write_bytes",
    "atomic_write_text",
    "figure_to_data_uri",
    "new_figure",
    "render_html",
    "render_markdown",
]

# Nested decision chains can be deep and long; past these limits the rest is summarised so a
# report stays readable (the full chain is in decisions.parquet).
MAX_TREE_DEPTH = 6
MAX_TREE_ITEMS = 20

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; padding-bottom: .15em; }
h3 { margin-top: 1.2em; }
table { border-collapse: collapse; margin: .6em 0 1em 0; font-size: .95em; }
th, td { border: 1px solid #bbb; padding: .3em .7em; }
th { background: #eef1f5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
ul.tree { margin: .2em 0; }
ul.tree li { margin: .1em 0; }
span.key { font-weight: 600; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; }
p.note { color: #555; font-size: .9em; }
"""


# --------------------------------------------------------------------------- blocks
@dataclass(frozen=True, slots=True, kw_only=True)
class Paragraph:
    """A paragraph of plain text (escaped in HTML; ``note`` renders it smaller and grey)."""

    text: str
    note: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A table of already-formatted cells.

    ``numeric`` lists the column indices to right-align in HTML (and in Markdown).
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for number, row in enumerate(self.rows):
            if len(row) != len(self.headers):
                raise ValueError(
                    f"Table row {number} has {len(row)} cells, expected {len(self.headers)} "
                    f"(headers {self.headers})"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class BulletTree:
    """A nested mapping/sequence (e.g. a decision chain) shown as nested bullet lists."""

    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """A PNG chart as a ``data:`` URI with its caption (HTML only; Markdown names it)."""

    data_uri: str
    caption: str

    def __post_init__(self) -> None:
        if not self.data_uri.startswith("data:image/png;base64,"):
            raise ValueError("Image.data_uri must be a data:image/png;base64 URI")


Block = Paragraph | Table | BulletTree | Image


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """A titled part of a report; ``level`` 2 is a main section, 3 a subsection."""

    title: str
    blocks: tuple[Block, ...]
    level: int = 2


# --------------------------------------------------------------------------- charts
def new_figure(width: float = 9.0, height: float = 4.0) -> Figure:
    """Return a matplotlib figure attached to an Agg canvas (no pyplot, no global state)."""
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_to_data_uri(figure: Figure) -> str:
    """Render ``figure`` as a PNG and return it as a ``data:image/png;base64,`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- trees
def _scalar_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _tree_items(value: Any) -> list[tuple[str | None, Any]]:
    if isinstance(value, Mapping):
        return [(str(key), item) for key, item in value.items()]
    # Items of a list are numbered only when they are themselves branches (e.g. objections);
    # a list of plain values reads better as plain bullets.
    return [
        (f"#{number}" if _is_branch(item) else None, item)
        for number, item in enumerate(value, start=1)
    ]


def _is_branch(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes)
    )


def _markdown_tree(value: Any, depth: int, lines: list[str]) -> None:
    indent = "  " * depth
    items = _tree_items(value)
    for key, item in items[:MAX_TREE_ITEMS]:
        label = f"**{_md_escape(key)}**: " if key is not None else ""
        if _is_branch(item) and len(item) > 0 and depth + 1 < MAX_TREE_DEPTH:
            head = f"**{_md_escape(key)}**" if key is not None else "item"
            lines.append(f"{indent}- {head}")
            _markdown_tree(item, depth + 1, lines)
        else:
            shown = "(empty)" if _is_branch(item) and len(item) == 0 else _scalar_text(item)
            lines.append(f"{indent}- {label}{_md_escape(shown)}")
    if len(items) > MAX_TREE_ITEMS:
        lines.append(f"{indent}- ... {len(items) - MAX_TREE_ITEMS} more")


def _html_tree(value: Any, depth: int) -> str:
    items = _tree_items(value)
    parts = ['<ul class="tree">']
    for key, item in items[:MAX_TREE_ITEMS]:
        label = f'<span class="key">{html.escape(key)}</span>: ' if key is not None else ""
        if _is_branch(item) and len(item) > 0 and depth + 1 < MAX_TREE_DEPTH:
            parts.append(f"<li>{label or 'item'}{_html_tree(item, depth + 1)}</li>")
        else:
            shown = "(empty)" if _is_branch(item) and len(item) == 0 else _scalar_text(item)
            parts.append(f"<li>{label}{html.escape(shown)}</li>")
    if len(items) > MAX_TREE_ITEMS:
        parts.append(f"<li>... {len(items) - MAX_TREE_ITEMS} more</li>")
    parts.append("</ul>")
    return "".join(parts)


# --------------------------------------------------------------------------- rendering
def _md_escape(text: str) -> str:
    # Pipes would split table cells; newlines would end a table row or a bullet.
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(table: Table) -> list[str]:
    align = ["---:" if index in table.numeric else "---" for index in range(len(table.headers))]
    lines = [
        "| " + " | ".join(_md_escape(cell) for cell in table.headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines.extend("| " + " | ".join(_md_escape(cell) for cell in row) + " |" for row in table.rows)
    return lines


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """Return the report as GitHub-flavoured Markdown (images become a one-line mention)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines.extend([f"{'#' * section.level} {section.title}", ""])
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines.append(f"*{block.text}*" if block.note else block.text)
            elif isinstance(block, Table):
                lines.extend(_markdown_table(block))
            elif isinstance(block, BulletTree):
                tree: list[str] = []
                _markdown_tree(block.value, 0, tree)
                lines.extend(tree or ["- (empty)"])
            else:
                lines.append(f"*Chart: {block.caption} (see report.html).*")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.headers)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{html.escape(cell)}</td>'
            if index in table.numeric
            else f"<td>{html.escape(cell)}</td>"
            for index, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Return the report as one self-contained HTML page (inline CSS, data-URI images)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        level = section.level
        parts.append(f"<h{level}>{html.escape(section.title)}</h{level}>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                css = ' class="note"' if block.note else ""
                parts.append(f"<p{css}>{html.escape(block.text)}</p>")
            elif isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, BulletTree):
                parts.append(_html_tree(block.value, 0))
            else:
                caption = html.escape(block.caption)
                parts.append(
                    f'<figure><img src="{block.data_uri}" alt="{caption}">'
                    f"<figcaption>{caption}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- files
# atomic_write_bytes / atomic_write_text: alphaloop.files (re-exported here).
