"""Reading a source file only once its size and its first bytes say it can be a photo.

A 2 GB sparse file named `.jpg` (28 kB on disk) was read whole, an 11 GB peak
and 33 s, only to be refused as no image. The size comes from the open file
before any byte is read, and the magic number and the header's pixel count
from its first bytes; only a file that passes both is read, and never more
than its size and the byte limit, even if it grows meanwhile.
"""
from __future__ import annotations

import os
import pathlib

HEAD_BYTES = 64 * 1024
"""Read first: a PNG's IHDR and, after a usual EXIF block, a JPEG's frame header."""
DEFAULT_MAX_FILE_BYTES = 256 * 2**20
"""256 MiB: above a 50-megapixel RGB photo stored as a PNG without compression (150 MB)."""


def read_at_most(path: pathlib.Path, limit: int) -> bytes:
    """The first `limit` bytes of `path` (all of it when smaller); OSError if it cannot be read.

    A read of `limit` bytes would reserve them all, whatever the file holds, so
    this reads its size and one byte more (one that shows it grew).
    """
    with open(path, "rb") as file:
        return file.read(min(os.fstat(file.fileno()).st_size + 1, limit))


def read_photo(path: pathlib.Path, max_bytes: int, max_pixels: int) -> tuple[bytes | None, str]:
    """(The file's bytes, "") for a usable photo, else (None, why not); OSError if it cannot be read."""
    from ingest.image_check import header_problem, image_format_problem  # Pillow: not at `leather --help`

    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:
            return None, f"{size:,} bytes is above the limit of {max_bytes:,} bytes per file"
        head = file.read(min(size + 1, HEAD_BYTES))
        problem = header_problem(head, max_pixels, whole=size < HEAD_BYTES)
        if problem:
            return None, problem
        data = head + file.read(size + 1 - len(head))
    if len(data) > size:
        return None, "grew while it was read"
    problem = image_format_problem(data, max_pixels)
    return (None, problem) if problem else (data, "")
