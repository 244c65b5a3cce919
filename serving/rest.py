"""TF Serving's REST API (`/v1/models/...`) answered from a ModelApi, beside or without the gRPC host.

For curl users and HTTP probes: model status, metadata and predict (by
version, label or latest), in TF Serving's JSON shapes (`serving.rest_json`),
and the Prometheus metrics at TF Serving's path. Errors are {"error": message}
with TF Serving's HTTP status for the gRPC code. Each connection has a thread, so
connections are capped (one more is answered 503 and closed) and a client that
stalls while sending a request, or idles between requests, is cut off after the
read timeout: stalled clients cannot hold the server's threads.
"""
from __future__ import annotations

import contextlib
import http
import http.server
import json
import logging
import re
import socket
import threading
import time

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from serving.metrics import CONTENT_TYPE, METRICS_PATH, ServingMetrics
from serving.model_api import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD, ModelApi
from serving.request_error import RequestError
from serving.rest_json import bad_request, predict_answer, predict_request, request_json, signature_name

log = logging.getLogger(__name__)

_ROUTE = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|:predict|:classify|:regress)?"
)
_MAX_VERSION = 2**63 - 1  # versions are int64, as in TF Serving's ModelSpec
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
        version = int(route["version"])
        if version > _MAX_VERSION:
            raise bad_request(f"version {route['version']} is out of range: versions are at most {_MAX_VERSION}")
        spec.version.value = version
    elif route["label"]:
        spec.version_label = route["label"]
    return spec


def _as_json(message: Message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, including_default_value_fields=True
    )


def _json_bytes(answer: dict) -> bytes:
    return json.dumps(answer).encode()


class _CappedHTTPServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them; one more is answered 503 and closed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int) -> None:
        self.max_connections = max_connections
        self._connections = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        if self._connections.acquire(blocking=False):
            super().process_request(request, client_address)
            return
        body = _json_bytes({"error": f"too many connections (at most {self.max_connections}); retry later"})
        try:
            request.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                request.recv(65536)  # what the client sent already: closing on unread bytes would reset the answer
            request.settimeout(1.0)
            request.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        except OSError:
            pass  # the refused client went away first; there is nobody left to tell
        self.shutdown_request(request)

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class RestFront:
    """An HTTP server answering TF Serving's REST paths from a ModelApi (the one the gRPC host uses, if any).

    With `metrics`, `GET /monitoring/prometheus/metrics` answers them and REST inference calls are counted there.
    """

    def __init__(self, api: ModelApi, host: str, port: int, metrics: ServingMetrics | None = None) -> None:
        self.api = api
        self.metrics = metrics
        self.max_body_bytes = api.limits.max_message_bytes
        self._httpd = _CappedHTTPServer(
            (host, port), _handler(self, api.limits.rest_read_timeout), api.limits.rest_max_connections
        )
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rest-front", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        log.info("REST API for model '%s' on http://%s/v1/models/%s", self.api.name, self.address, self.api.name)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def answer(self, method: str, path: str, body: bytes) -> dict:
        """The JSON answer to one HTTP request; refusals raise RequestError."""
        route = _ROUTE.fullmatch(path.split("?", 1)[0])
        if route is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no such path {path}; try /v1/models/{self.api.name}")
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
            request, rows = predict_request(spec, payload, function.structured_input_signature[1])
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


def _handler(front: RestFront, read_timeout: float) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Every read and write on the connection; a timed-out read closes it (BaseHTTPRequestHandler).
        timeout = read_timeout

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == METRICS_PATH and front.metrics is not None:
                self._send_bytes(http.HTTPStatus.OK, front.metrics.page(), CONTENT_TYPE)
                return
            self._respond(b"")

        def do_POST(self) -> None:
            length_header = self.headers.get("Content-Length") or "0"
            if not length_header.isdigit():
                self._send(http.HTTPStatus.LENGTH_REQUIRED, {"error": "a POST needs a numeric Content-Length"})
                self.close_connection = True
                return
            length = int(length_header)
            if length > front.max_body_bytes:
                self._send(
                    http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"request body of {length} bytes is larger than max ({front.max_body_bytes})"},
                )
                self.close_connection = True
                return
            self._respond(self.rfile.read(length))

        def _respond(self, body: bytes) -> None:
            try:
                self._send(http.HTTPStatus.OK, front.answer(self.command, self.path, body))
            except RequestError as error:
                self._send(_HTTP_STATUS.get(error.code, http.HTTPStatus.INTERNAL_SERVER_ERROR), {"error": error.message})
            except Exception as error:  # a bug on our side must still answer the client
                log.exception("%s %s failed", self.command, self.path)
                self._send(http.HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{self.command} {self.path} failed: {error}"})

        def _send(self, status: http.HTTPStatus, answer: dict) -> None:
            self._send_bytes(status, _json_bytes(answer), "application/json")

        def _send_bytes(self, status: http.HTTPStatus, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
