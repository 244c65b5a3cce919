"""Synthetic whole hides with their truth: large leather photos, planted defects and a mask per photo.

Whole-hide inspection is scored the way MVTec AD scores anomaly detection, which
needs hide-sized photos whose defect pixels are known. A hide here is the
leather of `leather data synth` at its patch scale (a 227 px tile of a hide
shows what a 227 px training photo shows, unless the grain scale says
otherwise), recoloured to a named base colour, with faint natural marks all over
(as many per patch-sized area as a training photo carries) and a few clear
defects of the existing kinds, each painted at the patch scale into its own
patch-sized window. A defect's truth is where painting it changed the surface
enough to see.

Every hide depends only on (seed, index), so any hide can be regenerated alone.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from ingest.leather_surface import (
    DEFECT_TYPES,
    IMAGE_SIZE,
    Hide,
    draw_hide,
    paint_defect,
    paint_natural_mark,
    photograph,
)
from ingest.source_tree import display
from ingest.synth import JPEG_QUALITY, image_rng

HIDE_COLOURS: dict[str, tuple[float, float, float]] = {
    "brown": (110.0, 72.0, 44.0),
    "tan": (196.0, 150.0, 100.0),
    "black": (42.0, 40.0, 38.0),
    "burgundy": (105.0, 32.0, 40.0),
    "navy": (34.0, 44.0, 84.0),
    "olive": (96.0, 92.0, 58.0),
    "cream": (218.0, 204.0, 170.0),
    "grey": (140.0, 138.0, 135.0),
}
"""Base colours (mean RGB on the 0-255 scale) a hide is recoloured to."""
MIN_WIDTH, MIN_HEIGHT = 2 * IMAGE_SIZE, 2 * IMAGE_SIZE
MAX_PIXELS = 40_000_000
"""Largest hide drawn: the square canvas behind it holds a dozen float arrays of its size."""
NATURAL_MARKS_PER_PATCH = 1.5
"""Faint marks per IMAGE_SIZE x IMAGE_SIZE area, as `draw_hide` puts on each training photo."""
DEFECT_GAP = 32
"""Pixels between two defects' windows (each IMAGE_SIZE square, in its own cell of a grid), so masks never touch."""
# What counts as a visible change of the surface where a defect was painted (the mask).
_HEIGHT_CHANGE = 0.15
_ALBEDO_CHANGE = 0.05
_MASK_CLOSING = 3
_MIN_PART_PIXELS = 4
"""Specks of change smaller than this stay out of the mask: no one sees them, yet each would count as a defect."""
MARKER_NAME = ".leather-synth-hide"
MANIFEST_NAME = "hides.json"
_PARTIAL = ".partial"
_OWN_FILE = re.compile(r"(hide_\d{4,}(_mask\.png|\.jpg)|hides\.json)(\.partial)?")
_SPEC_STREAM = 2
"""Stream namespace of the hide specs under the seed, beside synth.py's label (0) and image (1) streams."""


@dataclasses.dataclass(frozen=True)
class HideSpec:
    """What to draw; the same spec and stream always give the same hide."""

    width: int
    height: int
    colour: str
    grain: float
    """Grain and natural-mark size relative to the training photos (1.0: the same)."""
    defects: tuple[str, ...]


@dataclasses.dataclass
class SynthHide:
    pixels: np.ndarray
    """[height, width, 3] uint8."""
    mask: np.ndarray
    """[height, width] bool: the defect pixels."""
    defects: list[dict]
    """Per defect: its type, its mask's box [x, y, width, height] and area in pixels."""


def _window(hide: Hide, y: int, x: int, side: int, scale: float) -> Hide:
    """A view of a square of the hide: the painters edit it in place, so they paint on the hide itself."""
    view = np.s_[y : y + side, x : x + side]
    return dataclasses.replace(
        hide, height=hide.height[view], albedo=hide.albedo[view], light=hide.light[view], noise=hide.noise[view],
        scale=scale,
    )


def _slots(width: int, height: int) -> tuple[int, int]:
    """Columns and rows of the defect windows' grid: each window in its own cell, DEFECT_GAP apart."""
    return (width + DEFECT_GAP) // (IMAGE_SIZE + DEFECT_GAP), (height + DEFECT_GAP) // (IMAGE_SIZE + DEFECT_GAP)


