"""An article's photos from a folder or an MVTec AD tree, and their import as the reference pipeline's two splits."""
import io
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ingest.article_photos import (
    CLEAN_SPLIT,
    SHARD_NAME,
    VALIDATION_SPLIT,
    LabelledPhoto,
    folder_photos,
    import_article,
    mvtec_photos,
)
from ingest.errors import IngestError
from models import features


def _image(path, size=(24, 16)):
    """A small noisy photo at `path`, PNG or JPEG by its suffix; returns its bytes."""
    pixels = np.random.default_rng(len(str(path))).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG" if path.suffix == ".png" else "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _mask(path, size=(24, 16)):
    """A white box on black, as a defect's mask."""
    pixels = np.zeros((size[1], size[0]), np.uint8)
    pixels[4:8, 5:10] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _records(path):
    return [tf.train.Example.FromString(r) for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def _value(example, key):
    feature = example.features.feature[key]
    return feature.int64_list.value[0] if feature.int64_list.value else feature.bytes_list.value[0]


def test_a_folder_pairs_each_photo_with_the_mask_beside_it(tmp_path):
    for name in ("b.jpg", "a.png", "c.jpeg"):
        _image(tmp_path / name)
    _mask(tmp_path / "b_mask.png")
    _mask(tmp_path / "orphan_mask.png")  # a mask with no photo is neither a photo nor a pair
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "sub.jpg").mkdir()

    pairs = folder_photos(tmp_path)

    assert [(p.photo.name, p.mask and p.mask.name) for p in pairs] == [
        ("a.png", None), ("b.jpg", "b_mask.png"), ("c.jpeg", None),
    ]


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        folder_photos(tmp_path / "nowhere")


def _mvtec(root):
    _image(root / "train" / "good" / "000.png")
    _image(root / "train" / "good" / "001.png")
    _image(root / "test" / "good" / "000.png")
    _image(root / "test" / "cut" / "000.png")
    _image(root / "test" / "cut" / "001.png")
    _mask(root / "ground_truth" / "cut" / "000_mask.png")
    _mask(root / "ground_truth" / "cut" / "001_mask.png")


def test_an_mvtec_tree_gives_clean_training_photos_and_test_photos_with_their_masks(tmp_path):
    _mvtec(tmp_path)

    train, test = mvtec_photos(tmp_path)

    assert [(p.photo.relative_to(tmp_path).as_posix(), p.mask) for p in train] == [
        ("train/good/000.png", None), ("train/good/001.png", None),
    ]
    assert [(p.photo.relative_to(tmp_path).as_posix(), p.mask and p.mask.relative_to(tmp_path).as_posix())
            for p in test] == [
        ("test/cut/000.png", "ground_truth/cut/000_mask.png"),
        ("test/cut/001.png", "ground_truth/cut/001_mask.png"),
        ("test/good/000.png", None),
    ]


def test_an_mvtec_defect_photo_without_its_mask_is_named(tmp_path):
    _mvtec(tmp_path)
    (tmp_path / "ground_truth" / "cut" / "001_mask.png").unlink()
    with pytest.raises(IngestError) as raised:
        mvtec_photos(tmp_path)
    assert str(tmp_path / "test" / "cut" / "001.png") in str(raised.value)
    assert str(tmp_path / "ground_truth" / "cut" / "001_mask.png") in str(raised.value)


def test_a_tree_without_training_photos_is_not_mvtec(tmp_path):
    _image(tmp_path / "test" / "good" / "000.png")
    with pytest.raises(IngestError, match=r"train/good does not exist"):
        mvtec_photos(tmp_path)
    (tmp_path / "train" / "good").mkdir(parents=True)
    with pytest.raises(IngestError, match="MVTec AD's layout"):
        mvtec_photos(tmp_path)


