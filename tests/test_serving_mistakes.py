"""Client mistakes are answered as client mistakes: INVALID_ARGUMENT or HTTP 4xx with a one-line reason.

None of them may reach the server's log at error level (where a traceback
would go), and a bad element in a batch is named by its index, as `leather
classify` names the file.
"""
import http.client
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
import tensorflow as tf

from cli import main as leather
from serving.rest import RestFront

from serving_support import predict_request, predictions_stub, wait_for_versions

pytest_plugins = ["serving_fixtures"]


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    pixels = tf.cast(tf.random.stateless_uniform([64, 64, 3], seed=[1, 2], maxval=255, dtype=tf.int32), tf.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


@pytest.fixture
def served(tmp_path, push, serve, connect, caplog):
    """A server with version 1, its Predict stub, and the log records at ERROR level or above."""
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    caplog.set_level(logging.INFO)
    return server, predictions_stub(connect(server)), lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]


def _refusal(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(request, timeout=10)
    return refused.value


def test_raw_jpeg_bytes_given_as_tf_examples_are_invalid_argument_like_tf_serving(served, jpeg):
    _, stub, errors = served
    request = predict_request([], "serving_default")
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([jpeg], dtype=tf.string))

    refused = _refusal(stub, request)

    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details() == "model version 1, signature 'serving_default': Could not parse example input"
    assert errors() == []


def test_the_first_bad_image_of_a_batch_is_named_by_its_index(served, jpeg):
    _, stub, errors = served
    batch = [jpeg] * 10
    batch[6] = jpeg[: len(jpeg) // 2]
    batch[8] = b"not an image at all"

    refused = _refusal(stub, predict_request(batch))

    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details().startswith("model version 1, signature 'predict_image': element 6 (counting from 0) of 10: ")
    assert "Invalid JPEG data" in refused.details() and "\n" not in refused.details()
    assert errors() == []


def test_classify_names_the_file_the_server_refused(served, jpeg, image_files, capsys):
    server, _, _ = served
    truncated = image_files[0].parent / "truncated.jpg"
    truncated.write_bytes(jpeg[: len(jpeg) // 2])
    files = [str(path) for path in image_files[:2]] + [str(truncated)] + [str(path) for path in image_files[2:]]

    code = leather.main(["classify", "--server", f"127.0.0.1:{server.port}", *files])
    err = capsys.readouterr().err

    assert code == 1
    assert f"{truncated}: TF Serving at 127.0.0.1:{server.port} answered INVALID_ARGUMENT" in err
    assert "Invalid JPEG data" in err and "Traceback" not in err


@pytest.fixture
def rest_url(served) -> Iterator[str]:
    server, _, _ = served
    front = RestFront(server.api, "127.0.0.1", 0)
    front.start()
    yield f"http://127.0.0.1:{front.port}/v1/models/leather"
    front.stop()


def _http(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)["error"]


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        (":predict", json.dumps({"signature_name": 123, "instances": []}).encode(),
         '"signature_name" must be a string, not 123'),
        (":predict", b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "nests JSON arrays or objects too deeply"),
        ("/versions/99999999999999999999", None, "version 99999999999999999999 is out of range"),
        ("/versions/99999999999999999999:predict", b"{}", "version 99999999999999999999 is out of range"),
        ("/versions/" + "9" * 5000, None, "version 99999999999999999999"),
        ("/versions/" + "9" * 5000 + ":predict", b"{}", "is out of range"),
        (":predict", b'{"signature_name": "predict_image", "instances": [' + b"7" * 5000 + b"]}", "not JSON"),
        (":predict", b'{"signature_name": "predict_image", "instances": [' + b"7" * 4000 + b"]}", "image_bytes"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_rest_client_mistakes_are_400_with_one_line(served, rest_url, path, body, fragment):
    _, _, errors = served

    status, message = _http(rest_url + path, body)

    assert status == 400
    assert fragment in message and "\n" not in message
    assert len(message) < 600
    assert errors() == []


def test_a_refused_request_with_a_huge_path_writes_one_short_log_line(served, rest_url, caplog):
    _, _, errors = served
    caplog.set_level(logging.DEBUG, logger="serving.rest")
    caplog.clear()

    status, _ = _http(rest_url + "/versions/" + "9" * 60_000)

    lines = [record.getMessage() for record in caplog.records if record.name.startswith("serving.rest")]
    assert status == 400
    assert len(lines) <= 1 and all(len(line) < 600 for line in lines)
    assert errors() == []


def _raw_post(url: str, headers: bytes, body: bytes = b"{}") -> tuple[int, str]:
    """Answers a hand-framed POST (urllib would fix its headers) with status and error message."""
    address = url.split("/")[2].split(":")
    with socket.create_connection((address[0], int(address[1])), timeout=5) as connection:
        connection.sendall(b"POST /v1/models/leather:predict HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        return answer.status, json.loads(answer.read())["error"]


@pytest.mark.parametrize(
    ("headers", "status", "fragment"),
    [
        (b"Content-Length: abc\r\n", 400, "Content-Length must be a number of bytes, not 'abc'"),
        ("Content-Length: \u00b2\r\n".encode(), 400, "Content-Length must be a number of bytes"),
        (b"Content-Length: " + b"9" * 5000 + b"\r\n", 413, "larger than max"),
        (b"Content-Length: 2\r\nContent-Length: 2\r\n", 400, "one Content-Length header, not 2"),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", 400, "Transfer-Encoding is not supported"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_rest_refuses_a_body_whose_length_is_not_one_number(served, rest_url, headers, status, fragment):
    _, _, errors = served

    answered, message = _raw_post(rest_url, headers)

    assert answered == status
    assert fragment in message and len(message) < 600
    assert errors() == []


def test_long_names_are_cut_in_what_is_echoed(served, rest_url, jpeg):
    _, stub, errors = served
    request = predict_request([jpeg], name="n" * 60_000)

    refused = _refusal(stub, request)
    status, message = _http(rest_url.replace("/leather", "/" + "w" * 10_000))

    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert refused.details().startswith("Servable not found for request: Latest(nnnn")
    assert 200 < len(refused.details()) < 1000
    assert status == 404 and "Could not find any versions of model www" in message and len(message) < 1000
    assert errors() == []
