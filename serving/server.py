"""`leather serve`'s process: one model's versions under a directory, polled like TF Serving and served over gRPC.

Production runs the official TF Serving container; this server exists so local
runs and tests can use the very same client and protos. The pieces stand apart:
`ModelStore` loads, warms up and swaps versions, `ModelApi` answers requests
(through a `Batcher` when batching is on), `GrpcHost` carries them over gRPC
(and `serving.rest.RestFront` over HTTP, on the same `api` and `metrics`), and
`RequestLog` keeps a sample of the requests answered. This module ties them
together and keeps polling for new versions and for changes to the model config
file; the poller outlives any surprise on disk.
"""
from __future__ import annotations

import logging
import pathlib
import threading
import time

from serving.batching import Batcher
from serving.batching_parameters import BatchingParameters
from serving.grpc_host import GrpcHost
from serving.limits import ServingLimits
from serving.metrics import ServingMetrics
from serving.model_api import ModelApi
from serving.model_config import ModelConfig, read_model_config
from serving.model_store import LoadedModel, ModelStore, VersionPolicy
from serving.request_log import RequestLog
from serving.request_log_settings import RequestLogSettings
from serving.version_staging import DEFAULT_LOAD_TIMEOUT
from serving.warmup import WarmupError, replay

log = logging.getLogger(__name__)


class ServingServer:
    """A gRPC server for one model whose versions appear under `model_dir`, polled like TF Serving.

    With a `model_config_file` (TF Serving's format, serving.model_config) its
    version policy and labels apply, and the file is read again whenever it
    changes: a new policy at once, new labels once every version they name is
    loaded, so moving `canary` to a new version never leaves it pointing at
    nothing. `num_versions` is the latest policy's count without such a file.
    With `request_log`, a sample of the successful Predict and Classify calls is
    written there as TF Serving's PredictionLogs (serving.request_log).
    A version whose files take longer than `load_timeout` seconds to read has
    failed to load (serving.version_staging).
    """

    def __init__(
        self,
        model_dir: pathlib.Path,
        model_name: str,
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
        self.model_name = model_name
        self._config_file = model_config_file
        self._config_stamp: int | None = None
        self._config_problem: str | None = None
        self._pending: ModelConfig | None = None
        config = self._read_config() if model_config_file is not None else None
        self.store = ModelStore(
            model_dir,
            config.policy if config else VersionPolicy(latest=num_versions),
            prepare=self._warm_up if warm_up else None,
            on_load=self._loaded,
            load_timeout=load_timeout,
        )
        self.request_log = None if request_log is None else RequestLog(request_log)
        self.metrics = ServingMetrics(
            model_name, self.store.loaded_versions, self.store.signature_names,
            None if self.request_log is None else self.request_log.counts,
        )
        self._batcher = None if batching is None else Batcher(batching, self.metrics.batch)
        self.api = ModelApi(
            model_name, self.store, limits, self._batcher, config.labels if config else {}, self.request_log
        )
        self._grpc = GrpcHost(self.api, host, port, limits, self.metrics)
        self._poll_seconds = poll_seconds
        self._served: tuple[int, ...] = ()
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

    def start(self) -> int:
        """Listens (port 0 picks a free one), takes a first look at the versions there, starts polling.

        Returns the port. Versions already present load at the next poll, once seen unchanged.
        """
        self._grpc.start()
        log.info("listening on %s for model '%s' (versions under %s)", self.address, self.model_name, self.store.base_dir)
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
        self.store.close()
        log.info("stopped serving model '%s' on %s", self.model_name, self.address)

    def __enter__(self) -> ServingServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read_config(self) -> ModelConfig:
        """The model config file, checked against the model served; records which state of the file it read."""
        self._config_stamp = self._config_file.stat().st_mtime_ns
        config = read_model_config(self._config_file)
        if config.name != self.model_name:
            raise ValueError(
                f"model config file {self._config_file} configures model '{config.name}', "
                f"but this server serves '{self.model_name}'"
            )
        return config

    def _warm_up(self, model: LoadedModel) -> None:
        started = time.monotonic()
        try:
            records = replay(model, self.api.warm_up)
        except WarmupError as error:
            self.metrics.warmup(model.path, str(error).splitlines()[0], time.monotonic() - started)
            raise
        seconds = time.monotonic() - started
        self.metrics.warmup(model.path, None, seconds)
        if records:
            log.info("warmed up version %d with %d requests in %.1f s", model.version, records, seconds)

    def _loaded(self, path: pathlib.Path, error: str | None, seconds: float) -> None:
        self.metrics.load(path, error, seconds)

    def _poll_until_stopped(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            self._poll()

    def _poll(self) -> None:
        try:
            self._reread_config()
            versions = self.store.poll()
            self._apply_pending_labels(versions)
        except Exception:  # the poller must outlive any surprise on disk
            log.exception("polling %s failed", self.store.base_dir)
            return
        if versions != self._served:
            self._served = versions
            if versions:
                log.info(
                    "serving model '%s' version %d on %s (loaded versions: %s)",
                    self.model_name, versions[0], self.address, ", ".join(map(str, versions)),
                )
            else:
                log.warning("model '%s' has no loadable version under %s", self.model_name, self.store.base_dir)

    def _reread_config(self) -> None:
        """Takes up a changed model config file; a broken one is logged and the previous one kept."""
        if self._config_file is None:
            return
        try:
            if self._config_file.stat().st_mtime_ns == self._config_stamp:
                return
            config = self._read_config()
        except (OSError, ValueError) as error:
            if str(error) != self._config_problem:  # once per problem, not once per poll
                self._config_problem = str(error)
                log.warning("%s; keeping the previous model config", error)
            return
        self._config_problem = None
        self.store.policy = config.policy
        self._pending = config
        log.info(
            "model config %s changed: version policy %s, labels %s",
            self._config_file, config.policy.describe(), config.describe_labels(),
        )

    def _apply_pending_labels(self, loaded: tuple[int, ...]) -> None:
        pending = self._pending
        if pending is None or not set(pending.labels.values()) <= set(loaded):
            return
        self.api.labels = pending.labels
        self._pending = None
        log.info("version labels now %s", pending.describe_labels())
