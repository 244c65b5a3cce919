"""Procedural leather patch photos: the embedded default data set for demos and fast tests.

The real photos (../shared/data/leather-kaggle-dev) may be absent, and they carry a
colour shortcut: each class was shot on differently coloured hides. Here a hide's colour,
brightness, grain, natural marks and lighting are all drawn from the image's random
stream before the class is looked at, and the defect is painted last, so only the defect
tells the classes apart. Clean hides carry faint versions of the same marks (pores,
creases, small blemishes) and some defects are faint, so no classifier should be perfect.

Every image depends only on (seed, index) and its class, so any image can be regenerated
alone, in any order, byte for byte.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

from ingest.leather_surface import DEFECT_TYPES, IMAGE_SIZE, PAINTERS, draw_hide, paint_defect, photograph
from ingest.source_tree import display
from models.features import DEFAULT_CLEAN_CLASS

CLASSES = (DEFAULT_CLEAN_CLASS, *DEFECT_TYPES)
MIN_SIZE = 64
JPEG_QUALITY = 90
MARKER_NAME = ".leather-synth"
"""Written first into every output folder: --overwrite replaces only a folder holding it."""
CLASS_BLOCK = 1_000_000
"""Classes are shuffled within blocks of this many images, so a huge set starts writing at once."""
# The colour trap (--colour-confound): clean hides brown to tan, defective ones blue.
TRAP_HUE_BANDS = {False: (20.0, 45.0), True: (200.0, 225.0)}
# Stream namespaces under the user's seed: one for the class order, one per image.
_LABEL_STREAM = 0
_IMAGE_STREAM = 1
_PARTIAL = ".partial"
_IMAGE_NAME = re.compile(r"synth_\d{6,}\.jpg(\.partial)?")


def render_patch(
    rng: np.random.Generator, defect: str | None, size: int = IMAGE_SIZE, *, colour_confound: bool = False
) -> np.ndarray:
    """One size x size x 3 uint8 leather photo with the given defect type, or clean for None.

    The hide is drawn before the defect, so the same generator state rendered with and
    without a defect gives the same background: the difference is the defect alone
    (and, with `colour_confound`, the hue band of its class).
    """
    if defect is not None and defect not in PAINTERS:
        raise ValueError(f"unknown defect type {defect!r}; expected one of {', '.join(DEFECT_TYPES)}")
    _check_size(size)
    hide = draw_hide(rng, size, TRAP_HUE_BANDS[defect is not None] if colour_confound else None)
    if defect is not None:
        paint_defect(rng, hide, defect)
    return photograph(hide)


def _check_size(size: int) -> None:
    """Marks scale with the image; below MIN_SIZE pits and cuts shrink under one pixel."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} pixels so defects stay visible, got {size}")


