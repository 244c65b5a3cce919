"""The backbone model: a frozen ImageNet EfficientNet-Lite0 that sees leather as luminance, pooled, then a trained head.

Trained from scratch on a few thousand photos, a CNN ranks real photos at
ROC-AUC 0.92-0.94; the same photos through ImageNet features and a logistic
head rank at 0.99+. This module builds the frozen part: the photo's BT.601
luminance, standardised per photo as the texture model's first layer does (so
dye, brightness and contrast never reach the network), scaled to the spread of
the backbone's input and copied to three channels; Lite0's feature maps at strides 8,
16 and 32 and its pooled head; and per map the mean, spread and maximum over
the photo (a defect is small: a mean alone washes it out). `models.frozen_fit`
computes these features once per photo and fits the head on them, instead of
paying a backbone pass per epoch.

The served model is this graph with the head on top, standard ops only, so TF
Serving loads it. Its `embedding` is the per-map means (40 + 112 + 320
numbers), which whole-hide inspection compares between tiles.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from models.backbone import FEATURES, load_lite0
from models.frozen_fit import FEATURES_OUTPUT
from models.serving_contract import EMBEDDING_OUTPUT
from models.texture import LuminanceStandardization

if TYPE_CHECKING:
    from models.spec import TrainingConfig

INPUT_SPREAD = 0.5
"""Standard deviation of the standardised luminance in the backbone's input range ((x - 127) / 128 spans [-1, 1])."""
MIN_INPUT_SIZE = 32
"""Five stride-2 stages leave at least one cell of the stride-32 map."""


@tf.keras.utils.register_keras_serializable(package="leather")
class SpreadAndMaximum(tf.keras.layers.Layer):
    """[batch, h, w, c] -> [batch, 2c]: standard deviation and maximum of each channel over the photo."""

    def call(self, maps: tf.Tensor) -> tf.Tensor:
        maps = tf.cast(maps, tf.float32)
        _, variance = tf.nn.moments(maps, axes=[1, 2])
        return tf.concat([tf.sqrt(variance), tf.reduce_max(maps, axis=[1, 2])], axis=-1)


def build_extractor(input_shape: tuple[int, ...]) -> tf.keras.Model:
    """Image [batch, h, w, channels] in [0, 1] -> {FEATURES_OUTPUT, EMBEDDING_OUTPUT}, every weight frozen.

    The embedding layer lies on the path to the features, so a model built on them keeps it.
    """
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"the backbone model reads images [h, w, 1 or 3], not {list(input_shape)}")
    if any(side is not None and side < MIN_INPUT_SIZE for side in input_shape[:2]):
        raise ValueError(f"the backbone model needs photos of at least {MIN_INPUT_SIZE} px, not {list(input_shape[:2])}")
    inputs = tf.keras.Input(shape=(None, None, input_shape[-1]), name="image")
    luminance = tf.keras.layers.Rescaling(INPUT_SPREAD, name="input_spread")(LuminanceStandardization(name="luminance")(inputs))
    rgb = tf.keras.layers.Concatenate(name="three_channels")([luminance] * 3)
    maps = load_lite0()(rgb, training=False)
    # The means are the embedding and, with the spreads, maxima and pooled head, the features: one path to the head.
    means = [tf.keras.layers.GlobalAveragePooling2D(name=f"{name}_mean", dtype="float32")(maps[name]) for name in FEATURES]
    embedding = tf.keras.layers.Concatenate(name=EMBEDDING_OUTPUT, dtype="float32")(means)
    extremes = [SpreadAndMaximum(name=f"{name}_spread_max")(maps[name]) for name in FEATURES]
    features = tf.keras.layers.Concatenate(name=FEATURES_OUTPUT, dtype="float32")([embedding, *extremes, maps["pooled"]])
    return tf.keras.Model(inputs, {FEATURES_OUTPUT: features, EMBEDDING_OUTPUT: embedding}, name="backbone_features")


def build(training: TrainingConfig, input_shape: tuple[int, ...], moments: tuple[np.ndarray, np.ndarray] | None) -> tf.keras.Model:
    return build_extractor(input_shape)
