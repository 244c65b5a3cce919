"""Continuous training with LocalDagRunner: span 1, then span 2 trains on both, then a dyed span 3 is stopped.

Span 1 is conftest's shared `synthetic_run`; this module adds spans to a copy of
its workdir (`copy_of_world`), so the other modules never see them. A run on span 2 must rerun from ExampleGen on and feed Transform the Examples of
both spans through the span-range resolver; span 3 brings hue-shifted copies
of span 2's photos and must stop at the drift check, before Transform, with a
message naming the hue descriptor, its divergence and the bound.
"""
import dataclasses
import pathlib

import ml_metadata as mlmd
import pytest
from tfx import v1 as tfx

from cli.main import main
from conftest import IN_MEMORY_BEAM, copy_of_world
from ingest.spans import import_span
from ingest.synth import generate_dataset
from models.spec import TrainingConfig
from pipeline.evaluation.run_record import newest_execution
from pipeline.local_runner import run_local
from span_support import colour_shifted_copy

pytestmark = pytest.mark.slow

PHOTOS = 60
"""Span 2: fewer photos than span 1 keep the run short; two spans of 40 synthetic photos diverge by at most 0.13."""


def _store(config) -> mlmd.MetadataStore:
    return mlmd.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))


def _newest_execution(config, node: str):
    return newest_execution(_store(config), config.pipeline_name, node)


def _input_spans(config, node: str) -> list[int]:
    """The spans of the Examples the node's newest execution read."""
    store = _store(config)
    events = store.get_events_by_execution_ids([_newest_execution(config, node).id])
    artifacts = store.get_artifacts_by_id([e.artifact_id for e in events if e.type == mlmd.proto.Event.INPUT])
    return sorted(a.custom_properties["span"].int_value for a in artifacts if "span" in a.custom_properties)


@pytest.fixture(scope="module")
def spans(synthetic_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    # The MLP: which model trains on the two spans is not what this module is about, and it trains in a second.
    config = dataclasses.replace(
        copy_of_world(synthetic_run, root, own_data=True), spans=2, training=TrainingConfig(model="mlp", epochs=2), beam_args=IN_MEMORY_BEAM
    )
    first = synthetic_run.summary
    generate_dataset(root / "images-2", PHOTOS, seed=2)
    import_span(root / "images-2", pathlib.Path(config.data_dir))
    return root, config, first, run_local(config)


def test_the_first_run_has_one_span_and_nothing_to_compare(spans):
    _, _, first, _ = spans
    assert first.lines()[0] == "span drift: span 1 is the first span; nothing to compare it with"


def test_a_new_span_reruns_from_example_gen_and_trains_on_both_spans(spans):
    _, config, _, second = spans
    for node in ("ImportExampleGen", "StatisticsGen", "SpanDrift", "Transform", "Trainer", "Evaluator"):
        assert _newest_execution(config, node).last_known_state == mlmd.proto.Execution.COMPLETE, node
    assert _input_spans(config, "SpanDrift") == [2]
    assert _input_spans(config, "Transform") == [1, 2]
    assert second.lines()[0].startswith("span drift, span 2 against span 1: every feature within its bound")
    transformed = pathlib.Path(config.pipeline_root, "Transform", "transformed_examples", str(_newest_execution(config, "Transform").id))
    assert sorted(p.name for p in transformed.iterdir()) == ["0", "1"], "one transformed artifact per span"


def test_a_dyed_span_stops_the_run_before_transform_naming_the_hue(spans, capsys):
    root, config, _, _ = spans
    colour_shifted_copy(root / "images-2", root / "images-3", "hue+120")
    import_span(root / "images-3", pathlib.Path(config.data_dir))
    status = main([
        "run", "--data", config.data_dir, "--workdir", config.workdir, "--spans", "2", "--model", "mlp", "--epochs", "2",
        *(f"--beam-arg={flag}" for flag in IN_MEMORY_BEAM),
    ])
    error = capsys.readouterr().err
    assert status == 1
    assert "pipeline stopped by span drift: span 3 differs from span 2: photo_hue_" in error, error
    assert "Jensen-Shannon divergence" in error and "above the bound 0.3" in error and "Traceback" not in error
    assert _input_spans(config, "Transform") == [1, 2], "Transform never saw span 3"
