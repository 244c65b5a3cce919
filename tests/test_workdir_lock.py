"""One run per workdir: a second run is refused at once naming the first; a killed run's lock is taken over."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipeline.workdir_lock import LOCK_NAME, WorkdirBusy, workdir_lock

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
HOLD = (
    "import sys, time\n"
    "from pipeline.workdir_lock import workdir_lock\n"
    "with workdir_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)
TRY = (
    "import sys\n"
    "from pipeline.workdir_lock import WorkdirBusy, workdir_lock\n"
    "try:\n"
    "    with workdir_lock(sys.argv[1]):\n"
    "        print('acquired')\n"
    "except WorkdirBusy as error:\n"
    "    print(error)\n"
    "    sys.exit(3)\n"
)


def _python(code: str, workdir: pathlib.Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, str(workdir)], cwd=REPO_ROOT, text=True, **kwargs)


@pytest.fixture()
def holder(tmp_path):
    """A separate process holding the lock on tmp_path/work until the test kills it."""
    workdir = tmp_path / "work"
    process = _python(HOLD, workdir, stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == "locked"
    yield workdir, process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_a_second_run_is_refused_at_once_naming_the_running_one(holder):
    workdir, first = holder
    started = time.monotonic()

    second = _python(TRY, workdir, stdout=subprocess.PIPE)
    message = second.communicate(timeout=60)[0].strip()

    assert second.returncode == 3
    assert f"pid {first.pid}" in message and socket.gethostname() in message and "started" in message
    assert str(workdir) in message and "--workdir" in message
    with pytest.raises(WorkdirBusy, match=f"pid {first.pid}"):
        with workdir_lock(workdir):
            pass
    assert time.monotonic() - started < 30


def test_the_lock_of_a_killed_run_is_taken_over(holder, capsys):
    workdir, first = holder
    os.kill(first.pid, signal.SIGKILL)
    first.wait()

    with workdir_lock(workdir) as lock:
        held = json.loads((workdir / LOCK_NAME).read_text())

    assert lock.stale is not None and lock.stale["pid"] == first.pid
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
    assert f"pid {first.pid}" in capsys.readouterr().err
    with workdir_lock(workdir) as again:  # released cleanly: nothing stale next time
        assert again.stale is None


def test_a_lock_released_normally_leaves_no_holder(tmp_path):
    with workdir_lock(tmp_path / "work"):
        pass
    second = _python(TRY, tmp_path / "work", stdout=subprocess.PIPE)
    assert second.communicate(timeout=60)[0].strip() == "acquired"


def test_run_local_is_refused_before_any_work_while_another_run_holds_the_workdir(holder):
    from pipeline.config import PipelineConfig
    from pipeline.local_runner import run_local

    workdir, first = holder
    config = PipelineConfig(data_dir=str(workdir.parent / "no data"), workdir=str(workdir))

    with pytest.raises(WorkdirBusy, match=f"pid {first.pid}"):
        run_local(config)
    assert sorted(p.name for p in workdir.iterdir()) == [LOCK_NAME]


def test_the_same_process_may_nest_the_lock_and_holds_it_until_the_outer_hold_ends(tmp_path):
    workdir = tmp_path / "work"
    with workdir_lock(workdir):
        with workdir_lock(workdir) as inner:
            assert inner.stale is None
        other = _python(TRY, workdir, stdout=subprocess.PIPE)
        message = other.communicate(timeout=60)[0]
        assert message.startswith(f"workdir {workdir} is in use by another run (pid {os.getpid()} ")
    other = _python(TRY, workdir, stdout=subprocess.PIPE)
    assert other.communicate(timeout=60)[0].strip() == "acquired"


def test_leather_run_on_a_busy_workdir_is_one_error_line_before_any_import(holder, tmp_path):
    workdir, first = holder
    images = tmp_path / "images"
    images.mkdir()

    second = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--data", str(images), "--workdir", str(workdir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )

    assert second.returncode == 1
    assert second.stderr.startswith("leather: error: ") and f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (workdir / "tfrecords").exists()
