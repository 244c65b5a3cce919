"""Server-side batching: each client gets its own answers from shared model calls, within TF Serving's parameters.

The batcher is driven through the ModelApi with a stand-in signature that echoes
its input and records the elements of every call, so a test can tell which
requests shared a call and whether any answer went to the wrong client.
"""
import concurrent.futures
import os
import pathlib
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving.admission import Caller
from serving.batching import Batcher
from serving.batching_parameters import DEFAULT_BATCHING, BatchingParameters, read_batching_parameters
from serving.limits import ServingLimits
from serving.model_api import ModelApi
from serving.model_store import LoadedModel
from serving.request_error import RequestError

from serving_support import predict_request, predictions_stub, served_answer, wait_for, wait_for_versions

pytest_plugins = ["serving_fixtures"]


class EchoSignature:
    """A `predict_image` stand-in answering each element with itself; refuses an element b"bad" as a model would."""

    structured_input_signature = ((), {"image_bytes": tf.TensorSpec([None], tf.string)})
    structured_outputs = {"echo": tf.TensorSpec([None], tf.string), "length": tf.TensorSpec([None], tf.int32)}

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        with self._lock:
            self.calls.append(int(image_bytes.shape[0]))
        time.sleep(self.seconds)
        if b"bad" in image_bytes.numpy().tolist():
            raise tf.errors.InvalidArgumentError(None, None, "Unknown image file format")
        return {"echo": image_bytes, "length": tf.strings.length(image_bytes)}


class OneVersion:
    def __init__(self, signature: EchoSignature) -> None:
        self.model = LoadedModel(1, pathlib.Path("unused"), {"predict_image": signature}, {}, root=None)

    def get(self, version: int | None = None) -> LoadedModel:
        return self.model


@pytest.fixture
def batched():
    """Starts ModelApis batching on an EchoSignature; yields a function returning (api, signature)."""
    batchers = []

    def start(seconds: float = 0.0, **parameters) -> tuple[ModelApi, EchoSignature]:
        signature = EchoSignature(seconds)
        batchers.append(Batcher(BatchingParameters.tf_serving_defaults(**parameters)))
        return ModelApi("leather", OneVersion(signature), ServingLimits(), batchers[-1]), signature

    yield start
    for batcher in batchers:
        batcher.stop()


def _echo(api: ModelApi, values: list[bytes], caller: Caller = Caller()) -> list[bytes]:
    return served_answer(api.predict(predict_request(values), caller))["echo"].tolist()


def _concurrently(api: ModelApi, requests: list[list[bytes]]) -> list[object]:
    """Each request from its own thread, all released at once; answers (or RequestErrors) in request order."""
    start = threading.Barrier(len(requests))

    def send(values: list[bytes]) -> object:
        start.wait()
        try:
            return _echo(api, values)
        except RequestError as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def test_concurrent_clients_get_their_own_answers_in_order_from_shared_batches_within_max_batch_size(batched):
    api, signature = batched(seconds=0.02, max_batch_size=4, batch_timeout_micros=50_000, num_batch_threads=1)
    requests = [[f"{client}-{element}".encode() for element in range(1 + client % 3)] for client in range(12)]

    answers = _concurrently(api, requests)

    assert answers == requests
    assert sum(signature.calls) == sum(map(len, requests))
    assert max(signature.calls) <= 4
    assert len(signature.calls) < len(requests), f"no request shared a model call: {signature.calls}"


def test_batches_are_padded_to_allowed_batch_sizes_and_the_padding_is_not_answered(batched):
    api, signature = batched(
        seconds=0.02, max_batch_size=4, batch_timeout_micros=50_000, num_batch_threads=1, allowed_batch_sizes=(2, 4)
    )
    requests = [[f"{client}".encode()] for client in range(7)]

    answers = _concurrently(api, requests)

    assert answers == requests
    assert set(signature.calls) <= {2, 4}


