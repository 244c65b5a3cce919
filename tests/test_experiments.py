"""Experiment grids: folds and subsets by content hash, aggregation, and a small resumable grid run."""
import hashlib
import json
import operator
import os

import numpy as np
import pytest

from experiments.folds import brightness_subset, fold_of, ratio_subset
from experiments.grids import alexnet, table2
from experiments.isolation import call_in_fresh_process
from experiments.report import aggregate, write_report

IDS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(100)]
LABELS = np.array([1] * 70 + [0] * 30)


def test_folds_are_stratified_balanced_and_fixed_by_content():
    folds = fold_of(IDS, LABELS, 10)
    assert np.bincount(folds).tolist() == [10] * 10
    assert all(np.bincount(folds[LABELS == 0]) == 3) and all(np.bincount(folds[LABELS == 1]) == 7)
    shuffled = np.random.default_rng(0).permutation(100)
    again = fold_of([IDS[i] for i in shuffled], LABELS[shuffled], 10)
    assert (again == folds[shuffled]).all()


def test_repeated_ids_and_bad_k_are_refused():
    with pytest.raises(ValueError, match="image ids repeat"):
        fold_of(IDS[:3] + IDS[:1], np.array([0, 1, 0, 0]), 2)
    with pytest.raises(ValueError, match="k >= 2"):
        fold_of(IDS, LABELS, 1)


@pytest.mark.parametrize("ratio", [1, 2])
def test_ratio_subset_keeps_the_minority_and_samples_the_majority(ratio):
    chosen = ratio_subset(IDS, LABELS, ratio)
    assert (LABELS[chosen] == 0).sum() == 30 and (LABELS[chosen] == 1).sum() == 30 * ratio
    assert (chosen == ratio_subset(IDS, LABELS, ratio)).all()
    with pytest.raises(ValueError, match="1:3 subset needs 90"):
        ratio_subset(IDS, LABELS, 3)


def test_brightness_subset():
    light = np.array(["bright", "dark", "dark", "bright"])
    assert brightness_subset(light, "bright").tolist() == [0, 3]
    assert brightness_subset(light, "both").tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        brightness_subset(light, "grey")


def test_grids_have_the_reference_shape():
    names = [e.name for e in table2(epochs=5)]
    assert len(names) == 12 and len(set(names)) == 12
    grid = alexnet([50, 150], [5, 10], [1, 3], ["both", "dark"], [3, 1])
    assert len(grid) == 2 * 2 * 2 * 2 * 2 and len({e.name for e in grid}) == 32


def _record(name: str, fold: int, accuracy: float, tp: int) -> dict:
    return {
        "experiment": name, "fold": fold, "params": {"model": "mlp", "feature_variant": "blocks", "hidden_units": 50},
        "threshold": 0.5, "seconds": 2.0,
        "scores": {"accuracy": accuracy, "auc": 0.9, "recall": float("nan"), "precision": 0.5,
                   "confusion_matrix": [[5, 1], [2, tp]]},
    }


def test_aggregate_gives_mean_spread_and_summed_confusion(tmp_path):
    records = [_record("mlp-blocks-h50", 0, 0.8, 3), _record("mlp-blocks-h50", 1, 0.6, 4)]
    (row,) = aggregate(records)
    assert row["accuracy"] == pytest.approx(0.7) and row["accuracy_std"] == pytest.approx(0.1)
    assert np.isnan(row["recall"])
    assert row["confusion_matrix"] == [[10, 2], [4, 7]]
    report = write_report(records, tmp_path, "t", ["note"]).read_text()
    assert "70.0 / 80.3" in report and "0.700 ± 0.100" in report
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    assert json.loads((tmp_path / "summary.json").read_text())[0]["folds"] == 2


