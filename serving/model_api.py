"""TF Serving's request handling for one served model: request protos in, response protos out.

It knows nothing of transports: the gRPC host (`serving.grpc_host`) and the REST
front (`serving.rest`) both call it, so both answer alike. It follows TF Serving
where clients can tell the difference: response model_spec, version labels,
status codes and their message prefixes ("Servable not found for request: ...",
"Serving signature key ... not found."). Where it departs from TF Serving it
says so in docs/serving.md: UNAVAILABLE while nothing is loaded, and Classify
on predict-style tf.Example signatures too. Every refusal is a RequestError.

Requests that run the model are bounded by the server's limits: elements and
declared pixels per request (serving.request_budget, checked before any work),
requests running at once and waiting, and the caller's own deadline, before the
model and between chunks of a batch. With server-side batching, requests small enough share model calls instead
(`serving.batching`). Warmup records run through the same code on the version
being loaded, before it is published. Successful Predict and Classify calls
from clients (not warmup) go to the request log, if there is one.
"""
import types
from collections.abc import Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import Message
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    status_pb2,
)

from serving.admission import Caller, ModelSlots
from serving.batching import Batcher
from serving.classification import classifier
from serving.execution import run_signature
from serving.limits import ServingLimits
from serving.model_store import LoadedModel, ModelStore, NoVersionLoaded, VersionNotLoaded
from serving.request_budget import check_classify, check_predict
from serving.request_error import RequestError
from serving.request_log import RequestLog
from serving.tensors import check_batch_size, input_tensors, selected_outputs, serialized_examples

DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
SIGNATURE_DEF_FIELD = "signature_def"
Signature = tf.types.experimental.ConcreteFunction


def serves(names: Sequence[str]) -> str:
    """What the server serves, for the message of a request naming another model."""
    listed = ", ".join(f"'{name}'" for name in sorted(names))
    return f"this server serves model {listed}" if len(names) == 1 else f"this server serves models {listed}"


def wanted(spec: model_pb2.ModelSpec, version: int | None = None) -> str:
    """The servable a request asks for, in TF Serving's words: Latest(name) or Specific(name, version)."""
    if version is None and spec.WhichOneof("version_choice") == "version":
        version = spec.version.value
    if version is not None:
        return f"Specific({spec.name}, {version})"
    if spec.WhichOneof("version_choice") == "version_label":
        return f"Specific({spec.name}, {spec.version_label})"
    return f"Latest({spec.name})"


def unknown_model(spec: model_pb2.ModelSpec, names: Sequence[str], status: bool = False) -> RequestError:
    """NOT_FOUND for a model this server does not serve, as TF Serving words it, with the names it does serve."""
    if status:
        return RequestError(
            grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}; {serves(names)}"
        )
    return RequestError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted(spec)}; {serves(names)}")


def check_model_spec(request: Message) -> None:
    """Metadata and status requests must name a model (Predict and Classify with none ask for model '')."""
    if not request.HasField("model_spec"):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")


def _signature(model: LoadedModel, name: str, missing: grpc.StatusCode) -> Signature:
    try:
        return model.signatures[name]
    except KeyError:
        raise RequestError(
            missing,
            f'Serving signature key "{name}" not found. '
            f"Version {model.version} has signatures {sorted(model.signatures)}",
        ) from None


