"""The MVTec AD style figures of inspected hides, on maps and masks whose answers are known."""
import numpy as np
import pytest
from PIL import Image

from inspection.evaluation import hide_files, judge, roc_auc, summary


def test_roc_auc_counts_ties_as_one_half():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(0.75)
    assert roc_auc([1, 2, 3], [0, 0, 1], [1, 1, 0]) == 1.0
    # One value held by 2 positives and 2 negatives: every pair is a tie.
    assert roc_auc([5.0], [2], [2]) == 0.5
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        roc_auc([1.0, 2.0], [1, 1], [0, 0])


def test_roc_auc_from_counts_equals_the_auc_of_the_items_spelled_out():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 20, 300).astype(float)
    labels = rng.random(300) < values / 25
    unique = np.unique(values)
    positives = [labels[values == v].sum() for v in unique]
    negatives = [(~labels[values == v]).sum() for v in unique]
    assert roc_auc(unique, positives, negatives) == pytest.approx(roc_auc(values, labels, ~labels))


def _hide(defect_boxes, alarm_boxes, width=100, height=80):
    """A map scoring 10 on the alarm boxes and 0 elsewhere, and a mask of the defect boxes."""
    heat = np.zeros((height, width), np.float32)
    mask = np.zeros((height, width), bool)
    for x, y, w, h in alarm_boxes:
        heat[y : y + h, x : x + w] = 10.0
    for x, y, w, h in defect_boxes:
        mask[y : y + h, x : x + w] = True
    return heat, mask


def test_a_region_touching_a_defect_locates_it_and_one_touching_none_is_a_false_alarm():
    heat, mask = _hide(defect_boxes=[(10, 10, 5, 5), (60, 50, 10, 10)], alarm_boxes=[(14, 14, 10, 10), (40, 0, 5, 5)])
    outcome = judge("a", heat, 5.0, mask, image_score=10.0, seconds=1.0)
    assert (outcome.defects, outcome.located, outcome.false_alarms) == (2, 1, 1)


def test_the_figures_of_a_set_of_hides():
    heat, mask = _hide([(10, 10, 5, 5)], [(10, 10, 5, 5)])
    found = judge("found", heat, 5.0, mask, image_score=9.0, seconds=2.0)
    # A defective hide the map misses: its image score is below that of the clean hide with an alarm.
    heat, mask = _hide([(50, 50, 4, 4)], [])
    missed = judge("missed", heat, 5.0, mask, image_score=1.0, seconds=2.0)
    heat, _ = _hide([], [(0, 0, 3, 3), (90, 70, 3, 3)])
    alarmed = judge("alarmed", heat, 5.0, None, image_score=3.0, seconds=4.0)
    quiet = judge("quiet", np.zeros((80, 100), np.float32), 5.0, None, image_score=0.5, seconds=4.0)

    figures = summary([found, missed, alarmed, quiet])

    assert figures["hides"] == 4 and figures["clean_hides"] == 2 and figures["defects"] == 2
    # Defective hides score 9 and 1, clean ones 3 and 0.5: 3 of the 4 pairs are ordered right.
    assert figures["image_roc_auc"] == 0.75
    assert figures["defects_located"] == 0.5
    assert figures["false_alarm_regions_per_clean_hide"] == 1.0
    assert figures["false_alarm_regions_per_defective_hide"] == 0.0
    assert figures["seconds_per_photo"] == 3.0
    # Pixels: 25 found defect pixels score 10; 16 missed ones score 0 like all but 18 clean pixels (alarms at 10).
    defect_pixels, clean_pixels = 41, 4 * 8000 - 41
    expected = (25 * (clean_pixels - 18 + 0.5 * 18) + 16 * 0.5 * (clean_pixels - 18)) / (defect_pixels * clean_pixels)
    assert figures["pixel_roc_auc"] == pytest.approx(expected, abs=1e-4)


def test_a_mask_of_another_size_is_named(tmp_path):
    with pytest.raises(ValueError, match="b: mask is 10x10 px, the photo 100x80"):
        judge("b", np.zeros((80, 100)), 1.0, np.zeros((10, 10), bool), 0.0, 0.0)


def test_photos_with_a_mask_beside_them_are_defective(tmp_path):
    for name in ("hide_0.jpg", "hide_1.png", "hide_1_mask.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert hide_files(tmp_path) == [(tmp_path / "hide_0.jpg", None), (tmp_path / "hide_1.png", tmp_path / "hide_1_mask.png")]
