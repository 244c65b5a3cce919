"""What the Evaluator would record for given metrics: TFMA's config defaults and its own validator.

Gate decisions are checked against TFMA's validator fed with known metric
values, so the tests cover the thresholds the pipeline configures, not a copy of
TFMA's comparison logic.
"""
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator

from pipeline.evaluation.results import Evaluation

Metrics = dict[str, float]

# The slice key of the original photos, the overall slice of every evaluation (pipeline/evaluation/spec.py).
ORIGINAL = (("variant", "original"),)


def evaluate_slices(
    config: tfma.EvalConfig, slices: dict[tuple, tuple[Metrics, Metrics | None]], has_baseline: bool
) -> Evaluation:
    """An evaluation of metrics on several slices (slice key -> candidate's and baseline's metrics)."""
    used = tfma.utils.update_eval_config_with_defaults(config, has_baseline=has_baseline, rubber_stamp=True)
    outputs = {
        metric.class_name: output for spec in config.metrics_specs for output in spec.output_names for metric in spec.metrics
    }
    output_of = {"binary_accuracy": outputs["BinaryAccuracy"], "auc": outputs["AUC"]}
    name = next(m.name for m in used.model_specs if not m.is_baseline)

    def key(metric: str, model: str, is_diff: bool = False) -> tfma.metrics.MetricKey:
        return tfma.metrics.MetricKey(
            metric, model_name=model, output_name=output_of[metric], example_weighted=False, is_diff=is_diff
        )

    by_slice, validation = {}, tfma.ValidationResult()
    for slice_key, (candidate, baseline) in slices.items():
        by_model = by_slice[slice_key] = {m.name: {} for m in used.model_specs}
        keyed = {}
        for metric, value in candidate.items():
            by_model[name][(metric, False)] = value
            keyed[key(metric, name)] = value
            if baseline is not None:
                by_model["baseline"][(metric, False)] = baseline[metric]
                by_model[name][(metric, True)] = value - baseline[metric]
                keyed[key(metric, "baseline")] = baseline[metric]
                keyed[key(metric, name, is_diff=True)] = value - baseline[metric]
        result = metrics_validator.validate_metrics((slice_key, keyed), used)
        validation.metric_validations_per_slice.extend(result.metric_validations_per_slice)
    return Evaluation(used, by_slice, validation)
