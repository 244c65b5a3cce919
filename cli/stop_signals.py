"""Waiting in the main thread for SIGINT or SIGTERM, whichever thread the kernel hands the signal to.

Python runs signal handlers in the main thread, but Linux delivers a signal sent
to the process to any thread that does not block it: in a serving process, often
one of gRPC's or TensorFlow's. That thread only records the signal; a main thread
blocked without a timeout (`Event.wait()`) never wakes to run the handler, and the
process ignores SIGTERM until it is killed. Waking every fraction of a second lets
the main thread notice.
"""
from __future__ import annotations

import signal
import threading

WAKE_SECONDS = 0.25
"""How often the main thread wakes to run handlers for signals another thread received."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Catches SIGINT and SIGTERM inside its `with` block: a stop during start-up is not lost, and
    a second one while stopping does not cut the shutdown short. The previous handlers come back after.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._previous: dict[int, object] = {}
        self.received: int | None = None

    def __enter__(self) -> StopSignals:
        self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def wait(self) -> int:
        """Blocks the main thread until SIGINT or SIGTERM has arrived; returns its number."""
        while not self._stop.wait(WAKE_SECONDS):
            pass
        return self.received

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signum
        self._stop.set()
