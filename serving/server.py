"""`leather serve`'s process: models whose versions appear under directories, polled like TF Serving, served over gRPC.

Production runs the official TF Serving container; this server exists so local
runs and tests can use the very same client and protos. The pieces stand apart:
per model (serving.served_model) a `ModelStore` loads, warms up and swaps
versions and a `ModelApi` answers requests (through a `Batcher` when batching
is on); a `ModelRouter` hands each request to the model it names, `GrpcHost`
carries them over gRPC (and `serving.rest.RestFront` over HTTP, on the same
`api` and `metrics`), and `RequestLog` keeps a sample of the requests
answered. This module ties them together and keeps polling for new versions
and for changes to the model config file; the poller outlives any surprise on
disk.
"""
from __future__ import annotations

import logging
import pathlib
import threading
from collections.abc import Mapping

from models.serving_contract import DEFAULT_MODEL_NAME
from serving.admission import ModelSlots
from serving.batching import Batcher
from serving.batching_parameters import BatchingParameters
from serving.grpc_host import GrpcHost
from serving.limits import ServingLimits
from serving.metrics import ServingMetrics
from serving.model_config import ModelConfig, read_model_configs, served_models
from serving.model_router import ModelRouter
from serving.model_set import ModelSet
from serving.model_store import ModelStore, VersionPolicy
from serving.request_log import RequestLog
from serving.request_log_settings import RequestLogSettings
from serving.served_model import ServedModel, Shared
from serving.version_staging import DEFAULT_LOAD_TIMEOUT

log = logging.getLogger(__name__)


class ServingServer:
    """A gRPC server for the models of a model config file, or for one whose versions appear under `model_dir`.

    With a `model_config_file` (TF Serving's format, serving.model_config)
    every entry is served under its name from its base_path, with its version
    policy and labels, and the file is read again whenever it changes: models
    are added, removed and reconfigured as it says (serving.model_set); a file
    that cannot be taken up is logged and the previous one kept. Given
    `model_dir` or `model_name` as well, the file must hold that one model, and
    `model_dir` replaces its base_path. Without a file the server serves
    `model_name` (default "leather") from `model_dir` under the latest policy
    of `num_versions`. With `request_log`, a sample of the successful Predict
    and Classify calls of all models is written there as TF Serving's
    PredictionLogs (serving.request_log). A version whose files take longer
    than `load_timeout` seconds to read has failed to load
    (serving.version_staging).
    """

    def __init__(
        self,
        model_dir: pathlib.Path | None,
        model_name: str | None = None,
        *,
        host: str = "0.0.0.0",
        port: int = 8500,
        poll_seconds: float = 2.0,
        num_versions: int = 1,
        limits: ServingLimits = ServingLimits(),
        batching: BatchingParameters | None = None,
        model_config_file: pathlib.Path | None = None,
        warm_up: bool = True,
        request_log: RequestLogSettings | None = None,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
    ) -> None:
        self._model_dir, self._model_name = model_dir, model_name
        self._config_file = model_config_file
        self._config_stamp: int | None = None
        self._config_problem: str | None = None
        if model_config_file is not None:
            self._config_stamp = model_config_file.stat().st_mtime_ns
            configs = self._read_config()
        elif model_dir is None:
            raise ValueError("a server without a model config file needs a model directory")
        else:
            configs = (ModelConfig(model_name or DEFAULT_MODEL_NAME, model_dir, VersionPolicy(latest=num_versions)),)
        self.request_log = None if request_log is None else RequestLog(request_log)
        self.api = ModelRouter(limits)
        self.metrics = ServingMetrics(self.api.stores, None if self.request_log is None else self.request_log.counts)
        self._batcher = None if batching is None else Batcher(batching, self.metrics.batch)
        shared = Shared(
            limits, ModelSlots(limits.max_concurrent, limits.max_queued), self.metrics, self._batcher,
            self.request_log, warm_up, load_timeout,
        )
        self._models = ModelSet(shared, self.api)
        self._models.apply(configs)
        self._grpc = GrpcHost(self.api, host, port, limits, self.metrics)
        self._poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_until_stopped, name="model-poller", daemon=True)

    @property
    def host(self) -> str:
        return self._grpc.host

    @property
    def port(self) -> int:
        return self._grpc.port

    @property
    def address(self) -> str:
        return self._grpc.address

    @property
    def models(self) -> Mapping[str, ServedModel]:
        """The served models by name, as they are now."""
        return self._models.models

    @property
    def store(self) -> ModelStore:
        """The versions of the one model this server serves; for a server of several, see `models`."""
        models = self._models.models
        if len(models) != 1:
            raise AttributeError(f"this server serves {len(models)} models, not one: see `models`")
        return next(iter(models.values())).store

    def start(self) -> int:
        """Listens (port 0 picks a free one), takes a first look at the versions there, starts polling.

        Returns the port. Versions already present load at the next poll, once seen unchanged.
        """
        self._grpc.start()
        for name, model in self.models.items():
            log.info("listening on %s for model '%s' (versions under %s)", self.address, name, model.store.base_dir)
        self._poll()
        self._poller.start()
        return self.port

    def stop(self, grace: float = 5.0) -> None:
        """Stops polling, refuses new calls, lets calls in flight finish for up to `grace` seconds, closes the log.

        A poll still loading a version gets another `grace` seconds; then its version's private copy goes.
        """
        self._stopping.set()
        self._grpc.stop(grace)
        if self._batcher is not None:
            self._batcher.stop()
        if self.request_log is not None:
            self.request_log.close()
        if self._poller.is_alive():
            self._poller.join(grace)  # not for a load stuck reading its files: the poller is a daemon thread
        self._models.close(self.address)

    def __enter__(self) -> ServingServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read_config(self) -> tuple[ModelConfig, ...]:
        """The models of the model config file this server serves, checked."""
        configs = read_model_configs(self._config_file)
        return served_models(configs, self._config_file, self._model_dir, self._model_name)

    def _poll_until_stopped(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            self._poll()

    def _poll(self) -> None:
        try:
            self._reread_config()
        except Exception:  # the poller must outlive any surprise on disk
            log.exception("reading the model config file %s failed", self._config_file)
        self._models.poll(self.address)

    def _reread_config(self) -> None:
        """Takes up a changed model config file; one that cannot be is logged and the previous one kept.

        A refused file is read again at every poll (and logged once) until it
        can be taken up, so an entry added before its base_path exists starts
        once the directory is there.
        """
        if self._config_file is None:
            return
        try:
            stamp = self._config_file.stat().st_mtime_ns
            if stamp == self._config_stamp:
                return
            self._models.apply(self._read_config(), str(self._config_file))
        except (OSError, ValueError) as error:
            if str(error) != self._config_problem:  # once per problem, not once per poll
                self._config_problem = str(error)
                log.warning("%s; keeping the previous model config", error)
            return
        self._config_stamp, self._config_problem = stamp, None
        served = ", ".join(f"'{name}'" for name in self.models)
        log.info("model config %s taken up: serving %s", self._config_file, served)
