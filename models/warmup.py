"""The warmup requests written into every exported SavedModel, in TF Serving's own format.

TF Serving (with `--enable_model_warmup`, its default) and `leather serve` replay
`assets.extra/tf_serving_warmup_requests` when they load a version, before it
takes traffic: TensorFlow builds and optimises each signature's graph on its
first call, so without warmup the first station after a swap pays for that. The
file is a TFRecord of `PredictionLog` protos (at most 1,000), one per signature
and batch size that clients send, and one whole photo for the hide signature of
the models that have it.
"""
import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, model_pb2, predict_pb2, prediction_log_pb2

from models.features import IMAGE_KEY
from models.hide_signature import HIDE_SIGNATURE, PATCH_SIZE_INPUT, STRIDE_INPUT
from models.serving_contract import (
    CLASSIFY_SIGNATURE,
    DEFAULT_MODEL_NAME,
    EXAMPLES_INPUT,
    IMAGE_BYTES_INPUT,
    PREDICT_IMAGE_SIGNATURE,
    SERVING_DEFAULT_SIGNATURE,
    WARMUP_REQUESTS_FILE,
)

WARMUP_BATCH_SIZES = (1, 8, 16, 32)
"""One photo per station; a server-side batch of eight stations; `leather classify`'s 16 and `leather
inspect`'s 32 photos per request (also production's max_batch_size)."""
WARMUP_PHOTO_SIZE = 64
"""Pixels a side of the warmup photo: decoding is the only step that sees its size (every model resizes first)."""
WARMUP_TILE = WARMUP_PHOTO_SIZE // 2
"""Tile side of the hide signature's warmup request, at half its stride: 3x3 tiles of the warmup photo, each
resized to the model's resolution as a hide's are, so every step of that graph runs."""
_SEED = 20190601


def warmup_photo() -> bytes:
    """A small, fixed, leather-like JPEG: a gray-brown gradient with grain, so every decode path runs."""
    rows, cols = np.mgrid[0:WARMUP_PHOTO_SIZE, 0:WARMUP_PHOTO_SIZE]
    grain = np.random.default_rng(_SEED).normal(0.0, 12.0, (WARMUP_PHOTO_SIZE, WARMUP_PHOTO_SIZE, 1))
    base = 90.0 + 40.0 * (rows + cols)[..., None] / (2 * WARMUP_PHOTO_SIZE) + grain
    pixels = np.clip(base * np.array([1.0, 0.8, 0.6]), 0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


def _example(photo: bytes) -> tf.train.Example:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[photo]))
    return tf.train.Example(features=tf.train.Features(feature={IMAGE_KEY: feature}))


def _hide_request(model_name: str, photo: bytes) -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=HIDE_SIGNATURE))
    request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(photo, dtype=tf.string))
    request.inputs[PATCH_SIZE_INPUT].CopyFrom(tf.make_tensor_proto(WARMUP_TILE, dtype=tf.int32))
    request.inputs[STRIDE_INPUT].CopyFrom(tf.make_tensor_proto(WARMUP_TILE // 2, dtype=tf.int32))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def warmup_requests(
    model_name: str = DEFAULT_MODEL_NAME, hide_signature: bool = False
) -> list[prediction_log_pb2.PredictionLog]:
    """Predict on `predict_image` and `serving_default`, and Classify, at every WARMUP_BATCH_SIZES size;
    with `hide_signature`, one whole photo for `inspect_hide` too."""
    photo = warmup_photo()
    logs = [_hide_request(model_name, photo)] if hide_signature else []
    for size in WARMUP_BATCH_SIZES:
        for signature, alias, element in (
            (PREDICT_IMAGE_SIGNATURE, IMAGE_BYTES_INPUT, photo),
            (SERVING_DEFAULT_SIGNATURE, EXAMPLES_INPUT, _example(photo).SerializeToString()),
        ):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            request.inputs[alias].CopyFrom(tf.make_tensor_proto([element] * size, dtype=tf.string))
            logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
        classify = classification_pb2.ClassificationRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=CLASSIFY_SIGNATURE)
        )
        classify.input.example_list.examples.extend([_example(photo)] * size)
        logs.append(prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=classify)))
    return logs


def write_warmup_requests(
    saved_model_dir: str, model_name: str = DEFAULT_MODEL_NAME, hide_signature: bool = False
) -> str:
    """Writes the warmup requests into the SavedModel at `saved_model_dir`; returns the file's path."""
    path = os.path.join(saved_model_dir, WARMUP_REQUESTS_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in warmup_requests(model_name, hide_signature):
            writer.write(log.SerializeToString())
    return path
