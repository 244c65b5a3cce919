"""The Prometheus endpoint on the REST port: TF Serving's metric names, counting a known set of requests."""
import base64
import json
import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.batching_parameters import DEFAULT_BATCHING
from serving.rest import RestFront

from serving_support import predict_request, predictions_stub, wait_for_versions

pytest_plugins = ["serving_fixtures"]


def _samples(page: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def test_metrics_count_requests_by_code_api_signature_and_entrypoint(tmp_path, push, serve, connect, images):
    model_dir = tmp_path / "models"
    push(model_dir, 1)
    server = serve(model_dir, batching=DEFAULT_BATCHING)
    wait_for_versions(server, (1,))
    rest = RestFront(server.api, "127.0.0.1", 0, server.metrics)
    rest.start()
    stub = predictions_stub(connect(server))
    try:
        for _ in range(3):
            stub.Predict(predict_request([images["dark.png"]]), timeout=10)
        stub.Predict(predict_request([images["dark.png"]], "serving_default"), timeout=10)
        wallet = predict_request([images["dark.png"]], "predict_wallet", name="wallet")
        for request in (predict_request([b"not a photo"]), predict_request([images["dark.png"]], version=9), wallet):
            with pytest.raises(grpc.RpcError):
                stub.Predict(request, timeout=10)
        predict_url = f"http://127.0.0.1:{rest.port}/v1/models/leather:predict"
        body = {"signature_name": "predict_image", "instances": [{"b64": base64.b64encode(images["white.png"]).decode()}]}
        urllib.request.urlopen(urllib.request.Request(predict_url, data=json.dumps(body).encode()), timeout=10)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(urllib.request.Request(predict_url, data=b"{"), timeout=10)
        with urllib.request.urlopen(f"http://127.0.0.1:{rest.port}/monitoring/prometheus/metrics", timeout=10) as page:
            content_type, text = page.headers["Content-Type"], page.read().decode()
    finally:
        rest.stop()
    samples = _samples(text)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    assert content_type.startswith("text/plain")
    assert value(":tensorflow:serving:request_count", model_name="leather", status="OK") == 5
    assert value(":tensorflow:serving:request_count", model_name="leather", status="INVALID_ARGUMENT") == 2
    assert value(":tensorflow:serving:request_count", model_name="leather", status="NOT_FOUND") == 1
    assert value(":tensorflow:serving:request_count", model_name="unknown", status="NOT_FOUND") == 1
    assert value("leather_serving_requests_total", model_name="unknown", API="Predict", signature="unknown",
                 entrypoint="GRPC", status="NOT_FOUND") == 1, "names a client makes up are not kept as labels"
    assert value(":tensorflow:serving:request_latency_count", model_name="leather", API="Predict", entrypoint="GRPC") == 4
    assert value(":tensorflow:serving:request_latency_count", model_name="leather", API="Predict", entrypoint="REST") == 1
    requests = dict(model_name="leather", API="Predict", entrypoint="GRPC")
    assert value("leather_serving_requests_total", signature="predict_image", status="OK", **requests) == 3
    assert value("leather_serving_requests_total", signature="serving_default", status="OK", **requests) == 1
    # One batch per request sent one at a time that reached the model: 4 + the bad photo over gRPC, 1 over REST.
    assert value("leather_serving_batch_size_count") == 6
    assert value("leather_serving_batch_size_sum") == 6
    assert value("leather_serving_loaded_version", model_name="leather", version="1") == 1
    loaded = str(model_dir / "1")
    assert value(":tensorflow:cc:saved_model:load_attempt_count", model_path=loaded, status="success") == 1
    assert value(":tensorflow:serving:model_warmup_latency_count", model_path=loaded, status="OK") == 1
    assert "# TYPE :tensorflow:serving:request_count untyped" in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
