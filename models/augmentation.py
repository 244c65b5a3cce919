"""Random colour and geometry changes of training images, so a CNN learns the defect, not the dye.

The real set's classes were photographed on differently coloured leather, and a
plainly trained RGB network learns the colour (ROC-AUC 0.996 as is, 0.29 in
gray). Jittering hue, saturation, brightness and contrast, turning some photos
gray, flipping, turning by quarter turns and cropping at random scale takes that
shortcut away. It runs only in the Trainer's input pipeline, never in a serving
signature, and draws every random number from stateless ops seeded by the run's
seed, so a run is repeatable.
"""
import tensorflow as tf

from models.colour_variants import gray

MAX_HUE_DELTA = 0.5
"""Fraction of a full turn: 0.5 draws any hue."""
SATURATION_RANGE = (0.3, 1.7)
MAX_BRIGHTNESS_DELTA = 0.2
CONTRAST_RANGE = (0.6, 1.4)
GRAY_SHARE = 0.3
"""Share of training photos turned gray (three equal channels)."""
MIN_CROP_SIDE = 0.75
"""The smallest random crop, as a share of the image side, before it is resized back."""


def augment_image(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One [h, w, c] float image in [0, 1] (c is 1 or 3), changed at random by a [2] int seed."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=9)
    image = _random_scale_crop(image, seeds[0])
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    image = tf.image.stateless_random_flip_up_down(image, seeds[2])
    image = tf.image.rot90(image, tf.random.stateless_uniform([], seeds[3], 0, 4, tf.int32))
    if image.shape[-1] == 3:
        image = tf.image.stateless_random_hue(image, MAX_HUE_DELTA, seeds[4])
        image = tf.image.stateless_random_saturation(image, *SATURATION_RANGE, seeds[5])
        image = tf.clip_by_value(image, 0.0, 1.0)
        image = tf.where(tf.random.stateless_uniform([], seeds[6]) < GRAY_SHARE, gray(image), image)
    image = tf.image.stateless_random_brightness(image, MAX_BRIGHTNESS_DELTA, seeds[7])
    image = tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, seeds[8])
    return tf.clip_by_value(image, 0.0, 1.0)


def _random_scale_crop(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A random square crop of MIN_CROP_SIDE to all of the side, resized back to the input's size.

    The model keeps its input shape (AlexNet's is fixed) while it sees defects
    at scales up to a third larger than in the photos.
    """
    height, width = image.shape[0], image.shape[1]
    side_seed, corner_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    share = tf.random.stateless_uniform([], side_seed, MIN_CROP_SIDE, 1.0)
    side = tf.cast(tf.round(share * min(height, width)), tf.int32)
    crop = tf.image.stateless_random_crop(image, tf.stack([side, side, image.shape[-1]]), corner_seed)
    return tf.image.resize(crop, [height, width], method=tf.image.ResizeMethod.BILINEAR, antialias=True)


def augmented(dataset: tf.data.Dataset, batch_size: int, seed: int) -> tf.data.Dataset:
    """(image, label) batches with every image changed anew each epoch, the same way for the same seed."""
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    changed = tf.data.Dataset.zip((dataset.unbatch(), randoms)).map(
        lambda example, pair: (augment_image(example[0], pair), example[1]), num_parallel_calls=tf.data.AUTOTUNE
    )
    return changed.batch(batch_size).prefetch(tf.data.AUTOTUNE)
