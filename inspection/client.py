"""The hide signature's client: one Predict per whole-hide photo, through TF Serving's standard stubs only.

The photo travels once, as its file's bytes; the model cuts and resizes the
tiles (models/hide_signature.py) and answers per tile the probability, label
and embedding with the tile grid, so this works against TF Serving as against
`leather serve`.
"""
from __future__ import annotations

import dataclasses

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from models.hide_signature import (
    HIDE_SIGNATURE,
    IMAGE_SIZE_OUTPUT,
    PATCH_SIZE_INPUT,
    STRIDE_INPUT,
    TILE_ORIGIN_OUTPUT,
)
from models.serving_contract import (
    DEFAULT_MODEL_NAME,
    EMBEDDING_OUTPUT,
    IMAGE_BYTES_INPUT,
    LABEL_OUTPUT,
    PROBABILITY_OUTPUT,
)
from serving.client import PredictionError

MAX_ANSWER_BYTES = 256 * 1024 * 1024
"""Largest answer the client accepts (gRPC's default is 4 MB; 20,000 tiles of embeddings are 10 MB)."""
_TOO_LARGE = "larger than max"


@dataclasses.dataclass(frozen=True)
class HideTiles:
    """The model's answer for one photo: per tile, in row order."""

    width: int
    height: int
    patch: int
    stride: int
    origins: np.ndarray
    """[tiles, 2] int: top-left corners (x, y) in photo pixels."""
    probability: np.ndarray
    defective: np.ndarray
    embedding: np.ndarray
    """[tiles, features] float32."""
    model_version: int


def client_channel(server: str) -> grpc.Channel:
    """A channel that takes answers up to MAX_ANSWER_BYTES."""
    return grpc.insecure_channel(server, options=[("grpc.max_receive_message_length", MAX_ANSWER_BYTES)])


def served_signatures(server: str, *, model_name: str = DEFAULT_MODEL_NAME, timeout: float = 30.0) -> set[str]:
    """The signature names of the served model, which say how to inspect with it."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = model_name
    with client_channel(server) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=timeout)
        except grpc.RpcError as error:
            raise PredictionError(server, error.code(), error.details()) from None
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    return set(signatures.signature_def)


def has_hide_signature(server: str, *, model_name: str = DEFAULT_MODEL_NAME, timeout: float = 30.0) -> bool:
    """Whether the served model answers the hide signature (models with an embedding do)."""
    return HIDE_SIGNATURE in served_signatures(server, model_name=model_name, timeout=timeout)


def predict_photo(
    server: str, photo: bytes, signature: str, outputs: set[str], *, model_name: str = DEFAULT_MODEL_NAME,
    timeout: float = 60.0,
) -> tuple[dict[str, np.ndarray], int]:
    """One Predict of `signature` on a photo's bytes: (its outputs as arrays, the answering version).

    PredictionError when the server refuses or the answer lacks any of `outputs`.
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(photo, dtype=tf.string))
    with client_channel(server) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise PredictionError(server, error.code(), error.details()) from None
    answer = {key: tf.make_ndarray(value) for key, value in response.outputs.items()}
    missing = outputs - set(answer)
    if missing:
        raise PredictionError(server, grpc.StatusCode.INTERNAL, f"response lacks outputs {sorted(missing)}")
    return answer, response.model_spec.version.value


def size_pair(value: np.ndarray) -> tuple[int, int]:
    """A [2] size output (width, height) as ints."""
    first, second = (int(v) for v in np.asarray(value).ravel())
    return first, second


def request_tiles(
    server: str,
    photo: bytes,
    patch: int,
    stride: int,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    timeout: float = 60.0,
) -> HideTiles:
    """Every tile of the photo (encoded JPEG or PNG bytes) scored and embedded by the served model."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = HIDE_SIGNATURE
    request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(photo, dtype=tf.string))
    request.inputs[PATCH_SIZE_INPUT].CopyFrom(tf.make_tensor_proto(patch, dtype=tf.int32))
    request.inputs[STRIDE_INPUT].CopyFrom(tf.make_tensor_proto(stride, dtype=tf.int32))
    with client_channel(server) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            details = error.details() or ""
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in details:
                details = (
                    f"{details}: the photo ({len(photo) / 2**20:.1f} MiB) is larger than the server accepts in one "
                    "message; raise `leather serve --max-message-mb` (TF Serving takes up to 2 GiB) or send a "
                    "smaller file"
                )
            raise PredictionError(server, error.code(), details) from None
    outputs = response.outputs
    missing = {PROBABILITY_OUTPUT, LABEL_OUTPUT, EMBEDDING_OUTPUT, TILE_ORIGIN_OUTPUT, IMAGE_SIZE_OUTPUT} - set(outputs)
    if missing:
        raise PredictionError(server, grpc.StatusCode.INTERNAL, f"response lacks outputs {sorted(missing)}")
    width, height = (int(v) for v in tf.make_ndarray(outputs[IMAGE_SIZE_OUTPUT]))
    return HideTiles(
        width=width,
        height=height,
        patch=patch,
        stride=stride,
        origins=tf.make_ndarray(outputs[TILE_ORIGIN_OUTPUT]),
        probability=tf.make_ndarray(outputs[PROBABILITY_OUTPUT]),
        defective=tf.make_ndarray(outputs[LABEL_OUTPUT]) == 1,
        embedding=tf.make_ndarray(outputs[EMBEDDING_OUTPUT]),
        model_version=response.model_spec.version.value,
    )
