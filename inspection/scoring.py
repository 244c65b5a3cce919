"""Self-referenced anomaly scores of a hide's tiles: the hide is its own reference.

A classifier trained on one leather's patches does not transfer to another
leather at another scale (docs/serving.md). But most of any hide is sound, so a
tile can be compared with the rest of its own hide: its score is its embedding's
mean distance to its nearest tiles of the same hide, leaving out the tiles that
overlap it (they share its pixels, its defect included), optionally joined by
tiles of known-clean photos of the same article (`reference`, few-shot as in
PatchCore). The distances are normalised by the hide's own median and spread
(MAD), so a score says how unusual a tile is for this hide, whatever the
leather. The classifier adds its word where it is confident and singles a tile
out within the hide: its logit, normalised the same way, counts only above
`ScoringSettings.confidence`. No training on the new leather is needed.

Pure NumPy, so it is tested on known answers (tests/test_hide_scoring.py).
"""
from __future__ import annotations

import numpy as np

from inspection.regions import numbered, region_box
from inspection.settings import ScoringSettings

MAD_TO_SIGMA = 1.4826
"""Scales the median absolute deviation to a standard deviation for normal data."""
_DISTANCE_SPREAD_FLOOR = 1e-6
"""Relative to the median distance (plus 1e-12): a perfectly uniform hide still ranks its odd tile first."""
_LOGIT_SPREAD_FLOOR = 1.0
"""Logit spread below which a classifier is taken to say the same of every tile (a factor e in the odds)."""
_DISTANCE_ROWS = 512
"""Tiles whose distances are computed at once: a block of 512 x 20,000 (MAX_TILES) distances is 80 MB."""


def robust_z(values: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """(values - median) / spread, spread = max(1.4826 * MAD, floor): spreads above the distribution's middle.

    The median and the median absolute deviation ignore the few defective
    tiles of a hide, where a mean and a standard deviation would follow them.
    """
    values = np.asarray(values, np.float64)
    median = np.median(values)
    spread = max(MAD_TO_SIGMA * float(np.median(np.abs(values - median))), floor)
    if spread <= 0:
        raise ValueError("robust_z needs a positive floor for values that do not vary")
    return (values - median) / spread


def overlapping(these: np.ndarray, those: np.ndarray, patch: int) -> np.ndarray:
    """[len(these), len(those)] bool: whether two tiles (top-left corners (x, y), side `patch`) share a pixel."""
    these, those = np.asarray(these), np.asarray(those)
    dx = np.abs(these[:, None, 0] - those[None, :, 0])
    dy = np.abs(these[:, None, 1] - those[None, :, 1])
    return (dx < patch) & (dy < patch)


def neighbour_distances(
    embeddings: np.ndarray,
    origins: np.ndarray,
    patch: int,
    neighbours: int,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Each tile's mean Euclidean distance to its `neighbours` nearest tiles that do not overlap it.

    The candidates are the hide's other tiles that share no pixel with it, plus
    every `reference` tile (of other, clean photos).
    """
    embeddings = np.asarray(embeddings, np.float64)
    origins = np.asarray(origins)
    pool = embeddings if reference is None else np.concatenate([embeddings, np.asarray(reference, np.float64)])
    if pool.shape[0] - 1 < neighbours:
        raise ValueError(_too_few(neighbours))
    pool_norms = (pool**2).sum(axis=1)
    distances = np.empty(len(embeddings))
    for start in range(0, len(embeddings), _DISTANCE_ROWS):
        rows = slice(start, start + _DISTANCE_ROWS)
        squared = (embeddings[rows] ** 2).sum(axis=1)[:, None] + pool_norms[None, :] - 2 * embeddings[rows] @ pool.T
        squared[:, : len(embeddings)][overlapping(origins[rows], origins, patch)] = np.inf
        nearest = np.partition(squared, neighbours - 1, axis=1)[:, :neighbours]
        if np.isinf(nearest).any():
            raise ValueError(_too_few(neighbours))
        distances[rows] = np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)
    return distances


def _too_few(neighbours: int) -> str:
    return (
        f"the photo has tiles with fewer than {neighbours} tiles that do not overlap them, too few to be its own "
        "reference: use a smaller patch, a larger photo, or add --reference photos of clean leather"
    )


def tile_scores(
    embeddings: np.ndarray,
    probabilities: np.ndarray,
    origins: np.ndarray,
    patch: int,
    settings: ScoringSettings = ScoringSettings(),
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Each tile's anomaly score in its hide's own spreads: the distance score plus the confident classifier's."""
    distances = neighbour_distances(embeddings, origins, patch, settings.neighbours, reference)
    distance = robust_z(distances, _DISTANCE_SPREAD_FLOOR * float(np.median(distances)) + 1e-12)
    probabilities = np.clip(np.asarray(probabilities, np.float64), 1e-7, 1 - 1e-7)
    logit = robust_z(np.log(probabilities / (1 - probabilities)), _LOGIT_SPREAD_FLOOR)
    confident = probabilities >= settings.confidence
    return distance + settings.classifier_weight * np.where(confident, np.maximum(logit, 0.0), 0.0)


def pixel_scores(scores: np.ndarray, origins: np.ndarray, patch: int, width: int, height: int) -> np.ndarray:
    """[height, width] float32: each pixel's mean score over the tiles covering it.

    A tile's embedding is pooled over the whole tile, and a defect near its edge
    may move it less than one in its middle, so of the (up to four) tiles
    holding a defect some may miss it. The mean keeps such a defect at a share
    of its score where the lowest covering score would drop it, and still ranks
    its cell of the tile grid above the sound ones around it: on the tuning
    hides it found more defects, and ranked pixels better, than the lowest
    covering score (docs/results/whole-hide.md).
    """
    total = np.zeros((height, width), np.float32)
    cover = np.zeros((height, width), np.float32)
    for score, (x, y) in zip(np.asarray(scores, np.float32), np.asarray(origins), strict=True):
        total[y : y + patch, x : x + patch] += score
        cover[y : y + patch, x : x + patch] += 1
    if not cover.all():
        raise ValueError("the tiles do not cover the whole photo")
    return total / cover


def regions(heat: np.ndarray, threshold: float) -> list[dict]:
    """Connected areas of pixels scoring at least `threshold`, highest first and numbered: score, box and the
    count of defective pixels in it (a box also holds sound pixels, so the count is less than its area).

    Tiles at a stride of half their side, less one, leave a one-pixel seam
    that three tiles cover; the third tile's score can pull the seam below the
    threshold and cut one defect's cells in two. Pixels with at most two pixels
    between them are therefore one region; its box and pixel count take only
    the pixels above.
    """
    from scipy import ndimage

    above = heat >= threshold
    joined, count = ndimage.label(ndimage.binary_dilation(above, structure=np.ones((3, 3), bool)))
    if count == 0:
        return []
    labels = np.where(above, joined, 0)
    index = np.arange(1, count + 1)
    peaks = ndimage.maximum(heat, labels, index)
    areas = ndimage.sum_labels(np.ones_like(heat), labels, index)
    found = [
        {"score": round(float(peak), 3), "box": region_box(box), "defect_pixels": int(area)}
        for peak, area, box in zip(peaks, areas, ndimage.find_objects(labels), strict=True)
    ]
    return numbered(sorted(found, key=lambda region: -region["score"]))
