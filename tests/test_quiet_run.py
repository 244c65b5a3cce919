"""Without --verbose, `leather run`, `report` and `serve` print only the project's own lines.

TensorFlow prints CUDA plug-in registration errors when it loads, in the main
process and in every Beam worker; TFMA divides by empty confusion-matrix cells;
Beam workers may print tracebacks from TensorFlow's finalisers as they exit.
The shared synthetic run (conftest's `synthetic_run`: `leather run` in its own
process with Beam's default workers, the colour-variant gate among its gates)
shows all of them when the output is not kept quiet. The environment is `make
demo`'s, which exports TF_CPP_MIN_LOG_LEVEL=2: a level that still lets the CUDA
lines through.
"""
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, copy_of_world, leather, quiet_environment

pytestmark = pytest.mark.slow

NOISE = ("cuFFT", "cuDNN", "cuBLAS", "RuntimeWarning", "Traceback")


def _noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(word in line for word in NOISE)]


@pytest.fixture(scope="module")
def run(synthetic_run) -> subprocess.CompletedProcess:
    return synthetic_run.output


@pytest.fixture(scope="module")
def workdir(synthetic_run) -> pathlib.Path:
    return pathlib.Path(synthetic_run.config.workdir)


def test_run_prints_its_progress_and_results_and_nothing_else(run, workdir):
    assert _noise(run.stdout + run.stderr) == []
    assert re.search(r"^\d\d:\d\d:\d\d Trainer finished in \d+ s$", run.stderr, re.MULTILINE), run.stderr
    assert re.search(r"^\d\d:\d\d:\d\d Evaluator finished in \d+ s$", run.stderr, re.MULTILINE), run.stderr
    assert " is running." not in run.stderr
    assert re.findall(r"^Epoch \d+/\d+", run.stdout, re.MULTILINE) == []
    assert re.search(r"^trainer: epoch \d+/\d+, loss \d\.\d{4}, validation ROC-AUC \d\.\d{4}, ", run.stdout, re.MULTILINE)
    assert "model blessed: yes" in run.stdout
    assert (workdir / "worker-output.log").is_file()


def test_report_prints_the_verdict_and_the_page_and_nothing_else(synthetic_run, tmp_path):
    """Into the workdir's report folder, the default (of a copy of the shared run's workdir, which nobody changes)."""
    workdir = pathlib.Path(copy_of_world(synthetic_run, tmp_path).workdir)
    report = leather("report", str(workdir))
    assert report.returncode == 0, report.stderr
    assert _noise(report.stdout + report.stderr) == []
    assert report.stderr == ""
    verdict, written = report.stdout.splitlines()
    assert verdict == f"model blessed: yes; pushed to: {synthetic_run.summary.pushed_destination}"
    assert written == f"report written to {workdir / 'report' / 'index.html'}"


def test_serve_prints_its_own_log_lines_and_nothing_else(run, workdir, tmp_path):
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--model-dir", str(workdir / "serving"), "--host", "127.0.0.1",
             "--port", "0", "--poll-seconds", "0.2"],
            cwd=REPO_ROOT, env=quiet_environment(), stdout=output, stderr=subprocess.STDOUT, text=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "serving model" not in log.read_text() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    served = log.read_text()
    assert "serving model 'leather' version" in served, served
    assert _noise(served) == []
