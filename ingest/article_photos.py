"""Photos of one leather article, clean references and validation photos with their masks, as pipeline input.

Two layouts hold them:
* a folder of photos, where NAME.jpg (or .png) is defective when NAME_mask.png
  lies beside it (white = defect) and clean otherwise, as `leather data
  synth-hide` writes hides;
* MVTec AD's: `train/good/` clean photos, `test/<kind>/` photos (`good` is
  clean) and `ground_truth/<kind>/NAME_mask.png`.
`import_article` writes the clean photos and the validation photos as the two
input splits of the reference pipeline's ExampleGen (tf.Examples with the
photo's bytes, its id, label and mask), each shard written whole or not at all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import tempfile

from ingest.errors import IngestError
from ingest.photo_file import DEFAULT_MAX_FILE_BYTES, read_photo
from models import features
from models.image_header import stated_dpi

MASK_SUFFIX = "_mask.png"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
CLEAN_SPLIT, VALIDATION_SPLIT = "clean", "validation"
SHARD_NAME = "photos.tfrecord"
MVTEC_GOOD = "good"
MAX_DPI_DIFFERENCE = 0.02
"""Relative difference of two stated resolutions beyond which clean photos are of different scales."""


@dataclasses.dataclass(frozen=True)
class LabelledPhoto:
    photo: pathlib.Path
    mask: pathlib.Path | None
    """None for a clean photo."""


def _photos(folder: pathlib.Path) -> list[pathlib.Path]:
    if not folder.is_dir():
        raise IngestError(f"{folder} is not a folder" if folder.exists() else f"{folder} does not exist")
    return sorted(
        path for path in folder.iterdir()
        if path.suffix.lower() in PHOTO_SUFFIXES and not path.name.endswith(MASK_SUFFIX) and path.is_file()
    )


def folder_photos(folder: pathlib.Path) -> list[LabelledPhoto]:
    """Every photo of `folder`, sorted by name, with the mask beside it when there is one."""
    pairs = []
    for photo in _photos(folder):
        mask = photo.with_name(photo.stem + MASK_SUFFIX)
        pairs.append(LabelledPhoto(photo, mask if mask.is_file() else None))
    return pairs


def mvtec_photos(root: pathlib.Path) -> tuple[list[LabelledPhoto], list[LabelledPhoto]]:
    """(clean training photos, test photos with masks) of one MVTec AD category folder."""
    train = [LabelledPhoto(photo, None) for photo in _photos(root / "train" / MVTEC_GOOD)]
    test = []
    kinds = sorted(path.name for path in (root / "test").iterdir() if path.is_dir()) if (root / "test").is_dir() else []
    if not train or not kinds:
        raise IngestError(f"{root} is not in MVTec AD's layout: it needs train/{MVTEC_GOOD}/ photos and test/<kind>/ folders")
    for kind in kinds:
        for photo in _photos(root / "test" / kind):
            if kind == MVTEC_GOOD:
                test.append(LabelledPhoto(photo, None))
                continue
            mask = root / "ground_truth" / kind / (photo.stem + MASK_SUFFIX)
            if not mask.is_file():
                raise IngestError(f"{photo} has no mask: expected {mask}")
            test.append(LabelledPhoto(photo, mask))
    return train, test


def read_labelled(photo: LabelledPhoto, max_pixels: int = features.MAX_IMAGE_PIXELS) -> tuple[bytes, bytes]:
    """(photo bytes, mask PNG bytes or b""); IngestError naming the file that cannot be used."""
    files = [photo.photo] + ([photo.mask] if photo.mask else [])
    read = []
    for path in files:
        try:
            data, problem = read_photo(path, DEFAULT_MAX_FILE_BYTES, max_pixels)
        except OSError as error:
            raise IngestError(f"{path}: cannot be read ({error.strerror or error})") from None
        if data is None:
            raise IngestError(f"{path}: {problem}")
        read.append(data)
    return read[0], read[1] if len(read) > 1 else b""


def _example(name: str, data: bytes, mask: bytes) -> bytes:
    def feature(value: bytes | int):
        import tensorflow as tf

        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: feature(data),
        features.IMAGE_ID_KEY: feature(hashlib.sha256(data).hexdigest().encode()),
        features.LABEL_KEY: feature(int(bool(mask))),
        features.MASK_KEY: feature(mask),
        features.PHOTO_NAME_KEY: feature(name.encode()),
    })).SerializeToString()


def _write_split(examples: list[bytes], folder: pathlib.Path) -> None:
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{SHARD_NAME}.", suffix=".partial")
    os.close(fd)
    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            for example in examples:
                writer.write(example)
        target = folder / SHARD_NAME
        if target.is_file() and target.read_bytes() == pathlib.Path(temporary).read_bytes():
            pathlib.Path(temporary).unlink()  # the same photos again: ExampleGen's cache still holds
        else:
            os.replace(temporary, target)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _refuse_mixed_resolutions(photos: list[tuple[pathlib.Path, bytes]]) -> None:
    """IngestError naming two clean photos whose files state different resolutions: an article has one scale."""
    stated = [(path, dpi) for path, data in photos if (dpi := stated_dpi(data)) is not None]
    for path, dpi in stated[1:]:
        first, first_dpi = stated[0]
        if abs(dpi - first_dpi) > MAX_DPI_DIFFERENCE * first_dpi:
            raise IngestError(
                f"{path} states {dpi:g} DPI but {first} {first_dpi:g}: an article's clean photos must share one "
                "scale (pixels per mm of leather); photograph them alike or resize them to one"
            )


def import_article(clean: list[LabelledPhoto], validation: list[LabelledPhoto], out: pathlib.Path) -> None:
    """Writes `out`/clean/ and, with validation photos, `out`/validation/ (else removes an older one).

    Every photo is read and checked first: an IngestError names the first bad
    file before anything is written.
    """
    if not clean:
        raise IngestError("no clean photo to fit the article on: give at least one JPEG or PNG")
    defective = [photo.photo for photo in clean if photo.mask is not None]
    if defective:
        raise IngestError(f"{defective[0]} has a mask beside it: a defect photo among the clean references")
    clean_bytes = [(photo.photo, read_labelled(photo)) for photo in clean]
    _refuse_mixed_resolutions([(path, data) for path, (data, _) in clean_bytes])
    clean_examples = [_example(path.name, data, mask) for path, (data, mask) in clean_bytes]
    validation_examples = [_example(photo.photo.name, *read_labelled(photo)) for photo in validation]
    _write_split(clean_examples, out / CLEAN_SPLIT)
    if validation_examples:
        _write_split(validation_examples, out / VALIDATION_SPLIT)
    else:
        (out / VALIDATION_SPLIT / SHARD_NAME).unlink(missing_ok=True)
