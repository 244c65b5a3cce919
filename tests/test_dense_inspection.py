"""Dense self-referenced inspection: each patch against the rest of its own hide, on features from anywhere.

The scoring is checked on hand-made feature grids; `leather inspect` with a
served model that has `patch_features` is checked with the server faked (its
signatures and its features, here each 8 px cell's mean colour).
"""
import io
import json

import numpy as np
import pytest
from PIL import Image

from cli.main import main
from inspection import client as hide_client
from inspection import dense_client
from inspection.dense_client import PatchFeatures
from inspection.dense_inspection import score_features
from inspection.maps import legend_height
from inspection.settings import DENSE_THRESHOLD
from models.article import NEIGHBOURHOOD_EXCLUSION
from models.patch_features import CELL

ROWS, COLUMNS = 40, 50
ODD = (12, 37)


def _features(grid: np.ndarray) -> PatchFeatures:
    rows, columns = grid.shape[:2]
    return PatchFeatures(grid.astype(np.float32), (columns * CELL, rows * CELL), (columns * CELL, rows * CELL), 3)


def _noisy_grid(odd: bool) -> np.ndarray:
    grid = np.random.default_rng(5).normal(0.0, 1.0, (ROWS, COLUMNS, 16))
    if odd:
        grid[ODD] += 12.0
    return grid


