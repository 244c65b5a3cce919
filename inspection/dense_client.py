"""The `patch_features` signature's client: one Predict per photo, TF Serving's stubs only.

The photo travels once as its file's bytes; the model answers the dense patch
features of the whole photo (models/patch_signature.py) with the sizes that lay
a patch map on the photo. The scoring against the rest of the hide happens here,
in the client (inspection/dense_inspection.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from inspection.client import predict_photo, size_pair
from models.article_export import IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT
from models.patch_signature import PATCH_FEATURES_OUTPUT, PATCH_FEATURES_SIGNATURE
from models.serving_contract import DEFAULT_MODEL_NAME


@dataclasses.dataclass(frozen=True)
class PatchFeatures:
    """The served model's dense features of one photo."""

    features: np.ndarray
    """[rows, columns, width] float32, a row of features per patch (patch_features.CELL processing pixels)."""
    image_size: tuple[int, int]
    """(width, height) of the photo sent."""
    processing_size: tuple[int, int]
    """(width, height) the photo was resized to before the features."""
    model_version: int = 0

    @classmethod
    def of(cls, outputs: Mapping[str, np.ndarray], model_version: int = 0) -> PatchFeatures:
        features = np.asarray(outputs[PATCH_FEATURES_OUTPUT], np.float32)
        if features.ndim != 3:
            raise ValueError(f"patch features must be [rows, columns, width], got shape {list(features.shape)}")
        return cls(features, size_pair(outputs[IMAGE_SIZE_OUTPUT]), size_pair(outputs[PROCESSING_SIZE_OUTPUT]), model_version)


def request_patch_features(
    server: str, photo: bytes, *, model_name: str = DEFAULT_MODEL_NAME, timeout: float = 60.0
) -> PatchFeatures:
    """The served model's dense patch features of one photo (encoded JPEG or PNG bytes)."""
    outputs, version = predict_photo(
        server, photo, PATCH_FEATURES_SIGNATURE, {PATCH_FEATURES_OUTPUT, IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT},
        model_name=model_name, timeout=timeout,
    )
    return PatchFeatures.of(outputs, version)
