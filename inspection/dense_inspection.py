"""Whole-hide inspection on dense patch features, the hide its own reference: no training on the leather, no references.

The served model answers the features of every 8x8 pixel patch of the photo
(its `patch_features` signature, models/patch_signature.py; or the same graph
in-process, models/article.py `photo_features`). Each patch is scored by its
distance to the nearest patch of the same hide outside its own neighbourhood
(models/article.py `self_referenced_scores`, the scoring the article benchmark
measures), so it is high only where the hide differs from itself. Distances
have no threshold of their own (no clean photo says how far is too far), so
they become the hide's own spreads above its median (inspection/scoring.py
`robust_z`), laid on the photo's pixels, and pixels at or above
`inspection.settings.DENSE_THRESHOLD` (or --threshold) in those spreads form
the regions (inspection/scoring.py `regions`).

Like every self-referenced score, a hide that is all defect, or a defect
spread over much of it, looks like itself; an article model
(inspection/article_inspection.py) has a threshold of its own.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from inspection.article_inspection import threshold_colour_scale, threshold_display
from inspection.dense_client import PatchFeatures
from inspection.maps import ColourScale
from inspection.scoring import MAD_TO_SIGMA, regions, robust_z
from models.article_map import photo_resolution_map
from models.patch_features import CELL
from models.spec import ArticleConfig

SPREAD_FLOOR = 1e-6
"""Relative to the median distance (plus 1e-12): a perfectly uniform hide still ranks its odd patch first."""


def spread_map(distances: np.ndarray) -> tuple[np.ndarray, float, float]:
    """[rows, columns] distances -> (the same in the hide's own spreads above its median, median, spread)."""
    distances = np.asarray(distances, np.float64)
    median = float(np.median(distances))
    floor = SPREAD_FLOOR * median + 1e-12
    spreads = robust_z(distances, floor)
    spread = max(MAD_TO_SIGMA * float(np.median(np.abs(distances - median))), floor)
    return spreads.astype(np.float32), median, spread


@dataclasses.dataclass
class DenseInspection:
    answer: PatchFeatures
    distances: np.ndarray
    """[rows, columns] each patch's distance to the nearest patch of the hide outside its neighbourhood."""
    heat: np.ndarray
    """[height, width] float32: each photo pixel's score in the hide's own spreads above its median."""
    threshold: float
    median_distance: float
    distance_spread: float
    regions: list[dict]
    seconds: float

    def display_heat(self) -> np.ndarray:
        return threshold_display(self.heat, self.threshold)

    def colour_scale(self) -> ColourScale:
        return threshold_colour_scale("patch distance to the rest of the hide, in its spreads above its median",
                                      self.threshold)

    def to_json(self) -> dict:
        answer = self.answer
        rows, columns = self.distances.shape
        score = float(self.heat.max())
        return {
            "width": answer.image_size[0],
            "height": answer.image_size[1],
            "model_version": answer.model_version,
            "score": round(score, 3),
            "threshold": round(self.threshold, 3),
            "defective": score >= self.threshold,
            "median_distance": round(self.median_distance, 4),
            "distance_spread": round(self.distance_spread, 4),
            "map_cells": {
                "columns": columns, "rows": rows,
                "photo_px_per_cell": round(answer.image_size[0] / answer.processing_size[0] * CELL, 3),
            },
            "seconds": round(self.seconds, 3),
            "regions": self.regions,
        }


def score_features(
    answer: PatchFeatures, threshold: float, bank_size: int = ArticleConfig().bank_size, start: float | None = None
) -> DenseInspection:
    """The self-referenced inspection of features from anywhere (served or in-process)."""
    from models.article import self_referenced_scores

    start = time.perf_counter() if start is None else start
    distances = self_referenced_scores(answer.features, bank_size)
    spreads, median, spread = spread_map(distances)
    heat = photo_resolution_map(spreads, answer.image_size, answer.processing_size)
    return DenseInspection(
        answer, distances, heat, threshold, median, spread, regions(heat, threshold), time.perf_counter() - start
    )


def inspect_dense(photo: bytes, request: Callable[[bytes], PatchFeatures], threshold: float) -> DenseInspection:
    """One request for the photo's patch features, then the self-referenced scores and regions."""
    start = time.perf_counter()
    return score_features(request(photo), threshold, start=start)
