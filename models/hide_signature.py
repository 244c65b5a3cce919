"""The hide signature: one request per whole-hide photo, tiled inside the graph.

A tannery photographs whole hides; sending 1,160 cropped and PNG-encoded tiles
of one photo costs the client more than the model. This signature takes the
photo's encoded bytes once, cuts the tiles in the graph (every `stride` pixels
plus one flush with the far edge, row by row, as `inspection/tiling.py` does)
and answers, per tile, the defect probability, the label and the embedding,
with the tile grid, so TF Serving can answer it as well as `leather serve`.

Each tile reaches the network exactly as a photo of that tile would through the
Transform graph (`models/image_features.py`): decoded to [0, 1], RGB or gray as
the model was trained, resized with the antialiased bicubic kernel to the
model's resolution and clipped. The resize is linear and every tile has the
same size, so its kernel weights are computed once per request (by
`tf.image.resize` itself, on a unit basis) and applied as sparse products: rows
once per row of tiles, columns per tile. That gives the same numbers as
resizing each tile (to float rounding; tests/test_hide_signature.py) at a
fraction of the cost. Tiles run through the network up to TILES_PER_CALL of a
row at a time, so memory does not grow with the photo.
"""
from collections.abc import Sequence

import tensorflow as tf

from models import features
from models.image_features import colour_and_gray
from models.serving_contract import EMBEDDING_OUTPUT, IMAGE_BYTES_INPUT, LABEL_OUTPUT, PROBABILITY_OUTPUT

HIDE_SIGNATURE = "inspect_hide"
PATCH_SIZE_INPUT = "patch_size"
STRIDE_INPUT = "stride"
TILE_ORIGIN_OUTPUT = "tile_origin"
"""[tiles, 2] int32: each tile's top-left corner (x, y) in photo pixels, row by row."""
IMAGE_SIZE_OUTPUT = "image_size"
"""[2] int32: the photo's (width, height)."""

MAX_TILES = 20_000
"""Tiles one request may ask for: the answer holds an embedding per tile (20,000 x 128 floats = 10 MB)."""
MAX_PATCH = 2048
"""Largest tile side in pixels: the resize weights are read off a patch x patch unit basis (16 MB at 2048)."""
TILES_PER_CALL = 64
"""Tiles resized and run through the network at once; bounds the memory of a request whatever the photo."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_photo(image_bytes: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """The photo's (height, width) from its header; refuses other formats and pixel bombs before decoding."""
    is_png = tf.logical_and(
        tf.strings.length(image_bytes) >= 24, tf.strings.substr(image_bytes, 0, 8) == _PNG_SIGNATURE
    )

    def png_size() -> tf.Tensor:
        width_height = tf.io.decode_raw(tf.strings.substr(image_bytes, 16, 8), tf.int32, little_endian=False)
        return tf.reverse(width_height, [0])

    def other_size() -> tf.Tensor:
        with tf.control_dependencies([tf.debugging.Assert(False, ["the hide photo must be a JPEG or PNG image"])]):
            return tf.zeros([2], tf.int32)

    size = tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.image.extract_jpeg_shape(image_bytes)[:2],
        lambda: tf.cond(is_png, png_size, other_size),
    )
    pixels = tf.cast(size[0], tf.int64) * tf.cast(size[1], tf.int64)
    message = tf.strings.format(
        "the photo has {}x{} pixels, more than the {} this model decodes", (size[1], size[0], max_pixels)
    )
    with tf.control_dependencies([tf.debugging.Assert(pixels <= max_pixels, [message])]):
        return tf.identity(size)


def tile_starts(length: tf.Tensor, patch: tf.Tensor, stride: tf.Tensor) -> tf.Tensor:
    """Tile starts covering [0, length): every `stride`, plus one flush with the far edge."""
    regular = tf.range(0, length - patch + 1, stride)
    last = length - patch
    return tf.cond(regular[-1] == last, lambda: regular, lambda: tf.concat([regular, [last]], 0))


