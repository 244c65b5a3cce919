"""The photos in a request log, for `leather monitor`: what the stations actually sent.

Only completed files are read (`*.tfrecord`; a `.partial` is still being
written, or was left by a crash). A photo comes from a `predict_image` request
(`image_bytes`), from the `image` feature of the serialized tf.Examples of a
`serving_default` request (`examples`), or from the tf.Examples of a Classify
request. Other records (the whole-hide signature, whose photo is cut into
tiles the training photos are not comparable with) are counted, not read.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections import Counter
from collections.abc import Iterator

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from models import features
from models.serving_contract import EXAMPLES_INPUT, IMAGE_BYTES_INPUT
from serving.request_log_files import PARTIAL, log_files


class RequestLogError(ValueError):
    """The request log cannot be read; the message names the directory or file."""


@dataclasses.dataclass
class LogSummary:
    """What the log held, counted while its photos are read."""

    files: int = 0
    records: int = 0
    photos: int = 0
    skipped: Counter = dataclasses.field(default_factory=Counter)
    """Records that held no photo, by signature or log kind."""
    model_versions: Counter = dataclasses.field(default_factory=Counter)
    """Photos by the model version that answered them (log_metadata.model_spec.version)."""


def completed_log_files(directory: pathlib.Path) -> list[pathlib.Path]:
    """The completed log files in `directory`, oldest first; RequestLogError if there is none."""
    if not directory.is_dir():
        raise RequestLogError(f"request log directory {directory} does not exist or is not a directory")
    files = [path for _, path in log_files(directory) if not path.name.endswith(PARTIAL)]
    if not files:
        raise RequestLogError(f"{directory} holds no completed request log files (prediction_log-*.tfrecord)")
    return files


def _example_images(examples: list[tf.train.Example], context: tf.train.Example | None = None) -> list[bytes]:
    images = []
    for example in examples:
        source = example if features.IMAGE_KEY in example.features.feature else context
        if source is not None:
            images += source.features.feature[features.IMAGE_KEY].bytes_list.value
    return images


def _serialized_example_images(serialized: list[bytes]) -> list[bytes]:
    return _example_images([tf.train.Example.FromString(record) for record in serialized])


def _photos(entry: prediction_log_pb2.PredictionLog) -> tuple[str, list[bytes]]:
    """The record's kind (its signature, or its log type) and the photos it holds."""
    kind = entry.WhichOneof("log_type")
    if kind == "predict_log":
        request = entry.predict_log.request
        signature = request.model_spec.signature_name or "serving_default"
        if IMAGE_BYTES_INPUT in request.inputs:
            return signature, list(request.inputs[IMAGE_BYTES_INPUT].string_val)
        if EXAMPLES_INPUT in request.inputs:
            return signature, _serialized_example_images(list(request.inputs[EXAMPLES_INPUT].string_val))
        return signature, []
    if kind == "classify_log":
        given = entry.classify_log.request.input
        if given.HasField("example_list_with_context"):
            listed = given.example_list_with_context
            return "classify", _example_images(list(listed.examples), listed.context)
        return "classify", _example_images(list(given.example_list.examples))
    return kind or "empty", []


def logged_photos(files: list[pathlib.Path], summary: LogSummary) -> Iterator[bytes]:
    """Every photo in `files`, in log order, one record in memory at a time (a log may hold gigabytes);
    `summary` counts as they go."""
    for path in files:
        summary.files += 1
        records = iter(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
        while True:
            try:
                record = next(records, None)
                if record is None:
                    break
                entry = prediction_log_pb2.PredictionLog.FromString(record)
            except (tf.errors.OpError, DecodeError) as error:
                reason = getattr(error, "message", None) or str(error)
                message = f"{path} is not a readable PredictionLog file: {reason.splitlines()[0]}"
                raise RequestLogError(message) from None
            kind, photos = _photos(entry)
            summary.records += 1
            summary.photos += len(photos)
            if not photos:
                summary.skipped[kind] += 1
            summary.model_versions[entry.log_metadata.model_spec.version.value] += len(photos)
            yield from photos