class ModelApi:
    """TF Serving's PredictionService and ModelService calls for one served model, on protos.

    `labels` maps version labels to version numbers (a model config file's
    version_labels); it is replaced whole when that file changes. The models of
    one server share `slots` (--max-concurrent bounds the model work of them all),
    the batcher and the request log; a server of several models routes each
    request to its model's ModelApi (serving.model_router).
    """

    def __init__(
        self,
        name: str,
        store: ModelStore,
        limits: ServingLimits,
        batcher: Batcher | None = None,
        labels: Mapping[str, int] = types.MappingProxyType({}),
        request_log: RequestLog | None = None,
        slots: ModelSlots | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self.limits = limits
        self.batcher = batcher
        self.labels = labels
        self.request_log = request_log
        self._slots = slots or ModelSlots(limits.max_concurrent, limits.max_queued)

    @property
    def names(self) -> tuple[str, ...]:
        """The names this answers to: its model's."""
        return (self.name,)

    def resolve(self, spec: model_pb2.ModelSpec) -> LoadedModel:
        choice = spec.WhichOneof("version_choice")
        version = spec.version.value if choice == "version" else None
        if choice == "version_label":
            version = self._labelled_version(spec.version_label)
        if spec.name != self.name:
            raise unknown_model(spec, self.names)
        try:
            return self.store.get(version)
        except NoVersionLoaded as error:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, f"model '{self.name}': {error}; retry later") from error
        except VersionNotLoaded as error:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {wanted(spec, version)}; loaded versions: {list(error.loaded)}",
            ) from error

    def _labelled_version(self, label: str) -> int:
        labels = self.labels
        if label not in labels:
            known = (
                f"defined labels: {', '.join(sorted(labels))}" if labels else f"model '{self.name}' defines no labels"
            )
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}; {known}"
            )
        return labels[label]

    def model_spec(self, model: LoadedModel, signature_name: str | None = None) -> model_pb2.ModelSpec:
        """The ModelSpec TF Serving puts in responses: name, the version that answered, the signature used."""
        spec = model_pb2.ModelSpec(name=self.name, signature_name=signature_name or "")
        spec.version.value = model.version
        return spec

    def predict_signature(self, spec: model_pb2.ModelSpec) -> tuple[LoadedModel, str, Signature]:
        """The version, signature name and signature a Predict request with this ModelSpec runs."""
        model = self.resolve(spec)
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        return model, signature_name, _signature(model, signature_name, grpc.StatusCode.FAILED_PRECONDITION)

    def predict(self, request: predict_pb2.PredictRequest, caller: Caller = Caller()) -> predict_pb2.PredictResponse:
        caller.check()
        check_predict(request, self.limits)
        response = self._predict(self.resolve(request.model_spec), request, caller, warm_up=False)
        if self.request_log is not None:
            self.request_log.predict(request, response)
        return response

    def classify(
        self, request: classification_pb2.ClassificationRequest, caller: Caller = Caller()
    ) -> classification_pb2.ClassificationResponse:
        """Classes and scores per example from a classification signature (serving.classification)."""
        caller.check()
        check_classify(request, self.limits)
        response = self._classify(self.resolve(request.model_spec), request, caller, warm_up=False)
        if self.request_log is not None:
            self.request_log.classify(request, response)
        return response

    def warm_up(self, model: LoadedModel, record: prediction_log_pb2.PredictionLog) -> None:
        """Answers one warmup record on `model` (not yet published), outside the limits and batches clients share."""
        kind = record.WhichOneof("log_type")
        if kind == "predict_log":
            self._predict(model, record.predict_log.request, Caller(), warm_up=True)
        elif kind == "classify_log":
            self._classify(model, record.classify_log.request, Caller(), warm_up=True)
        elif kind is not None:
            raise RequestError(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported log_type for warmup: {kind}")

    def _predict(
        self, model: LoadedModel, request: predict_pb2.PredictRequest, caller: Caller, warm_up: bool
    ) -> predict_pb2.PredictResponse:
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        function = _signature(model, signature_name, grpc.StatusCode.FAILED_PRECONDITION)
        tensors = input_tensors(function, signature_name, request.inputs, self._element_cap(warm_up))
        aliases = selected_outputs(function, request.output_filter)
        outputs = self._run(model, signature_name, function, tensors, caller, warm_up)
        response = predict_pb2.PredictResponse(model_spec=self.model_spec(model, signature_name))
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias]))
        return response

    def _classify(
        self, model: LoadedModel, request: classification_pb2.ClassificationRequest, caller: Caller, warm_up: bool
    ) -> classification_pb2.ClassificationResponse:
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        function = _signature(model, signature_name, grpc.StatusCode.INVALID_ARGUMENT)
        how = classifier(model, signature_name, function)
        examples = serialized_examples(request.input)
        if not examples:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "ClassificationRequest::input is empty.")
        check_batch_size("ClassificationRequest::input", len(examples), self._element_cap(warm_up))
        tensors = {how.input_alias: tf.constant(examples, dtype=tf.string)}
        outputs = self._run(model, signature_name, function, tensors, caller, warm_up)
        return classification_pb2.ClassificationResponse(
            model_spec=self.model_spec(model, signature_name), result=how.result(outputs, len(examples))
        )

    def _element_cap(self, warm_up: bool) -> int | None:
        """--max-batch-size bounds what clients send; warmup records (at most 1,000, written at export for
        batches of up to 32) come from the model itself, so they are replayed whatever the cap."""
        return None if warm_up else self.limits.max_batch_size

    def _run(
        self,
        model: LoadedModel,
        signature_name: str,
        function: Signature,
        tensors: dict[str, tf.Tensor],
        caller: Caller,
        warm_up: bool,
    ) -> dict[str, np.ndarray]:
        if warm_up:
            return run_signature(model, signature_name, function, tensors, caller)
        if self.batcher is not None and self.batcher.takes(tensors):
            return self.batcher.run(model, signature_name, function, tensors, caller)
        with self._slots.slot(caller):
            return run_signature(model, signature_name, function, tensors, caller)

    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        check_model_spec(request)
        if not request.metadata_field:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"GetModelMetadataRequest must specify at least one metadata_field ('{SIGNATURE_DEF_FIELD}')",
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Metadata field {field} is not supported; only '{SIGNATURE_DEF_FIELD}' is",
                )
        model = self.resolve(request.model_spec)
        signature_defs = get_model_metadata_pb2.SignatureDefMap(signature_def=dict(model.signature_defs))
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=self.model_spec(model))
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response

    def status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """Every version seen: AVAILABLE while loaded, END once unloaded or when it failed to load."""
        check_model_spec(request)
        spec = request.model_spec
        if spec.name != self.name:
            raise unknown_model(spec, self.names, status=True)
        statuses = self.store.statuses()
        choice = spec.WhichOneof("version_choice")
        if choice is not None:
            version = spec.version.value if choice == "version" else self._labelled_version(spec.version_label)
            statuses = [status for status in statuses if status.version == version]
            if not statuses:
                raise RequestError(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {spec.name}")
        elif not statuses:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE,
                f"model '{spec.name}': no version loaded yet from {self.store.base_dir}; retry later",
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            response.model_version_status.add(
                version=status.version,
                state=(
                    get_model_status_pb2.ModelVersionStatus.AVAILABLE
                    if status.available
                    else get_model_status_pb2.ModelVersionStatus.END
                ),
                status=status_pb2.StatusProto(
                    error_code=error_codes_pb2.UNKNOWN if status.error else error_codes_pb2.OK,
                    error_message=status.error or "",
                ),
            )
        return response
