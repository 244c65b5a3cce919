"""One import per span at a time: a claim is an exclusive flock on `DATA/.span-N.lock`.

Two imports into one span both found it empty, both wrote, and left a shard
of one beside the manifest of the other, or a corrupt record. The kernel drops
a flock when its process ends, however it ends, so a killed import never
blocks the next; the file names its holder (pid, host, start time) for the
refusal and is removed when the import ends. A claim is taken on its own open
file, so two threads of one process exclude each other too.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import socket
from collections.abc import Iterator

from ingest.errors import IngestError
from ingest.source_tree import display


class SpanBusy(IngestError):
    """Another import holds the span; the message names it."""


def claim_path(data_dir: pathlib.Path, span: int) -> pathlib.Path:
    return data_dir / f".span-{span}.lock"


def _holder(fd: int) -> str:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, TypeError, KeyError):
        return "just starting"


def _locked(path: pathlib.Path, span: int) -> int:
    """An open descriptor of `path` holding its flock; SpanBusy when another import holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise SpanBusy(
                f"span {span} of {display(path.parent)} is being imported by another import ({holder}); wait for it "
                "to finish, or import into another span"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder before removed the file between our open and our lock: take the new one
            return fd
        os.close(fd)


@contextlib.contextmanager
def span_claim(data_dir: pathlib.Path, span: int) -> Iterator[None]:
    """Hold span `span` of `data_dir` for this import, or raise SpanBusy at once."""
    path = claim_path(data_dir, span)
    fd = _locked(path, span)
    try:
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # closing the file releases the flock
