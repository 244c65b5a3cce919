"""The Predict client behind `leather classify`.

It speaks only TF Serving's standard PredictionService stub and protos, so the
same code classifies against the official TF Serving container in production and
against `leather serve` locally.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from models.features import DEFECTIVE, IMAGE_KEY
from models.serving_contract import (
    DEFAULT_MODEL_NAME,
    EXAMPLES_INPUT,
    IMAGE_BYTES_INPUT,
    LABEL_OUTPUT,
    PREDICT_IMAGE_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
)


def _as_example(image: bytes) -> bytes:
    """A serialized tf.Example carrying the encoded image, as `serving_default` takes it."""
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
    return tf.train.Example(features=tf.train.Features(feature={IMAGE_KEY: feature})).SerializeToString()


# The model's image signatures: the input each takes and how an encoded image becomes one element of it.
IMAGE_SIGNATURES: Mapping[str, tuple[str, Callable[[bytes], bytes]]] = {
    PREDICT_IMAGE_SIGNATURE: (IMAGE_BYTES_INPUT, lambda image: image),
    SERVING_DEFAULT_SIGNATURE: (EXAMPLES_INPUT, _as_example),
}


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The model's verdict on one image, and which model version gave it."""

    probability: float
    defective: bool
    model_version: int

    @property
    def label(self) -> str:
        return "defective" if self.defective else "clean"


_NOT_REACHED = ("failed to connect", "connection refused", "dns resolution failed")
"""What gRPC's details say when no server answered; a running server's UNAVAILABLE (a full queue) says otherwise."""


def not_reached(code: grpc.StatusCode, details: str) -> bool:
    """True when no server answered at the address, so the user should start one or fix --server."""
    return code == grpc.StatusCode.UNAVAILABLE and any(words in details.lower() for words in _NOT_REACHED)


class PredictionError(Exception):
    """The server refused or could not be reached; carries the gRPC status code and, if known, the image at fault."""

    def __init__(self, server: str, code: grpc.StatusCode, details: str, index: int | None = None) -> None:
        hint = f"; is leather serve running on {server}?" if not_reached(code, details) else ""
        super().__init__(f"TF Serving at {server} answered {code.name}: {details}{hint}")
        self.server = server
        self.code = code
        self.details = details
        self.index = index


def predict_images(
    server: str,
    images: Sequence[bytes],
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    signature: str = PREDICT_IMAGE_SIGNATURE,
    batch_size: int = 16,
    timeout: float = 30.0,
) -> list[Prediction]:
    """Predicts each encoded image (JPEG/PNG bytes), `batch_size` images per Predict call, in order.

    A batch refused as INVALID_ARGUMENT is sent again one image at a time to find
    the first image refused on its own, so the error can name it (TF Serving's
    messages do not say which element of a batch was bad).
    """
    if signature not in IMAGE_SIGNATURES:
        raise ValueError(f"unknown image signature {signature!r}; known: {sorted(IMAGE_SIGNATURES)}")
    input_name, encode = IMAGE_SIGNATURES[signature]
    predictions: list[Prediction] = []
    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def predict(batch: Sequence[bytes]) -> predict_pb2.PredictResponse:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto([encode(image) for image in batch], dtype=tf.string))
            try:
                return stub.Predict(request, timeout=timeout)
            except grpc.RpcError as error:
                raise PredictionError(server, error.code(), error.details()) from None

        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            try:
                response = predict(batch)
            except PredictionError as error:
                if error.code != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                raise _first_refused(predict, batch, start, error) from None
            predictions.extend(_predictions(server, response, len(batch)))
    return predictions


def _first_refused(
    predict: Callable[[Sequence[bytes]], predict_pb2.PredictResponse],
    batch: Sequence[bytes],
    start: int,
    batch_error: PredictionError,
) -> PredictionError:
    """The error of the first image of `batch` refused on its own, or the batch's error if each one passes."""
    if len(batch) == 1:
        return PredictionError(batch_error.server, batch_error.code, batch_error.details, start)
    for offset, image in enumerate(batch):
        try:
            predict([image])
        except PredictionError as error:
            return PredictionError(error.server, error.code, error.details, start + offset)
    return batch_error


def _predictions(server: str, response: predict_pb2.PredictResponse, expected: int) -> list[Prediction]:
    missing = {PROBABILITY_OUTPUT, LABEL_OUTPUT} - set(response.outputs)
    if missing:
        raise PredictionError(server, grpc.StatusCode.INTERNAL, f"response lacks outputs {sorted(missing)}")
    probabilities = tf.make_ndarray(response.outputs[PROBABILITY_OUTPUT])
    labels = tf.make_ndarray(response.outputs[LABEL_OUTPUT])
    if len(probabilities) != expected or len(labels) != expected:
        raise PredictionError(
            server, grpc.StatusCode.INTERNAL, f"expected {expected} predictions, got {len(probabilities)}"
        )
    version = response.model_spec.version.value
    return [
        Prediction(probability=float(probability), defective=int(label) == DEFECTIVE, model_version=version)
        for probability, label in zip(probabilities, labels)
    ]
