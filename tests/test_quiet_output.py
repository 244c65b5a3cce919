"""The quiet default reaches worker processes, and `--verbose` gives everything back (quick checks of the parts
tests/test_quiet_run.py sees working together in a real run)."""
import io
import logging
import os
import subprocess
import sys

import pytest

from cli.progress import NOISY_LOGGERS, configure_output
from models.epoch_progress import VERBOSE_ENV, EpochProgress, keras_verbosity
from pipeline import local_runner
from pipeline.local_runner import worker_output_to

WARNING_CHILD = [sys.executable, "-c", "import warnings; warnings.warn('invalid value', RuntimeWarning)"]


@pytest.fixture
def restored_loggers():
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_quiet_settings_are_inherited_by_child_processes(monkeypatch, restored_loggers):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("PYTHONWARNINGS", "")
    configure_output(verbose=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert subprocess.run(WARNING_CHILD, capture_output=True, text=True, check=True).stderr == ""
    assert all(logging.getLogger(name).level == logging.ERROR for name in NOISY_LOGGERS)


def test_verbose_settings_show_every_line(monkeypatch, restored_loggers):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("PYTHONWARNINGS", "")
    configure_output(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert "RuntimeWarning: invalid value" in subprocess.run(WARNING_CHILD, capture_output=True, text=True, check=True).stderr


def test_worker_output_goes_to_the_log_while_python_stderr_stays_on_the_terminal(tmp_path, capfd):
    log = tmp_path / "worker-output.log"
    with worker_output_to(str(log)):
        os.write(2, b"native line\n")
        subprocess.run([sys.executable, "-c", "import sys; print('worker line', file=sys.stderr)"], check=True)
        print("progress line", file=sys.stderr)
    print("after the run", file=sys.stderr)
    terminal = capfd.readouterr().err
    assert terminal.splitlines() == ["progress line", "after the run"]
    assert log.read_text().splitlines() == ["native line", "worker line"]


def _record(module: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    record = logging.LogRecord("absl", level, f"{module}.py", 1, message, None, None)
    record.module = module
    return record


def test_a_component_is_one_line_when_it_finishes_with_its_seconds_and_whether_it_was_cached(monkeypatch):
    clock = iter([100.0, 112.4, 200.0, 200.2])
    monkeypatch.setattr(local_runner.time, "monotonic", lambda: next(clock))
    progress = local_runner._ComponentProgress()
    shown = []
    for module, message in [
        ("local_dag_runner", "Component Trainer is running."),
        ("launcher", "Going to run a new execution 7"),
        ("local_dag_runner", "Component Trainer is finished."),
        ("local_dag_runner", "Component Transform is running."),
        ("launcher", "A cached execution 8 is used."),
        ("local_dag_runner", "Component Transform is finished."),
    ]:
        record = _record(module, message)
        if progress.filter(record):
            shown.append(record.getMessage())
    assert shown == ["Trainer finished in 12 s", "Transform finished in 0 s (cached)"]
    assert progress.filter(_record("launcher", "boom", logging.ERROR))


def test_keras_epoch_lines_only_with_verbose(monkeypatch, restored_loggers):
    for name in (VERBOSE_ENV, "TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS"):
        monkeypatch.setenv(name, "")
    configure_output(verbose=False)
    assert (os.environ[VERBOSE_ENV], keras_verbosity()) == ("0", 0)
    configure_output(verbose=True)
    assert (os.environ[VERBOSE_ENV], keras_verbosity()) == ("1", 2)


def test_epoch_lines_every_epoch_or_at_most_one_per_interval_and_the_last():
    out = io.StringIO()
    clock = iter([0.0, 1.0, 2.0, 11.0, 12.0])
    progress = EpochProgress(epochs=5, interval=10.0, out=out, clock=lambda: next(clock))
    for epoch in range(4):
        progress.epoch_end(epoch, {"loss": 0.5 - epoch / 10, "val_auc": 0.8 + epoch / 100})
    progress.finish()
    assert out.getvalue().splitlines() == [
        "trainer: epoch 1/5, loss 0.5000, validation ROC-AUC 0.8000, about 4 s left",
        "trainer: epoch 3/5, loss 0.3000, validation ROC-AUC 0.8200, about 10 s left",
        "trainer: epoch 4/5, loss 0.2000, validation ROC-AUC 0.8300, stopped early",
    ]
