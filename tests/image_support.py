"""Image bytes for importer and data-gate tests: small random photos and header-honest pixel bombs."""
import io
import struct
import zlib

import numpy as np
from PIL import Image


def image_bytes(mode: str, fmt: str, size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    """A random-noise image of `size` (width, height) encoded as `fmt`."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(buffer, fmt)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(side: int, gray: bool) -> bytes:
    """A valid, fully decodable black PNG of side x side pixels that is only a few MB.

    Written row by row through zlib so the test never holds the decoded image in memory.
    """
    channels = 1 if gray else 3
    header = struct.pack(">IIBBBBB", side, side, 8, 0 if gray else 2, 0, 0, 0)
    row = bytes(1 + side * channels)  # filter byte 0, then black pixels
    compressor = zlib.compressobj(1)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG whose frame header (SOF0) is rewritten to claim width x height pixels."""
    data = bytearray(image_bytes("RGB", "JPEG", size=(8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
