"""`leather run` names a mistyped path or a bad flag value in one line before it loads TensorFlow (13 s or more)."""
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, quiet_environment

# `leather ARGV` in-process in a fresh interpreter, then whether TensorFlow was loaded.
LEATHER_THEN_TENSORFLOW = (
    "import sys; from cli.main import main; code = main(sys.argv[1:]); "
    "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'tensorflow not loaded'); sys.exit(code)"
)


def _leather(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LEATHER_THEN_TENSORFLOW, *argv], cwd=REPO_ROOT, env=quiet_environment(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name, content, message", [
    ("nowhere", None, "--data {data} does not exist"),
    ("photos.zip", b"PK", "--data {data} is not a folder"),
])
def test_a_data_path_that_is_not_a_folder_is_one_line_before_tensorflow_loads(tmp_path, name, content, message):
    data = tmp_path / name
    if content is not None:
        data.write_bytes(content)
    result = _leather("run", "--data", str(data), "--workdir", str(tmp_path / "work"))
    assert (result.returncode, result.stderr) == (1, f"leather: error: {message.format(data=data)}\n")
    assert result.stdout == "tensorflow not loaded\n"
    assert not (tmp_path / "work").exists()


def test_a_workdir_that_is_a_file_is_one_line_before_tensorflow_loads(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "work").write_text("notes")
    result = _leather("run", "--data", str(tmp_path / "photos"), "--workdir", str(tmp_path / "work"))
    assert (result.returncode, result.stderr) == (1, f"leather: error: --workdir {tmp_path / 'work'} is a file, not a folder\n")
    assert result.stdout == "tensorflow not loaded\n"


def test_a_bad_flag_value_is_one_line_before_tensorflow_loads(tmp_path):
    (tmp_path / "photos").mkdir()
    result = _leather("run", "--data", str(tmp_path / "photos"), "--workdir", str(tmp_path / "work"), "--min-shifted-auc", "1.2")
    assert (result.returncode, result.stderr) == (1, "leather: error: min_shifted_auc must be in [0, 1] or off, got 1.2\n")
    assert result.stdout == "tensorflow not loaded\n"
    assert not (tmp_path / "work").exists()
