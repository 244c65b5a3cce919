"""The evaluation report's page: verdict, gate table, metrics per slice and per colour variant next to the
baseline's, and the plots."""
import dataclasses
import html
import math
import os
import pathlib

from models import features
from pipeline.evaluation import render
from pipeline.evaluation.plots import PLOT_FILES, figures
from pipeline.evaluation.report import FALSE_ALARMS, EvaluationReport, SliceRows
from pipeline.evaluation.summary import RunSummary, failing_first, number
from pipeline.evaluation.variants import VariantTable

PAGE_FILE = "index.html"
# Columns of a metrics table: TFMA metric name -> heading.
TABLE_METRICS = {
    "example_count": "examples",
    "binary_accuracy": "accuracy",
    "auc": "ROC-AUC",
    "precision": "precision",
    "recall": "recall",
    FALSE_ALARMS: "false alarms",
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
    """One row per gate, the failing ones first, as the run printed them."""
    if not summary.gates:
        return "<p>No gates configured.</p>"
    gates = failing_first(summary.gates)
    rows = [
        [
            "pass" if g.passed else "FAIL",
            html.escape(g.subject),
            "change vs baseline" if g.is_change else "minimum",
            f"{g.bound:+.4f}" if g.is_change else number(g.metric, g.bound),
            number(g.metric, g.candidate),
            "&ndash;" if g.baseline is None else number(g.metric, g.baseline),
            "&ndash;" if g.change is None else f"{g.change:+.4f}",
        ]
        for g in gates
    ]
    header = ["decision", "metric", "gate", "bound", "candidate", "baseline", "change"]
    return render.html_table(header, rows, row_classes=["pass" if g.passed else "fail" for g in gates])


def operating_point(report: EvaluationReport) -> str:
    """The candidate's threshold in a line manager's words: clean photos rejected and defective ones passed, per 100."""
    curves = report.models.get("candidate")
    if curves is None or curves.confusion is None:
        return ""
    matrix = curves.confusion
    clean, defective = matrix.false_alarm_rate, matrix.missed_rate
    if math.isnan(clean) or math.isnan(defective):
        return ""
    return (
        f"At the stored decision threshold ({matrix.threshold:.4f}), out of 100 clean photos {clean * 100:.0f} are "
        f"rejected as defective, and out of 100 defective photos {defective * 100:.0f} pass as clean "
        f"(test split: {matrix.negatives:.0f} clean, {matrix.positives:.0f} defective photos)."
    )


def _shown(path: str, workdir: str | None) -> str:
    """A path under the workdir relative to it, as the user named the workdir; any other as it is."""
    if workdir is not None and pathlib.Path(path).is_relative_to(workdir):
        return os.path.relpath(path, workdir)
    return path


SLICES_NOTE = (
    "A <code>brightness = bright</code> photo has more than {share:.0%} of its pixels lighter than {level} on a "
    "0&ndash;255 gray scale (the reference method's test); every other photo is <code>dark</code>. "
    "A <code>defect_type</code> slice holds one kind of defect, or the clean photos "
    "(<code>non defective</code>): there is nothing to find on clean photos, so precision and recall are n/a there "
    "and its false alarms, the share of clean photos labelled defective, say how the model does."
).format(share=features.BRIGHT_PIXEL_SHARE, level=features.BRIGHT_PIXEL_LEVEL)
CALIBRATION_NOTE = (
    "Calibration: the test photos are put in 10 bins by the probability of a defect the model gave them; each "
    "point is one bin, its height the share of that bin's photos that were defective. On the diagonal, a "
    "probability of 0.8 means 8 in 10 such photos are defective; below it the model over-states defects, above it "
    "under-states them."
)


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
        pushed = f"already pushed as version {html.escape(summary.pushed_version)}"
    elif summary.pushed:
        pushed = f"pushed to <code>{html.escape(_shown(summary.pushed_destination, report.workdir))}</code>"
    else:
        pushed = "not pushed"
    baseline_note = (
        "Orange numbers below a value are the baseline's: the latest blessed model, evaluated on the same test split."
        if "baseline" in report.models
        else "No blessed model existed before this run, so there is no baseline and no change gate."
    )
    body = f"""<h1>Evaluation report</h1>
<p class="verdict">Candidate model {verdict}, {pushed}.</p>
{_paragraph(operating_point(report), "verdict")}
<p>Evaluation: <code>{html.escape(_shown(report.evaluation_uri, report.workdir))}</code>{_workdir_note(report)}</p>
<h2>Gates</h2>
{_gate_table(summary)}
<h2>Metrics per slice (test split)</h2>
<p>Precision and recall are those of the defective class. {_threshold_note(summary)} {baseline_note}</p>
<p>{SLICES_NOTE}</p>
{_metrics_table(report.slices)}
<h2>Colour variants of the test photos</h2>
<p>Every test photo scored again with its colours shifted (gray, hue turned, saturation, brightness and contrast
changed; <code>models/colour_variants.py</code>), re-encoded losslessly. A model that learned the leather's colour
rather than its defects collapses on some variant; the robustness gate requires a minimum ROC-AUC of every
variant, so of the worst one. Recalls are at each model's own threshold. {baseline_note}</p>
{_variant_table(summary.variants)}
<h2>Confusion matrix at the model's threshold</h2>
<p>{render.html_image(PLOT_FILES['confusion'], 'confusion matrix')}</p>
<h2>ROC and calibration</h2>
<p class="plots">{render.html_image(PLOT_FILES['roc'], 'ROC curve')}\
{render.html_image(PLOT_FILES['calibration'], 'calibration curve')}</p>
<p>{CALIBRATION_NOTE}</p>"""
    return render.html_page("Leather inspection: evaluation report", body, STYLE)


def _paragraph(text: str, css_class: str) -> str:
    """A paragraph of the page, or nothing at all when there is nothing to say (no empty box)."""
    return f'<p class="{css_class}">{text}</p>' if text else ""


def _workdir_note(report: EvaluationReport) -> str:
    return "" if report.workdir is None else " (paths relative to the workdir)"


def write_report(report: EvaluationReport, out_dir: pathlib.Path) -> pathlib.Path:
    """Writes index.html and the PNGs into `out_dir`; returns the page's path."""
    return render.write_page(out_dir, PAGE_FILE, render_html(report), figures(report))
