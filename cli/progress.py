"""What reaches the terminal: progress lines on stderr for long loops (stdout stays clean for results), and the
quiet default that keeps library noise off both.

TensorFlow, TFX, Beam and TFMA report things a user cannot act on: CUDA
plug-in registration errors on machines without a GPU, deprecations, numpy
warnings from empty confusion-matrix cells. Without `--verbose` a command shows
only its own lines. The settings are environment variables as well as
in-process filters because Beam's workers are separate processes that inherit
the environment, and TensorFlow's C++ logging reads its level when it loads.
"""
import argparse
import logging
import os
import sys
import time
import warnings

from models.epoch_progress import VERBOSE_ENV

# TensorFlow's C++ log levels: 0 shows everything, 3 hides even the ERROR-level CUDA registration lines.
TF_CPP_ALL, TF_CPP_NONE = "0", "3"
NOISY_LOGGERS = ("tensorflow", "apache_beam")


def add_verbose_flag(parser: argparse.ArgumentParser, also: str = "") -> None:
    """--verbose for a command; `also` names what else it brings back there (only `run` trains a model)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show every TensorFlow, TFX and Beam log line and warning" + (f", {also}" if also else ""))


def configure_output(verbose: bool) -> None:
    """Called before a command runs; TensorFlow has not loaded yet when the command imports it lazily.

    `cli/__init__.py` sets the quiet C++ level first, for anything that loads
    TensorFlow before this runs. The Trainer reads VERBOSE_ENV for Keras' epoch lines.
    """
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = TF_CPP_ALL
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = TF_CPP_NONE
    os.environ["PYTHONWARNINGS"] = "ignore"
    warnings.simplefilter("ignore")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


class Progress:
    """Call with (done, total); prints at most every `interval` seconds, and always at the end."""

    def __init__(self, label: str, interval: float = 2.0) -> None:
        self.label = label
        self.interval = interval
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last >= self.interval:
            self._last = now
            print(f"{self.label}: {done}/{total}", file=sys.stderr, flush=True)
