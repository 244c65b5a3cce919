"""Synthetic whole hides: repeatable, their masks are where the defects were painted, clean hides have none."""
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cli.main import main
from ingest.synth import image_rng
from ingest.synth_hide import HIDE_COLOURS, HideSpec, generate_hides, hide_specs, render_hide

SIZE = (800, 480)


def test_the_photo_changes_only_where_the_mask_says_a_defect_is():
    spec = HideSpec(*SIZE, colour="tan", grain=1.0, defects=("cut", "stain"))
    defective = render_hide(image_rng(5, 0), spec)
    # The same stream without defects: everything drawn before them is the same.
    clean = render_hide(image_rng(5, 0), HideSpec(*SIZE, colour="tan", grain=1.0, defects=()))

    changed = np.abs(defective.pixels.astype(int) - clean.pixels.astype(int)).max(axis=-1) > 12
    assert [d["type"] for d in defective.defects] == ["cut", "stain"]
    assert defective.mask.shape == (SIZE[1], SIZE[0]) and not clean.mask.any() and clean.defects == []
    # Visible changes lie on the mask (give or take the shading's reach of two pixels) ...
    near_mask = ndimage.binary_dilation(defective.mask, iterations=2)
    assert changed.any() and not (changed & ~near_mask).any()
    # ... and each defect's box holds its mask.
    for defect in defective.defects:
        x, y, width, height = defect["box"]
        assert defective.mask[y : y + height, x : x + width].sum() == defect["area"] > 0


def test_a_hide_takes_its_base_colour():
    for colour in ("black", "cream"):
        pixels = render_hide(image_rng(1, 0), HideSpec(*SIZE, colour=colour, grain=1.0, defects=())).pixels
        np.testing.assert_allclose(pixels.reshape(-1, 3).mean(axis=0), HIDE_COLOURS[colour], rtol=0.15)


def test_specs_hold_the_exact_clean_share_and_draw_only_the_colours_and_grains_asked_for():
    specs = hide_specs(20, 3, *SIZE, colours=["navy", "olive"], grains=[0.8, 1.25], clean_share=0.25, max_defects=2)
    assert sum(not spec.defects for spec in specs) == 5
    assert all(1 <= len(spec.defects) <= 2 for spec in specs if spec.defects)
    assert {spec.colour for spec in specs} == {"navy", "olive"} and {spec.grain for spec in specs} == {0.8, 1.25}
    assert specs == hide_specs(20, 3, *SIZE, colours=["navy", "olive"], grains=[0.8, 1.25], clean_share=0.25, max_defects=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colours": ["teal"]}, "unknown colour"),
        ({"grains": [3.0]}, "grain scales must lie between 0.5 and 2.0"),
        ({"width": 300}, "size 300x480 is out of range"),
        ({"clean_share": 1.5}, "clean share must be between 0 and 1"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    settings = {"count": 2, "seed": 0, "width": SIZE[0], "height": SIZE[1]} | kwargs
    with pytest.raises(ValueError, match=message):
        hide_specs(**settings)


def test_the_command_writes_photos_masks_and_manifest_and_repeats_byte_for_byte(tmp_path, capsys):
    args = ["data", "synth-hide", None, "--count", "3", "--size", "800x480", "--seed", "4", "--clean-share", "0.34"]
    assert main([a if a else str(tmp_path / "a") for a in args]) == 0
    assert main([a if a else str(tmp_path / "b") for a in args]) == 0

    manifest = json.loads((tmp_path / "a" / "hides.json").read_text())
    assert [h["photo"] for h in manifest["hides"]] == ["hide_0000.jpg", "hide_0001.jpg", "hide_0002.jpg"]
    masks = sorted(p.name for p in (tmp_path / "a").glob("*_mask.png"))
    assert masks == sorted(h["mask"] for h in manifest["hides"] if h["defects"]) and len(masks) == 2
    for hide in manifest["hides"]:
        photo = Image.open(tmp_path / "a" / hide["photo"])
        assert photo.size == SIZE
        assert (tmp_path / "a" / hide["photo"]).read_bytes() == (tmp_path / "b" / hide["photo"]).read_bytes()
    assert "wrote 3 synthetic hides of 800x480 px" in capsys.readouterr().out


def test_the_command_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["data", "synth-hide", str(tmp_path), "--count", "1", "--size", "800x480", "--overwrite"]) == 1
    assert "did not write (notes.txt)" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_only_its_own_files(tmp_path):
    specs = hide_specs(2, 0, *SIZE, clean_share=0.5)
    generate_hides(tmp_path, specs, 0)
    with pytest.raises(ValueError, match="not empty; pass --overwrite"):
        generate_hides(tmp_path, specs, 0)
    generate_hides(tmp_path, specs[:1], 0, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".leather-synth-hide")[0] == "hide_0000.jpg"
    assert not (tmp_path / "hide_0001.jpg").exists()


def test_a_hide_too_small_for_its_defects_is_refused_before_drawing():
    with pytest.raises(ValueError, match="max defects must be between 1 and 2, the defect windows of 227 px a 600x480"):
        hide_specs(2, 0, 600, 480, max_defects=3)
