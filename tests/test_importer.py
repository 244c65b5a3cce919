"""The importer: every file becomes one correctly labelled example or a named, explained skip."""
import hashlib
import json
import os
import pathlib

import pytest
import tensorflow as tf

from cli.main import main
from image_support import image_bytes
from ingest.importer import MANIFEST_NAME, SHARD_PATTERN, IngestError, import_images
from models import features


@pytest.fixture()
def image_tree(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    """A source tree with every kind of trouble the issue names, and its expected outcome."""
    src = tmp_path / "src"
    clean, cut, stain, empty = (src / name for name in ("non defective", "cut (deep)", "stain", "empty class"))
    for folder in (clean, cut, stain, empty):
        folder.mkdir(parents=True)
    jpeg = image_bytes("RGB", "JPEG", seed=1)
    (clean / "good photo (1).jpg").write_bytes(jpeg)
    (clean / "good photo (1) copy.jpg").write_bytes(jpeg)
    (clean / "gray.png").write_bytes(image_bytes("L", "PNG", seed=2))
    (cut / "rgba image.png").write_bytes(image_bytes("RGBA", "PNG", seed=3))
    (cut / "big.jpg").write_bytes(image_bytes("RGB", "JPEG", size=(600, 400), seed=4))
    corrupt = image_bytes("RGB", "JPEG", seed=5)
    (cut / "corrupt.jpg").write_bytes(corrupt[: len(corrupt) // 2])
    (stain / "notes.jpg").write_text("this is not an image\n")
    (stain / "empty.jpg").write_bytes(b"")
    (stain / "stain 1.jpg").write_bytes(image_bytes("RGB", "JPEG", seed=6))
    (src / "README.txt").write_text("files at the root are ignored\n")
    return {"src": src, "out": tmp_path / "out"}


def _read_examples(out: pathlib.Path) -> list[tf.train.Example]:
    files = sorted(str(p) for p in out.glob(SHARD_PATTERN))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]


def _value(example: tf.train.Example, key: str):
    feature = example.features.feature[key]
    return feature.int64_list.value[0] if feature.HasField("int64_list") else feature.bytes_list.value[0]


def test_import_writes_each_distinct_image_once_with_its_label(image_tree):
    report = import_images(image_tree["src"], image_tree["out"], shard_size=2)

    examples = _read_examples(image_tree["out"])
    by_type = {}
    for example in examples:
        by_type.setdefault(_value(example, features.DEFECT_TYPE_KEY).decode(), []).append(example)
    assert {k: len(v) for k, v in by_type.items()} == {"non defective": 2, "cut (deep)": 2, "stain": 1}
    for name, group in by_type.items():
        assert {_value(e, features.LABEL_KEY) for e in group} == {0 if name == "non defective" else 1}
    for example in examples:
        data = _value(example, features.IMAGE_KEY)
        assert _value(example, features.IMAGE_ID_KEY).decode() == hashlib.sha256(data).hexdigest()
    source_bytes = {p.read_bytes() for p in image_tree["src"].rglob("*.*")}
    assert all(_value(e, features.IMAGE_KEY) in source_bytes for e in examples)
    assert report.written == 5 and report.duplicates == 1
    assert len(report.shards) == 3


def test_import_reports_every_skipped_file_with_its_reason(image_tree):
    report = import_images(image_tree["src"], image_tree["out"])

    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"cut (deep)/corrupt.jpg", "stain/notes.jpg", "stain/empty.jpg"}
    assert reasons["stain/empty.jpg"] == "empty file"
    assert reasons["stain/notes.jpg"] == "not a JPEG or PNG image"
    assert reasons["cut (deep)/corrupt.jpg"].startswith("does not decode")

    manifest = json.loads((image_tree["out"] / MANIFEST_NAME).read_text())
    assert manifest["classes"]["empty class"] == {"label": 1, "files": 0, "written": 0, "duplicates": 0}
    assert manifest["classes"]["non defective"] == {"label": 0, "files": 3, "written": 2, "duplicates": 1}
    assert manifest["totals"] == {
        "written": 5, "duplicates_dropped": 1, "skipped": 3, "by_label": {"0": 2, "1": 3}
    }
    assert manifest["ignored_root_files"] == ["README.txt"]


def test_strict_import_fails_before_writing_anything(image_tree):
    with pytest.raises(IngestError, match="3 file"):
        import_images(image_tree["src"], image_tree["out"], strict=True)
    assert not image_tree["out"].exists()


def test_strict_cli_exits_with_status_1_and_names_the_files(image_tree, capsys):
    status = main(["data", "import", str(image_tree["src"]), str(image_tree["out"]), "--strict"])

    error = capsys.readouterr().err
    assert status == 1
    assert "corrupt.jpg" in error and "notes.jpg" in error and "empty.jpg" in error
    assert "Traceback" not in error


def test_identical_bytes_under_two_classes_are_kept_out_not_mislabelled(tmp_path):
    data = image_bytes("RGB", "JPEG", seed=9)
    for name in ("non defective", "stain"):
        (tmp_path / "src" / name).mkdir(parents=True)
        (tmp_path / "src" / name / "same.jpg").write_bytes(data)
    (tmp_path / "src" / "stain" / "other.jpg").write_bytes(image_bytes("RGB", "JPEG", seed=10))

    report = import_images(tmp_path / "src", tmp_path / "out")

    assert report.written == 1
    assert [s["reason"] for s in report.skipped] == [
        "identical bytes filed under several classes: non defective, stain"
    ]


def test_missing_clean_class_is_an_error_naming_the_folders(image_tree):
    with pytest.raises(IngestError, match="no clean-class folder 'clean'.*found: cut \\(deep\\), empty class"):
        import_images(image_tree["src"], image_tree["out"], clean_class="clean")


def test_output_with_old_shards_needs_overwrite(image_tree):
    import_images(image_tree["src"], image_tree["out"], shard_size=1)
    with pytest.raises(IngestError, match="--overwrite"):
        import_images(image_tree["src"], image_tree["out"])
    report = import_images(image_tree["src"], image_tree["out"], overwrite=True, shard_size=10)
    assert sorted(p.name for p in image_tree["out"].glob(SHARD_PATTERN)) == report.shards == ["data-00000-of-00001.tfrecord"]


def test_reimport_leaves_unchanged_shards_untouched_so_tfx_caching_holds(image_tree):
    """ImportExampleGen fingerprints shards by mtime: an identical re-import must not rewrite them."""
    import_images(image_tree["src"], image_tree["out"], shard_size=2)
    shards = sorted(image_tree["out"].glob(SHARD_PATTERN))
    for shard in shards:
        os.utime(shard, ns=(1_000_000_000, 1_000_000_000))

    import_images(image_tree["src"], image_tree["out"], shard_size=2, overwrite=True)

    assert sorted(image_tree["out"].glob(SHARD_PATTERN)) == shards
    assert [s.stat().st_mtime_ns for s in shards] == [1_000_000_000] * len(shards)
    assert not list(image_tree["out"].glob("*.partial"))
    (image_tree["src"] / "stain" / "stain 1.jpg").unlink()
    import_images(image_tree["src"], image_tree["out"], shard_size=2, overwrite=True)
    assert len(_read_examples(image_tree["out"])) == 4
