"""`leather inspect` with a model that has the hide signature: one request, self-referenced scores, readable outputs."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from cli.main import main
from serving import client, hide_client
from serving.hide_client import HideTiles
from serving.inspection import patch_origins


def _requests(monkeypatch) -> list[tuple[int, int]]:
    """A served model whose embedding is each tile's mean brightness; records the (patch, stride) of each request."""
    seen = []

    def request_tiles(server, photo, patch, stride, **kwargs):
        seen.append((patch, stride))
        pixels = np.asarray(Image.open(io.BytesIO(photo)).convert("L"), np.float64)
        origins = np.array(patch_origins(pixels.shape[1], pixels.shape[0], patch, stride))
        means = np.array([[pixels[y : y + patch, x : x + patch].mean()] for x, y in origins])
        return HideTiles(
            width=pixels.shape[1], height=pixels.shape[0], patch=patch, stride=stride, origins=origins,
            probability=np.full(len(origins), 0.3), defective=np.zeros(len(origins), bool), embedding=means,
            model_version=4,
        )

    monkeypatch.setattr(hide_client, "has_hide_signature", lambda server, **kwargs: True)
    monkeypatch.setattr(hide_client, "request_tiles", request_tiles)
    return seen


def _photo(tmp_path, name: str, defect: bool) -> str:
    """A 600x400 dark hide with pixel noise; the defective one has a bright 40 px square at x 300-340, y 150-190."""
    pixels = np.random.default_rng(1).integers(10, 31, (400, 600, 3)).astype(np.uint8)
    if defect:
        pixels[150:190, 300:340] = 200
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return str(path)


def test_a_defect_is_outlined_where_it_is_and_reported_with_score_box_and_area(tmp_path, monkeypatch, capsys):
    seen = _requests(monkeypatch)

    status = main(["inspect", _photo(tmp_path, "hide.png", True), "--server", "localhost:1", "--patch", "100", "--stride", "50"])

    assert status == 0 and seen == [(100, 50)]
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert report["method"].startswith("self-referenced") and len(report["tiles"]) == 77
    [region] = report["regions"]
    # The square lies wholly in the four tiles at x 250 and 300, y 100 and 150, and in no other: every pixel
    # they cover scores at least a quarter of their score, the peak is where all four overlap.
    assert (region["x"], region["y"], region["width"], region["height"], region["area"]) == (250, 100, 150, 150, 22500)
    holding = [tile["score"] for tile in report["tiles"] if tile["x"] in (250, 300) and tile["y"] in (100, 150)]
    assert region["score"] == pytest.approx(np.mean(holding), rel=1e-4)
    assert min(holding) > 4 * report["settings"]["threshold"]
    assert Image.open(tmp_path / "hide_heatmap.png").size == (600, 400)
    assert "1 defective region(s)" in capsys.readouterr().out


def test_a_clean_hide_gives_an_empty_list_and_a_map_of_the_size_asked_for(tmp_path, monkeypatch):
    _requests(monkeypatch)
    photo = _photo(tmp_path, "clean.png", False)
    assert main(["inspect", photo, "--server", "s:1", "--patch", "100", "--stride", "50", "--heatmap-side", "300"]) == 0
    assert json.loads((tmp_path / "clean_defects.json").read_text())["regions"] == []
    # The map is shrunk to the longest side asked for; the JSON keeps photo pixels.
    assert Image.open(tmp_path / "clean_heatmap.png").size == (300, 200)


def test_scale_turns_training_photo_pixels_into_photo_pixels_and_references_are_sent_too(tmp_path, monkeypatch):
    seen = _requests(monkeypatch)
    photo, clean = _photo(tmp_path, "hide.png", True), _photo(tmp_path, "clean.png", False)

    main(["inspect", photo, "--server", "s:1", "--patch", "200", "--stride", "100", "--scale", "0.5", "--reference", clean])

    assert seen == [(100, 50), (100, 50)]
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert (report["scale"], report["patch"], report["references"]) == (0.5, 100, 1)


def test_reference_photos_need_the_hide_signature(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hide_client, "has_hide_signature", lambda server, **kwargs: False)
    monkeypatch.setattr(client, "predict_images", lambda *args, **kwargs: pytest.fail("no patch may be sent"))
    photo = _photo(tmp_path, "hide.png", True)

    assert main(["inspect", photo, "--server", "s:1", "--reference", photo]) == 1
    assert "--reference needs a model with the hide signature" in capsys.readouterr().err


def test_a_photo_too_small_to_reference_itself_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    _requests(monkeypatch)
    photo = _photo(tmp_path, "hide.png", True)

    assert main(["inspect", photo, "--server", "s:1", "--patch", "300", "--stride", "100"]) == 1
    error = capsys.readouterr().err
    assert "hide.png: the photo has tiles with fewer than 5 tiles that do not overlap them" in error
    assert not (tmp_path / "hide_defects.json").exists()
