"""The change gate on real leather: a genuinely weaker model is refused and the blessed one keeps serving.

Two LocalDagRunner runs of the MLP on the real photos with the default gates
but the robustness gate, off as for every reproduction of the reference. They
see every SUBSET-th photo of each class folder: a pair of runs on the whole
set took 15 of the suite's 43 minutes here. The first feeds the MLP the 50x50
gray pixels; the second switches to the reference's 5x5 block edge counts. Across 10 folds (docs/results/table2) gray pixels reach
ROC-AUC 0.87 +- 0.03 and block counts 0.67 +- 0.05 with 50 hidden units, so the
second model is worse by far more than training noise, and the Evaluator must
find that out by itself against the first as its baseline. Beam runs in
memory: the product's default multi-processing workers are exercised by the
shared synthetic run (conftest), and here they cost more than the work.
"""
import pathlib

import pytest

from conftest import IN_MEMORY_BEAM
from ingest.spans import import_span
from models.spec import PreprocessingConfig, TrainingConfig
from pipeline.config import GateConfig, PipelineConfig
from pipeline.local_runner import run_local
from pipeline.evaluation.summary import RunSummary
from span_support import every_nth_photo

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

SUBSET = 3


@pytest.fixture(scope="module")
def runs(real_data_dir, tmp_path_factory) -> tuple[PipelineConfig, RunSummary, RunSummary]:
    root = tmp_path_factory.mktemp("gates-real")
    every_nth_photo(real_data_dir, root / "photos", SUBSET)
    import_span(root / "photos", root / "tfrecords", 1)

    def config(variant: str) -> PipelineConfig:
        return PipelineConfig(
            data_dir=str(root / "tfrecords"),
            workdir=str(root / "work"),
            preprocessing=PreprocessingConfig(feature_variant=variant),
            training=TrainingConfig(model="mlp"),
            gates=GateConfig(min_shifted_auc=None),
            beam_args=IN_MEMORY_BEAM,
        )

    gray = config("gray")
    return gray, run_local(gray), run_local(config("blocks"))


def test_the_gray_pixel_model_clears_the_default_floors_and_is_pushed(runs):
    config, gray, _ = runs
    assert gray.blessed and gray.pushed, gray.lines()
    assert gray.metrics["auc"] > 0.78
    assert [gate.passed for gate in gray.gates if not gate.is_change] == [True, True]
    assert pathlib.Path(gray.pushed_destination).parent == pathlib.Path(config.push_destination)


def test_the_block_count_model_loses_auc_against_the_baseline_and_is_refused(runs):
    config, gray, blocks = runs
    assert not blocks.blessed and not blocks.pushed
    auc_change = next(gate for gate in blocks.gates if gate.metric == "auc" and gate.is_change)
    assert not auc_change.passed
    assert auc_change.baseline == pytest.approx(gray.metrics["auc"])
    assert auc_change.bound == pytest.approx(-config.gates.max_auc_drop)
    assert auc_change.change < -0.1
    assert any(failure.startswith("FAIL auc change vs baseline") for failure in blocks.gate_failures)
    assert [p.name for p in pathlib.Path(config.push_destination).iterdir()] == [
        pathlib.Path(gray.pushed_destination).name
    ]
