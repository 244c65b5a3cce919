"""The data of a run's evaluation report: the summary, metrics per slice and the overall curves of each model.

Built only from what the Evaluator wrote (metrics, plots, validation) and what
ML Metadata recorded (blessing, push); `page` and `plots` draw it.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib

import ml_metadata as mlmd
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.slicer import slicer_lib
from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.evaluation.results import OVERALL, ConfusionMatrix, Evaluation
from pipeline.evaluation.run_record import RunResults
from pipeline.evaluation.spec import variant_slicing
from pipeline.evaluation.summary import RunSummary

CALIBRATION_BINS = 10
FALSE_ALARMS = "false_alarm_rate"
"""A slice row's share of clean photos labelled defective, from its confusion matrix (TFMA has no such metric)."""

# (slice label, role -> metric -> value), the overall slice first.
SliceRows = list[tuple[str, dict[str, dict[str, float]]]]


class ReportError(Exception):
    """The workdir holds no evaluation to report on; the message names what is missing."""


@dataclasses.dataclass(frozen=True)
class ModelCurves:
    """One model's overall-slice plots: ROC points, calibration bins and the confusion matrix at its threshold."""

    roc: list[tuple[float, float]]
    calibration: list[tuple[float, float, float]]  # (mean prediction, share defective, examples) per non-empty bin
    confusion: ConfusionMatrix | None


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Everything the page shows; `models` maps 'candidate' (and 'baseline' when there was one) to its curves.

    The colour-variant table is the summary's (`summary.variants`).
    """

    evaluation_uri: str
    summary: RunSummary
    slices: SliceRows
    models: dict[str, ModelCurves]
    workdir: str | None = None
    """Paths on the page are shown relative to it."""


def slice_rows(evaluation: Evaluation) -> SliceRows:
    """Scalar metrics per slice and role, on the slicings of the original photos (the variants have their own
    table), with the false-alarm rate and what is undefined on one class NaN (`slice_rates`)."""
    rows = []
    for slicing in evaluation.config.slicing_specs:
        if slicing == variant_slicing():
            continue
        for label, slice_key in evaluation.slices(slicing):
            by_model = evaluation.metrics[slice_key]
            by_role = {}
            for model, role in evaluation.roles().items():
                if model not in by_model:
                    continue
                metrics = evaluation.plain_metrics(model, slice_key)
                confusion = evaluation.confusion.get(slice_key, {}).get(model)
                if confusion is not None:
                    metrics.update(slice_rates(confusion))
                by_role[role] = metrics
            rows.append((label, by_role))
    return sorted(rows, key=lambda row: (row[0] != OVERALL, row[0]))


def slice_rates(confusion: ConfusionMatrix) -> dict[str, float]:
    """What a slice's confusion matrix changes in its row: ROC-AUC undefined on one class; on clean photos alone,
    precision and recall of defects undefined (TFMA reports 0) and the false alarms what matters."""
    rates = {FALSE_ALARMS: confusion.false_alarm_rate}
    if confusion.single_class:
        rates["auc"] = math.nan
    if not confusion.positives:
        rates["precision"] = rates["recall"] = math.nan
    return rates


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


def _curves(evaluation_uri: str, evaluation: Evaluation) -> dict[str, ModelCurves]:
    roles = evaluation.roles()
    overall_confusion = evaluation.confusion.get(evaluation.overall_slice, {})
    curves = {}
    for plots_for_slice in tfma.load_plots(evaluation_uri):
        if slicer_lib.deserialize_slice_key(plots_for_slice.slice_key) != evaluation.overall_slice:
            continue
        for kv in plots_for_slice.plot_keys_and_values:
            if kv.key.model_name not in roles:
                continue
            roc = sorted(
                (m.false_positive_rate, m.recall)
                for m in kv.value.confusion_matrix_at_thresholds.matrices
                if not (math.isnan(m.false_positive_rate) or math.isnan(m.recall))
            )
            curves[roles[kv.key.model_name]] = ModelCurves(
                roc=roc,
                calibration=calibration_bins(kv.value.calibration_histogram_buckets.buckets),
                confusion=overall_confusion.get(kv.key.model_name),
            )
    return curves


def load_report(workdir: pathlib.Path) -> EvaluationReport:
    """The newest evaluation recorded in the workdir's ML Metadata store."""
    metadata = pathlib.Path(PipelineConfig(data_dir="", workdir=str(workdir)).metadata_path)
    if not metadata.is_file():
        raise ReportError(f"{metadata} does not exist: is {workdir} the --workdir of a `leather run`?")
    store = mlmd.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(str(metadata)))
    pipelines = [context.name for context in store.get_contexts_by_type("pipeline")]
    if len(pipelines) != 1:
        raise ReportError(f"{metadata} records {len(pipelines)} pipelines ({', '.join(pipelines)}); expected one")
    try:
        results = RunResults.load(store, pipelines[0])
    except (LookupError, ValueError) as error:
        raise ReportError(f"no finished Evaluator and Pusher run recorded in {metadata}: {error}") from error
    return EvaluationReport(
        evaluation_uri=results.evaluation_uri,
        summary=RunSummary.of(results),
        slices=slice_rows(results.evaluation),
        models=_curves(results.evaluation_uri, results.evaluation),
        workdir=str(workdir),
    )