@pytest.mark.slow
def test_a_small_grid_runs_every_fold_once_and_resumes(tmp_path):
    from experiments.dataset import read_examples
    from experiments.runner import RESULTS_FILE, run_grid
    from ingest.importer import import_images
    from ingest.synth import generate_dataset

    generate_dataset(tmp_path / "images", 36, seed=4, size=96)
    import_images(tmp_path / "images", tmp_path / "tfrecords")
    examples = read_examples(tmp_path / "tfrecords")
    # Each fold trains in a fresh process (about 24 s here): one experiment runs, one the data cannot supply.
    unreachable = alexnet([50], [1], [30], ["both"], [1])[0]
    mlp = table2(epochs=2)[0]
    grid = [unreachable, mlp]
    lines: list[str] = []

    results, skipped = run_grid(grid, examples, tmp_path / "out", 3, log=lines.append)

    assert skipped == {unreachable.name: "a 1:30 subset needs 540 majority images, only 18 exist"}
    assert sorted((r["experiment"], r["fold"]) for r in results) == [(mlp.name, f) for f in range(3)]
    for record in results:
        assert sum(record["examples"].values()) == 36
        matrix = np.array(record["scores"]["confusion_matrix"])
        assert matrix.sum() == record["examples"]["test"] and matrix[1].sum() == pytest.approx(record["examples"]["test"] / 2, abs=1)
    assert lines[0] == f"skipping {unreachable.name}: {skipped[unreachable.name]}"
    assert lines[1] == "[1/3] mlp-gray-h10 fold 1/3 (36 images)", "the skipped experiment's folds are not counted"
    assert lines[3].startswith("[3/3] mlp-gray-h10 fold 3/3 (36 images), about ")
    assert list((tmp_path / "out" / "runs").iterdir()) == []

    kept = (tmp_path / "out" / RESULTS_FILE).read_text().splitlines()[:-1]
    (tmp_path / "out" / RESULTS_FILE).write_text("\n".join(kept) + "\n")
    lines.clear()
    resumed, _ = run_grid([mlp], examples, tmp_path / "out", 3, log=lines.append)

    assert lines == ["resuming: 2 fold(s) already done, 1 to run", "[1/1] mlp-gray-h10 fold 3/3 (36 images)"]
    assert len(resumed) == 3
    with pytest.raises(ValueError, match="k must be >= 3"):
        run_grid(grid, examples, tmp_path / "out", 2)


def test_a_function_in_a_fresh_process_runs_elsewhere_quietly_and_raises_here():
    assert call_in_fresh_process(os.getpid) != os.getpid()
    assert call_in_fresh_process(os.getenv, "TF_CPP_MIN_LOG_LEVEL") == "3"
    assert call_in_fresh_process(os.getenv, "TF_CPP_MIN_LOG_LEVEL", quiet=False) == os.getenv("TF_CPP_MIN_LOG_LEVEL")
    with pytest.raises(ZeroDivisionError):
        call_in_fresh_process(operator.truediv, 1, 0)


def test_robustness_contenders_named_in_the_cli_are_the_experiments():
    from cli.experiment import CONTENDER_NAMES
    from experiments.robustness import CONTENDERS

    assert set(CONTENDER_NAMES) == set(CONTENDERS)


@pytest.mark.slow
def test_robustness_scores_every_variant_and_gray_copies_keep_the_luminance_the_texture_model_sees(tmp_path):
    from experiments.dataset import read_examples
    from experiments.robustness import run_robustness
    from ingest.importer import import_images
    from ingest.synth import generate_dataset
    from models.colour_variants import VARIANT_NAMES
    from models.image_features import RGB_TO_GRAY
    from experiments.robustness import input_name
    from models.spec import TrainingConfig

    generate_dataset(tmp_path / "images", 60, seed=4, size=96)
    import_images(tmp_path / "images", tmp_path / "shards")
    examples = read_examples(tmp_path / "shards")
    seen, inputs_seen = [], []

    results = run_robustness(examples, tmp_path / "work", ["texture", "mlp"], epochs=1, log=lambda line: None,
                             each=lambda so_far, inputs: (seen.append(len(so_far)), inputs_seen.append(inputs)))

    assert seen == [1, 2] and [r["model"] for r in results] == ["texture", "mlp"]
    for result in results:
        assert list(result["variants"]) == list(VARIANT_NAMES)
        assert result["worst_auc"] == min(v["auc"] for v in result["variants"].values())
    # The texture model sees luminance only (tests/test_texture.py holds it to 1e-5 on gray copies), so its gray
    # input differs from the original's luminance by the 8-bit rounding of the gray PNG alone, spread by the
    # bicubic resize (whose weights sum to at most 1.2 in absolute value) wherever no channel was clipped to
    # [0, 1]. The AUC of an epoch-old model on 18 photos can turn on that rounding, so the inputs are compared.
    texture_key = input_name(TrainingConfig(model="texture"))
    inputs = {name: np.load(inputs_seen[-1]["inputs"][f"test-{name}/{texture_key}"]) for name in ("original", "gray")}
    luma = inputs["original"] @ np.asarray(RGB_TO_GRAY, np.float32)
    unclipped = np.all((inputs["original"] > 0) & (inputs["original"] < 1), axis=-1)
    assert unclipped.mean() > 0.9
    assert np.abs(inputs["gray"][..., 0] - luma)[unclipped].max() <= 1.2 * 0.5 / 255
    assert np.ptp(inputs["gray"], axis=-1).max() == 0.0
    assert np.abs(inputs["original"] - inputs["gray"]).max() > 10 / 255
