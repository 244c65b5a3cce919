"""The image path from encoded bytes to model inputs, in TensorFlow ops only.

Transform runs these functions to write the training features and the served
model runs the very same graph on request bytes, so training and serving cannot
drift apart. Each image is decoded once; everything else is derived from that.
"""
from typing import NamedTuple

import tensorflow as tf

from models import features
from models.canny import canny_edges

# ITU-R BT.601 luma weights, as MATLAB rgb2gray and tf.image.rgb_to_grayscale.
RGB_TO_GRAY = (0.2989, 0.5870, 0.1140)


class DecodedImages(NamedTuple):
    """Fixed-size views of a batch of variable-size photos, from one decode each."""

    gray: tf.Tensor
    """[batch, feature_size, feature_size] float32 grayscale in [0, 1]."""
    cnn_image: tf.Tensor | None
    """[batch, resolution, resolution, channels] float32 in [0, 1]; None when not asked for."""
    bright: tf.Tensor
    """[batch] bool, measured on the full-size grayscale photo."""


def decode_images(
    image_bytes: tf.Tensor,
    *,
    feature_size: int = features.FEATURE_SIZE,
    cnn_resolution: int | None = 150,
    cnn_channels: int = 3,
    bright_level: int = features.BRIGHT_PIXEL_LEVEL,
    bright_share: float = features.BRIGHT_PIXEL_SHARE,
) -> DecodedImages:
    """Decode JPEG/PNG bytes (any size; 1-4 channels) into the fixed-size inputs.

    Photos differ in size, so each is decoded and resized on its own inside
    `tf.map_fn`; only fixed-size results leave the map. `image_bytes` may be
    `[batch]` or `[batch, 1]` (Transform hands over either). A `cnn_resolution`
    of None skips the CNN image, whose antialiased resize costs more than
    everything else here (MLP-only runs and the benchmark need no CNN image).
    """
    if cnn_channels not in (1, 3):
        raise ValueError(f"cnn_channels must be 1 or 3, got {cnn_channels}")
    image_bytes = tf.reshape(image_bytes, [-1])

    def decode_one(data: tf.Tensor) -> dict[str, tf.Tensor]:
        colour, gray = colour_and_gray(data)
        # MATLAB's rgb2gray rounds to uint8 before the reference method's "> 125" test.
        bright_pixels = tf.cast(tf.round(gray * 255.0) > bright_level, tf.float32)
        decoded = {
            "gray": _resize(gray, feature_size)[..., 0],
            "bright": tf.reduce_mean(bright_pixels) > bright_share,
        }
        if cnn_resolution is not None:
            decoded["cnn_image"] = _resize(colour if cnn_channels == 3 else gray, cnn_resolution)
        return decoded

    signature = {
        "gray": tf.TensorSpec([feature_size, feature_size], tf.float32),
        "bright": tf.TensorSpec([], tf.bool),
    }
    if cnn_resolution is not None:
        signature["cnn_image"] = tf.TensorSpec([cnn_resolution, cnn_resolution, cnn_channels], tf.float32)
    decoded = tf.map_fn(decode_one, image_bytes, fn_output_signature=signature)
    return DecodedImages(gray=decoded["gray"], cnn_image=decoded.get("cnn_image"), bright=decoded["bright"])


def block_counts(edges: tf.Tensor, grid: int = features.BLOCK_GRID) -> tf.Tensor:
    """Per-block (non-edge count, edge count) of `[batch, H, W]` edge maps, as float32.

    The reference method's 50 MLP inputs: a `grid` x `grid` partition read row
    by row, two numbers per block, `[batch, 2 * grid * grid]`.
    """
    height, width = edges.shape[1], edges.shape[2]
    if height is None or width is None or height % grid or width % grid:
        raise ValueError(f"edge maps of static size divisible by {grid} needed, got {edges.shape}")
    block_height, block_width = height // grid, width // grid
    blocks = tf.reshape(tf.cast(edges, tf.float32), [-1, grid, block_height, grid, block_width])
    edge_count = tf.reduce_sum(blocks, axis=[2, 4])
    pairs = tf.stack([block_height * block_width - edge_count, edge_count], axis=-1)
    return tf.reshape(pairs, [-1, 2 * grid * grid])


def image_features(
    image_bytes: tf.Tensor,
    *,
    feature_size: int = features.FEATURE_SIZE,
    grid: int = features.BLOCK_GRID,
    low: float = features.CANNY_LOW,
    high: float = features.CANNY_HIGH,
    sigma: float = features.CANNY_SIGMA,
    cnn_resolution: int | None = 150,
    cnn_channels: int = 3,
) -> dict[str, tf.Tensor]:
    """All model inputs of a batch of encoded photos, keyed by the names in `models.features`.

    Gray pixels, edge map (bool), block counts, CNN image (left out when
    `cnn_resolution` is None) and the bright flag come from one decode per
    photo, so both models see the same pixels.
    """
    decoded = decode_images(
        image_bytes, feature_size=feature_size, cnn_resolution=cnn_resolution, cnn_channels=cnn_channels
    )
    edges = canny_edges(decoded.gray, low=low, high=high, sigma=sigma)
    outputs = {
        features.GRAY_PIXELS_KEY: decoded.gray,
        features.EDGE_PIXELS_KEY: edges,
        features.BLOCK_COUNTS_KEY: block_counts(edges, grid),
        features.BRIGHTNESS_KEY: decoded.bright,
    }
    if decoded.cnn_image is not None:
        outputs[features.CNN_IMAGE_KEY] = decoded.cnn_image
    return outputs


