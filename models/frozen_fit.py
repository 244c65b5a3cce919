"""Fitting a head on frozen features: the backbone runs once per photo, the head trains on the numbers it gave.

A frozen backbone gives the same features in every epoch, so running it per
epoch would cost the whole training time for nothing: on 2 CPUs, Lite0 takes
about 15 ms a photo and the head's epoch a fraction of a second. The features
of the training and validation photos are computed once, the head (the
training split's per-feature standardisation baked in, dropout, one sigmoid
unit with an L2 penalty) is fitted on them with early stopping, and the served
model is the extractor's graph with that head on top. Augmentation does not
apply: the features of a photo are fixed, and the extractor is colour-blind by
construction.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from models.calibration import threshold_for_recall
from models.epoch_progress import FROZEN_HEAD_INTERVAL, progress_callback
from models.keras_autograph import leave_keras_unconverted

if TYPE_CHECKING:
    from models.spec import TrainingConfig

leave_keras_unconverted()

FEATURES_OUTPUT = "pooled_features"
"""The extractor's output the head reads; an extractor also outputs the serving contract's `embedding`."""
HEAD_L2 = 1e-3
"""Weight of the head's squared weights in the loss; 2,696 features from about 1,700 photos need a strong prior."""
HEAD_DROPOUT = 0.2
_VARIANCE_FLOOR = 1e-6
"""Features that never vary (a ReLU6 unit that never fires) are left unscaled rather than divided by zero."""


def extract(features_of: Callable[[tf.Tensor], tf.Tensor], dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of every (image, label) batch, the labels read in the same pass so the order holds."""
    batches, labels = [], []
    for images, label in dataset:
        batches.append(features_of(images).numpy())
        labels.append(np.asarray(label).reshape(-1))
    if not batches:
        raise ValueError("no photos to compute features of")
    return np.concatenate(batches), np.concatenate(labels).astype(np.int64)


def features_function(extractor: tf.keras.Model, images: tf.TensorSpec) -> Callable[[tf.Tensor], tf.Tensor]:
    """The extractor's features as one graph for any batch size: traced once, not once per split and batch shape,
    and without autograph (the network has no control flow to convert; converting its layers cost tens of seconds)."""
    shape = tf.TensorShape([None]).concatenate(images.shape[1:])
    return tf.function(lambda batch: extractor(batch, training=False)[FEATURES_OUTPUT],
                       input_signature=[tf.TensorSpec(shape, tf.float32)], autograph=False)


def build_head(moments: tuple[np.ndarray, np.ndarray], seed: int) -> list[tf.keras.layers.Layer]:
    """The head's layers, shared by the model fitted on features and the served model on images."""
    mean, variance = moments
    return [
        tf.keras.layers.Normalization(mean=mean, variance=np.maximum(variance, _VARIANCE_FLOOR), name="standardise"),
        tf.keras.layers.Dropout(HEAD_DROPOUT, seed=seed, name="dropout"),
        tf.keras.layers.Dense(
            1, activation="sigmoid", kernel_regularizer=tf.keras.regularizers.L2(HEAD_L2), name="defective", dtype="float32"
        ),
    ]


class _BestWeights(tf.keras.callbacks.Callback):
    """The weights of the best epoch, kept in memory: a checkpoint file per improvement took longer than the epoch."""

    def __init__(self, monitor: str, mode: str) -> None:
        super().__init__()
        self.monitor, self.sign = monitor, 1.0 if mode == "max" else -1.0
        self.best, self.weights = -np.inf, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = self.sign * float((logs or {}).get(self.monitor, np.nan))
        if np.isfinite(value) and value > self.best:
            self.best, self.weights = value, self.model.get_weights()


def _apply(layers: list[tf.keras.layers.Layer], x: tf.Tensor) -> tf.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def fit_frozen(
    extractor: tf.keras.Model,
    training: TrainingConfig,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    class_weight: dict[int, float] | None,
    learning_rate: float,
    verbose: int,
    monitor: str,
    progress: bool = False,
) -> tuple[tf.keras.Model, int, dict[str, list[float]], float]:
    """(served model, best epoch, history, decision threshold) of a head fitted on the extractor's features.

    Hundreds of head epochs of a fraction of a second each: with `progress`, an epoch line at most every
    FROZEN_HEAD_INTERVAL seconds and one for all of them, never Keras' line an epoch.
    """
    talk = bool(verbose) or progress
    started = time.monotonic()
    features_of = features_function(extractor, train.element_spec[0])
    train_x, train_y = extract(features_of, train)
    validation_x, validation_y = extract(features_of, validation)
    if talk:
        print(f"trainer: frozen features of {len(train_x) + len(validation_x)} photos in {time.monotonic() - started:.0f} s "
              f"({train_x.shape[1]} numbers a photo)")
    layers = build_head((train_x.mean(axis=0), train_x.var(axis=0)), training.seed)
    features_in = tf.keras.Input(shape=train_x.shape[1:], name="features")
    head = tf.keras.Model(features_in, _apply(layers, features_in), name="head")
    head.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[tf.keras.metrics.BinaryAccuracy(name="accuracy"), tf.keras.metrics.AUC(name="auc")],
    )
    mode = "min" if monitor == "val_loss" else "max"
    best = _BestWeights(monitor, mode)
    callbacks = [tf.keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=training.early_stopping_patience), best]
    if progress:
        callbacks.append(progress_callback(training.training_epochs(), FROZEN_HEAD_INTERVAL))
    history = head.fit(
        train_x, train_y.astype(np.float32), batch_size=training.batch_size, epochs=training.training_epochs(),
        validation_data=(validation_x, validation_y.astype(np.float32)), class_weight=class_weight,
        callbacks=callbacks, shuffle=True, verbose=0,
    ).history
    if best.weights is None:
        raise RuntimeError(f"{monitor} was never finite ({history[monitor]}); no model to export")
    head.set_weights(best.weights)
    watched = np.asarray(history[monitor], np.float64)
    best_epoch = int(np.nanargmin(watched) if mode == "min" else np.nanargmax(watched))
    if talk:
        print(f"trainer: head fitted for {len(history[monitor])} epochs, best {best_epoch + 1} "
              f"({monitor} {history[monitor][best_epoch]:.4f})")
    threshold = training.decision_threshold
    if training.target_recall is not None:
        probabilities = head.predict(validation_x, verbose=0).reshape(-1)
        threshold = threshold_for_recall(validation_y, probabilities, training.target_recall)
    served = tf.keras.Model(extractor.inputs, _apply(layers, extractor.get_layer(FEATURES_OUTPUT).output), name="backbone")
    return served, best_epoch, history, threshold
