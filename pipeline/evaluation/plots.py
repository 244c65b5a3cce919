"""The evaluation report's figures: ROC curve, calibration and confusion matrix, candidate beside baseline."""
import numpy as np
from matplotlib.figure import Figure

from pipeline.evaluation.report import CALIBRATION_BINS, EvaluationReport
from pipeline.evaluation.results import OVERALL

PLOT_FILES = {"roc": "roc.png", "calibration": "calibration.png", "confusion": "confusion_matrix.png"}
MODEL_COLOURS = {"candidate": "#1f77b4", "baseline": "#ff7f0e"}


def _roc_figure(report: EvaluationReport) -> Figure:
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="chance")
    for role, curves in report.models.items():
        fpr, tpr = zip(*curves.roc) if curves.roc else ((), ())
        auc = next((m[role].get("auc") for label, m in report.slices if label == OVERALL and role in m), None)
        axes.plot(fpr, tpr, color=MODEL_COLOURS[role], label=f"{role} (AUC {auc:.3f})" if auc is not None else role)
        if curves.confusion is not None:
            c = curves.confusion
            if not c.single_class:
                axes.plot(c.false_alarm_rate, c.defect_recall, "o", color=MODEL_COLOURS[role],
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


def figures(report: EvaluationReport) -> dict[str, Figure]:
    """Each figure by the PNG file name the page shows it under."""
    return {
        PLOT_FILES["roc"]: _roc_figure(report),
        PLOT_FILES["calibration"]: _calibration_figure(report),
        PLOT_FILES["confusion"]: _confusion_figure(report),
    }