def _window_corners(rng: np.random.Generator, spec: HideSpec) -> list[tuple[int, int]]:
    """A (y, x) corner per defect: distinct cells of the grid, placed at random within each."""
    columns, rows = _slots(spec.width, spec.height)
    play_x = (spec.width + DEFECT_GAP) // columns - IMAGE_SIZE - DEFECT_GAP
    play_y = (spec.height + DEFECT_GAP) // rows - IMAGE_SIZE - DEFECT_GAP
    corners = []
    for cell in rng.permutation(columns * rows)[: len(spec.defects)]:
        row, column = divmod(int(cell), columns)
        corners.append((
            row * (play_y + IMAGE_SIZE + DEFECT_GAP) + int(rng.integers(0, play_y + 1)),
            column * (play_x + IMAGE_SIZE + DEFECT_GAP) + int(rng.integers(0, play_x + 1)),
        ))
    return corners


def _paint_with_truth(rng: np.random.Generator, window: Hide, defect: str) -> np.ndarray:
    """Paint the defect into the window and return where it visibly changed the surface."""
    height, albedo = window.height.copy(), window.albedo.copy()
    paint_defect(rng, window, defect)
    changed = np.abs(window.height - height) > _HEIGHT_CHANGE
    changed |= (np.abs(window.albedo - albedo) / np.maximum(albedo, 1.0)).max(axis=-1) > _ALBEDO_CHANGE
    truth = ndimage.binary_fill_holes(ndimage.binary_closing(changed, iterations=_MASK_CLOSING) | changed)
    parts, count = ndimage.label(truth, structure=np.ones((3, 3)))
    sizes = ndimage.sum_labels(truth, parts, np.arange(1, count + 1))
    return np.isin(parts, 1 + np.nonzero(sizes >= _MIN_PART_PIXELS)[0])


def render_hide(rng: np.random.Generator, spec: HideSpec) -> SynthHide:
    """One hide photo with its defects and their mask."""
    side = max(spec.width, spec.height)
    hide = draw_hide(rng, side, scale=spec.grain)
    hide.albedo *= np.asarray(HIDE_COLOURS[spec.colour], np.float32) / hide.albedo.mean(axis=(0, 1))
    marks = rng.poisson(NATURAL_MARKS_PER_PATCH * spec.width * spec.height / IMAGE_SIZE**2)
    for _ in range(marks):
        y, x = rng.integers(0, spec.height - IMAGE_SIZE + 1), rng.integers(0, spec.width - IMAGE_SIZE + 1)
        paint_natural_mark(rng, _window(hide, y, x, IMAGE_SIZE, 1.0))
    mask = np.zeros((side, side), bool)
    defects = []
    for defect, (y, x) in zip(spec.defects, _window_corners(rng, spec), strict=True):
        # At defect strength every painter changes the surface beyond the thresholds: the truth is never empty.
        truth = _paint_with_truth(rng, _window(hide, y, x, IMAGE_SIZE, 1.0), defect)
        mask[y : y + IMAGE_SIZE, x : x + IMAGE_SIZE] |= truth
        rows, cols = np.nonzero(truth)
        box = [x + int(cols.min()), y + int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1]
        defects.append({"type": defect, "box": box, "area": int(truth.sum())})
    pixels = photograph(hide)[: spec.height, : spec.width]
    return SynthHide(pixels=np.ascontiguousarray(pixels), mask=mask[: spec.height, : spec.width], defects=defects)


def hide_specs(
    count: int,
    seed: int,
    width: int,
    height: int,
    *,
    colours: Sequence[str] | None = None,
    grains: Sequence[float] = (1.0,),
    clean_share: float = 0.3,
    max_defects: int = 3,
) -> list[HideSpec]:
    """What each hide of a set shows: exactly round(count * clean_share) clean hides, the rest 1..max_defects defects.

    Colours (all of HIDE_COLOURS by default) and grain scales are drawn per hide.
    """
    colours = list(HIDE_COLOURS) if colours is None else list(colours)
    _check_settings(count, seed, width, height, colours, grains, clean_share, max_defects)
    clean = set(np.random.default_rng(seed).permutation(count)[: round(count * clean_share)].tolist())
    specs = []
    for index in range(count):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPEC_STREAM, index)))
        defects = () if index in clean else tuple(
            DEFECT_TYPES[i] for i in rng.integers(0, len(DEFECT_TYPES), rng.integers(1, max_defects + 1))
        )
        colour, grain = colours[rng.integers(len(colours))], float(grains[rng.integers(len(grains))])
        specs.append(HideSpec(width, height, colour, grain, defects))
    return specs


