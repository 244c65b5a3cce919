"""The inspection map a person reads: the photo with the scores blended in, each defective region outlined and
numbered as in the JSON, and a legend strip below it with a colour bar in the scores' unit.

A heatmap without a scale or numbers sends the reader to `--help` and the JSON
to know what a colour means and which region is which; the strip says both on
the image itself.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inspection.settings import HEATMAP_MAX_SIDE

OUTLINE = (0, 255, 255)
"""Cyan: no colour of the inferno scale, so an outline stands out on any score."""
LABEL_BACKGROUND = (0, 0, 0)
LABEL_TEXT = (255, 255, 255)
STRIP_BACKGROUND = (255, 255, 255)
STRIP_TEXT = (0, 0, 0)
COLOUR_MAP = "inferno"


@dataclasses.dataclass(frozen=True)
class ColourScale:
    """What the map's [0, 1] means: the unit of the scores and ticks at positions in [0, 1] with their labels."""

    unit: str
    ticks: Sequence[tuple[float, str]]


def colour_table() -> np.ndarray:
    """[256, 3] uint8 colours of the scale: matplotlib's colour map on a float map of a large photo takes half a
    gigabyte, a table lookup does not."""
    from matplotlib import colormaps

    return (colormaps[COLOUR_MAP](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _blend(image: Image.Image, heat: np.ndarray, max_side: int, alpha: float) -> tuple[Image.Image, float]:
    """The photo, shrunk to `max_side` (0: no limit), with the map's colours blended in; and the shrink factor.

    Each pixel takes the map's colour in proportion to its value (up to
    `alpha`), so sound leather stays as photographed and only what scores
    shows. A 4608x3288 map took 10 s to blend and write at full size; a person
    reads the regions' exact pixels in the JSON.
    """
    scale = min(1.0, max_side / max(image.size)) if max_side > 0 else 1.0
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    rows = np.minimum(((np.arange(height) + 0.5) / scale).astype(int), heat.shape[0] - 1)
    columns = np.minimum(((np.arange(width) + 0.5) / scale).astype(int), heat.shape[1] - 1)
    shown = np.clip(heat[np.ix_(rows, columns)], 0.0, 1.0).astype(np.float32)
    colours = colour_table()[np.rint(shown * 255).astype(np.uint8)].astype(np.float32)
    photo = image.convert("RGB").resize((width, height), Image.BILINEAR) if scale < 1 else image.convert("RGB")
    pixels = np.asarray(photo, np.float32)
    pixels += (colours - pixels) * (alpha * shown)[..., None]
    return Image.fromarray(np.rint(pixels).astype(np.uint8)), scale


def _outline_and_number(draw: ImageDraw.ImageDraw, regions: Sequence[dict], scale: float, size: int) -> None:
    """Each region's box in cyan and its number, white on black, in the box's top-left corner."""
    font = _font(size)
    for region in regions:
        box = region["box"]
        x0, y0 = box["x"] * scale, box["y"] * scale
        x1, y1 = (box["x"] + box["width"]) * scale - 1, (box["y"] + box["height"]) * scale - 1
        draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], outline=OUTLINE, width=3)
        left, top, right, bottom = draw.textbbox((x0 + 3, y0 + 3), str(region["number"]), font=font)
        draw.rectangle([left - 2, top - 2, right + 2, bottom + 2], fill=LABEL_BACKGROUND)
        draw.text((x0 + 3, y0 + 3), str(region["number"]), fill=LABEL_TEXT, font=font)


def text_size(map_width: int) -> int:
    """Pixels of the labels' and the legend's type: readable on a map of any width."""
    return max(12, map_width // 60)


def legend_height(map_width: int) -> int:
    """Height of the strip below a map `map_width` wide: margin, bar, ticks with labels, unit, margin."""
    return 7 * text_size(map_width)


def legend_strip(width: int, colour_scale: ColourScale, regions: int) -> Image.Image:
    """A white strip: the colour bar with its ticks, its unit below, and what the outlines and numbers are.

    The bar is `text_size` from the strip's left and top edges, `text_size` high and half the width less two
    margins long."""
    size = text_size(width)
    margin, bar_height = size, size
    strip = Image.new("RGB", (width, legend_height(width)), STRIP_BACKGROUND)
    draw = ImageDraw.Draw(strip)
    font = _font(size)
    bar_width = max(2, width // 2 - 2 * margin)
    bar = colour_table()[np.linspace(0, 255, bar_width).round().astype(int)]
    strip.paste(Image.fromarray(np.repeat(bar[None], bar_height, axis=0)), (margin, margin))
    tick_y = margin + bar_height
    for position, label in colour_scale.ticks:
        x = margin + round(position * (bar_width - 1))
        draw.line([x, tick_y, x, tick_y + size // 2], fill=STRIP_TEXT, width=2)
        draw.text((x, tick_y + size // 2), label, fill=STRIP_TEXT, font=font, anchor="ma")
    draw.text((margin, tick_y + 2 * size), colour_scale.unit, fill=STRIP_TEXT, font=font)
    note = f"{regions} defective region(s), numbered as in the JSON" if regions else "no defective region"
    left = width // 2 + margin
    draw.rectangle([left, margin, left + size, margin + size], outline=OUTLINE, width=3)
    draw.text((left + 2 * size, margin), note, fill=STRIP_TEXT, font=font)
    return strip


def inspection_map(
    image: Image.Image, heat: np.ndarray, regions: Sequence[dict], colour_scale: ColourScale,
    max_side: int = HEATMAP_MAX_SIDE, alpha: float = 0.5,
) -> Image.Image:
    """The photo with the map in [0, 1] blended in, the regions outlined and numbered, and the legend strip below."""
    blended, scale = _blend(image, heat, max_side, alpha)
    _outline_and_number(ImageDraw.Draw(blended), regions, scale, text_size(blended.width))
    strip = legend_strip(blended.width, colour_scale, len(regions))
    page = Image.new("RGB", (blended.width, blended.height + strip.height), STRIP_BACKGROUND)
    page.paste(blended, (0, 0))
    page.paste(strip, (0, blended.height))
    return page
