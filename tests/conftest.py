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


SYNTHETIC_IMAGES = 160
IN_MEMORY_BEAM = ("--direct_running_mode=in_memory",)
"""Beam for the small synthetic runs: on 60 photos a run took 68 s in memory and 107 s with the default
multi-processing workers, whose start costs more than the work. test_quiet_run and test_gates_real keep
the default the product runs with."""


def synthetic_pipeline_config(root: pathlib.Path, images: int = SYNTHETIC_IMAGES, seed: int = 11):
    """A small synthetic data set imported under `root`, and a config that blesses whatever it trains.

    The end-to-end tests check the pipeline's mechanics (artifacts, caching,
    pushing, serving), not model quality, so the absolute floors are zero (the
    robustness gate's too: it is decided on every variant, but always passes).
    """
    from ingest.spans import import_span
    from ingest.synth import generate_dataset
    from models.spec import TrainingConfig
    from pipeline.config import GateConfig, PipelineConfig

    generate_dataset(root / "images", images, seed=seed)
    import_span(root / "images", root / "tfrecords", 1)
    return PipelineConfig(
        data_dir=str(root / "tfrecords"),
        workdir=str(root / "work"),
        training=TrainingConfig(epochs=15),
        gates=GateConfig(min_accuracy=0.0, min_auc=0.0, min_shifted_auc=0.0),
        beam_args=IN_MEMORY_BEAM,
    )


# Modules that share `synthetic_run`, in the order they must see it: those that
# count its executions and versions before those that add runs and versions, and
# the one that adds spans to its data folder last.
SYNTHETIC_RUN_ORDER = ("test_pipeline_e2e.py", "test_serving_e2e.py", "test_spans_e2e.py")


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory):
    """One LocalDagRunner run on synthetic leather that pushed a model, shared by the end-to-end modules.

    A run costs about two minutes here. test_pipeline_e2e reruns it from the
    cache and counts every execution; test_serving_e2e then serves its model,
    adds a weaker run and copies in a new version, so it must come second:
    `pytest_collection_modifyitems` keeps that order whatever the command line's.
    """
    from pipeline.local_runner import run_local

    config = synthetic_pipeline_config(tmp_path_factory.mktemp("synthetic-run"))
    summary = run_local(config)
    assert summary.blessed and summary.pushed, summary.lines()
    return config, summary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SYNTHETIC_RUN_ORDER.index(name) if name in SYNTHETIC_RUN_ORDER else -1

    sharing = sorted((item for item in items if rank(item) >= 0), key=rank)
    slots = iter(sharing)
    items[:] = [next(slots) if rank(item) >= 0 else item for item in items]
