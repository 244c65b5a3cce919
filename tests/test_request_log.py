"""`leather serve --request-log`: sampled requests as TF Serving PredictionLogs in bounded files, never blocking."""
import base64
import json
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

from cli import main as leather
from serving.request_log import RequestLog, Sampler
from serving.request_log_files import LogFiles
from serving.request_log_settings import RequestLogSettings
from serving.rest import RestFront

from serving_support import (
    MODEL_NAME,
    REPO_ROOT,
    predict_request,
    predictions_stub,
    tf_example,
    wait_for,
    wait_for_versions,
)

pytest_plugins = ["serving_fixtures"]


def _exchange(index: int) -> tuple[predict_pb2.PredictRequest, predict_pb2.PredictResponse]:
    """A Predict request and response of the same size for every index below 10,000."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name, response.model_spec.signature_name = MODEL_NAME, "predict_image"
    response.model_spec.version.value = 1
    response.outputs["probability"].CopyFrom(tf.make_tensor_proto([index / 1e4], dtype=tf.float32))
    return predict_request([f"photo {index:04d}".encode()]), response


def _records(directory: pathlib.Path) -> list[prediction_log_pb2.PredictionLog]:
    """Every record of the complete log files, oldest file first, as a reader of the log sees them."""
    paths = [str(path) for path in sorted(directory.glob("*.tfrecord"))]
    if not paths:
        return []
    return [prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(paths).as_numpy_iterator()]


def _photos(directory: pathlib.Path) -> list[bytes]:
    return [record.predict_log.request.inputs["image_bytes"].string_val[0] for record in _records(directory)]


def _log(directory: pathlib.Path, **settings: object) -> RequestLog:
    return RequestLog(RequestLogSettings(directory, **{"sample_rate": 1.0, **settings}), seed=7)


def test_records_read_back_as_prediction_logs_with_request_response_and_metadata(tmp_path):
    request, response = _exchange(7)
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = MODEL_NAME
    classify.input.example_list.examples.add().ParseFromString(tf_example(b"photo"))
    classified = classification_pb2.ClassificationResponse(model_spec=response.model_spec)
    classified.result.classifications.add().classes.add(label="1", score=0.75)
    before = int(time.time())

    log = _log(tmp_path / "log")
    log.predict(request, response)
    log.classify(classify, classified)
    log.close()

    assert [path.name for path in (tmp_path / "log").iterdir()] == ["prediction_log-000001.tfrecord"]
    predicted, classification = _records(tmp_path / "log")
    assert (predicted.WhichOneof("log_type"), classification.WhichOneof("log_type")) == ("predict_log", "classify_log")
    assert (predicted.predict_log.request, predicted.predict_log.response) == (request, response)
    assert (classification.classify_log.request, classification.classify_log.response) == (classify, classified)
    assert predicted.log_metadata.model_spec == response.model_spec
    assert predicted.log_metadata.sampling_config.sampling_rate == 1.0
    assert before <= predicted.log_metadata.timestamp_secs <= time.time()
    assert log.counts() == {"written": 2, "dropped": 0, "failed": 0}


@pytest.mark.parametrize("rate, requests, logged", [(0.0, 400, 0), (1.0, 400, 400), (0.25, 400, 100), (0.1, 1000, 100)])
def test_the_sampler_takes_exactly_rate_times_the_requests_of_whole_blocks(rate, requests, logged):
    sampled = Sampler(rate, seed=1)
    assert sum(sampled() for _ in range(requests)) == logged


def test_sampling_does_not_alias_with_two_cameras_taking_turns():
    sampled = Sampler(0.5, seed=3)
    picks = [sampled() for _ in range(1000)]
    first, second = sum(picks[0::2]), sum(picks[1::2])
    assert first + second == 500
    assert 200 <= first <= 300 and 200 <= second <= 300, "every other request would log one camera only"


def test_a_quarter_of_the_requests_reach_the_files(tmp_path):
    log = _log(tmp_path, sample_rate=0.25)
    for index in range(200):
        log.predict(*_exchange(index))
    log.close()

    photos = _photos(tmp_path)
    assert len(photos) == 50 == log.counts()["written"]
    assert photos == sorted(photos), "records keep the order requests were answered in"
    assert all(record.log_metadata.sampling_config.sampling_rate == 0.25 for record in _records(tmp_path))


def test_files_rotate_by_bytes_and_the_oldest_beyond_max_files_are_deleted(tmp_path):
    probe = _log(tmp_path / "probe")
    probe.predict(*_exchange(0))
    probe.close()
    record_bytes = (tmp_path / "probe" / "prediction_log-000001.tfrecord").stat().st_size

    log = _log(tmp_path / "log", max_file_bytes=3 * record_bytes, max_files=2)
    for index in range(10):
        log.predict(*_exchange(index))
    log.close()

    files = sorted((tmp_path / "log").iterdir())
    assert [path.name for path in files] == ["prediction_log-000003.tfrecord", "prediction_log-000004.tfrecord"]
    assert [path.stat().st_size for path in files] == [3 * record_bytes, record_bytes]
    assert _photos(tmp_path / "log") == [f"photo {index:04d}".encode() for index in (6, 7, 8, 9)]
    assert log.counts() == {"written": 10, "dropped": 0, "failed": 0}


def test_a_quiet_server_completes_its_file_after_max_file_seconds_and_a_restart_numbers_on(tmp_path):
    log = _log(tmp_path, max_file_seconds=0.2)
    log.predict(*_exchange(1))
    wait_for(lambda: (tmp_path / "prediction_log-000001.tfrecord").exists(), "the due file to be completed")
    assert not list(tmp_path.glob("*.partial"))
    log.close()

    restarted = _log(tmp_path)
    restarted.predict(*_exchange(2))
    restarted.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "prediction_log-000001.tfrecord", "prediction_log-000002.tfrecord",
    ]
    assert _photos(tmp_path) == [b"photo 0001", b"photo 0002"]


def test_a_full_queue_drops_and_counts_instead_of_blocking_the_request(tmp_path, monkeypatch):
    writing, release = threading.Event(), threading.Event()
    add = LogFiles.add

    def stuck_add(files: LogFiles, record: bytes) -> None:
        writing.set()
        release.wait(30)
        add(files, record)

    monkeypatch.setattr(LogFiles, "add", stuck_add)
    log = _log(tmp_path, max_queued=4)
    log.predict(*_exchange(0))
    assert writing.wait(10), "the writer should have taken the first request"

    started = time.perf_counter()
    for index in range(1, 21):
        log.predict(*_exchange(index))
    seconds = time.perf_counter() - started
    dropped = log.counts()["dropped"]
    release.set()
    log.close()

    assert seconds < 1.0, f"20 requests took {seconds:.2f} s with the writer stuck"
    assert dropped == 16
    assert _photos(tmp_path) == [f"photo {index:04d}".encode() for index in range(5)]
    assert log.counts() == {"written": 5, "dropped": 16, "failed": 0}


def test_a_write_error_is_warned_once_and_counted_and_the_log_resumes(tmp_path, caplog):
    directory = tmp_path / "log"
    log = _log(directory, max_file_bytes=1)  # a file per record: each record is a new chance to fail
    with caplog.at_level("WARNING", logger="serving.request_log_files"):
        # Removed before the first record: removed after it, the writer thread may or may not have written it.
        shutil.rmtree(directory)
        for index in range(3):
            log.predict(*_exchange(index))
        wait_for(lambda: log.counts()["failed"] == 3, "three records lost to the removed directory")
        directory.mkdir()
        log.predict(*_exchange(3))
        log.close()

    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and str(directory) in warnings[0] and "No such file or directory" in warnings[0]
    assert log.counts() == {"written": 1, "dropped": 0, "failed": 3}
    assert _photos(directory) == [b"photo 0003"]


def test_grpc_and_rest_requests_are_both_logged_and_counted_in_the_metrics(
    tmp_path, push, serve, connect, images
):
    push(tmp_path / "models", 1)
    server = serve(tmp_path / "models", request_log=RequestLogSettings(tmp_path / "log", sample_rate=1.0))
    wait_for_versions(server, (1,))
    stub = predictions_stub(connect(server))
    rest = RestFront(server.api, "127.0.0.1", 0, server.metrics)
    rest.start()
    try:
        predict = predict_request([images["dark.png"]])
        predicted = stub.Predict(predict, timeout=10)
        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name, classify.model_spec.signature_name = MODEL_NAME, "classify"
        classify.input.example_list.examples.add().ParseFromString(tf_example(images["gradient.png"]))
        classified = stub.Classify(classify, timeout=10)
        photo = {"b64": base64.b64encode(images["white.png"]).decode()}
        body = json.dumps({"signature_name": "predict_image", "instances": [photo]}).encode()
        posted = urllib.request.Request(f"http://127.0.0.1:{rest.port}/v1/models/{MODEL_NAME}:predict", body)
        with urllib.request.urlopen(posted, timeout=10) as answer:
            (rest_answer,) = json.load(answer)["predictions"]
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(predict_request([b"not a photo"]), timeout=10)
    finally:
        rest.stop()
    server.stop()

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    first, second, third = _records(tmp_path / "log")  # neither warmup nor the refused request
    assert (first.predict_log.request, first.predict_log.response) == (predict, predicted)
    assert (second.classify_log.request, second.classify_log.response) == (classify, classified)
    assert third.predict_log.request.inputs["image_bytes"].string_val == [images["white.png"]]
    assert third.predict_log.response.model_spec.version.value == 1
    rest_probability = tf.make_ndarray(third.predict_log.response.outputs["probability"])
    assert rest_probability.tolist() == pytest.approx([rest_answer["probability"]])
    samples = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(server.metrics.page().decode())
        for sample in family.samples
        if sample.name == "leather_serving_request_log_records_total"
    }
    assert samples == {"written": 3, "dropped": 0, "failed": 0}


@pytest.mark.parametrize("argv, message", [
    (["--log-sample-rate", "1.5"], "argument --log-sample-rate: must be between 0 and 1, not 1.5"),
    (["--log-max-files", "0"], "argument --log-max-files: must be at least 1, not 0"),
    (["--request-log", "{file}"], "argument --request-log: {file} is a file, not a directory"),
])
def test_serve_refuses_bad_request_log_flags_with_exit_code_2(tmp_path, capsys, argv, message):
    file = tmp_path / "log.txt"
    file.write_text("not a directory")
    with pytest.raises(SystemExit) as exit:
        leather.main(["serve", "--model-dir", str(tmp_path), *[arg.format(file=file) for arg in argv]])
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"leather serve: error: {message.format(file=file)}"


def test_serve_refuses_request_log_flags_without_a_request_log(tmp_path, capsys):
    assert leather.main(["serve", "--model-dir", str(tmp_path), "--log-sample-rate", "0.5"]) == 1
    assert capsys.readouterr().err == (
        "leather: error: --log-sample-rate: the request log is off without --request-log DIR\n"
    )


@pytest.mark.timeout(120)
def test_sigterm_completes_the_request_log_of_leather_serve(tmp_path, push, images):
    push(tmp_path / "models", 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--model-dir", str(tmp_path / "models"), "--host", "127.0.0.1",
         "--port", "0", "--poll-seconds", "0.2", "--request-log", str(tmp_path / "log"), "--log-sample-rate", "1"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        output = []
        while not any("serving model 'leather' version 1" in line for line in output[-1:]):
            output.append(process.stdout.readline())
            assert output[-1], "".join(output)
        port = next(line for line in output if "listening on" in line).split("127.0.0.1:")[1].split()[0]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            predictions_stub(channel).Predict(predict_request([images["dark.png"]]), timeout=10)
        assert not list((tmp_path / "log").glob("*.tfrecord")), "the open file is not for readers yet"
        process.terminate()
        rest = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "request log: 1 requests written to" in rest
    assert _photos(tmp_path / "log") == [images["dark.png"]]
