"""Shared test fixtures.

The Keras flavour is pinned before any test module imports TensorFlow, and the
real leather photos are found beside the repository (../shared), so a clone
without them skips those tests instead of failing.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
REAL_DATA_DIR = pathlib.Path(
    os.environ.get("LEATHER_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev")
)


@pytest.fixture(scope="session")
def real_data_dir() -> pathlib.Path:
    """The real Kaggle leather photos, or a skip when this clone has none beside it."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real leather photos not found at {REAL_DATA_DIR}")
    return REAL_DATA_DIR


def synthetic_pipeline_config(root: pathlib.Path, images: int = 160, seed: int = 11):
    """A small synthetic data set imported under `root`, and a config that blesses whatever it trains.

    The end-to-end tests check the pipeline's mechanics (artifacts, caching,
    pushing, serving), not model quality, so the absolute floors are zero (the
    robustness gate's too: it is decided on every variant, but always passes).
    """
    from ingest.importer import import_images
    from ingest.synth import generate_dataset
    from models.spec import TrainingConfig
    from pipeline.config import GateConfig, PipelineConfig

    generate_dataset(root / "images", images, seed=seed)
    import_images(root / "images", root / "tfrecords")
    return PipelineConfig(
        data_dir=str(root / "tfrecords"),
        workdir=str(root / "work"),
        training=TrainingConfig(epochs=15),
        gates=GateConfig(min_accuracy=0.0, min_auc=0.0, min_shifted_auc=0.0),
    )
