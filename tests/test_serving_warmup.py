"""Warmup requests: written in TF Serving's format at export, replayed by `leather serve` before a version goes live."""
import logging
import pathlib

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from models.serving_contract import WARMUP_REQUESTS_FILE
from models.warmup import WARMUP_BATCH_SIZES, warmup_photo
from serving.limits import ServingLimits
from serving.model_store import ModelStore
from serving.warmup import MAX_WARMUP_RECORDS

from serving_support import predict_request, predictions_stub, served_answer, wait_for, wait_for_versions

pytest_plugins = ["serving_fixtures"]


def _records(version_dir: pathlib.Path) -> list[prediction_log_pb2.PredictionLog]:
    path = version_dir / WARMUP_REQUESTS_FILE
    return [prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def _write(version_dir: pathlib.Path, logs: list[prediction_log_pb2.PredictionLog]) -> None:
    path = version_dir / WARMUP_REQUESTS_FILE
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def _requested(log: prediction_log_pb2.PredictionLog) -> tuple[str, str, int]:
    kind = log.WhichOneof("log_type")
    if kind == "classify_log":
        request = log.classify_log.request
        return kind, request.model_spec.signature_name, len(request.input.example_list.examples)
    request = log.predict_log.request
    (proto,) = request.inputs.values()
    return kind, request.model_spec.signature_name, proto.tensor_shape.dim[0].size


def test_warmup_file_parses_as_prediction_logs_covering_every_client_signature_and_batch_size(toy_models):
    logs = _records(toy_models[1])

    assert sorted(_requested(log) for log in logs) == sorted(
        [("predict_log", "predict_image", size) for size in WARMUP_BATCH_SIZES]
        + [("predict_log", "serving_default", size) for size in WARMUP_BATCH_SIZES]
        + [("classify_log", "classify", size) for size in WARMUP_BATCH_SIZES]
    )
    assert all(log.predict_log.request.model_spec.name == "leather" for log in logs if log.HasField("predict_log"))


def test_every_warmup_record_replays_against_the_exported_model(toy_models):
    model = tf.saved_model.load(str(toy_models[1]))
    expected_probability = 0.5 * float(tf.reduce_mean(tf.cast(tf.io.decode_jpeg(warmup_photo(), channels=1), tf.float32))) / 255 + 0.1

    for log in _records(toy_models[1]):
        kind, signature, size = _requested(log)
        if kind == "classify_log":
            examples = [e.SerializeToString() for e in log.classify_log.request.input.example_list.examples]
            scores = model.signatures[signature](inputs=tf.constant(examples))["scores"].numpy()
            np.testing.assert_allclose(scores[:, 1], [expected_probability] * size, rtol=1e-5)
        else:
            inputs = {alias: tf.make_ndarray(proto) for alias, proto in log.predict_log.request.inputs.items()}
            probability = model.signatures[signature](**inputs)["probability"].numpy()
            np.testing.assert_allclose(probability, [expected_probability] * size, rtol=1e-5)


def test_a_version_is_warmed_up_before_it_is_published(tmp_path, push):
    push(tmp_path, 1)
    seen = []
    store = ModelStore(tmp_path, prepare=lambda model: seen.append((model.version, store.loaded_versions())))
    store.poll()
    store.poll()
    push(tmp_path, 2)
    store.poll()
    store.poll()

    assert seen == [(1, ()), (2, (1,))]
    assert store.loaded_versions() == (2,)


def test_serve_replays_warmup_and_a_version_whose_warmup_fails_never_takes_traffic(
    tmp_path, push, serve, connect, reference, images, caplog
):
    caplog.set_level(logging.INFO, logger="serving")
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    broken = push(tmp_path, 2)
    unknown = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="leather", signature_name="predict_wallet"))
    _write(broken, [*_records(broken)[:2], prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=unknown)
    )])

    wait_for(lambda: any(s.version == 2 and s.error for s in server.store.statuses()), "version 2 to fail its warmup")
    response = predictions_stub(connect(server)).Predict(predict_request([images["dark.png"]]), timeout=10)

    (failed,) = [s for s in server.store.statuses() if s.version == 2]
    assert "warmup record 2 of" in failed.error and 'Serving signature key "predict_wallet" not found' in failed.error
    assert response.model_spec.version.value == 1
    np.testing.assert_array_equal(
        served_answer(response)["probability"], reference(1, "predict_image", [images["dark.png"]])["probability"]
    )
    assert any("warmed up version 1 with 12 requests" in record.getMessage() for record in caplog.records)


def test_more_warmup_records_than_tf_serving_allows_fail_the_load_and_no_file_means_no_warmup(
    tmp_path, push, serve
):
    without = push(tmp_path, 1)
    (without / WARMUP_REQUESTS_FILE).unlink()
    too_many = push(tmp_path, 2)
    _write(too_many, _records(too_many)[:1] * (MAX_WARMUP_RECORDS + 1))

    server = serve(tmp_path)
    wait_for_versions(server, (1,))

    (failed,) = [s for s in server.store.statuses() if s.version == 2]
    assert f"holds more than {MAX_WARMUP_RECORDS} records" in failed.error


def test_warmup_batches_larger_than_max_batch_size_still_warm_the_version_and_clients_stay_capped(
    tmp_path, push, serve, connect, images
):
    """The warmup file holds batches of up to 32 photos; a station fleet capped at 8 must still get its model."""
    push(tmp_path, 1)
    server = serve(tmp_path, limits=ServingLimits(max_batch_size=8))
    wait_for_versions(server, (1,))
    stub = predictions_stub(connect(server))

    assert [s.error for s in server.store.statuses()] == [None]
    assert len(served_answer(stub.Predict(predict_request([images["dark.png"]] * 8), timeout=10))["probability"]) == 8
    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(predict_request([images["dark.png"]] * 9), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds 9 elements; this server takes at most 8" in refused.value.details()
