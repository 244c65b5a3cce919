"""The experiment report: per configuration, mean and spread across folds, as Markdown, HTML and PNG plots.

Accuracy is never shown alone: recall and precision of the defective class,
ROC-AUC and the confusion matrix summed over folds stand beside it, because the
reference's 80% accuracy hid a 33% recall.
"""
import html
import json
import math
import pathlib
from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from experiments.grids import REFERENCE_TABLE2, VARIANT_TITLES
from pipeline.evaluation import render

METRICS = ("accuracy", "auc", "recall", "precision")
PLOT_FILE = "metrics.png"


def aggregate(records: list[dict]) -> list[dict]:
    """One row per experiment: fold count, mean and standard deviation of each metric, summed confusion matrix."""
    by_name: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_name[record["experiment"]].append(record)
    rows = []
    for name, folds in by_name.items():
        row = {"experiment": name, "folds": len(folds), **folds[0]["params"]}
        for metric in METRICS:
            values = np.array([f["scores"][metric] for f in folds], np.float64)
            row[metric] = float(np.nanmean(values)) if not np.isnan(values).all() else math.nan
            row[f"{metric}_std"] = float(np.nanstd(values)) if not np.isnan(values).all() else math.nan
        row["confusion_matrix"] = np.sum([f["scores"]["confusion_matrix"] for f in folds], axis=0).tolist()
        row["threshold"] = float(np.mean([f["threshold"] for f in folds]))
        row["seconds"] = float(np.sum([f["seconds"] for f in folds]))
        rows.append(row)
    return rows


def _cell(row: dict, metric: str) -> str:
    return "n/a" if math.isnan(row[metric]) else f"{row[metric]:.3f} ± {row[f'{metric}_std']:.3f}"


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["experiment", "folds", *METRICS, "confusion [[TN, FP], [FN, TP]]", "threshold", "time (s)"]
    body = [
        [row["experiment"], str(row["folds"]), *(_cell(row, m) for m in METRICS), json.dumps(row["confusion_matrix"]),
         f"{row['threshold']:.3f}", f"{row['seconds']:.0f}"]
        for row in rows
    ]
    return header, body


def _table2_comparison(rows: list[dict]) -> tuple[list[str], list[list[str]]] | None:
    """Our accuracy beside the reference's Table 2, when the rows are the Table 2 grid."""
    ours = {(r["feature_variant"], r["hidden_units"]): r for r in rows if r.get("model") == "mlp"}
    if not ours:
        return None
    units = sorted({u for _, u in ours})
    header = ["preprocessing", *(f"{u} units: ours / reference (%)" for u in units)]
    body = [
        [VARIANT_TITLES[variant], *(
            f"{100 * ours[(variant, u)]['accuracy']:.1f} / {REFERENCE_TABLE2[variant][u]:.1f}" if (variant, u) in ours else "-"
            for u in units
        )]
        for variant in REFERENCE_TABLE2
    ]
    return header, body


def _metrics_figure(rows: list[dict]) -> Figure:
    """One bar per configuration and metric, the spread across folds as error bars."""
    names = [r["experiment"] for r in rows]
    y = np.arange(len(rows))
    figure = Figure(figsize=(4 * len(METRICS), 0.35 * len(rows) + 1.5), dpi=110)
    axes = figure.subplots(1, len(METRICS), sharey=True)
    for axis, metric in zip(axes, METRICS):
        axis.barh(y, [r[metric] for r in rows], xerr=[r[f"{metric}_std"] for r in rows], color="#8c5a2b", alpha=0.85)
        axis.set_xlim(0, 1)
        axis.set_title(metric)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    figure.tight_layout()
    return figure


def _markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _html_body(title: str, notes: list[str], tables: list[tuple[str, tuple[list[str], list[list[str]]]]]) -> str:
    sections = "".join(
        f"<h2>{html.escape(heading)}</h2>" + render.html_table(header, [[html.escape(cell) for cell in row] for row in body])
        for heading, (header, body) in tables
    )
    return (
        f"<h1>{html.escape(title)}</h1>" + "".join(f"<p>{html.escape(note)}</p>" for note in notes) + sections
        + f"<h2>Metrics per configuration</h2>{render.html_image(PLOT_FILE, 'metrics per configuration')}"
    )


def write_report(records: list[dict], out: pathlib.Path, title: str, notes: list[str]) -> pathlib.Path:
    """Write report.md, report.html and metrics.png under `out`; returns the Markdown path."""
    rows = aggregate(records)
    tables = [("Results per configuration (mean ± standard deviation across folds)", _table(rows))]
    comparison = _table2_comparison(rows)
    if comparison:
        tables.insert(0, ("Accuracy against the reference's Table 2", comparison))
    page = render.html_page(title, _html_body(title, notes, tables))
    render.write_page(out, "report.html", page, {PLOT_FILE: _metrics_figure(rows)})
    markdown = [f"# {title}", "", *notes, ""]
    for heading, (header, body) in tables:
        markdown += [f"## {heading}", "", _markdown_table(header, body), ""]
    markdown += [f"![metrics per configuration]({PLOT_FILE})", ""]
    (out / "report.md").write_text("\n".join(markdown))
    (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return out / "report.md"
