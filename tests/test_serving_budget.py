"""What one request may cost: photos' pixels summed from their headers, Classify contexts counted before merging,
REST instances bounded before any tensor is built.

One server for the module (no warmup), with small limits: 16 elements, 256 KiB messages and 10,000 pixels per request.
"""
import base64
import io
import json
import shutil
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import classification_pb2

from serving.limits import ServingLimits
from serving.rest import RestFront
from serving.server import ServingServer

from serving_support import MODEL_NAME, POLL_SECONDS, predict_request, predictions_stub, tf_example, wait_for_versions

pytest_plugins = ["serving_fixtures"]

PIXEL_BUDGET = 10_000
LIMITS = ServingLimits(max_batch_size=16, max_message_bytes=256 * 1024, max_request_pixels=PIXEL_BUDGET)


@pytest.fixture(scope="module")
def server(toy_models, tmp_path_factory) -> Iterator[ServingServer]:
    model_dir = tmp_path_factory.mktemp("budget_models")
    shutil.copytree(toy_models[1], model_dir / "1")
    started = ServingServer(
        model_dir, MODEL_NAME, host="127.0.0.1", port=0, poll_seconds=POLL_SECONDS, limits=LIMITS, warm_up=False
    )
    started.start()
    wait_for_versions(started, (1,))
    yield started
    started.stop(grace=1.0)


@pytest.fixture(scope="module")
def stub(server) -> Iterator:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield predictions_stub(channel)


@pytest.fixture(scope="module")
def rest(server) -> Iterator[str]:
    front = RestFront(server.api, "127.0.0.1", 0)
    front.start()
    yield f"http://127.0.0.1:{front.port}/v1/models/leather:predict"
    front.stop()


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), 90).save(out, format="PNG")
    return out.getvalue()


def _jpeg_header(width: int, height: int) -> bytes:
    """A few hundred bytes of JPEG whose frame header declares width x height: a bomb before its scan data."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), 90).save(out, format="JPEG")
    data = out.getvalue()
    frame = data.index(b"\xff\xc0")
    return data[: frame + 5] + struct.pack(">HH", height, width) + data[frame + 9 :]


def _refused(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call(request, timeout=10)
    return refused.value


def test_photos_within_the_pixel_budget_are_answered(stub):
    response = stub.Predict(predict_request([_png(60), _png(60)]), timeout=10)

    assert list(tf.make_ndarray(response.outputs["probability"]).shape) == [2]


@pytest.mark.parametrize("signature", ["predict_image", "serving_default"])
def test_a_request_whose_photos_declare_more_pixels_than_the_budget_is_refused_before_decoding(stub, signature):
    refused = _refused(stub.Predict, predict_request([_png(60), _png(60), _png(60)], signature))
    bomb = _refused(stub.Predict, predict_request([_jpeg_header(7000, 7000)], signature))

    assert refused.code() == bomb.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10,800 pixels by element 2 (counting from 0) of 3" in refused.details()
    assert "at most 10,000 pixels per request (--max-request-pixels)" in refused.details()
    assert "49,000,000 pixels by element 0" in bomb.details()


def test_a_photo_repeated_by_the_declared_shape_counts_each_time(stub):
    request = predict_request([_png(60)])
    request.inputs["image_bytes"].tensor_shape.dim[0].size = 3

    refused = _refused(stub.Predict, request)

    assert "10,800 pixels by element 2 (counting from 0) of 3" in refused.details()


def _with_context(context: tf.train.Example, examples: int) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = "classify"
    request.input.example_list_with_context.context.CopyFrom(context)
    for _ in range(examples):
        request.input.example_list_with_context.examples.add()
    return request


def _example(**features: bytes) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value])) for name, value in features.items()
    }))


def test_a_context_photo_counts_once_for_every_example_it_is_merged_into(stub):
    context = _example(image=_png(60))

    answered = stub.Classify(_with_context(context, 2), timeout=10)
    refused = _refused(stub.Classify, _with_context(context, 3))

    assert len(answered.result.classifications) == 2
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ClassificationRequest::input declares 10,800 pixels by element 2" in refused.details()


def test_classify_examples_are_counted_and_the_merged_size_bounded_before_merging(stub, monkeypatch):
    merged = []
    monkeypatch.setattr("serving.model_api.serialized_examples", lambda given: merged.append(given) or [])
    context = _example(image=_png(8), filler=b"x" * 100_000)

    too_many = _refused(stub.Classify, _with_context(context, 17))
    too_big = _refused(stub.Classify, _with_context(context, 3))

    assert too_many.code() == too_big.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ClassificationRequest::input holds 17 elements; this server takes at most 16" in too_many.details()
    assert "3 examples merged with their context would take 300," in too_big.details()
    assert "more than the 262,144 bytes of --max-message-mb" in too_big.details()
    assert merged == [], "nothing may be merged before the request is counted"


def _post(url: str, body: object) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, ""
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)["error"]


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def test_rest_instances_are_counted_before_any_tensor_is_built(rest, monkeypatch):
    built = []
    monkeypatch.setattr("serving.rest_json._decoded", lambda values: built.append(len(values)) or values)

    many = _post(rest, {"signature_name": "predict_image", "instances": [""] * 50_000})
    nested = _post(rest, {"signature_name": "predict_image", "instances": [[""] * 50_000]})
    columns = _post(rest, {"signature_name": "predict_image", "inputs": [""] * 50_000})

    assert many == (400, '"instances" holds 50000 elements; this server takes at most 16 per request '
                         "(--max-batch-size): send smaller batches")
    assert nested[0] == columns[0] == 400
    assert "input 'image_bytes' holds more than 16 values" in nested[1]
    assert "input 'image_bytes' holds more than 16 values" in columns[1]
    assert built == []


def test_rest_photos_count_against_the_pixel_budget(rest):
    answered = _post(rest, {"signature_name": "predict_image", "instances": [_b64(_png(60))] * 2})
    refused = _post(rest, {"signature_name": "predict_image", "instances": [_b64(_png(60))] * 3})

    assert answered == (200, "")
    assert refused[0] == 400 and "10,800 pixels by element 2" in refused[1]
