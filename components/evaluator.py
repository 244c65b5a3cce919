"""An Evaluator that does not compare a model with itself.

A rerun on unchanged data takes the Trainer from TFX's cache, and the resolver
then returns that very model (the same artifact) as the blessed baseline. The
stock Evaluator would score it twice over every colour variant only to find
every change to be zero: a third of the rerun's time. This one evaluates it
once, as a first run's model is (the floors decide; TFX drops the change
thresholds when there is no baseline), and records on the blessing that the
candidate was the baseline, so the run's summary can say so.
"""
from typing import Any

from absl import logging
from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

CANDIDATE_IS_BASELINE = "candidate_is_baseline"
"""Custom property of a ModelBlessing: 1 when the baseline the resolver gave was the candidate itself."""


def is_its_own_baseline(input_dict: dict[str, list[types.Artifact]]) -> bool:
    """True when the baseline model is the very artifact being evaluated."""
    baseline = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    candidate = input_dict[standard_component_specs.MODEL_KEY]
    return bool(baseline) and baseline[0].id == candidate[0].id


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator, except that a candidate that is its own baseline is evaluated once, without it."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        itself = is_its_own_baseline(input_dict)
        if itself:
            logging.info("The candidate model is the blessed baseline; evaluating it once, without a comparison.")
            input_dict = {key: value for key, value in input_dict.items()
                          if key != standard_component_specs.BASELINE_MODEL_KEY}
        super().Do(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        blessing.set_int_custom_property(CANDIDATE_IS_BASELINE, int(itself))


class Evaluator(tfx.components.Evaluator):
    """The stock component with the executor above; its node is still called Evaluator."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
