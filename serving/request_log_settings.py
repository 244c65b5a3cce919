"""What `leather serve --request-log DIR` keeps of the requests it serves, and the bounds on it.

Free of TensorFlow so that `leather serve --help` can show the defaults at once;
serving/request_log.py does the logging, docs/serving.md ("Request log") explains
each bound.
"""
import dataclasses
import pathlib

from serving.limits import MIB


@dataclasses.dataclass(frozen=True)
class RequestLogSettings:
    """Where sampled requests go, how many are sampled, and how much disk and memory the log may take."""

    directory: pathlib.Path
    # Share of successful Predict and Classify requests logged. A sample, not every photo: drift statistics need
    # hundreds of photos a day, while logging all of them writes every photo a station sends to disk once more.
    sample_rate: float = 0.1
    # A log file is closed (and readable) once the next record would take it past this size ...
    max_file_bytes: int = 64 * MIB
    # ... or once it has been open this long, so a quiet server's requests still reach readers.
    max_file_seconds: float = 300.0
    # Log files kept in the directory, the one being written included; the oldest are deleted.
    max_files: int = 32
    # Sampled requests waiting for the writer thread; one more is dropped and counted, never waited for.
    max_queued: int = 64

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must lie between 0 and 1, not {self.sample_rate}")
        for name in ("max_file_bytes", "max_file_seconds", "max_files", "max_queued"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
