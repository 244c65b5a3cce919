"""The article model's client: one Predict of the `anomaly_map` signature per photo, TF Serving's stubs only.

The photo travels once as its file's bytes; the model resizes it to the
article's scale, scores every patch against its memory bank and answers the
patch map with the sizes that lay it on the photo (models/article_export.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from inspection.client import predict_photo, size_pair
from models.article_export import (
    ANOMALY_MAP_OUTPUT,
    ANOMALY_MAP_SIGNATURE,
    ANOMALY_SCORE_OUTPUT,
    IMAGE_SIZE_OUTPUT,
    PROCESSING_SIZE_OUTPUT,
    REFERENCE_DPI_OUTPUT,
    REFERENCE_SIZE_OUTPUT,
    THRESHOLD_OUTPUT,
)
from models.article_map import photo_resolution_map
from models.serving_contract import DEFAULT_MODEL_NAME


@dataclasses.dataclass(frozen=True)
class ArticleMap:
    """The article model's answer for one photo."""

    anomaly_map: np.ndarray
    """[rows, columns] float32, a score per patch (8 processing pixels)."""
    score: float
    threshold: float
    image_size: tuple[int, int]
    processing_size: tuple[int, int]
    reference_size: tuple[int, int]
    reference_dpi: float = 0.0
    """The resolution the article's clean photos stated; 0 when they stated none."""
    model_version: int = 0

    @classmethod
    def of(cls, outputs: Mapping[str, np.ndarray], model_version: int = 0) -> ArticleMap:
        return cls(
            anomaly_map=np.asarray(outputs[ANOMALY_MAP_OUTPUT], np.float32),
            score=float(outputs[ANOMALY_SCORE_OUTPUT]),
            threshold=float(outputs[THRESHOLD_OUTPUT]),
            image_size=size_pair(outputs[IMAGE_SIZE_OUTPUT]),
            processing_size=size_pair(outputs[PROCESSING_SIZE_OUTPUT]),
            reference_size=size_pair(outputs[REFERENCE_SIZE_OUTPUT]),
            reference_dpi=float(outputs.get(REFERENCE_DPI_OUTPUT, 0.0)),
            model_version=model_version,
        )

    def heat(self) -> np.ndarray:
        """[height, width] the score of every photo pixel."""
        return photo_resolution_map(self.anomaly_map, self.image_size, self.processing_size)


def request_map(
    server: str, photo: bytes, *, model_name: str = DEFAULT_MODEL_NAME, timeout: float = 60.0
) -> ArticleMap:
    """The served article model's anomaly map of one photo (encoded JPEG or PNG bytes)."""
    outputs, version = predict_photo(
        server, photo, ANOMALY_MAP_SIGNATURE,
        {ANOMALY_MAP_OUTPUT, ANOMALY_SCORE_OUTPUT, IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT},
        model_name=model_name, timeout=timeout,
    )
    return ArticleMap.of(outputs, version)
