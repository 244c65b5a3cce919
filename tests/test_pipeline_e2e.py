"""One true LocalDagRunner run of the whole pipeline on synthetic leather, then a cached rerun (no new span: nothing reruns).

The first run is conftest's shared `synthetic_run`; the rerun lands in a copy
of its workdir (`copy_of_world`, on the same data), which holds both runs'
metadata, so what the rerun did is read from the executions it added.
"""
import pathlib

import ml_metadata as mlmd
import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from conftest import SYNTHETIC_IMAGES, copy_of_world
from models import features
from models.calibration import binary_scores
from models.colour_variants import VARIANT_NAMES
from pipeline.config import PipelineConfig
from pipeline.local_runner import run_local
from pipeline.pipeline import create_components

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def config(synthetic_run, tmp_path_factory) -> PipelineConfig:
    """The shared run's world copied: where the rerun lands."""
    return copy_of_world(synthetic_run, tmp_path_factory.mktemp("rerun"))


@pytest.fixture(scope="module")
def runs(synthetic_run, config):
    """The shared run, then one on unchanged inputs that must come from the cache, and the executions before it.

    With the same Beam options too: they are part of what TFX's cache compares.
    """
    before = {node: {e.id for e in executions} for node, executions in _executions_by_node(config).items()}
    second = run_local(config)
    return synthetic_run.summary, second, before


def _rerun_executions(config: PipelineConfig, before: dict[str, set[int]]) -> dict[str, list[metadata_store_pb2.Execution]]:
    return {
        node: [e for e in sorted(executions, key=lambda e: e.id) if e.id not in before[node]]
        for node, executions in _executions_by_node(config).items()
    }


def _store(config: PipelineConfig) -> mlmd.MetadataStore:
    return mlmd.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))


def _executions_by_node(config: PipelineConfig) -> dict[str, list[metadata_store_pb2.Execution]]:
    store = _store(config)
    return {
        node.id: store.get_executions_by_context(
            store.get_context_by_type_and_name("node", f"{config.pipeline_name}.{node.id}").id
        )
        for node in create_components(config)
    }


def test_first_run_blesses_and_pushes_a_savedmodel(synthetic_run, runs):
    first, _, _ = runs
    assert first.blessed and first.pushed
    pushed = pathlib.Path(first.pushed_destination)
    assert pushed.parent == pathlib.Path(synthetic_run.config.push_destination)
    assert (pushed / "saved_model.pb").is_file()
    assert pushed.name.isdigit()

    loaded = tf.saved_model.load(str(pushed))
    assert {"serving_default", "predict_image", "transform_features"} <= set(loaded.signatures)


def _test_split(config: PipelineConfig, examples: str = "ImportExampleGen/examples") -> list[bytes]:
    files = sorted(pathlib.Path(config.pipeline_root).glob(f"{examples}/*/Split-test/*"))
    return [record.numpy() for record in tf.data.TFRecordDataset([str(f) for f in files], compression_type="GZIP")]


def test_evaluation_counts_every_test_example(config, runs):
    first, _, _ = runs
    expected = len(_test_split(config))
    assert 0 < expected < SYNTHETIC_IMAGES
    assert first.metrics["example_count"] == expected


def test_evaluator_scores_the_pushed_models_own_calibrated_labels(config, runs):
    """Accuracy, precision and recall are those of the served label, at the threshold calibrated for 95% recall."""
    first, _, _ = runs
    model = tf.saved_model.load(first.pushed_destination)
    records = _test_split(config)
    outputs = model.signatures["serving_default"](examples=tf.constant(records))
    labels = np.array([
        tf.train.Example.FromString(record).features.feature[features.LABEL_KEY].int64_list.value[0] for record in records
    ])
    probability, served_label = outputs["probability"].numpy(), outputs["label"].numpy()
    expected = binary_scores(labels, probability, first.decision_threshold)

    assert config.training.target_recall == 0.95
    assert first.decision_threshold == pytest.approx(float(model.decision_threshold.numpy()))
    assert first.decision_threshold != pytest.approx(config.training.decision_threshold)
    np.testing.assert_array_equal(served_label, probability >= first.decision_threshold)
    assert first.metrics["binary_accuracy"] == pytest.approx(expected.accuracy)
    assert first.metrics["precision"] == pytest.approx(expected.precision)
    assert first.metrics["recall"] == pytest.approx(expected.recall)
    assert first.metrics["auc"] == pytest.approx(expected.auc, abs=0.01)


