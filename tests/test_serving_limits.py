"""`leather serve`'s limits: elements per request, deadlines, model work at once, busy ports, slow REST clients.

Model work is observed through a stand-in signature that sleeps per call and
records how many elements each call got, so a test can tell work done from
work refused without a model that is slow by accident.
"""
import concurrent.futures
import pathlib
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving.execution import CHUNK_SIZE
from serving.grpc_host import GrpcHost
from serving.limits import ServingLimits
from serving.model_api import ModelApi
from serving.model_store import LoadedModel
from serving.request_error import RequestError
from serving.rest import RestFront

from serving_support import REPO_ROOT, predict_request, predictions_stub, wait_for, wait_for_versions

pytest_plugins = ["serving_fixtures"]


class RecordingSignature:
    """A `predict_image` stand-in taking `seconds` per call; `calls` lists the elements each call got."""

    structured_input_signature = ((), {"image_bytes": tf.TensorSpec([None], tf.string)})
    structured_outputs = {"probability": tf.TensorSpec([None], tf.float32)}

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls: list[int] = []

    def __call__(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        self.calls.append(int(image_bytes.shape[0]))
        time.sleep(self.seconds)
        return {"probability": tf.fill([image_bytes.shape[0]], 0.25)}


class OneVersion:
    """The part of a ModelStore the ModelApi asks: version 1 with the one signature."""

    def __init__(self, signature: RecordingSignature) -> None:
        self.model = LoadedModel(1, pathlib.Path("unused"), {"predict_image": signature}, {}, root=None)

    def get(self, version: int | None = None) -> LoadedModel:
        return self.model


@pytest.fixture
def host() -> Iterator:
    """Starts GrpcHosts on a stand-in signature; yields a function returning (stub, signature, api)."""
    hosts, channels = [], []

    def start(seconds: float = 0.0, **limits: int):
        signature = RecordingSignature(seconds)
        chosen = ServingLimits(**limits)
        api = ModelApi("leather", OneVersion(signature), chosen)
        hosts.append(GrpcHost(api, "127.0.0.1", 0, chosen))
        port = hosts[-1].start()
        channels.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        return predictions_stub(channels[-1]), signature, api

    yield start
    for channel in channels:
        channel.close()
    for started in hosts:
        started.stop(grace=0)


def _declaring(shape: int, values: list[bytes]) -> object:
    """A Predict request whose image_bytes TensorProto declares `shape` elements but carries `values`."""
    request = predict_request(values)
    request.inputs["image_bytes"].tensor_shape.dim[0].size = shape
    return request


def test_a_request_declaring_more_elements_than_max_batch_size_is_refused_before_any_work(host):
    stub, signature, _ = host()

    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(_declaring(20_000, [b"one small jpeg"]), timeout=10)
    largest = stub.Predict(_declaring(1024, [b"x"]), timeout=10)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'image_bytes' holds 20000 elements" in refused.value.details()
    assert "at most 1024 per request (--max-batch-size)" in refused.value.details()
    assert signature.calls == [CHUNK_SIZE] * (1024 // CHUNK_SIZE)
    np.testing.assert_array_equal(tf.make_ndarray(largest.outputs["probability"]), np.full(1024, 0.25, np.float32))


def test_max_batch_size_is_configurable(host):
    stub, signature, _ = host(max_batch_size=3)

    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(predict_request([b"a", b"b", b"c", b"d"]), timeout=10)
    stub.Predict(predict_request([b"a", b"b", b"c"]), timeout=10)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds 4 elements; this server takes at most 3" in refused.value.details()
    assert signature.calls == [3]


@pytest.mark.parametrize("gives_up", ["deadline", "cancel"])
def test_a_long_batch_stops_between_chunks_once_the_client_gives_up(host, gives_up):
    stub, signature, _ = host(seconds=0.3)
    elements = 10 * CHUNK_SIZE
    call = stub.Predict.future(predict_request([b"x"] * elements), timeout=0.5 if gives_up == "deadline" else 30)
    if gives_up == "cancel":
        time.sleep(0.5)
        call.cancel()

    time.sleep(1.5)  # the server notices at its next chunk
    done = sum(signature.calls)
    time.sleep(0.7)

    if gives_up == "deadline":
        assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    else:
        assert call.cancelled()
    assert done <= 4 * CHUNK_SIZE, f"{done} of {elements} elements computed for a client that gave up"
    assert sum(signature.calls) == done


def test_a_request_whose_deadline_passes_while_waiting_gets_no_model_work(host):
    stub, signature, _ = host(seconds=1.0, max_concurrent=1)
    first = threading.Thread(target=lambda: stub.Predict(predict_request([b"x"]), timeout=10))
    first.start()
    wait_for(lambda: signature.calls == [1], "the first request to run")

    with pytest.raises(grpc.RpcError) as late:
        stub.Predict(predict_request([b"x"] * 3), timeout=0.3)
    first.join()
    time.sleep(0.2)

    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert signature.calls == [1], "the late request must not run the model"


def test_a_flood_beyond_the_running_and_waiting_requests_is_resource_exhausted(host):
    stub, signature, api = host(seconds=1.0, max_concurrent=1, max_queued=1)
    answers: list[object] = []
    callers = [threading.Thread(target=lambda: answers.append(stub.Predict(predict_request([b"x"]), timeout=10)))
               for _ in range(2)]
    for caller in callers:
        caller.start()
        time.sleep(0.2)

    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as flooded:
        stub.Predict(predict_request([b"x"]), timeout=10)
    refused_after = time.monotonic() - started
    with pytest.raises(RequestError) as busy:  # the same bound holds for callers of the ModelApi itself (REST)
        api.predict(predict_request([b"x"]))
    for caller in callers:
        caller.join()

    assert flooded.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused_after < 0.5, "a request beyond the line is refused at once, not queued"
    assert busy.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "server busy: 1 requests running the model and 1 waiting" in busy.value.message
    assert len(answers) == 2 and signature.calls == [1, 1]


def test_serve_refuses_a_grpc_port_another_server_listens_on(tmp_path, push, serve):
    push(tmp_path, 1)
    first = serve(tmp_path)

    second = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--model-dir", str(tmp_path), "--host", "127.0.0.1",
         "--port", str(first.port)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )

    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{first.port}: Address already in use" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout


@pytest.fixture
def slow_rest(tmp_path, push, serve) -> Iterator[str]:
    """A REST front allowing 2 connections that may stall for 0.5 s."""
    push(tmp_path, 1)
    server = serve(tmp_path, limits=ServingLimits(rest_read_timeout=0.5, rest_max_connections=2))
    wait_for_versions(server, (1,))
    front = RestFront(server.api, "127.0.0.1", 0)
    front.start()
    yield front
    front.stop()


def _status_code(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_stalled_rest_clients_are_cut_off_and_connections_are_capped(slow_rest):
    url = f"http://127.0.0.1:{slow_rest.port}/v1/models/leather"
    stalled = [socket.create_connection(("127.0.0.1", slow_rest.port), timeout=5) for _ in range(2)]
    stalled[1].sendall(b"POST /v1/models/leather:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    try:
        time.sleep(0.1)
        beyond_cap = _status_code(url)
        closed = [connection.recv(1024) for connection in stalled]  # the server hangs up after 0.5 s
    finally:
        for connection in stalled:
            connection.close()

    assert beyond_cap == 503
    assert closed == [b"", b""]
    assert _status_code(url) == 200


@pytest.fixture
def trickling_rest(tmp_path, push, serve) -> Iterator[RestFront]:
    """A REST front giving 0.5 s to the end of the headers and 1 s to the end of the body, 0.8 s per read."""
    push(tmp_path, 1)
    limits = ServingLimits(rest_header_timeout=0.5, rest_read_timeout=1.0, rest_max_connections=4)
    server = serve(tmp_path, limits=limits)
    wait_for_versions(server, (1,))
    front = RestFront(server.api, "127.0.0.1", 0)
    front.start()
    yield front
    front.stop()


def _seconds_until_cut(port: int, head: bytes, drip: bytes, give_up: float = 3.0) -> float:
    """Sends `head`, then `drip` every 0.1 s (well within any read timeout) until the server hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        started = time.monotonic()
        connection.sendall(head)
        while time.monotonic() - started < give_up:
            if select.select([connection], [], [], 0.1)[0]:
                try:
                    if connection.recv(4096) == b"":
                        break
                except ConnectionResetError:
                    break
            try:
                connection.sendall(drip)
            except OSError:
                break
        return time.monotonic() - started


def test_rest_clients_trickling_headers_or_a_body_are_cut_off_at_the_whole_request_bound(trickling_rest):
    port = trickling_rest.port
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        headers = pool.submit(_seconds_until_cut, port, b"GET /v1/models/leather HTTP/1.1\r\n", b"X-Slow: 1\r\n")
        body = pool.submit(
            _seconds_until_cut, port, b"POST /v1/models/leather:predict HTTP/1.1\r\nContent-Length: 900\r\n\r\n", b" "
        )
        time.sleep(0.2)
        meanwhile = _status_code(f"http://127.0.0.1:{port}/v1/models/leather")
        cut_headers, cut_body = headers.result(), body.result()

    assert meanwhile == 200
    assert 0.4 < cut_headers < 1.0, f"headers trickled for {cut_headers:.2f} s"
    assert 0.9 < cut_body < 1.6, f"a body trickled for {cut_body:.2f} s"
