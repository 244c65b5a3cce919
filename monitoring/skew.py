"""Training/serving skew of the photo descriptors: do the photos stations send look like the training photos?

The served photos are described by `models.photo_descriptors` (the graph the
importer ran on the training photos), summarised by TFDV, and compared with
the training statistics by TFDV's own skew check (`validate_statistics` with
`serving_statistics`), using the schema's `skew_comparator` on each
descriptor: a Jensen-Shannon divergence between the two histograms, 0 for the
same distribution and 1 for disjoint ones, against the schema's threshold (a
descriptor constant on one side, the share of photos that differ:
models/divergence.py).
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from models import features
from models.divergence import ComparisonError, DivergenceRow, bounded_features, divergence_rows
from models.photo_descriptors import photo_descriptors

class SkewCheckError(ValueError):
    """The comparison cannot be made (a descriptor missing from the statistics or the schema); names it."""


@dataclasses.dataclass(frozen=True)
class DescribedPhotos:
    descriptors: pd.DataFrame
    """One row per photo that decoded, one column per descriptor."""
    undecodable: int


def describe_photos(photos: Iterable[bytes]) -> DescribedPhotos:
    """The descriptors of every photo, a batch at a time; a photo the graph refuses is counted and left out."""
    columns: dict[str, list[np.ndarray]] = {key: [] for key in features.PHOTO_DESCRIPTORS}
    undecodable = 0
    for batch in _batches(photos):
        try:
            described = [photo_descriptors(tf.constant(batch))]
        except tf.errors.InvalidArgumentError:  # find the photos the graph refuses; keep the others
            described = []
            for photo in batch:
                try:
                    described.append(photo_descriptors(tf.constant([photo])))
                except tf.errors.InvalidArgumentError:
                    undecodable += 1
        for values in described:
            for key in columns:
                columns[key].append(values[key].numpy())
    frame = pd.DataFrame({key: np.concatenate(parts) if parts else np.zeros(0) for key, parts in columns.items()})
    return DescribedPhotos(frame, undecodable)


def _batches(photos: Iterable[bytes]) -> Iterator[list[bytes]]:
    iterator = iter(photos)
    while batch := list(itertools.islice(iterator, features.DESCRIBE_BATCH)):
        yield batch


def serving_statistics(descriptors: pd.DataFrame) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of the descriptors, computed in process (no Beam pipeline for a few thousand rows)."""
    return tfdv.generate_statistics_from_dataframe(descriptors)


def _feature_names(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> set[str]:
    return {".".join(feature.path.step) or feature.name for feature in statistics.datasets[0].features}


def compare(
    training: statistics_pb2.DatasetFeatureStatisticsList,
    serving: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
) -> list[DivergenceRow]:
    """Each descriptor the schema bounds: its divergence between training and serving, and TFDV's verdict."""
    try:
        bounds = bounded_features(schema, "skew_comparator")
    except ComparisonError as error:
        raise SkewCheckError(str(error)) from None
    missing = sorted(set(bounds) - _feature_names(training))
    if missing:
        raise SkewCheckError(
            f"the training statistics hold no {', '.join(missing)}: the model was trained on photos imported "
            "before the importer wrote descriptors; import the data again and rerun the pipeline"
        )
    anomalies = tfdv.validate_statistics(training, schema, serving_statistics=serving)
    try:
        return divergence_rows(anomalies, schema, "skew_comparator", training, serving)
    except ComparisonError as error:
        raise SkewCheckError(str(error)) from None


def load_schema(path: str) -> schema_pb2.Schema:
    """The curated schema (text proto); SkewCheckError naming the file if it cannot be read."""
    try:
        return tfdv.load_schema_text(path)
    except (OSError, tf.errors.OpError, text_format.ParseError) as error:
        raise SkewCheckError(f"cannot read the schema {path}: {str(error).splitlines()[0]}") from None
