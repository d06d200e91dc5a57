"""HTML building blocks of the report: one self-contained page, no script, no network.

Every figure is a PNG inside the page (a ``data:`` URI); the page declares a Content-Security-Policy
that forbids any request (``default-src 'none'``), so a browser opening it fetches nothing. The style
reads on a laptop (a column of about 60 characters of figure width) and prints on A4 (figures and
tables kept whole on a page, the navigation left out).
"""

from __future__ import annotations

import base64
import html
import io

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --ink: #1d2330; --muted: #5b6473; --line: #d9dde3; --bad: #c62828; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0; background: white; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; }
header { border-bottom: 3px solid var(--ink); margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.sub, .muted { color: var(--muted); }
nav { font-size: 14px; margin: 8px 0 16px; }
nav a { margin-right: 14px; color: var(--ink); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 14px 0; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { font-size: 13px; color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { color: var(--bad); font-weight: 600; }
tr.gap td { color: var(--muted); text-align: center; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 8px 10px; white-space: pre-wrap;
      word-break: break-word; }
figure { margin: 12px 0 18px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
.example { border-left: 4px solid var(--bad); padding-left: 14px; margin: 20px 0 28px; }
.wide { overflow-x: auto; }
footer { margin-top: 40px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--line); }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  h2, h3, .example > p { break-after: avoid; }
  figure, table, .card, .example pre { break-inside: avoid; }
  figure img { max-width: 100%; max-height: 240mm; border: none; }
  .wide { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def num(value, digits: int = 4) -> str:
    """A number as a table shows it: integers with separators, floats to ``digits`` places, nan as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "–"
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    return esc(value)


def table(headers, rows, numeric=(), row_class=None) -> str:
    """A table; ``numeric``: the columns (indices) aligned right; cells are escaped unless ``Raw``."""
    head = "".join(f'<th class="n">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        if isinstance(row, Gap):
            body.append(f'<tr class="gap"><td colspan="{len(headers)}">{esc(row)}</td></tr>')
            continue
        cls = row_class(r) if row_class else ""
        cells = "".join(f'<td class="n">{_cell(c)}</td>' if i in numeric else f"<td>{_cell(c)}</td>"
                        for i, c in enumerate(row))
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


class Raw(str):
    """HTML that a table cell takes as it is."""


class Gap(str):
    """A table row that says what was left out (one cell across the table)."""


def _cell(c) -> str:
    return c if isinstance(c, Raw) else num(c) if isinstance(c, (int, float)) or c is None else esc(c)


def pairs(items) -> str:
    """A two-column table of ``(name, value)``."""
    return table(("", ""), [(k, v) for k, v in items if v is not None]).replace("<thead><tr><th></th><th></th></tr>"
                                                                                  "</thead>", "")


def cards(items) -> str:
    """Key figures as cards: ``(value, label)``."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{num(v) if not isinstance(v, str) else esc(v)}</div>'
        f'<div class="k">{esc(k)}</div></div>' for v, k in items) + "</div>"


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(draw, alt: str, caption: str | None = None) -> str:
    """``draw(buffer)`` writes a PNG (any of :mod:`seqrnn.report.plots`' functions taking a target);
    the figure inline."""
    buf = io.BytesIO()
    draw(buf)
    return figure_png(buf.getvalue(), alt, caption)


def figure_png(png: bytes, alt: str, caption: str | None = None) -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{png_uri(png)}" alt="{esc(alt)}">{cap}</figure>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """The whole document: ``sections`` as ``(anchor, title, body)``, a navigation line, the footer."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>"
            f'<header><h1>{esc(title)}</h1><p class="sub">{subtitle}</p></header>'
            f"<nav>{nav}</nav>{body}<footer>{footer}</footer></main></body></html>\n")
