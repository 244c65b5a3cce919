"""The reference task end to end: `leather run --task reference` with LocalDagRunner on a few synthetic hides.

Two clean hides of one brown leather fit the article; three more of it (one
clean, two with defects and masks) validate it. The run must push a model whose
served signature maps the hides, gate it on the validation photos' figures, and
on a rerun take everything from the cache and push nothing new. A refused gate
stops the push; a flat photo among the references stops the run with one line.
Beam runs in memory, as in the other end-to-end modules but the shared world's.
"""
import contextlib
import io
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cli import main as leather
from conftest import IN_MEMORY_BEAM
from ingest.synth_hide import generate_hides, hide_specs
from models.article_export import ANOMALY_MAP_SIGNATURE, ARTICLE_FILE

pytestmark = pytest.mark.slow

SIZE = 512


def _run(clean: pathlib.Path, validation: pathlib.Path, workdir: pathlib.Path, *flags: str) -> tuple[int, str, str]:
    """`leather run --task reference` in this process: (exit code, stdout, the stderr Python wrote)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = leather.main([
            "run", "--task", "reference", "--data", str(clean), "--validation", str(validation),
            "--workdir", str(workdir), f"--beam-arg={IN_MEMORY_BEAM[0]}", *flags,
        ])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def hides(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    root = tmp_path_factory.mktemp("reference-hides")
    generate_hides(root / "clean", hide_specs(2, 31, SIZE, SIZE, colours=["brown"], clean_share=1.0), 31)
    specs = hide_specs(3, 32, SIZE, SIZE, colours=["brown"], clean_share=0.34, max_defects=1)
    generate_hides(root / "validation", specs, 32)
    return root / "clean", root / "validation"


@pytest.fixture(scope="module")
def runs(hides, tmp_path_factory) -> dict[str, tuple[int, str, str]]:
    """Three runs in one workdir, in this order: the first, a rerun, and a rerun with a pixel floor no model meets."""
    clean, validation = hides
    workdir = tmp_path_factory.mktemp("reference-runs") / "work"
    return {
        "first": _run(clean, validation, workdir),
        "rerun": _run(clean, validation, workdir),
        "refused": _run(clean, validation, workdir, "--min-pixel-auc", "0.9999"),
        "workdir": workdir,
    }


def _pushed(out: str) -> pathlib.Path:
    (line,) = [line for line in out.splitlines() if line.startswith("pushed to: ")]
    return pathlib.Path(line.removeprefix("pushed to: "))


def test_the_article_is_fitted_gated_and_pushed(runs, hides):
    code, out, _ = runs["first"]
    assert code == 0, out
    assert "article photos: 2 clean, 3 for validation" in out
    assert "model blessed: yes" in out
    version = _pushed(out)
    record = json.loads((version / ARTICLE_FILE).read_text())
    assert record["reference_patches"] == 2 * (SIZE // 8) ** 2
    assert set(record["held_out_maxima"]) == {"hide_0000.jpg", "hide_0001.jpg"}
    assert record["threshold"] >= max(record["held_out_maxima"].values())  # the rule itself: test_article_threshold
    pixel_auc = next(line for line in out.splitlines() if "pixel ROC-AUC" in line)
    assert float(pixel_auc.split()[-1]) >= 0.9  # the gate's floor, which the blessing says it passed


def test_the_pushed_model_maps_a_defective_hide(runs, hides):
    _, validation = hides
    served = tf.saved_model.load(str(_pushed(runs["first"][1]))).signatures[ANOMALY_MAP_SIGNATURE]
    defective = sorted(validation.glob("*_mask.png"))[0].name.replace("_mask.png", ".jpg")
    answer = served(image_bytes=tf.constant((validation / defective).read_bytes()))
    assert answer["anomaly_map"].shape == (SIZE // 8, SIZE // 8)
    assert float(answer["anomaly_score"]) == pytest.approx(float(np.max(answer["anomaly_map"])))


def test_a_rerun_takes_everything_from_the_cache_and_pushes_nothing_new(runs):
    code, out, _ = runs["rerun"]
    assert code == 0, out
    assert f"already pushed: version {_pushed(runs['first'][1]).name}" in out


def test_a_refused_gate_pushes_nothing(runs):
    code, out, _ = runs["refused"]
    assert code == 0, out
    assert "gate failed: pixel_roc_auc" in out
    assert "model blessed: no" in out
    assert out.splitlines()[-1] == "not pushed"
    assert [p.name for p in (runs["workdir"] / "serving").iterdir()] == [_pushed(runs["first"][1]).name]


def test_the_report_of_an_article_workdir_prints_its_figures(runs):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert leather.main(["report", str(runs["workdir"])]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("evaluation on 3 validation photos (1 clean")
    assert "model blessed: no" in lines  # the newest run is the refused one
    assert lines[-1].startswith("an article run (--task reference)")


def test_a_flat_photo_among_the_references_stops_the_run_naming_it(hides, tmp_path):
    clean, validation = hides
    references = tmp_path / "clean"
    references.mkdir()
    for photo in clean.glob("*.jpg"):
        (references / photo.name).write_bytes(photo.read_bytes())
    from PIL import Image

    Image.new("RGB", (SIZE, SIZE), (110, 72, 44)).save(references / "flat.jpg")
    code, _, err = _run(references, validation, tmp_path / "work")
    assert code == 1
    assert "flat.jpg: the photo is one flat colour" in err
    assert "Traceback" not in err
    assert not (tmp_path / "work" / "serving").exists()