def _check_arguments(count: int, seed: int, defect_share: float) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not 0.0 <= defect_share <= 1.0:
        raise ValueError(f"defect_share must be between 0 and 1, got {defect_share}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def _block_labels(start: int, stop: int, clean_share: float) -> list[str]:
    """The classes of images start..stop-1 in order before shuffling, cut from the whole set's totals.

    Image i of the whole set is clean while i < round(count * clean_share), and the
    defective images take the defect types in turn, so every prefix of blocks holds
    its share and the totals are exact whatever the block size.
    """
    clean_before, clean_after = round(start * clean_share), round(stop * clean_share)
    labels = [DEFAULT_CLEAN_CLASS] * (clean_after - clean_before)
    defective_before, defective_after = start - clean_before, stop - clean_after
    for turn, name in enumerate(DEFECT_TYPES):
        labels += [name] * (_turns(defective_after, turn) - _turns(defective_before, turn))
    return labels


def _turns(defective: int, turn: int) -> int:
    """How many of the first `defective` defective images fall to the defect type at position `turn`."""
    return (defective - turn + len(DEFECT_TYPES) - 1) // len(DEFECT_TYPES)


def assign_classes(count: int, seed: int, defect_share: float = 0.5) -> Iterator[str]:
    """The class folder of each image index in turn, shuffled by `seed` within blocks of CLASS_BLOCK.

    Exactly round(count * (1 - defect_share)) images are clean and the rest are spread as
    evenly as possible over DEFECT_TYPES, so small data sets still have balanced labels.
    A set of at most CLASS_BLOCK images is one block: one shuffle of the whole set.
    """
    _check_arguments(count, seed, defect_share)
    return _classes(count, seed, 1 - defect_share)


def _classes(count: int, seed: int, clean_share: float) -> Iterator[str]:
    shuffler = _stream(seed, _LABEL_STREAM)
    for start in range(0, count, CLASS_BLOCK):
        stop = min(start + CLASS_BLOCK, count)
        labels = _block_labels(start, stop, clean_share)
        yield from (labels[i] for i in shuffler.permutation(stop - start))


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator per key under `seed` (SeedSequence spawn keys never collide)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of image `index`: independent of every other image and of order."""
    return _stream(seed, _IMAGE_STREAM, index)


def _not_generated(out: pathlib.Path) -> list[str]:
    """Entries under `out` that the generator would not have written (relative paths)."""
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.is_symlink() or not (
            (entry.name == MARKER_NAME and entry.is_file()) or (entry.name in CLASSES and entry.is_dir())
        ):
            foreign.append(display(entry.relative_to(out)))
        elif entry.is_dir():
            foreign += [
                display(f.relative_to(out)) for f in sorted(entry.iterdir())
                if f.is_symlink() or not (f.is_file() and _IMAGE_NAME.fullmatch(f.name))
            ]
    return foreign


def _prepare_output(out: pathlib.Path, overwrite: bool) -> None:
    """Refuse any output path but a new or empty folder, or with --overwrite one the generator wrote alone."""
    if out.is_symlink():
        raise ValueError(f"output path {display(out)} is a symbolic link; give the folder itself or another path")
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {display(out)} is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"output folder {display(out)} is not empty; pass --overwrite to replace it")
    if not (out / MARKER_NAME).is_file():
        raise ValueError(
            f"output folder {display(out)} was not written by leather data synth (it holds no {MARKER_NAME}); "
            "refusing to replace it: choose another folder or delete it yourself"
        )
    foreign = _not_generated(out)
    if foreign:
        raise ValueError(
            f"output folder {display(out)} holds {len(foreign)} file(s) leather data synth did not write "
            f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); refusing to replace it"
        )
    shutil.rmtree(out)


def generate_dataset(
    out_dir: pathlib.Path,
    count: int,
    seed: int,
    *,
    defect_share: float = 0.5,
    size: int = IMAGE_SIZE,
    colour_confound: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write `count` JPEG leather photos into one folder per class under `out_dir`, one at a time.

    The layout is what the importer reads: `non defective` for clean patches and one
    folder per defect type, files named synth_<index>.jpg, plus the MARKER_NAME file.
    `progress` is called after each image is on disk. Returns files written per class
    folder. The same arguments always give byte-identical files.
    """
    _check_arguments(count, seed, defect_share)
    _check_size(size)
    out_dir = pathlib.Path(out_dir)
    _prepare_output(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"count": count, "seed": seed, "defect_share": defect_share, "size": size}
    marker = {"written_by": "leather data synth", **settings, "colour_confound": colour_confound}
    (out_dir / MARKER_NAME).write_text(json.dumps(marker) + "\n")
    written = dict.fromkeys(CLASSES, 0)
    for index, label in enumerate(_classes(count, seed, 1 - defect_share)):
        if not written[label]:
            (out_dir / label).mkdir(exist_ok=True)
        defect = None if label == DEFAULT_CLEAN_CLASS else label
        pixels = render_patch(image_rng(seed, index), defect, size, colour_confound=colour_confound)
        path = out_dir / label / f"synth_{index:06d}.jpg"
        partial = path.with_name(path.name + _PARTIAL)  # an interrupted run leaves no truncated JPEG
        Image.fromarray(pixels).save(partial, format="JPEG", quality=JPEG_QUALITY)
        os.replace(partial, path)
        written[label] += 1
        if progress is not None:
            progress(index + 1, count)
    return {name: files for name, files in written.items() if files}
