"""TF Serving's REST API in front of the same ModelApi: answers in both JSON formats, and HTTP refusals."""
import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from serving.limits import ServingLimits
from serving.rest import RestFront

from serving_support import (
    MAX_MESSAGE_BYTES,
    tf_example,
    wait_for_versions,
)

pytest_plugins = ["serving_fixtures"]


@pytest.fixture
def rest(tmp_path, push, serve) -> Iterator[str]:
    """The base URL of a REST front on a server with version 1 and a 64 KiB message limit."""
    push(tmp_path, 1)
    server = serve(tmp_path, limits=ServingLimits(max_message_bytes=MAX_MESSAGE_BYTES))
    wait_for_versions(server, (1,))
    front = RestFront(server.api, "127.0.0.1", 0)
    front.start()
    yield f"http://127.0.0.1:{front.port}/v1/models"
    front.stop()


def http_call(url: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def test_rest_predict_answers_like_the_saved_model_in_both_formats(rest, reference, images):
    batch = list(images.values())
    expected = reference(1, "predict_image", batch)

    rows_code, rows = http_call(f"{rest}/leather:predict", {
        "signature_name": "predict_image", "instances": [b64(image) for image in batch],
    })
    columns_code, columns = http_call(f"{rest}/leather/versions/1:predict", {
        "signature_name": "serving_default", "inputs": {"examples": [b64(tf_example(image)) for image in batch]},
    })

    assert (rows_code, columns_code) == (200, 200)
    assert rows["predictions"] == [
        {"probability": float(p), "label": int(label)} for p, label in zip(expected["probability"], expected["label"])
    ]
    assert columns["outputs"] == {
        "probability": [float(p) for p in expected["probability"]],
        "label": [int(label) for label in expected["label"]],
    }


def test_rest_reports_status_and_metadata(rest):
    status_code, status = http_call(f"{rest}/leather")
    metadata_code, metadata = http_call(f"{rest}/leather/versions/1/metadata")

    assert (status_code, metadata_code) == (200, 200)
    assert status == {
        "model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    }
    assert metadata["model_spec"]["version"] == "1"
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures["predict_image"]["inputs"]) == {"image_bytes"}


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("wallet", None, 404, "Could not find any versions of model wallet"),
        ("wallet:predict", {"instances": []}, 404, "Servable not found for request: Latest(wallet)"),
        ("leather/versions/7", None, 404, "Could not find version 7"),
        ("leather:predict", {"signature_name": "predict_image", "instances": [b64(b"not an image")]}, 400,
         "Unknown image file format"),
        ("leather:predict", {"signature_name": "nope", "instances": []}, 400, 'Serving signature key "nope"'),
        ("leather:predict", {"signature_name": "predict_image", "instances": [[1.5]]}, 400, "image_bytes"),
        ("leather:predict", {"instances": [], "inputs": []}, 400, 'exactly one of "instances"'),
        ("leather:predict", b"{not json", 400, "not JSON"),
        ("leather:predict", {"instances": ["x" * 2 * MAX_MESSAGE_BYTES]}, 413, "larger than max"),
        ("leather:classify", {"examples": []}, 501, "not supported over REST"),
    ],
)
def test_rest_refuses_bad_calls_with_tf_serving_http_status(rest, path, body, status, fragment):
    url = f"{rest}/{path}"
    code, answer = http_call(url, raw=body) if isinstance(body, bytes) else http_call(url, body)

    assert code == status
    assert fragment in answer["error"]
