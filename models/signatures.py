"""Serving signatures that embed the Transform graph, so clients send raw photos.

The same `tft_layer` that Transform exported runs inside every signature: the
served model decodes, edge-detects and blocks an image exactly as training did.
"""
import os

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils

from models import features
from models.classify_scores import classify_scores
from models.hide_signature import HIDE_SIGNATURE, make_hide_signature
from models.keras_autograph import leave_keras_unconverted
from models.patch_signature import PATCH_FEATURES_SIGNATURE, DensePatchFeatures, make_patch_features_signature
from models.serving_contract import (
    CLASS_LABELS,
    CLASSES_OUTPUT,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_SIGNATURE,
    EMBEDDING_OUTPUT,
    EXAMPLES_INPUT,
    IMAGE_BYTES_INPUT,
    LABEL_OUTPUT,
    PREDICT_IMAGE_SIGNATURE,
    PROBABILITY_OUTPUT,
    SAVED_MODEL_FILE,
    SCORES_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    TRANSFORM_SIGNATURE,
)

leave_keras_unconverted()

# Where `model.decision_threshold` lands in the SavedModel's checkpoint.
_THRESHOLD_CHECKPOINT_KEY = "decision_threshold/.ATTRIBUTES/VARIABLE_VALUE"


def _predictions(model: tf.keras.Model, transformed: dict[str, tf.Tensor], input_key: str) -> dict[str, tf.Tensor]:
    outputs = tf.nest.flatten(model.score(transformed[input_key]))
    probability = tf.reshape(tf.cast(outputs[0], tf.float32), [-1])
    label = tf.cast(probability >= model.decision_threshold, tf.int64)
    predictions = {PROBABILITY_OUTPUT: probability, LABEL_OUTPUT: label}
    if len(outputs) > 1:
        predictions[EMBEDDING_OUTPUT] = tf.cast(outputs[1], tf.float32)
    return predictions


def attach_scorer(model: tf.keras.Model, embedding_layer: str | None, inputs: tf.TensorSpec) -> None:
    """`model.scorer` (probability, and the embedding layer's output when named) and `model.score`, its traced graph.

    Every signature calls `score` instead of tracing the network again: a
    backbone's trace costs seconds, and five signatures would pay it five times.
    Without autograph: a functional network has no control flow of its own to
    convert, and converting each of Lite0's layers took most of the Trainer's time.
    """
    extra = [model.get_layer(embedding_layer).output] if embedding_layer else []
    model.scorer = tf.keras.Model(model.inputs, [model.output, *extra])
    model.score = tf.function(
        lambda batch: model.scorer(batch, training=False), input_signature=[inputs], autograph=False
    )


def make_serving_signatures(
    model: tf.keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    input_key: str,
    decision_threshold: float,
    embedding_layer: str | None = None,
    dense_patch_features: bool = False,
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """`serving_default` (tf.Example), `predict_image` (raw bytes), `classify` and `transform_features` (for TFMA).

    The decision threshold is stored as a variable in the model, so a threshold
    calibrated after training travels with the SavedModel. With an
    `embedding_layer`, the image signatures also return that layer's output,
    computed in the same pass as the probability. `classify` answers TF
    Serving's Classify API once `mark_classification_signature` has run on the
    saved model; its scores are the probability rescaled so that the stored
    threshold scores 0.5 (`models/classify_scores.py`), so the best class is
    `label`. With an embedding layer, `inspect_hide` too (models/hide_signature.py); with
    `dense_patch_features` (the registry entry's), `patch_features` (models/patch_signature.py), whose frozen
    extractor the model carries as `model.dense_patch_features`.
    """
    model.tft_layer = tf_transform_output.transform_features_layer()
    model.decision_threshold = tf.Variable(decision_threshold, dtype=tf.float32, trainable=False)
    input_spec = tf_transform_output.transformed_feature_spec()[input_key]
    attach_scorer(model, embedding_layer, tf.TensorSpec([None, *input_spec.shape], input_spec.dtype))
    image_spec = {features.IMAGE_KEY: tf_transform_output.raw_feature_spec()[features.IMAGE_KEY]}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(examples, image_spec)
        return _predictions(model, model.tft_layer(raw), input_key)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=IMAGE_BYTES_INPUT)])
    def predict_image(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return _predictions(model, model.tft_layer({features.IMAGE_KEY: image_bytes}), input_key)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=CLASSIFY_INPUTS)])
    def classify(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = _predictions(model, model.tft_layer(tf.io.parse_example(inputs, image_spec)), input_key)[
            PROBABILITY_OUTPUT
        ]
        classes = tf.tile(tf.constant([CLASS_LABELS]), [tf.shape(probability)[0], 1])
        return {CLASSES_OUTPUT: classes, SCORES_OUTPUT: classify_scores(probability, model.decision_threshold)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name=EXAMPLES_INPUT)])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(examples, tf_transform_output.raw_feature_spec())
        return model.tft_layer(raw)

    signatures = {
        SERVING_DEFAULT_SIGNATURE: serve_examples.get_concrete_function(),
        PREDICT_IMAGE_SIGNATURE: predict_image.get_concrete_function(),
        CLASSIFY_SIGNATURE: classify.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }
    if embedding_layer:  # whole-hide inspection compares tiles by their embeddings
        shape = tf_transform_output.transformed_feature_spec()[input_key].shape
        signatures[HIDE_SIGNATURE] = make_hide_signature(model, input_key, shape)
    if dense_patch_features:  # self-referenced scoring patch by patch (models/article.py)
        model.dense_patch_features = DensePatchFeatures()
        signatures[PATCH_FEATURES_SIGNATURE] = make_patch_features_signature(model.dense_patch_features)
    return signatures


def mark_classification_signature(saved_model_dir: str) -> None:
    """Gives the saved `classify` signature TF Serving's classify method name, so its Classify API accepts it.

    `tf.saved_model.save` marks every signature as a predict signature and has no
    option for another method, so the name is set in `saved_model.pb` after
    saving (written to a temporary file, then renamed over it) and the
    SavedModel's fingerprint is written again to match.
    """
    path = os.path.join(saved_model_dir, SAVED_MODEL_FILE)
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as source:
        saved_model.ParseFromString(source.read())
    saved_model.meta_graphs[0].signature_def[CLASSIFY_SIGNATURE].method_name = CLASSIFY_METHOD_NAME
    with tf.io.gfile.GFile(path + ".tmp", "wb") as target:
        target.write(saved_model.SerializeToString(deterministic=True))
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    fingerprinting_utils.write_fingerprint(saved_model_dir)


def stored_decision_threshold(saved_model_dir: str) -> float:
    """The threshold a SavedModel's `label` output uses, read from its variables without loading the graph.

    Reports show each model's accuracy and confusion matrix at its own
    threshold; loading the full model with its Transform graph only to read
    one float would take seconds per model.
    """
    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, tf.saved_model.VARIABLES_DIRECTORY, "variables"))
    return float(reader.get_tensor(_THRESHOLD_CHECKPOINT_KEY))
