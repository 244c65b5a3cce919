"""The Trainer's run_fn on a small synthetic Transform output: weighting, early stopping, export, devices."""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cli.config_args import add_config_arguments, config_from_args
from ingest.synth import generate_dataset
from models import features, texture
from models.epoch_progress import VERBOSE_ENV
from models.hide_signature import HIDE_SIGNATURE
from models.serving_contract import (
    EMBEDDING_OUTPUT,
    LABEL_OUTPUT,
    PREDICT_IMAGE_SIGNATURE,
    PROBABILITY_OUTPUT,
    TRANSFORM_SIGNATURE,
)
from models.signatures import stored_decision_threshold
from models.spec import PreprocessingConfig, TrainingConfig
from models.trainer import HISTORY_FILE, balanced_batches, class_weights, fit_transformed, run_fn
from pipeline.config import PipelineConfig
from serving.warmup import warmup_records
from trainer_support import make_fn_args, photo_rows, serialized_examples, transform_splits

HERE = pathlib.Path(__file__).resolve().parent
PHOTOS = 48
PATIENCE = 3
THRESHOLD = 0.4


def _config(**training) -> PipelineConfig:
    return PipelineConfig(
        data_dir="unused",
        workdir="unused",
        preprocessing=PreprocessingConfig(cnn_resolution=50),
        training=TrainingConfig(batch_size=8, **training),
    )


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """One Transform output holding both model inputs: AlexNet's 50 px image and the MLP's block counts."""
    root = tmp_path_factory.mktemp("trainer")
    generate_dataset(root / "photos", PHOTOS, seed=5, size=96)
    rows = photo_rows(sorted((root / "photos").rglob("*.jpg")))
    return transform_splits(rows, _config(model="alexnet"), root / "transform")


def _train(splits, out: pathlib.Path, **training) -> tuple[tf.Module, dict]:
    fn_args = make_fn_args(splits.transform_output, splits.files, _config(**training).trainer_custom_config(), out)
    run_fn(fn_args)
    history = json.loads((out / "run" / HISTORY_FILE).read_text())
    return tf.saved_model.load(fn_args.serving_model_dir), history


@pytest.fixture(scope="module")
def mlp(splits, tmp_path_factory):
    """A deliberately large step, so the validation loss turns back up and early stopping ends the run."""
    return _train(
        splits, tmp_path_factory.mktemp("mlp"),
        model="mlp", epochs=40, learning_rate=0.01, early_stopping_patience=PATIENCE, decision_threshold=THRESHOLD, target_recall=None,
    )


def _image_bytes(rows: list[dict]) -> tf.Tensor:
    return tf.constant([r[features.IMAGE_KEY] for r in rows])


def test_class_weights_are_inverse_class_frequencies():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])

    weights = class_weights(labels, "balanced")

    assert weights == pytest.approx({0: 8 / 12, 1: 8 / 4})
    assert 6 * weights[0] == pytest.approx(2 * weights[1])
    assert class_weights(labels, "none") is None
    with pytest.raises(ValueError, match="only one class"):
        class_weights(np.zeros(5), "none")


def test_balanced_sampling_draws_both_classes_equally_from_a_9_to_1_split():
    labels = np.array([0] * 90 + [1] * 10)
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(100.0), labels)).batch(16)

    drawn = [(x.numpy(), y.numpy()) for x, y in balanced_batches(dataset, 20, seed=1).take(100)]

    inputs, drawn_labels = np.concatenate([x for x, _ in drawn]), np.concatenate([y for _, y in drawn])
    assert len(drawn_labels) == 2000
    assert 0.45 < drawn_labels.mean() < 0.55
    assert set(inputs[drawn_labels == 1].astype(int)) == set(range(90, 100))
    assert np.all(labels[inputs.astype(int)] == drawn_labels)


def test_training_stops_early_and_exports_the_best_epoch(splits, mlp):
    model, history = mlp
    val_loss = history["history"]["val_loss"]

    assert history["epochs_run"] == len(val_loss) < 40
    assert history["best_epoch"] == int(np.argmin(val_loss)) == len(val_loss) - PATIENCE - 1
    probability = model.signatures["serving_default"](examples=serialized_examples(splits.raw["eval"]))[PROBABILITY_OUTPUT].numpy()
    labels = np.array([r[features.LABEL_KEY] for r in splits.raw["eval"]])
    exported_loss = float(tf.keras.losses.BinaryCrossentropy()(labels, probability))
    assert exported_loss == pytest.approx(val_loss[history["best_epoch"]], rel=1e-3)
    assert exported_loss != pytest.approx(val_loss[-1], rel=1e-3)


