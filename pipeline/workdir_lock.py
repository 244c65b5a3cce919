"""One pipeline run per workdir.

Two runs on one workdir share its ML Metadata store and serving directory: both
pushed different models, and one then crashed in its run summary. The lock is an
exclusive flock on a file in the workdir. The kernel releases it when the holding
process ends, however it ends, so a killed run never blocks the next one; the
file's content (pid, host, start time) names the holder in a refusal, and content
left behind by a run that died holding the lock is reported as taken over.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import pathlib
import socket
import sys
from collections.abc import Iterator
from typing import Any

LOCK_NAME = ".leather-run.lock"
# Locks this process holds, by lock file path: taking one again (the CLI around an
# import and the run, the runner around the pipeline) nests instead of refusing itself.
_HELD: dict[str, int] = {}


class WorkdirBusy(RuntimeError):
    """Another run holds the workdir; the message names it and what to do."""


@dataclasses.dataclass(frozen=True)
class HeldLock:
    path: pathlib.Path
    stale: dict[str, Any] | None
    """What a run that ended without releasing the lock had written, or None."""


def _describe(holder: dict[str, Any]) -> str:
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace")
    if not text.strip():
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    return holder if isinstance(holder, dict) else {"pid": "unknown (unreadable lock file)"}


def _write(fd: int, holder: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(holder) + "\n").encode())


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike) -> Iterator[HeldLock]:
    """Hold `workdir` for this process, or raise WorkdirBusy at once when another run holds it.

    Nested calls for the same workdir in one process share the outer hold.
    """
    path = pathlib.Path(workdir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield HeldLock(path, None)
        finally:
            _HELD[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            raise WorkdirBusy(
                f"workdir {workdir} is in use by another run ({_describe(holder) if holder else 'just starting'}); "
                "wait for it to finish or choose another --workdir"
            ) from None
        stale = _read(fd)
        if stale:
            print(f"taking over the workdir lock of a run that ended without releasing it ({_describe(stale)})",
                  file=sys.stderr)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        _write(fd, {"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        _HELD[key] = 1
        try:
            yield HeldLock(path, stale)
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the file releases the flock
