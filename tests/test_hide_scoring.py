"""Self-referenced tile scores, the pixel map and its regions, on fields whose answers are known."""
import numpy as np
import pytest

from inspection.scoring import (
    MAD_TO_SIGMA,
    neighbour_distances,
    overlapping,
    pixel_scores,
    regions,
    robust_z,
    tile_scores,
)
from inspection.settings import ScoringSettings

PATCH, STRIDE = 20, 10


def _grid(columns: int, rows: int) -> np.ndarray:
    """Tile corners (x, y) of a columns x rows grid at STRIDE, row by row."""
    return np.array([(x * STRIDE, y * STRIDE) for y in range(rows) for x in range(columns)])


def _field(count: int, noise: float, seed: int = 0) -> np.ndarray:
    """Embeddings of a sound hide: one texture, a little noise."""
    rng = np.random.default_rng(seed)
    return np.ones((count, 8)) + noise * rng.standard_normal((count, 8))


def test_robust_z_is_distance_from_the_median_in_scaled_mads():
    # Median 3, absolute deviations 2, 1, 0, 1, 97: MAD 1.
    np.testing.assert_allclose(robust_z([1, 2, 3, 4, 100]), np.array([-2, -1, 0, 1, 97]) / MAD_TO_SIGMA)
    np.testing.assert_allclose(robust_z([1, 2, 3, 4, 100], floor=2.0), np.array([-2, -1, 0, 1, 97]) / 2.0)
    with pytest.raises(ValueError, match="positive floor"):
        robust_z([4, 4, 4])


def test_an_outlier_among_many_moves_neither_the_median_nor_the_spread():
    values = np.arange(101.0)
    with_outlier = np.append(values, 1e6)
    assert robust_z(with_outlier)[50] == pytest.approx(-0.5 / (25.5 * MAD_TO_SIGMA), abs=1e-9)
    assert robust_z(with_outlier)[-1] > 1e4


def test_a_planted_outlier_tile_in_a_uniform_field_ranks_first():
    origins = _grid(12, 9)
    embeddings = _field(len(origins), noise=0.01)
    embeddings[50] += 0.5

    scores = tile_scores(embeddings, np.full(len(origins), 0.3), origins, PATCH)

    assert np.argmax(scores) == 50
    assert scores[50] > ScoringSettings().threshold > np.delete(scores, 50).max()


def test_a_perfectly_uniform_field_still_ranks_its_odd_tile_first():
    origins = _grid(6, 6)
    embeddings = np.ones((36, 4))
    embeddings[14, 0] = 1.001

    scores = tile_scores(embeddings, np.full(36, 0.5), origins, PATCH)

    assert np.argmax(scores) == 14 and np.isfinite(scores).all()


def test_tiles_sharing_a_defect_are_not_each_others_reference():
    origins = _grid(8, 8)
    embeddings = np.zeros((64, 2))
    # The four tiles covering the cell at (30..40, 30..40) overlap each other and all show the defect.
    shared = [i for i, (x, y) in enumerate(origins) if x in (20, 30) and y in (20, 30)]
    assert len(shared) == 4 and overlapping(origins[shared], origins[shared], PATCH).all()
    embeddings[shared] = [3.0, 4.0]

    distances = neighbour_distances(embeddings, origins, PATCH, neighbours=3)

    # Their nearest non-overlapping tiles are sound, 5 away; a sound tile finds sound ones at 0.
    np.testing.assert_allclose(distances[shared], 5.0)
    assert np.delete(distances, shared).max() == 0.0


def test_overlap_means_sharing_a_pixel():
    corners = np.array([(0, 0), (19, 19), (20, 0), (0, 20)])
    np.testing.assert_array_equal(overlapping(corners[:1], corners, PATCH), [[True, True, False, False]])


def test_reference_tiles_let_a_photo_too_small_to_reference_itself_be_scored():
    origins = _grid(2, 2)
    embeddings = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="fewer than 1 tiles that do not overlap them.*--reference"):
        neighbour_distances(embeddings, origins, PATCH, neighbours=1)

    clean = np.zeros((5, 2))
    distances = neighbour_distances(embeddings, origins, PATCH, neighbours=2, reference=clean)

    np.testing.assert_allclose(distances, [0.0, 1.0, 0.0, 0.0])