def test_the_import_writes_clean_and_validation_photos_with_their_labels_and_masks(tmp_path):
    _mvtec(tmp_path / "src")
    train, test = mvtec_photos(tmp_path / "src")
    out = tmp_path / "out"

    import_article(train, test, out)

    clean = _records(out / CLEAN_SPLIT / SHARD_NAME)
    validation = _records(out / VALIDATION_SPLIT / SHARD_NAME)
    assert [_value(e, features.LABEL_KEY) for e in clean] == [0, 0]
    assert [_value(e, features.MASK_KEY) for e in clean] == [b"", b""]
    assert [(_value(e, features.PHOTO_NAME_KEY), _value(e, features.LABEL_KEY)) for e in validation] == [
        (b"000.png", 1), (b"001.png", 1), (b"000.png", 0),
    ]
    assert _value(validation[0], features.IMAGE_KEY) == (tmp_path / "src/test/cut/000.png").read_bytes()
    assert _value(validation[0], features.MASK_KEY) == (tmp_path / "src/ground_truth/cut/000_mask.png").read_bytes()
    assert _value(validation[2], features.MASK_KEY) == b""


def test_the_import_refuses_no_clean_photo(tmp_path):
    with pytest.raises(IngestError, match="no clean photo"):
        import_article([], [], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_import_refuses_a_clean_photo_with_a_mask_by_name(tmp_path):
    _image(tmp_path / "a.jpg")
    _image(tmp_path / "b.jpg")
    _mask(tmp_path / "b_mask.png")
    with pytest.raises(IngestError, match=r"b\.jpg has a mask beside it"):
        import_article(folder_photos(tmp_path), [], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unreadable_validation_photo_is_named_and_nothing_is_written(tmp_path):
    _image(tmp_path / "clean" / "a.jpg")
    _image(tmp_path / "val" / "good.jpg")
    (tmp_path / "val" / "broken.jpg").write_bytes(b"\x00garbage, not a JPEG" * 20)
    out = tmp_path / "out"

    with pytest.raises(IngestError) as raised:
        import_article(folder_photos(tmp_path / "clean"), folder_photos(tmp_path / "val"), out)

    assert str(tmp_path / "val" / "broken.jpg") in str(raised.value)
    assert "not a JPEG or PNG" in str(raised.value)
    assert not out.exists() or not list(out.rglob("*")), sorted(out.rglob("*"))


def test_an_unreadable_validation_photo_leaves_an_earlier_import_as_it_was(tmp_path):
    _image(tmp_path / "clean" / "a.jpg")
    out = tmp_path / "out"
    import_article(folder_photos(tmp_path / "clean"), [], out)
    before = (out / CLEAN_SPLIT / SHARD_NAME).read_bytes()
    _image(tmp_path / "clean" / "b.jpg")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 200)  # a JPEG's magic, no image

    with pytest.raises(IngestError, match="broken.jpg"):
        import_article(folder_photos(tmp_path / "clean"), folder_photos(tmp_path / "val"), out)

    assert (out / CLEAN_SPLIT / SHARD_NAME).read_bytes() == before
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [CLEAN_SPLIT, f"{CLEAN_SPLIT}/{SHARD_NAME}"]


def test_an_import_without_validation_photos_removes_an_older_validation_split(tmp_path):
    _image(tmp_path / "clean" / "a.jpg")
    _image(tmp_path / "val" / "v.jpg")
    out = tmp_path / "out"
    import_article(folder_photos(tmp_path / "clean"), folder_photos(tmp_path / "val"), out)
    assert (out / VALIDATION_SPLIT / SHARD_NAME).is_file()

    import_article(folder_photos(tmp_path / "clean"), [], out)

    assert not (out / VALIDATION_SPLIT / SHARD_NAME).exists()
    assert len(_records(out / CLEAN_SPLIT / SHARD_NAME)) == 1
    assert LabelledPhoto(tmp_path / "clean" / "a.jpg", None) == folder_photos(tmp_path / "clean")[0]


def test_clean_photos_that_state_different_resolutions_are_refused_naming_both(tmp_path):
    """Sizes alike but one camera at 300 DPI, the other at 150: the article would mix two scales of grain."""
    for name, dpi in (("a.jpg", 300), ("b.jpg", 150), ("c.jpg", 300)):
        Image.new("RGB", (64, 64), (120, 80, 40)).save(tmp_path / name, dpi=(dpi, dpi))
    with pytest.raises(IngestError, match=r"b\.jpg states 150 DPI but .*a\.jpg 300"):
        import_article(folder_photos(tmp_path), [], tmp_path / "out")
    assert not (tmp_path / "out").exists()
