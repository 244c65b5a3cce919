"""The data of an experiment: raw examples from TFRecords, features from the pipeline's own Transform code.

Features come from `models.preprocessing.preprocessing_fn` run by tf.Transform
in-process (no second implementation), once per preprocessing setting, and are
cached beside the results so a resumed grid does not compute them again.
"""
import dataclasses
import hashlib
import json
import pathlib

import numpy as np
import tensorflow as tf

from ingest.importer import SHARD_PATTERN
from models import features
from models.preprocessing import preprocessing_fn
from models.spec import PreprocessingConfig, TrainingConfig, transform_custom_config


_RAW_SPEC = {
    features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    features.IMAGE_ID_KEY: tf.io.FixedLenFeature([], tf.string),
}


@dataclasses.dataclass
class Examples:
    images: list[bytes]
    labels: np.ndarray
    image_ids: list[str]
    defect_types: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def read_examples(tfrecord_dir: pathlib.Path) -> Examples:
    """Every example of the importer's shards, in file order."""
    files = sorted(str(p) for p in tfrecord_dir.glob(SHARD_PATTERN))
    if not files:
        raise FileNotFoundError(f"no {SHARD_PATTERN} shards in {tfrecord_dir}")
    spec = {**_RAW_SPEC, features.DEFECT_TYPE_KEY: tf.io.FixedLenFeature([], tf.string)}
    rows = [tf.io.parse_single_example(record, spec) for record in tf.data.TFRecordDataset(files)]
    return Examples(
        images=[r[features.IMAGE_KEY].numpy() for r in rows],
        labels=np.array([int(r[features.LABEL_KEY]) for r in rows], np.int64),
        image_ids=[r[features.IMAGE_ID_KEY].numpy().decode() for r in rows],
        defect_types=[r[features.DEFECT_TYPE_KEY].numpy().decode() for r in rows],
    )


def _cache_key(examples: Examples, custom_config: dict) -> str:
    digest = hashlib.sha256(json.dumps(custom_config, sort_keys=True).encode())
    for image_id in examples.image_ids:
        digest.update(image_id.encode())
    return digest.hexdigest()[:20]


def transform(
    examples: Examples, preprocessing: PreprocessingConfig, training: TrainingConfig, cache_dir: pathlib.Path
) -> dict[str, np.ndarray]:
    """Transformed features of every example as arrays keyed like the Transform output (cached)."""
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    custom_config = transform_custom_config(preprocessing, training)
    cached = cache_dir / f"features-{_cache_key(examples, custom_config)}.npz"
    if cached.exists():
        with np.load(cached) as stored:
            return dict(stored)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_RAW_SPEC))
    rows = [
        {features.IMAGE_KEY: image, features.LABEL_KEY: int(label), features.IMAGE_ID_KEY: image_id}
        for image, label, image_id in zip(examples.images, examples.labels, examples.image_ids)
    ]
    with tft_beam.Context(temp_dir=str(cache_dir / "tft_tmp"), force_tf_compat_v1=False):
        (transformed, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, custom_config)
        )
    by_id = {row[features.IMAGE_ID_KEY].decode(): row for row in transformed}
    ordered = [by_id[image_id] for image_id in examples.image_ids]
    arrays = {key: np.stack([np.asarray(row[key]) for row in ordered]) for key in ordered[0] if key != features.IMAGE_ID_KEY}
    arrays[features.BRIGHTNESS_KEY] = arrays[features.BRIGHTNESS_KEY].astype(str)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **arrays)
    return arrays
