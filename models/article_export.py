"""The article model as a SavedModel that TF Serving loads: the bank inside, the backbone's graph around it.

Signatures, all on encoded JPEG or PNG bytes so a station sends its photo file:
* `anomaly_map` (one photo): the anomaly score of every patch of the photo at
  the article's scale (one per 8 processing pixels), the photo's score (its
  highest patch) and label, and the sizes a client needs to lay the map on the
  photo. A whole hide in one request: the nearest-bank distances run a chunk of
  patches at a time (models/bank_distance.py), so memory stays bounded.
* `predict_image` (a batch of photos) and `serving_default` (serialized
  tf.Examples, as the classifiers take): per photo the anomaly score, the label
  and a `probability` = score / (score + threshold), which is 0.5 at the
  decision threshold, so the project's clients and gates read it as they read a
  classifier's.
The bank, threshold and the references' photo size are variables (saved once in
the checkpoint rather than copied into each signature's graph); every op is a
standard TensorFlow kernel.
"""
from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from models import features, patch_features
from models.article import FittedArticle
from models.bank_distance import nearest_distances
from models.serving_contract import (
    EXAMPLES_INPUT,
    IMAGE_BYTES_INPUT,
    LABEL_OUTPUT,
    PREDICT_IMAGE_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
)

ANOMALY_MAP_SIGNATURE = "anomaly_map"
ANOMALY_MAP_OUTPUT = "anomaly_map"
"""[rows, columns] float32: each patch's distance to its nearest clean patch of the article."""
ANOMALY_SCORE_OUTPUT = "anomaly_score"
THRESHOLD_OUTPUT = "decision_threshold"
IMAGE_SIZE_OUTPUT = "image_size"
"""[2] int32 (width, height) of the photo sent."""
PROCESSING_SIZE_OUTPUT = "processing_size"
"""[2] int32 (width, height) the photo was resized to; a map cell is patch_features.CELL of these pixels."""
REFERENCE_DPI_OUTPUT = "reference_dpi"
"""float32: the resolution the clean photos' files stated, 0 when none did; a client refuses a photo of another."""
REFERENCE_SIZE_OUTPUT = "reference_size"
"""[2] int32 (width, height) of the article's clean photos."""
ARTICLE_FILE = "assets.extra/article.json"
"""How the article was fitted (config, photos, threshold), for people and reports; the graph does not read it."""
MAX_PROCESSING_PIXELS = 12_000_000
"""Largest photo after resizing by the scale: the backbone's widest layer holds 3 MB per 1,000 of its pixels."""


def limited_patch_features(extractor: tf.keras.Model, pixels: tf.Tensor, scale_text: str) -> tf.Tensor:
    """patch_features.patch_features of processing `pixels`, refused (InvalidArgument) above MAX_PROCESSING_PIXELS."""
    shape = tf.shape(pixels)
    check = tf.debugging.Assert(
        tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64) <= MAX_PROCESSING_PIXELS,
        [tf.strings.format(
            f"the photo is {{}}x{{}} px at {scale_text}, above the {MAX_PROCESSING_PIXELS:,} "
            "px this model inspects at once; send it in parts",
            (shape[1], shape[0]),
        )],
    )
    with tf.control_dependencies([check]):
        return patch_features.patch_features(extractor, pixels)


class ArticleModel(tf.Module):
    def __init__(self, fitted: FittedArticle) -> None:
        super().__init__(name="article")
        self.extractor = patch_features.mid_level_extractor()
        self.bank = tf.Variable(fitted.bank, trainable=False, name="bank")
        self.decision_threshold = tf.Variable(fitted.threshold, dtype=tf.float32, trainable=False, name="threshold")
        self.reference_size = tf.Variable(list(fitted.photo_size), dtype=tf.int32, trainable=False, name="reference_size")
        self.reference_dpi = tf.Variable(fitted.dpi or 0.0, dtype=tf.float32, trainable=False, name="reference_dpi")
        self.scale = fitted.config.scale
        self.colour_blind = fitted.config.colour_blind

    def photo_map(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels, size = patch_features.photo_pixels(image_bytes, self.scale, self.colour_blind)
        shape = tf.shape(pixels)
        grid = limited_patch_features(self.extractor, pixels, f"the article's scale {self.scale:g}")
        rows, columns = tf.shape(grid)[0], tf.shape(grid)[1]
        distances = nearest_distances(tf.reshape(grid, [-1, patch_features.WIDTH]), self.bank)
        anomaly_map = tf.reshape(distances, [rows, columns])
        score = tf.reduce_max(distances)
        return {
            ANOMALY_MAP_OUTPUT: anomaly_map,
            ANOMALY_SCORE_OUTPUT: score,
            LABEL_OUTPUT: tf.cast(score >= self.decision_threshold, tf.int64),
            THRESHOLD_OUTPUT: tf.identity(self.decision_threshold),
            IMAGE_SIZE_OUTPUT: size,
            PROCESSING_SIZE_OUTPUT: tf.reverse(shape[:2], [0]),
            REFERENCE_SIZE_OUTPUT: tf.identity(self.reference_size),
            REFERENCE_DPI_OUTPUT: tf.identity(self.reference_dpi),
        }

    def photo_scores(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = tf.map_fn(
            lambda data: self.photo_map(data)[ANOMALY_SCORE_OUTPUT],
            image_bytes,
            fn_output_signature=tf.TensorSpec([], tf.float32),
            parallel_iterations=1,
        )
        return {
            ANOMALY_SCORE_OUTPUT: scores,
            PROBABILITY_OUTPUT: scores / (scores + self.decision_threshold),
            LABEL_OUTPUT: tf.cast(scores >= self.decision_threshold, tf.int64),
        }


def _signatures(model: ArticleModel) -> dict[str, tf.types.experimental.ConcreteFunction]:
    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.string, name=IMAGE_BYTES_INPUT)])
    def anomaly_map(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.photo_map(image_bytes)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)])
    def predict_image(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.photo_scores(image_bytes)

    image_spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.photo_scores(tf.io.parse_example(examples, image_spec)[features.IMAGE_KEY])

    return {
        ANOMALY_MAP_SIGNATURE: anomaly_map.get_concrete_function(),
        PREDICT_IMAGE_SIGNATURE: predict_image.get_concrete_function(),
        SERVING_DEFAULT_SIGNATURE: serve_examples.get_concrete_function(),
    }


def export_article(fitted: FittedArticle, export_dir: str, description: dict | None = None) -> None:
    """Writes the article model to `export_dir` (which must not exist yet), with ARTICLE_FILE beside it."""
    model = ArticleModel(fitted)
    tf.saved_model.save(model, export_dir, signatures=_signatures(model))
    record = {
        "config": dataclasses.asdict(fitted.config),
        "threshold": fitted.threshold,
        "bank_patches": int(len(fitted.bank)),
        "reference_patches": fitted.patches,
        "photo_size": list(fitted.photo_size),
        "dpi": fitted.dpi,
        "held_out_maxima": fitted.held_out_maxima,
        **(description or {}),
    }
    path = os.path.join(export_dir, ARTICLE_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(record, indent=2) + "\n")
