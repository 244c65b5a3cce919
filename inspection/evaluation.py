"""Scoring a folder of inspected hides against their masks, as MVTec AD scores anomaly detection.

* image ROC-AUC: a hide's score is its highest tile score; a hide with a mask is defective.
* pixel ROC-AUC: every pixel of every hide, its map score against its mask, pooled over the hides.
* defects located: a defect (a connected part of a mask) counts as found when a region touches it.
* false alarms: regions that touch no mask; per clean hide, and on defective hides.

Pixel maps hold one value per tile overlap, so the pixel ROC-AUC is computed
exactly from per-value counts instead of sorting millions of pixels.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
from scipy import ndimage

from ingest.article_photos import folder_photos


def hide_files(folder: pathlib.Path) -> list[tuple[pathlib.Path, pathlib.Path | None]]:
    """(photo, mask or None) for every photo of `folder`, sorted by name (NAME_mask.png beside a defective one)."""
    return [(pair.photo, pair.mask) for pair in folder_photos(folder)]


def roc_auc(values: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC-AUC from per-value counts: P(a positive scores above a negative), ties counting one half.

    `values[i]` is held by `positives[i]` positive and `negatives[i]` negative
    items; values may repeat.
    """
    values, positives, negatives = (np.asarray(a, np.float64) for a in (values, positives, negatives))
    unique, inverse = np.unique(values, return_inverse=True)
    pos = np.bincount(inverse, positives, len(unique))
    neg = np.bincount(inverse, negatives, len(unique))
    if pos.sum() == 0 or neg.sum() == 0:
        raise ValueError("ROC-AUC needs at least one positive and one negative")
    negatives_below = np.cumsum(neg) - neg
    return float((pos * (negatives_below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


@dataclasses.dataclass
class HideOutcome:
    """One inspected hide against its truth."""

    name: str
    image_score: float
    defects: int
    located: int
    false_alarms: int
    """Regions touching no defect pixel."""
    pixel_values: np.ndarray
    pixel_positives: np.ndarray
    pixel_negatives: np.ndarray
    seconds: float


def judge(
    name: str, heat: np.ndarray, threshold: float, mask: np.ndarray | None, image_score: float, seconds: float
) -> HideOutcome:
    """Compare one hide's pixel map and regions (pixels at or above `threshold`) with its mask."""
    truth = np.zeros(heat.shape, bool) if mask is None else mask
    if truth.shape != heat.shape:
        raise ValueError(
            f"{name}: mask is {truth.shape[1]}x{truth.shape[0]} px, the photo {heat.shape[1]}x{heat.shape[0]}"
        )
    flagged = heat >= threshold
    defect_labels, defects = ndimage.label(truth, structure=np.ones((3, 3)))
    located = np.unique(defect_labels[flagged & truth]).size
    region_labels, region_count = ndimage.label(flagged)
    touching = np.unique(region_labels[flagged & truth]).size
    values, inverse = np.unique(heat, return_inverse=True)
    positives = np.bincount(inverse.ravel(), truth.ravel(), len(values))
    negatives = np.bincount(inverse.ravel(), minlength=len(values)) - positives
    false_alarms = region_count - touching
    return HideOutcome(name, image_score, defects, located, false_alarms, values, positives, negatives, seconds)


def summary(outcomes: list[HideOutcome]) -> dict:
    """The MVTec AD style figures of a set of hides (at least one clean and one defective)."""
    defective = np.array([o.defects > 0 for o in outcomes])
    clean = [o for o in outcomes if o.defects == 0]
    return {
        "hides": len(outcomes),
        "clean_hides": len(clean),
        "defects": sum(o.defects for o in outcomes),
        "image_roc_auc": round(roc_auc([o.image_score for o in outcomes], defective, ~defective), 4),
        "pixel_roc_auc": round(
            roc_auc(
                np.concatenate([o.pixel_values for o in outcomes]),
                np.concatenate([o.pixel_positives for o in outcomes]),
                np.concatenate([o.pixel_negatives for o in outcomes]),
            ),
            4,
        ),
        "defects_located": round(sum(o.located for o in outcomes) / max(1, sum(o.defects for o in outcomes)), 4),
        "false_alarm_regions_per_clean_hide": round(sum(o.false_alarms for o in clean) / max(1, len(clean)), 4),
        "false_alarm_regions_per_defective_hide": round(
            sum(o.false_alarms for o in outcomes if o.defects) / max(1, int(defective.sum())), 4
        ),
        "seconds_per_photo": round(float(np.mean([o.seconds for o in outcomes])), 3),
    }
