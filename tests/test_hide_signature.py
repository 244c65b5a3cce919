"""The hide signature: one request per photo, tiles cut in the graph, each tile seen as the Transform graph sees a photo."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from inspection.tiling import patch_origins
from models import features, texture
from models.hide_signature import (
    IMAGE_SIZE_OUTPUT,
    TILE_ORIGIN_OUTPUT,
    make_hide_signature,
    resize_taps,
)
from models.image_features import image_features
from models.serving_contract import EMBEDDING_OUTPUT, LABEL_OUTPUT, PROBABILITY_OUTPUT
from models.signatures import attach_scorer

RESOLUTION = 32
THRESHOLD = 0.5


def _scored_model(channels: int) -> tf.keras.Model:
    """A small texture net carrying what make_serving_signatures attaches: `scorer`, `score` and `decision_threshold`."""
    tf.keras.utils.set_random_seed(5)
    model = texture.build_texture_net(channels)
    attach_scorer(model, texture.EMBEDDING_LAYER, tf.TensorSpec([None, RESOLUTION, RESOLUTION, channels], tf.float32))
    model.decision_threshold = tf.Variable(THRESHOLD, dtype=tf.float32, trainable=False)
    return model


@pytest.fixture(scope="module")
def rgb_model() -> tf.keras.Model:
    return _scored_model(3)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 150x110 photo with texture, a colour ramp and a bright square, so tiles differ."""
    rng = np.random.default_rng(2)
    pixels = rng.integers(40, 200, (110, 150, 3)).astype(np.uint8)
    pixels[..., 0] = np.linspace(30, 220, 150).astype(np.uint8)
    pixels[60:90, 100:130] = 250
    return pixels


def _encoded(pixels: np.ndarray, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, kind)
    return buffer.getvalue()


def _per_tile_reference(model: tf.keras.Model, pixels: np.ndarray, patch: int, channels: int) -> dict[str, np.ndarray]:
    """Every tile cropped, PNG-encoded and sent through the Transform graph's own image path, then the model."""
    origins = patch_origins(pixels.shape[1], pixels.shape[0], patch, STRIDE)
    crops = [_encoded(pixels[y : y + patch, x : x + patch]) for x, y in origins]
    images = image_features(tf.constant(crops), cnn_resolution=RESOLUTION, cnn_channels=channels)[features.CNN_IMAGE_KEY]
    probability, embedding = model.scorer(images, training=False)
    return {"origins": np.array(origins), PROBABILITY_OUTPUT: probability.numpy()[:, 0], EMBEDDING_OUTPUT: embedding.numpy()}


STRIDE = 40