def test_the_evaluator_scores_every_test_photo_in_every_colour_variant(config, runs):
    """13 variants, each over the whole test split; the overall numbers are the `original` variant's."""
    first, second, _ = runs
    variants = _test_split(config, "ColourVariants/variant_examples")
    assert len(variants) == len(VARIANT_NAMES) * len(_test_split(config)) == 13 * first.metrics["example_count"]
    for run, roles in ((first, {"candidate"}), (second, {"candidate"})):
        table = dict(run.variants.rows)
        assert list(table) == list(VARIANT_NAMES)
        assert all(set(scores) == roles for scores in table.values())
        assert table["original"]["candidate"].auc == pytest.approx(run.metrics["auc"])
        assert table["original"]["candidate"].defect_recall == pytest.approx(run.metrics["recall"])
        assert run.variants.worst("candidate") in VARIANT_NAMES
    robustness = [g for g in first.gates if g.slice.startswith("variant = ")]
    assert sorted(g.slice for g in robustness) == sorted(f"variant = {name}" for name in VARIANT_NAMES)
    assert all(g.passed and g.bound == 0.0 and not g.is_change for g in robustness)
    assert "colour variants of the test photos (ROC-AUC; recall of defects and of clean leather at the threshold):" in first.lines()


def test_blessing_artifact_records_the_decision(config, runs):
    store = _store(config)
    blessings = store.get_artifacts_by_type("ModelBlessing")
    assert len(blessings) >= 1
    assert blessings[0].custom_properties["blessed"].int_value == 1
    assert (pathlib.Path(blessings[0].uri) / "BLESSED").exists()


def test_metadata_records_every_component_and_the_rerun_is_cached(config, runs):
    _, _, before = runs
    executions = _executions_by_node(config)
    assert set(executions) == {
        "ImportExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataGate", "SpanDrift",
        "Transform", "Trainer", "ColourVariants", "latest_blessed_model_resolver", "Evaluator", "Pusher",
    }
    complete = metadata_store_pb2.Execution.COMPLETE
    cached = metadata_store_pb2.Execution.CACHED
    rerun = _rerun_executions(config, before)
    for node in ("ImportExampleGen", "StatisticsGen", "ExampleValidator", "DataGate", "SpanDrift", "Transform",
                 "Trainer", "ColourVariants"):
        first = min(executions[node], key=lambda e: e.id)
        assert first.last_known_state == complete, node
        assert [e.last_known_state for e in rerun[node]] == [cached], node


def test_rerun_evaluates_its_model_once_as_the_blessed_baseline_and_does_not_push_it_again(config, runs):
    """The resolver now finds a baseline, the cached model itself: the Evaluator scores it once, without comparing
    it with itself, and says so; the Pusher runs again; the served version stays the only one."""
    first, second, before = runs
    assert second.metrics == first.metrics
    assert second.blessed and second.gate_failures == []
    assert second.candidate_is_baseline and not first.candidate_is_baseline
    assert second.baseline_metrics == {} and not any(gate.is_change for gate in second.gates)
    assert "the candidate is the blessed model itself (nothing changed): evaluated once, not compared" in second.lines()
    version = pathlib.Path(first.pushed_destination).name
    assert second.pushed and pathlib.Path(second.pushed_destination) == pathlib.Path(config.push_destination) / version
    assert second.already_pushed and not first.already_pushed
    assert f"already pushed: version {version}" in second.lines()
    assert [v.name for v in pathlib.Path(config.push_destination).iterdir()] == [version]
    pushers = _executions_by_node(config)["Pusher"]
    assert min(pushers, key=lambda e: e.id).last_known_state == metadata_store_pb2.Execution.COMPLETE
    assert [e.last_known_state for e in _rerun_executions(config, before)["Pusher"]] == [metadata_store_pb2.Execution.COMPLETE]
