"""Server-side batching: requests for the same model version and signature share model calls, as in TF Serving.

Many stations sending one photo each are answered from shared batches: a
request's elements join the open batch of its version and signature, a batch
runs on one of `num_batch_threads` threads once it is full or its oldest
request has waited `batch_timeout_micros`, and each request gets its own slice
of the outputs back, in order. Beyond TF Serving, a batch also runs as soon as
it holds as many elements as the largest of the last RECENT_BATCHES batches, so
a lone station does not wait out the timeout while a crowd still fills whole
batches. If the batch fails in the model, each request is run again on its own,
so one client's bad photo fails only that client's request.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping

import grpc
import numpy as np
import tensorflow as tf

from serving.admission import Caller
from serving.batching_parameters import BatchingParameters
from serving.execution import MODEL_ERRORS, batch_size, run_signature
from serving.model_store import LoadedModel
from serving.request_error import RequestError

log = logging.getLogger(__name__)

RECENT_BATCHES = 16
"""How many recent batch sizes the early start looks back on."""
_WAIT_STEP_SECONDS = 0.05

# Told of every batch run: its elements and the size it was padded to.
BatchListener = Callable[[int, int], None]


@dataclasses.dataclass(eq=False)
class _Task:
    model: LoadedModel
    signature_name: str
    function: tf.types.experimental.ConcreteFunction
    tensors: Mapping[str, tf.Tensor]
    size: int
    caller: Caller
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] | None = None
    error: RequestError | None = None

    def finish(self, outputs: dict[str, np.ndarray] | None = None, error: RequestError | None = None) -> None:
        self.outputs, self.error = outputs, error
        self.done.set()


@dataclasses.dataclass(eq=False)
class _Batch:
    key: tuple[int, str]
    opened: float
    tasks: list[_Task] = dataclasses.field(default_factory=list)
    size: int = 0


class Batcher:
    """Groups single requests into batches per (loaded version, signature) and runs them on its own threads."""

    def __init__(self, parameters: BatchingParameters, on_batch: BatchListener | None = None) -> None:
        self.parameters = parameters
        self._on_batch = on_batch
        self._timeout = parameters.batch_timeout_micros / 1e6
        self._queues: dict[tuple[int, str], collections.deque[_Batch]] = {}
        self._recent: collections.deque[int] = collections.deque([1], maxlen=RECENT_BATCHES)
        self._changed = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{number}", daemon=True)
            for number in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def takes(self, tensors: Mapping[str, tf.Tensor]) -> bool:
        """Whether a request with these inputs is batched: batch-major and at most max_batch_size elements."""
        size = batch_size(tensors)
        return size is not None and 0 < size <= self.parameters.max_batch_size

    def run(
        self,
        model: LoadedModel,
        signature_name: str,
        function: tf.types.experimental.ConcreteFunction,
        tensors: Mapping[str, tf.Tensor],
        caller: Caller,
    ) -> dict[str, np.ndarray]:
        """The request's outputs, computed in a shared batch; waits as long as the caller does."""
        task = _Task(model, signature_name, function, tensors, int(batch_size(tensors)), caller)
        self._enqueue(task)
        while not task.done.wait(_WAIT_STEP_SECONDS):
            try:
                caller.check()
            except RequestError as error:
                task.finish(error=error)  # a batch that has not started yet skips it
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self) -> None:
        """Finishes the batches already queued, then ends the batch threads."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def _enqueue(self, task: _Task) -> None:
        # By the loaded version itself, not its number: the models of one server share the batcher and its
        # threads, as in TF Serving, and version 1 of one model is not version 1 of another.
        key = (id(task.model), task.signature_name)
        with self._changed:
            queue = self._queues.setdefault(key, collections.deque())
            if not queue or queue[-1].size + task.size > self.parameters.max_batch_size:
                if len(queue) >= self.parameters.max_enqueued_batches:
                    raise RequestError(
                        grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full "
                        f"({self.parameters.max_enqueued_batches} batches, max_enqueued_batches); retry later",
                    )
                queue.append(_Batch(key, time.monotonic()))
            queue[-1].tasks.append(task)
            queue[-1].size += task.size
            self._changed.notify()

    def _ready(self, batch: _Batch, now: float) -> bool:
        target = min(max(self._recent), self.parameters.max_batch_size)
        return batch.size >= target or now - batch.opened >= self._timeout

    def _next_batch(self) -> _Batch | None:
        """The oldest batch that may run, waiting for one; None once stopping and nothing is queued."""
        with self._changed:
            while True:
                now = time.monotonic()
                heads = sorted((queue[0] for queue in self._queues.values() if queue), key=lambda batch: batch.opened)
                for batch in heads:
                    if self._stopping or self._ready(batch, now):
                        self._queues[batch.key].popleft()
                        if not self._queues[batch.key]:
                            del self._queues[batch.key]
                        self._recent.append(batch.size)
                        return batch
                if self._stopping:
                    return None
                self._changed.wait(max(heads[0].opened + self._timeout - now, 0.0) if heads else None)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._run(batch)
            except Exception as error:  # a bug here must still answer every waiting client
                log.exception("batch of %d elements failed", batch.size)
                for task in batch.tasks:
                    if not task.done.is_set():
                        task.finish(error=RequestError(grpc.StatusCode.INTERNAL, f"batch failed: {error}"))

    def _run(self, batch: _Batch) -> None:
        tasks = [task for task in batch.tasks if not task.done.is_set() and self._still_wanted(task)]
        if not tasks:
            return
        first = tasks[0]
        size = sum(task.size for task in tasks)
        padded = self.parameters.padded_size(size)
        inputs = {}
        for alias in first.tensors:
            joined = tf.concat([task.tensors[alias] for task in tasks], axis=0)
            if padded > size:
                joined = tf.concat([joined, tf.repeat(joined[:1], padded - size, axis=0)], axis=0)
            inputs[alias] = joined
        try:
            outputs = {alias: value.numpy() for alias, value in first.function(**inputs).items()}
        except MODEL_ERRORS:
            outputs = None
        if self._on_batch is not None:
            self._on_batch(size, padded)
        if outputs is None or any(value.ndim == 0 or len(value) != padded for value in outputs.values()):
            for task in tasks:  # each request on its own: its own answer, or its own error
                self._run_alone(task)
            return
        start = 0
        for task in tasks:
            task.finish({alias: value[start : start + task.size] for alias, value in outputs.items()})
            start += task.size

    @staticmethod
    def _still_wanted(task: _Task) -> bool:
        try:
            task.caller.check()
        except RequestError as error:
            task.finish(error=error)
            return False
        return True

    @staticmethod
    def _run_alone(task: _Task) -> None:
        try:
            task.finish(run_signature(task.model, task.signature_name, task.function, task.tensors, task.caller))
        except RequestError as error:
            task.finish(error=error)
