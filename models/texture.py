"""The texture model: a small residual CNN that sees leather as luminance texture, trained from scratch.

A tannery dyes hides in many colours, and the real set's classes were shot on
differently coloured leather, so a network that may read colour learns the dye
(AlexNet: ROC-AUC 0.996 as is, 0.29 in gray). This one cannot: its first layer
turns the photo into luminance and standardises it per photo, so hue,
saturation, overall brightness and contrast never reach the convolutions. What
is left is texture: grain, pores, folds, holes. Batch normalisation and global
average pooling let it take any input size from MIN_INPUT_SIZE up (a whole hide's
tile, a crop in training); the pooled vector is the photo's `embedding`, which
whole-hide inspection compares between tiles.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from models.image_features import RGB_TO_GRAY
from models.serving_contract import EMBEDDING_OUTPUT

if TYPE_CHECKING:
    from models.spec import TrainingConfig

STAGE_WIDTHS = (16, 32, 64, 96, 128)
"""Channels of the stem's residual stage, then of each stage that halves the size."""
STEM_KERNEL = 5
DROPOUT_RATE = 0.2
MIN_INPUT_SIZE = 2 ** len(STAGE_WIDTHS)
"""Five halvings leave at least one cell to pool."""
EMBEDDING_LAYER = EMBEDDING_OUTPUT
"""The pooled layer is the serving contract's `embedding` output."""
_STANDARDISE_EPSILON = 1e-6
"""Variance floor, so a flat photo maps to zeros instead of amplified noise."""


@tf.keras.utils.register_keras_serializable(package="leather")
class LuminanceStandardization(tf.keras.layers.Layer):
    """RGB or gray [batch, h, w, c] in [0, 1] -> per-photo standardised luminance [batch, h, w, 1].

    Computed in float32 under mixed precision too: a per-photo variance in
    float16 loses the faint texture the model is for.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(dtype="float32", **kwargs)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        if images.shape[-1] == 3:
            images = tf.tensordot(images, tf.constant(RGB_TO_GRAY), axes=[[-1], [0]])[..., None]
        mean, variance = tf.nn.moments(images, axes=[1, 2, 3], keepdims=True)
        return (images - mean) * tf.math.rsqrt(variance + _STANDARDISE_EPSILON)


def _conv_bn(x: tf.Tensor, filters: int, kernel: int, strides: int, name: str, relu: bool = True) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = tf.keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return tf.keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual_block(x: tf.Tensor, filters: int, strides: int, name: str) -> tf.Tensor:
    """Two 3x3 convolutions plus a shortcut (a strided 1x1 projection when the shape changes)."""
    shortcut = x
    x = _conv_bn(x, filters, 3, strides, f"{name}_a")
    x = _conv_bn(x, filters, 3, 1, f"{name}_b", relu=False)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv_bn(shortcut, filters, 1, strides, f"{name}_proj", relu=False)
    return tf.keras.layers.ReLU(name=f"{name}_out")(tf.keras.layers.Add(name=f"{name}_add")([x, shortcut]))


def build_texture_net(channels: int = 3) -> tf.keras.Model:
    """Image [batch, h, w, channels] in [0, 1] (any h, w >= MIN_INPUT_SIZE) -> sigmoid "defective"."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    inputs = tf.keras.Input(shape=(None, None, channels), name="image")
    x = LuminanceStandardization(name="luminance")(inputs)
    x = _conv_bn(x, STAGE_WIDTHS[0], STEM_KERNEL, 2, "stem")
    x = _residual_block(x, STAGE_WIDTHS[0], 1, "stage1")
    for stage, width in enumerate(STAGE_WIDTHS[1:], start=2):
        x = _residual_block(x, width, 2, f"stage{stage}")
    embedding = tf.keras.layers.GlobalAveragePooling2D(name=EMBEDDING_LAYER, dtype="float32")(x)
    x = tf.keras.layers.Dropout(DROPOUT_RATE, name="dropout")(embedding)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="defective", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=f"texture_c{channels}")


def build(training: TrainingConfig, input_shape: tuple[int, ...], moments: tuple[np.ndarray, np.ndarray] | None) -> tf.keras.Model:
    return build_texture_net(input_shape[-1])
