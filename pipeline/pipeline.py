"""The TFX pipeline: from TFRecords of leather photos to a pushed, blessed SavedModel.

Built only from a `PipelineConfig`, so the local runner and the Kubeflow runner
compile the same graph. Preprocessing and training are referenced by dotted
path (not module_file) so every runner uses the installed package.
"""
import dataclasses
from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode
from tfx.proto import range_config_pb2

from components.pusher import no_repush_pusher
from components.evaluator import Evaluator
from components.robustness import ColourVariants
from components.span_drift import SpanDrift
from ingest.spans import SPAN_SHARD_PATTERN
from models import features
from pipeline.config import PipelineConfig
from pipeline.data_checks import TRAIN_SPLIT, data_checks
from pipeline.evaluation.spec import eval_config
from pipeline.reference_pipeline import create_reference_components

PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
VALIDATION_SPLIT, TEST_SPLIT = "validation", "test"
SPAN_WINDOW_NODE = "span_window"


def example_gen_output_config(config: PipelineConfig) -> tfx.proto.Output:
    """Split by hashing the image's content hash: the same photo always lands in the same split."""
    names = (TRAIN_SPLIT, VALIDATION_SPLIT, TEST_SPLIT)
    return tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[
                tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in zip(names, config.split_buckets, strict=True)
            ],
            partition_feature_name=features.IMAGE_ID_KEY,
        )
    )


@dataclasses.dataclass(frozen=True)
class RunParameters:
    """Stand-ins for the values a run may change without recompiling; None takes the config's value.

    The Kubeflow runner passes RuntimeParameters here (a float, and JSON strings
    for the Trainer's custom_config and the Evaluator's EvalConfig); the local
    runner passes nothing, so both compile the same graph from the same config.
    """

    min_minority_share: Any = None
    trainer_custom_config: Any = None
    eval_config: Any = None


def _given_or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _span_window(example_gen: BaseNode, spans: int) -> BaseNode | None:
    """With more than one span to train on, a resolver over the newest `spans` Examples ExampleGen has written.

    It names ExampleGen as producer rather than taking its output channel, so it
    sees the spans of earlier runs, not only this one's; the explicit upstream
    edge makes it resolve after this run's ExampleGen. Only spans some run has
    ingested exist as Examples: import and run span by span.
    """
    if spans == 1:
        return None
    window = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=spans))},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples, producer_component_id=example_gen.id),
    ).with_id(SPAN_WINDOW_NODE)
    window.add_upstream_node(example_gen)
    return window


def create_components(config: PipelineConfig, run_parameters: RunParameters | None = None) -> list[BaseNode]:
    if config.task == "reference":
        return create_reference_components(config)
    parameters = run_parameters or RunParameters()
    # The pattern's {SPAN} makes ExampleGen read the newest span and stamp its number on the Examples.
    example_gen = tfx.components.ImportExampleGen(
        input_base=config.data_dir,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="images", pattern=SPAN_SHARD_PATTERN)]),
        output_config=example_gen_output_config(config),
    )
    checks = data_checks(
        example_gen, config.schema_path,
        _given_or(parameters.min_minority_share, config.gates.min_minority_share), config.gates.max_image_pixels,
    )
    data_gate = checks.data_gate
    span_drift = SpanDrift(
        examples=example_gen.outputs["examples"],
        schema=checks.schema_gen.outputs["schema"],
        data_dir=config.data_dir,
        stop_on_drift=int(config.gates.stop_on_drift),
    )
    span_drift.add_upstream_node(data_gate)
    window = _span_window(example_gen, config.spans)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"] if window is None else window.outputs["examples"],
        schema=checks.schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=config.transform_custom_config(),
    )
    transform.add_upstream_node(span_drift)
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=checks.schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[VALIDATION_SPLIT]),
        custom_config=_given_or(parameters.trainer_custom_config, config.trainer_custom_config()),
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    # The Evaluator scores every test photo once per colour variant; the eval config slices them apart.
    # After the data gate, which names an image that does not decode before anything reads it.
    colour_variants = ColourVariants(examples=example_gen.outputs["examples"], split=TEST_SPLIT)
    colour_variants.add_upstream_node(data_gate)
    evaluator = Evaluator(
        examples=colour_variants.outputs["variant_examples"],
        example_splits=[TEST_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=_given_or(parameters.eval_config, eval_config(config)),
    )
    pusher = no_repush_pusher(trainer.outputs["model"], evaluator.outputs["blessing"], config.push_destination)
    return [
        example_gen,
        *checks,
        span_drift,
        *([] if window is None else [window]),
        transform,
        trainer,
        colour_variants,
        model_resolver,
        evaluator,
        pusher,
    ]


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    run_parameters: RunParameters | None = None,
    pipeline_root: str | None = None,
) -> tfx.dsl.Pipeline:
    """The whole pipeline; runners add their own metadata connection and platform settings.

    `pipeline_root` replaces the workdir's for runners whose root is an object-store
    URI (a filesystem path join would fold its `//`).
    """
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root or config.pipeline_root,
        components=create_components(config, run_parameters),
        enable_cache=True,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )
