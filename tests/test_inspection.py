"""Hide-scale inspection by patches (models without the hide signature): tiling, probabilities, regions."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from cli.main import main
from inspection import client as hide_client
from inspection.maps import legend_height
from inspection.patches import inspect_image
from inspection.tiling import tile_origins
from serving import client
from serving.client import Prediction


def _brightness_model(batch):
    """A stand-in model: a patch is 'defective' when it is mostly bright."""
    results = []
    for data in batch:
        mean = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float64).mean() / 255
        results.append(Prediction(probability=mean, defective=mean >= 0.5, model_version=1))
    return results


@pytest.fixture()
def hide() -> Image.Image:
    """A dark (20) 600x400 hide with one bright (200) 'defect' square at x 300-400, y 100-200."""
    pixels = np.full((400, 600, 3), 20, np.uint8)
    pixels[100:200, 300:400] = 200
    return Image.fromarray(pixels)


def test_tiles_cover_the_image_and_end_flush_with_the_edge():
    assert tile_origins(600, 227, 113) == [0, 113, 226, 339, 373]
    assert tile_origins(227, 227, 113) == [0]
    with pytest.raises(ValueError, match="smaller than the patch size"):
        tile_origins(100, 227, 113)


def test_bright_square_is_found_where_it_is(hide):
    inspection = inspect_image(hide, _brightness_model, patch=100, stride=50, batch_size=7)

    assert len(inspection.tiles) == len(tile_origins(600, 100, 50)) * len(tile_origins(400, 100, 50)) == 77
    assert inspection.heatmap.shape == (400, 600)
    # Pixel (350, 150) lies under four tiles: all, half, half and a quarter bright.
    assert inspection.heatmap[150, 350] == pytest.approx((200 + 110 + 110 + 65) / 4 / 255, abs=1e-6)
    assert inspection.heatmap[350, 50] == pytest.approx(20 / 255, abs=1e-6)
    defective = [(t.x, t.y) for t in inspection.tiles if t.defective]
    assert defective == [(300, 100)]
    assert inspection.regions() == [{
        "number": 1, "max_probability": pytest.approx(200 / 255, abs=1e-6), "tiles": 1,
        "box": {"x": 300, "y": 100, "width": 100, "height": 100}, "defect_pixels": 100 * 100,
    }]


def test_inspect_command_writes_heatmap_and_regions(hide, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hide_client, "served_signatures", lambda server, **kwargs: {"predict_image"})
    monkeypatch.setattr(client, "predict_images", lambda server, batch, **kwargs: _brightness_model(batch))
    photo = tmp_path / "hide.png"
    hide.save(photo)

    status = main(["inspect", str(photo), "--server", "localhost:1", "--patch", "100", "--stride", "50"])

    assert status == 0
    report = json.loads((tmp_path / "hide_defects.json").read_text())
    assert report["patches"] == 77 and report["defective_patches"] == 1
    assert report["regions"][0]["box"]["x"] == 300 and report["regions"][0]["box"]["y"] == 100
    assert "tiles" not in report and report["millimetres"] is None
    heatmap = Image.open(tmp_path / "hide_heatmap.png")
    assert heatmap.size == (600, 400 + legend_height(600))
    assert "77 patches (1 defective)" in capsys.readouterr().out


def test_inspect_command_names_an_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    assert main(["inspect", str(bad), "--server", "localhost:1"]) == 1
    error = capsys.readouterr().err
    assert "cannot read image" in error and "bad.jpg" in error


def test_inspect_names_a_photo_whose_header_claims_more_than_pillow_decodes(tmp_path, capsys):
    from image_support import jpeg_claiming

    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(jpeg_claiming(20000, 15000))
    assert main(["inspect", str(bomb), "--server", "localhost:1"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"leather: error: cannot read image {bomb}: Image size (300000000 pixels) exceeds limit of 178956970 pixels, "
        "could be decompression bomb DOS attack."
    ]
