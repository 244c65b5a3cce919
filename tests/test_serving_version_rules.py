"""Which folders are versions, that loading one never stalls requests, and that removing one fails none.

TF Serving's rules: a version is a folder named by a positive int64, other
names are skipped; its loads run beside the request threads; and its
availability-preserving policy loads the next version before it unloads the last.
"""
import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from cli import main as leather
from serving import server as serving_server
from serving.model_store import ModelStore
from serving.rest import RestFront

from serving_support import MODEL_NAME, predict_request, predictions_stub, wait_for, wait_for_versions

pytest_plugins = ["serving_fixtures"]

MAX_INT64 = 2**63 - 1
# Folder names that are not versions: beyond int64, zero, signed, not digits, and a second spelling of a version.
NOT_VERSIONS = ("99999999999999999999", str(MAX_INT64 + 1), "0", "-3", "+4", "v5", "export-tmp", f"0{MAX_INT64}")
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


def _status_request() -> get_model_status_pb2.GetModelStatusRequest:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    return request


def _states(response: get_model_status_pb2.GetModelStatusResponse) -> list[tuple[int, int, bool]]:
    """(version, state, has an error message) per version in a GetModelStatus answer."""
    return [(status.version, status.state, bool(status.status.error_message)) for status in response.model_version_status]


def test_only_positive_int64_folders_are_versions_and_each_other_folder_is_logged_once(tmp_path, toy_models, caplog):
    caplog.set_level(logging.INFO, logger="serving")
    for name in NOT_VERSIONS:
        shutil.copytree(toy_models[1], tmp_path / name)
    shutil.copytree(toy_models[2], tmp_path / str(MAX_INT64))
    (tmp_path / "README").write_text("a file, not a folder: not worth a log line")
    store = ModelStore(tmp_path)

    for _ in range(4):
        store.poll()

    assert store.loaded_versions() == (MAX_INT64,)
    assert [(status.version, status.available) for status in store.statuses()] == [(MAX_INT64, True)]
    ignored = [record.getMessage() for record in caplog.records if record.getMessage().startswith("ignoring")]
    assert len(ignored) == len(NOT_VERSIONS)
    for name in NOT_VERSIONS:
        assert sum(f"ignoring folder {tmp_path / name}:" in message for message in ignored) == 1, name
    assert not any("README" in message for message in ignored)


def test_a_failed_load_is_reported_beside_the_version_serving_over_grpc_and_rest(tmp_path, push, serve, connect, toy_models):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    shutil.copytree(toy_models[2], tmp_path / "99999999999999999999")
    broken = tmp_path / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"half a protobuf")
    wait_for(lambda: any(status.version == 2 for status in server.store.statuses()), "version 2 to be tried")
    rest = RestFront(server.api, "127.0.0.1", 0)
    rest.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest.port}/v1/models/{MODEL_NAME}", timeout=10) as answer:
            readiness = answer.status, json.load(answer)
    finally:
        rest.stop()

    status = model_service_pb2_grpc.ModelServiceStub(connect(server)).GetModelStatus(_status_request(), timeout=10)

    assert _states(status) == [(1, AVAILABLE, False), (2, END, True)]
    assert readiness[0] == 200
    assert [(entry["version"], entry["state"]) for entry in readiness[1]["model_version_status"]] == [
        ("1", "AVAILABLE"), ("2", "END"),
    ]
    assert server.store.loaded_versions() == (1,)


def _release(fifo: os.PathLike) -> None:
    """Lets a reader stuck opening `fifo` go on (it reads end of file), so no thread outlives the test."""
    with contextlib.suppress(OSError):  # ENXIO: nobody is waiting on it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def _release_later(fifo: os.PathLike, seconds: float) -> subprocess.Popen:
    """Releases `fifo` from another process after `seconds`: a server frozen on it fails the test instead of hanging it."""
    return subprocess.Popen(["sh", "-c", 'sleep "$1" && : > "$0"', str(fifo), str(seconds)])


