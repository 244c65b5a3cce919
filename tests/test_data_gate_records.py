"""The data gate's record checks: shards ImportExampleGen cannot read are refused in one line before
the pipeline starts, and undecodable images inside valid shards stop the run before Transform, by image_id.
"""
import hashlib
import os
import pathlib

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from cli.main import main
from components.data_gate import DataGateError, check_images, check_shards, undecodable_images
from image_support import image_bytes, png_bomb
from ingest.importer import import_images
from ingest.synth import generate_dataset
from models import features
from models.photo_descriptors import descriptor_features


def _example(image: bytes, label: int = 0, image_id: str | None = None) -> bytes:
    """An example as a faulty importer might write it: schema-valid (descriptors made up within their domains),
    whatever the image."""
    feature = {
        features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        features.DEFECT_TYPE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"stain"])),
        **descriptor_features({key: 0.25 for key in features.PHOTO_FLOAT_DESCRIPTORS} | {
            key: 40 for key in features.PHOTO_INT_DESCRIPTORS
        }),
    }
    if image_id != "":
        image_id = image_id or hashlib.sha256(image).hexdigest()
        feature[features.IMAGE_ID_KEY] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_id.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path: pathlib.Path, records: list[bytes]) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return path


def test_undecodable_images_are_named_by_image_id_with_the_reason():
    good = image_bytes("RGB", "JPEG", seed=1)
    half = image_bytes("RGB", "JPEG", seed=2)
    records = [
        _example(good),
        _example(b"\x00not an image", image_id="junk"),
        _example(b"", image_id="empty"),
        _example(half[: len(half) // 2], image_id="truncated"),
        _example(png_bomb(8000, gray=True), image_id="bomb"),
        _example(image_bytes("L", "PNG", seed=3)),
    ]

    total, bad = undecodable_images(records, max_pixels=50_000_000)

    assert total == 6
    assert [image_id for image_id, _ in bad] == ["junk", "empty", "truncated", "bomb"]
    reasons = dict(bad)
    assert reasons["junk"] == "not a JPEG or PNG image" and reasons["empty"] == "empty file"
    assert reasons["truncated"].startswith("does not decode")
    assert reasons["bomb"] == "8000x8000 pixels (64,000,000) is above the limit of 50,000,000"


def _examples_artifact(uri: pathlib.Path, splits: dict[str, list[bytes]]) -> standard_artifacts.Examples:
    """An Examples artifact laid out as ExampleGen writes one: a folder of gzipped TFRecords per split."""
    for split, records in splits.items():
        (uri / f"Split-{split}").mkdir(parents=True)
        with tf.io.TFRecordWriter(str(uri / f"Split-{split}" / "data.gz"), options="GZIP") as writer:
            for record in records:
                writer.write(record)
    examples = standard_artifacts.Examples()
    examples.uri = str(uri)
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    return examples


def test_check_images_reads_every_split_and_names_the_first_ids_in_order(tmp_path):
    junk = [_example(b"junk", image_id=f"junk-{i:02d}") for i in range(12)]
    good = [_example(image_bytes("RGB", "JPEG", seed=i)) for i in range(8)]
    examples = _examples_artifact(tmp_path / "bad", {"train": good + junk[:4:-1], "test": junk[:5]})

    with pytest.raises(DataGateError) as error:
        check_images(examples, features.MAX_IMAGE_PIXELS)

    named = ", ".join(f"junk-{i:02d}" for i in range(10))
    assert str(error.value).startswith(
        f"data gate: 12 of 20 examples hold images that cannot be used: not a JPEG or PNG image: image_id {named}; "
        "and 2 more; re-import"
    )
    assert check_images(_examples_artifact(tmp_path / "good", {"train": good[:3]}), features.MAX_IMAGE_PIXELS) == 3


def test_random_bytes_named_like_a_shard_are_one_clear_line(tmp_path):
    shard = tmp_path / "data" / "data-00000-of-00001.tfrecord"
    shard.parent.mkdir()
    shard.write_bytes(os.urandom(5000))

    with pytest.raises(DataGateError) as error:
        check_shards(str(shard.parent))

    message = str(error.value)
    assert "data-00000-of-00001.tfrecord" in message and "not a readable TFRecord file" in message
    assert "\n" not in message


def test_records_that_are_not_examples_or_lack_an_image_id_are_named(tmp_path):
    _write(tmp_path / "a" / "data-00000-of-00001.tfrecord", [_example(b"x"), b"\x07not a proto\xff"])
    with pytest.raises(DataGateError, match=r"record 2 of .*data-00000-of-00001\.tfrecord is not a tf\.Example"):
        check_shards(str(tmp_path / "a"))

    _write(tmp_path / "b" / "data-00000-of-00001.tfrecord", [_example(b"x"), _example(b"y", image_id="")])
    with pytest.raises(DataGateError, match=r"record 2 of .*data-00000-of-00001\.tfrecord has no 'image_id'"):
        check_shards(str(tmp_path / "b"))


def test_a_folder_without_shards_is_refused(tmp_path):
    with pytest.raises(DataGateError, match=r"no data-\*\.tfrecord shards in"):
        check_shards(str(tmp_path))


def test_importer_output_passes_the_shard_check(tmp_path):
    generate_dataset(tmp_path / "images", 8, seed=1, size=64)
    import_images(tmp_path / "images", tmp_path / "shards", shard_size=3)
    assert check_shards(str(tmp_path / "shards")) == 8


def test_cli_run_on_a_random_bytes_shard_says_so_in_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "span-1").mkdir(parents=True)
    (data / "span-1" / "data-00000-of-00001.tfrecord").write_bytes(os.urandom(5000))

    status = main(["run", "--data", str(data), "--workdir", str(tmp_path / "work")])

    error = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(error) == 1 and "not a readable TFRecord file" in error[0] and "Traceback" not in error[0]
    assert not (tmp_path / "work" / "pipeline_root").exists()


@pytest.mark.slow
def test_undecodable_records_in_valid_shards_stop_the_run_before_transform(tmp_path, capsys):
    generate_dataset(tmp_path / "images", 90, seed=5)
    import_images(tmp_path / "images", tmp_path / "clean")
    shards = sorted(str(p) for p in (tmp_path / "clean").glob("*.tfrecord"))
    records = [r.numpy() for r in tf.data.TFRecordDataset(shards)]
    junk = {f"junk-{i:02d}": os.urandom(3000) for i in range(10)}
    junk_records = [_example(image, label=i % 2, image_id=image_id) for i, (image_id, image) in enumerate(junk.items())]
    _write(tmp_path / "data" / "span-1" / "data-00000-of-00001.tfrecord", records + junk_records)
    workdir = tmp_path / "work"

    status = main(["run", "--data", str(tmp_path / "data"), "--workdir", str(workdir),
                   "--beam-arg=--direct_running_mode=in_memory", "--beam-arg=--direct_num_workers=1"])

    error = capsys.readouterr().err
    assert status == 1
    assert "10 of 100 examples hold images that cannot be used" in error
    assert all(image_id in error for image_id in junk)
    assert "Traceback" not in error
    assert not (workdir / "pipeline_root" / "Transform").exists()
