"""The Trainer's own progress: a line per epoch (loss, validation ROC-AUC, time left) instead of Keras' lines.

Keras' per-epoch lines belong to `--verbose`. The Trainer runs inside TFX, and
anything passed through its custom_config is part of the Trainer's cache key: a
run with `--verbose` would retrain a model a quiet run had cached. The CLI sets
`VERBOSE_ENV` instead (cli/progress.py), which the Trainer reads; the Kubeflow
image sets it to 1 (kubeflow/Dockerfile), as a pod's log is all a run leaves. TensorFlow is
imported only where the Keras callback is made, so the CLI can read this module
before TensorFlow loads.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import tensorflow as tf

VERBOSE_ENV = "LEATHER_VERBOSE"
"""'1' when the command runs with --verbose."""
FROZEN_HEAD_INTERVAL = 10.0
"""Seconds between lines for the frozen-feature head, whose hundreds of epochs take a fraction of a second each."""


def keras_verbosity() -> int:
    """Keras' own epoch lines (2: one per epoch) with --verbose, none without."""
    return 2 if os.environ.get(VERBOSE_ENV) == "1" else 0


class EpochProgress:
    """One line per finished epoch, at most one per `interval` seconds, and always the last epoch's; the time left
    is for all `epochs`, so early stopping may end training sooner."""

    def __init__(self, epochs: int, interval: float = 0.0, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.epochs, self.interval, self.out, self.clock = epochs, interval, out, clock
        self.start()

    def start(self) -> None:
        """Time left counts from here: the first epoch, not the callback's making."""
        self._started = self.clock()
        self._first_end: float | None = None
        self._last_line = -math.inf
        self._pending: str | None = None

    def epoch_end(self, epoch: int, logs: dict[str, float] | None) -> None:
        """Keras' on_epoch_end: `epoch` counts from 0, `logs` holds loss and val_auc."""
        now = self.clock()
        logs = logs or {}
        done = epoch + 1
        left = self._seconds_per_epoch(now, done) * (self.epochs - done)
        line = (f"trainer: epoch {done}/{self.epochs}, loss {logs.get('loss', math.nan):.4f}, "
                f"validation ROC-AUC {logs.get('val_auc', math.nan):.4f}, "
                + ("done" if done >= self.epochs else f"about {left:.0f} s left"))
        if done >= self.epochs or now - self._last_line >= self.interval:
            self._print(line)
            self._last_line, self._pending = now, None
        else:
            self._pending = line

    def _seconds_per_epoch(self, now: float, done: int) -> float:
        """The first epoch's time until a second ends, then the mean of those after it: the first one also traces
        the graph and would make every estimate several times too long."""
        if self._first_end is None:
            self._first_end = now
            return now - self._started
        return (now - self._first_end) / (done - 1)

    def finish(self) -> None:
        """The last epoch's line when early stopping ended training between two printed lines."""
        if self._pending is not None:
            self._print(self._pending.rsplit(", ", 1)[0] + ", stopped early")
            self._pending = None

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)


def progress_callback(epochs: int, interval: float = 0.0) -> tf.keras.callbacks.Callback:
    """A Keras callback printing the Trainer's own epoch lines."""
    import tensorflow as tf

    progress = EpochProgress(epochs, interval)
    return tf.keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: progress.start(),
        on_epoch_end=progress.epoch_end,
        on_train_end=lambda logs: progress.finish(),
    )
