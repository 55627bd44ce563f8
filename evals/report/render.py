"""Report blocks to files: Markdown beside its PNGs, and one self-contained HTML page.

A report is a list of blocks, each a tuple: ``("h", level, text)``, ``("p", text)``, ``("list", items)``,
``("table", head, rows)`` or ``("img", alt, path)``; every report in ``evals.report`` builds one and
renders it with both functions here.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows])


def to_markdown(blocks: Sequence[tuple], out_dir: Path) -> str:
    render = {"h": lambda level, text: f"{'#' * level} {text}", "p": lambda text: text,
              "list": lambda items: "\n".join(f"- {item}" for item in items), "table": _md_table,
              "img": lambda alt, path: f"![{alt}]({Path(path).relative_to(out_dir).as_posix()})"}
    return "\n\n".join(render[kind](*args) for kind, *args in blocks) + "\n"


def _html_img(alt: str, path: Path) -> str:
    return (f'<img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">')


def to_html(blocks: Sequence[tuple], title: str) -> str:
    """One self-contained page: the PNGs are inlined, so the file can be mailed or attached as is."""
    esc = html.escape
    row = lambda cells, tag: "<tr>" + "".join(f"<{tag}>{esc(c)}</{tag}>" for c in cells) + "</tr>"
    render = {"h": lambda level, text: f"<h{level}>{esc(text)}</h{level}>",
              "p": lambda text: f"<p>{esc(text)}</p>",
              "list": lambda items: "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>",
              "table": lambda head, rows: "<table>" + row(head, "th") + "".join(row(r, "td") for r in rows)
              + "</table>",
              "img": lambda alt, path: _html_img(alt, Path(path))}
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}")
    return ("<!doctype html><html><head><meta "
            f"charset='utf-8'><title>{esc(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(render[kind](*args) for kind, *args in blocks)}</body></html>\n")
