"""TF Serving's gRPC services (PredictionService, ModelService) on a ModelApi or ModelRouter, and their gRPC server.

The servicers only translate: the call's deadline and cancellation become a
Caller, a RequestError becomes its status, and any other exception an INTERNAL
answer, so nothing a client sends can crash the server. Each inference call is
counted in the metrics with its status code and latency. The server takes as many
calls at once as the model API lets run and wait (gRPC answers RESOURCE_EXHAUSTED
beyond), and refuses a port another process listens on: with gRPC's default
SO_REUSEPORT two servers would share one port and split its traffic.
"""
from __future__ import annotations

import concurrent.futures
import functools
import logging
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.admission import Caller
from serving.limits import ServingLimits
from serving.metrics import INFERENCE_APIS, ServingMetrics
from serving.model_api import DEFAULT_SIGNATURE, ModelApi
from serving.model_router import ModelRouter
from serving.request_error import RequestError

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Response = TypeVar("Response")


def _answers_errors(
    method: Callable[[object, Request, grpc.ServicerContext], Response],
) -> Callable[[object, Request, grpc.ServicerContext], Response]:
    """Turns every exception of a servicer method into a gRPC status instead of a crash."""

    @functools.wraps(method)
    def answer(self: _Servicer, request: Request, context: grpc.ServicerContext) -> Response:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            return method(self, request, context)
        except RequestError as error:
            code = error.code
            context.abort(error.code, error.message)
        except Exception as error:  # a bug on our side must still answer the client
            code = grpc.StatusCode.INTERNAL
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed: {error}")
        finally:
            self.observe(method.__name__, request, code, time.perf_counter() - started)

    return answer


def _caller(context: grpc.ServicerContext) -> Caller:
    remaining = context.time_remaining()
    return Caller(
        deadline=None if remaining is None else time.monotonic() + remaining,
        gone=lambda: not context.is_active(),
    )


def _unsupported(method: str, hint: str) -> RequestError:
    return RequestError(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not supported by this server; {hint}")


class _Servicer:
    """What both servicers share: the model API (or router) they answer from and the metrics inference calls go to."""

    def __init__(self, api: ModelApi | ModelRouter, metrics: ServingMetrics | None = None) -> None:
        self._api = api
        self._metrics = metrics

    def observe(self, method: str, request: object, code: grpc.StatusCode, seconds: float) -> None:
        if self._metrics is not None and method in INFERENCE_APIS:
            spec = request.model_spec
            self._metrics.request(
                spec.name, method, spec.signature_name or DEFAULT_SIGNATURE, "GRPC", code.name, seconds
            )


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService: Predict, Classify and GetModelMetadata."""

    @_answers_errors
    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        return self._api.predict(request, _caller(context))

    @_answers_errors
    def Classify(
        self, request: classification_pb2.ClassificationRequest, context: grpc.ServicerContext
    ) -> classification_pb2.ClassificationResponse:
        return self._api.classify(request, _caller(context))

    @_answers_errors
    def Regress(self, request: object, context: grpc.ServicerContext) -> object:
        raise _unsupported("Regress", "the leather model is a classifier: use Predict or Classify")

    @_answers_errors
    def MultiInference(self, request: object, context: grpc.ServicerContext) -> object:
        raise _unsupported("MultiInference", "send one Predict or Classify request per task")

    @_answers_errors
    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return self._api.metadata(request)


class ModelStatusServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService: GetModelStatus."""

    @_answers_errors
    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return self._api.status(request)

    @_answers_errors
    def HandleReloadConfigRequest(self, request: object, context: grpc.ServicerContext) -> object:
        raise _unsupported(
            "HandleReloadConfigRequest", "edit its --model-config-file instead: it is read again when it changes"
        )


def _bind_error(host: str, port: int) -> str:
    """Why `host:port` cannot be listened on, as the operating system says it (gRPC only says that it failed)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.bind(address)
    except OSError as error:
        return error.strerror or str(error)
    return "gRPC could not bind it"


class GrpcHost:
    """A gRPC server answering TF Serving's services from one ModelApi, or from the models of a ModelRouter."""

    def __init__(
        self,
        api: ModelApi | ModelRouter,
        host: str,
        port: int,
        limits: ServingLimits,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.host = host
        self.port = port
        calls = limits.max_concurrent + limits.max_queued
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=calls, thread_name_prefix="serving"),
            options=[
                ("grpc.max_receive_message_length", limits.max_message_bytes),
                ("grpc.max_send_message_length", limits.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=calls,
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(api, metrics), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(api, metrics), self._server)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> int:
        """Listens (port 0 picks a free one) and returns the port."""
        try:
            self.port = self._server.add_insecure_port(self.address)
        except RuntimeError:
            raise OSError(f"cannot listen on {self.address}: {_bind_error(self.host, self.port)}") from None
        self._server.start()
        return self.port

    def stop(self, grace: float) -> None:
        """Refuses new calls and lets calls in flight finish for up to `grace` seconds."""
        self._server.stop(grace).wait()