@pytest.mark.parametrize("channels", [3, 1])
def test_each_tile_gets_what_the_transform_graph_gives_its_own_photo(photo, channels, rgb_model):
    model = rgb_model if channels == 3 else _scored_model(1)
    signature = make_hide_signature(model, features.CNN_IMAGE_KEY, (RESOLUTION, RESOLUTION, channels))

    answer = signature(image_bytes=tf.constant(_encoded(photo)), patch_size=tf.constant(64), stride=tf.constant(STRIDE))

    expected = _per_tile_reference(model, photo, 64, channels)
    # 150 px wide: x at 0, 40, 80 and 86 (flush); 110 px high: y at 0, 40 and 46 (flush).
    assert len(expected["origins"]) == 12
    np.testing.assert_array_equal(answer[TILE_ORIGIN_OUTPUT].numpy(), expected["origins"])
    np.testing.assert_array_equal(answer[IMAGE_SIZE_OUTPUT].numpy(), [150, 110])
    np.testing.assert_allclose(answer[PROBABILITY_OUTPUT].numpy(), expected[PROBABILITY_OUTPUT], atol=1e-5)
    np.testing.assert_allclose(answer[EMBEDDING_OUTPUT].numpy(), expected[EMBEDDING_OUTPUT], atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(answer[LABEL_OUTPUT].numpy(), (expected[PROBABILITY_OUTPUT] >= THRESHOLD).astype(int))
    # The tiles are not all alike, so equal answers are not an accident of a constant model.
    assert np.ptp(expected[EMBEDDING_OUTPUT], axis=0).max() > 1e-3


def test_resize_taps_reproduce_tf_resize_on_a_line():
    signal = np.random.default_rng(0).random(227).astype(np.float32)
    index, weight = resize_taps(tf.constant(227), 100)
    expected = tf.image.resize(signal.reshape(227, 1, 1), [100, 1], method="bicubic", antialias=True).numpy().ravel()
    np.testing.assert_allclose((signal[index.numpy()] * weight.numpy()).sum(axis=1), expected, atol=1e-6)
    # An antialiased cubic kernel shrinking by 2.27 reaches 4 x 2.27 input samples: at most 10 taps.
    assert index.shape == (100, 10)


def test_a_saved_model_answers_a_jpeg_hide_with_the_same_tiles(photo, rgb_model, tmp_path):
    module = tf.Module()
    module.weights = [*rgb_model.variables, rgb_model.decision_threshold]
    signature = make_hide_signature(rgb_model, features.CNN_IMAGE_KEY, (RESOLUTION, RESOLUTION, 3))
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={"inspect_hide": signature})
    loaded = tf.saved_model.load(str(tmp_path / "model")).signatures["inspect_hide"]
    jpeg = tf.constant(_encoded(photo, "JPEG"))

    served = loaded(image_bytes=jpeg, patch_size=tf.constant(50), stride=tf.constant(50))
    direct = signature(image_bytes=jpeg, patch_size=tf.constant(50), stride=tf.constant(50))

    # 150x110 in 50 px tiles: three columns, and rows at 0, 50 and 60 (flush).
    assert served[TILE_ORIGIN_OUTPUT].numpy()[:, 1].tolist() == [0, 0, 0, 50, 50, 50, 60, 60, 60]
    np.testing.assert_allclose(served[EMBEDDING_OUTPUT].numpy(), direct[EMBEDDING_OUTPUT].numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def strict_signature(rgb_model):
    """Limits small enough for a small photo: 500 tiles, 80 px tiles, a million pixels."""
    return make_hide_signature(
        rgb_model, features.CNN_IMAGE_KEY, (RESOLUTION, RESOLUTION, 3), max_tiles=500, max_patch=80,
        max_pixels=1_000_000,
    )


@pytest.mark.parametrize(
    ("data", "patch", "stride", "message"),
    [
        ("photo", 200, 50, "patch_size 200 px does not fit the 150x110 px photo"),
        ("photo", 100, 50, "patch_size 100 px is above the 80 px limit"),
        ("photo", 0, 50, "patch_size 0 px does not fit"),
        ("photo", 40, 0, "stride must be at least 1 px, got 0"),
        ("photo", 32, 1, "patch_size 32 and stride 1 make 9401 tiles of this photo; one request takes at most 500"),
        ("text", 32, 32, "the hide photo must be a JPEG or PNG image"),
        ("bomb", 32, 32, "the photo has 5000x4000 pixels, more than the 1000000 this model decodes"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(photo, strict_signature, data, patch, stride, message):
    payload = {
        "photo": _encoded(photo),
        "text": b"not an image at all, just some words",
        # A PNG header that declares 5000x4000 pixels: refused before anything is decoded.
        "bomb": _encoded(photo)[:16] + (5000).to_bytes(4, "big") + (4000).to_bytes(4, "big") + _encoded(photo)[24:],
    }[data]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        strict_signature(image_bytes=tf.constant(payload), patch_size=tf.constant(patch), stride=tf.constant(stride))


def test_only_models_reading_square_cnn_images_get_the_signature(rgb_model):
    with pytest.raises(ValueError, match="needs a model reading square CNN images"):
        make_hide_signature(rgb_model, features.BLOCK_COUNTS_KEY, (50,))