def _check_settings(
    count: int, seed: int, width: int, height: int, colours: Sequence[str], grains: Sequence[float],
    clean_share: float, max_defects: int,
) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if width < MIN_WIDTH or height < MIN_HEIGHT or width * height > MAX_PIXELS:
        raise ValueError(
            f"size {width}x{height} is out of range: each side at least {MIN_WIDTH} px, at most {MAX_PIXELS:,} pixels"
        )
    unknown = [name for name in colours if name not in HIDE_COLOURS]
    if unknown or not colours:
        raise ValueError(f"unknown colour(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(HIDE_COLOURS)}")
    if not grains or any(not 0.5 <= grain <= 2.0 for grain in grains):
        raise ValueError(f"grain scales must lie between 0.5 and 2.0, got {list(grains)}")
    if not 0.0 <= clean_share <= 1.0:
        raise ValueError(f"clean share must be between 0 and 1, got {clean_share}")
    columns, rows = _slots(width, height)
    if not 1 <= max_defects <= columns * rows:
        raise ValueError(
            f"max defects must be between 1 and {columns * rows}, the defect windows of {IMAGE_SIZE} px a "
            f"{width}x{height} hide holds {DEFECT_GAP} px apart; got {max_defects}"
        )


def _prepare_output(out: pathlib.Path, overwrite: bool) -> None:
    """A new or empty folder, or with --overwrite one this generator wrote alone (its files are removed)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError(f"output path {display(out)} is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"output folder {display(out)} is not empty; pass --overwrite to replace it")
    entries = sorted(out.iterdir())
    foreign = [e.name for e in entries if e.name != MARKER_NAME and not _OWN_FILE.fullmatch(e.name)]
    if not (out / MARKER_NAME).is_file() or foreign or any(not e.is_file() or e.is_symlink() for e in entries):
        raise ValueError(
            f"output folder {display(out)} holds files leather data synth-hide did not write "
            f"({', '.join(foreign[:5]) or MARKER_NAME + ' missing'}); refusing to replace it"
        )
    for entry in entries:
        entry.unlink()


def _save(write: Callable[[pathlib.Path], None], path: pathlib.Path) -> None:
    """Write beside the target and rename, so no half-written photo, mask or manifest is left under its name."""
    partial = path.with_name(path.name + _PARTIAL)
    write(partial)
    os.replace(partial, path)


def generate_hides(
    out_dir: pathlib.Path,
    specs: Sequence[HideSpec],
    seed: int,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write hide_NNNN.jpg per spec, hide_NNNN_mask.png for each defective one and hides.json; return the manifest.

    A photo without a mask is clean, as in MVTec AD's layout.
    """
    out_dir = pathlib.Path(out_dir)
    _prepare_output(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER_NAME).write_text(json.dumps({"written_by": "leather data synth-hide", "seed": seed}) + "\n")
    hides = []
    for index, spec in enumerate(specs):
        hide = render_hide(image_rng(seed, index), spec)
        name = f"hide_{index:04d}"
        photo = Image.fromarray(hide.pixels)
        _save(lambda path: photo.save(path, "JPEG", quality=JPEG_QUALITY), out_dir / f"{name}.jpg")
        entry = {"photo": f"{name}.jpg", "colour": spec.colour, "grain": spec.grain, "defects": hide.defects}
        if hide.defects:
            mask = Image.fromarray(hide.mask.astype(np.uint8) * 255)
            _save(lambda path: mask.save(path, "PNG"), out_dir / f"{name}_mask.png")
            entry["mask"] = f"{name}_mask.png"
        hides.append(entry)
        if progress is not None:
            progress(index + 1, len(specs))
    manifest = {"seed": seed, "hides": hides}
    _save(lambda path: path.write_text(json.dumps(manifest, indent=2) + "\n"), out_dir / MANIFEST_NAME)
    return manifest
