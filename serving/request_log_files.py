"""The request log's files: TFRecords of bounded size and number, renamed into place once complete.

Each file is named like a TF Serving log collector's log, a prefix and a
sequence number (`prediction_log-000042.tfrecord`), and is written as
`<name>.partial` and renamed when closed, so a reader globbing `*.tfrecord`
never sees a half-written file. Numbering goes on after the files already in
the directory, so a restarted server appends instead of overwriting. A write
error (disk full, directory removed) costs the record at hand and the file
being written; it is logged once per outage, and the next record tries a new
file, so the log resumes by itself once the disk has room again.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import re
import time

import tensorflow as tf

log = logging.getLogger(__name__)

PREFIX = "prediction_log"
SUFFIX = ".tfrecord"
PARTIAL = ".partial"
FRAMING_BYTES = 16
"""What TFRecord adds to each record: its length (8 bytes) and two CRCs (4 bytes each)."""
_NAME = re.compile(rf"{PREFIX}-(\d+){re.escape(SUFFIX)}(?:{re.escape(PARTIAL)})?")
_WRITE_ERRORS = (OSError, tf.errors.OpError)


def log_files(directory: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """The log files in `directory`, complete or not (a crashed server leaves a `.partial`), by sequence number."""
    found = ((_NAME.fullmatch(path.name), path) for path in directory.iterdir())
    return sorted((int(match[1]), path) for match, path in found if match)


@dataclasses.dataclass(eq=False)
class _OpenFile:
    path: pathlib.Path
    writer: tf.io.TFRecordWriter
    opened: float = dataclasses.field(default_factory=time.monotonic)
    bytes: int = 0
    records: int = 0

    @property
    def partial(self) -> pathlib.Path:
        return self.path.with_name(self.path.name + PARTIAL)


class LogFiles:
    """Appends records to the open log file, starting, closing and pruning files as the bounds say.

    Counts what became of the records: `written` once the file holding them is
    complete, `failed` when a write error cost them. Used by one thread only.
    """

    def __init__(self, directory: pathlib.Path, max_file_bytes: int, max_file_seconds: float, max_files: int) -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.max_file_seconds = max_file_seconds
        self.max_files = max_files
        self.written = 0
        self.failed = 0
        self._next = 1 + max((sequence for sequence, _ in log_files(directory)), default=0)
        self._file: _OpenFile | None = None
        self._in_outage = False

    def add(self, record: bytes) -> None:
        """Appends one serialized record, first closing the open file if the record would not fit or it is due."""
        size = len(record) + FRAMING_BYTES
        if self._file is not None and (self._file.bytes + size > self.max_file_bytes or self.seconds_left() == 0):
            self.finish()
        try:
            if self._file is None:
                self._file = self._start()
            self._file.writer.write(record)
        except _WRITE_ERRORS as error:
            self._give_up(error, lost=1)
            return
        self._file.bytes += size
        self._file.records += 1

    def seconds_left(self) -> float | None:
        """Seconds until the open file is due to be closed; None while no file is open."""
        if self._file is None:
            return None
        return max(0.0, self._file.opened + self.max_file_seconds - time.monotonic())

    def finish(self) -> None:
        """Closes the open file, if any, and renames it into place for readers."""
        if self._file is None:
            return
        try:
            self._file.writer.close()
            os.replace(self._file.partial, self._file.path)
        except _WRITE_ERRORS as error:
            self._give_up(error, lost=0)
            return
        self.written += self._file.records
        self._file = None
        self._in_outage = False

    def _start(self) -> _OpenFile:
        """A new file, after deleting the oldest ones so that, with it, at most `max_files` remain."""
        existing = log_files(self.directory)
        for _, path in existing[: max(0, len(existing) - self.max_files + 1)]:
            path.unlink(missing_ok=True)
        path = self.directory / f"{PREFIX}-{self._next:06d}{SUFFIX}"
        self._next += 1
        return _OpenFile(path, tf.io.TFRecordWriter(str(path.with_name(path.name + PARTIAL))))

    def _give_up(self, error: Exception, lost: int) -> None:
        """Counts the records lost with the open file, removes what is left of it, and warns once per outage."""
        file, self._file = self._file, None
        if file is not None:
            lost += file.records
            with contextlib.suppress(*_WRITE_ERRORS):
                file.writer.close()
            with contextlib.suppress(OSError):
                file.partial.unlink(missing_ok=True)
        self.failed += lost
        if not self._in_outage:
            self._in_outage = True
            reason = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
            log.warning(
                "request log: cannot write to %s (%s); requests are not logged until writing works again",
                self.directory, reason,
            )
