"""ColourVariants: colour-shifted copies of a split, for scoring a model on colours it never saw.

The Evaluator scores a model on the examples it is given; nothing in stock TFX
asks whether the model would still find the defect on leather dyed another
colour. This component writes, for every example of one split and every
variant in `models.colour_variants.VARIANTS`, a copy whose image is the shifted
photo and which names the variant in its `variant` feature, so that the
Evaluator can slice by it. Every copy, `original` included, is re-encoded as
PNG, so the variants differ from each other in colour only, not in JPEG loss.
A copy's photo descriptors (when the example has them) are its own photo's.
"""
import os
import re
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, json_utils

from models import features
from models.colour_variants import VARIANT_NAMES, shift_and_encode_graph, variants_named
from models.photo_descriptors import descriptor_feature_rows

EXAMPLES_KEY = "examples"
VARIANT_EXAMPLES_KEY = "variant_examples"
SPLIT_KEY = "split"
VARIANTS_KEY = "variants"
DEFAULT_SPLIT = "test"
_FILE_FORMAT = "tfrecords_gzip"


class ColourVariantsError(RuntimeError):
    """The input cannot be turned into colour variants; the message names the split or the example."""


class ColourVariantsSpec(ComponentSpec):
    """One split of `examples` in, the same split with every example once per variant out."""

    PARAMETERS = {
        SPLIT_KEY: ExecutionParameter(type=str),
        VARIANTS_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {VARIANT_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


def _single_bytes(example: tf.train.Example, key: str, image_id: str) -> bytes:
    values = example.features.feature[key].bytes_list.value
    if len(values) != 1:
        raise ColourVariantsError(f"colour variants: example {image_id} holds {len(values)} {key!r} values, not one")
    return values[0]


def _decode_failure(error: tf.errors.InvalidArgumentError) -> str:
    """TensorFlow's reason, without the node names and the trace of where the graph was built."""
    lines = [re.sub(r"\{\{[^}]*\}\}", "", line).strip() for line in str(error.message).splitlines()]
    skipped = ("[[", "File ", "Graph execution error", "Detected at node")
    reasons = [line for line in lines if line and not line.startswith(skipped)]
    return reasons[-1][:200] if reasons else "TensorFlow gives no reason"


class _WriteVariants(beam.DoFn):
    """Serialized tf.Example in, one serialized copy per variant out."""

    def __init__(self, names: tuple[str, ...]):
        self._names = names
        self._shift_and_encode = None

    def setup(self) -> None:
        self._shift_and_encode = shift_and_encode_graph(self._names)

    def process(self, record: bytes):
        example = tf.train.Example.FromString(record)
        image_id = _single_bytes(example, features.IMAGE_ID_KEY, "(no image_id)").decode("utf-8", "replace")
        if features.VARIANT_KEY in example.features.feature:
            raise ColourVariantsError(
                f"colour variants: example {image_id} already has a {features.VARIANT_KEY!r} feature"
            )
        try:
            encoded = self._shift_and_encode(_single_bytes(example, features.IMAGE_KEY, image_id)).numpy()
        except tf.errors.InvalidArgumentError as error:
            raise ColourVariantsError(
                f"colour variants: the image of example {image_id} does not decode: {_decode_failure(error)}"
            ) from None
        # The copies' descriptors describe their own photos, so statistics of the variants do not lie.
        described = features.PHOTO_BRIGHTNESS_KEY in example.features.feature
        descriptors = descriptor_feature_rows(encoded) if described else [{}] * len(self._names)
        for name, png, own in zip(self._names, encoded, descriptors, strict=True):
            copy = tf.train.Example()
            copy.CopyFrom(example)
            copy.features.feature[features.IMAGE_KEY].bytes_list.value[:] = [png]
            for key, feature in own.items():
                copy.features.feature[key].CopyFrom(feature)
            copy.features.feature[features.VARIANT_KEY].bytes_list.value.append(name.encode("utf-8"))
            yield copy.SerializeToString()


def _input_split_pattern(examples: types.Artifact, split: str) -> str:
    """The input split's file pattern, after checking that the split exists and holds tf.Examples."""
    splits = artifact_utils.decode_split_names(examples.split_names)
    if split not in splits:
        raise ColourVariantsError(
            f"colour variants: the examples at {examples.uri} have no split {split!r} (splits: {', '.join(splits)})"
        )
    payload = examples_utils.get_payload_format(examples)
    if payload != example_gen_pb2.FORMAT_TF_EXAMPLE:
        raise ColourVariantsError(
            f"colour variants: the examples at {examples.uri} hold "
            f"{example_gen_pb2.PayloadFormat.Name(payload)}, not tf.Examples"
        )
    pattern = io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))
    if not tf.io.gfile.glob(pattern):
        raise ColourVariantsError(f"colour variants: the {split} split at {pattern} holds no files")
    return pattern


class Executor(base_beam_executor.BaseBeamExecutor):
    """Writes every example of the split once per variant, as gzipped TFRecords like ExampleGen's."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        split = exec_properties[SPLIT_KEY]
        names = tuple(json_utils.loads(exec_properties[VARIANTS_KEY]))
        variants_named(names)
        pattern = _input_split_pattern(artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY]), split)
        output = artifact_utils.get_single_instance(output_dict[VARIANT_EXAMPLES_KEY])
        output.split_names = artifact_utils.encode_split_names([split])
        prefix = os.path.join(artifact_utils.get_split_uri([output], split), write_split.DEFAULT_TF_RECORD_FILE_NAME)
        logging.info("Writing %d colour variants of the %s split to %s.", len(names), split, prefix)
        with self._make_beam_pipeline() as pipeline:
            _ = (
                pipeline
                | "Read" >> beam.io.ReadFromTFRecord(pattern)
                | "Spread" >> beam.Reshuffle()
                | "Variants" >> beam.ParDo(_WriteVariants(names))
                | "Write" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".gz")
            )
        examples_utils.set_payload_format(output, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(output, _FILE_FORMAT)


class ColourVariants(base_beam_component.BaseBeamComponent):
    """Colour-shifted copies of one split of `examples`, each with a `variant` feature naming its shift.

    The variant names are an execution property (all of them by default), so a
    change to the table in `models.colour_variants` also changes the cache key.
    """

    SPEC_CLASS = ColourVariantsSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        split: str = DEFAULT_SPLIT,
        variants: tuple[str, ...] = VARIANT_NAMES,
    ):
        variants_named(variants)
        spec = ColourVariantsSpec(
            examples=examples,
            split=split,
            variants=json_utils.dumps(list(variants)),
            variant_examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
