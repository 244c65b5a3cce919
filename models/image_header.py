"""What an image file declares about its size, read by Pillow from the header without decoding a pixel.

The one reader for every place that must refuse a photo before paying for it:
the importer and the data gate (ingest.image_check) and the server's per-request
pixel budget (serving.request_budget). A few bytes can declare gigabytes (a
631-byte JPEG claiming 7000x7000), so the declared size is what gets judged.
"""
from __future__ import annotations

import io

from PIL import BmpImagePlugin, GifImagePlugin, ImageFile, JpegImagePlugin, PngImagePlugin

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_MAGIC = b"GIF8"
BMP_MAGIC = b"BM"
# The formats tf.io.decode_image reads, by the bytes it recognises them from. The format plugins parse the
# header only: Image.open would also apply Pillow's own decompression-bomb guard, which warns or raises at a
# limit that is not ours.
_HEADER_READERS: tuple[tuple[bytes, type[ImageFile.ImageFile]], ...] = (
    (JPEG_MAGIC, JpegImagePlugin.JpegImageFile),
    (PNG_MAGIC, PngImagePlugin.PngImageFile),
    (GIF_MAGIC, GifImagePlugin.GifImageFile),
    (BMP_MAGIC, BmpImagePlugin.BmpImageFile),
)


def _declared(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, frames) from the header; None when no reader takes the bytes."""
    for magic, reader in _HEADER_READERS:
        if data.startswith(magic):
            try:
                with reader(io.BytesIO(data)) as image:
                    # tf.io.decode_image decodes every frame of a GIF, even when it keeps only the first.
                    frames = image.n_frames if isinstance(image, GifImagePlugin.GifImageFile) else 1
                    return image.width, image.height, frames
            except Exception:  # noqa: BLE001 - Pillow raises many kinds on a broken header; all mean "unreadable"
                return None
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a JPEG, PNG, GIF or BMP header, or None when there is no readable header."""
    declared = _declared(data)
    return None if declared is None else declared[:2]


def declared_pixels(data: bytes) -> int:
    """The pixels decoding these bytes would produce (width x height x GIF frames); 0 for bytes no decoder takes."""
    declared = _declared(data)
    if declared is None:
        return 0
    width, height, frames = declared
    return width * height * frames


def stated_dpi(data: bytes) -> float | None:
    """The horizontal resolution a photo's file states (JFIF, EXIF or PNG pHYs), None when it states none."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        dpi = image.info.get("dpi")
    return float(dpi[0]) if dpi and float(dpi[0]) > 0 else None
