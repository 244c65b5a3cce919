"""Drift between spans: stops a run before Transform when the newest photos no longer look like the last ones.

A tannery that switches dyes sends photos a colour-keyed model has never seen
(the AlexNet that scores ROC-AUC 0.996 drops to 0.31 on the same photos with
another hue). The importer writes each photo's descriptors into its tf.Example;
this component summarises them for the newest span and the span before it with
TFDV and lets TFDV's drift comparators, set in the curated schema
(Jensen-Shannon on each descriptor, L-infinity on `defect_type`), judge the pair.
Both sides are read from the importer's shards the same way, so a difference is
the photos', not the method's. The newest span comes from ImportExampleGen's
Examples (their `span` custom property), the one before it from the data folder, so the same
component runs on both runners without a resolver KFP v2 cannot compile.
"""

import dataclasses
import json
import os

import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from components.data_gate import DataGateError
from ingest.output_folder import SHARD_PATTERN
from ingest.spans import SPAN_PREFIX, span_number
from models.divergence import DivergenceRow, bounded_features, divergence_rows

SPAN_PROPERTY = "span"
"""ExampleGen records the span it read as this custom property (the artifact's `span` property stays 0)."""
DRIFT_FILE = "drift.json"
"""In the output artifact: the spans compared and one row per bounded feature, for the run summary."""


class DriftError(DataGateError):
    """The newest span drifted beyond a bound of the schema; the message names the features."""


def previous_span(data_dir: str, span: int) -> int | None:
    """The highest span below `span` in the data folder (local or object store), or None for the first."""
    paths = tf.io.gfile.glob(os.path.join(data_dir, f"{SPAN_PREFIX}*"))
    numbers = (span_number(os.path.basename(path.rstrip("/")), path) for path in paths if tf.io.gfile.isdir(path))
    return max((number for number in numbers if number is not None and number < span), default=None)


def span_statistics(data_dir: str, span: int, names: list[str]):
    """TFDV statistics of the named features over every example of one span, computed in process."""
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, f"{SPAN_PREFIX}{span}", SHARD_PATTERN)))
    if not files:
        raise DataGateError(f"span drift: no {SHARD_PATTERN} shards in {data_dir}/{SPAN_PREFIX}{span}")
    columns: dict[str, list] = {name: [] for name in names}
    for record in tf.data.TFRecordDataset(files).as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        for name in names:
            columns[name].append(_first_value(feature[name]))
    missing = [name for name, column in columns.items() if all(value is None for value in column)]
    if missing:
        raise DataGateError(
            f"span drift: span {span} in {data_dir} holds no {', '.join(missing)}: it was imported before the importer "
            "wrote photo descriptors; import its photos again"
        )
    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(columns))


def _first_value(feature: tf.train.Feature) -> float | int | str | None:
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    if not values:
        return None
    return values[0].decode("utf-8", "replace") if isinstance(values[0], bytes) else values[0]


def compare_spans(data_dir: str, span: int, schema: schema_pb2.Schema) -> tuple[int | None, list[DivergenceRow]]:
    """The span before `span`, and each feature the schema bounds with a drift_comparator: divergence and verdict."""
    previous = previous_span(data_dir, span)
    if previous is None:
        return None, []
    names = list(bounded_features(schema, "drift_comparator"))
    newest, before = span_statistics(data_dir, span, names), span_statistics(data_dir, previous, names)
    anomalies = tfdv.validate_statistics(newest, schema, previous_statistics=before)
    return previous, divergence_rows(anomalies, schema, "drift_comparator", before, newest)


def drift_message(rows: list[DivergenceRow], span: int, previous: int) -> str:
    beyond = "; ".join(
        f"{row.feature} {row.measure} divergence {row.divergence:.3f} above the bound {row.bound:g}" for row in rows if row.beyond
    )
    return (
        f"span drift: span {span} differs from span {previous}: {beyond} (bounds in the schema's drift_comparator; "
        "if the change is expected, rerun with --on-drift warn)"
    )


@component
def SpanDrift(  # noqa: N802 - TFX components are classes by convention
    examples: InputArtifact[standard_artifacts.Examples],
    schema: InputArtifact[standard_artifacts.Schema],
    drift: OutputArtifact[standard_artifacts.ExampleAnomalies],
    data_dir: Parameter[str],
    stop_on_drift: Parameter[int] = 1,
) -> None:
    """Compare the newest span with the one before; fail on drift unless told to only record it."""
    span = examples.get_int_custom_property(SPAN_PROPERTY)
    previous, rows = compare_spans(data_dir, span, tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt")))
    stopped = bool(stop_on_drift) and any(row.beyond for row in rows)
    report = {"span": span, "previous_span": previous, "rows": [dataclasses.asdict(row) for row in rows], "stopped": stopped}
    io_utils.write_string_file(os.path.join(drift.uri, DRIFT_FILE), json.dumps(report, indent=2))
    if stopped:
        raise DriftError(drift_message(rows, span, previous))


def read_drift(artifact: types.Artifact) -> dict:
    return json.loads(io_utils.read_string_file(os.path.join(artifact.uri, DRIFT_FILE)))
