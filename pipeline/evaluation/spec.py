"""What the Evaluator computes, on which slices, and which metrics gate the blessing.

The Evaluator reads the ColourVariants output: every test photo once per colour
variant, named by its `variant` feature. The overall numbers, their gates and the
sliced tables are those of the original photos (`ORIGINALS`); the variant
slicing scores the same photos in every colour, and the robustness gate holds
its worst slice to a floor.

Adding a gate is one `Gate` in `gates()` (its bounds in `GateConfig`); adding a
sliced table is one feature in `SLICE_FEATURES`. The run summary and the report
read the gates back from the EvalConfig the Evaluator wrote, so they follow.
"""
import dataclasses

import tensorflow_model_analysis as tfma

from models import features, serving_contract
from models.colour_variants import ORIGINAL
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

# What every slicing but the variants' fixes: the photos as they were taken.
ORIGINALS: dict[str, str] = {features.VARIANT_KEY: ORIGINAL}

# Besides the overall slice, one slicing per feature: metrics per defect type and per brightness.
SLICE_FEATURES = (features.DEFECT_TYPE_KEY, features.BRIGHTNESS_KEY)


def on_originals(*feature_keys: str) -> tfma.SlicingSpec:
    """A slicing of the original photos only; without keys, the overall slice of the test split as taken."""
    return tfma.SlicingSpec(feature_keys=list(feature_keys), feature_values=ORIGINALS)


def variant_slicing() -> tfma.SlicingSpec:
    """One slice per colour variant, `original` included."""
    return tfma.SlicingSpec(feature_keys=[features.VARIANT_KEY])


# Keeps a drop of exactly the allowed amount a pass despite float rounding of the difference.
_DROP_SLACK = 1e-10


@dataclasses.dataclass(frozen=True)
class Gate:
    """A floor for one metric, and the most it may fall below the latest blessed model's, on some slices.

    The overall slice of the original photos by default: a slice of a few test
    images (a defect type, dark hides) cannot carry a blessing decision on its
    own. `max_drop` None: the floor alone decides.
    """

    metric: str
    """A TFMA metric class name in METRICS."""
    floor: float
    max_drop: float | None
    slicing: tfma.SlicingSpec = dataclasses.field(default_factory=on_originals)

    def threshold(self) -> tfma.PerSliceMetricThreshold:
        change = None
        if self.max_drop is not None:
            change = tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -self.max_drop - _DROP_SLACK}
            )
        return tfma.PerSliceMetricThreshold(
            slicing_specs=[self.slicing],
            threshold=tfma.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(lower_bound={"value": self.floor}),
                change_threshold=change,
            ),
        )


def gates(bounds: GateConfig) -> list[Gate]:
    """ROC-AUC and accuracy on the original photos: each above a floor, neither much below the baseline's; and
    ROC-AUC above a floor on every colour variant, so a model that ranks by the leather's colour is refused.

    The variant gate has no change threshold: thirteen change tests on small
    slices would refuse good models for noise, and what matters is that no
    colour falls below the floor.
    """
    overall = [
        Gate("AUC", bounds.min_auc, bounds.max_auc_drop),
        Gate("BinaryAccuracy", bounds.min_accuracy, bounds.max_accuracy_drop),
    ]
    if bounds.min_shifted_auc is None:
        return overall
    return [*overall, Gate("AUC", bounds.min_shifted_auc, None, variant_slicing())]


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
    """Binary metrics of the defective class on the test split: of the original photos overall and per slice
    feature, and of every colour variant; with the gates.

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
        slicing_specs=[on_originals(), *(on_originals(key) for key in SLICE_FEATURES), variant_slicing()],
        metrics_specs=[_metrics_spec(output, metrics, model_gates) for output, metrics in METRICS.items()],
    )
