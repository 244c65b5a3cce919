"""The colour shifts give known answers on tiny images, alone and in batches."""
import numpy as np
import pytest
import tensorflow as tf

from models import colour_variants as cv
from models.image_features import RGB_TO_GRAY

RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def _image(*pixels: tuple[float, float, float]) -> tf.Tensor:
    """A one-row [1, n, 3] image."""
    return tf.constant([pixels], dtype=tf.float32)


def _shifted(name: str, image: tf.Tensor) -> np.ndarray:
    (variant,) = cv.variants_named([name])
    return variant.shift(image).numpy()


def test_gray_is_three_equal_channels_of_bt601_luma():
    pixels = [(0.8, 0.4, 0.2), RED, (0.1, 0.9, 0.5)]
    result = cv.gray(_image(*pixels)).numpy()
    expected = [sum(w * c for w, c in zip(RGB_TO_GRAY, pixel)) for pixel in pixels]
    np.testing.assert_allclose(result[0], np.repeat(np.array(expected)[:, None], 3, axis=1), atol=1e-6)
    assert result[0, 1, 0] == pytest.approx(0.2989)


@pytest.mark.parametrize(
    ("degrees", "expected"),
    [(120, GREEN), (240, BLUE), (-120, BLUE), (360, RED), (60, (1.0, 1.0, 0.0)), (180, (0.0, 1.0, 1.0))],
)
def test_pure_red_turned_around_the_hue_circle(degrees, expected):
    np.testing.assert_allclose(cv.rotate_hue(_image(RED), degrees).numpy()[0, 0], expected, atol=1e-6)


def test_hue_turn_keeps_saturation_and_value_of_a_muted_colour():
    # (0.8, 0.4, 0.2): hue 1/18, saturation 0.75, value 0.8; +120 degrees moves the ranks from r>g>b to g>b>r.
    np.testing.assert_allclose(cv.rotate_hue(_image((0.8, 0.4, 0.2)), 120).numpy()[0, 0], (0.2, 0.8, 0.4), atol=1e-6)


def test_saturation_zero_leaves_the_brightest_channel_in_all_three():
    result = cv.scale_saturation(_image((0.8, 0.4, 0.2), GREEN), 0.0).numpy()[0]
    np.testing.assert_allclose(result, [(0.8, 0.8, 0.8), (1.0, 1.0, 1.0)], atol=1e-6)


def test_saturation_halved_and_raised_past_one():
    # s 0.75 -> 0.375: minimum 0.8 * (1 - 0.375) = 0.5, middle channel keeps its place: 0.5 + 0.3 / 3.
    np.testing.assert_allclose(_shifted("saturation*0.5", _image((0.8, 0.4, 0.2)))[0, 0], (0.8, 0.6, 0.5), atol=1e-6)
    # s 0.75 * 1.5 is clipped to 1: the minimum channel goes to 0, the middle one to 0.8 / 3.
    np.testing.assert_allclose(_shifted("saturation*1.5", _image((0.8, 0.4, 0.2)))[0, 0], (0.8, 0.8 / 3, 0.0), atol=1e-6)


def test_brightness_adds_and_clips():
    image = _image((0.2, 0.5, 0.95), (0.05, 0.1, 0.0))
    np.testing.assert_allclose(_shifted("brightness+0.15", image)[0], [(0.35, 0.65, 1.0), (0.2, 0.25, 0.15)], atol=1e-6)
    np.testing.assert_allclose(_shifted("brightness-0.15", image)[0], [(0.05, 0.35, 0.8), (0.0, 0.0, 0.0)], atol=1e-6)


def test_contrast_scales_distance_from_each_channels_mean_and_clips():
    image = _image((0.2, 0.0, 0.5), (0.6, 1.0, 0.5))  # channel means 0.4, 0.5, 0.5
    np.testing.assert_allclose(cv.scale_contrast(image, 1.5).numpy()[0], [(0.1, 0.0, 0.5), (0.7, 1.0, 0.5)], atol=1e-6)
    np.testing.assert_allclose(_shifted("contrast*0.6", image)[0], [(0.28, 0.2, 0.5), (0.52, 0.8, 0.5)], atol=1e-6)


def test_every_variant_shifts_each_image_of_a_batch_on_its_own():
    first = _image((0.2, 0.0, 0.5), (0.6, 1.0, 0.5))
    second = _image((0.9, 0.3, 0.1), (0.1, 0.2, 0.7))
    batch = tf.stack([first, second])
    for variant in cv.VARIANTS:
        batched = variant.shift(batch).numpy()
        np.testing.assert_allclose(batched[0], variant.shift(first).numpy(), atol=1e-6, err_msg=variant.name)
        np.testing.assert_allclose(batched[1], variant.shift(second).numpy(), atol=1e-6, err_msg=variant.name)
        assert batched.min() >= 0.0 and batched.max() <= 1.0, variant.name


def test_the_variant_table():
    assert cv.VARIANT_NAMES == (
        "original", "gray", "hue+60", "hue+120", "hue+180", "hue-120", "hue-60",
        "saturation*0.5", "saturation*1.5", "brightness-0.15", "brightness+0.15", "contrast*0.6", "contrast*1.4",
    )
    image = _image((0.8, 0.4, 0.2), RED)
    np.testing.assert_array_equal(_shifted("original", image), image.numpy())
    np.testing.assert_allclose(_shifted("hue+120", _image(RED))[0, 0], GREEN, atol=1e-6)
    gray = _shifted("gray", image)[0]
    np.testing.assert_allclose(gray, np.repeat(gray[:, :1], 3, axis=1))


def test_an_unknown_variant_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown colour variant\(s\) hue\+90; known: original, gray, hue\+60"):
        cv.variants_named(["gray", "hue+90"])
