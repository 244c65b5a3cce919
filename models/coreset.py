"""Greedy k-centre coreset: the few patches that stand for all of a leather's clean patches.

Every patch of the reference photos in the memory bank would make each served
query compare with tens of thousands of near-duplicates of the same grain.
PatchCore keeps a subset chosen greedily: each next member is the patch
farthest from every member chosen so far, so the subset covers the rarest clean
textures (a fold, a pore cluster) that a random sample drops, and no clean patch
is farther from its nearest member than the last pick was. Distances are taken
in a random projection to PROJECTION dimensions (Johnson-Lindenstrauss: they
keep their order, closely), which costs a fraction of the full width.

Pure NumPy, tested on points whose picks are known (tests/test_coreset.py).
"""
from __future__ import annotations

import numpy as np

PROJECTION = 128
"""Dimensions the selection measures distances in, when the patches have more."""


def greedy_coreset(points: np.ndarray, size: int, *, seed: int = 0, start: int = 0) -> np.ndarray:
    """Indices of `size` rows of `points` [n, d], in the order chosen: `start` first, then each the farthest yet.

    All rows when `size` >= n.
    """
    points = np.asarray(points, np.float32)
    count = len(points)
    if count == 0 or size < 1:
        raise ValueError("a coreset needs at least one point and a size of at least one")
    if size >= count:
        return np.arange(count)
    if points.shape[1] > PROJECTION:
        projection = np.random.default_rng(seed).standard_normal((points.shape[1], PROJECTION)).astype(np.float32)
        points = points @ (projection / np.sqrt(PROJECTION))
    squared_norms = np.einsum("ij,ij->i", points, points)
    chosen = np.empty(size, np.int64)
    chosen[0] = start
    nearest = np.full(count, np.inf, np.float32)
    for step in range(1, size + 1):
        latest = points[chosen[step - 1]]
        distance = squared_norms - 2.0 * (points @ latest) + squared_norms[chosen[step - 1]]
        np.minimum(nearest, distance, out=nearest)
        if step < size:
            chosen[step] = int(np.argmax(nearest))
    return chosen
