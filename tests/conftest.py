"""Shared test fixtures.

The Keras flavour is pinned before any test module imports TensorFlow, and the
real leather photos are found beside the repository (../shared), so a clone
without them skips those tests instead of failing.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import argparse
import pathlib
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, NamedTuple

import pytest

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.evaluation.summary import RunSummary

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
multi-processing workers, whose start costs more than the work. The shared `synthetic_run` and
test_gates_real keep the default the product runs with."""


SYNTHETIC_RUN_FLAGS = ("--epochs", "15", "--min-accuracy", "0", "--min-auc", "0", "--min-shifted-auc", "0")
"""The shared run's `leather run` flags: the default model and Beam, gates that bless whatever it trains (the
robustness gate's too: it is decided on every variant, but always passes)."""


def quiet_environment() -> dict[str, str]:
    """The caller's environment as `make demo` sets it, without what an earlier in-process command exported."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONWARNINGS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return environment


def leather(*argv: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`leather ARGV` in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *argv], cwd=REPO_ROOT, env=quiet_environment(),
        capture_output=True, text=True, timeout=timeout,
    )


class SyntheticRun(NamedTuple):
    config: "PipelineConfig"
    summary: "RunSummary"
    output: subprocess.CompletedProcess
    """What `leather run` printed: stdout and stderr."""


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> SyntheticRun:
    """`leather run` on 160 synthetic photos, as a user runs it: its own process, Beam's default workers, no --verbose.

    One run of the default model, which pushed it, shared by the end-to-end
    modules: test_quiet_run reads what it printed, test_pipeline_e2e reruns it
    from the cache, test_serving_e2e serves a copy of its pushed model and adds
    a weaker run that must not push, test_spans_e2e adds spans to a copy
    (`copy_of_world`). None needs another to have run first. The config is
    rebuilt from the same flags by the CLI's own parser.
    """
    from cli.config_args import add_config_arguments, config_from_args
    from ingest.synth import generate_dataset
    from pipeline.evaluation.summary import summarize
    from tfx import v1 as tfx

    root = tmp_path_factory.mktemp("synthetic-run")
    generate_dataset(root / "images", SYNTHETIC_IMAGES, seed=11)
    workdir = root / "work"
    finished = leather("run", "--data", str(root / "images"), "--workdir", str(workdir), *SYNTHETIC_RUN_FLAGS)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    config = config_from_args(parser.parse_args(list(SYNTHETIC_RUN_FLAGS)), str(workdir / "tfrecords"), str(workdir))
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    summary = summarize(config.pipeline_name, connection)
    assert summary.blessed and summary.pushed, summary.lines()
    return SyntheticRun(config, summary, finished)


def copy_of_world(run: SyntheticRun, destination: pathlib.Path) -> "PipelineConfig":
    """The shared run's workdir (its data, ML Metadata, artifacts and pushed model) copied, and a config on the copy.

    For tests that add runs that would change what the others see. The copied
    metadata still points at the shared run's artifacts, which no test changes.
    """
    import dataclasses

    shutil.copytree(run.config.workdir, destination / "work", ignore=shutil.ignore_patterns("*.lock"))
    return dataclasses.replace(
        run.config, data_dir=str(destination / "work" / "tfrecords"), workdir=str(destination / "work")
    )


SHARED_WORLD_FIXTURES = ("synthetic_run",)
"""Session fixtures too costly to build twice: under pytest-xdist the modules that read one run in one worker."""
SLOW_UNIT = "slow:"
"""The prefix of a work unit holding a test marked slow; such units are handed out before the others."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Work units for `make test`'s xdist workers (`--dist loadgroup`).

    A unit is a module, so its module-scoped fixtures (a LocalDagRunner run, a
    server) are built once; modules that read a shared world are one unit.
    Order only schedules: no test reads what another wrote.
    """
    groups = {item.module.__name__: item.module.__name__ for item in items}
    for item in items:
        for fixture in SHARED_WORLD_FIXTURES:
            if fixture in item.fixturenames:
                groups[item.module.__name__] = fixture
    slow = {groups[item.module.__name__] for item in items if item.get_closest_marker("slow")}
    for item in items:
        group = groups[item.module.__name__]
        item.add_marker(pytest.mark.xdist_group(SLOW_UNIT + group if group in slow else group))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's loadgroup, handing out the slow units first: by test count alone a two-test module of two
    LocalDagRunner runs came last and kept one worker busy minutes after the other had finished."""
    from xdist.scheduler import LoadGroupScheduling

    class SlowFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node) -> None:
            slow = next((scope for scope in self.workqueue if scope.startswith(SLOW_UNIT)), None)
            if slow is not None:
                self.workqueue.move_to_end(slow, last=False)
            super()._assign_work_unit(node)

    return SlowFirst(config, log)
