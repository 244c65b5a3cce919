"""The one header reader (models.image_header): sizes as files declare them, read without decoding."""
import io

import tensorflow as tf
from PIL import Image

from image_support import image_bytes, jpeg_claiming, png_bomb
from models.image_header import declared_pixels, header_size


def _saved(fmt: str, size: tuple[int, int], frames: int = 1) -> bytes:
    buffer = io.BytesIO()
    images = [Image.new("RGB", size, (10 * frame, 0, 0)) for frame in range(frames)]
    images[0].save(buffer, fmt, save_all=frames > 1, append_images=images[1:])
    return buffer.getvalue()


def test_header_size_reads_png_and_jpeg_without_decoding():
    assert header_size(png_bomb(13000, gray=False)) == (13000, 13000)
    assert header_size(jpeg_claiming(20000, 15000)) == (20000, 15000)
    assert header_size(image_bytes("L", "PNG", size=(40, 30))) == (40, 30)
    assert header_size(b"\xff\xd8\xff not really") is None


def test_declared_pixels_of_every_format_the_decoder_reads():
    assert declared_pixels(jpeg_claiming(7000, 7000)) == 49_000_000
    assert declared_pixels(_saved("GIF", (30, 20))) == 600
    assert declared_pixels(_saved("BMP", (7, 5))) == 35
    assert declared_pixels(b"not an image") == declared_pixels(b"\xff\xd8 truncated") == 0


def test_every_frame_of_a_gif_counts_because_the_decoder_decodes_them_all():
    animated = _saved("GIF", (30, 20), frames=3)

    assert declared_pixels(animated) == 3 * 600
    assert tf.io.decode_gif(animated).shape == (3, 20, 30, 3)