def test_a_version_stuck_reading_its_files_times_out_while_requests_keep_being_answered(
    tmp_path, push, serve, connect, images
):
    timeout = 0.8
    push(tmp_path, 1)
    server = serve(tmp_path, load_timeout=timeout)
    wait_for_versions(server, (1,))
    channel = connect(server)
    predictions, models = predictions_stub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    request = predict_request([images["gradient.png"]])
    stuck = push(tmp_path, 2) / "variables" / "variables.data-00000-of-00001"
    stuck.unlink()
    os.mkfifo(stuck)  # a read that never returns, as on a stalled network file system
    watchdog = _release_later(stuck, 10 * timeout)
    answered: list[tuple[float, float, int]] = []
    try:
        started = time.monotonic()
        while not any(status.version == 2 for status in server.store.statuses()):
            assert time.monotonic() - started < 20 * timeout, "version 2 should have timed out by now"
            sent = time.monotonic()
            version = predictions.Predict(request, timeout=5).model_spec.version.value
            models.GetModelStatus(_status_request(), timeout=5)
            answered.append((sent, time.monotonic(), version))
        failed_at = time.monotonic()
        after = models.GetModelStatus(_status_request(), timeout=5)
        served_after = predictions.Predict(request, timeout=5).model_spec.version.value
    finally:
        watchdog.kill()
        watchdog.wait()
        _release(stuck)

    during = [answer for answer in answered if failed_at - timeout + 0.2 <= answer[0] <= failed_at - 0.1]
    assert len(during) >= 3, "requests should be answered while version 2 is being read"
    assert max(received - sent for sent, received, _ in answered) < timeout / 2
    assert {version for _, _, version in answered} == {1} and served_after == 1
    assert _states(after) == [(1, AVAILABLE, False), (2, END, True)]
    (failed,) = [status for status in server.store.statuses() if status.version == 2]
    assert f"reading its files took longer than the load timeout of {timeout:g} s" in failed.error


def test_deleting_the_newest_version_falls_back_to_the_older_one_without_a_failed_request(
    tmp_path, push, serve, images
):
    push(tmp_path, 1)
    newest = push(tmp_path, 2)
    server = serve(tmp_path)
    wait_for_versions(server, (2,))
    request = predict_request([images["gradient.png"]])
    versions: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = predictions_stub(channel)
            while not stop.is_set():
                try:
                    versions.append(stub.Predict(request, timeout=5).model_spec.version.value)
                except grpc.RpcError as error:
                    failures.append(f"{error.code().name}: {error.details()}")

    clients = [threading.Thread(target=client, name=f"client-{n}") for n in range(2)]
    for thread in clients:
        thread.start()
    try:
        wait_for(lambda: len(versions) >= 10, "the clients to be answered")
        shutil.rmtree(newest)
        wait_for_versions(server, (1,))
        count = len(versions)
        wait_for(lambda: len(versions) >= count + 10, "answers from version 1")
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=10)

    assert failures == []
    assert versions[0] == 2 and versions[-1] == 1
    assert [(status.version, status.available) for status in server.store.statuses()] == [(1, True), (2, False)]


def test_serve_takes_the_load_timeout_flag(tmp_path, monkeypatch, capsys):
    given = {}

    def server(*args: object, **options: object) -> None:
        given.update(options)
        raise ValueError("not started in this test")

    monkeypatch.setattr(serving_server, "ServingServer", server)
    monkeypatch.setattr(logging, "basicConfig", lambda **settings: None)  # keep pytest's log capture

    assert leather.main(["serve", "--model-dir", str(tmp_path), "--load-timeout", "0.5"]) == 1
    assert given["load_timeout"] == 0.5
    assert leather.main(["serve", "--model-dir", str(tmp_path)]) == 1
    assert given["load_timeout"] == serving_server.DEFAULT_LOAD_TIMEOUT
    with pytest.raises(SystemExit) as refused:
        leather.main(["serve", "--model-dir", str(tmp_path), "--load-timeout", "0"])
    assert refused.value.code == 2
    assert "--load-timeout: must be greater than 0" in capsys.readouterr().err
