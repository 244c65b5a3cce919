"""The `patch_features` signature's client: one Predict per photo, TF Serving's stubs only.

The photo travels once as its file's bytes; the model answers the dense patch
features of the whole photo (models/patch_signature.py) with the sizes that lay
a patch map on the photo. The scoring against the rest of the hide happens here,
in the client (inspection/dense_inspection.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from inspection.client import client_channel
from models.article_export import IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT
from models.patch_signature import PATCH_FEATURES_OUTPUT, PATCH_FEATURES_SIGNATURE
from models.serving_contract import DEFAULT_MODEL_NAME, IMAGE_BYTES_INPUT
from serving.client import PredictionError


@dataclasses.dataclass(frozen=True)
class PatchFeatures:
    """The served model's dense features of one photo."""

    features: np.ndarray
    """[rows, columns, width] float32, a row of features per patch (patch_features.CELL processing pixels)."""
    image_size: tuple[int, int]
    """(width, height) of the photo sent."""
    processing_size: tuple[int, int]
    """(width, height) the photo was resized to before the features."""
    model_version: int = 0

    @classmethod
    def of(cls, outputs: Mapping[str, np.ndarray], model_version: int = 0) -> PatchFeatures:
        def pair(key: str) -> tuple[int, int]:
            first, second = (int(v) for v in np.asarray(outputs[key]).ravel())
            return first, second

        features = np.asarray(outputs[PATCH_FEATURES_OUTPUT], np.float32)
        if features.ndim != 3:
            raise ValueError(f"patch features must be [rows, columns, width], got shape {list(features.shape)}")
        return cls(features, pair(IMAGE_SIZE_OUTPUT), pair(PROCESSING_SIZE_OUTPUT), model_version)


def request_patch_features(
    server: str, photo: bytes, *, model_name: str = DEFAULT_MODEL_NAME, timeout: float = 60.0
) -> PatchFeatures:
    """The served model's dense patch features of one photo (encoded JPEG or PNG bytes)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = PATCH_FEATURES_SIGNATURE
    request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(photo, dtype=tf.string))
    with client_channel(server) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise PredictionError(server, error.code(), error.details()) from None
    outputs = {key: tf.make_ndarray(value) for key, value in response.outputs.items()}
    missing = {PATCH_FEATURES_OUTPUT, IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT} - set(outputs)
    if missing:
        raise PredictionError(server, grpc.StatusCode.INTERNAL, f"response lacks outputs {sorted(missing)}")
    return PatchFeatures.of(outputs, response.model_spec.version.value)
