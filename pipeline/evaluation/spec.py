"""What the Evaluator computes, on which slices, and which metrics gate the blessing.

Adding a gate is one `Gate` in `gates()` (its bounds in `GateConfig`); adding a
sliced table is one feature in `SLICE_FEATURES`. The run summary and the report
read the gates back from the EvalConfig the Evaluator wrote, so they follow.
"""
import dataclasses

import tensorflow_model_analysis as tfma

from models import features, serving_contract
from pipeline.config import GateConfig, PipelineConfig

# The served `label` is 0 or 1, already decided at the model's own threshold;
# thresholded metrics on it read that decision at any cut between 0 and 1.
LABEL_CUT = 0.5

# Each model output -> the TFMA metrics read from it (class name -> JSON config).
# Ranking metrics and plots read `probability`; accuracy, precision, recall and
# the confusion matrix read `label`, so they hold at the threshold stored in each
# model (calibrated on validation data to a target recall): a baseline and a
# candidate with different thresholds are each judged at their own, and no
# threshold is compiled into the run.
METRICS: dict[str, dict[str, str]] = {
    serving_contract.PROBABILITY_OUTPUT: {
        "ExampleCount": "",
        "AUC": '{"num_thresholds": 1000}',
        "ConfusionMatrixPlot": "",
        "CalibrationPlot": "",
    },
    serving_contract.LABEL_OUTPUT: {
        "BinaryAccuracy": f'{{"threshold": {LABEL_CUT}}}',
        "Precision": f'{{"thresholds": {LABEL_CUT}}}',
        "Recall": f'{{"thresholds": {LABEL_CUT}}}',
        "ConfusionMatrixAtThresholds": f'{{"thresholds": [{LABEL_CUT}]}}',
    },
}

# Besides the overall slice, one slicing per feature: metrics per defect type and per brightness.
SLICE_FEATURES = (features.DEFECT_TYPE_KEY, features.BRIGHTNESS_KEY)

# Keeps a drop of exactly the allowed amount a pass despite float rounding of the difference.
_DROP_SLACK = 1e-10


@dataclasses.dataclass(frozen=True)
class Gate:
    """A floor for one metric, and the most it may fall below the latest blessed model's, on some slices.

    The overall slice by default: a slice of a few test images (a defect type,
    dark hides) cannot carry a blessing decision on its own.
    """

    metric: str
    """A TFMA metric class name in METRICS."""
    floor: float
    max_drop: float
    slicing: tfma.SlicingSpec = dataclasses.field(default_factory=tfma.SlicingSpec)

    def threshold(self) -> tfma.PerSliceMetricThreshold:
        return tfma.PerSliceMetricThreshold(
            slicing_specs=[self.slicing],
            threshold=tfma.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(lower_bound={"value": self.floor}),
                change_threshold=tfma.GenericChangeThreshold(
                    direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                    absolute={"value": -self.max_drop - _DROP_SLACK},
                ),
            ),
        )


def gates(bounds: GateConfig) -> list[Gate]:
    """ROC-AUC and accuracy on the overall slice: each above a floor, neither much below the baseline's."""
    return [
        Gate("AUC", bounds.min_auc, bounds.max_auc_drop),
        Gate("BinaryAccuracy", bounds.min_accuracy, bounds.max_accuracy_drop),
    ]


def _metrics_spec(output: str, metrics: dict[str, str], model_gates: list[Gate]) -> tfma.MetricsSpec:
    return tfma.MetricsSpec(
        output_names=[output],
        metrics=[
            tfma.MetricConfig(
                class_name=name,
                config=config,
                per_slice_thresholds=[gate.threshold() for gate in model_gates if gate.metric == name],
            )
            for name, config in metrics.items()
        ],
    )


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """Binary metrics of the defective class on the test split, overall and per slice feature, with the gates.

    The Evaluator calls `serving_default` on raw examples; `transform_features`
    supplies the transformed features some slices need (brightness).
    """
    model_gates = gates(config.gates)
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=serving_contract.SERVING_DEFAULT_SIGNATURE,
                label_key=features.LABEL_KEY,
                preprocessing_function_names=[serving_contract.TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), *(tfma.SlicingSpec(feature_keys=[key]) for key in SLICE_FEATURES)],
        metrics_specs=[_metrics_spec(output, metrics, model_gates) for output, metrics in METRICS.items()],
    )
