"""Training/serving skew on real photos: `predict_image` on the raw bytes equals the model on Transform's materialised features."""
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import features
from models.trainer import run_fn
from models.serving_contract import PREDICT_IMAGE_SIGNATURE, PROBABILITY_OUTPUT
from models.spec import PreprocessingConfig, TrainingConfig
from pipeline.config import PipelineConfig
from trainer_support import SPLITS, make_fn_args, photo_rows, transform_splits

pytestmark = pytest.mark.real_data

PER_CLASS = {features.DEFAULT_CLEAN_CLASS: 15, "defective": 3}
"""15 clean photos and 3 of each of the five defect folders."""
PHOTOS = 30


def _photos(real_data_dir: pathlib.Path) -> list[pathlib.Path]:
    chosen = []
    for folder in sorted(p for p in real_data_dir.iterdir() if p.is_dir()):
        take = PER_CLASS.get(folder.name, PER_CLASS["defective"])
        chosen += sorted(folder.glob("*.jpg"))[:take]
    return chosen


def _materialised(transform_output: str, files: str) -> dict[str, np.ndarray]:
    """The transformed tf.Examples Transform wrote for a split, parsed with its own feature spec."""
    spec = tft.TFTransformOutput(transform_output).transformed_feature_spec()
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(files), compression_type="GZIP")
    parsed = tf.io.parse_example(tf.stack(list(records)), spec)
    return {key: value.numpy() for key, value in parsed.items()}


@pytest.fixture(scope="module", params=[("mlp", 2), ("alexnet", 1)], ids=["mlp-blocks", "alexnet-150px"])
def trained(request, real_data_dir, tmp_path_factory):
    """A model trained for an epoch or two on the real photos, through Transform and run_fn."""
    model, epochs = request.param
    out = tmp_path_factory.mktemp(model)
    config = PipelineConfig(
        data_dir="unused", workdir="unused", preprocessing=PreprocessingConfig(),
        training=TrainingConfig(model=model, epochs=epochs, batch_size=8),
    )
    rows = photo_rows(_photos(real_data_dir))
    splits = transform_splits(rows, config, out)
    fn_args = make_fn_args(splits.transform_output, splits.files, config.trainer_custom_config(), out)
    run_fn(fn_args)
    return splits, config, fn_args.serving_model_dir


def test_predict_image_on_raw_bytes_equals_the_model_on_materialised_features(trained):
    splits, config, serving_dir = trained
    input_key = config.model_input_key()
    exported = tf.saved_model.load(serving_dir)
    checked = 0
    for split in SPLITS:
        materialised = _materialised(splits.transform_output, splits.files[split])
        from_features = exported(tf.constant(materialised[input_key]), training=False).numpy().ravel()
        by_id = {row[features.IMAGE_ID_KEY].encode(): row for row in splits.raw[split]}
        photos = [by_id[image_id] for image_id in materialised[features.IMAGE_ID_KEY].ravel()]

        served = exported.signatures[PREDICT_IMAGE_SIGNATURE](image_bytes=tf.constant([p[features.IMAGE_KEY] for p in photos]))

        np.testing.assert_array_equal(materialised[features.LABEL_KEY].ravel(), [p[features.LABEL_KEY] for p in photos])
        np.testing.assert_allclose(served[PROBABILITY_OUTPUT].numpy(), from_features, rtol=0, atol=1e-6)
        assert np.ptp(from_features) > 1e-4, "photos got (nearly) one probability: the comparison would prove nothing"
        checked += len(photos)
    assert checked == PHOTOS == len(splits.raw["train"]) + len(splits.raw["eval"])
