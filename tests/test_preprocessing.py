"""The Transform step's preprocessing_fn, run by tf.Transform itself on a few synthetic photos."""
import hashlib
import io
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from ingest.synth import generate_dataset
from models import features
from models.canny import canny_edges
from models.image_features import decode_images
from models.preprocessing import preprocessing_fn
from models.spec import PreprocessingConfig, TrainingConfig
from pipeline.config import PipelineConfig

RAW_SPEC = {
    features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    features.IMAGE_ID_KEY: tf.io.FixedLenFeature([], tf.string),
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("photos")
    generate_dataset(root, 6, seed=3)
    white = io.BytesIO()
    Image.new("RGB", (64, 48), (250, 250, 250)).save(white, "PNG")
    photos = [(p.read_bytes(), int(p.parent.name != features.DEFAULT_CLEAN_CLASS)) for p in sorted(root.rglob("*.jpg"))]
    return [
        {features.IMAGE_KEY: data, features.LABEL_KEY: label, features.IMAGE_ID_KEY: hashlib.sha256(data).hexdigest()}
        for data, label in photos + [(white.getvalue(), 0)]
    ]


def _transform(rows: list[dict], config: PipelineConfig, tmp: pathlib.Path) -> list[dict]:
    """Transformed rows in the order of `rows` (Beam does not promise order; the image id does)."""
    custom_config = config.transform_custom_config()
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tft_beam.Context(temp_dir=str(tmp), force_tf_compat_v1=False):
        (transformed, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, custom_config)
        )
    by_id = {row[features.IMAGE_ID_KEY]: row for row in transformed}
    return [by_id[row[features.IMAGE_ID_KEY].encode()] for row in rows]


def _config(**kwargs) -> PipelineConfig:
    training = TrainingConfig(model=kwargs.pop("model", "mlp"))
    return PipelineConfig(data_dir="unused", workdir="unused", training=training, preprocessing=PreprocessingConfig(**kwargs))


def test_block_counts_are_the_canny_edge_counts_of_each_10px_block(photos, tmp_path):
    transformed = _transform(photos, _config(), tmp_path)

    assert len(transformed) == len(photos)
    gray = decode_images(tf.constant([r[features.IMAGE_KEY] for r in photos]), cnn_resolution=None).gray
    edges = canny_edges(gray).numpy()
    for row, edge_map, raw in zip(transformed, edges, photos):
        counts = np.asarray(row[features.BLOCK_COUNTS_KEY]).reshape(5, 5, 2)
        expected = edge_map.reshape(5, 10, 5, 10).sum(axis=(1, 3))
        np.testing.assert_array_equal(counts[..., 1], expected)
        np.testing.assert_array_equal(counts[..., 0], 100 - expected)
        assert row[features.LABEL_KEY] == raw[features.LABEL_KEY]
    assert transformed[-1][features.BRIGHTNESS_KEY] == features.BRIGHT.encode()
    assert edges[-1].sum() == 0


@pytest.mark.parametrize("variant", ["blocks", "edges", "gray"])
def test_every_mlp_input_is_materialised_whichever_variant_the_mlp_reads(photos, tmp_path, variant):
    """So the Transform's config, and its cached result, is the same for all three variants."""
    row = _transform(photos[:2], _config(feature_variant=variant), tmp_path)[0]

    assert set(row) == {
        features.LABEL_KEY, features.IMAGE_ID_KEY, features.BRIGHTNESS_KEY,
        features.BLOCK_COUNTS_KEY, features.EDGE_PIXELS_KEY, features.GRAY_PIXELS_KEY,
    }
    sizes = {features.BLOCK_COUNTS_KEY: 50, features.EDGE_PIXELS_KEY: 2500, features.GRAY_PIXELS_KEY: 2500}
    assert {key: np.asarray(row[key]).shape for key in sizes} == {key: (size,) for key, size in sizes.items()}
    assert _config(feature_variant=variant).transform_custom_config() == _config(feature_variant="blocks").transform_custom_config()
    assert _config(feature_variant=variant).model_input_key() == {"blocks": features.BLOCK_COUNTS_KEY, "edges": features.EDGE_PIXELS_KEY, "gray": features.GRAY_PIXELS_KEY}[variant]


@pytest.mark.parametrize(("resolution", "channels"), [(50, 1), (100, 3)])
def test_alexnet_gets_the_resized_photo_in_unit_range(photos, tmp_path, resolution, channels):
    row = _transform(photos[:2], _config(model="alexnet", cnn_resolution=resolution, cnn_channels=channels), tmp_path)[0]

    image = np.asarray(row[features.CNN_IMAGE_KEY])
    assert image.shape == (resolution, resolution, channels)
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.01
