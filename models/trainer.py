"""The Trainer's `run_fn`: fit the configured model on Transform's output and export it.

TFX calls `run_fn` by dotted path (`models.trainer.run_fn`), so this module is
the single place where configuration, data, devices and export meet; which
network is built, and how, is the registry's business.
"""
import dataclasses
import json
import math
import os
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio

if TYPE_CHECKING:  # the trainer's own import stays light for the grid's fold processes (tfx.v1 costs 5 s)
    from tfx.components.trainer.fn_args_utils import FnArgs

from models import features
from models.augmentation import augmented
from models.calibration import threshold_for_recall
from models.distribution import configure_devices
from models.epoch_progress import keras_verbosity, progress_callback
from models.frozen_fit import fit_frozen
from models.hide_signature import HIDE_SIGNATURE
from models.registry import model_entry
from models.signatures import make_serving_signatures, mark_classification_signature
from models.spec import TrainingConfig, training_from_custom_config
from models.warmup import write_warmup_requests

HISTORY_FILE = "training_history.json"
"""Per-epoch metrics and the restored best epoch, written next to the TensorBoard logs."""
BEST_CHECKPOINT = "best_checkpoint"


def _dataset(
    fn_args: "FnArgs",
    files: list[str],
    schema: schema_pb2.Schema,
    input_key: str | None,
    batch_size: int,
    shuffle: bool,
) -> tf.data.Dataset:
    """One pass over a split as (model input, label) batches; with `input_key` None, the labels alone."""
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=features.LABEL_KEY, num_epochs=1, shuffle=shuffle
        ),
        schema,
    )
    if input_key is None:
        return dataset.map(lambda _, label: tf.reshape(label, [-1]))
    return dataset.map(lambda batch, label: (batch[input_key], tf.reshape(label, [-1]))).prefetch(tf.data.AUTOTUNE)


def _label_schema(schema: schema_pb2.Schema) -> schema_pb2.Schema:
    """The transformed schema cut down to the label, so counting labels does not parse 150 px images."""
    label_only = schema_pb2.Schema()
    label_only.feature.extend(f for f in schema.feature if f.name == features.LABEL_KEY)
    return label_only


def class_counts(labels: np.ndarray) -> np.ndarray:
    """Examples per label (clean, defective); a split without both classes cannot train a classifier."""
    counts = np.bincount(labels.astype(np.int64), minlength=2)
    if counts.min() == 0:
        raise ValueError(f"the training split holds only one class (counts {counts.tolist()}); cannot train")
    return counts


def class_weights(labels: np.ndarray, weighting: str) -> dict[int, float] | None:
    """Inverse-frequency weights, so the rarer class counts as much as the common one."""
    counts = class_counts(labels)
    if weighting == "none":
        return None
    return {label: float(len(labels) / (2 * count)) for label, count in enumerate(counts)}