def resize_taps(patch: tf.Tensor, resolution: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The antialiased bicubic resize of `patch` samples to `resolution` as (index, weight), [resolution, taps] each.

    Output sample i is sum_t weight[i, t] * input[index[i, t]]: the weights are
    `tf.image.resize`'s own, read off by resizing the unit vectors.
    """
    basis = tf.reshape(tf.eye(patch), [patch, patch, 1, 1])
    resized = tf.image.resize(basis, [resolution, 1], method=tf.image.ResizeMethod.BICUBIC, antialias=True)
    matrix = tf.transpose(tf.reshape(resized, [patch, resolution]))
    nonzero = tf.cast(tf.not_equal(matrix, 0.0), tf.int32)
    first = tf.cast(tf.argmax(nonzero, axis=1), tf.int32)
    last = patch - 1 - tf.cast(tf.argmax(tf.reverse(nonzero, [1]), axis=1), tf.int32)
    index = first[:, None] + tf.range(tf.reduce_max(last - first) + 1)[None, :]
    inside = index <= last[:, None]
    index = tf.minimum(index, patch - 1)
    weight = tf.where(inside, tf.gather(matrix, index, batch_dims=1), 0.0)
    return index, weight


def _band_matrix(starts: tf.Tensor, index: tf.Tensor, weight: tf.Tensor, length: tf.Tensor) -> tf.SparseTensor:
    """The resize of the windows at `starts` of a line of `length` samples: sparse [windows * resolution, length].

    Row n * resolution + i holds the weights of output sample i of window n.
    A sparse product touches only the taps: resizing 41 tiles of a row this
    way took a third of the time `tf.image.resize` took on the crops.
    """
    windows, resolution, taps = tf.size(starts), tf.shape(index)[0], tf.shape(index)[1]
    columns = tf.reshape(starts[:, None, None] + index[None], [-1])
    values = tf.reshape(tf.tile(weight[None], [windows, 1, 1]), [-1])
    rows = tf.repeat(tf.range(windows * resolution), taps)
    used = tf.not_equal(values, 0.0)
    positions = tf.cast(tf.stack([tf.boolean_mask(rows, used), tf.boolean_mask(columns, used)], axis=1), tf.int64)
    shape = tf.cast(tf.stack([windows * resolution, length]), tf.int64)
    return tf.sparse.SparseTensor(positions, tf.boolean_mask(values, used), shape)


def _resize_rows(strip: tf.Tensor, index: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """A row strip [patch, width, c] resized along its height, laid out [width, resolution * c] for the columns."""
    patch, width, channels = tf.shape(strip)[0], tf.shape(strip)[1], tf.shape(strip)[2]
    heights = _band_matrix(tf.zeros([1], tf.int32), index, weight, patch)
    rows = tf.sparse.sparse_dense_matmul(heights, tf.reshape(strip, [patch, -1]))
    return tf.reshape(tf.transpose(tf.reshape(rows, [-1, width, channels]), [1, 0, 2]), [width, -1])


def _resize_columns(rows: tf.Tensor, xs: tf.Tensor, index: tf.Tensor, weight: tf.Tensor, channels: int) -> tf.Tensor:
    """The network's images [n, resolution, resolution, c] of the tiles at columns `xs` of a `_resize_rows` strip."""
    resolution = tf.shape(index)[0]
    tiles = tf.sparse.sparse_dense_matmul(_band_matrix(xs, index, weight, tf.shape(rows)[0]), rows)
    tiles = tf.transpose(tf.reshape(tiles, [tf.size(xs), resolution, resolution, channels]), [0, 2, 1, 3])
    return tf.clip_by_value(tiles, 0.0, 1.0)


def _tile_grid(
    width: tf.Tensor, height: tf.Tensor, patch_size: tf.Tensor, stride: tf.Tensor, max_tiles: int, max_patch: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(patch_size, xs, ys) once the request's geometry is checked: nothing downstream runs on a refused one."""
    fits = tf.logical_and(patch_size >= 1, patch_size <= tf.minimum(height, width))
    checks = [
        tf.debugging.Assert(
            fits, [tf.strings.format("patch_size {} px does not fit the {}x{} px photo", (patch_size, width, height))]
        ),
        tf.debugging.Assert(
            patch_size <= max_patch, [tf.strings.format(f"patch_size {{}} px is above the {max_patch} px limit", patch_size)]
        ),
        tf.debugging.Assert(stride >= 1, [tf.strings.format("stride must be at least 1 px, got {}", stride)]),
    ]
    with tf.control_dependencies(checks):
        patch_size, stride = tf.identity(patch_size), tf.identity(stride)
    xs, ys = tile_starts(width, patch_size, stride), tile_starts(height, patch_size, stride)
    count = tf.size(xs) * tf.size(ys)
    too_many = tf.strings.format(
        "patch_size {} and stride {} make {} tiles of this photo; one request takes at most {}",
        (patch_size, stride, count, max_tiles),
    )
    with tf.control_dependencies([tf.debugging.Assert(count <= max_tiles, [too_many])]):
        return tf.identity(patch_size), tf.identity(xs), tf.identity(ys)


def make_hide_signature(
    model: tf.keras.Model,
    input_key: str,
    input_shape: Sequence[int],
    *,
    max_tiles: int = MAX_TILES,
    max_patch: int = MAX_PATCH,
    max_pixels: int = features.MAX_IMAGE_PIXELS,
) -> tf.types.experimental.ConcreteFunction:
    """The hide signature of a model whose `scorer` returns (probability, embedding) on CNN images of `input_shape`.

    `model` must already carry `scorer`, its traced `score` and `decision_threshold` (made by
    `models.signatures.make_serving_signatures`).
    """
    if input_key != features.CNN_IMAGE_KEY or len(input_shape) != 3 or input_shape[0] != input_shape[1]:
        raise ValueError(
            f"the hide signature needs a model reading square CNN images ({features.CNN_IMAGE_KEY!r}), "
            f"not {input_key!r} of shape {list(input_shape)}"
        )
    resolution, channels = int(input_shape[0]), int(input_shape[-1])
    embedding_width = model.scorer.outputs[1].shape[-1]

    # Explicit loops without autograph: converting the network's layers inside a loop made tracing take minutes.
    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec(shape=[], dtype=tf.string, name=IMAGE_BYTES_INPUT),
            tf.TensorSpec(shape=[], dtype=tf.int32, name=PATCH_SIZE_INPUT),
            tf.TensorSpec(shape=[], dtype=tf.int32, name=STRIDE_INPUT),
        ]
    )
    def inspect_hide(image_bytes: tf.Tensor, patch_size: tf.Tensor, stride: tf.Tensor) -> dict[str, tf.Tensor]:
        size = _check_photo(image_bytes, max_pixels)
        height, width = size[0], size[1]
        patch_size, xs, ys = _tile_grid(width, height, patch_size, stride, max_tiles, max_patch)
        colour, gray = colour_and_gray(image_bytes)
        pixels = colour if channels == 3 else gray
        index, weight = resize_taps(patch_size, resolution)
        chunks = tf.math.floordiv(tf.size(xs) + TILES_PER_CALL - 1, TILES_PER_CALL)

        def score_chunk(step: tf.Tensor, probabilities: tf.TensorArray, embeddings: tf.TensorArray) -> tuple:
            row, chunk = step // chunks, step % chunks
            rows = _resize_rows(pixels[ys[row] : ys[row] + patch_size], index, weight)
            starts = xs[chunk * TILES_PER_CALL : (chunk + 1) * TILES_PER_CALL]
            images = tf.ensure_shape(
                _resize_columns(rows, starts, index, weight, channels), [None, resolution, resolution, channels]
            )
            probability, embedding = model.score(images)
            probabilities = probabilities.write(step, tf.reshape(tf.cast(probability, tf.float32), [-1]))
            return step + 1, probabilities, embeddings.write(step, tf.cast(embedding, tf.float32))

        steps = tf.size(ys) * chunks
        _, probabilities, embeddings = tf.while_loop(
            lambda step, *_: step < steps,
            score_chunk,
            (
                tf.constant(0),
                tf.TensorArray(tf.float32, size=steps, infer_shape=False, element_shape=[None]),
                tf.TensorArray(tf.float32, size=steps, infer_shape=False, element_shape=[None, embedding_width]),
            ),
            parallel_iterations=1,
        )
        probability = probabilities.concat()
        grid_x, grid_y = tf.meshgrid(xs, ys)
        return {
            PROBABILITY_OUTPUT: probability,
            LABEL_OUTPUT: tf.cast(probability >= model.decision_threshold, tf.int64),
            EMBEDDING_OUTPUT: embeddings.concat(),
            TILE_ORIGIN_OUTPUT: tf.stack([tf.reshape(grid_x, [-1]), tf.reshape(grid_y, [-1])], axis=1),
            IMAGE_SIZE_OUTPUT: tf.stack([width, height]),
        }

    return inspect_hide.get_concrete_function()