def test_signatures_agree_on_raw_bytes_and_tf_examples(splits, mlp):
    model, _ = mlp
    rows = splits.raw["eval"]

    from_examples = model.signatures["serving_default"](examples=serialized_examples(rows))
    from_bytes = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=_image_bytes(rows))
    transformed = model.signatures[TRANSFORM_SIGNATURE](examples=serialized_examples(rows))

    for outputs in (from_examples, from_bytes):
        assert outputs[PROBABILITY_OUTPUT].dtype == tf.float32 and outputs[LABEL_OUTPUT].dtype == tf.int64
        assert outputs[PROBABILITY_OUTPUT].shape == (len(rows),)
    np.testing.assert_allclose(from_bytes[PROBABILITY_OUTPUT], from_examples[PROBABILITY_OUTPUT], atol=1e-6)
    np.testing.assert_array_equal(transformed[features.LABEL_KEY].numpy().ravel(), [r[features.LABEL_KEY] for r in rows])
    assert transformed[features.BLOCK_COUNTS_KEY].shape == (len(rows), 50)


def test_decision_threshold_is_a_model_variable_that_drives_the_label(splits, mlp):
    model, _ = mlp
    images = _image_bytes(splits.raw["train"])
    assert model.decision_threshold.numpy() == pytest.approx(THRESHOLD)

    probability = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=images)[PROBABILITY_OUTPUT].numpy()
    median = float(np.median(probability))
    for threshold, defective in ((median, int((probability >= median).sum())), (0.0, len(probability)), (1.01, 0)):
        model.decision_threshold.assign(threshold)
        label = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=images)[LABEL_OUTPUT].numpy()
        np.testing.assert_array_equal(label, (probability >= threshold).astype(np.int64))
        assert label.sum() == defective
    assert 0 < (probability >= median).sum() < len(probability)


def test_alexnet_trains_with_balanced_sampling_and_serves_raw_photos(splits, tmp_path):
    model, history = _train(splits, tmp_path, model="alexnet", epochs=2, sampling="balanced", class_weighting="none")

    assert history["epochs_run"] == 2 and history["replicas"] == 1
    assert np.all(np.isfinite(history["history"]["loss"]))
    outputs = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=_image_bytes(splits.raw["eval"]))
    probability = outputs[PROBABILITY_OUTPUT].numpy()
    assert probability.shape == (len(splits.raw["eval"]),)
    assert np.all((probability > 0) & (probability < 1))


def test_texture_model_trains_augmented_and_serves_the_same_answer_twice_with_its_embedding(splits, tmp_path):
    model, history = _train(splits, tmp_path, model="texture", epochs=2, augment=True)

    assert history["epochs_run"] == 2 and np.all(np.isfinite(history["history"]["loss"]))
    images = _image_bytes(splits.raw["eval"])
    first = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=images)
    second = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=images)
    np.testing.assert_array_equal(first[PROBABILITY_OUTPUT].numpy(), second[PROBABILITY_OUTPUT].numpy())
    np.testing.assert_array_equal(first[EMBEDDING_OUTPUT].numpy(), second[EMBEDDING_OUTPUT].numpy())
    assert first[EMBEDDING_OUTPUT].shape == (len(images), texture.STAGE_WIDTHS[-1])
    from_examples = model.signatures["serving_default"](examples=serialized_examples(splits.raw["eval"]))
    np.testing.assert_allclose(from_examples[PROBABILITY_OUTPUT], first[PROBABILITY_OUTPUT], atol=1e-6)
    np.testing.assert_allclose(from_examples[EMBEDDING_OUTPUT], first[EMBEDDING_OUTPUT], atol=1e-5)

    # Its warmup file warms the hide signature too: the warmup photo's 3x3 tiles, answered as requested.
    records = warmup_records(tmp_path / "serving")
    [hide] = [log for log in records if log.predict_log.request.model_spec.signature_name == HIDE_SIGNATURE]
    hide_inputs = {alias: tf.make_ndarray(proto) for alias, proto in hide.predict_log.request.inputs.items()}
    answer = model.signatures[HIDE_SIGNATURE](**hide_inputs)
    assert answer[EMBEDDING_OUTPUT].shape == (9, texture.STAGE_WIDTHS[-1])
    assert np.all((answer[PROBABILITY_OUTPUT].numpy() >= 0) & (answer[PROBABILITY_OUTPUT].numpy() <= 1))


