"""The Pusher executor's check for a model the serving directory already serves."""
import pathlib

from components.pusher import newest_version_dir, same_model_files


def _model(root: pathlib.Path, weights: bytes) -> pathlib.Path:
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"graph")
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return root


def test_newest_version_is_the_highest_number_not_the_latest_name(tmp_path):
    assert newest_version_dir(str(tmp_path / "absent")) is None
    assert newest_version_dir(str(tmp_path)) is None
    for name in ("9", "10", "2", "tmp-11"):
        (tmp_path / name).mkdir()
    assert newest_version_dir(str(tmp_path)) == str(tmp_path / "10")


def test_same_model_files_compares_paths_and_bytes(tmp_path):
    model = _model(tmp_path / "model", b"w" * 100)
    assert same_model_files(str(model), str(_model(tmp_path / "copy", b"w" * 100)))
    assert not same_model_files(str(model), str(_model(tmp_path / "retrained", b"w" * 99 + b"x")))
    extra = _model(tmp_path / "extra", b"w" * 100)
    (extra / "assets").mkdir()
    (extra / "assets" / "vocab.txt").write_text("a")
    assert not same_model_files(str(model), str(extra))
