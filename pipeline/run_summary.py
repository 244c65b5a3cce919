"""What a finished run decided, read back from ML Metadata and the artifacts.

LocalDagRunner returns nothing, and a cached node records no new outputs of its
own kind, so the summary takes, per node, the newest execution's output events.
Each gate is shown with the numbers behind it, pass or fail: TFMA's validation
result lists only failures, so the decisions are rebuilt from the thresholds of
the eval config the Evaluator actually used (change gates exist only when a
baseline did) and the overall slice's metrics, while pass/fail is TFMA's own.
"""
from __future__ import annotations

import dataclasses

import ml_metadata as mlmd
import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from ml_metadata.proto import metadata_store_pb2
from tensorflow_model_analysis.writers import eval_config_writer

from models.signatures import stored_decision_threshold

EVALUATOR_NODE = "Evaluator"
PUSHER_NODE = "Pusher"

# (metric name, is_diff) of one model's metric on the overall slice.
MetricId = tuple[str, bool]


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """One threshold of the eval config on the overall slice, and how the candidate fared against it.

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

    def describe(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        rule = f"change vs baseline >= {self.bound:+.4f}" if self.is_change else f">= {self.bound:.4f}"
        numbers = f"candidate {self.candidate:.4f}"
        if self.baseline is not None:
            numbers += f", baseline {self.baseline:.4f}"
        if self.change is not None:
            numbers += f", change {self.change:+.4f}"
        return f"{verdict} {self.metric} {rule}: {numbers}"


@dataclasses.dataclass
class RunSummary:
    metrics: dict[str, float]
    blessed: bool
    gate_failures: list[str]
    pushed: bool
    pushed_destination: str | None
    gates: list[GateDecision] = dataclasses.field(default_factory=list)
    baseline_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    decision_threshold: float | None = None
    baseline_decision_threshold: float | None = None

    def lines(self) -> list[str]:
        lines = ["evaluation on the test split:"]
        if self.decision_threshold is not None:
            baseline = self.baseline_decision_threshold
            lines.append(
                f"  accuracy, precision and recall at the model's decision threshold {self.decision_threshold:.4f}"
                + (f" (baseline's: {baseline:.4f})" if baseline is not None else "")
            )
        for name, value in sorted(self.metrics.items()):
            baseline = f"   (baseline {self.baseline_metrics[name]:.4f})" if name in self.baseline_metrics else ""
            lines.append(f"  {name:<32} {value:.4f}{baseline}")
        lines.append("gates on the overall slice:" if self.gates else "gates: none configured")
        lines += [f"  {gate.describe()}" for gate in self.gates]
        lines.append("model blessed: " + ("yes" if self.blessed else "no"))
        shown = {gate.describe() for gate in self.gates}
        lines += [f"  gate failed: {failure}" for failure in self.gate_failures if failure not in shown]
        lines.append(f"pushed to: {self.pushed_destination}" if self.pushed else "not pushed")
        return lines


def newest_outputs(store: mlmd.MetadataStore, pipeline_name: str, node: str) -> dict[str, metadata_store_pb2.Artifact]:
    """The output artifacts of the node's newest execution, by output key."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node}")
    if context is None:
        raise LookupError(f"ML Metadata has no record of node {node} in pipeline {pipeline_name}")
    execution = max(store.get_executions_by_context(context.id), key=lambda e: e.id)
    events = [
        e
        for e in store.get_events_by_execution_ids([execution.id])
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    return {e.path.steps[0].key: artifacts[e.artifact_id] for e in events}


def used_eval_run(evaluation_uri: str) -> tuple[tfma.EvalConfig, dict[str, str]]:
    """The eval config as the Evaluator ran it (model names filled in, change gates only with a baseline), and
    the model directory of each model name."""
    config, _, _, model_locations = eval_config_writer.load_eval_run(evaluation_uri)
    if config is None:
        raise LookupError(f"no eval_config.json in the evaluation {evaluation_uri}")
    return config, dict(model_locations or {})


def _overall_metrics_by_model(evaluation_uri: str) -> dict[str, dict[MetricId, float]]:
    by_model: dict[str, dict[MetricId, float]] = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if metrics_for_slice.slice_key.single_slice_keys:
            continue
        for kv in metrics_for_slice.metric_keys_and_values:
            if kv.value.HasField("double_value"):
                by_model.setdefault(kv.key.model_name, {})[(kv.key.name, kv.key.is_diff)] = kv.value.double_value.value
    return by_model


def _bound(threshold: tfma.GenericValueThreshold | tfma.GenericChangeThreshold) -> float:
    if isinstance(threshold, tfma.GenericChangeThreshold):
        return threshold.absolute.value
    return threshold.lower_bound.value


def _describe_failure(slice_key, failure) -> str:
    """A failure outside the overall-slice gates (none are configured today), straight from TFMA."""
    where = text_format.MessageToString(slice_key, as_one_line=True)
    threshold = text_format.MessageToString(failure.metric_threshold, as_one_line=True)
    return f"FAIL {failure.metric_key.name} on slice {{{where}}}: {failure.metric_value.double_value.value:.4f} violates {threshold}"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One Evaluator output: the config it used, the overall slice's scalar metrics per model, its validation,
    and the decision threshold each model's thresholded metrics were computed at."""

    config: tfma.EvalConfig
    metrics_by_model: dict[str, dict[MetricId, float]]
    validation: tfma.ValidationResult
    decision_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, evaluation_uri: str) -> Evaluation:
        config, model_locations = used_eval_run(evaluation_uri)
        return cls(
            config,
            _overall_metrics_by_model(evaluation_uri),
            tfma.load_validation_result(evaluation_uri),
            {name: stored_decision_threshold(location) for name, location in model_locations.items()},
        )

    @property
    def baseline_name(self) -> str | None:
        """'baseline' when the resolver found a blessed model to compare with, else None."""
        return next((spec.name for spec in self.config.model_specs if spec.is_baseline), None)

    @property
    def candidate_name(self) -> str:
        return next(spec.name for spec in self.config.model_specs if not spec.is_baseline)

    def _plain(self, model: str | None) -> dict[str, float]:
        metrics = self.metrics_by_model.get(model, {}) if model is not None else {}
        return {name: value for (name, is_diff), value in metrics.items() if not is_diff}

    @property
    def candidate_metrics(self) -> dict[str, float]:
        return self._plain(self.candidate_name)

    @property
    def baseline_metrics(self) -> dict[str, float]:
        return self._plain(self.baseline_name)

    def gates(self) -> list[GateDecision]:
        """Every overall-slice threshold of the candidate with its numbers; pass/fail as TFMA decided it.

        Gates are absolute lower bounds and absolute change thresholds (pipeline.eval_config).
        """
        failed = {
            (f.metric_key.name, f.metric_key.is_diff)
            for s in self.validation.metric_validations_per_slice
            if not s.slice_key.single_slice_keys
            for f in s.failures
            if f.metric_key.model_name == self.candidate_name
        }
        candidate = self.metrics_by_model.get(self.candidate_name, {})
        baseline = self.baseline_metrics
        decisions = []
        thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(self.config.metrics_specs, eval_config=self.config)
        for key, slice_thresholds in thresholds.items():
            if key.model_name != self.candidate_name:
                continue
            for slice_spec, threshold in slice_thresholds:
                if slice_spec is not None and slice_spec != tfma.SlicingSpec():
                    continue
                decisions.append(
                    GateDecision(
                        metric=key.name,
                        is_change=key.is_diff,
                        passed=(key.name, key.is_diff) not in failed,
                        bound=_bound(threshold),
                        candidate=candidate[(key.name, False)],
                        baseline=baseline.get(key.name),
                        change=candidate.get((key.name, True)),
                    )
                )
        return sorted(decisions, key=lambda d: (d.metric, d.is_change))

    def failures(self) -> list[str]:
        """One line per failed gate, overall-slice gates with their numbers first."""
        others = [
            _describe_failure(s.slice_key, f)
            for s in self.validation.metric_validations_per_slice
            if s.slice_key.single_slice_keys
            for f in s.failures
        ]
        return [d.describe() for d in self.gates() if not d.passed] + others


