"""Writing fails (full disk, read-only folder): one line, nothing half-written; names printed escaped."""
import errno
import json
import os
import pathlib

import pytest

from cli.main import main
from image_support import image_bytes
from ingest import output_folder
from ingest.importer import MANIFEST_NAME, IngestError, import_images
from ingest.spans import import_span


def _photos(src: pathlib.Path, seed: int, folders=("non defective", "pinhole")) -> pathlib.Path:
    for index, folder in enumerate(folders):
        (src / folder).mkdir(parents=True, exist_ok=True)
        (src / folder / f"{index}.jpg").write_bytes(image_bytes("RGB", "JPEG", seed=seed + index))
    return src


def _contents(folder: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_full_disk_while_writing_shards_is_one_line_and_keeps_the_old_span(tmp_path, capsys):
    """The shard's partial file is a link to /dev/full: the TFRecord writer meets ENOSPC as on a full disk."""
    data = tmp_path / "data"
    import_span(_photos(tmp_path / "old", 1), data, 1)
    before = _contents(data / "span-1")
    (data / "span-1" / "data-00000-of-00001.tfrecord.partial").symlink_to("/dev/full")

    argv = ["data", "import", str(_photos(tmp_path / "new", 10)), str(data), "--span", "1", "--overwrite"]
    assert main(argv) == 1

    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("checking images")] == [
        f"leather: error: cannot write to {data / 'span-1'}: No space left on device"
    ]
    assert _contents(data / "span-1") == before


def test_a_full_disk_while_writing_the_manifest_keeps_the_old_shards_and_manifest(tmp_path, monkeypatch):
    data = tmp_path / "data"
    import_span(_photos(tmp_path / "old", 1), data, 1)
    before = _contents(data / "span-1")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_folder.pathlib.Path, "write_text", full)
    with pytest.raises(IngestError, match="No space left on device"):
        import_span(_photos(tmp_path / "new", 10), data, 1, overwrite=True)

    assert _contents(data / "span-1") == before, "the new shards were moved in beside the old manifest"


def test_a_read_only_output_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """Root ignores permission bits, so the file system's answer is simulated where the import first writes."""
    data = tmp_path / "data"
    data.mkdir()
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(data)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["data", "import", str(_photos(tmp_path / "src", 1)), str(data)]) == 1

    err = capsys.readouterr().err
    assert err.splitlines() == [f"leather: error: cannot write to {data}/.span-1.lock: Read-only file system"], err
    assert list(data.iterdir()) == []


def test_a_tensorflow_permission_error_is_one_line(tmp_path, monkeypatch):
    import tensorflow as tf

    def denied(*args, **kwargs):
        raise tf.errors.PermissionDeniedError(None, None, "/x/data-00000-of-00001.tfrecord.partial; Permission denied")

    monkeypatch.setattr(tf.io, "TFRecordWriter", denied)
    with pytest.raises(IngestError, match=r"^cannot write to .*out: Permission denied$"):
        import_images(_photos(tmp_path / "src", 1), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_class_and_file_names_with_terminal_escapes_are_printed_escaped(tmp_path, capsys):
    src = _photos(tmp_path / "src", 1, folders=("non defective", "pin\x1b[31mhole"))
    (src / "pin\x1b[31mhole" / "note\x1b]0;owned\x07.jpg").write_text("not a photo")

    assert main(["data", "import", str(src), str(tmp_path / "data")]) == 0

    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "pin\\x1b[31mhole" in out
    assert "skipped pin\\x1b[31mhole/note\\x1b]0;owned\\x07.jpg: not a JPEG or PNG image" in out
    manifest = json.loads((tmp_path / "data" / "span-1" / MANIFEST_NAME).read_text())
    assert "pin\x1b[31mhole" in manifest["classes"], "the class keeps its real name in the data"


def test_a_missing_clean_class_names_the_folders_found_escaped(tmp_path, capsys):
    src = _photos(tmp_path / "src", 1, folders=("cl\x1b[2Jean", "pinhole"))

    assert main(["data", "import", str(src), str(tmp_path / "data")]) == 1

    err = capsys.readouterr().err
    assert "\x1b" not in err and "cl\\x1b[2Jean" in err


def test_a_data_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    src = _photos(tmp_path / "src", 1)

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(IngestError, match=r"^cannot write to .*/data: Read-only file system$"):
        import_span(src, tmp_path / "data")
