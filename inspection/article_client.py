"""The article model's client: one Predict of the `anomaly_map` signature per photo, TF Serving's stubs only.

The photo travels once as its file's bytes; the model resizes it to the
article's scale, scores every patch against its memory bank and answers the
patch map with the sizes that lay it on the photo (models/article_export.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from inspection.client import client_channel
from models.article_export import (
    ANOMALY_MAP_OUTPUT,
    ANOMALY_MAP_SIGNATURE,
    ANOMALY_SCORE_OUTPUT,
    IMAGE_SIZE_OUTPUT,
    PROCESSING_SIZE_OUTPUT,
    REFERENCE_SIZE_OUTPUT,
    THRESHOLD_OUTPUT,
)
from models.article_map import photo_resolution_map
from models.serving_contract import DEFAULT_MODEL_NAME, IMAGE_BYTES_INPUT
from serving.client import PredictionError


@dataclasses.dataclass(frozen=True)
class ArticleMap:
    """The article model's answer for one photo."""

    anomaly_map: np.ndarray
    """[rows, columns] float32, a score per patch (8 processing pixels)."""
    score: float
    threshold: float
    image_size: tuple[int, int]
    processing_size: tuple[int, int]
    reference_size: tuple[int, int]
    model_version: int = 0

    @classmethod
    def of(cls, outputs: Mapping[str, np.ndarray], model_version: int = 0) -> ArticleMap:
        def pair(key: str) -> tuple[int, int]:
            first, second = (int(v) for v in np.asarray(outputs[key]).ravel())
            return first, second

        return cls(
            anomaly_map=np.asarray(outputs[ANOMALY_MAP_OUTPUT], np.float32),
            score=float(outputs[ANOMALY_SCORE_OUTPUT]),
            threshold=float(outputs[THRESHOLD_OUTPUT]),
            image_size=pair(IMAGE_SIZE_OUTPUT),
            processing_size=pair(PROCESSING_SIZE_OUTPUT),
            reference_size=pair(REFERENCE_SIZE_OUTPUT),
            model_version=model_version,
        )

    def heat(self) -> np.ndarray:
        """[height, width] the score of every photo pixel."""
        return photo_resolution_map(self.anomaly_map, self.image_size, self.processing_size)


def request_map(
    server: str, photo: bytes, *, model_name: str = DEFAULT_MODEL_NAME, timeout: float = 60.0
) -> ArticleMap:
    """The served article model's anomaly map of one photo (encoded JPEG or PNG bytes)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = ANOMALY_MAP_SIGNATURE
    request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(photo, dtype=tf.string))
    with client_channel(server) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise PredictionError(server, error.code(), error.details()) from None
    outputs = {key: tf.make_ndarray(value) for key, value in response.outputs.items()}
    missing = {ANOMALY_MAP_OUTPUT, ANOMALY_SCORE_OUTPUT, IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT} - set(outputs)
    if missing:
        raise PredictionError(server, grpc.StatusCode.INTERNAL, f"response lacks outputs {sorted(missing)}")
    return ArticleMap.of(outputs, response.model_spec.version.value)
