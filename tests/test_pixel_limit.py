"""The serving graph reads an image's size from its header and refuses pixel bombs before decoding."""
import io
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from models import features
from models.image_features import decode_images, header_size


def _encoded(width: int, height: int, image_format: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), 90).save(out, format=image_format)
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: what a bomb looks like before its IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP"])
def test_header_size_is_width_then_height(image_format):
    assert header_size(tf.constant(_encoded(37, 23, image_format))).numpy().tolist() == [37, 23]


def test_header_size_of_unknown_or_short_bytes_is_zero():
    for data in (b"", b"\x89P", b"not an image at all", b"BM"):
        assert header_size(tf.constant(data)).numpy().tolist() == [0, 0]


def test_a_bomb_is_refused_by_its_header_naming_size_and_limit():
    bomb = _png_header_only(13000, 13000)
    with pytest.raises(tf.errors.InvalidArgumentError) as refused:
        decode_images(tf.constant([_encoded(8, 8, "PNG"), bomb]), cnn_resolution=None)
    message = refused.value.message
    assert "13000" in message and str(features.MAX_IMAGE_PIXELS) in message and "over the limit" in message


def test_images_at_the_limit_still_decode():
    side = int(np.sqrt(features.MAX_IMAGE_PIXELS))
    assert side * side <= features.MAX_IMAGE_PIXELS
    decoded = decode_images(tf.constant([_encoded(side, 1, "PNG"), _encoded(64, 48, "JPEG")]), cnn_resolution=None)
    assert decoded.gray.shape == (2, features.FEATURE_SIZE, features.FEATURE_SIZE)
