"""The toy SavedModel and the request helpers the serving tests share (their fixtures: `serving_fixtures`).

The toy model has the real model's signatures (`serving_default` on tf.Examples,
`predict_image` on raw bytes, `classify` for TF Serving's Classify, plus
`transform_features`) and its warmup requests, and answers
probability = 0.5 * mean intensity / 255 + 0.1 * version, so every version gives
a different, known answer. Servers listen on 127.0.0.1 with an OS-chosen port
and are always stopped.
"""
import pathlib
import socket
import time
from collections.abc import Callable

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.server import ServingServer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL_NAME = "leather"
POLL_SECONDS = 0.1
MAX_MESSAGE_BYTES = 64 * 1024
STRING_BATCH = tf.TensorSpec([None], tf.string)


class ToyModel(tf.Module):
    """Mean-intensity 'defect detector' with a per-version offset and a stored decision threshold."""

    def __init__(self, version: int) -> None:
        super().__init__()
        self.offset = tf.Variable(0.1 * version, dtype=tf.float32)
        self.threshold = tf.Variable(0.5, dtype=tf.float32)

    def _intensities(self, images: tf.Tensor) -> tf.Tensor:
        def mean_intensity(image: tf.Tensor) -> tf.Tensor:
            pixels = tf.io.decode_image(image, channels=1, expand_animations=False)
            return tf.reduce_mean(tf.cast(pixels, tf.float32)) / 255.0

        return tf.map_fn(mean_intensity, images, fn_output_signature=tf.float32)

    def _verdict(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = 0.5 * self._intensities(images) + self.offset
        return {"probability": probability, "label": tf.cast(probability >= self.threshold, tf.int64)}

    @staticmethod
    def _images(examples: tf.Tensor) -> tf.Tensor:
        return tf.io.parse_example(examples, {"image": tf.io.FixedLenFeature([], tf.string)})["image"]

    @tf.function(input_signature=[STRING_BATCH])
    def serving_default(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._verdict(self._images(examples))

    @tf.function(input_signature=[STRING_BATCH])
    def predict_image(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._verdict(image_bytes)

    @tf.function(input_signature=[STRING_BATCH])
    def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = self._verdict(self._images(inputs))["probability"]
        classes = tf.tile(tf.constant([["0", "1"]]), [tf.shape(probability)[0], 1])
        return {"classes": classes, "scores": tf.stack([1.0 - probability, probability], axis=1)}

    @tf.function(input_signature=[STRING_BATCH])
    def transform_features(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"mean_intensity": self._intensities(self._images(examples))}


def tf_example(image: bytes) -> bytes:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
    return tf.train.Example(features=tf.train.Features(feature={"image": feature})).SerializeToString()


def signature_payload(signature: str, images: list[bytes]) -> dict[str, list[bytes]]:
    """The inputs a signature takes for these encoded images."""
    if signature == "predict_image":
        return {"image_bytes": images}
    return {"inputs" if signature == "classify" else "examples": [tf_example(image) for image in images]}


def predict_request(
    images: list[bytes], signature: str = "predict_image", *, version: int | None = None, name: str = MODEL_NAME
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for alias, values in signature_payload(signature, images).items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    return request


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_for_versions(server: ServingServer, versions: tuple[int, ...], timeout: float = 15.0) -> None:
    wait_for(lambda: server.store.loaded_versions() == versions, f"loaded versions {versions}", timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def predictions_stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def served_answer(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
