"""A few numbers that describe a photo, so TFDV's statistics, drift and skew checks can see photos at all.

On raw image bytes TFDV sees nothing but byte strings. The importer writes
these descriptors into every tf.Example and `leather monitor` computes them on
the photos stations send; both call `photo_descriptors`, so training and
served photos are described by the same ops. Each photo is decoded with the
model's own decoder (`models.image_features`), which refuses a photo whose
header declares more than MAX_IMAGE_PIXELS before decoding it.

Hue is an angle, and its mean or histogram breaks at the wrap (hues of 359 and
1 degrees are neighbours, their mean of 180 is cyan). So hue is kept as the
photo's mean chroma vector in the opponent plane: (R - (G + B) / 2,
sqrt(3) / 2 * (G - B)) averaged over pixels. Its angle is the hue of the mean
colour (the hexagonal hue, equal to HSV's at the primaries and secondaries),
its length the mean chroma. Both components are continuous across the wrap,
gray pixels add nothing instead of voting for red, and a turn of the hue
circle (a dye change) turns the vector. Pure red gives (1, 0), pure green
(-0.5, 0.866), pure blue (-0.5, -0.866); any gray gives (0, 0). Being linear in
the pixels, it costs three channel means.
"""
from collections.abc import Mapping, Sequence

import tensorflow as tf

from models import features
from models.image_features import colour_and_gray, header_size

_SIN_60 = 3.0**0.5 / 2.0

_SIGNATURE = {
    **{key: tf.TensorSpec([], tf.float32) for key in features.PHOTO_FLOAT_DESCRIPTORS},
    **{key: tf.TensorSpec([], tf.int64) for key in features.PHOTO_INT_DESCRIPTORS},
}


def _sharpness(gray: tf.Tensor) -> tf.Tensor:
    """Mean absolute 3x3 Laplacian of [h, w, 1] luma in [0, 1], borders mirrored: a uniform photo gives 0.

    The four neighbours are slices of the padded image; a conv2d did the same sums at twice the cost.
    """
    padded = tf.pad(gray[..., 0], [[1, 1], [1, 1]], mode="SYMMETRIC")
    centre = padded[1:-1, 1:-1]
    neighbours = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    return tf.reduce_mean(tf.abs(neighbours - 4.0 * centre))


def _saturation(colour: tf.Tensor) -> tf.Tensor:
    """Mean HSV saturation, (max - min) / max per pixel (0 for black), of [h, w, 3] RGB in [0, 1]."""
    red, green, blue = colour[..., 0], colour[..., 1], colour[..., 2]  # pairwise: a reduction over 3 is 4x slower
    brightest = tf.maximum(tf.maximum(red, green), blue)
    dimmest = tf.minimum(tf.minimum(red, green), blue)
    return tf.reduce_mean(tf.math.divide_no_nan(brightest - dimmest, brightest))


def _describe_one(data: tf.Tensor) -> dict[str, tf.Tensor]:
    colour, gray = colour_and_gray(data)
    red, green, blue = tf.unstack(tf.reduce_mean(colour, axis=[0, 1]), num=3)
    width_height = header_size(data)
    return {
        features.PHOTO_BRIGHTNESS_KEY: tf.reduce_mean(gray),
        features.PHOTO_CONTRAST_KEY: tf.math.reduce_std(gray),
        features.PHOTO_SATURATION_KEY: _saturation(colour),
        features.PHOTO_HUE_X_KEY: red - (green + blue) / 2.0,
        features.PHOTO_HUE_Y_KEY: _SIN_60 * (green - blue),
        features.PHOTO_SHARPNESS_KEY: _sharpness(gray),
        features.PHOTO_WIDTH_KEY: width_height[0],
        features.PHOTO_HEIGHT_KEY: width_height[1],
    }


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def photo_descriptors(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
    """The descriptors of a batch of encoded photos (JPEG, PNG, GIF, BMP; any size), `[batch]` each by key.

    Brightness and contrast are the mean and standard deviation of BT.601 luma
    in [0, 1]; saturation is HSV's, in [0, 1]; hue is the mean chroma vector
    (see the module's docstring), components in [-1, 1]; sharpness is the
    mean absolute Laplacian of luma; width and height (int64) are read from the
    header. Traced once for any batch and image size. A photo that does not
    decode or is over the pixel limit raises InvalidArgumentError.
    """
    return tf.map_fn(_describe_one, image_bytes, fn_output_signature=_SIGNATURE)


def descriptor_features(values: Mapping[str, float]) -> dict[str, tf.train.Feature]:
    """One photo's descriptors (a row of `photo_descriptors`' output) as tf.Example features, keyed as the schema's."""
    described = {
        key: tf.train.Feature(float_list=tf.train.FloatList(value=[values[key]]))
        for key in features.PHOTO_FLOAT_DESCRIPTORS
    }
    for key in features.PHOTO_INT_DESCRIPTORS:
        described[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(values[key])]))
    return described


def descriptor_feature_rows(image_bytes: Sequence[bytes]) -> list[dict[str, tf.train.Feature]]:
    """Each photo's descriptors as tf.Example features, from one graph call: what the importer and the colour
    variants write beside each photo."""
    columns = {key: value.numpy() for key, value in photo_descriptors(tf.constant(list(image_bytes))).items()}
    return [descriptor_features({key: column[row] for key, column in columns.items()}) for row in range(len(image_bytes))]
