"""One model a server serves: its versions, the calls answered on them, its labels, polled and logged on its own.

A server serves one model, or several from a model config file; each is a
ServedModel with its own ModelStore (its base path, version policy and
warmup), its own ModelApi and labels, and its own log lines, so a broken push
of one model never touches another. What the models share (limits and the
slots of --max-concurrent, the batcher, the request log and the metrics) is
handed in as `Shared`.
"""
from __future__ import annotations

import dataclasses
import logging
import time

from serving.admission import ModelSlots
from serving.batching import Batcher
from serving.limits import ServingLimits
from serving.metrics import ServingMetrics
from serving.model_api import ModelApi
from serving.model_config import ModelConfig
from serving.model_store import LoadedModel, ModelStore
from serving.request_log import RequestLog
from serving.warmup import WarmupError, replay

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Shared:
    """What every model of one server shares."""

    limits: ServingLimits
    slots: ModelSlots
    metrics: ServingMetrics
    batcher: Batcher | None
    request_log: RequestLog | None
    warm_up: bool
    load_timeout: float


class ServedModel:
    """One model: versions loaded from `config.base_path` under its policy, answered under `config.name`.

    A new config (the model config file changed) applies its policy at the next
    poll and its labels once every version they name is loaded, so moving
    `canary` to a new version never leaves it pointing at nothing.
    """

    def __init__(self, config: ModelConfig, shared: Shared) -> None:
        if config.base_path is None:
            raise ValueError(f"model '{config.name}' has no base path")
        self.config = config
        self._metrics = shared.metrics
        self.store = ModelStore(
            config.base_path,
            config.policy,
            prepare=self._warm_up if shared.warm_up else None,
            on_load=shared.metrics.load,
            load_timeout=shared.load_timeout,
            name=config.name,
        )
        self.api = ModelApi(
            config.name, self.store, shared.limits, shared.batcher, config.labels, shared.request_log, shared.slots
        )
        self._pending: ModelConfig | None = None
        self._served: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    def reconfigure(self, config: ModelConfig) -> None:
        """Takes up the model's new entry: its policy from the next poll, its labels once their versions are loaded."""
        if config == self.config:
            return
        self.config = config
        self.store.policy = config.policy
        self._pending = config
        log.info(
            "model '%s': version policy %s, labels %s", self.name, config.policy.describe(), config.describe_labels()
        )

    def poll(self, address: str) -> None:
        """Loads and unloads versions, moves pending labels, and says so when what it serves changes."""
        try:
            versions = self.store.poll()
            self._apply_pending_labels(versions)
        except Exception:  # the poller must outlive any surprise on disk, and so must the other models
            log.exception("model '%s': polling %s failed", self.name, self.store.base_dir)
            return
        if versions == self._served:
            return
        self._served = versions
        if versions:
            log.info(
                "serving model '%s' version %d on %s (loaded versions: %s)",
                self.name, versions[0], address, ", ".join(map(str, versions)),
            )
        else:
            log.warning("model '%s' has no loadable version under %s", self.name, self.store.base_dir)

    def close(self) -> None:
        """Removes the private copies of its versions; call once nothing is served from them any more."""
        self.store.close()

    def _apply_pending_labels(self, loaded: tuple[int, ...]) -> None:
        pending = self._pending
        if pending is None or not set(pending.labels.values()) <= set(loaded):
            return
        self.api.labels = pending.labels
        self._pending = None
        log.info("model '%s': version labels now %s", self.name, pending.describe_labels())

    def _warm_up(self, model: LoadedModel) -> None:
        started = time.monotonic()
        try:
            records = replay(model, self.api.warm_up)
        except WarmupError as error:
            self._metrics.warmup(model.path, str(error).splitlines()[0], time.monotonic() - started)
            raise
        seconds = time.monotonic() - started
        self._metrics.warmup(model.path, None, seconds)
        if records:
            log.info(
                "model '%s': warmed up version %d with %d requests in %.1f s",
                self.name, model.version, records, seconds,
            )
