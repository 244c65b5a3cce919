"""Running a function in a fresh process, so a grid's memory does not grow fold after fold.

tf-keras 2.16 keeps native memory of every model it has fitted, even after
the model is collected and `clear_session()` runs (keras-team/tf-keras#286).
Measured here: about 480 MB per AlexNet at 100 px; a 72-fold grid was killed
by the kernel at 24 GB. A process per fold gives every fold's memory back.
This module imports no TensorFlow, so the child's logging is set before its
TensorFlow starts.
"""
import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable
from typing import Any


def _quiet_tensorflow() -> None:
    """Hide the C++ log lines every fresh TensorFlow prints (no GPU plugins found, and the like)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


def call_in_fresh_process(function: Callable[..., Any], *args: Any, quiet: bool = True) -> Any:
    """`function(*args)` in a spawned process; its exception, or a killed process, is raised here."""
    context = multiprocessing.get_context("spawn")
    initializer = _quiet_tensorflow if quiet else None
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=initializer) as pool:
        return pool.submit(function, *args).result()
