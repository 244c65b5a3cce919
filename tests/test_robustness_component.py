"""The ColourVariants executor on a tiny hand-written Examples artifact: counts, kept features, shifted pixels."""
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from components.robustness import ColourVariants, ColourVariantsError, Executor
from models import colour_variants, features
from models.photo_descriptors import descriptor_features, photo_descriptors

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RED = np.array([[[255, 0, 0]] * 3] * 2, dtype=np.uint8)
NOISE = np.random.default_rng(3).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
GRAY = np.array([[[40], [200]], [[90], [10]]], dtype=np.uint8)


def _example(image: bytes, label: int, defect_type: str, image_id: str) -> tf.train.Example:
    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: _bytes(image),
        features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        features.DEFECT_TYPE_KEY: _bytes(defect_type.encode()),
        features.IMAGE_ID_KEY: _bytes(image_id.encode()),
    }))


def _examples_artifact(root: pathlib.Path, splits: dict[str, list[tf.train.Example]]) -> standard_artifacts.Examples:
    """An Examples artifact laid out as ImportExampleGen writes it: Split-<name>/data_tfrecord-*.gz."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(root)
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for split, examples in splits.items():
        (root / f"Split-{split}").mkdir(parents=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(str(root / f"Split-{split}" / "data_tfrecord-00000-of-00001.gz"), options) as writer:
            for example in examples:
                writer.write(example.SerializeToString())
    return artifact


def _run(tmp_path: pathlib.Path, splits: dict[str, list[tf.train.Example]], **component_args):
    """Run the executor with the exec properties the component itself would pass; return the output artifact."""
    examples = _examples_artifact(tmp_path / "examples", splits)
    component = ColourVariants(examples=channel_utils.as_channel([examples]), **component_args)
    output = standard_artifacts.Examples()
    output.uri = str(tmp_path / "variants")
    Executor().Do({"examples": [examples]}, {"variant_examples": [output]}, dict(component.exec_properties))
    return output


def _read(output: standard_artifacts.Examples, split: str) -> list[tf.train.Example]:
    files = tf.io.gfile.glob(artifact_utils.get_split_uri([output], split) + "/*.gz")
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in records]


def _value(example: tf.train.Example, key: str):
    feature = example.features.feature[key]
    return (feature.bytes_list.value or feature.int64_list.value)[0]


@pytest.fixture(scope="module")
def variants_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("variants")
    red = _example(tf.io.encode_png(RED).numpy(), 1, "cut", "red")
    described = photo_descriptors(tf.constant([tf.io.encode_png(RED).numpy()]))
    for key, feature in descriptor_features({k: v.numpy()[0] for k, v in described.items()}).items():
        red.features.feature[key].CopyFrom(feature)
    test_split = [
        red,
        _example(tf.io.encode_jpeg(NOISE, quality=70).numpy(), 0, "non defective", "noise"),
        _example(tf.io.encode_png(GRAY).numpy(), 1, "stain", "gray"),
    ]
    train_split = [_example(tf.io.encode_png(RED).numpy(), 0, "non defective", "train-only")]
    output = _run(tmp_path, {"train": train_split, "test": test_split})
    originals = {_value(e, features.IMAGE_ID_KEY).decode(): e for e in test_split}
    return output, originals, _read(output, "test")


def test_every_example_once_per_variant_with_its_features_kept(variants_run):
    output, originals, written = variants_run
    assert artifact_utils.decode_split_names(output.split_names) == ["test"]
    assert examples_utils.get_payload_format(output) == example_gen_pb2.FORMAT_TF_EXAMPLE
    # The Evaluator reads every file under Split-test/, so nothing else may be left there.
    shards = tf.io.gfile.listdir(artifact_utils.get_split_uri([output], "test"))
    assert shards and all(name.startswith("data_tfrecord-") and name.endswith(".gz") for name in shards)
    pairs = sorted((_value(e, features.IMAGE_ID_KEY).decode(), _value(e, features.VARIANT_KEY).decode()) for e in written)
    assert pairs == sorted((image_id, name) for image_id in originals for name in colour_variants.VARIANT_NAMES)
    for example in written:
        original = originals[_value(example, features.IMAGE_ID_KEY).decode()]
        for key in (features.LABEL_KEY, features.DEFECT_TYPE_KEY):
            assert _value(example, key) == _value(original, key)
        assert set(example.features.feature) == set(original.features.feature) | {features.VARIANT_KEY}
        assert _value(example, features.IMAGE_KEY).startswith(PNG_MAGIC)


def test_a_copy_holds_its_own_photo_descriptors_where_the_original_had_them(variants_run):
    _, _, written = variants_run
    hue = {
        (_value(e, features.IMAGE_ID_KEY).decode(), _value(e, features.VARIANT_KEY).decode()): (
            e.features.feature[features.PHOTO_HUE_X_KEY].float_list.value,
            e.features.feature[features.PHOTO_HUE_Y_KEY].float_list.value,
        )
        for e in written
    }
    assert list(hue["red", "original"][0]) == pytest.approx([1.0])
    assert list(hue["red", "original"][1]) == pytest.approx([0.0], abs=1e-6)
    assert list(hue["red", "hue+120"][0]) == pytest.approx([-0.5], abs=1e-3)  # red turned to green
    assert list(hue["red", "hue+120"][1]) == pytest.approx([3**0.5 / 2], abs=1e-3)
    assert list(hue["red", "gray"][0]) == pytest.approx([0.0], abs=1e-6)
    assert hue["noise", "original"] == ([], [])  # imported without descriptors: none are made up


def _pixels(written: list[tf.train.Example], image_id: str, variant: str) -> np.ndarray:
    (example,) = [
        e for e in written
        if _value(e, features.IMAGE_ID_KEY).decode() == image_id and _value(e, features.VARIANT_KEY).decode() == variant
    ]
    return tf.io.decode_png(_value(example, features.IMAGE_KEY)).numpy()


@pytest.mark.parametrize(
    ("variant", "colour"),
    [("original", (255, 0, 0)), ("hue+120", (0, 255, 0)), ("hue-120", (0, 0, 255)), ("hue+60", (255, 255, 0)),
     ("gray", (76, 76, 76)), ("brightness-0.15", (217, 0, 0)), ("saturation*0.5", (255, 128, 128))],
)
def test_a_red_photo_becomes_the_known_colour(variants_run, variant, colour):
    pixels = _pixels(variants_run[2], "red", variant)
    assert pixels.shape == RED.shape
    np.testing.assert_allclose(pixels.reshape(-1, 3), [colour] * 6, atol=1)


def test_the_original_is_the_decoded_jpeg_losslessly_and_a_gray_photo_gains_three_channels(variants_run):
    _, originals, written = variants_run
    decoded_jpeg = tf.io.decode_jpeg(_value(originals["noise"], features.IMAGE_KEY)).numpy()
    np.testing.assert_array_equal(_pixels(written, "noise", "original"), decoded_jpeg)
    np.testing.assert_array_equal(_pixels(written, "gray", "original"), np.repeat(GRAY, 3, axis=-1))
    np.testing.assert_array_equal(_pixels(written, "gray", "hue+180"), np.repeat(GRAY, 3, axis=-1))


def test_every_written_image_is_its_variant_of_the_decoded_photo(variants_run):
    _, originals, written = variants_run
    for image_id, original in originals.items():
        image = tf.io.decode_image(_value(original, features.IMAGE_KEY), channels=3).numpy() / 255.0
        for variant in colour_variants.VARIANTS:
            expected = variant.shift(tf.constant(image, tf.float32)).numpy() * 255.0
            np.testing.assert_allclose(_pixels(written, image_id, variant.name), expected, atol=0.51,
                                       err_msg=f"{image_id} {variant.name}")


def test_a_chosen_subset_of_variants(tmp_path):
    output = _run(tmp_path, {"test": [_example(tf.io.encode_png(RED).numpy(), 1, "cut", "red")]},
                  variants=("gray", "hue+120"))
    assert sorted(_value(e, features.VARIANT_KEY) for e in _read(output, "test")) == [b"gray", b"hue+120"]


def test_an_image_that_does_not_decode_is_named_by_its_image_id(tmp_path):
    broken = _example(tf.io.encode_png(RED).numpy()[:30], 1, "cut", "abc123")
    with pytest.raises(ColourVariantsError, match=r"the image of example abc123 does not decode: Invalid PNG\. Failed"):
        _run(tmp_path, {"test": [broken]})
    assert not list((tmp_path / "variants").rglob("*.gz"))


def test_a_missing_split_and_an_unknown_variant_are_clear_errors(tmp_path):
    with pytest.raises(ColourVariantsError, match=r"have no split 'test' \(splits: train\)"):
        _run(tmp_path / "split", {"train": [_example(tf.io.encode_png(RED).numpy(), 1, "cut", "red")]})
    with pytest.raises(ValueError, match=r"unknown colour variant\(s\) sepia"):
        ColourVariants(examples=channel_utils.as_channel([standard_artifacts.Examples()]), variants=("sepia",))
