"""The evaluation report of a run: one HTML page and its PNG plots, candidate next to baseline.

TFMA's own views are notebook widgets; reviewers of a run want a file they can
open anywhere, so the page is plain HTML with matplotlib PNGs, built only from
what the Evaluator wrote (metrics, plots, validation) and what ML Metadata
recorded (blessing, push).
"""
from __future__ import annotations

import dataclasses
import html
import math
import pathlib

import ml_metadata as mlmd
import numpy as np
import tensorflow_model_analysis as tfma
from matplotlib.figure import Figure
from tensorflow_model_analysis.proto.metrics_for_slice_pb2 import MetricsForSlice
from tfx import v1 as tfx

from pipeline.run_summary import Evaluation, RunSummary, evaluated_run

METADATA_FILE = "metadata.sqlite"
CALIBRATION_BINS = 10
# Columns of the per-slice table: TFMA metric name -> heading.
TABLE_METRICS = {
    "example_count": "examples",
    "binary_accuracy": "accuracy",
    "auc": "ROC-AUC",
    "precision": "precision",
    "recall": "recall",
}
PLOT_FILES = {"roc": "roc.png", "calibration": "calibration.png", "confusion": "confusion_matrix.png"}
MODEL_COLOURS = {"candidate": "#1f77b4", "baseline": "#ff7f0e"}


class ReportError(Exception):
    """The workdir holds no evaluation to report on; the message names what is missing."""


@dataclasses.dataclass(frozen=True)
class ConfusionMatrix:
    threshold: float
    true_positives: float
    false_positives: float
    true_negatives: float
    false_negatives: float

    def as_grid(self) -> np.ndarray:
        """Rows are the true class (clean, defective), columns the predicted one."""
        return np.array([[self.true_negatives, self.false_positives], [self.false_negatives, self.true_positives]])


@dataclasses.dataclass(frozen=True)
class ModelCurves:
    """One model's overall-slice plots: ROC points, calibration bins and the confusion matrix at its threshold."""

    roc: list[tuple[float, float]]
    calibration: list[tuple[float, float, float]]  # (mean prediction, share defective, examples) per non-empty bin
    confusion: ConfusionMatrix | None


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Everything the page shows; `models` maps 'candidate' (and 'baseline' when there was one) to its curves."""

    evaluation_uri: str
    summary: RunSummary
    slices: list[tuple[str, dict[str, dict[str, float]]]]  # (slice label, role -> metric -> value)
    models: dict[str, ModelCurves]


def slice_label(slice_key: tfma.proto.metrics_for_slice_pb2.SliceKey) -> str:
    if not slice_key.single_slice_keys:
        return "overall"
    parts = []
    for single in slice_key.single_slice_keys:
        value = getattr(single, single.WhichOneof("kind"))
        parts.append(f"{single.column} = {value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts)


def _roles(evaluation: Evaluation) -> dict[str, str]:
    """TFMA model name -> role shown in the report."""
    roles = {evaluation.candidate_name: "candidate"}
    if evaluation.baseline_name is not None:
        roles[evaluation.baseline_name] = "baseline"
    return roles


def _single_class(value: tfma.proto.metrics_for_slice_pb2.MetricValue) -> bool:
    """True when the slice holds only one class, where ROC-AUC is undefined (TFMA reports 0)."""
    m = value.confusion_matrix_at_thresholds.matrices[0]
    return not (m.true_positives + m.false_negatives) or not (m.true_negatives + m.false_positives)


def _slice_metrics(metrics: list[MetricsForSlice], roles: dict[str, str]) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """Scalar metrics per slice and role; ROC-AUC is NaN on single-class slices (every defect type but clean)."""
    slices = []
    for metrics_for_slice in metrics:
        by_role: dict[str, dict[str, float]] = {}
        for kv in metrics_for_slice.metric_keys_and_values:
            if kv.key.is_diff or kv.key.model_name not in roles:
                continue
            metrics = by_role.setdefault(roles[kv.key.model_name], {})
            if kv.value.HasField("double_value"):
                metrics.setdefault(kv.key.name, kv.value.double_value.value)
            elif kv.value.HasField("confusion_matrix_at_thresholds") and _single_class(kv.value):
                metrics["auc"] = math.nan
        slices.append((slice_label(metrics_for_slice.slice_key), by_role))
    return sorted(slices, key=lambda item: (item[0] != "overall", item[0]))


def _confusion_matrices(evaluation: Evaluation, metrics: list[MetricsForSlice], roles: dict[str, str]) -> dict[str, ConfusionMatrix]:
    """The overall slice's ConfusionMatrixAtThresholds of each role's `label` output, at that model's threshold."""
    matrices = {}
    for metrics_for_slice in metrics:
        if metrics_for_slice.slice_key.single_slice_keys:
            continue
        for kv in metrics_for_slice.metric_keys_and_values:
            if kv.key.is_diff or kv.key.model_name not in roles or not kv.value.HasField("confusion_matrix_at_thresholds"):
                continue
            m = kv.value.confusion_matrix_at_thresholds.matrices[0]
            matrices[roles[kv.key.model_name]] = ConfusionMatrix(
                evaluation.decision_thresholds[kv.key.model_name],
                m.true_positives, m.false_positives, m.true_negatives, m.false_negatives,
            )
    return matrices


