"""TF Serving's REST API (`/v1/models/<name>...`) answered from a ModelApi or ModelRouter, beside or without gRPC.

For curl users and HTTP probes: model status, metadata and predict (by
version, label or latest), in TF Serving's JSON shapes (`serving.rest_json`),
and the Prometheus metrics at TF Serving's path. Errors are {"error": message}
with TF Serving's HTTP status for the gRPC code. How many connections, how long a
client may take and how a body is framed: `serving.rest_connections`. The
instances of a body are counted against the batch cap before any tensor is
built; the model API counts their pixels, as it does for gRPC.
"""
from __future__ import annotations

import http
import logging
import re
import threading
import time

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from models.serving_contract import MAX_VERSION
from serving.metrics import CONTENT_TYPE, METRICS_PATH, ServingMetrics
from serving.model_api import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD, ModelApi
from serving.model_router import ModelRouter
from serving.request_error import RequestError, shortened
from serving.rest_connections import BoundedRequestHandler, CappedHTTPServer
from serving.rest_json import bad_request, predict_answer, predict_request, request_json, signature_name

log = logging.getLogger(__name__)

_ROUTE = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|:predict|:classify|:regress)?"
)
_POLL_SECONDS = 0.05  # how soon stop() is noticed by the serving loop
_INFERENCE_ACTIONS = {":predict": "Predict", ":classify": "Classify", ":regress": "Regress"}
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: http.HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: http.HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: http.HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.UNAUTHENTICATED: http.HTTPStatus.UNAUTHORIZED,
    grpc.StatusCode.PERMISSION_DENIED: http.HTTPStatus.FORBIDDEN,
    grpc.StatusCode.NOT_FOUND: http.HTTPStatus.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: http.HTTPStatus.CONFLICT,
    grpc.StatusCode.ABORTED: http.HTTPStatus.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: http.HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.UNIMPLEMENTED: http.HTTPStatus.NOT_IMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE: http.HTTPStatus.SERVICE_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: http.HTTPStatus.GATEWAY_TIMEOUT,
}


def _model_spec(route: re.Match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=route["name"])
    if route["version"]:
        digits = route["version"].lstrip("0") or "0"
        if len(digits) > len(str(MAX_VERSION)) or int(digits) > MAX_VERSION:
            raise bad_request(f"version {shortened(digits, 60)} is out of range: versions are at most {MAX_VERSION}")
        spec.version.value = int(digits)
    elif route["label"]:
        spec.version_label = route["label"]
    return spec


def _as_json(message: Message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, including_default_value_fields=True
    )


class RestFront:
    """An HTTP server answering TF Serving's REST paths from a ModelApi or ModelRouter (the gRPC host's, if any).

    The model is the one the path names. With `metrics`, `GET /monitoring/prometheus/metrics` answers them and
    REST inference calls are counted there.
    """

    def __init__(
        self, api: ModelApi | ModelRouter, host: str, port: int, metrics: ServingMetrics | None = None
    ) -> None:
        self.api = api
        self.metrics = metrics
        self._httpd = CappedHTTPServer((host, port), _handler(self), api.limits.rest_max_connections)
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(_POLL_SECONDS,), name="rest-front", daemon=True
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        for name in self.api.names:
            log.info("REST API for model '%s' on http://%s/v1/models/%s", name, self.address, name)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def answer(self, method: str, path: str, body: bytes) -> dict:
        """The JSON answer to one HTTP request; refusals raise RequestError."""
        route = _ROUTE.fullmatch(path.split("?", 1)[0])
        if route is None:
            models = " or ".join(f"/v1/models/{name}" for name in self.api.names)
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no such path {path}; try {models}")
        action = route["action"]
        if method == "POST" and action in _INFERENCE_ACTIONS:
            return self._infer(route, body)
        spec = _model_spec(route)
        if method == "GET" and action is None:
            return _as_json(self.api.status(get_model_status_pb2.GetModelStatusRequest(model_spec=spec)))
        if method == "GET" and action == "/metadata":
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD]
            )
            return _as_json(self.api.metadata(request))
        raise RequestError(grpc.StatusCode.NOT_FOUND, f"{method} {path} is not a TF Serving REST call")

    def _infer(self, route: re.Match, body: bytes) -> dict:
        """Predict (Classify and Regress are not served over REST), counted in the metrics as TF Serving counts it."""
        api = _INFERENCE_ACTIONS[route["action"]]
        started, code, signature = time.perf_counter(), grpc.StatusCode.OK, DEFAULT_SIGNATURE
        try:
            spec = _model_spec(route)
            if api != "Predict":
                raise RequestError(
                    grpc.StatusCode.UNIMPLEMENTED, f"{route['action'][1:]} is not supported over REST; use :predict"
                )
            payload = request_json(body)
            spec.signature_name = signature_name(payload)
            signature = spec.signature_name or DEFAULT_SIGNATURE
            # Only to learn the input dtypes: the request itself asks for the spec as sent, so a
            # version swapped in meanwhile answers it instead of failing it.
            _, _, function = self.api.predict_signature(spec)
            request, rows = predict_request(
                spec, payload, function.structured_input_signature[1], self.api.limits.max_batch_size
            )
            return predict_answer(self.api.predict(request), rows)
        except RequestError as error:
            code = error.code
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            raise
        finally:
            if self.metrics is not None:
                self.metrics.request(
                    route["name"], api, signature, "REST", code.name, time.perf_counter() - started
                )


def _handler(front: RestFront) -> type[BoundedRequestHandler]:
    limits = front.api.limits

    class Handler(BoundedRequestHandler):
        timeout = limits.rest_read_timeout
        header_timeout = limits.rest_header_timeout
        max_body_bytes = limits.max_message_bytes

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == METRICS_PATH and front.metrics is not None:
                self.send_bytes(http.HTTPStatus.OK, front.metrics.page(), CONTENT_TYPE)
                return
            self._respond(b"")

        def do_POST(self) -> None:
            body = self.read_body()
            if body is not None:
                self._respond(body)

        def _respond(self, body: bytes) -> None:
            try:
                self.send_json(http.HTTPStatus.OK, front.answer(self.command, self.path, body))
            except RequestError as error:
                status = _HTTP_STATUS.get(error.code, http.HTTPStatus.INTERNAL_SERVER_ERROR)
                self.send_json(status, {"error": error.message})
            except Exception as error:  # a bug on our side must still answer the client
                path = shortened(self.path, 200)
                log.exception("%s %s failed", self.command, path)
                message = shortened(f"{self.command} {path} failed: {error}")
                self.send_json(http.HTTPStatus.INTERNAL_SERVER_ERROR, {"error": message})

    return Handler
