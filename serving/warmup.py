"""A version's warmup requests, replayed before it takes traffic, as TF Serving does with `--enable_model_warmup`.

The Trainer writes `assets.extra/tf_serving_warmup_requests` (`models/warmup.py`):
a TFRecord of `PredictionLog`s. Replaying them runs every signature clients use
once at each batch size, so TensorFlow builds and optimises the graphs before
the version is published instead of during the first client's request. As in
TF Serving, a version without the file loads without warmup, the file holds at
most 1,000 records, and a record that cannot be read or answered fails the load
(the previous version keeps serving).
"""
from __future__ import annotations

import pathlib
from collections.abc import Callable

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from models.serving_contract import WARMUP_REQUESTS_FILE
from serving.model_store import LoadedModel

MAX_WARMUP_RECORDS = 1000
"""TF Serving's WarmupConsts::kMaxNumRecords."""

# Answers one warmup record on the version being loaded; raises when the model cannot.
Answer = Callable[[LoadedModel, prediction_log_pb2.PredictionLog], None]


class WarmupError(Exception):
    """The warmup file cannot be read, holds too many records, or a record failed; the version does not load."""


def warmup_records(
    version_dir: pathlib.Path, named: pathlib.Path | None = None
) -> list[prediction_log_pb2.PredictionLog]:
    """The version's warmup records in file order; none when it has no warmup file.

    Errors name the file under `named` (the version's own folder when
    `version_dir` is its private copy), the one its owner knows.
    """
    source = version_dir / WARMUP_REQUESTS_FILE
    path = (named or version_dir) / WARMUP_REQUESTS_FILE
    if not source.is_file():
        return []
    records = []
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(str(source)).as_numpy_iterator()):
            if index == MAX_WARMUP_RECORDS:
                raise WarmupError(f"{path} holds more than {MAX_WARMUP_RECORDS} records, TF Serving's maximum")
            try:
                records.append(prediction_log_pb2.PredictionLog.FromString(record))
            except DecodeError:
                raise WarmupError(f"{path}: record {index} is not a PredictionLog") from None
    except tf.errors.OpError as error:
        raise WarmupError(f"{path} is not a TFRecord file: {error.message.splitlines()[0]}") from None
    return records


def replay(model: LoadedModel, answer: Answer) -> int:
    """Answers each warmup record of `model` and returns how many there were."""
    records = warmup_records(model.files, model.path)
    for index, record in enumerate(records):
        try:
            answer(model, record)
        except Exception as error:  # whatever fails, the version must not go live
            raise WarmupError(f"warmup record {index} of {model.path / WARMUP_REQUESTS_FILE} failed: {error}") from error
    return len(records)
