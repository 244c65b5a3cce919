"""Requests to the model they name: TF Serving's calls for several models, each answered by its own ModelApi.

TF Serving serves every model of its model config file by name, and a request
picks one with `model_spec.name` (over REST, the name in the path). The router
holds one ModelApi per served model and hands each call to the one named; a
name it does not serve is NOT_FOUND in TF Serving's words, with the names it
does serve. The set of models is replaced whole (`serve`), so a model added or
removed while serving is seen by the next request and never half.
"""
from __future__ import annotations

import types
from collections.abc import Mapping

from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from serving.admission import Caller
from serving.limits import ServingLimits
from serving.model_api import ModelApi, Signature, check_model_spec, unknown_model
from serving.model_store import LoadedModel, ModelStore


class ModelRouter:
    """TF Serving's PredictionService and ModelService calls, each answered by the ModelApi of the model it names."""

    def __init__(self, limits: ServingLimits) -> None:
        self.limits = limits
        self._apis: Mapping[str, ModelApi] = types.MappingProxyType({})

    @property
    def names(self) -> tuple[str, ...]:
        """The served models' names, sorted."""
        return tuple(sorted(self._apis))

    def apis(self) -> Mapping[str, ModelApi]:
        """The served models' ModelApis by name, as they are now."""
        return self._apis

    def stores(self) -> Mapping[str, ModelStore]:
        """The served models' versions by name, as the metrics read them."""
        return {name: api.store for name, api in self._apis.items()}

    def serve(self, apis: Mapping[str, ModelApi]) -> None:
        """From now on, these models and no others; one assignment, so requests see the old set or the new one."""
        self._apis = types.MappingProxyType(dict(apis))

    def _api(self, spec: model_pb2.ModelSpec, status: bool = False) -> ModelApi:
        apis = self._apis
        if spec.name not in apis:
            raise unknown_model(spec, tuple(apis), status)
        return apis[spec.name]

    def predict_signature(self, spec: model_pb2.ModelSpec) -> tuple[LoadedModel, str, Signature]:
        return self._api(spec).predict_signature(spec)

    def predict(self, request: predict_pb2.PredictRequest, caller: Caller = Caller()) -> predict_pb2.PredictResponse:
        return self._api(request.model_spec).predict(request, caller)

    def classify(
        self, request: classification_pb2.ClassificationRequest, caller: Caller = Caller()
    ) -> classification_pb2.ClassificationResponse:
        return self._api(request.model_spec).classify(request, caller)

    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        check_model_spec(request)
        return self._api(request.model_spec).metadata(request)

    def status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        check_model_spec(request)
        return self._api(request.model_spec, status=True).status(request)
