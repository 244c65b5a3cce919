"""Run the pipeline on this machine with LocalDagRunner and an SQLite ML Metadata store."""
import contextlib
import logging
import os
import pathlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from absl import logging as absl_logging
from tfx import v1 as tfx

from components.data_gate import check_shards
from ingest.spans import newest_span_dir
from pipeline.config import PipelineConfig
from pipeline.evaluation.article_summary import ArticleRunSummary
from pipeline.evaluation.summary import RunSummary, summarize
from pipeline.pipeline import create_pipeline
from pipeline.workdir_lock import workdir_lock


class _ComponentProgress(logging.Filter):
    """Turns LocalDagRunner's "Component X is running." and "... is finished." pair into one line when X finishes,
    with its seconds and whether the launcher took its outputs from the cache; lets errors through, not the INFO
    flood. LocalDagRunner runs one component at a time, so the lines in between belong to the running one."""

    def __init__(self) -> None:
        super().__init__()
        self._started = 0.0
        self._cached = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        message = record.getMessage()
        if record.module == "launcher" and message.startswith("A cached execution"):
            self._cached = True
        if record.module != "local_dag_runner" or not message.startswith("Component "):
            return False
        node = message.removeprefix("Component ").rsplit(" is ", 1)[0]
        if message.endswith(" is running."):
            self._started, self._cached = time.monotonic(), False
            return False
        record.msg, record.args = component_line(node, time.monotonic() - self._started, self._cached), ()
        return True


def component_line(node: str, seconds: float, cached: bool) -> str:
    """The one progress line of a finished component."""
    return f"{node} finished in {seconds:.0f} s" + (" (cached)" if cached else "")


class _StderrHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a record arrives, so it follows `worker_output_to`."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def show_component_progress(verbose: bool) -> None:
    """Progress on stderr: a line per finished component plus errors, or every log line when verbose.

    TFX logs through absl at INFO; everything else (Beam, TensorFlow, TFMA)
    reaches stderr only at ERROR unless verbose.
    """
    progress = _StderrHandler()
    progress.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    rest = _StderrHandler()
    rest.setLevel(logging.INFO if verbose else logging.ERROR)
    if not verbose:
        progress.addFilter(_ComponentProgress())
    # Through absl's own setting: TensorFlow's SavedModel export sets absl's verbosity to FATAL and back to
    # what absl reports, so a level set on the logger alone would end at WARNING after the Trainer.
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = absl_logging.get_absl_logger()
    absl_logger.addHandler(progress)
    absl_logger.propagate = False
    logging.getLogger().addHandler(rest)


@contextlib.contextmanager
def worker_output_to(log_path: str) -> Iterator[None]:
    """While inside, file descriptor 2 (TensorFlow's C++ logging, and the inherited stderr of every Beam worker
    process) writes to `log_path`, while Python's `sys.stderr` (progress, errors) stays on the terminal.

    Workers are separate processes: no logging filter reaches them, and some
    print a traceback from TensorFlow's finalisers as they exit. Their output is
    kept in the log, not lost.
    """
    sys.stderr.flush()
    terminal = os.dup(2)
    with open(log_path, "wb") as log:
        os.dup2(log.fileno(), 2)
    python_stderr = sys.stderr
    sys.stderr = open(terminal, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace", closefd=False)
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


def run_local(config: PipelineConfig) -> RunSummary | ArticleRunSummary:
    """Run every component (cached where inputs did not change) and report what the run decided."""
    pathlib.Path(config.workdir).mkdir(parents=True, exist_ok=True)
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    with workdir_lock(config.workdir):
        if config.task == "reference":
            tfx.orchestration.LocalDagRunner().run(create_pipeline(config, connection))
            return ArticleRunSummary.load(config.pipeline_name, connection)
        check_shards(str(newest_span_dir(pathlib.Path(config.data_dir))))
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config, connection))
        return summarize(config.pipeline_name, connection)
