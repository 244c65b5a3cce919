"""The reference method's modified AlexNet (Liong et al. 2019, Table 1), trained from scratch by default.

Layer by layer as Table 1 gives it for 150x150x3 input; other resolutions
(50, 100, 200 px) run through the same layers and only change the spatial sizes
and so the width of fc6. The ImageNet weights the reference fine-tuned cannot be
downloaded here, so the network starts from He-normal weights; `weights_path`
loads weights saved from a model of the same layer names instead.

Grouped convolutions (conv2, conv4, conv5 in two groups, as the original
AlexNet split over two GPUs) are built as two convolutions over the two channel
halves, concatenated. Keras' `groups=2` computes the same thing but runs on CPU
only through an XLA-compiled function, which would put XLA into the exported
SavedModel that TF Serving has to load; split-and-concatenate is plain ops on
every device.
"""
from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from models import features

if TYPE_CHECKING:
    from models.spec import TrainingConfig

LRN_DEPTH_RADIUS = 2
"""Normalise over 5 channels: the channel itself and 2 on either side."""
LRN_BIAS = 1.0
LRN_ALPHA = 1e-4 / (2 * LRN_DEPTH_RADIUS + 1)
"""Caffe's alpha 1e-4 is divided by the window size; tf.nn.lrn's is not."""
LRN_BETA = 0.75
DROPOUT_RATE = 0.5
FC_UNITS = 4096
_INIT = "he_normal"


@tf.keras.utils.register_keras_serializable(package="leather")
class LocalResponseNormalization(tf.keras.layers.Layer):
    """AlexNet's cross-channel local response normalisation, as a serialisable Keras layer."""

    def __init__(
        self,
        depth_radius: int = LRN_DEPTH_RADIUS,
        bias: float = LRN_BIAS,
        alpha: float = LRN_ALPHA,
        beta: float = LRN_BETA,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def _conv(x: tf.Tensor, filters: int, size: int, name: str, groups: int = 1, strides: int = 1, padding: str = "same") -> tf.Tensor:
    """A ReLU convolution; with `groups` > 1 each group of filters sees only its share of the input channels."""
    if groups == 1:
        return tf.keras.layers.Conv2D(
            filters, size, strides=strides, padding=padding, activation="relu", kernel_initializer=_INIT, name=name
        )(x)
    parts = tf.split(x, groups, axis=-1, name=f"{name}_split")
    outputs = [
        tf.keras.layers.Conv2D(
            filters // groups, size, strides=strides, padding=padding, activation="relu",
            kernel_initializer=_INIT, name=f"{name}_{index}",
        )(part)
        for index, part in enumerate(parts)
    ]
    return tf.keras.layers.Concatenate(axis=-1, name=name)(outputs)


def build(
    training: TrainingConfig, input_shape: tuple[int, ...], moments: tuple[np.ndarray, np.ndarray] | None
) -> tf.keras.Model:
    return build_alexnet(input_shape[0], input_shape[-1], weights_path=training.pretrained_weights)


def build_alexnet(resolution: int, channels: int = 3, weights_path: str | None = None) -> tf.keras.Model:
    """Table 1's network for a `resolution` x `resolution` x `channels` image in [0, 1] -> sigmoid "defective".

    The reference's two-way softmax (fc8) is one sigmoid unit here, the same
    model for a binary label; it stays float32 under mixed precision so the
    probability and the loss are computed at full precision.
    """
    if resolution not in features.CNN_RESOLUTIONS:
        raise ValueError(f"resolution must be one of {features.CNN_RESOLUTIONS}, got {resolution}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=(resolution, resolution, channels), name="image")
    x = _conv(inputs, 96, 11, "conv1", strides=4, padding="valid")
    x = LocalResponseNormalization(name="lrn1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.ZeroPadding2D(2, name="conv2_pad")(x)
    x = _conv(x, 256, 5, "conv2", groups=2, padding="valid")
    x = LocalResponseNormalization(name="lrn2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = _conv(x, 384, 3, "conv3")
    x = _conv(x, 384, 3, "conv4", groups=2)
    x = _conv(x, 256, 3, "conv5", groups=2)
    # Zero padding before the pool equals Caffe's padding here: every input is a ReLU output, >= 0.
    x = layers.ZeroPadding2D(2, name="pool5_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(FC_UNITS, activation="relu", kernel_initializer=_INIT, name="fc6")(x)
    x = layers.Dropout(DROPOUT_RATE, name="drop6")(x)
    x = layers.Dense(FC_UNITS, activation="relu", kernel_initializer=_INIT, name="fc7")(x)
    x = layers.Dropout(DROPOUT_RATE, name="drop7")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="defective", dtype="float32")(x)
    model = tf.keras.Model(inputs, outputs, name=f"alexnet_{resolution}x{resolution}x{channels}")
    if weights_path is not None:
        load_pretrained(model, weights_path)
    return model


def load_pretrained(model: tf.keras.Model, weights_path: str) -> None:
    """Load an HDF5 weights file by layer name; layers whose shapes differ (fc6 at another resolution, the output) keep their init.

    Only HDF5 supports loading by name with shape mismatches skipped, which is
    what fine-tuning from a network trained at another input size needs.
    """
    path = pathlib.Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained AlexNet weights not found: {path}")
    if path.suffix not in (".h5", ".hdf5"):
        raise ValueError(f"pretrained AlexNet weights must be an HDF5 file (.h5/.hdf5) saved by Keras, got {path}")
    model.load_weights(str(path), by_name=True, skip_mismatch=True)
