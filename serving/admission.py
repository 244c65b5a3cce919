"""Who still waits for an answer, and how many requests may run the model at once.

A client whose deadline has passed or who hung up gets no model work, and a
flood of requests waits in a bounded line or is turned away with
RESOURCE_EXHAUSTED, instead of each running at once and growing memory.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from serving.request_error import RequestError

# How often a request waiting for the model looks whether its client has gone.
_WAIT_STEP_SECONDS = 0.05


def _never() -> bool:
    return False


@dataclasses.dataclass(frozen=True)
class Caller:
    """What the transport knows of the client: when it stops waiting (time.monotonic()), and whether it left."""

    deadline: float | None = None
    gone: Callable[[], bool] = _never

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check(self) -> None:
        """Refuses further work for a client that will not read the answer."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, "the client's deadline passed; the request was stopped")
        if self.gone():
            raise RequestError(grpc.StatusCode.CANCELLED, "the client cancelled the request; it was stopped")


class ModelSlots:
    """At most `running` requests run the model at once and at most `waiting` more wait in line."""

    def __init__(self, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._busy = 0
        self._queued = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self, caller: Caller) -> Iterator[None]:
        """Holds one slot while the model runs; waits for it as long as the caller waits."""
        with self._changed:
            if self._busy >= self.running and self._queued >= self.waiting:
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"server busy: {self._busy} requests running the model and {self._queued} waiting "
                    f"(--max-concurrent {self.running}, --max-queued {self.waiting}); retry later",
                )
            self._queued += 1
            try:
                while self._busy >= self.running:
                    caller.check()
                    remaining = caller.remaining()
                    self._changed.wait(_WAIT_STEP_SECONDS if remaining is None else min(remaining, _WAIT_STEP_SECONDS))
            finally:
                self._queued -= 1
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify()