def test_a_bad_photo_fails_only_its_own_request_in_a_shared_batch(batched):
    api, signature = batched(seconds=0.3, max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        blocker = pool.submit(_echo, api, [b"first"])
        wait_for(lambda: signature.calls == [1], "the first batch to run")  # the next four queue up meanwhile
        answers = _concurrently(api, [[b"a"], [b"b", b"bad"], [b"c"], [b"d"]])
        assert blocker.result(timeout=5) == [b"first"]

    assert [answers[0], answers[2], answers[3]] == [[b"a"], [b"c"], [b"d"]]
    assert isinstance(answers[1], RequestError) and answers[1].code == grpc.StatusCode.INVALID_ARGUMENT
    assert "element 1 (counting from 0) of 2: Unknown image file format" in answers[1].message
    assert signature.calls[1] == 5, "the four requests should have shared the second call"


def test_a_lone_request_does_not_wait_for_the_batch_timeout(batched):
    api, _ = batched(max_batch_size=8, batch_timeout_micros=5_000_000)

    started = time.monotonic()
    assert _echo(api, [b"alone"]) == [b"alone"]

    assert time.monotonic() - started < 2.0


def test_a_request_larger_than_max_batch_size_runs_on_its_own(batched):
    api, signature = batched(max_batch_size=4)
    values = [str(i).encode() for i in range(10)]

    assert _echo(api, values) == values
    assert signature.calls == [10]


def test_a_full_batch_queue_is_unavailable_and_an_expired_deadline_gets_no_model_work(batched):
    api, signature = batched(seconds=0.5, max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(_echo, api, [b"first"])
        wait_for(lambda: signature.calls == [1], "the first batch to run")
        queued = pool.submit(_echo, api, [b"second"], Caller(deadline=time.monotonic() + 0.2))
        time.sleep(0.05)
        with pytest.raises(RequestError) as refused:
            _echo(api, [b"third"])
        with pytest.raises(RequestError) as expired:
            queued.result(timeout=5)
        assert running.result(timeout=5) == [b"first"]

    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert "batch scheduling queue" in refused.value.message
    assert expired.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.6)
    assert signature.calls == [1], "the expired request must not have run"


def test_batching_over_grpc_answers_each_station_as_the_saved_model_does(
    tmp_path, push, serve, connect, reference, images
):
    push(tmp_path, 1)
    server = serve(tmp_path, batching=DEFAULT_BATCHING)
    wait_for_versions(server, (1,))
    stub = predictions_stub(connect(server))
    photos = list(images.values()) * 4

    with concurrent.futures.ThreadPoolExecutor(len(photos)) as pool:
        responses = list(pool.map(lambda photo: stub.Predict(predict_request([photo]), timeout=30), photos))

    expected = reference(1, "predict_image", photos)["probability"]
    np.testing.assert_array_equal([served_answer(r)["probability"][0] for r in responses], expected)


def test_batching_parameters_file_is_read_in_tf_servings_text_format(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    path.write_text(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 1500 }\nmax_enqueued_batches { value: 4 }\n"
        "num_batch_threads { value: 1 }\nthread_pool_name { value: 'batch_threads' }\n"
        "allowed_batch_sizes: 4\nallowed_batch_sizes: 16\n"
    )

    assert read_batching_parameters(path) == BatchingParameters(
        max_batch_size=16, batch_timeout_micros=1500, max_enqueued_batches=4, num_batch_threads=1,
        allowed_batch_sizes=(4, 16),
    )
    assert read_batching_parameters(path).padded_size(5) == 16
    path.write_text("max_batch_size { value: 8 }\n")
    assert read_batching_parameters(path) == BatchingParameters(
        max_batch_size=8, batch_timeout_micros=0, max_enqueued_batches=10, num_batch_threads=os.cpu_count()
    ), "fields left out take TF Serving's defaults, as in the official container"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("max_batch_size: 8", '1:17 : \'max_batch_size: 8\': Expected "{"'),
        ("max_batch_size { value: 8 }\nenable_large_batch_splitting { value: true }",
         '2:1 : Message type "tensorflow.serving.BatchingParameters" has no field named "enable_large_batch_splitting"'),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 2",
         "allowed_batch_sizes entries must be monotonically increasing"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4", "final entry in allowed_batch_sizes must equal max_batch_size"),
        ("num_batch_threads { value: 0 }", "num_batch_threads must be positive, not 0"),
        ("pad_variable_length_inputs: true", "pad_variable_length_inputs is not supported"),
    ],
)
def test_a_bad_batching_parameters_file_is_refused_naming_the_file_and_the_mistake(tmp_path, text, fragment):
    path = tmp_path / "batching.txt"
    path.write_text(text)

    with pytest.raises(ValueError) as refused:
        read_batching_parameters(path)

    assert str(refused.value).startswith(f"batching parameters file {path}: ")
    assert fragment in str(refused.value)