def test_augmented_training_repeats_for_a_seed_and_differs_for_another(splits, tmp_path):
    """Through run_fn's own fitting, without the export (which the other tests check)."""
    losses = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        config = _config(model="texture", epochs=1, seed=seed)
        fitted, _ = fit_transformed(make_fn_args(splits.transform_output, splits.files, config.trainer_custom_config(), tmp_path / name))
        losses.append(fitted.history["loss"][0])
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_two_cpu_replicas_train_under_mirrored_strategy(splits, tmp_path):
    """The CPU is split in two before TensorFlow starts, which needs a fresh process."""
    out = tmp_path / "replicas"
    result = subprocess.run(
        [sys.executable, str(HERE / "multi_replica_fit.py"), splits.to_json(), json.dumps(_config(model="mlp", epochs=2).trainer_custom_config()), str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]

    history = json.loads((out / "run" / HISTORY_FILE).read_text())
    assert history["replicas"] == 2 and history["epochs_run"] == 2
    assert np.all(np.isfinite(history["history"]["loss"]))
    model = tf.saved_model.load(str(out / "serving"))
    probability = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=_image_bytes(splits.raw["eval"]))[PROBABILITY_OUTPUT]
    assert probability.shape == (len(splits.raw["eval"]),)


def test_run_flags_map_onto_the_training_config_with_the_reference_defaults():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)

    defaults = config_from_args(parser.parse_args([]), "data", "work")
    alexnet = config_from_args(parser.parse_args(
        ["--model", "alexnet", "--resolution", "100", "--epochs", "5", "--sampling", "balanced", "--class-weighting", "none",
         "--pretrained-weights", "w.h5", "--no-mixed-precision", "--learning-rate", "0.002"]
    ), "data", "work")

    assert (defaults.training.model, defaults.training.hidden_units, defaults.preprocessing.feature_variant) == ("backbone", 50, "blocks")
    assert defaults.training.augment and defaults.training.training_epochs() == 200
    assert (defaults.preprocessing.cnn_resolution, defaults.preprocessing.cnn_channels) == (None, None)
    assert defaults.training.mixed_precision
    assert defaults.transform_custom_config()["preprocessing"]["cnn_resolution"] == 224
    assert alexnet.model_input_key() == features.CNN_IMAGE_KEY and alexnet.preprocessing.cnn_resolution == 100
    assert (alexnet.training.epochs, alexnet.training.sampling, alexnet.training.class_weighting) == (5, "balanced", "none")
    assert (alexnet.training.pretrained_weights, alexnet.training.mixed_precision) == ("w.h5", False)
    assert alexnet.training.optimizer_learning_rate() == 0.002


def test_target_recall_flag_defaults_to_095_and_off_fixes_the_threshold(capsys):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)

    assert config_from_args(parser.parse_args([]), "d", "w").training.target_recall == 0.95
    fixed = config_from_args(parser.parse_args(["--target-recall", "off", "--decision-threshold", "0.3"]), "d", "w")
    assert (fixed.training.target_recall, fixed.training.decision_threshold) == (None, 0.3)
    assert config_from_args(parser.parse_args(["--target-recall", "0.9"]), "d", "w").training.target_recall == 0.9
    with pytest.raises(SystemExit):
        parser.parse_args(["--target-recall", "most"])
    assert "expected a recall in (0, 1] or 'off', got 'most'" in capsys.readouterr().err


def test_target_recall_calibrates_the_exported_threshold_on_validation(splits, tmp_path):
    model, history = _train(splits, tmp_path, model="mlp", epochs=3, target_recall=0.8)
    assert TrainingConfig().target_recall == 0.95

    rows = splits.raw["eval"]
    probability = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=_image_bytes(rows))[PROBABILITY_OUTPUT].numpy()
    defective = np.array([r[features.LABEL_KEY] for r in rows]) == 1
    threshold = history["decision_threshold"]
    assert model.decision_threshold.numpy() == pytest.approx(threshold)
    assert stored_decision_threshold(str(tmp_path / "serving")) == pytest.approx(threshold)
    assert threshold in probability[defective]
    assert (probability[defective] >= threshold).mean() >= 0.8
    assert (probability[defective] > threshold).mean() < 0.8


def test_without_verbose_the_trainer_prints_its_own_line_per_epoch_and_no_keras_line(splits, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(VERBOSE_ENV, "0")
    config = _config(model="mlp", epochs=3, early_stopping_patience=10, target_recall=None)
    fit_transformed(make_fn_args(splits.transform_output, splits.files, config.trainer_custom_config(), tmp_path))
    printed = capsys.readouterr().out.splitlines()
    epochs = [line for line in printed if line.startswith("trainer: epoch ")]
    assert [line.split(",")[0] for line in epochs] == ["trainer: epoch 1/3", "trainer: epoch 2/3", "trainer: epoch 3/3"]
    assert re.fullmatch(r"trainer: epoch 1/3, loss \d\.\d{4}, validation ROC-AUC \d\.\d{4}, about \d+ s left", epochs[0])
    assert epochs[-1].endswith(", done")
    assert not any(line.startswith("Epoch ") or "/step" in line for line in printed), printed
