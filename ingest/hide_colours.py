"""The colour of a synthetic hide: drawn from leather palettes, or turned into a hue band for the colour trap.

Kept apart from the surface drawing so that what decides a hide's colour, the
one thing the colour-confounded set changes by class, reads in one place.
"""
from __future__ import annotations

import colorsys

import numpy as np

_BRIGHT_SHARE = 0.4  # share of hides bright by the reference definition
# A colour-trap hide keeps at least this HSV saturation, so its hue shows even on grey leather.
_TRAP_MIN_SATURATION = 0.45

# Grayscale weights of PIL's "L" conversion (ITU-R 601), the brightness the importer sees.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Hide colours as RGB directions, scaled to a drawn brightness afterwards. Saturated dark
# hues (burgundy, oxblood) turn pink when made bright, so bright hides draw from pale
# leather colours; neither choice looks at the class.
_DARK_PALETTE = np.array(
    [
        (0.55, 0.36, 0.22),  # brown
        (0.45, 0.30, 0.24),  # chocolate
        (0.70, 0.45, 0.25),  # cognac
        (0.50, 0.14, 0.18),  # burgundy
        (0.42, 0.16, 0.12),  # oxblood
        (0.30, 0.29, 0.28),  # black
        (0.42, 0.40, 0.30),  # olive
    ],
    dtype=np.float32,
)
_BRIGHT_PALETTE = np.array(
    [
        (0.80, 0.60, 0.40),  # tan
        (0.78, 0.55, 0.33),  # camel
        (0.85, 0.78, 0.64),  # cream
        (0.62, 0.60, 0.58),  # light grey
        (0.66, 0.58, 0.50),  # taupe
        (0.75, 0.66, 0.48),  # sand
    ],
    dtype=np.float32,
)

def hide_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB hide colour whose grayscale level is bright or dark by the reference definition."""
    bright = rng.random() < _BRIGHT_SHARE
    luma = rng.uniform(150, 205) if bright else rng.uniform(35, 110)
    palette = _BRIGHT_PALETTE if bright else _DARK_PALETTE
    colour = palette[rng.integers(len(palette))] * rng.uniform(0.92, 1.08, 3).astype(np.float32)
    grey = float(colour @ _LUMA)
    return _unclipped((grey + (colour - grey) * rng.uniform(0.55, 1.0)) * (luma / grey), luma)


def _unclipped(colour: np.ndarray, luma: float) -> np.ndarray:
    """A bright saturated hue would clip at 255: desaturate it towards grey at the same luma."""
    if colour.max() > 240:
        colour = luma + (colour - luma) * (240 - luma) / (colour.max() - luma)
    return colour


def into_hue_band(colour: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """The drawn colour turned into the hue band (degrees) at the same luma: only the hue tells.

    The drawn hue's place on the colour circle becomes its place in the band, so the
    band is filled without drawing anything more from the random stream.
    """
    hue, saturation, value = colorsys.rgb_to_hsv(*(colour / 255.0))
    low, high = band
    turned = np.array(
        colorsys.hsv_to_rgb((low + hue * (high - low)) / 360.0, max(saturation, _TRAP_MIN_SATURATION), value),
        dtype=np.float32,
    )
    luma = float(colour @ _LUMA)
    return _unclipped(turned * (luma / float(turned @ _LUMA)), luma)
