"""The importer's byte limit per file, judged before reading: a 2 GB sparse `.jpg` costs nothing to refuse."""
import json
import pathlib
import time
import tracemalloc

import pytest

from cli.main import main
from image_support import image_bytes, jpeg_claiming
from ingest.importer import MANIFEST_NAME, import_images
from ingest.photo_file import DEFAULT_MAX_FILE_BYTES, HEAD_BYTES


def _source(src: pathlib.Path) -> pathlib.Path:
    for name, seed in (("non defective/a.jpg", 1), ("pinhole/b.jpg", 2)):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(image_bytes("RGB", "JPEG", seed=seed))
    return src


def _sparse(path: pathlib.Path, size: int, head: bytes = b"") -> pathlib.Path:
    """A file of `size` bytes that starts with `head` and takes almost no disk."""
    with open(path, "wb") as file:
        file.write(head)
        file.truncate(size)
    return path


def _import_measured(src: pathlib.Path, out: pathlib.Path, **limits) -> tuple[dict, float, int]:
    """The skipped reasons by path, the import's seconds, and its peak of Python allocations in bytes.

    A first import into a scratch folder loads TensorFlow and traces the descriptor graph outside the measure.
    """
    import_images(src, out.with_name(out.name + "-warm"), **limits)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        report = import_images(src, out, **limits)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {s["path"]: s["reason"] for s in report.skipped}, seconds, peak


def test_a_2gb_sparse_jpg_is_skipped_by_its_size_without_being_read(tmp_path):
    src = _source(tmp_path / "src")
    _sparse(src / "pinhole" / "huge.jpg", 2 * 1024**3)

    skipped, seconds, peak = _import_measured(src, tmp_path / "out")

    assert skipped == {
        "pinhole/huge.jpg": f"2,147,483,648 bytes is above the limit of {DEFAULT_MAX_FILE_BYTES:,} bytes per file"
    }
    assert peak < 20 * 2**20, f"{peak:,} bytes allocated: the file was read"
    assert seconds < 5


def test_a_file_below_the_limit_is_refused_from_its_first_bytes(tmp_path):
    """Junk, or a header claiming too many pixels, is refused after HEAD_BYTES, not after reading 200 MB."""
    src = _source(tmp_path / "src")
    _sparse(src / "pinhole" / "junk.jpg", 200 * 2**20, b"not a photo")
    _sparse(src / "pinhole" / "bomb.jpg", 200 * 2**20, jpeg_claiming(20000, 15000))

    skipped, _, peak = _import_measured(src, tmp_path / "out")

    assert skipped == {
        "pinhole/bomb.jpg": "20000x15000 pixels (300,000,000) is above the limit of 50,000,000",
        "pinhole/junk.jpg": "not a JPEG or PNG image",
    }
    assert peak < 20 * 2**20, f"{peak:,} bytes allocated: a file was read whole"


def test_a_photo_whose_header_lies_beyond_the_first_bytes_is_still_judged_whole(tmp_path):
    src = _source(tmp_path / "src")
    photo = image_bytes("RGB", "JPEG", seed=3)
    comment = b"\xff\xfe" + (65535).to_bytes(2, "big") + bytes(65533)  # a COM segment pushes the frame header out
    (src / "pinhole" / "late.jpg").write_bytes(photo[:2] + comment + photo[2:])
    assert len(comment) > HEAD_BYTES

    report = import_images(src, tmp_path / "out")

    assert report.skipped == [] and report.written == 3


def test_the_byte_limit_is_configurable_and_inclusive(tmp_path, capsys):
    src = _source(tmp_path / "src")
    (src / "pinhole" / "b.jpg").write_bytes(image_bytes("RGB", "JPEG", size=(200, 200), seed=2))
    small, large = ((src / name).stat().st_size for name in ("non defective/a.jpg", "pinhole/b.jpg"))
    assert small < large

    assert main(["data", "import", str(src), str(tmp_path / "kept"), "--max-file-bytes", str(large)]) == 0
    assert "wrote 2 examples" in capsys.readouterr().out
    assert main(["data", "import", str(src), str(tmp_path / "cut"), "--max-file-bytes", str(large - 1)]) == 0
    assert f"skipped pinhole/b.jpg: {large:,} bytes is above the limit of {large - 1:,} bytes per file" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "cut" / "span-1" / MANIFEST_NAME).read_text())
    assert manifest["totals"]["written"] == 1


def test_the_byte_limit_flag_is_documented_and_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["data", "import", "--help"])
    assert "--max-file-bytes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["data", "import", "src", "out", "--max-file-bytes", "0"])
    assert "--max-file-bytes" in capsys.readouterr().err
