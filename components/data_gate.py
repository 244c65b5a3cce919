"""The data gate: stops a run before Transform when the training data is unfit.

ExampleValidator only records anomalies; nothing in stock TFX refuses to train
on data that breaks the curated schema or on a split whose minority class is
too rare to learn (the reference's test set held 9 defective images in 664).
This component turns both findings into a failed run with a message that says
what was found and which bound it broke. It also decodes every image, as the
importer does, because one undecodable record inside valid shards would
otherwise kill Transform with a traceback that never names it; and before the
pipeline starts, `check_shards` refuses input ImportExampleGen cannot read.
"""
import dataclasses
import os
from collections.abc import Iterable

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from ingest.image_check import image_format_problem
from ingest.output_folder import SHARD_PATTERN
from models import features

# The message names this many undecodable images; the count covers them all.
_NAMED_IMAGES = 10


class DataGateError(RuntimeError):
    """The training data failed the gate; the message is meant for the person running the pipeline."""


@dataclasses.dataclass(frozen=True)
class ClassBalance:
    examples: int
    defective: int

    @property
    def clean(self) -> int:
        return self.examples - self.defective

    @property
    def minority_share(self) -> float:
        return min(self.defective, self.clean) / self.examples if self.examples else 0.0

    @property
    def minority_name(self) -> str:
        return "defective" if self.defective <= self.clean else "clean"


def class_balance(stats: statistics_pb2.DatasetFeatureStatisticsList) -> ClassBalance:
    """Counts of each class from the label's statistics (the mean of a 0/1 label is the defective share)."""
    dataset = stats.datasets[0]
    for feature in dataset.features:
        if feature.path.step == [features.LABEL_KEY]:
            present = feature.num_stats.common_stats.num_non_missing
            return ClassBalance(examples=present, defective=round(feature.num_stats.mean * present))
    raise DataGateError(f"the statistics hold no numeric {features.LABEL_KEY!r} feature; is the label missing?")


def check_balance(balance: ClassBalance, min_minority_share: float, split: str) -> None:
    if balance.examples == 0:
        raise DataGateError(f"class-balance gate: the {split} split holds no labelled examples")
    if balance.minority_share < min_minority_share:
        raise DataGateError(
            f"class-balance gate: the {balance.minority_name} class is {balance.minority_share:.1%} of the "
            f"{balance.examples} {split} examples ({balance.defective} defective, {balance.clean} clean), "
            f"below the configured minimum of {min_minority_share:.1%}; add {balance.minority_name} images, "
            "subsample the majority class, or lower --min-minority-share"
        )


def anomaly_descriptions(anomalies: anomalies_pb2.Anomalies) -> list[str]:
    return sorted(
        f"{name}: {info.short_description or info.description}"
        for name, info in anomalies.anomaly_info.items()
    ) + [f"dataset: {reason.short_description}" for reason in anomalies.dataset_anomaly_info.reason]


def _feature_bytes(example: tf.train.Example, key: str) -> bytes | None:
    values = example.features.feature[key].bytes_list.value if key in example.features.feature else []
    return values[0] if values else None


def check_shards(data_dir: str) -> int:
    """Refuse, in one line, input shards that ImportExampleGen cannot read; return how many records they hold.

    ImportExampleGen would fail on them inside Beam with a traceback that names
    neither the file nor the record: framing and checksums (random bytes named
    like a shard), records that are not tf.Examples, and a missing image_id,
    which the split is hashed from.
    """
    shards = sorted(tf.io.gfile.glob(os.path.join(data_dir, SHARD_PATTERN)))
    if not shards:
        raise DataGateError(f"data gate: no {SHARD_PATTERN} shards in {data_dir}")
    records = 0
    for shard in shards:
        index = 0
        try:
            for index, record in enumerate(tf.data.TFRecordDataset(shard).as_numpy_iterator(), start=1):
                try:
                    example = tf.train.Example.FromString(record)
                except DecodeError:
                    raise DataGateError(f"data gate: record {index} of {shard} is not a tf.Example") from None
                if _feature_bytes(example, features.IMAGE_ID_KEY) is None:
                    raise DataGateError(f"data gate: record {index} of {shard} has no {features.IMAGE_ID_KEY!r}")
        except tf.errors.OpError as error:
            reason = str(error.message).strip().splitlines()[0][:200]
            raise DataGateError(
                f"data gate: {shard} is not a readable TFRecord file ({reason}, after {index} good records); "
                "write shards with `leather data import`"
            ) from None
        records += index
    return records


def undecodable_images(records: Iterable[bytes], max_pixels: int) -> tuple[int, list[tuple[str, str]]]:
    """How many serialized examples were read, and (image_id, reason) for each whose image cannot be used."""
    total, bad = 0, []
    for total, record in enumerate(records, start=1):
        example = tf.train.Example.FromString(record)
        image_id = (_feature_bytes(example, features.IMAGE_ID_KEY) or b"(no image_id)").decode("utf-8", "replace")
        problem = image_format_problem(_feature_bytes(example, features.IMAGE_KEY) or b"", max_pixels)
        if problem:
            bad.append((image_id, problem))
    return total, bad


def check_images(examples: types.Artifact, max_pixels: int) -> int:
    """Decode every split's images as Transform will; fail naming the image_ids that cannot be used."""
    total, bad = 0, []
    for split in artifact_utils.decode_split_names(examples.split_names):
        files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()
        count, found = undecodable_images(records, max_pixels)
        total += count
        bad += found
    if bad:
        by_reason: dict[str, list[str]] = {}
        for image_id, reason in sorted(bad)[:_NAMED_IMAGES]:
            by_reason.setdefault(reason, []).append(image_id)
        named = "; ".join(f"{reason}: image_id {', '.join(ids)}" for reason, ids in by_reason.items())
        more = f"; and {len(bad) - _NAMED_IMAGES} more" if len(bad) > _NAMED_IMAGES else ""
        raise DataGateError(
            f"data gate: {len(bad)} of {total} examples hold images that cannot be used: {named}{more}; "
            "re-import the photos with `leather data import`, which leaves such files out and lists them"
        )
    return total


def _load_split(artifact: types.Artifact, split: str, file_name: str, proto):
    message = proto()
    message.ParseFromString(io_utils.read_bytes_file(os.path.join(artifact_utils.get_split_uri([artifact], split), file_name)))
    return message


@component
def DataGate(  # noqa: N802 - TFX components are classes by convention
    examples: InputArtifact[standard_artifacts.Examples],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    min_minority_share: Parameter[float] = 0.1,
    split: Parameter[str] = "train",
    max_image_pixels: Parameter[int] = features.MAX_IMAGE_PIXELS,
) -> None:
    """Fail the run on schema anomalies or class imbalance in the training split, or unusable images in any."""
    found = anomaly_descriptions(_load_split(anomalies, split, "SchemaDiff.pb", anomalies_pb2.Anomalies))
    if found:
        raise DataGateError(f"data gate: the {split} split breaks the curated schema: " + "; ".join(found))
    stats = _load_split(statistics, split, "FeatureStats.pb", statistics_pb2.DatasetFeatureStatisticsList)
    balance = class_balance(stats)
    check_balance(balance, min_minority_share, split)
    decoded = check_images(examples, max_image_pixels)
    print(
        f"data gate: {split} split passes ({balance.examples} examples, "
        f"{balance.minority_name} share {balance.minority_share:.1%} >= {min_minority_share:.1%}); "
        f"all {decoded} images decode"
    )
