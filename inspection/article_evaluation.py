"""Scoring an article model on photos with masks, as MVTec AD scores anomaly detection.

The pipeline's ArticleEvaluator (in process, on the SavedModel) and `leather
inspect-eval` (through the served signature) both hand each photo to a
`MapRequest` and judge its map here, so the gate and the benchmark report the
same figures: image and pixel ROC-AUC, the share of defects a region touches,
and regions that touch no defect (false alarms) per clean photo. A figure that
needs both clean and defective photos is None when one kind is missing.
"""
from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image

from inspection.article_client import ArticleMap
from inspection.evaluation import HideOutcome, judge, roc_auc

MapRequest = Callable[[bytes], ArticleMap]
"""Photo bytes -> the article model's map of it."""
LabelledBytes = tuple[str, bytes, bytes]
"""(name, photo bytes, mask PNG bytes; b"" for a clean photo)."""


def mask_array(name: str, mask: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The mask as [height, width] bool (white = defect), None for a clean photo; ValueError naming a misfit."""
    if not mask:
        return None
    image = Image.open(io.BytesIO(mask))
    if image.size != size:
        raise ValueError(f"{name}: mask is {image.size[0]}x{image.size[1]} px, the photo {size[0]}x{size[1]}")
    return np.asarray(image.convert("L")) > 127


def judge_photos(photos: Iterable[LabelledBytes], request: MapRequest) -> list[HideOutcome]:
    outcomes = []
    for name, data, mask in photos:
        start = time.perf_counter()
        answer = request(data)
        seconds = time.perf_counter() - start
        heat = answer.heat()
        outcomes.append(judge(name, heat, answer.threshold, mask_array(name, mask, answer.image_size), answer.score, seconds))
    return outcomes


def article_summary(outcomes: list[HideOutcome]) -> dict:
    """The figures of a set of judged photos, with None for those the photos cannot give."""
    if not outcomes:
        raise ValueError("no photo to evaluate")
    defective = np.array([o.defects > 0 for o in outcomes])
    clean = [o for o in outcomes if o.defects == 0]
    positives = np.concatenate([o.pixel_positives for o in outcomes])
    negatives = np.concatenate([o.pixel_negatives for o in outcomes])
    defects = sum(o.defects for o in outcomes)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(float(value), 4)

    return {
        "photos": len(outcomes),
        "clean_photos": len(clean),
        "defects": defects,
        "image_roc_auc": rounded(
            roc_auc([o.image_score for o in outcomes], defective, ~defective) if defective.any() and clean else None
        ),
        "pixel_roc_auc": rounded(
            roc_auc(np.concatenate([o.pixel_values for o in outcomes]), positives, negatives)
            if positives.sum() and negatives.sum() else None
        ),
        "defects_located": rounded(sum(o.located for o in outcomes) / defects if defects else None),
        "false_alarms_per_clean_photo": rounded(sum(o.false_alarms for o in clean) / len(clean) if clean else None),
        "false_alarms_per_defective_photo": rounded(
            sum(o.false_alarms for o in outcomes if o.defects) / int(defective.sum()) if defective.any() else None
        ),
        "clean_photos_flagged": sum(1 for o in clean if o.false_alarms),
        "seconds_per_photo": round(float(np.mean([o.seconds for o in outcomes])), 3),
    }
