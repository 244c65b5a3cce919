"""A sample of the served requests as TF Serving's request log writes it: `PredictionLog` TFRecords.

TF Serving's request logger samples each request and hands a `PredictionLog`
(request, response and `log_metadata`: model spec, sampling config, time) to a
log collector; these files hold the same records, so whatever reads TF Serving's
logs reads them (`tf.data.TFRecordDataset` and `PredictionLog.FromString`). Logging must never slow a request down: the request thread only decides
whether to sample and puts the request on a bounded queue, and a writer thread
builds and writes the records (`serving.request_log_files`). When the queue is
full the record is dropped and counted instead of waited for. The files are
written by one server: two servers sharing a directory would number alike.
"""
from __future__ import annotations

import dataclasses
import fractions
import logging
import math
import queue
import random
import threading
import time

from google.protobuf.message import Message
from tensorflow_serving.apis import logging_pb2, prediction_log_pb2
from tensorflow_serving.config import logging_config_pb2

from serving.request_log_files import LogFiles
from serving.request_log_settings import RequestLogSettings

log = logging.getLogger(__name__)

SAMPLE_BLOCK = 100
"""Requests in one sampling block (see Sampler)."""
CLOSE_SECONDS = 30.0
"""How long stopping the server waits for the queued requests to be written."""


class Sampler:
    """Which requests are logged: of each block of SAMPLE_BLOCK requests, exactly as many as the rate asks for
    (a fraction carried over to the next block), at positions drawn at random within the block.

    So the first N requests log exactly floor(N * rate) of them whenever N is a
    multiple of the block, unlike TF Serving's coin toss per request, yet without
    the aliasing of logging every k-th request: a station whose two cameras take
    turns has both cameras sampled at rate 0.5, not one of them. Thread-safe.
    """

    def __init__(self, rate: float, seed: int | None = None) -> None:
        self._share = fractions.Fraction(rate).limit_denominator(1_000_000) * SAMPLE_BLOCK
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._blocks = 0
        self._position = 0
        self._chosen: frozenset[int] = frozenset()

    def __call__(self) -> bool:
        with self._lock:
            if self._position == 0:
                quota = math.floor((self._blocks + 1) * self._share) - math.floor(self._blocks * self._share)
                self._chosen = frozenset(self._random.sample(range(SAMPLE_BLOCK), quota))
                self._blocks += 1
            chosen = self._position in self._chosen
            self._position = (self._position + 1) % SAMPLE_BLOCK
            return chosen


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A sampled request as queued: the protos are referenced, not copied, so queueing costs the request nothing."""

    kind: str  # the PredictionLog field: predict_log or classify_log
    request: Message
    response: Message
    timestamp_secs: int

    def record(self, sample_rate: float) -> bytes:
        metadata = logging_pb2.LogMetadata(
            model_spec=self.response.model_spec,
            sampling_config=logging_config_pb2.SamplingConfig(sampling_rate=sample_rate),
            timestamp_secs=self.timestamp_secs,
        )
        entry = prediction_log_pb2.PredictionLog(log_metadata=metadata)
        getattr(entry, self.kind).request.CopyFrom(self.request)
        getattr(entry, self.kind).response.CopyFrom(self.response)
        return entry.SerializeToString()


_STOP = object()


class RequestLog:
    """Samples successful Predict and Classify calls into `PredictionLog` files, on a thread of its own.

    `counts()` says what became of the sampled requests: `written` (in a
    complete file), `dropped` (the queue was full) and `failed` (a write error).
    `seed` fixes the sample, for tests.
    """

    def __init__(self, settings: RequestLogSettings, seed: int | None = None) -> None:
        self.settings = settings
        directory = settings.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(f"cannot create the request log directory {directory}: {error.strerror or error}") from error
        self._files = LogFiles(directory, settings.max_file_bytes, settings.max_file_seconds, settings.max_files)
        self._sampled = Sampler(settings.sample_rate, seed)
        self._queue: queue.Queue[_Entry | object] = queue.Queue(settings.max_queued)
        self._lock = threading.Lock()
        self._dropped = 0
        self._closed = False
        self._writer = threading.Thread(target=self._write_until_stopped, name="request-log", daemon=True)
        self._writer.start()

    def predict(self, request: Message, response: Message) -> None:
        self._offer("predict_log", request, response)

    def classify(self, request: Message, response: Message) -> None:
        self._offer("classify_log", request, response)

    def counts(self) -> dict[str, int]:
        with self._lock:
            dropped = self._dropped
        return {"written": self._files.written, "dropped": dropped, "failed": self._files.failed}

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Writes what is queued, completes the open file and ends the writer; later requests are dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass  # the writer is stuck; the warning below says so
        self._writer.join(max(0.0, deadline - time.monotonic()))
        if self._writer.is_alive():
            log.warning("request log: the writer did not finish within %.0f s; requests still queued are lost", timeout)
            return
        counts = self.counts()
        log.info(
            "request log: %d requests written to %s, %d dropped (queue full), %d lost to write errors",
            counts["written"], self.settings.directory, counts["dropped"], counts["failed"],
        )

    def _offer(self, kind: str, request: Message, response: Message) -> None:
        if not self._sampled():
            return
        with self._lock:
            if not self._closed:
                try:
                    self._queue.put_nowait(_Entry(kind, request, response, int(time.time())))
                    return
                except queue.Full:
                    pass
            self._dropped += 1

    def _write_until_stopped(self) -> None:
        while True:
            try:
                entry = self._queue.get(timeout=self._files.seconds_left())
            except queue.Empty:  # the open file is due
                self._files.finish()
                continue
            if entry is _STOP:
                self._files.finish()
                return
            self._files.add(entry.record(self.settings.sample_rate))
