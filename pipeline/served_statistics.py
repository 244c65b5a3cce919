"""The training statistics of the model a workdir's pipeline pushed, found through ML Metadata's lineage.

`leather monitor` compares served photos with the photos the served model was
trained on. The Pusher records each push (`pushed`, `pushed_version`); from
the pushed model the lineage runs back: the Trainer that wrote it, the
transformed examples it read, the Transform that wrote them, the raw examples
Transform read, and the StatisticsGen run on those examples, whose `train`
split is the training statistics (of the newest span, when the model was
trained on several: StatisticsGen summarises one span a run). Lineage, not "the newest StatisticsGen", so
a later run that failed its gates (and pushed nothing) is not taken for the
served one. A cached execution records the same inputs as the one it reused,
so either leads to the same artifacts.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib

import ml_metadata as mlmd
import tensorflow_data_validation as tfdv
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen.stats_artifact_utils import BINARY_PB_BASENAME
from tfx.orchestration.metadata import sqlite_metadata_connection_config

from pipeline.config import PipelineConfig
from pipeline.pipeline import TRAIN_SPLIT

PUSHER_NODE = "Pusher"
_OUTPUTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


class ServedStatisticsError(LookupError):
    """The workdir has no pushed model whose training statistics can be found; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class ServedStatistics:
    statistics: statistics_pb2.DatasetFeatureStatisticsList
    path: str
    """The FeatureStats.pb of the training split."""
    pushed_version: str
    pushed_destination: str


def _events(store: mlmd.MetadataStore, *, execution: int | None = None, artifact: int | None = None) -> list:
    if execution is not None:
        return store.get_events_by_execution_ids([execution])
    return store.get_events_by_artifact_ids([artifact])


def _artifact(store: mlmd.MetadataStore, execution: int, key: str, kinds: tuple) -> metadata_store_pb2.Artifact:
    """The artifact an execution read or wrote under `key`; of several (Transform over several spans), the newest."""
    ids = [e.artifact_id for e in _events(store, execution=execution) if e.type in kinds and e.path.steps[0].key == key]
    if not ids:
        raise ServedStatisticsError(f"ML Metadata records no {key!r} of execution {execution}")
    return store.get_artifacts_by_id([max(ids)])[0]


def _producer(store: mlmd.MetadataStore, artifact: metadata_store_pb2.Artifact) -> int:
    producers = sorted(e.execution_id for e in _events(store, artifact=artifact.id) if e.type in _OUTPUTS)
    if not producers:
        raise ServedStatisticsError(f"ML Metadata records no execution that wrote {artifact.uri}")
    return producers[0]


def _pushes(store: mlmd.MetadataStore, pipeline_name: str) -> list[tuple[int, metadata_store_pb2.Artifact]]:
    """(Pusher execution id, pushed_model artifact) of every push that copied or recorded a model, newest first."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{PUSHER_NODE}")
    executions = store.get_executions_by_context(context.id) if context else []
    pushes = []
    for execution in sorted(executions, key=lambda e: e.id, reverse=True):
        try:
            pushed = _artifact(store, execution.id, "pushed_model", _OUTPUTS)
        except ServedStatisticsError:
            continue  # a failed or cancelled Pusher
        if pushed.custom_properties["pushed"].int_value:
            pushes.append((execution.id, pushed))
    return pushes


def served_statistics(
    workdir: pathlib.Path, pipeline_name: str = PipelineConfig.pipeline_name, version: str | None = None
) -> ServedStatistics:
    """The training statistics of the pushed model `version` (its folder name), or of the newest push."""
    metadata = pathlib.Path(PipelineConfig(data_dir="", workdir=str(workdir)).metadata_path)
    if not metadata.is_file():
        raise ServedStatisticsError(f"{workdir} holds no pipeline metadata ({metadata.name}): no pipeline ran there")
    store = mlmd.MetadataStore(sqlite_metadata_connection_config(str(metadata)))
    pushes = _pushes(store, pipeline_name)
    if not pushes:
        raise ServedStatisticsError(f"no run of pipeline {pipeline_name!r} in {workdir} pushed a model")
    if version is not None:
        pushes = [push for push in pushes if push[1].custom_properties["pushed_version"].string_value == version]
        if not pushes:
            raise ServedStatisticsError(f"no run of pipeline {pipeline_name!r} in {workdir} pushed version {version}")
    pusher, pushed = pushes[0]
    trainer = _producer(store, _artifact(store, pusher, "model", _INPUTS))
    transform = _producer(store, _artifact(store, trainer, "examples", _INPUTS))
    raw_examples = _artifact(store, transform, "examples", _INPUTS)
    statistics_type = next((t.id for t in store.get_artifact_types() if t.name == "ExampleStatistics"), None)
    for event in _events(store, artifact=raw_examples.id):
        if event.type not in _INPUTS:
            continue
        for output in _events(store, execution=event.execution_id):
            artifact = store.get_artifacts_by_id([output.artifact_id])[0]
            if output.type in _OUTPUTS and artifact.type_id == statistics_type:
                path = os.path.join(artifact.uri, f"Split-{TRAIN_SPLIT}", BINARY_PB_BASENAME)
                return ServedStatistics(
                    statistics=_load(path),
                    path=path,
                    pushed_version=pushed.custom_properties["pushed_version"].string_value,
                    pushed_destination=pushed.custom_properties["pushed_destination"].string_value,
                )
    raise ServedStatisticsError(f"ML Metadata records no statistics of the examples at {raw_examples.uri}")


def _load(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    if not os.path.isfile(path):
        raise ServedStatisticsError(f"the training statistics {path} are gone")
    return tfdv.load_stats_binary(path)