def _big_endian(data: tf.Tensor, offset: int, length: int) -> tf.Tensor:
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, length), tf.uint8), tf.int64)
    return tf.reduce_sum(digits * tf.constant([256 ** (length - 1 - i) for i in range(length)], tf.int64))


def _little_endian(data: tf.Tensor, offset: int, length: int) -> tf.Tensor:
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, length), tf.uint8), tf.int64)
    return tf.reduce_sum(digits * tf.constant([256**i for i in range(length)], tf.int64))


def header_size(data: tf.Tensor) -> tf.Tensor:
    """[width, height] int64 of an encoded JPEG, PNG, GIF or BMP, read from its header without decoding.

    Other or truncated bytes give [0, 0] and are left to the decoder to refuse.
    A BMP's height may be negative (top-down rows); its magnitude is the size.
    """
    length = tf.strings.length(data)
    magic = tf.strings.substr(data, 0, 4)
    is_jpeg = tf.strings.substr(data, 0, 2) == b"\xff\xd8"
    is_png = tf.logical_and(magic == b"\x89PNG", length >= 24)
    is_gif = tf.logical_and(tf.strings.substr(data, 0, 3) == b"GIF", length >= 10)
    is_bmp = tf.logical_and(tf.strings.substr(data, 0, 2) == b"BM", length >= 26)

    def jpeg() -> tf.Tensor:
        height_width = tf.io.extract_jpeg_shape(data, output_type=tf.int64)[:2]
        return tf.reverse(height_width, [0])

    def bmp() -> tf.Tensor:
        width, height = _little_endian(data, 18, 4), _little_endian(data, 22, 4)
        return tf.abs(tf.stack([width, tf.where(height >= 2**31, height - 2**32, height)]))

    return tf.case(
        [
            (is_png, lambda: tf.stack([_big_endian(data, 16, 4), _big_endian(data, 20, 4)])),
            (is_gif, lambda: tf.stack([_little_endian(data, 6, 2), _little_endian(data, 8, 2)])),
            (is_bmp, bmp),
            (is_jpeg, jpeg),
        ],
        default=lambda: tf.zeros([2], tf.int64),
    )


def checked_decode(data: tf.Tensor) -> tf.Tensor:
    """Decode one photo, refusing it first when its header declares more than MAX_IMAGE_PIXELS.

    A 519 kB PNG can declare 13000x13000 pixels and take 4 GB to decode; the
    header costs nothing to read. The refusal is an InvalidArgument error that
    names the size and the limit, which servers answer as a client mistake.
    """
    size = header_size(data)
    check = tf.debugging.Assert(
        size[0] * size[1] <= features.MAX_IMAGE_PIXELS,
        ["image of", size[0], "x", size[1], "pixels is over the limit of", features.MAX_IMAGE_PIXELS, "pixels"],
    )
    with tf.control_dependencies([check]):
        return tf.io.decode_image(data, dtype=tf.float32, expand_animations=False)


def colour_and_gray(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decode one photo into RGB and grayscale float32 [h, w, 3] and [h, w, 1] in [0, 1].

    Alpha is dropped; a grayscale photo keeps its own values as gray instead of
    going through RGB weights that sum to 0.9999.
    """
    image = checked_decode(data)
    has_colour = tf.shape(image)[-1] >= 3
    return tf.cond(
        has_colour,
        lambda: (image[..., :3], _rgb_to_gray(image)),
        lambda: (tf.tile(image[..., :1], [1, 1, 3]), image[..., :1]),
    )


def _rgb_to_gray(image: tf.Tensor) -> tf.Tensor:
    """Weighted channel sum; three multiply-adds cost a third of rgb_to_grayscale's tensordot."""
    red, green, blue = RGB_TO_GRAY
    return image[..., 0:1] * red + image[..., 1:2] * green + image[..., 2:3] * blue


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Antialiased bicubic resize of [h, w, c] to [size, size, c], clipped to [0, 1].

    Bicubic with the kernel widened by the shrink factor is MATLAB imresize's
    default, which the reference method used (TF's antialiased Keys cubic is the
    same kernel; only the border handling differs, renormalised here, mirrored
    in MATLAB). Clipping removes the cubic kernel's overshoot.
    """
    resized = tf.image.resize(image, [size, size], method=tf.image.ResizeMethod.BICUBIC, antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0)
