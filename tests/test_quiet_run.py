"""Without --verbose, `leather run`, `report` and `serve` print only the project's own lines.

TensorFlow prints CUDA plug-in registration errors when it loads, in the main
process and in every Beam worker; TFMA divides by empty confusion-matrix cells;
Beam workers may print tracebacks from TensorFlow's finalisers as they exit.
A small synthetic run (60 photos, 2 MLP epochs, gates that bless anything, the
colour-variant gate among them) shows all of them when the output is not kept
quiet. The environment is `make demo`'s, which exports TF_CPP_MIN_LOG_LEVEL=2:
a level that still lets the CUDA lines through.
"""
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from ingest.synth import generate_dataset

pytestmark = pytest.mark.slow

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOISE = ("cuFFT", "cuDNN", "cuBLAS", "RuntimeWarning", "Traceback")
PHOTOS = 60


def _environment() -> dict[str, str]:
    """The caller's environment as `make demo` sets it, without what an earlier in-process command exported."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONWARNINGS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return environment


def _leather(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *argv], cwd=REPO_ROOT, env=_environment(),
        capture_output=True, text=True, timeout=1800,
    )


def _noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(word in line for word in NOISE)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("quiet") / "work"


@pytest.fixture(scope="module")
def run(workdir) -> subprocess.CompletedProcess:
    images = workdir.parent / "images"
    generate_dataset(images, PHOTOS, seed=5)
    finished = _leather(
        "run", "--data", str(images), "--workdir", str(workdir), "--model", "mlp", "--epochs", "2",
        "--min-accuracy", "0", "--min-auc", "0", "--min-shifted-auc", "off",
    )
    assert finished.returncode == 0, finished.stderr
    return finished


def test_run_prints_its_progress_and_results_and_nothing_else(run, workdir):
    assert _noise(run.stdout + run.stderr) == []
    assert "Component Trainer is finished." in run.stderr
    assert "Component Evaluator is finished." in run.stderr
    assert "model blessed: yes" in run.stdout
    assert (workdir / "worker-output.log").is_file()


def test_report_prints_the_summary_and_nothing_else(run, workdir):
    report = _leather("report", str(workdir))
    assert report.returncode == 0, report.stderr
    assert _noise(report.stdout + report.stderr) == []
    assert report.stderr == ""
    assert f"report written to {workdir / 'report' / 'index.html'}" in report.stdout


def test_serve_prints_its_own_log_lines_and_nothing_else(run, workdir):
    log = workdir.parent / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--model-dir", str(workdir / "serving"), "--host", "127.0.0.1",
             "--port", "0", "--poll-seconds", "0.2"],
            cwd=REPO_ROOT, env=_environment(), stdout=output, stderr=subprocess.STDOUT, text=True,
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
