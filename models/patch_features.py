"""Dense patch features of a photo: the frozen Lite0's mid-level maps, as PatchCore takes them.

A defect is small and local; ImageNet's deepest features say what an object is,
its mid-level ones what a surface looks like. So a patch is described by the
stride-8 map (40 channels) and the stride-16 map (112 channels, upsampled to
the stride-8 grid), each averaged over its 3x3 neighbours so a patch carries a
little of its surroundings: 152 numbers per 8x8 pixels of the photo as
processed. The photo is first resized by the article's `scale` (processing
pixels per photo pixel): the network sees leather at the size its features
suit, and the cost falls with the square of the scale.

TensorFlow ops only: fitting an article, the served signatures and the
evaluation run this one graph, so their features cannot drift apart.
"""
from __future__ import annotations

import tensorflow as tf

from models import lite0
from models.backbone import load_lite0
from models.image_features import colour_and_gray

CELL = 8
"""Processing pixels per patch (the stride of the finer map)."""
LAYERS = ("stride8", "stride16")
WIDTH = 40 + 112
"""Numbers per patch."""
NEIGHBOURHOOD = 3
"""Side of the averaging window, in patches."""


def mid_level_extractor() -> tf.keras.Model:
    """The frozen ImageNet Lite0 cut after its stride-16 block group: lite0.preprocess'd batch -> (stride8, stride16).

    The later groups and the head are a third of the network's work and are not used here.
    """
    full = load_lite0()
    model = tf.keras.Model(full.input, [full.output[name] for name in LAYERS], name="lite0_mid_level")
    model.trainable = False
    return model


def processing_size(height: tf.Tensor, width: tf.Tensor, scale: float) -> tf.Tensor:
    """[2] int32 (height, width) a photo is resized to: its size times `scale`, at least one patch each way."""
    size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale), tf.int32)
    return tf.maximum(size, CELL)


def photo_pixels(image_bytes: tf.Tensor, scale: float, colour_blind: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Encoded photo -> ([h, w, 3] float32 RGB in [0, 255] at processing size, the photo's own [2] (width, height)).

    Colour-blind puts the gray photo in all three channels.
    """
    colour, gray = colour_and_gray(image_bytes)
    pixels = tf.tile(gray, [1, 1, 3]) if colour_blind else colour
    shape = tf.shape(pixels)
    size = processing_size(shape[0], shape[1], scale)
    resized = tf.image.resize(pixels, size, method=tf.image.ResizeMethod.BILINEAR, antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0) * 255.0, tf.reverse(shape[:2], [0])


def patch_features(extractor: tf.keras.Model, pixels: tf.Tensor) -> tf.Tensor:
    """[h, w, 3] RGB in [0, 255] -> [ceil(h / 8), ceil(w / 8), WIDTH] float32 patch features."""
    fine, coarse = extractor(lite0.preprocess(pixels)[None], training=False)
    fine = tf.nn.avg_pool2d(fine, NEIGHBOURHOOD, 1, "SAME")
    coarse = tf.nn.avg_pool2d(coarse, NEIGHBOURHOOD, 1, "SAME")
    coarse = tf.image.resize(coarse, tf.shape(fine)[1:3], method=tf.image.ResizeMethod.BILINEAR)
    return tf.concat([fine, coarse], axis=-1)[0]
