"""`leather inspect` with a model that has the hide signature: one request, self-referenced scores, readable outputs."""
import io
import json

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from cli.main import main
from inspection import client as hide_client
from inspection.client import HideTiles
from inspection.maps import colour_table, legend_height, text_size
from inspection.regions import millimetre_scale
from inspection.tiling import patch_origins
from serving import client


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

    monkeypatch.setattr(hide_client, "served_signatures", lambda server, **kwargs: {"inspect_hide", "predict_image"})
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


def test_a_defect_is_outlined_where_it_is_and_reported_with_score_box_and_defect_pixels(tmp_path, monkeypatch, capsys):
    seen = _requests(monkeypatch)

    status = main(["inspect", _photo(tmp_path, "hide.png", True), "--server", "localhost:1", "--patch", "100", "--stride", "50",
                   "--tiles"])

    assert status == 0 and seen == [(100, 50)]
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert report["method"].startswith("self-referenced") and len(report["tiles"]) == 77
    [region] = report["regions"]
    # The square lies wholly in the four tiles at x 250 and 300, y 100 and 150, and in no other: every pixel
    # they cover scores at least a quarter of their score, the peak is where all four overlap.
    assert region["number"] == 1
    assert region["box"] == {"x": 250, "y": 100, "width": 150, "height": 150} and region["defect_pixels"] == 22500
    holding = [tile["score"] for tile in report["tiles"] if tile["x"] in (250, 300) and tile["y"] in (100, 150)]
    assert region["score"] == pytest.approx(np.mean(holding), rel=1e-4)
    assert min(holding) > 4 * report["settings"]["threshold"]
    assert Image.open(tmp_path / "hide_heatmap.png").size == (600, 400 + legend_height(600))
    assert "1 defective region(s)" in capsys.readouterr().out


def test_a_clean_hide_gives_an_empty_list_and_a_map_of_the_size_asked_for(tmp_path, monkeypatch):
    _requests(monkeypatch)
    photo = _photo(tmp_path, "clean.png", False)
    assert main(["inspect", photo, "--server", "s:1", "--patch", "100", "--stride", "50", "--heatmap-side", "300"]) == 0
    assert json.loads((tmp_path / "clean_defects.json").read_text())["regions"] == []
    # The map is shrunk to the longest side asked for, the legend strip below it; the JSON keeps photo pixels.
    assert Image.open(tmp_path / "clean_heatmap.png").size == (300, 200 + legend_height(300))


def test_scale_turns_training_photo_pixels_into_photo_pixels_and_references_are_sent_too(tmp_path, monkeypatch):
    seen = _requests(monkeypatch)
    photo, clean = _photo(tmp_path, "hide.png", True), _photo(tmp_path, "clean.png", False)

    main(["inspect", photo, "--server", "s:1", "--patch", "200", "--stride", "100", "--scale", "0.5", "--reference", clean])

    assert seen == [(100, 50), (100, 50)]
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert (report["scale"], report["patch"], report["references"]) == (0.5, 100, 1)


def test_reference_photos_need_the_hide_signature(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hide_client, "served_signatures", lambda server, **kwargs: {"predict_image"})
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


def _photo_with_dpi(tmp_path, dpi: int) -> str:
    path = _photo(tmp_path, "hide.png", True)
    Image.open(path).save(path, dpi=(dpi, dpi))
    return path


def test_the_map_numbers_its_regions_as_the_json_and_has_a_colour_bar_below(tmp_path, monkeypatch):
    _requests(monkeypatch)
    assert main(["inspect", _photo(tmp_path, "hide.png", True), "--server", "s:1", "--patch", "100", "--stride", "50"]) == 0
    [region] = json.loads((tmp_path / "hide_defects.json").read_text())["regions"]
    heatmap = np.asarray(Image.open(tmp_path / "hide_heatmap.png").convert("RGB")).astype(int)
    size = text_size(600)
    # Region 1's number: white type on a black label inside the box's top-left corner.
    label = heatmap[region["box"]["y"] + 3 : region["box"]["y"] + 3 + size, region["box"]["x"] + 3 : region["box"]["x"] + 3 + size]
    assert (label.sum(axis=2) == 0).mean() > 0.3 and (label.min(axis=2) > 200).any()
    # The colour bar runs from the scale's first colour to its last, on white, one text size into the strip.
    row = heatmap[400 + size + size // 2]
    bar_width = 600 // 2 - 2 * size
    assert np.abs(row[size] - colour_table()[0]).max() <= 2
    assert np.abs(row[size + bar_width - 1] - colour_table()[255]).max() <= 2
    assert (row[: size - 1] == 255).all()
    # Tick labels and the unit: dark type under the bar.
    assert (heatmap[400 + 2 * size :, : 600 // 2].sum(axis=2) < 200).any()


def test_region_sizes_in_millimetres_from_the_photos_dpi_or_the_flag(tmp_path, monkeypatch, capsys):
    _requests(monkeypatch)
    photo = _photo_with_dpi(tmp_path, 254)
    assert main(["inspect", photo, "--server", "s:1", "--patch", "100", "--stride", "50"]) == 0
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert report["millimetres"] == {"px_per_mm": 10.0, "source": "photo DPI 254"}
    assert report["regions"][0]["size_mm"] == {"width": 15.0, "height": 15.0, "defect_area_mm2": 225.0}
    assert "  1. score " in capsys.readouterr().out
    assert main(["inspect", photo, "--server", "s:1", "--patch", "100", "--stride", "50", "--px-per-mm", "5"]) == 0
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert report["millimetres"] == {"px_per_mm": 5.0, "source": "--px-per-mm"}
    assert report["regions"][0]["size_mm"] == {"width": 30.0, "height": 30.0, "defect_area_mm2": 900.0}
    assert "tiles" not in report
    assert "150x150 px, 22,500 defective px (30x30 mm, 900 mm2)" in capsys.readouterr().out


def test_a_dpi_pillow_reads_as_a_rational_gives_millimetres_too():
    """TIFF and EXIF resolutions come as IFDRational, which refuses a float format: read as a number."""
    dpi = TiffImagePlugin.IFDRational(254, 1)
    assert millimetre_scale(None, {"dpi": (dpi, dpi)}) == {"px_per_mm": 10.0, "source": "photo DPI 254"}
    assert millimetre_scale(None, {"dpi": (0, 0)}) is None and millimetre_scale(None, {}) is None
