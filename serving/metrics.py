"""`leather serve`'s Prometheus metrics, under TF Serving's names where it has them, so one dashboard serves both.

TF Serving exports its metrics at `/monitoring/prometheus/metrics` on the REST
port, named after its internal ones with `/` turned into `:`. These keep its
names, labels and units (microseconds, its exponential buckets):

* `:tensorflow:serving:request_count{model_name,status}`: Predict, Classify and
  the other inference calls, by status code name (`OK`, `INVALID_ARGUMENT`, ...);
* `:tensorflow:serving:request_latency{model_name,API,entrypoint}`: a histogram
  of successful calls, API `Predict`/`Classify`, entrypoint `GRPC`/`REST`;
* `:tensorflow:serving:model_warmup_latency{model_path,status}`,
  `:tensorflow:cc:saved_model:load_attempt_count{model_path,status}` (`success`/`fail`)
  and `:tensorflow:cc:saved_model:load_latency{model_path}`.

TF Serving's counters carry no `_total` suffix, which prometheus_client adds to
every counter, so those three are exported untyped under TF Serving's exact
sample names. Where TF Serving has nothing alike, `leather_serving_*` adds
requests by signature, the batch sizes of server-side batching, the loaded
versions and what became of the requests sampled for the request log
(docs/serving.md, Metrics).
"""
from __future__ import annotations

import collections
import pathlib
import threading
from collections.abc import Callable, Iterator, Mapping

import prometheus_client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from serving.model_store import ModelStore

METRICS_PATH = "/monitoring/prometheus/metrics"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
INFERENCE_APIS = ("Predict", "Classify", "Regress", "MultiInference")
"""The calls TF Serving counts in request_count; status and metadata calls are not counted."""
# TF Serving's latency buckets: Buckets::Exponential(10, 1.8, 33), in microseconds (10 us to about 20 minutes).
MICROSECOND_BUCKETS = tuple(10 * 1.8**power for power in range(33))
BATCH_SIZE_BUCKETS = tuple(2**power for power in range(11))
UNKNOWN = "unknown"


class _ExactCounters(Collector):
    """Counters exported under TF Serving's names, which have no `_total` suffix."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._counts: collections.Counter[tuple[str, ...]] = collections.Counter()
        self._lock = threading.Lock()

    def increment(self, *values: str, amount: float = 1) -> None:
        with self._lock:
            self._counts[values] += amount

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self._name, self._documentation, "unknown")
        with self._lock:
            for values, count in sorted(self._counts.items()):
                metric.add_sample(self._name, dict(zip(self._labels, values)), count)
        yield metric


class _LoadedVersions(Collector):
    """Read from the served models when scraped, so a model added or removed while serving shows at once."""

    def __init__(self, models: Callable[[], Mapping[str, ModelStore]]) -> None:
        self._models = models

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "leather_serving_loaded_version", "1 for each model version loaded and serving", labels=["model_name", "version"]
        )
        for name, store in sorted(self._models().items()):
            for version in store.loaded_versions():
                gauge.add_metric([name, str(version)], 1)
        yield gauge


class _RequestLogRecords(Collector):
    """Read from the request log when scraped, so the log's writer thread needs no metrics of its own."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "leather_serving_request_log_records",
            "Requests sampled for the request log: written (in a complete file), dropped (queue full), "
            "failed (write error)",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._counts().items()):
            counter.add_metric([outcome], count)
        yield counter


class ServingMetrics:
    """The metrics of one `leather serve` process, for all the models it serves, in a registry of their own.

    `models` gives the served models by name, as they are now (models may come
    and go with the model config file). Label values a client chooses (model
    and signature names) are kept only when they name a served model and a
    signature loaded for it, and are "unknown" otherwise, so no client can make
    the metrics grow without end.
    """

    def __init__(
        self,
        models: Callable[[], Mapping[str, ModelStore]],
        request_log_counts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._models = models
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self._request_count = _ExactCounters(
            ":tensorflow:serving:request_count", "The total number of requests.", ("model_name", "status")
        )
        self._load_attempts = _ExactCounters(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ("model_path", "status"),
        )
        self._load_latency = _ExactCounters(
            ":tensorflow:cc:saved_model:load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ("model_path",),
        )
        for collector in (
            self._request_count, self._load_attempts, self._load_latency, _LoadedVersions(models)
        ):
            self.registry.register(collector)
        if request_log_counts is not None:
            self.registry.register(_RequestLogRecords(request_log_counts))
        self._latency = prometheus_client.Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=MICROSECOND_BUCKETS, registry=self.registry,
        )
        self._warmup_latency = prometheus_client.Histogram(
            ":tensorflow:serving:model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ["model_path", "status"], buckets=MICROSECOND_BUCKETS, registry=self.registry,
        )
        self._requests = prometheus_client.Counter(
            "leather_serving_requests", "Inference requests by API, signature, entrypoint and status code",
            ["model_name", "API", "signature", "entrypoint", "status"], registry=self.registry,
        )
        self._batch_size = prometheus_client.Histogram(
            "leather_serving_batch_size", "Elements per server-side batch run by the model, before padding",
            buckets=BATCH_SIZE_BUCKETS, registry=self.registry,
        )
        self._padding = prometheus_client.Counter(
            "leather_serving_batch_padding_elements", "Elements added to batches to reach an allowed batch size",
            registry=self.registry,
        )

    def request(
        self, model_name: str, api: str, signature: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        """One inference request answered with gRPC status name `status` after `seconds`."""
        store = self._models().get(model_name)
        model_name = model_name if store is not None else UNKNOWN
        signature = signature if store is not None and signature in store.signature_names() else UNKNOWN
        self._request_count.increment(model_name, status)
        self._requests.labels(model_name, api, signature, entrypoint, status).inc()
        if status == "OK":
            self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def batch(self, size: int, padded: int) -> None:
        """One server-side batch; batches are shared by all models (serving.batching), so these carry no model."""
        self._batch_size.observe(size)
        self._padding.inc(padded - size)

    def load(self, path: pathlib.Path, error: str | None, seconds: float) -> None:
        """One attempt to load (and warm up) a version."""
        self._load_attempts.increment(str(path), "fail" if error else "success")
        if error is None:
            self._load_latency.increment(str(path), amount=round(seconds * 1e6))

    def warmup(self, path: pathlib.Path, error: str | None, seconds: float) -> None:
        self._warmup_latency.labels(str(path), "OK" if error is None else error).observe(seconds * 1e6)

    def page(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return prometheus_client.generate_latest(self.registry)
