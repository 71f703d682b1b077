"""``report.md`` -> ``report.html``: the same report as one self-contained page that opens offline.

The HTML is rendered from the markdown :func:`stkd.report.write_report` writes (so the two never say
different things): headings, paragraphs, bullet lists, tables (right-aligned number columns), inline
code, bold and italics. Plots referenced as ``![title](plots/x.png)`` are embedded as base64 PNG data
URIs; the style sheet is inline; nothing refers to a URL outside the file, and there is no script.
Only the subset of markdown the report uses is understood; everything else is escaped text.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#1f2328;line-height:1.5}
h1{border-bottom:1px solid #d0d7de;padding-bottom:.3rem}h2{border-bottom:1px solid #d0d7de;margin-top:2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem}th{background:#f6f8fa}tr:nth-child(2n) td{background:#fbfcfd}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px;font-size:.88em}
img{max-width:100%;height:auto;border:1px solid #eaeef2;margin:.5rem 0}
.note{color:#57606a}
"""

_IMG = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _inline(text: str) -> str:
    """Escaped text with `code`, **bold** and _italics_ (code spans are left verbatim)."""
    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1 and i < len(parts) - 1:  # inside a code span
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        if i % 2 == 1:  # an unmatched backtick: keep it
            part = "`" + part
        s = html.escape(part.replace("\\|", "|"))
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w])_(\S(?:.*?\S)?)_(?![\w])", r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in _CELL_SPLIT.split(line.strip().strip("|"))]


def _table(lines: list[str]) -> str:
    head = _cells(lines[0])
    aligns = ["r" if c.endswith(":") else "" for c in _cells(lines[1])] if len(lines) > 1 else []
    aligns += [""] * (len(head) - len(aligns))

    def row(cells: list[str], tag: str) -> str:
        return "<tr>" + "".join(f'<{tag}{f" class={a!r}" if a else ""}>{_inline(c)}</{tag}>'
                                for c, a in zip(cells, aligns)) + "</tr>"

    body = "".join(row(_cells(ln), "td") for ln in lines[2:])
    return f"<table><thead>{row(head, 'th')}</thead><tbody>{body}</tbody></table>"


def _image(alt: str, src: str, root: Path) -> str:
    path = (root / src).resolve()
    if path.suffix.lower() != ".png" or not path.is_file() or root.resolve() not in path.parents:
        return f'<p class="note">[{html.escape(alt)}: {html.escape(src)} is missing]</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def markdown_to_html(md: str, root: Path, title: str = "stkd report") -> str:
    """The page for markdown ``md`` whose images are relative to ``root`` (the run folder)."""
    blocks: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            blocks.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            blocks.append(_table(lines[i:j]))
            i = j
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:].strip())}</li>")
                i += 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
        elif m := _IMG.match(line.strip()):
            blocks.append(_image(m["alt"], m["src"], root))
            i += 1
        else:
            para = []
            while (i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "- ", "|"))
                   and not _IMG.match(lines[i].strip())):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    body = "\n".join(blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
