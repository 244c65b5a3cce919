"""Whole-hide inspection: one request per photo, self-referenced scores, a map and regions a person can read.

The served model tiles the photo and answers per tile its probability and
embedding (inspection/client.py); the tiles are scored against the rest of
their own hide and any clean reference photos (inspection/scoring.py); each
pixel keeps the mean score of the tiles covering it, and connected pixels at
or above the threshold are the defective regions, with their score, box and
defective pixels. A sound hide gives no region.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from inspection.client import HideTiles
from inspection.maps import ColourScale
from inspection.scoring import ScoringSettings, pixel_scores, regions, tile_scores

TileRequest = Callable[[bytes, int, int], HideTiles]
"""(photo bytes, patch, stride) -> the served model's tiles of that photo."""


@dataclasses.dataclass
class HideInspection:
    tiles: HideTiles
    scores: np.ndarray
    """[tiles] each tile's anomaly score, in its hide's own spreads above its median."""
    heat: np.ndarray
    """[height, width] float32 each pixel's score."""
    regions: list[dict]
    settings: ScoringSettings
    references: int
    """Clean photos whose tiles joined the hide's own as reference."""
    seconds: float

    @property
    def width(self) -> int:
        return self.tiles.width

    @property
    def height(self) -> int:
        return self.tiles.height

    def display_heat(self) -> np.ndarray:
        """The map in [0, 1] for a colour scale: the hide's median at 0, the threshold at one half."""
        return np.clip(self.heat / (2 * self.settings.threshold), 0.0, 1.0)

    def colour_scale(self) -> ColourScale:
        """What `display_heat`'s colours mean, for the map's legend."""
        threshold = self.settings.threshold
        return ColourScale(
            f"score: spreads above the hide's median tile; a region from {threshold:g}",
            [(0.0, "0"), (0.5, f"{threshold:g}"), (1.0, f"{2 * threshold:g}+")],
        )

    def to_json(self) -> dict:
        tiles = self.tiles
        return {
            "width": self.width,
            "height": self.height,
            "patch": tiles.patch,
            "stride": tiles.stride,
            "model_version": tiles.model_version,
            "references": self.references,
            "settings": dataclasses.asdict(self.settings),
            "seconds": round(self.seconds, 3),
            "tiles_per_second": round(len(self.scores) / self.seconds, 1) if self.seconds > 0 else None,
            "max_score": round(float(self.scores.max()), 3),
            "regions": self.regions,
            "tiles": [
                {"x": int(x), "y": int(y), "score": round(float(score), 3), "probability": round(float(p), 4)}
                for (x, y), score, p in zip(tiles.origins, self.scores, tiles.probability, strict=True)
            ],
        }


def inspect_hide(
    photo: bytes,
    request: TileRequest,
    *,
    patch: int = 227,
    stride: int = 113,
    settings: ScoringSettings = ScoringSettings(),
    references: Sequence[bytes] = (),
) -> HideInspection:
    """Score every tile of `photo` against its own hide (and the tiles of `references`) and map the defects."""
    if patch < 1 or stride < 1:
        raise ValueError("patch and stride must be positive")
    start = time.perf_counter()
    tiles = request(photo, patch, stride)
    reference = [request(clean, patch, stride).embedding for clean in references]
    scores = tile_scores(
        tiles.embedding, tiles.probability, tiles.origins, patch, settings, np.concatenate(reference) if reference else None
    )
    heat = pixel_scores(scores, tiles.origins, patch, tiles.width, tiles.height)
    found = regions(heat, settings.threshold)
    return HideInspection(tiles, scores, heat, found, settings, len(references), time.perf_counter() - start)
