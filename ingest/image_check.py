"""Whether a file's bytes are a photo the pipeline can use: the one judge for the importer and the data gate.

The pixel count is read from the header before anything is decoded, so a small
file that expands to gigabytes (a "pixel bomb") costs nothing to refuse.
TensorFlow's own decoder judges the rest, because the Transform graph decodes
the same bytes later: a file Pillow forgives but TensorFlow rejects would fail there.
"""
from __future__ import annotations

from models.features import MAX_IMAGE_PIXELS
from models.image_header import JPEG_MAGIC, PNG_MAGIC, header_size


def header_problem(head: bytes, max_pixels: int = MAX_IMAGE_PIXELS, *, whole: bool = True) -> str | None:
    """Why the first bytes of a file show it is no usable photo, or None when they do not.

    With `whole` false, `head` is only the start of the file: a header that does
    not fit in it (a JPEG's size after a long EXIF block) is left to the full check.
    """
    if not head:
        return "empty file"
    if not (head.startswith(JPEG_MAGIC) or head.startswith(PNG_MAGIC)):
        return "not a JPEG or PNG image"
    size = header_size(head)
    if size is None:
        return "unreadable image header" if whole else None
    width, height = size
    if width * height > max_pixels:
        return f"{width}x{height} pixels ({width * height:,}) is above the limit of {max_pixels:,}"
    return None


def image_format_problem(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why `data` is not a usable JPEG/PNG photo of at most `max_pixels` pixels, or None when it is."""
    import tensorflow as tf

    problem = header_problem(data, max_pixels)
    if problem:
        return problem
    try:
        tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        return "does not decode: " + str(error.message).strip().splitlines()[-1][:200]
    return None
