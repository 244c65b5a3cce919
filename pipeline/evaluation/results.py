"""The Evaluator's output read once into plain numbers per slice and model: metrics, label confusion matrices,
decision thresholds and the gate decisions; the summary and the report both start from it. Which evaluation and
push a run made is read from ML Metadata in run_record.py.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping

import numpy as np
import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from tensorflow_model_analysis.proto import validation_result_pb2
from tensorflow_model_analysis.proto.metrics_for_slice_pb2 import SliceKey
from tensorflow_model_analysis.slicer import slicer_lib
from tensorflow_model_analysis.writers import eval_config_writer

from models.signatures import stored_decision_threshold

OVERALL = "overall"

# A slice as TFMA keys it in Python: ((feature, value), ...); () is the overall slice.
SliceKeyType = tuple
# (metric name, is_diff) of one model's metric on one slice.
MetricId = tuple[str, bool]
Threshold = tfma.GenericValueThreshold | tfma.GenericChangeThreshold


def slice_label(slice_key: SliceKeyType | SliceKey, scope: Mapping[str, str] | None = None) -> str:
    """'overall', or 'feature = value' for each feature the slice fixes, but those its slicing's `scope` fixes.

    The scope is a SlicingSpec's `feature_values`: what all its slices share
    (the original photos) is the table's subject, not part of each row's name.
    """
    if isinstance(slice_key, SliceKey):
        slice_key = slicer_lib.deserialize_slice_key(slice_key)
    scope = scope or {}
    named = [(column, value) for column, value in slice_key if scope.get(column) != str(value)]
    return ", ".join(f"{column} = {value}" for column, value in named) or OVERALL


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """One threshold of the eval config on one slice, and how the candidate fared against it.

    `bound` is the floor for an absolute gate and the smallest allowed change
    (negative: an allowed drop) for a change gate against the baseline.
    """

    metric: str
    is_change: bool
    passed: bool
    bound: float
    candidate: float
    baseline: float | None = None
    change: float | None = None
    slice: str = OVERALL

    @property
    def subject(self) -> str:
        """The metric, and the slice when it is not the overall one."""
        return self.metric if self.slice == OVERALL else f"{self.metric} on {self.slice}"

    def describe(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        rule = f"change vs baseline >= {self.bound:+.4f}" if self.is_change else f">= {self.bound:.4f}"
        numbers = f"candidate {self.candidate:.4f}"
        if self.baseline is not None:
            numbers += f", baseline {self.baseline:.4f}"
        if self.change is not None:
            numbers += f", change {self.change:+.4f}"
        return f"{verdict} {self.subject} {rule}: {numbers}"


def _bound(threshold: Threshold) -> float:
    if isinstance(threshold, tfma.GenericChangeThreshold):
        return threshold.absolute.value
    return threshold.lower_bound.value


def _failure_bound(threshold: tfma.MetricThreshold) -> float:
    """The bound of the one threshold TFMA records with a failure (a value or a change threshold)."""
    if threshold.HasField("change_threshold"):
        return _bound(threshold.change_threshold)
    return _bound(threshold.value_threshold)


def _describe_failure(slice_key: SliceKeyType, failure: validation_result_pb2.ValidationFailure) -> str:
    """A failure outside the gates the eval config declares, straight from TFMA."""
    threshold = text_format.MessageToString(failure.metric_threshold, as_one_line=True)
    value = failure.metric_value.double_value.value
    return f"FAIL {failure.metric_key.name} on {slice_label(slice_key)}: {value:.4f} violates {threshold}"


@dataclasses.dataclass(frozen=True)
class ConfusionMatrix:
    """The served label's counts on one slice, at the decision threshold of the model that served it."""

    threshold: float
    true_positives: float
    false_positives: float
    true_negatives: float
    false_negatives: float

    def as_grid(self) -> np.ndarray:
        """Rows are the true class (clean, defective), columns the predicted one."""
        return np.array([[self.true_negatives, self.false_positives], [self.false_negatives, self.true_positives]])

    @property
    def positives(self) -> float:
        """Defective photos in the slice."""
        return self.true_positives + self.false_negatives

    @property
    def negatives(self) -> float:
        """Clean photos in the slice."""
        return self.true_negatives + self.false_positives

    @property
    def single_class(self) -> bool:
        """True when the slice holds only one class, where ROC-AUC is undefined (TFMA reports 0)."""
        return not self.positives or not self.negatives

    @property
    def defect_recall(self) -> float:
        """The share of defective photos labelled defective; NaN when the slice holds none."""
        return self.true_positives / self.positives if self.positives else math.nan

    @property
    def clean_recall(self) -> float:
        """The share of clean photos labelled clean, TN / (TN + FP); NaN when the slice holds none."""
        return self.true_negatives / self.negatives if self.negatives else math.nan

    @property
    def false_alarm_rate(self) -> float:
        """The share of clean photos labelled defective, FP / (TN + FP); NaN when the slice holds none."""
        return self.false_positives / self.negatives if self.negatives else math.nan

    @property
    def missed_rate(self) -> float:
        """The share of defective photos labelled clean, FN / (TP + FN); NaN when the slice holds none."""
        return self.false_negatives / self.positives if self.positives else math.nan


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One Evaluator output: the config it used, its scalar metrics and label confusion matrices per slice and
    model, its validation, and the decision threshold each model's label was computed at."""

    config: tfma.EvalConfig
    metrics: dict[SliceKeyType, dict[str, dict[MetricId, float]]]
    validation: tfma.ValidationResult
    decision_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    confusion: dict[SliceKeyType, dict[str, ConfusionMatrix]] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, evaluation_uri: str) -> Evaluation:
        config, model_locations = used_eval_run(evaluation_uri)
        thresholds = {name: stored_decision_threshold(location) for name, location in model_locations.items()}
        metrics: dict[SliceKeyType, dict[str, dict[MetricId, float]]] = {}
        confusion: dict[SliceKeyType, dict[str, ConfusionMatrix]] = {}
        for metrics_for_slice in tfma.load_metrics(evaluation_uri):
            key = slicer_lib.deserialize_slice_key(metrics_for_slice.slice_key)
            for kv in metrics_for_slice.metric_keys_and_values:
                model = kv.key.model_name
                if kv.value.HasField("double_value"):
                    by_model = metrics.setdefault(key, {}).setdefault(model, {})
                    by_model[(kv.key.name, kv.key.is_diff)] = kv.value.double_value.value
                elif kv.value.HasField("confusion_matrix_at_thresholds") and not kv.key.is_diff:
                    m = kv.value.confusion_matrix_at_thresholds.matrices[0]
                    confusion.setdefault(key, {})[model] = ConfusionMatrix(
                        thresholds[model], m.true_positives, m.false_positives, m.true_negatives, m.false_negatives
                    )
        return cls(config, metrics, tfma.load_validation_result(evaluation_uri), thresholds, confusion)

    @property
    def overall_slice(self) -> SliceKeyType:
        """The slice of the config's slicing without feature keys: what it fixes (the original photos), or all."""
        overall = next((spec for spec in self.config.slicing_specs if not spec.feature_keys), tfma.SlicingSpec())
        return tuple(sorted(overall.feature_values.items()))

    def slices(self, slicing: tfma.SlicingSpec | None) -> list[tuple[str, SliceKeyType]]:
        """(label, slice key) of every evaluated slice the slicing makes, labelled without what it fixes; every
        slice for None (TFMA's slicing of a threshold declared without one)."""
        if slicing is None:
            return [(slice_label(key), key) for key in self.metrics]
        applies = slicer_lib.SingleSliceSpec(spec=slicing).is_slice_applicable
        return [(slice_label(key, slicing.feature_values), key) for key in self.metrics if applies(key)]

    @property
    def baseline_name(self) -> str | None:
        """'baseline' when the resolver found a blessed model to compare with, else None."""
        return next((spec.name for spec in self.config.model_specs if spec.is_baseline), None)

    @property
    def candidate_name(self) -> str:
        return next(spec.name for spec in self.config.model_specs if not spec.is_baseline)

    def roles(self) -> dict[str, str]:
        """TFMA model name -> 'candidate' or 'baseline', the names people read."""
        roles = {self.candidate_name: "candidate"}
        if self.baseline_name is not None:
            roles[self.baseline_name] = "baseline"
        return roles

    def plain_metrics(self, model: str | None, slice_key: SliceKeyType | None = None) -> dict[str, float]:
        """A model's own metrics on a slice, the overall one by default (no differences to the baseline); empty
        for no model."""
        slice_key = self.overall_slice if slice_key is None else slice_key
        metrics = self.metrics.get(slice_key, {}).get(model, {}) if model is not None else {}
        return {name: value for (name, is_diff), value in metrics.items() if not is_diff}

    @property
    def candidate_metrics(self) -> dict[str, float]:
        return self.plain_metrics(self.candidate_name)

    @property
    def baseline_metrics(self) -> dict[str, float]:
        return self.plain_metrics(self.baseline_name)

    def _failed(self) -> dict[tuple[SliceKeyType, MetricId, float], str]:
        """The candidate's failed thresholds by slice, metric and bound, each with a line naming it as TFMA
        recorded it. The bound tells apart two floors of one metric on one slice (ROC-AUC of the original
        photos: the overall floor and the variant floor); TFMA records a failed bound once per slice."""
        failed = {}
        for per_slice in self.validation.metric_validations_per_slice:
            key = slicer_lib.deserialize_slice_key(per_slice.slice_key)
            for failure in per_slice.failures:
                if failure.metric_key.model_name == self.candidate_name:
                    metric = (failure.metric_key.name, failure.metric_key.is_diff)
                    failed[(key, metric, _failure_bound(failure.metric_threshold))] = _describe_failure(key, failure)
        return failed

    def _applied_thresholds(self) -> Iterator[tuple[tfma.metrics.MetricKey, str, SliceKeyType, Threshold]]:
        """Each threshold of the candidate with each evaluated slice it applies to, and that slice's label."""
        thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(self.config.metrics_specs, eval_config=self.config)
        for metric_key, slice_thresholds in thresholds.items():
            if metric_key.model_name != self.candidate_name:
                continue
            for slicing, threshold in slice_thresholds:
                for label, slice_key in self.slices(slicing):
                    yield metric_key, label, slice_key, threshold

    def gates(self) -> list[GateDecision]:
        """Every threshold of the candidate on every slice it applies to, with its numbers; pass/fail as TFMA
        decided it. TFMA's validation lists only failures, so the passes are rebuilt from the eval config.

        Gates are absolute lower bounds and absolute change thresholds (spec.Gate).
        """
        failed = self._failed()
        decisions = []
        for metric_key, label, slice_key, threshold in self._applied_thresholds():
            candidate = self.metrics[slice_key][self.candidate_name]
            baseline = self.metrics[slice_key].get(self.baseline_name, {})
            decisions.append(
                GateDecision(
                    metric=metric_key.name,
                    is_change=metric_key.is_diff,
                    passed=(slice_key, (metric_key.name, metric_key.is_diff), _bound(threshold)) not in failed,
                    bound=_bound(threshold),
                    candidate=candidate[(metric_key.name, False)],
                    baseline=baseline.get((metric_key.name, False)),
                    change=candidate.get((metric_key.name, True)),
                    slice=label,
                )
            )
        return sorted(decisions, key=lambda d: (d.slice != OVERALL, d.slice, d.metric, d.is_change))

    def failures(self) -> list[str]:
        """One line per failed gate with its numbers, then any failure TFMA recorded outside the gates."""
        decided = {
            (slice_key, (metric_key.name, metric_key.is_diff), _bound(threshold))
            for metric_key, _, slice_key, threshold in self._applied_thresholds()
        }
        others = [line for failure, line in self._failed().items() if failure not in decided]
        return [d.describe() for d in self.gates() if not d.passed] + others


def used_eval_run(evaluation_uri: str) -> tuple[tfma.EvalConfig, dict[str, str]]:
    """The eval config as the Evaluator ran it (model names filled in, change gates only with a baseline), and
    the model directory of each model name."""
    config, _, _, model_locations = eval_config_writer.load_eval_run(evaluation_uri)
    if config is None:
        raise LookupError(f"no eval_config.json in the evaluation {evaluation_uri}")
    return config, dict(model_locations or {})
