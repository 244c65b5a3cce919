"""The importer against hostile or careless source trees: look-alike clean folders, symlinks,
special files, pixel bombs, undecodable folder names, and output folders it does not own.
"""
import json
import os
import pathlib
import warnings

import pytest
import tensorflow as tf
from PIL import Image

from cli.main import main
from image_support import image_bytes, jpeg_claiming, png_bomb
from ingest.importer import MANIFEST_NAME, SHARD_PATTERN, IngestError, import_images
from models import features


def _tree(src: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
    for relative, data in files.items():
        path = src / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return src


def _examples(out: pathlib.Path) -> list[tf.train.Example]:
    files = sorted(str(p) for p in out.glob(SHARD_PATTERN))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]


def _minimal(src: pathlib.Path) -> pathlib.Path:
    return _tree(src, {"non defective/a.jpg": image_bytes("RGB", "JPEG", seed=1),
                       "pinhole/b.jpg": image_bytes("RGB", "JPEG", seed=2)})


# Look-alike clean folders


@pytest.mark.parametrize("look_alike", ["Non Defective", "non defective ", " NON DEFECTIVE"])
def test_a_folder_spelled_like_the_clean_class_is_an_error_naming_both(tmp_path, look_alike):
    src = _minimal(tmp_path / "src")
    _tree(src, {f"{look_alike}/c.jpg": image_bytes("RGB", "JPEG", seed=3)})

    with pytest.raises(IngestError) as error:
        import_images(src, tmp_path / "out")

    assert repr(look_alike) in str(error.value) and "'non defective'" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_every_look_alike_is_named_even_without_the_exact_folder(tmp_path, capsys):
    src = _tree(tmp_path / "src", {name: image_bytes("RGB", "JPEG", seed=i) for i, name in
                                   enumerate(["Non Defective/a.jpg", "non defective /b.jpg", "pinhole/c.jpg"])})

    status = main(["data", "import", str(src), str(tmp_path / "out")])

    error = capsys.readouterr().err
    assert status == 1
    assert "'Non Defective'" in error and "'non defective '" in error and "--clean-class" in error
    assert not (tmp_path / "out").exists()


def test_look_alike_cli_message_names_both_folders(tmp_path, capsys):
    src = _minimal(tmp_path / "src")
    _tree(src, {"Non Defective/c.jpg": image_bytes("RGB", "JPEG", seed=3),
                "non defective /d.jpg": image_bytes("RGB", "JPEG", seed=4)})

    assert main(["data", "import", str(src), str(tmp_path / "out")]) == 1

    error = capsys.readouterr().err
    assert "'Non Defective'" in error and "'non defective '" in error and "'non defective'" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


# Symlinks and special files


