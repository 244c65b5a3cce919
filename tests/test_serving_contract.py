"""One rule for what a version folder is, shared by the Pusher and `leather serve`."""
from components.pusher import newest_version_dir
from models.serving_contract import version_folders
from serving.model_store import ModelStore


def test_version_folders_are_ascii_digit_names_newest_first():
    names = ["9", "10/", "tmp-11", "²", "١٢", "007", "-3", "1e3", ""]

    assert version_folders(names) == [(10, "10"), (9, "9"), (7, "007")]


def test_pusher_and_model_store_read_the_same_version_names(tmp_path):
    for name in ("3", "²", "١٢"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"")

    store = ModelStore(tmp_path)
    store.poll()
    store.poll()  # a version is tried once seen unchanged; these empty ones fail to load

    assert newest_version_dir(str(tmp_path)) == str(tmp_path / "3")
    assert [status.version for status in store.statuses()] == [3]
