"""Whole-hide inspection with an article model: one request per photo, the map of distances to clean leather.

The served article model answers a score per patch (8 pixels of the photo as
processed) against the clean photos it was fitted on; here the map is laid on
the photo's pixels (models/article_map.py), pixels at or above the model's own
threshold form the defective regions (inspection/scoring.py's `regions`), and
the raw map can be saved for anyone to score (`save_map`). Unlike
self-referenced tile scores, the threshold is the model's, set from its clean
photos: a hide that is all defect still shows as defective.
"""
from __future__ import annotations

import dataclasses
import io
import pathlib
import time
from collections.abc import Callable

import numpy as np

from inspection.article_client import ArticleMap
from inspection.maps import ColourScale
from inspection.scoring import regions
from models.patch_features import CELL

MAP_SUFFIXES = (".npy", ".png")
PNG_MAP_STEPS = 65535
"""A 16-bit PNG map holds score / (2 x threshold) in [0, 1] in this many steps: the threshold at 32768."""


def threshold_display(heat: np.ndarray, threshold: float) -> np.ndarray:
    """A map in [0, 1] for a colour scale: 0 at 0 (and below), the threshold at one half."""
    return np.clip(heat / (2 * threshold), 0.0, 1.0)


def threshold_colour_scale(what: str, threshold: float) -> ColourScale:
    """The colour bar of a `threshold_display` map of `what`."""
    return ColourScale(
        f"{what}; a region from {threshold:.1f}",
        [(0.0, "0"), (0.5, f"{threshold:.1f}"), (1.0, f"{2 * threshold:.1f}+")],
    )


@dataclasses.dataclass
class ArticleInspection:
    answer: ArticleMap
    heat: np.ndarray
    """[height, width] float32: each photo pixel's distance to the article's clean patches."""
    regions: list[dict]
    seconds: float

    def display_heat(self) -> np.ndarray:
        return threshold_display(self.heat, self.answer.threshold)

    def colour_scale(self) -> ColourScale:
        return threshold_colour_scale("distance to the nearest clean patch of the article", self.answer.threshold)

    def to_json(self) -> dict:
        answer = self.answer
        rows, columns = answer.anomaly_map.shape
        return {
            "width": answer.image_size[0],
            "height": answer.image_size[1],
            "model_version": answer.model_version,
            "score": round(answer.score, 3),
            "threshold": round(answer.threshold, 3),
            "defective": answer.score >= answer.threshold,
            "map_cells": {
                "columns": columns, "rows": rows,
                "photo_px_per_cell": round(answer.image_size[0] / answer.processing_size[0] * CELL, 3),
            },
            "reference_size": list(answer.reference_size),
            "seconds": round(self.seconds, 3),
            "regions": self.regions,
        }


MAX_DPI_DIFFERENCE = 0.02
"""Relative difference between the photo's resolution and the article's beyond which it is not scored."""


def inspect_with_article(
    photo: bytes, request: Callable[[bytes], ArticleMap], photo_dpi: float | None = None
) -> ArticleInspection:
    """The article's map and regions of `photo`; ValueError when the photo's resolution (`photo_dpi`, from its
    file or the user) is not the one the article was fitted at: its grain would be compared at another scale."""
    start = time.perf_counter()
    answer = request(photo)
    fitted_dpi = answer.reference_dpi
    if photo_dpi and fitted_dpi and abs(photo_dpi - fitted_dpi) > MAX_DPI_DIFFERENCE * fitted_dpi:
        raise ValueError(
            f"the photo is at {photo_dpi:g} DPI but the article was fitted on photos at {fitted_dpi:g} DPI: its "
            "grain would be judged at another scale; photograph the hide as the clean photos were, or fit the "
            "article on photos at this resolution"
        )
    heat = answer.heat()
    # Bilinear upsampling puts no photo pixel on a cell's centre, so a photo whose highest cell just reaches the
    # threshold could show no pixel above it: its peak then marks the region the label speaks of.
    cut = min(answer.threshold, float(heat.max())) if answer.score >= answer.threshold else answer.threshold
    return ArticleInspection(answer, heat, regions(heat, cut), time.perf_counter() - start)


def save_map(heat: np.ndarray, threshold: float, path: pathlib.Path) -> None:
    """The raw map at photo resolution: .npy float32 scores, or a 16-bit gray PNG of score / (2 x threshold)
    (clipped to [0, 1]). Any thresholded map: an article's distances or dense self-referenced spreads."""
    from PIL import Image

    suffix = path.suffix.lower()
    if suffix not in MAP_SUFFIXES:
        raise ValueError(f"--save-map {path}: name a .npy or .png file")
    buffer = io.BytesIO()
    if suffix == ".npy":
        np.save(buffer, heat.astype(np.float32))
    else:
        steps = np.round(np.clip(heat / (2 * threshold), 0.0, 1.0) * PNG_MAP_STEPS).astype(np.uint16)
        Image.fromarray(steps).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(buffer.getvalue())
    temporary.replace(path)