def calibration_bins(buckets, bins: int = CALIBRATION_BINS) -> list[tuple[float, float, float]]:
    """TFMA's fine calibration buckets summed into `bins` equal-width bins of the predicted probability."""
    totals = np.zeros((bins, 3))  # examples, sum of predictions, sum of labels
    for bucket in buckets:
        count = bucket.num_weighted_examples.value
        if count <= 0:
            continue
        mean_prediction = bucket.total_weighted_refined_prediction.value / count
        index = min(max(int(mean_prediction * bins), 0), bins - 1)
        totals[index] += (count, bucket.total_weighted_refined_prediction.value, bucket.total_weighted_label.value)
    return [(p / n, y / n, n) for n, p, y in totals if n > 0]


def _curves(evaluation_uri: str, roles: dict[str, str], matrices: dict[str, ConfusionMatrix]) -> dict[str, ModelCurves]:
    curves = {}
    for plots_for_slice in tfma.load_plots(evaluation_uri):
        if plots_for_slice.slice_key.single_slice_keys:
            continue
        for kv in plots_for_slice.plot_keys_and_values:
            if kv.key.model_name not in roles:
                continue
            roc = sorted(
                (m.false_positive_rate, m.recall)
                for m in kv.value.confusion_matrix_at_thresholds.matrices
                if not (math.isnan(m.false_positive_rate) or math.isnan(m.recall))
            )
            role = roles[kv.key.model_name]
            curves[role] = ModelCurves(
                roc=roc,
                calibration=calibration_bins(kv.value.calibration_histogram_buckets.buckets),
                confusion=matrices.get(role),
            )
    return curves


def load_report(workdir: pathlib.Path) -> EvaluationReport:
    """The newest evaluation recorded in the workdir's ML Metadata store."""
    metadata = workdir / METADATA_FILE
    if not metadata.is_file():
        raise ReportError(f"{metadata} does not exist: is {workdir} the --workdir of a `leather run`?")
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(metadata))
    store = mlmd.MetadataStore(connection)
    pipelines = [context.name for context in store.get_contexts_by_type("pipeline")]
    if len(pipelines) != 1:
        raise ReportError(f"{metadata} records {len(pipelines)} pipelines ({', '.join(pipelines)}); expected one")
    try:
        evaluation_uri, evaluation, summary = evaluated_run(store, pipelines[0])
    except (LookupError, ValueError) as error:
        raise ReportError(f"no finished Evaluator and Pusher run recorded in {metadata}: {error}") from error
    roles = _roles(evaluation)
    metrics = list(tfma.load_metrics(evaluation_uri))
    return EvaluationReport(
        evaluation_uri=evaluation_uri,
        summary=summary,
        slices=_slice_metrics(metrics, roles),
        models=_curves(evaluation_uri, roles, _confusion_matrices(evaluation, metrics, roles)),
    )


def _roc_figure(report: EvaluationReport) -> Figure:
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="chance")
    for role, curves in report.models.items():
        fpr, tpr = zip(*curves.roc) if curves.roc else ((), ())
        auc = next((m[role].get("auc") for label, m in report.slices if label == "overall" and role in m), None)
        axes.plot(fpr, tpr, color=MODEL_COLOURS[role], label=f"{role} (AUC {auc:.3f})" if auc is not None else role)
        if curves.confusion is not None:
            c = curves.confusion
            negatives, positives = c.true_negatives + c.false_positives, c.true_positives + c.false_negatives
            if negatives and positives:
                axes.plot(c.false_positives / negatives, c.true_positives / positives, "o", color=MODEL_COLOURS[role],
                          label=f"{role} at threshold {c.threshold:.2f}")
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (clean called defective)",
             ylabel="true positive rate (recall of defective)", title="ROC curve, overall test split")
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _calibration_figure(report: EvaluationReport) -> Figure:
    figure = Figure(figsize=(5, 5.6), dpi=100, layout="constrained")
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="perfectly calibrated")
    for role, curves in report.models.items():
        if not curves.calibration:
            continue
        predicted, observed, counts = zip(*curves.calibration)
        sizes = 20 + 180 * np.asarray(counts) / max(counts)
        axes.plot(predicted, observed, color=MODEL_COLOURS[role], alpha=0.6)
        axes.scatter(predicted, observed, s=sizes, color=MODEL_COLOURS[role], label=f"{role} (marker size: examples)")
    axes.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="mean predicted probability of defective",
             ylabel="share actually defective", title=f"Calibration, {CALIBRATION_BINS} bins")
    figure.legend(loc="outside lower center", fontsize="small", ncol=2)
    axes.grid(alpha=0.3)
    return figure


