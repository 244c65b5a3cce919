"""The reference method's ANN: one hidden layer over hand-made edge features."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from models.spec import TrainingConfig


def build(
    training: TrainingConfig, input_shape: tuple[int, ...], moments: tuple[np.ndarray, np.ndarray] | None
) -> tf.keras.Model:
    return build_mlp(int(np.prod(input_shape)), training.hidden_units, moments)


def build_mlp(
    input_dim: int, hidden_units: int, feature_moments: tuple[np.ndarray, np.ndarray] | None = None
) -> tf.keras.Model:
    """Input features -> per-feature standardisation -> tanh hidden layer -> sigmoid "defective".

    `feature_moments` (per-feature mean and variance of the training split) stand
    in for MATLAB's input mapping in the reference's nntool networks and are
    baked into the model, so the served model carries its own scaling. Hidden
    units use tanh, as MATLAB's pattern networks do.
    """
    if input_dim < 1 or hidden_units < 1:
        raise ValueError(f"input_dim and hidden_units must be positive, got {input_dim} and {hidden_units}")
    inputs = tf.keras.Input(shape=(input_dim,), name="features")
    x = inputs
    if feature_moments is not None:
        mean, variance = feature_moments
        x = tf.keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name="standardize")(x)
    x = tf.keras.layers.Dense(hidden_units, activation="tanh", name="hidden")(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="defective", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=f"mlp_{hidden_units}")
