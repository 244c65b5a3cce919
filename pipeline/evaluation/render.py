"""One writer for report pages: static HTML with PNG plots, shared by the evaluation and the experiment reports.

TFMA's own views are notebook widgets; people reviewing a run or a grid want a
file they can open anywhere, so a page is plain HTML (no scripts) beside
matplotlib PNGs. Figures are drawn on `matplotlib.figure.Figure`, never pyplot,
so no display backend or global figure state is involved.
"""
import html
import pathlib
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
code { background: #f6f8fa; padding: 1px 4px; }
"""


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    row_classes: Sequence[str] | None = None,
    label_class: str | None = None,
) -> str:
    """A table of plain-text headings and HTML cells; `row_classes` style whole rows, `label_class` each first cell."""
    head = "".join(f"<th>{html.escape(heading)}</th>" for heading in header)
    classes = row_classes or [""] * len(rows)
    label = f" class='{label_class}'" if label_class else ""
    body = "".join(
        (f"<tr class='{row_class}'>" if row_class else "<tr>")
        + "".join(f"<td{label if i == 0 else ''}>{cell}</td>" for i, cell in enumerate(cells))
        + "</tr>"
        for cells, row_class in zip(rows, classes, strict=True)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def html_image(file_name: str, alt: str) -> str:
    return f'<img src="{html.escape(file_name)}" alt="{html.escape(alt)}">'


def html_page(title: str, body: str, style: str = "") -> str:
    """A whole page: the shared style, then the page's own `style` rules, then `body`."""
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}{style}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def write_page(out_dir: pathlib.Path, page_name: str, page: str, figures: Mapping[str, Figure]) -> pathlib.Path:
    """Writes each figure as the PNG named by its key, then the page, into `out_dir`; returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name, figure in figures.items():
        figure.savefig(out_dir / file_name)
    path = out_dir / page_name
    path.write_text(page, encoding="utf-8")
    return path