def test_a_planted_odd_patch_ranks_first_and_is_the_only_region():
    inspection = score_features(_features(_noisy_grid(True)), DENSE_THRESHOLD)

    assert np.unravel_index(np.argmax(inspection.distances), inspection.distances.shape) == ODD
    [region] = inspection.regions
    box = region["box"]
    centre = (ODD[1] * CELL + CELL // 2, ODD[0] * CELL + CELL // 2)
    assert box["x"] <= centre[0] < box["x"] + box["width"] and box["y"] <= centre[1] < box["y"] + box["height"]
    assert box["width"] <= 3 * CELL and box["height"] <= 3 * CELL
    assert region["score"] == pytest.approx(inspection.heat.max(), abs=1e-3) and region["score"] >= DENSE_THRESHOLD
    report = inspection.to_json()
    assert report["defective"] and report["map_cells"] == {"columns": COLUMNS, "rows": ROWS, "photo_px_per_cell": 8.0}


def test_noise_alone_and_a_uniform_grid_give_no_region():
    assert score_features(_features(_noisy_grid(False)), DENSE_THRESHOLD).regions == []
    uniform = score_features(_features(np.ones((ROWS, COLUMNS, 16))), DENSE_THRESHOLD)
    assert uniform.regions == [] and not uniform.to_json()["defective"]
    np.testing.assert_array_equal(uniform.heat, 0.0)


def test_a_grid_too_small_to_be_its_own_reference_is_refused():
    side = 2 * NEIGHBOURHOOD_EXCLUSION + 1  # the middle patch has no patch outside its neighbourhood
    with pytest.raises(ValueError, match="too small to be its own reference"):
        score_features(_features(np.random.default_rng(0).normal(size=(side, side, 4))), DENSE_THRESHOLD)


def _serve(monkeypatch, signatures=frozenset({"patch_features", "inspect_hide", "predict_image"})) -> list[int]:
    """A served backbone whose patch features are each 8 px cell's mean colour; records the photo sizes asked."""
    seen = []

    def request_patch_features(server, photo, **kwargs):
        pixels = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), np.float64)
        height, width = pixels.shape[:2]
        seen.append(len(photo))
        cells = pixels.reshape(height // CELL, CELL, width // CELL, CELL, 3).mean(axis=(1, 3))
        return PatchFeatures(cells.astype(np.float32), (width, height), (width, height), 7)

    monkeypatch.setattr(hide_client, "served_signatures", lambda server, **kwargs: set(signatures))
    monkeypatch.setattr(dense_client, "request_patch_features", request_patch_features)
    monkeypatch.setattr(hide_client, "request_tiles", lambda *args, **kwargs: pytest.fail("no tile request"))
    return seen


def _photo(tmp_path, name: str, defect: bool) -> str:
    """A 480x320 dark hide with pixel noise; the defective one has a bright 24 px square at x 320-344, y 160-184."""
    pixels = np.random.default_rng(1).integers(10, 31, (320, 480, 3)).astype(np.uint8)
    if defect:
        pixels[160:184, 320:344] = 200
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return str(path)


def test_inspect_scores_the_served_patch_features_and_outlines_the_planted_square(tmp_path, monkeypatch, capsys):
    seen = _serve(monkeypatch)

    status = main(["inspect", _photo(tmp_path, "hide.png", True), "--server", "s:1", "--save-map", str(tmp_path / "map.npy")])

    assert status == 0 and len(seen) == 1
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert report["method"] == "self-referenced dense patch scores (patch_features)"
    assert (report["threshold"], report["model_version"], report["width"], report["height"]) == (DENSE_THRESHOLD, 7, 480, 320)
    [region] = report["regions"]
    box = region["box"]
    assert box["x"] <= 320 and box["x"] + box["width"] >= 344 and box["y"] <= 160 and box["y"] + box["height"] >= 184
    assert box["width"] <= 24 + 2 * CELL and box["height"] <= 24 + 2 * CELL
    assert report["defective"] and region["score"] == report["score"]
    assert Image.open(tmp_path / "hide_heatmap.png").size == (480, 320 + legend_height(480))
    heat = np.load(tmp_path / "map.npy")
    assert heat.shape == (320, 480) and heat.max() == pytest.approx(region["score"], abs=1e-3)
    assert "1 defective region(s)" in capsys.readouterr().out


def test_a_clean_hide_has_no_region_and_the_threshold_flag_applies(tmp_path, monkeypatch):
    _serve(monkeypatch)
    photo = _photo(tmp_path, "clean.png", False)
    assert main(["inspect", photo, "--server", "s:1"]) == 0
    assert json.loads((tmp_path / "clean_defects.json").read_text())["regions"] == []
    assert main(["inspect", photo, "--server", "s:1", "--threshold", "0.5"]) == 0
    report = json.loads((tmp_path / "clean_defects.json").read_text())
    assert report["threshold"] == 0.5 and report["regions"]


class _TilesAsked(Exception):
    pass


def test_references_keep_the_tile_scores(tmp_path, monkeypatch):
    _serve(monkeypatch)
    photo = _photo(tmp_path, "hide.png", True)

    def request_tiles(*args, **kwargs):
        raise _TilesAsked

    monkeypatch.setattr(hide_client, "request_tiles", request_tiles)
    monkeypatch.setattr(dense_client, "request_patch_features", lambda *args, **kwargs: pytest.fail("no dense request"))
    with pytest.raises(_TilesAsked):
        main(["inspect", photo, "--server", "s:1", "--reference", photo])


def test_patch_and_stride_do_not_apply_to_dense_scores(tmp_path, monkeypatch, capsys):
    _serve(monkeypatch)
    assert main(["inspect", _photo(tmp_path, "hide.png", True), "--server", "s:1", "--patch", "100"]) == 1
    assert "--scale, --patch and --stride are for tile scores" in capsys.readouterr().err


@pytest.fixture(scope="module")
def saved_signature(tmp_path_factory):
    """`patch_features` saved alone (as make_serving_signatures adds it to the backbone) and loaded, under a
    processing limit of 20,000 px so a refusal needs no large photo."""
    import tensorflow as tf

    from models import article_export
    from models.patch_signature import PATCH_FEATURES_SIGNATURE, DensePatchFeatures, make_patch_features_signature

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(article_export, "MAX_PROCESSING_PIXELS", 20_000)
        holder = tf.Module()
        holder.dense_patch_features = DensePatchFeatures()
        signature = make_patch_features_signature(holder.dense_patch_features)
    path = tmp_path_factory.mktemp("patch_signature") / "1"
    tf.saved_model.save(holder, str(path), signatures={PATCH_FEATURES_SIGNATURE: signature})
    return tf.saved_model.load(str(path)).signatures[PATCH_FEATURES_SIGNATURE]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (height, width, 3)).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_saved_signature_answers_what_the_in_process_features_give(saved_signature):
    import tensorflow as tf

    from models.article import photo_features
    from models.patch_features import WIDTH

    photo = _png(100, 60)
    answer = PatchFeatures.of({key: value.numpy() for key, value in saved_signature(image_bytes=tf.constant(photo)).items()})
    grid, size, processing = photo_features(photo)

    assert answer.features.shape == (8, 13, WIDTH) and answer.image_size == size == (100, 60)
    assert answer.processing_size == processing == (100, 60)
    np.testing.assert_allclose(answer.features, grid, atol=1e-4)


def test_the_saved_signature_refuses_a_photo_over_the_processing_limit(saved_signature):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="above the 20,000 px this model inspects at once"):
        saved_signature(image_bytes=tf.constant(_png(200, 120)))