def balanced_batches(dataset: tf.data.Dataset, batch_size: int, seed: int) -> tf.data.Dataset:
    """An endless stream of batches drawn half from each class (with replacement), from (input, label) batches.

    The alternative to class weights: each step sees as many defective as clean
    examples, so the minority class is repeated rather than up-weighted.
    """
    examples = dataset.unbatch()
    by_class = [examples.filter(lambda _, label, c=c: tf.equal(label, c)).repeat() for c in (features.CLEAN, features.DEFECTIVE)]
    mixed = tf.data.Dataset.sample_from_datasets(by_class, weights=[0.5, 0.5], seed=seed)
    return mixed.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def feature_moments(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of the model input, in one pass over a split."""
    inputs = np.concatenate([x.numpy().reshape(len(x), -1) for x, _ in dataset])
    return inputs.mean(axis=0), inputs.var(axis=0)


def build_model(
    training: TrainingConfig,
    input_shape: tuple[int, ...],
    moments: tuple[np.ndarray, np.ndarray] | None,
    steps_per_epoch: int = 1,
) -> tf.keras.Model:
    """The configured network, compiled with Adam and binary cross-entropy (one sigmoid output).

    Models that decay their step follow a cosine to zero over all epochs'
    `steps_per_epoch` steps; early stopping may end them sooner.
    """
    entry = model_entry(training.model)
    model = entry.build(training, input_shape, moments)
    learning_rate = training.optimizer_learning_rate()
    if entry.decays_learning_rate:
        learning_rate = tf.keras.optimizers.schedules.CosineDecay(learning_rate, training.training_epochs() * steps_per_epoch)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[tf.keras.metrics.BinaryAccuracy(name="accuracy"), tf.keras.metrics.AUC(name="auc")],
    )
    return model


def _labels(fn_args: "FnArgs", files: list[str], schema: schema_pb2.Schema, split: str) -> np.ndarray:
    label_batches = _dataset(fn_args, files, _label_schema(schema), None, 1024, shuffle=False)
    labels = np.concatenate([[]] + [batch.numpy() for batch in label_batches]).astype(np.int64)
    if len(labels) == 0:
        raise ValueError(f"the {split} split is empty ({files}); cannot train")
    return labels


@dataclasses.dataclass
class FitResult:
    """A trained model restored to its best epoch, and the decision threshold it should carry."""

    model: tf.keras.Model
    best_epoch: int
    history: dict[str, list[float]]
    decision_threshold: float


def _decision_threshold(model: tf.keras.Model, validation: tf.data.Dataset, training: TrainingConfig) -> float:
    """The configured threshold, or with a target recall the one that reaches it on the validation split."""
    if training.target_recall is None:
        return training.decision_threshold
    labels = np.concatenate([y.numpy() for _, y in validation])
    probabilities = model.predict(validation, verbose=0).reshape(-1)
    return threshold_for_recall(labels, probabilities, training.target_recall)


def fit_model(
    training: TrainingConfig,
    input_shape: tuple[int, ...],
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    train_labels: np.ndarray,
    run_dir: str,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int = 2,
    progress: bool = False,
) -> FitResult:
    """Fit on (input, label) batches with early stopping, restore the best epoch, choose the threshold.

    Shared by the Trainer and the experiment grids, so a grid measures the very
    training the pipeline ships. `verbose` is Keras' own verbosity; `progress`
    prints the Trainer's epoch lines (models/epoch_progress.py) and writes
    TensorBoard logs, which a grid's folds do without.
    """
    strategy = strategy or tf.distribute.get_strategy()
    entry = model_entry(training.model)
    weights = class_weights(train_labels, training.class_weighting)
    if entry.frozen_features:
        with strategy.scope():
            extractor = entry.build(training, input_shape, None)
            model, best_epoch, history, threshold = fit_frozen(
                extractor, training, train, validation, weights,
                training.optimizer_learning_rate(), verbose, entry.best_epoch_by, progress,
            )
        return FitResult(model, best_epoch, history, threshold)
    moments = feature_moments(train) if entry.standardises_inputs else None
    batch_size = training.batch_size * strategy.num_replicas_in_sync
    steps_per_epoch = math.ceil(len(train_labels) / batch_size)
    if training.augment and entry.reads_image:
        train = augmented(train, batch_size, training.seed)
    if training.sampling == "balanced":
        train = balanced_batches(train, batch_size, training.seed)
    with strategy.scope():
        model = build_model(training, input_shape, moments, steps_per_epoch)
    best_weights = os.path.join(run_dir, BEST_CHECKPOINT)
    mode = "min" if entry.best_epoch_by == "val_loss" else "max"
    callbacks = [
        tf.keras.callbacks.EarlyStopping(monitor=entry.best_epoch_by, mode=mode, patience=training.early_stopping_patience),
        tf.keras.callbacks.ModelCheckpoint(
            best_weights, monitor=entry.best_epoch_by, mode=mode, save_best_only=True, save_weights_only=True
        ),
    ]
    if progress:
        callbacks += [tf.keras.callbacks.TensorBoard(log_dir=run_dir), progress_callback(training.training_epochs())]
    history = model.fit(
        train,
        validation_data=validation,
        epochs=training.training_epochs(),
        steps_per_epoch=steps_per_epoch if training.sampling == "balanced" else None,
        class_weight=weights,
        callbacks=callbacks,
        verbose=verbose,
    )
    if not tf.io.gfile.exists(best_weights + ".index"):
        raise RuntimeError(
            f"{entry.best_epoch_by} was never finite ({history.history[entry.best_epoch_by]}); no model to export"
        )
    model.load_weights(best_weights)
    watched = np.asarray(history.history[entry.best_epoch_by], np.float64)
    best_epoch = int(np.nanargmin(watched) if mode == "min" else np.nanargmax(watched))
    return FitResult(model, best_epoch, history.history, _decision_threshold(model, validation, training))


def _write_history(model_run_dir: str, fitted: FitResult, replicas: int) -> None:
    """Record what training did: per-epoch metrics, the restored (0-based) epoch, the threshold."""
    summary = {
        "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.history["val_loss"]),
        "replicas": replicas,
        "decision_threshold": fitted.decision_threshold,
        "history": fitted.history,
    }
    with tf.io.gfile.GFile(os.path.join(model_run_dir, HISTORY_FILE), "w") as out:
        json.dump(summary, out, indent=2)


def fit_transformed(fn_args: "FnArgs") -> tuple[FitResult, tft.TFTransformOutput]:
    """The configured model fitted on Transform's output, as run_fn fits it, before anything is exported."""
    training = training_from_custom_config(fn_args.custom_config)
    input_key = fn_args.custom_config["model_input"]
    tf.keras.utils.set_random_seed(training.seed)
    strategy = configure_devices(training.mixed_precision)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    schema = tf_transform_output.transformed_metadata.schema
    batch_size = training.batch_size * strategy.num_replicas_in_sync
    labels = _labels(fn_args, fn_args.train_files, schema, "train")
    _labels(fn_args, fn_args.eval_files, schema, "validation")
    print(
        f"trainer: {training.model} on {input_key!r}, {len(labels)} training examples "
        f"({int(labels.sum())} defective), class weighting {training.class_weighting}, sampling {training.sampling}, "
        f"{strategy.num_replicas_in_sync} replica(s), batch {batch_size}, "
        f"learning rate {training.optimizer_learning_rate()}"
    )
    fitted = fit_model(
        training,
        tuple(tf_transform_output.transformed_feature_spec()[input_key].shape),
        _dataset(fn_args, fn_args.train_files, schema, input_key, batch_size, shuffle=True),
        _dataset(fn_args, fn_args.eval_files, schema, input_key, batch_size, shuffle=False),
        labels,
        fn_args.model_run_dir,
        strategy,
        verbose=keras_verbosity(),
        progress=True,
    )
    _write_history(fn_args.model_run_dir, fitted, strategy.num_replicas_in_sync)
    print(
        f"trainer: restored epoch {fitted.best_epoch + 1} of {len(fitted.history['val_loss'])} (best "
        f"{model_entry(training.model).best_epoch_by}); decision threshold {fitted.decision_threshold:.4f}"
    )
    return fitted, tf_transform_output


def run_fn(fn_args: "FnArgs") -> None:
    """Train with early stopping, restore the best epoch, export the serving signatures."""
    fitted, tf_transform_output = fit_transformed(fn_args)
    entry = model_entry(training_from_custom_config(fn_args.custom_config).model)
    signatures = make_serving_signatures(
        fitted.model,
        tf_transform_output,
        fn_args.custom_config["model_input"],
        fitted.decision_threshold,
        entry.embedding_layer,
        dense_patch_features=entry.dense_patch_features,
    )
    tf.saved_model.save(fitted.model, fn_args.serving_model_dir, signatures=signatures)
    mark_classification_signature(fn_args.serving_model_dir)
    write_warmup_requests(fn_args.serving_model_dir, hide_signature=HIDE_SIGNATURE in signatures)
