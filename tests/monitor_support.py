"""A workdir whose ML Metadata records one pushed run, as the pipeline's components record it, and request logs.

Enough lineage for `pipeline.served_statistics` to walk (Pusher <- Trainer <-
Transform <- raw examples -> StatisticsGen) without running the pipeline; the
statistics are real TFDV statistics of tf.Examples the importer wrote.
"""
import pathlib

import ml_metadata as mlmd
import tensorflow as tf
import tensorflow_data_validation as tfdv
from ml_metadata.proto import metadata_store_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2
from tfx.orchestration.metadata import sqlite_metadata_connection_config

from ingest.importer import SHARD_PATTERN
from models import features
from models.serving_contract import IMAGE_BYTES_INPUT, PREDICT_IMAGE_SIGNATURE
from pipeline.config import PipelineConfig
from serving.request_log import RequestLog
from serving.request_log_settings import RequestLogSettings

Event = metadata_store_pb2.Event


def _artifact(store: mlmd.MetadataStore, type_name: str, uri: str, **properties) -> metadata_store_pb2.Artifact:
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=type_name))
    artifact = metadata_store_pb2.Artifact(type_id=type_id, uri=uri)
    for name, value in properties.items():
        field = "int_value" if isinstance(value, int) else "string_value"
        setattr(artifact.custom_properties[name], field, value)
    artifact.id = store.put_artifacts([artifact])[0]
    return artifact


def _event(kind: int, key: str) -> metadata_store_pb2.Event:
    event = metadata_store_pb2.Event(type=kind)
    event.path.steps.add().key = key
    event.path.steps.add().index = 0
    return event


def _execution(store, type_name: str, inputs: dict, outputs: dict, contexts=()) -> None:
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name=type_name))
    pairs = [(a, _event(Event.INPUT, k)) for k, a in inputs.items()]
    pairs += [(a, _event(Event.OUTPUT, k)) for k, a in outputs.items()]
    store.put_execution(metadata_store_pb2.Execution(type_id=type_id), pairs, list(contexts))


def pushed_workdir(workdir: pathlib.Path, examples_dir: pathlib.Path, version: str = "1") -> pathlib.Path:
    """`workdir` with the metadata of one run that pushed `version`, trained on the shards in `examples_dir`."""
    config = PipelineConfig(data_dir="", workdir=str(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    store = mlmd.MetadataStore(sqlite_metadata_connection_config(config.metadata_path))
    statistics_uri = workdir / "StatisticsGen" / "statistics" / "1"
    (statistics_uri / "Split-train").mkdir(parents=True)
    statistics = tfdv.generate_statistics_from_tfrecord(str(examples_dir / SHARD_PATTERN))
    (statistics_uri / "Split-train" / "FeatureStats.pb").write_bytes(statistics.SerializeToString())

    raw = _artifact(store, "Examples", str(examples_dir))
    statistics_artifact = _artifact(store, "ExampleStatistics", str(statistics_uri))
    _execution(store, "StatisticsGen", {"examples": raw}, {"statistics": statistics_artifact})
    transformed = _artifact(store, "Examples", str(workdir / "Transform"))
    _execution(store, "Transform", {"examples": raw}, {"transformed_examples": transformed})
    model = _artifact(store, "Model", str(workdir / "Trainer"))
    _execution(store, "Trainer", {"examples": transformed}, {"model": model})
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    node = metadata_store_pb2.Context(type_id=context_type, name=f"{config.pipeline_name}.Pusher")
    node.id = store.put_contexts([node])[0]
    destination = str(workdir / "serving" / version)
    pushed = _artifact(
        store, "PushedModel", destination, pushed=1, pushed_version=version, pushed_destination=destination
    )
    _execution(store, "Pusher", {"model": model}, {"pushed_model": pushed}, [node])
    return workdir


def write_request_log(directory: pathlib.Path, photos: list[bytes], version: int = 1, batch: int = 4) -> None:
    """`photos` as the server logs them: predict_image requests, and every third batch a Classify request."""
    log = RequestLog(RequestLogSettings(directory=directory, sample_rate=1.0))
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        if start // batch % 3 == 2:
            request = classification_pb2.ClassificationRequest()
            for photo in chunk:
                example = request.input.example_list.examples.add()
                example.features.feature[features.IMAGE_KEY].bytes_list.value.append(photo)
            response = classification_pb2.ClassificationResponse()
            response.model_spec.name, response.model_spec.version.value = "leather", version
            log.classify(request, response)
        else:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = PREDICT_IMAGE_SIGNATURE
            request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(chunk))
            response = predict_pb2.PredictResponse()
            response.model_spec.name, response.model_spec.version.value = "leather", version
            log.predict(request, response)
    log.close()
