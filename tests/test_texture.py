"""The texture model: any input size, blind to colour by construction, and the embedding it pools."""
import numpy as np
import pytest
import tensorflow as tf

from models import texture
from models.image_features import RGB_TO_GRAY


@pytest.fixture(scope="module")
def net():
    tf.keras.utils.set_random_seed(3)
    model = texture.build_texture_net(3)
    # A few steps on noise give the batch-norm layers non-trivial statistics.
    images = np.random.default_rng(0).random((16, 64, 64, 3), dtype=np.float32)
    model.compile("adam", "binary_crossentropy")
    model.fit(images, np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    return model


def _photos(count: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(size)
    base = rng.random((count, size, size, 1), dtype=np.float32) * 0.5 + 0.25
    tint = np.array([0.9, 0.6, 0.3], np.float32)
    return np.clip(base * tint + rng.normal(0, 0.02, (count, size, size, 3)).astype(np.float32), 0, 1)


@pytest.mark.parametrize("size", [texture.MIN_INPUT_SIZE, 50, 97, 200])
def test_any_size_from_the_minimum_gives_one_probability_per_photo(net, size):
    probability = net.predict(_photos(2, size), verbose=0)
    assert probability.shape == (2, 1) and np.all((probability > 0) & (probability < 1))


def test_gray_brightness_and_contrast_changes_do_not_change_the_score(net):
    photos = _photos(4, 64)
    luma = photos @ np.array(RGB_TO_GRAY, np.float32)
    gray = np.repeat(luma[..., None], 3, axis=-1)
    # An affine change of luminance: darker by a third and shifted, kept inside [0, 1].
    duller = gray * 0.66 + 0.05
    expected = net.predict(photos, verbose=0)
    np.testing.assert_allclose(net.predict(gray, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(net.predict(duller, verbose=0), expected, atol=1e-4)
    np.testing.assert_allclose(net.predict(luma[..., None], verbose=0), expected, atol=1e-5)


def test_luminance_layer_standardises_each_photo_on_its_own():
    layer = texture.LuminanceStandardization()
    photos = np.stack([np.full((4, 4, 3), 0.2, np.float32), np.zeros((4, 4, 3), np.float32)])
    photos[0, 0, 0] = [1.0, 1.0, 1.0]
    out = layer(photos).numpy()
    assert out.shape == (2, 4, 4, 1)
    assert out[0].mean() == pytest.approx(0.0, abs=1e-6) and out[0].std() == pytest.approx(1.0, abs=1e-2)
    # 15 pixels at 0.2 and one at 1.0: the bright one sits sqrt(15) standard deviations above the mean.
    assert out[0, 0, 0, 0] == pytest.approx(np.sqrt(15), rel=1e-2)
    np.testing.assert_array_equal(out[1], 0.0)


def test_embedding_is_the_pooled_last_stage(net):
    embed = tf.keras.Model(net.inputs, net.get_layer(texture.EMBEDDING_LAYER).output)
    vectors = embed.predict(_photos(3, 80), verbose=0)
    assert vectors.shape == (3, texture.STAGE_WIDTHS[-1])
    assert np.all(vectors >= 0)


def test_too_small_or_wrong_channels_are_refused():
    with pytest.raises(ValueError, match="channels must be 1"):
        texture.build_texture_net(2)
