"""Colour-shifted copies of photos, for asking whether a model sees the defect or the dye.

A model trained on the real photos scored ROC-AUC 0.996 as they are and 0.29 on
the same photos in gray: each class had been shot on differently coloured
leather, and the model learned the colour. A tannery dyes hides in many
colours, so every model is also scored on copies of the test photos that differ
from the originals in colour only. The shifts are TensorFlow ops so that the
same code can run inside a graph (training-time augmentation, shifted spans).

Every function takes float32 RGB in [0, 1], `[h, w, 3]` or batched
`[..., h, w, 3]`, and returns the same shape, clipped to [0, 1].
"""
import dataclasses
import functools
from collections.abc import Callable

import tensorflow as tf

from models.image_features import RGB_TO_GRAY


def gray(images: tf.Tensor) -> tf.Tensor:
    """Three equal channels holding the BT.601 luma, the gray the reference method sees."""
    red, green, blue = RGB_TO_GRAY
    luma = images[..., 0:1] * red + images[..., 1:2] * green + images[..., 2:3] * blue
    return tf.clip_by_value(tf.concat([luma, luma, luma], axis=-1), 0.0, 1.0)


def rotate_hue(images: tf.Tensor, degrees: float) -> tf.Tensor:
    """Hue turned by `degrees` around the colour circle (red +120 is green, +240 blue)."""
    hue, saturation, value = tf.unstack(tf.image.rgb_to_hsv(images), axis=-1)
    turned = tf.math.floormod(hue + degrees / 360.0, 1.0)
    return tf.clip_by_value(tf.image.hsv_to_rgb(tf.stack([turned, saturation, value], axis=-1)), 0.0, 1.0)


def scale_saturation(images: tf.Tensor, factor: float) -> tf.Tensor:
    """Saturation multiplied by `factor` and kept in [0, 1]; 0 leaves the brightest channel in all three."""
    hue, saturation, value = tf.unstack(tf.image.rgb_to_hsv(images), axis=-1)
    scaled = tf.clip_by_value(saturation * factor, 0.0, 1.0)
    return tf.clip_by_value(tf.image.hsv_to_rgb(tf.stack([hue, scaled, value], axis=-1)), 0.0, 1.0)


def shift_brightness(images: tf.Tensor, delta: float) -> tf.Tensor:
    """`delta` added to every channel of every pixel."""
    return tf.clip_by_value(tf.image.adjust_brightness(images, delta), 0.0, 1.0)


def scale_contrast(images: tf.Tensor, factor: float) -> tf.Tensor:
    """Each channel's distance from its mean over the image multiplied by `factor`."""
    return tf.clip_by_value(tf.image.adjust_contrast(images, factor), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class ColourVariant:
    """One colour shift; `name` is the value of the examples' `variant` feature and the slice it makes."""

    name: str
    shift: Callable[[tf.Tensor], tf.Tensor]


def _hue(degrees: int) -> ColourVariant:
    return ColourVariant(f"hue{degrees:+d}", functools.partial(rotate_hue, degrees=degrees))


def _saturation(factor: float) -> ColourVariant:
    return ColourVariant(f"saturation*{factor:g}", functools.partial(scale_saturation, factor=factor))


def _brightness(delta: float) -> ColourVariant:
    return ColourVariant(f"brightness{delta:+g}", functools.partial(shift_brightness, delta=delta))


def _contrast(factor: float) -> ColourVariant:
    return ColourVariant(f"contrast*{factor:g}", functools.partial(scale_contrast, factor=factor))


ORIGINAL = "original"

# The one list of the variants every model is scored on: the hue circle in 60
# degree steps (dyes), gray, and the lighting and camera changes a station sees.
VARIANTS: tuple[ColourVariant, ...] = (
    ColourVariant(ORIGINAL, tf.identity),
    ColourVariant("gray", gray),
    *(_hue(degrees) for degrees in (60, 120, 180, -120, -60)),
    *(_saturation(factor) for factor in (0.5, 1.5)),
    *(_brightness(delta) for delta in (-0.15, 0.15)),
    *(_contrast(factor) for factor in (0.6, 1.4)),
)
VARIANT_NAMES: tuple[str, ...] = tuple(variant.name for variant in VARIANTS)


def variants_named(names: list[str] | tuple[str, ...]) -> tuple[ColourVariant, ...]:
    """The variants called `names`, in that order; an unknown name is an error listing the known ones."""
    by_name = {variant.name: variant for variant in VARIANTS}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"unknown colour variant(s) {', '.join(unknown)}; known: {', '.join(VARIANT_NAMES)}")
    return tuple(by_name[name] for name in names)


# zlib's fastest level: a 227 px photo encodes several times faster than at the default level, for 11% more bytes.
PNG_COMPRESSION = 1


def _encode_png(image: tf.Tensor) -> tf.Tensor:
    return tf.io.encode_png(tf.cast(tf.round(image * 255.0), tf.uint8), compression=PNG_COMPRESSION)


def shift_and_encode_graph(names: tuple[str, ...]) -> tf.types.experimental.GenericFunction:
    """A graph from one photo's encoded bytes to one PNG per variant, traced once for any image size.

    The photo is decoded to 8-bit RGB (gray photos gain three equal channels,
    alpha is dropped) and each shifted copy is rounded back to 8 bits, so the
    `original` copy holds exactly the decoded pixels.
    """
    variants = variants_named(names)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def shift_and_encode(image_bytes: tf.Tensor) -> tf.Tensor:
        pixels = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image = tf.cast(pixels, tf.float32) / 255.0
        return tf.stack([_encode_png(variant.shift(image)) for variant in variants])

    return shift_and_encode