def test_the_classifier_counts_only_where_confident_and_only_as_far_as_it_singles_a_tile_out():
    origins = _grid(10, 10)
    embeddings = _field(100, noise=0.01)
    settings = ScoringSettings(confidence=0.9, classifier_weight=1.0)
    base = tile_scores(embeddings, np.full(100, 0.5), origins, PATCH, settings)
    probabilities = np.full(100, 0.5)
    probabilities[[7, 8]] = [0.99, 0.8]

    scores = tile_scores(embeddings, probabilities, origins, PATCH, settings)

    # Tile 7 is confident: its logit, ln(99) above the hide's median logit of 0, counts in units of the
    # floor of one (the other tiles do not vary); tile 8 is not confident and counts nothing.
    assert scores[7] - base[7] == pytest.approx(np.log(99))
    np.testing.assert_allclose(np.delete(scores, 7), np.delete(base, 7))
    # A classifier that calls every tile defective singles nothing out and adds nothing.
    np.testing.assert_allclose(tile_scores(embeddings, np.full(100, 0.999), origins, PATCH, settings), base)


def test_each_pixel_scores_the_mean_of_the_tiles_covering_it():
    origins = np.array([(0, 0), (10, 0), (0, 10), (10, 10)])
    heat = pixel_scores(np.array([9.0, 1.0, 5.0, 7.0]), origins, PATCH, width=30, height=30)

    assert heat[5, 5] == 9.0  # under tile 0 alone
    assert heat[15, 15] == (9.0 + 1.0 + 5.0 + 7.0) / 4  # under all four
    assert heat[5, 15] == (9.0 + 1.0) / 2  # under tiles 0 and 1
    assert heat[25, 5] == 5.0  # under tile 2 alone
    with pytest.raises(ValueError, match="do not cover the whole photo"):
        pixel_scores(np.array([1.0]), np.array([(0, 0)]), PATCH, width=30, height=30)


def test_regions_are_connected_pixels_above_the_threshold_numbered_with_box_and_defect_pixels():
    heat = np.zeros((50, 80), np.float32)
    heat[10:20, 30:45] = 12.0
    heat[12, 33] = 15.0
    heat[40:45, 5:7] = 9.0

    found = regions(heat, threshold=8.0)

    assert found == [
        {"number": 1, "score": 15.0, "box": {"x": 30, "y": 10, "width": 15, "height": 10}, "defect_pixels": 150},
        {"number": 2, "score": 9.0, "box": {"x": 5, "y": 40, "width": 2, "height": 5}, "defect_pixels": 10},
    ]
    assert regions(heat, threshold=20.0) == []


def test_a_one_pixel_seam_below_the_threshold_does_not_split_a_region():
    heat = np.zeros((30, 60), np.float32)
    heat[5:15, 10:20] = 12.0
    heat[5:15, 21:31] = 10.0  # column 20 is the seam three tiles cover
    heat[5:15, 34:40] = 9.0  # three pixels away: a region of its own

    found = regions(heat, threshold=8.0)

    assert found == [
        {"number": 1, "score": 12.0, "box": {"x": 10, "y": 5, "width": 21, "height": 10}, "defect_pixels": 200},
        {"number": 2, "score": 9.0, "box": {"x": 34, "y": 5, "width": 6, "height": 10}, "defect_pixels": 60},
    ]


def test_a_sound_hide_gives_no_region():
    origins = _grid(14, 10)
    scores = tile_scores(_field(len(origins), noise=0.05, seed=3), np.full(len(origins), 0.2), origins, PATCH)
    heat = pixel_scores(scores, origins, PATCH, width=13 * STRIDE + PATCH, height=9 * STRIDE + PATCH)

    assert regions(heat, ScoringSettings().threshold) == []


def test_settings_refuse_meaningless_values():
    with pytest.raises(ValueError, match="neighbours must be at least 1"):
        ScoringSettings(neighbours=0)
    with pytest.raises(ValueError, match="confidence must lie strictly between 0 and 1"):
        ScoringSettings(confidence=1.0)
