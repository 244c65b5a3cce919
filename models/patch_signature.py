"""The `patch_features` signature: a photo's dense patch features, for scoring a hide against itself.

A model whose registry entry has `dense_patch_features` (the default backbone
classifier) also answers, for one photo's encoded JPEG or PNG bytes, the
features of every 8x8 pixel patch (models/patch_features.py: a frozen ImageNet
Lite0's mid-level maps, 152 numbers a patch) at scale 1 and in colour, the
article model's defaults (models/spec.py ArticleConfig). The client compares
each patch with the rest of its own hide (models/article.py
`self_referenced_scores`), so a leather nobody fitted is inspected patch by
patch rather than one pooled embedding per 227 px tile.

The extractor is its own frozen Lite0 copy (the classifier's sees standardised
gray tiles at 224 px); the photo is refused above the article model's
MAX_PROCESSING_PIXELS, and every op is a standard TensorFlow kernel.
"""
from __future__ import annotations

import tensorflow as tf

from models import patch_features
from models.article_export import IMAGE_SIZE_OUTPUT, PROCESSING_SIZE_OUTPUT, limited_patch_features
from models.serving_contract import IMAGE_BYTES_INPUT
from models.spec import ArticleConfig

PATCH_FEATURES_SIGNATURE = "patch_features"
PATCH_FEATURES_OUTPUT = "patch_features"
"""[rows, columns, patch_features.WIDTH] float32: one row of features per CELL x CELL processing pixels."""
SETTINGS = ArticleConfig()
"""The scale and colour the signature extracts at (scale 1.0, colour on)."""


class DensePatchFeatures(tf.Module):
    def __init__(self) -> None:
        super().__init__(name="dense_patch_features")
        self.extractor = patch_features.mid_level_extractor()

    def __call__(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels, size = patch_features.photo_pixels(image_bytes, SETTINGS.scale, SETTINGS.colour_blind)
        grid = limited_patch_features(self.extractor, pixels, f"scale {SETTINGS.scale:g}")
        return {
            PATCH_FEATURES_OUTPUT: grid,
            IMAGE_SIZE_OUTPUT: size,
            PROCESSING_SIZE_OUTPUT: tf.reverse(tf.shape(pixels)[:2], [0]),
        }


def make_patch_features_signature(module: DensePatchFeatures) -> tf.types.experimental.ConcreteFunction:
    """The signature over `module`, which the saved object must track (its extractor's variables)."""

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.string, name=IMAGE_BYTES_INPUT)])
    def dense_features(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return module(image_bytes)

    return dense_features.get_concrete_function()
