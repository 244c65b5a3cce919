"""Photo descriptors: known answers on made-up photos, the pixel limit, and the importer writing them."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from image_support import png_bomb
from ingest.importer import SHARD_PATTERN, import_images
from models import features
from models.photo_descriptors import photo_descriptors


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _solid(rgb: tuple[int, int, int], width: int = 30, height: int = 20) -> bytes:
    return _png(np.full((height, width, 3), rgb, np.uint8))


def _describe(*photos: bytes) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in photo_descriptors(tf.constant(list(photos))).items()}


def test_a_uniform_gray_photo_has_no_contrast_saturation_hue_or_sharpness():
    described = _describe(_solid((128, 128, 128), width=30, height=20))

    assert described[features.PHOTO_BRIGHTNESS_KEY][0] == pytest.approx(128 / 255, abs=1e-4)
    for key in (features.PHOTO_CONTRAST_KEY, features.PHOTO_SATURATION_KEY, features.PHOTO_SHARPNESS_KEY,
                features.PHOTO_HUE_X_KEY, features.PHOTO_HUE_Y_KEY):
        assert described[key][0] == pytest.approx(0.0, abs=1e-6), key
    assert (described[features.PHOTO_WIDTH_KEY][0], described[features.PHOTO_HEIGHT_KEY][0]) == (30, 20)


def test_hue_is_the_chroma_vector_of_the_primaries_at_their_angles():
    described = _describe(_solid((255, 0, 0)), _solid((0, 255, 0)), _solid((0, 0, 255)))

    half_root_3 = 3**0.5 / 2
    np.testing.assert_allclose(described[features.PHOTO_HUE_X_KEY], [1.0, -0.5, -0.5], atol=1e-6)
    np.testing.assert_allclose(described[features.PHOTO_HUE_Y_KEY], [0.0, half_root_3, -half_root_3], atol=1e-6)
    np.testing.assert_allclose(described[features.PHOTO_SATURATION_KEY], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(described[features.PHOTO_BRIGHTNESS_KEY], [0.2989, 0.5870, 0.1140], atol=1e-6)


def test_hues_either_side_of_the_wrap_are_neighbours():
    """Red turned a little either way round the circle: an angle would read 5 and 355 degrees."""
    described = _describe(_solid((255, 0, 21)), _solid((255, 21, 0)))

    np.testing.assert_allclose(described[features.PHOTO_HUE_X_KEY], [0.959, 0.959], atol=1e-3)
    np.testing.assert_allclose(described[features.PHOTO_HUE_Y_KEY], [-0.0713, 0.0713], atol=1e-3)


def test_contrast_and_sharpness_of_a_checkerboard():
    """Black and white 1-pixel squares, 8 x 8: luma std 0.5; |Laplacian| is 4 inside, 3 on an edge (the
    mirrored neighbour is the pixel itself), 2 in a corner, so (36 * 4 + 24 * 3 + 4 * 2) / 64 = 3.5.
    (The luma weights sum to 0.9999, hence the tolerance.)"""
    board = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    described = _describe(_png(np.stack([board] * 3, axis=-1)))

    assert described[features.PHOTO_CONTRAST_KEY][0] == pytest.approx(0.5, abs=1e-3)
    assert described[features.PHOTO_SHARPNESS_KEY][0] == pytest.approx(3.5, abs=1e-3)


def test_a_gray_photo_keeps_its_own_values_and_a_jpeg_its_header_size():
    buffer = io.BytesIO()
    Image.fromarray(np.full((12, 50), 200, np.uint8), "L").save(buffer, "JPEG", quality=95)
    described = _describe(buffer.getvalue())

    assert described[features.PHOTO_BRIGHTNESS_KEY][0] == pytest.approx(200 / 255, abs=2 / 255)
    assert described[features.PHOTO_SATURATION_KEY][0] == pytest.approx(0.0, abs=1e-6)
    assert (described[features.PHOTO_WIDTH_KEY][0], described[features.PHOTO_HEIGHT_KEY][0]) == (50, 12)


def test_a_photo_over_the_pixel_limit_is_refused_before_it_is_decoded():
    with pytest.raises(tf.errors.InvalidArgumentError, match="over the limit of"):
        _describe(_solid((10, 20, 30)), png_bomb(8000, gray=True))


def test_the_importer_writes_the_descriptors_the_graph_computes(tmp_path):
    src = tmp_path / "src"
    photos = {"non defective/gray.png": _solid((128, 128, 128)), "stain/red.png": _solid((255, 0, 0), 40, 10)}
    for name, data in photos.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)

    import_images(src, tmp_path / "out")

    files = sorted(str(path) for path in (tmp_path / "out").glob(SHARD_PATTERN))
    examples = [tf.train.Example.FromString(record.numpy()) for record in tf.data.TFRecordDataset(files)]
    assert len(examples) == 2
    for example in examples:
        feature = example.features.feature
        expected = _describe(feature[features.IMAGE_KEY].bytes_list.value[0])
        for key in features.PHOTO_FLOAT_DESCRIPTORS:
            assert list(feature[key].float_list.value) == pytest.approx([expected[key][0]], abs=1e-7), key
        for key in features.PHOTO_INT_DESCRIPTORS:
            assert list(feature[key].int64_list.value) == [expected[key][0]], key
    red = next(e for e in examples if e.features.feature[features.DEFECT_TYPE_KEY].bytes_list.value[0] == b"stain")
    assert red.features.feature[features.PHOTO_HUE_X_KEY].float_list.value[0] == pytest.approx(1.0)
    assert red.features.feature[features.PHOTO_WIDTH_KEY].int64_list.value[0] == 40
