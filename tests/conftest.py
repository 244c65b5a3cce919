"""Shared test fixtures.

The Keras flavour is pinned before any test module imports TensorFlow, and the
real leather photos are found beside the repository (../shared), so a clone
without them skips those tests instead of failing.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import argparse
import collections
import contextlib
import fcntl
import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
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
multi-processing workers, whose start costs more than the work. The shared `synthetic_run` keeps the
default the product runs with."""


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


def _session_folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A folder of this session that every pytest-xdist worker sees: the workers' base folders' parent."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _held(lock_file: pathlib.Path) -> Iterator[None]:
    with lock_file.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> SyntheticRun:
    """`leather run` on 160 synthetic photos, as a user runs it: its own process, Beam's default workers, no --verbose.

    One run of the default model, which pushed it, built once per session by
    whichever xdist worker asks first (the others wait on a file lock, then
    read it) and never changed afterwards: test_quiet_run reads what it
    printed, test_serving_e2e serves a copy of its pushed model, and the
    modules that add runs (test_pipeline_e2e's cached rerun, test_serving_e2e's
    weaker model, test_spans_e2e's spans) add them to copies
    (`copy_of_world`). So no module needs another to have run first, and each
    may run on any worker. The config is rebuilt from the same flags by the
    CLI's own parser.
    """
    from cli.config_args import add_config_arguments, config_from_args
    from ingest.synth import generate_dataset
    from pipeline.evaluation.summary import summarize
    from tfx import v1 as tfx

    shared = _session_folder(tmp_path_factory)
    root, record = shared / "synthetic-run", shared / "synthetic-run.json"
    workdir = root / "work"
    with _held(shared / "synthetic-run.lock"):
        if not record.exists():
            shutil.rmtree(root, ignore_errors=True)
            generate_dataset(root / "images", SYNTHETIC_IMAGES, seed=11)
            finished = leather("run", "--data", str(root / "images"), "--workdir", str(workdir), *SYNTHETIC_RUN_FLAGS)
            record.write_text(json.dumps({"args": finished.args, "returncode": finished.returncode,
                                          "stdout": finished.stdout, "stderr": finished.stderr}))
    finished = subprocess.CompletedProcess(**json.loads(record.read_text()))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    config = config_from_args(parser.parse_args(list(SYNTHETIC_RUN_FLAGS)), str(workdir / "tfrecords"), str(workdir))
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    summary = summarize(config.pipeline_name, connection)
    assert summary.blessed and summary.pushed, summary.lines()
    return SyntheticRun(config, summary, finished)


def copy_of_world(run: SyntheticRun, destination: pathlib.Path, *, own_data: bool = False) -> "PipelineConfig":
    """The shared run's workdir (its ML Metadata, artifacts and pushed model) copied, and a config on the copy.

    For tests that add runs, which must not change what the others see. The
    copied metadata still points at the shared run's artifacts, which nobody
    changes. The data stays the shared run's, so a rerun on it is a cache hit
    (the data folder is part of what TFX's cache compares); `own_data` gives
    the copy its own data folder, for tests that add spans to it.
    """
    import dataclasses

    shutil.copytree(run.config.workdir, destination / "work", ignore=shutil.ignore_patterns("*.lock"))
    data_dir = str(destination / "work" / "tfrecords") if own_data else run.config.data_dir
    return dataclasses.replace(run.config, data_dir=data_dir, workdir=str(destination / "work"))


SHARED_WORLD = "synthetic_run"
UNIT_RANKS = ("world", "slow", "slow-world", "quick")
"""xdist hands out work units in this order (a unit's group is `rank:module`): first the slow module with the
most tests that reads the shared world (it builds it), then the other slow modules, which need no world, then the
slow ones that read the world (built by then, so nobody waits on its lock), then the quick ones."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Work units for `make test`'s xdist workers (`--dist loadgroup`).

    A unit is a module, so its module-scoped fixtures (a LocalDagRunner run, a
    server) are built once. Order only schedules: no test reads what another wrote.
    """
    tests = collections.Counter(item.module.__name__ for item in items)
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    world = {item.module.__name__ for item in items if SHARED_WORLD in item.fixturenames} & slow
    builder = max(sorted(world), key=tests.__getitem__, default=None)

    def rank(module: str) -> str:
        if module == builder:
            return "world"
        if module in slow:
            return "slow-world" if module in world else "slow"
        return "quick"

    for item in items:
        module = item.module.__name__
        item.add_marker(pytest.mark.xdist_group(f"{rank(module)}:{module}"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's loadgroup, handing out units by UNIT_RANKS: by test count alone a two-test module of two
    LocalDagRunner runs came last and kept one worker busy minutes after the other had finished."""
    from xdist.scheduler import LoadGroupScheduling

    def rank(scope: str) -> int:
        return UNIT_RANKS.index(scope.split("@")[-1].split(":")[0])

    class RankedFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node) -> None:
            self.workqueue.move_to_end(min(self.workqueue, key=rank), last=False)
            super()._assign_work_unit(node)

    return RankedFirst(config, log)