def _confusion_figure(report: EvaluationReport) -> Figure:
    matrices = {role: curves.confusion for role, curves in report.models.items() if curves.confusion is not None}
    figure = Figure(figsize=(4.2 * max(len(matrices), 1), 4), dpi=100)
    for axes, (role, matrix) in zip(np.atleast_1d(figure.subplots(1, max(len(matrices), 1))), matrices.items()):
        grid = matrix.as_grid()
        axes.imshow(grid, cmap="Blues", vmin=0, vmax=max(grid.max(), 1))
        for (row, column), value in np.ndenumerate(grid):
            colour = "white" if value > grid.max() / 2 else "black"
            axes.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=16, color=colour)
        axes.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["clean", "defective"], yticklabels=["clean", "defective"],
                 xlabel="predicted", ylabel="true", title=f"{role}, threshold {matrix.threshold:.2f}")
    figure.tight_layout()
    return figure


def _cell(metrics: dict[str, dict[str, float]], name: str) -> str:
    candidate = metrics.get("candidate", {}).get(name)
    baseline = metrics.get("baseline", {}).get(name)
    digits = 0 if name == "example_count" else 4
    text = "n/a" if candidate is None or math.isnan(candidate) else f"{candidate:.{digits}f}"
    if baseline is not None and not math.isnan(baseline):
        text += f'<span class="base">{baseline:.{digits}f}</span>'
    return f"<td>{text}</td>"


def _slice_table(report: EvaluationReport) -> str:
    head = "".join(f"<th>{heading}</th>" for heading in TABLE_METRICS.values())
    rows = "".join(
        f"<tr><td class='slice'>{html.escape(label)}</td>{''.join(_cell(metrics, name) for name in TABLE_METRICS)}</tr>"
        for label, metrics in report.slices
    )
    return f"<table><tr><th>slice</th>{head}</tr>{rows}</table>"


def _gate_table(summary: RunSummary) -> str:
    if not summary.gates:
        return "<p>No gates configured.</p>"
    rows = "".join(
        f"<tr class='{'pass' if g.passed else 'fail'}'><td>{'pass' if g.passed else 'FAIL'}</td><td>{g.metric}</td>"
        f"<td>{'change vs baseline' if g.is_change else 'floor'}</td><td>{g.bound:{'+' if g.is_change else ''}.4f}</td><td>{g.candidate:.4f}</td>"
        f"<td>{'&ndash;' if g.baseline is None else f'{g.baseline:.4f}'}</td>"
        f"<td>{'&ndash;' if g.change is None else f'{g.change:+.4f}'}</td></tr>"
        for g in summary.gates
    )
    head = "<tr><th>decision</th><th>metric</th><th>gate</th><th>bound</th><th>candidate</th><th>baseline</th><th>change</th></tr>"
    return f"<table>{head}{rows}</table>"


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f0f0f0; }
td.slice, th:first-child { text-align: left; }
.base { display: block; font-size: 0.8em; color: #c65d00; }
tr.pass td:first-child { color: #1a7f37; font-weight: bold; }
tr.fail td:first-child { color: #cf222e; font-weight: bold; }
.verdict { font-size: 1.2em; font-weight: bold; }
.plots img { max-width: 48%; margin-right: 1%; vertical-align: top; }
code { background: #f6f8fa; padding: 1px 4px; }
"""


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
    pushed = f"pushed to <code>{html.escape(summary.pushed_destination)}</code>" if summary.pushed else "not pushed"
    baseline_note = (
        "Orange numbers below a value are the baseline's: the latest blessed model, evaluated on the same test split."
        if "baseline" in report.models
        else "No blessed model existed before this run, so there is no baseline and no change gate."
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Leather inspection: evaluation report</title><style>{STYLE}</style></head>
<body>
<h1>Evaluation report</h1>
<p class="verdict">Candidate model {verdict}, {pushed}.</p>
<p>Evaluation: <code>{html.escape(report.evaluation_uri)}</code></p>
<h2>Gates</h2>
{_gate_table(summary)}
<h2>Metrics per slice (test split)</h2>
<p>Precision and recall are those of the defective class. {_threshold_note(summary)} {baseline_note}</p>
{_slice_table(report)}
<h2>Confusion matrix at the model's threshold</h2>
<p><img src="{PLOT_FILES['confusion']}" alt="confusion matrix"></p>
<h2>ROC and calibration</h2>
<p class="plots"><img src="{PLOT_FILES['roc']}" alt="ROC curve"><img src="{PLOT_FILES['calibration']}" alt="calibration curve"></p>
</body></html>
"""


def write_report(report: EvaluationReport, out_dir: pathlib.Path) -> pathlib.Path:
    """Writes index.html and the PNGs into `out_dir`; returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {"roc": _roc_figure, "calibration": _calibration_figure, "confusion": _confusion_figure}
    for name, draw in figures.items():
        draw(report).savefig(out_dir / PLOT_FILES[name])
    page = out_dir / "index.html"
    page.write_text(render_html(report), encoding="utf-8")
    return page
