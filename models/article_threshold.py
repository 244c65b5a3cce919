"""An article's decision threshold from its clean photos alone: an extreme-value fit of their held-out scores.

A photo's score is its highest patch, the maximum of thousands of distances;
the highest held-out score of four clean photos says little about the fifth,
and a fixed margin over it let three of four clean navy hides through as
defective while it cost brown hides located defects (docs/results/article.md).
The maximum of many roughly independent scores follows a Gumbel distribution
(Fisher-Tippett), so the held-out score maps are cut into blocks of
BLOCK x BLOCK patches, a Gumbel is fitted to the blocks' maxima by its moments,
and the threshold is where a clean photo the size of the references, as many
blocks as they have, stays below it with probability 1 - false_alarm_rate. It
is never below `margin` times the highest held-out score itself.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BLOCK = 32
"""Patches per side of a block (256 processing px): a defect spans a block or two, so blocks' maxima are nearly
independent."""
EULER_GAMMA = 0.5772156649015329


def block_maxima(scores: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """The highest score of each block x block tile of a [rows, columns] map (partial tiles at the edges too)."""
    rows, columns = scores.shape
    return np.array([
        scores[top : top + block, left : left + block].max()
        for top in range(0, rows, block) for left in range(0, columns, block)
    ])


def clean_threshold(held_out: Sequence[np.ndarray], false_alarm_rate: float, margin: float) -> float:
    """The threshold from the references' held-out score maps ([rows, columns] each)."""
    highest = max(float(scores.max()) for scores in held_out)
    maxima = np.concatenate([block_maxima(scores) for scores in held_out])
    spread = float(maxima.std(ddof=1)) if len(maxima) > 1 else 0.0
    if spread == 0.0:
        return margin * highest
    scale = spread * math.sqrt(6.0) / math.pi
    location = float(maxima.mean()) - EULER_GAMMA * scale
    blocks_per_photo = len(maxima) / len(held_out)
    below = (1.0 - false_alarm_rate) ** (1.0 / blocks_per_photo)
    return max(margin * highest, location - scale * math.log(-math.log(below)))
