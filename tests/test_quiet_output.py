"""The quiet default reaches worker processes, and `--verbose` gives everything back (quick checks of the parts
tests/test_quiet_run.py sees working together in a real run)."""
import logging
import os
import subprocess
import sys

import pytest

from cli.progress import NOISY_LOGGERS, configure_output
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
