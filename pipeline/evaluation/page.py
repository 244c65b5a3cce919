"""The evaluation report's page: verdict, gate table, metrics per slice and per colour variant next to the
baseline's, and the plots."""
import dataclasses
import html
import math
import pathlib

from pipeline.evaluation import render
from pipeline.evaluation.plots import PLOT_FILES, figures
from pipeline.evaluation.report import EvaluationReport, SliceRows
from pipeline.evaluation.summary import RunSummary
from pipeline.evaluation.variants import VariantTable

PAGE_FILE = "index.html"
# Columns of a metrics table: TFMA metric name -> heading.
TABLE_METRICS = {
    "example_count": "examples",
    "binary_accuracy": "accuracy",
    "auc": "ROC-AUC",
    "precision": "precision",
    "recall": "recall",
}
# Columns of the colour-variant table: VariantScores field -> heading.
VARIANT_METRICS = {"auc": "ROC-AUC", "defect_recall": "recall of defects", "clean_recall": "recall of clean leather"}

STYLE = """
td.slice { white-space: nowrap; }
.base { display: block; font-size: 0.8em; color: #c65d00; }
tr.pass td:first-child { color: #1a7f37; font-weight: bold; }
tr.fail td:first-child { color: #cf222e; font-weight: bold; }
tr.worst td { background: #ffebe9; }
.verdict { font-size: 1.2em; font-weight: bold; }
.plots img { max-width: 48%; margin-right: 1%; vertical-align: top; }
"""


def _cell(metrics: dict[str, dict[str, float]], name: str) -> str:
    candidate = metrics.get("candidate", {}).get(name)
    baseline = metrics.get("baseline", {}).get(name)
    digits = 0 if name == "example_count" else 4
    text = "n/a" if candidate is None or math.isnan(candidate) else f"{candidate:.{digits}f}"
    if baseline is not None and not math.isnan(baseline):
        text += f'<span class="base">{baseline:.{digits}f}</span>'
    return text


def _metrics_table(rows: SliceRows) -> str:
    """One row per slice; a table of a subset of the slices (one feature's) is this on the subset."""
    return render.html_table(
        ["slice", *TABLE_METRICS.values()],
        [[html.escape(label), *(_cell(metrics, name) for name in TABLE_METRICS)] for label, metrics in rows],
        label_class="slice",
    )


def _variant_table(table: VariantTable) -> str:
    """One row per variant, each model's worst one marked (the candidate's shaded)."""
    if not table.rows:
        return "<p>This evaluation has no colour variants.</p>"
    rows = [
        [
            html.escape(name),
            *(_cell({role: dataclasses.asdict(s) for role, s in scores.items()}, field) for field in VARIANT_METRICS),
            html.escape(", ".join(table.worst_of(name))),
        ]
        for name, scores in table.rows
    ]
    worst = table.worst("candidate")
    return render.html_table(
        ["variant", *VARIANT_METRICS.values(), "worst of"],
        rows,
        row_classes=["worst" if name == worst else "" for name, _ in table.rows],
        label_class="slice",
    )


def _gate_table(summary: RunSummary) -> str:
    if not summary.gates:
        return "<p>No gates configured.</p>"
    rows = [
        [
            "pass" if g.passed else "FAIL",
            html.escape(g.subject),
            "change vs baseline" if g.is_change else "floor",
            f"{g.bound:{'+' if g.is_change else ''}.4f}",
            f"{g.candidate:.4f}",
            "&ndash;" if g.baseline is None else f"{g.baseline:.4f}",
            "&ndash;" if g.change is None else f"{g.change:+.4f}",
        ]
        for g in summary.gates
    ]
    header = ["decision", "metric", "gate", "bound", "candidate", "baseline", "change"]
    return render.html_table(header, rows, row_classes=["pass" if g.passed else "fail" for g in summary.gates])


def _threshold_note(summary: RunSummary) -> str:
    if summary.decision_threshold is None:
        return ""
    baseline = summary.baseline_decision_threshold
    return (
        "Accuracy, precision, recall and the confusion matrix are at each model's own decision threshold, "
        f"the one its served label uses: candidate {summary.decision_threshold:.4f}"
        + (f", baseline {baseline:.4f}." if baseline is not None else ".")
    )


def render_html(report: EvaluationReport) -> str:
    summary = report.summary
    verdict = "blessed" if summary.blessed else "not blessed"
    if summary.already_pushed:
        pushed = f"already pushed as version {html.escape(pathlib.Path(summary.pushed_destination).name)}"
    else:
        pushed = f"pushed to <code>{html.escape(summary.pushed_destination)}</code>" if summary.pushed else "not pushed"
    baseline_note = (
        "Orange numbers below a value are the baseline's: the latest blessed model, evaluated on the same test split."
        if "baseline" in report.models
        else "No blessed model existed before this run, so there is no baseline and no change gate."
    )
    body = f"""<h1>Evaluation report</h1>
<p class="verdict">Candidate model {verdict}, {pushed}.</p>
<p>Evaluation: <code>{html.escape(report.evaluation_uri)}</code></p>
<h2>Gates</h2>
{_gate_table(summary)}
<h2>Metrics per slice (test split)</h2>
<p>Precision and recall are those of the defective class. {_threshold_note(summary)} {baseline_note}</p>
{_metrics_table(report.slices)}
<h2>Colour variants of the test photos</h2>
<p>Every test photo scored again with its colours shifted (gray, hue turned, saturation, brightness and contrast
changed; <code>models/colour_variants.py</code>), re-encoded losslessly. A model that learned the leather's colour
rather than its defects collapses on some variant; the robustness gate holds every variant's ROC-AUC, so the worst
one's, to a floor. Recalls are at each model's own threshold. {baseline_note}</p>
{_variant_table(summary.variants)}
<h2>Confusion matrix at the model's threshold</h2>
<p>{render.html_image(PLOT_FILES['confusion'], 'confusion matrix')}</p>
<h2>ROC and calibration</h2>
<p class="plots">{render.html_image(PLOT_FILES['roc'], 'ROC curve')}\
{render.html_image(PLOT_FILES['calibration'], 'calibration curve')}</p>"""
    return render.html_page("Leather inspection: evaluation report", body, STYLE)


def write_report(report: EvaluationReport, out_dir: pathlib.Path) -> pathlib.Path:
    """Writes index.html and the PNGs into `out_dir`; returns the page's path."""
    return render.write_page(out_dir, PAGE_FILE, render_html(report), figures(report))
