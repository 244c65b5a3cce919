"""Inspecting with an article model, client side: the served patch map laid on the photo, regions, saved maps."""
import numpy as np
import pytest
from PIL import Image

from inspection.article_client import ArticleMap
from inspection.article_inspection import PNG_MAP_STEPS, inspect_with_article, save_map


def _answer(reference_dpi: float = 0.0) -> ArticleMap:
    """A 320x240 photo processed at half size: a 20x15 map, one hot cell at row 5, column 12."""
    cells = np.full((15, 20), 2.0, np.float32)
    cells[5, 12] = 9.0
    return ArticleMap(cells, 9.0, 5.0, (320, 240), (160, 120), (320, 240), reference_dpi)


def test_the_hot_cell_is_the_one_region_where_it_lies_on_the_photo():
    inspection = inspect_with_article(b"photo", lambda data: _answer())
    assert inspection.heat.shape == (240, 320)
    (region,) = inspection.regions
    box = region["box"]
    # cell (5, 12) covers processing pixels 96-104 x 40-48, photo pixels 192-208 x 80-96
    assert box["x"] <= 200 <= box["x"] + box["width"] and box["y"] <= 88 <= box["y"] + box["height"]
    assert region["score"] == pytest.approx(9.0, rel=0.05)
    assert inspection.to_json()["defective"] is True


def test_a_photo_at_another_resolution_than_the_article_is_not_scored():
    with pytest.raises(ValueError, match="the photo is at 150 DPI but the article was fitted on photos at 300 DPI"):
        inspect_with_article(b"photo", lambda data: _answer(reference_dpi=300.0), photo_dpi=150.0)
    assert inspect_with_article(b"photo", lambda data: _answer(reference_dpi=300.0), photo_dpi=301.0).regions


def test_saved_maps_hold_the_scores(tmp_path):
    heat = np.array([[0.0, 5.0], [10.0, 20.0]], np.float32)
    save_map(heat, 5.0, tmp_path / "out" / "map.npy")
    assert np.array_equal(np.load(tmp_path / "out" / "map.npy"), heat)
    save_map(heat, 5.0, tmp_path / "map.png")
    steps = np.asarray(Image.open(tmp_path / "map.png"))
    assert steps.dtype == np.uint16 or steps.max() > 255
    assert steps.tolist() == [[0, PNG_MAP_STEPS // 2 + 1], [PNG_MAP_STEPS, PNG_MAP_STEPS]]
    with pytest.raises(ValueError, match="name a .npy or .png file"):
        save_map(heat, 5.0, tmp_path / "map.tiff")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png", "out"]


def test_a_photo_whose_highest_cell_just_reaches_the_threshold_shows_its_peak_as_a_region():
    answer = _answer()
    answer = ArticleMap(answer.anomaly_map, 9.0, 9.0, answer.image_size, answer.processing_size, answer.reference_size)
    assert float(answer.heat().max()) < 9.0
    (region,) = inspect_with_article(b"photo", lambda data: answer).regions
    assert region["defect_pixels"] >= 1
