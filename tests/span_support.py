"""Class folders for span tests: a fixed share of real photos, and colour-shifted copies of a folder's photos."""
import pathlib
import shutil

import tensorflow as tf

from models.colour_variants import shift_and_encode_graph


def every_nth_photo(source: pathlib.Path, target: pathlib.Path, n: int, offset: int = 0) -> None:
    """Copies photos offset, offset + n, ... of each class folder in sorted order: a fixed subset, disjoint for other offsets."""
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True)
        for photo in sorted(p for p in folder.iterdir() if p.is_file())[offset::n]:
            shutil.copyfile(photo, target / folder.name / photo.name)


def colour_shifted_copy(source: pathlib.Path, target: pathlib.Path, variant: str) -> None:
    """Every photo of `source`'s class folders as a lossless PNG of the named colour variant (models.colour_variants)."""
    shift = shift_and_encode_graph((variant,))
    for photo in sorted(source.glob("*/*")):
        (target / photo.parent.name).mkdir(parents=True, exist_ok=True)
        (target / photo.parent.name / f"{photo.stem}.png").write_bytes(shift(tf.constant(photo.read_bytes())).numpy()[0])