def evaluated_run(store: mlmd.MetadataStore, pipeline_name: str) -> tuple[str, Evaluation, RunSummary]:
    """The newest Evaluator output's location, that evaluation, and what the run decided with it."""
    evaluator = newest_outputs(store, pipeline_name, EVALUATOR_NODE)
    pushed = newest_outputs(store, pipeline_name, PUSHER_NODE)["pushed_model"]
    evaluation_uri = evaluator["evaluation"].uri
    evaluation = Evaluation.load(evaluation_uri)
    was_pushed = bool(pushed.custom_properties["pushed"].int_value)
    summary = RunSummary(
        metrics=evaluation.candidate_metrics,
        blessed=bool(evaluator["blessing"].custom_properties["blessed"].int_value),
        gate_failures=evaluation.failures(),
        pushed=was_pushed,
        pushed_destination=pushed.custom_properties["pushed_destination"].string_value if was_pushed else None,
        gates=evaluation.gates(),
        baseline_metrics=evaluation.baseline_metrics,
        decision_threshold=evaluation.decision_thresholds.get(evaluation.candidate_name),
        baseline_decision_threshold=evaluation.decision_thresholds.get(evaluation.baseline_name),
    )
    return evaluation_uri, evaluation, summary


def summarize(pipeline_name: str, connection_config: metadata_store_pb2.ConnectionConfig) -> RunSummary:
    return evaluated_run(mlmd.MetadataStore(connection_config), pipeline_name)[2]