@pytest.fixture()
def linked_tree(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    """Every kind of entry the importer must not follow or read, beside two real photos."""
    src = _minimal(tmp_path / "src")
    outside = _tree(tmp_path / "outside", {"clean.jpg": image_bytes("RGB", "JPEG", seed=9)})
    pinhole = src / "pinhole"
    (pinhole / "link out.jpg").symlink_to(outside / "clean.jpg")
    (pinhole / "folder out").symlink_to(outside)
    (pinhole / "loop").symlink_to("loop")
    (pinhole / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (pinhole / "same as b.jpg").symlink_to("b.jpg")
    os.mkfifo(pinhole / "pipe.jpg")
    (src / "stain").symlink_to(outside)
    return {"src": src, "out": tmp_path / "out", "outside": outside}


EXPECTED_SKIPS = {
    "pinhole/link out.jpg": "symlink to outside the source folder",
    "pinhole/folder out": "symlink to outside the source folder",
    "pinhole/loop": "symlink loop",
    "pinhole/dangling.jpg": "dangling symlink",
    "pinhole/pipe.jpg": "not a regular file (FIFO)",
    "stain": "symlink to outside the source folder",
}


def test_links_out_of_src_loops_dangling_links_and_fifos_are_skipped_with_reasons(linked_tree):
    report = import_images(linked_tree["src"], linked_tree["out"])

    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert set(reasons) == set(EXPECTED_SKIPS)
    for path, reason in EXPECTED_SKIPS.items():
        assert reasons[path].startswith(reason), (path, reasons[path])
    assert report.written == 2 and report.duplicates == 1  # a link inside SRC is read like its target
    outside_bytes = (linked_tree["outside"] / "clean.jpg").read_bytes()
    assert all(e.features.feature[features.IMAGE_KEY].bytes_list.value[0] != outside_bytes
               for e in _examples(linked_tree["out"]))
    manifest = json.loads((linked_tree["out"] / MANIFEST_NAME).read_text())
    assert {s["path"] for s in manifest["skipped"]} == set(EXPECTED_SKIPS)
    assert "stain" not in manifest["classes"]


def test_skipped_links_are_printed_and_strict_fails_on_them(linked_tree, capsys):
    assert main(["data", "import", str(linked_tree["src"]), str(linked_tree["out"])]) == 0
    printed = capsys.readouterr().out
    for path, reason in EXPECTED_SKIPS.items():
        assert f"skipped {path}: {reason}" in printed

    status = main(["data", "import", str(linked_tree["src"]), str(linked_tree["out"]), "--strict", "--overwrite"])

    error = capsys.readouterr().err
    assert status == 1
    assert "6 file(s)" in error and "pinhole/pipe.jpg: not a regular file (FIFO)" in error


# Pixel bombs


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> pathlib.Path:
    src = tmp_path_factory.mktemp("bombs") / "src"
    return _tree(src, {
        "non defective/ok.jpg": image_bytes("RGB", "JPEG", seed=1),
        "pinhole/ok.jpg": image_bytes("RGB", "JPEG", seed=2),
        "pinhole/rgb bomb.png": png_bomb(13000, gray=False),
        "pinhole/gray bomb.png": png_bomb(23000, gray=True),
        "pinhole/jpeg bomb.jpg": jpeg_claiming(20000, 15000),
    })


def test_images_above_the_pixel_limit_are_refused_from_the_header(bombs, tmp_path, monkeypatch):
    decoded = []
    real_decode = tf.io.decode_image
    monkeypatch.setattr(tf.io, "decode_image", lambda data, **kw: decoded.append(len(data)) or real_decode(data, **kw))

    report = import_images(bombs, tmp_path / "out")

    reasons = {s["path"]: s["reason"] for s in report.skipped}
    limit = f"{features.MAX_IMAGE_PIXELS:,}"
    assert reasons == {
        "pinhole/rgb bomb.png": f"13000x13000 pixels (169,000,000) is above the limit of {limit}",
        "pinhole/gray bomb.png": f"23000x23000 pixels (529,000,000) is above the limit of {limit}",
        "pinhole/jpeg bomb.jpg": f"20000x15000 pixels (300,000,000) is above the limit of {limit}",
    }
    assert report.written == 2 and len(decoded) == 2  # only the two small photos reached the decoder


def test_strict_cli_refuses_bombs_in_one_line_without_pillow_warnings(bombs, tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = main(["data", "import", str(bombs), str(tmp_path / "out"), "--strict"])

    error = capsys.readouterr().err
    assert status == 1
    assert "3 file(s)" in error and "23000x23000 pixels" in error
    assert "Traceback" not in error and "DecompressionBomb" not in error
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("limit", "written"), [(240_000, 2), (239_999, 1)])
def test_max_pixels_is_configurable_and_inclusive(tmp_path, limit, written):
    src = _minimal(tmp_path / "src")
    _tree(src, {"pinhole/b.jpg": image_bytes("RGB", "JPEG", size=(600, 400), seed=2)})

    status = main(["data", "import", str(src), str(tmp_path / "out"), "--max-pixels", str(limit)])

    assert status == 0
    assert len(_examples(tmp_path / "out" / "span-1")) == written


@pytest.mark.parametrize("max_pixels", [0, features.MAX_IMAGE_PIXELS + 1])
def test_max_pixels_must_lie_within_what_the_decoder_accepts(tmp_path, max_pixels):
    with pytest.raises(IngestError, match="max_pixels must lie between 1 and 50,000,000"):
        import_images(_minimal(tmp_path / "src"), tmp_path / "out", max_pixels=max_pixels)


# Names that are not UTF-8, and output folders the importer does not own


def test_a_class_folder_named_with_non_utf8_bytes_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    src = _minimal(tmp_path / "src")
    folder = pathlib.Path(os.fsdecode(os.fsencode(src) + b"/caf\xe9"))
    folder.mkdir()
    (folder / "c.jpg").write_bytes(image_bytes("RGB", "JPEG", seed=5))

    status = main(["data", "import", str(src), str(tmp_path / "out")])

    error = capsys.readouterr().err
    assert status == 1
    assert "caf\\xe9" in error and "UTF-8" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_a_skipped_file_with_a_non_utf8_name_is_listed_readably(tmp_path, capsys):
    src = _minimal(tmp_path / "src")
    pathlib.Path(os.fsdecode(os.fsencode(src) + b"/pinhole/notes\xff.jpg")).write_text("not an image")

    assert main(["data", "import", str(src), str(tmp_path / "out")]) == 0

    assert "skipped pinhole/notes\\xff.jpg: not a JPEG or PNG image" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "out" / "span-1" / MANIFEST_NAME).read_text())
    assert [s["path"] for s in manifest["skipped"]] == ["pinhole/notes\\xff.jpg"]


