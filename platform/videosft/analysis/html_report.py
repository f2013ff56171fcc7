"""The report as one self-contained HTML page: tables plus every figure inlined as a data URI.

One file that opens anywhere (a browser, an e-mail, a CI artifact viewer) with no directory of
PNGs beside it and no network access: figures are embedded as base64 `data:image/png` URIs and
the style sheet is inline. The tables are the same `Table` objects report.md renders, so the two
never disagree. Everything that came from data is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from videosft.analysis.figures import Figure
from videosft.analysis.tables import Table

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def inline_markup(text: str) -> str:
    """Escape text, then turn the Markdown `code` spans our tables use into <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def table_html(table: Table) -> str:
    head = "".join(f"<th>{inline_markup(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{inline_markup(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    notes = "".join(f'<p class="note">{inline_markup(n)}</p>' for n in table.notes)
    return (
        f"<section><h2>{inline_markup(table.title)}</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}</section>"
    )


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure_html(fig: Figure) -> str:
    caption = inline_markup(fig.caption)
    return (
        f'<figure id="{html.escape(fig.name)}"><img alt="{caption}" src="{png_data_uri(fig.path)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render_html(title: str, intro: Sequence[str], tables: Sequence[Table], figures: Sequence[Figure]) -> str:
    parts = [
        f"<h1>{inline_markup(title)}</h1>",
        *(f"<p>{inline_markup(p)}</p>" for p in intro),
        *(table_html(t) for t in tables),
        "<h2>Figures</h2>",
        *(figure_html(f) for f in figures),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write_html(
    path: Path, title: str, intro: Sequence[str], tables: Sequence[Table], figures: Sequence[Figure]
) -> Path:
    path.write_text(render_html(title, intro, tables, figures), encoding="utf-8")
    return path
