"""The backbone model through the Trainer's own run_fn: features once, a head, a stored threshold, every signature."""
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from ingest.synth import generate_dataset
from models import backbone_classifier, frozen_fit
from models.backbone import load_lite0
from models.colour_variants import VARIANTS
from models.hide_signature import HIDE_SIGNATURE
from models.patch_features import WIDTH as PATCH_WIDTH
from models.patch_signature import PATCH_FEATURES_OUTPUT, PATCH_FEATURES_SIGNATURE
from models.registry import MODELS
from models.serving_contract import (
    CLASSIFY_SIGNATURE,
    EMBEDDING_OUTPUT,
    LABEL_OUTPUT,
    PREDICT_IMAGE_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_DEFAULT_SIGNATURE,
    TRANSFORM_SIGNATURE,
    WARMUP_REQUESTS_FILE,
)
from models.signatures import stored_decision_threshold
from models.spec import TrainingConfig
from models.trainer import HISTORY_FILE, run_fn
from pipeline.config import PipelineConfig
from trainer_support import make_fn_args, photo_rows, serialized_examples, transform_splits

PHOTOS = 40
EPOCHS = 30
EMBEDDING_WIDTH = 40 + 112 + 320
"""The means of Lite0's stride-8, 16 and 32 maps."""


def _config() -> PipelineConfig:
    return PipelineConfig(data_dir="unused", workdir="unused", training=TrainingConfig(epochs=EPOCHS, batch_size=8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """run_fn on 40 synthetic photos at the model's own 224 px, counting the extractor's passes over the splits."""
    root = tmp_path_factory.mktemp("backbone")
    generate_dataset(root / "photos", PHOTOS, seed=3, size=128)
    rows = photo_rows(sorted((root / "photos").rglob("*.jpg")))
    splits = transform_splits(rows, _config(), root / "transform")
    passes = []
    extract = frozen_fit.extract

    def counted(features_of, dataset):
        found = extract(features_of, dataset)
        passes.append(len(found[0]))
        return found

    fn_args = make_fn_args(splits.transform_output, splits.files, _config().trainer_custom_config(), root / "out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(frozen_fit, "extract", counted)
        run_fn(fn_args)
    history = json.loads((root / "out" / "run" / HISTORY_FILE).read_text())
    return splits, tf.saved_model.load(fn_args.serving_model_dir), history, passes, pathlib.Path(fn_args.serving_model_dir)


def test_the_default_model_reads_224_px_gray_images():
    assert TrainingConfig().model == "backbone"
    preprocessing = _config().transform_custom_config()["preprocessing"]
    assert (preprocessing["cnn_resolution"], preprocessing["cnn_channels"]) == (224, 1)


def test_the_backbone_runs_once_per_photo_and_the_head_trains_for_epochs(trained):
    splits, _, history, passes, _ = trained
    assert passes == [len(splits.raw["train"]), len(splits.raw["eval"])]
    assert 1 <= history["epochs_run"] <= EPOCHS and len(history["history"]["val_auc"]) == history["epochs_run"]
    assert history["best_epoch"] == int(np.argmax(history["history"]["val_auc"]))


def test_the_stored_threshold_drives_the_label_and_every_signature_answers(trained):
    splits, model, history, _, serving_dir = trained
    assert {
        SERVING_DEFAULT_SIGNATURE, PREDICT_IMAGE_SIGNATURE, CLASSIFY_SIGNATURE, TRANSFORM_SIGNATURE, HIDE_SIGNATURE,
        PATCH_FEATURES_SIGNATURE,
    } <= set(model.signatures)
    assert (serving_dir / WARMUP_REQUESTS_FILE).is_file()
    threshold = history["decision_threshold"]
    assert stored_decision_threshold(str(serving_dir)) == pytest.approx(threshold)
    images = tf.constant([row["image"] for row in splits.raw["eval"]])
    answer = model.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=images)
    probability = answer[PROBABILITY_OUTPUT].numpy()
    np.testing.assert_array_equal(answer[LABEL_OUTPUT].numpy(), probability >= threshold)
    assert answer[EMBEDDING_OUTPUT].shape == (len(splits.raw["eval"]), EMBEDDING_WIDTH)
    from_examples = model.signatures[SERVING_DEFAULT_SIGNATURE](examples=serialized_examples(splits.raw["eval"]))
    np.testing.assert_allclose(from_examples[PROBABILITY_OUTPUT].numpy(), probability, atol=1e-6)
    tiles = model.signatures[HIDE_SIGNATURE](image_bytes=images[0], patch_size=tf.constant(64), stride=tf.constant(32))
    assert tiles[EMBEDDING_OUTPUT].shape == (9, EMBEDDING_WIDTH)
    dense = model.signatures[PATCH_FEATURES_SIGNATURE](image_bytes=images[0])
    assert dense[PATCH_FEATURES_OUTPUT].shape == (16, 16, PATCH_WIDTH) and dense[PATCH_FEATURES_OUTPUT].dtype == tf.float32
    assert dense["image_size"].numpy().tolist() == dense["processing_size"].numpy().tolist() == [128, 128]


def test_only_the_backbone_serves_dense_patch_features():
    assert [name for name, entry in MODELS.items() if entry.dense_patch_features] == ["backbone"]


def test_the_backbone_keeps_its_imagenet_weights(trained):
    _, model, _, _, _ = trained
    served = {v.name.split("/", 1)[-1]: v.numpy() for v in model.variables if "blocks_15_project_conv" in v.name}
    imagenet = {v.name.split("/", 1)[-1]: v.numpy() for v in load_lite0().variables if "blocks_15_project_conv" in v.name}
    assert served.keys() == imagenet.keys() and served
    for name, weights in imagenet.items():
        np.testing.assert_array_equal(served[name], weights)


def test_colour_cannot_reach_the_features():
    """A photo, its gray version (three equal channels of its own luminance) and its hue turned score alike."""
    extractor = backbone_classifier.build_extractor((64, 64, 3))
    photos = tf.random.stateless_uniform([4, 64, 64, 3], seed=(1, 2))
    variants = {variant.name: variant.shift for variant in VARIANTS}
    features = {
        name: extractor(variants[name](photos), training=False)[frozen_fit.FEATURES_OUTPUT].numpy()
        for name in ("original", "gray")
    }
    np.testing.assert_allclose(features["gray"], features["original"], rtol=1e-4, atol=1e-4)
    assert np.abs(features["original"]).max() > 1.0