def test_no_partial_shard_is_left_when_writing_fails(tmp_path, monkeypatch):
    src = _minimal(tmp_path / "src")
    from ingest import importer

    def fail(*args, **kwargs):
        raise IngestError("disk full")

    monkeypatch.setattr(importer, "_example", fail)
    with pytest.raises(IngestError, match="disk full"):
        import_images(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", [".", "out", "pinhole/out"])
def test_an_output_folder_inside_the_source_is_refused(tmp_path, inside):
    src = _minimal(tmp_path / "src")

    with pytest.raises(IngestError, match="inside the source folder"):
        import_images(src, src / inside)
    assert sorted(p.name for p in src.iterdir()) == ["non defective", "pinhole"]
    assert sorted(p.name for p in (src / "pinhole").iterdir()) == ["b.jpg"]


def test_overwrite_replaces_only_the_importers_own_shards(tmp_path):
    src = _minimal(tmp_path / "src")
    out = tmp_path / "out"
    import_images(src, out, shard_size=1)
    (out / "notes.txt").write_text("mine")

    report = import_images(src, out, overwrite=True, shard_size=10)

    assert sorted(p.name for p in out.iterdir()) == sorted([*report.shards, MANIFEST_NAME, "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("imported_before", [False, True])
def test_overwrite_refuses_shards_the_importer_did_not_write(tmp_path, imported_before):
    src = _minimal(tmp_path / "src")
    out = tmp_path / "out"
    if imported_before:
        import_images(src, out)
    out.mkdir(exist_ok=True)
    (out / "data-00007-of-00009.tfrecord").write_bytes(b"user's own records")

    with pytest.raises(IngestError, match=r"data-00007-of-00009\.tfrecord.*not written by this importer"):
        import_images(src, out, overwrite=True)
    assert (out / "data-00007-of-00009.tfrecord").read_bytes() == b"user's own records"


def test_overwrite_refuses_a_manifest_the_importer_did_not_write(tmp_path):
    src = _minimal(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text('{"name": "my web app"}')

    with pytest.raises(IngestError, match="manifest.json.*not written by this importer"):
        import_images(src, out, overwrite=True)
    assert (out / MANIFEST_NAME).read_text() == '{"name": "my web app"}'


def test_an_output_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(IngestError, match="is not a folder"):
        import_images(_minimal(tmp_path / "src"), tmp_path / "out")
