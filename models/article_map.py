"""The article model's anomaly map laid on the photo: one score per photo pixel from one per patch.

The served map has a cell per 8x8 pixels of the photo as processed (resized by
the article's scale); a person, a region finder and a pixel ROC-AUC want it on
the photo's own pixels. Bilinear upsampling blends between cell centres, so
the highest pixel lies within a few per cent below the highest cell, the
photo's score (no pixel centre falls on a cell's centre at an even factor).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from models.patch_features import CELL


def photo_resolution_map(
    anomaly_map: np.ndarray, image_size: tuple[int, int], processing_size: tuple[int, int]
) -> np.ndarray:
    """[rows, columns] cell scores -> [height, width] float32 on the photo of `image_size` (width, height)."""
    width, height = image_size
    scale_x, scale_y = width / processing_size[0], height / processing_size[1]
    rows, columns = anomaly_map.shape
    target = (max(width, round(columns * CELL * scale_x)), max(height, round(rows * CELL * scale_y)))
    upsampled = Image.fromarray(np.asarray(anomaly_map, np.float32), mode="F").resize(target, Image.BILINEAR)
    return np.asarray(upsampled, np.float32)[:height, :width]
