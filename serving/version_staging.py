"""A private local copy of each version, read within a time limit, for TensorFlow to load from.

TensorFlow reads a SavedModel's variables holding Python's global interpreter
lock, so a read that never returns (a stalled network file system; a FIFO in
the tests) inside `tf.saved_model.load` stops every thread of the server,
gRPC and REST alike, not only the loader. Python's own file reads release the
lock, so the version's files are first copied by a thread of their own to a
directory on local disk; the poller waits for that copy at most the load
timeout, and only a complete copy is handed to TensorFlow. A copy that times
out is abandoned: its thread holds nothing the server needs, and whatever it
wrote is removed, now and when its read returns.

The copy lives as long as the version is loaded; all copies live in one
temporary directory per store, removed when the store closes or is collected.
"""
from __future__ import annotations

import concurrent.futures
import functools
import pathlib
import shutil
import tempfile
import threading

DEFAULT_LOAD_TIMEOUT = 120.0
"""Seconds reading one version's files may take before the version is given up on."""
# Bytes copied between two looks at whether the copy was given up on.
CHUNK_BYTES = 1024 * 1024


class LoadTimeout(Exception):
    """A version's files could not be read within the load timeout."""


def _copy_file(source: str, target: str, abandoned: threading.Event) -> None:
    """Copies what `source` reads as, FIFOs and devices too, as TensorFlow would; stops once `abandoned` is set.

    Stopping matters for a file that never ends (a link to /dev/zero), which
    would otherwise fill the disk after its version timed out.
    """
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            if abandoned.is_set():
                raise LoadTimeout(f"gave up copying {source}")
            writer.write(chunk)


class Staging:
    """Copies versions to a private directory, each copy bounded by `timeout` seconds."""

    def __init__(self, timeout: float = DEFAULT_LOAD_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"the load timeout must be positive, not {timeout}")
        self.timeout = timeout
        self._root = tempfile.TemporaryDirectory(prefix="leather-serving-")

    def copy(self, version: int, source: pathlib.Path) -> pathlib.Path:
        """A complete local copy of `source`; raises LoadTimeout, or OSError when a file cannot be read."""
        target = pathlib.Path(tempfile.mkdtemp(prefix=f"{version}-", dir=self._root.name)) / source.name
        abandoned = threading.Event()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                shutil.copytree(source, target, copy_function=functools.partial(_copy_file, abandoned=abandoned))
            except BaseException as error:  # handed to the waiting poller, or dropped once it gave up
                done.set_exception(error)
            else:
                done.set_result(None)
            if abandoned.is_set():
                self.discard(target)

        threading.Thread(target=run, name=f"read-version-{version}", daemon=True).start()
        try:
            done.result(self.timeout)
        except concurrent.futures.TimeoutError:
            abandoned.set()
            self.discard(target)
            raise LoadTimeout(
                f"reading its files took longer than the load timeout of {self.timeout:g} s"
            ) from None
        except BaseException:
            self.discard(target)
            raise
        return target

    def discard(self, copy: pathlib.Path) -> None:
        """Removes a copy made by `copy` (its parent is the copy's own directory)."""
        shutil.rmtree(copy.parent, ignore_errors=True)

    def close(self) -> None:
        self._root.cleanup()
