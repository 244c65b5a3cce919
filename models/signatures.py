"""Serving signatures that embed the Transform graph, so clients send raw photos.

The same `tft_layer` that Transform exported runs inside every signature: the
served model decodes, edge-detects and blocks an image exactly as training did.
"""
import os

import tensorflow as tf
import tensorflow_transform as tft

from models import features
from models.features import (
    EXAMPLES_INPUT,
    IMAGE_BYTES_INPUT,
    LABEL_OUTPUT,
    PREDICT_IMAGE_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    TRANSFORM_SIGNATURE,
)

# Where `model.decision_threshold` lands in the SavedModel's checkpoint.
_THRESHOLD_CHECKPOINT_KEY = "decision_threshold/.ATTRIBUTES/VARIABLE_VALUE"


def _predictions(model: tf.keras.Model, transformed: dict[str, tf.Tensor], input_key: str) -> dict[str, tf.Tensor]:
    probability = tf.reshape(tf.cast(model(transformed[input_key], training=False), tf.float32), [-1])
    label = tf.cast(probability >= model.decision_threshold, tf.int64)
    return {PROBABILITY_OUTPUT: probability, LABEL_OUTPUT: label}


def make_serving_signatures(
    model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput, input_key: str, decision_threshold: float
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """`serving_default` (tf.Example), `predict_image` (raw bytes) and `transform_features` (for TFMA).

    The decision threshold is stored as a variable in the model, so a threshold
    calibrated after training travels with the SavedModel.
    """
    model.tft_layer = tf_transform_output.transform_features_layer()
    model.decision_threshold = tf.Variable(decision_threshold, dtype=tf.float32, trainable=False)
    image_spec = {features.IMAGE_KEY: tf_transform_output.raw_feature_spec()[features.IMAGE_KEY]}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(examples, image_spec)
        return _predictions(model, model.tft_layer(raw), input_key)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=IMAGE_BYTES_INPUT)])
    def predict_image(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return _predictions(model, model.tft_layer({features.IMAGE_KEY: image_bytes}), input_key)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=EXAMPLES_INPUT)])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(examples, tf_transform_output.raw_feature_spec())
        return model.tft_layer(raw)

    return {
        SERVING_DEFAULT_SIGNATURE: serve_examples.get_concrete_function(),
        PREDICT_IMAGE_SIGNATURE: predict_image.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }


def stored_decision_threshold(saved_model_dir: str) -> float:
    """The threshold a SavedModel's `label` output uses, read from its variables without loading the graph.

    Reports show each model's accuracy and confusion matrix at its own
    threshold; loading the full model with its Transform graph only to read
    one float would take seconds per model.
    """
    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, tf.saved_model.VARIABLES_DIRECTORY, "variables"))
    return float(reader.get_tensor(_THRESHOLD_CHECKPOINT_KEY))
