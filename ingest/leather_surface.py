"""How a patch of leather looks: the hide, its natural marks, its defects, and the photo of it.

A hide is drawn from its random stream (colour, brightness, grain, pores, mottling,
lighting, faint natural marks) before any class is looked at; a defect is painted
last, by the same painters that draw the faint marks, at a stronger strength.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

from ingest.hide_colours import hide_colour, into_hue_band

IMAGE_SIZE = 227
"""The default side length in pixels, and the scale every mark's size is given at."""
# Painter strengths: natural marks on every hide stay below the faintest defect.
_NATURAL_MARK_STRENGTH = (0.03, 0.15)
_DEFECT_STRENGTH = (0.4, 1.0)


@dataclasses.dataclass
class Hide:
    """A leather surface before it is photographed; defects edit height and albedo."""

    height: np.ndarray  # (size, size) relief, zero mean; grooves and pits are negative
    albedo: np.ndarray  # (size, size, 3) surface colour on the 0-255 scale
    light: np.ndarray  # (size, size) illumination with mean 1: gradient and vignette
    light_dir: tuple[float, float]  # (dy, dx) direction the light comes from
    relief: float  # how strongly slopes shade
    occlusion: float  # how much darker low ground looks
    noise: np.ndarray  # (size, size, 3) sensor noise, drawn early to keep streams aligned
    scale: float  # pixels per pixel of an IMAGE_SIZE patch: painters draw their marks at this size

    @property
    def size(self) -> int:
        """Side length in pixels."""
        return self.height.shape[0]


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel row and column coordinates, shared by every image of one size."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, smooth in between: soft ends without visible seams."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Unit-variance noise whose features are about `scale` pixels wide (bicubic upsampling)."""
    cells = max(2, math.ceil(size / scale) + 1)
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    fine = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))
    return (fine - fine.mean()) / (fine.std() + 1e-6)


def _pebbles(rng: np.random.Generator, size: int, cell: float, aspect: float, angle: float) -> np.ndarray:
    """Distance to the nearest cell border of a cellular (Worley) pattern, about 0 to 1.

    Leather grain is a field of flat pebbles split by grooves. Cell centres sit on a
    jittered lattice, so each pixel only needs its 3x3 neighbouring lattice cells: nine
    vectorised passes instead of a nearest-neighbour search.
    """
    rows, cols = _grid(size)
    cos, sin = math.cos(angle), math.sin(angle)
    u = (cols * cos + rows * sin) / (cell * aspect)
    v = (rows * cos - cols * sin) / cell
    u -= u.min() - 1
    v -= v.min() - 1
    iu, iv = u.astype(np.intp), v.astype(np.intp)
    width = int(iu.max()) + 2
    jitter_u = rng.random((int(iv.max()) + 2) * width, dtype=np.float32)
    jitter_v = rng.random(jitter_u.size, dtype=np.float32)
    base = iv * width + iu
    frac_u, frac_v = u - iu, v - iv
    first = np.full((size, size), np.inf, dtype=np.float32)
    second = first.copy()
    for dv, du in itertools.product((-1, 0, 1), repeat=2):
        cell_index = base + (dv * width + du)
        dist = (frac_v - dv - jitter_v.take(cell_index)) ** 2 + (frac_u - du - jitter_u.take(cell_index)) ** 2
        np.minimum(second, np.maximum(first, dist), out=second)
        np.minimum(first, dist, out=first)
    return np.sqrt(second) - np.sqrt(first)


def _band(
    size: int, centre: np.ndarray, angle: float, half_length: float, bend: float
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance across a gently curved line, and a soft window along it.

    Cuts, tick marks, creases and wrinkles are all profiles across such a line, so this
    one routine places them all; `bend` is the sideways sag at the ends per unit length.
    """
    rows, cols = _grid(size)
    cos, sin = math.cos(angle), math.sin(angle)
    along = (cols - centre[1]) * cos + (rows - centre[0]) * sin
    across = (rows - centre[0]) * cos - (cols - centre[1]) * sin - bend * along * along / half_length
    window = _smoothstep((half_length - np.abs(along)) / max(2.0, 0.2 * half_length))
    return across, window


def _blob(rng: np.random.Generator, size: int, centre: np.ndarray, radius: float, softness: float) -> np.ndarray:
    """Soft mask, 0 to 1, of an irregular roundish region: pits, stains, disturbed patches."""
    rows, cols = _grid(size)
    dy, dx = rows - centre[0], cols - centre[1]
    theta = np.arctan2(dy, dx)
    harmonics = np.arange(2, 5)
    amplitudes = rng.uniform(0.0, 0.35, harmonics.size) / harmonics
    phases = rng.uniform(0.0, 2 * math.pi, harmonics.size)
    edge = radius * (1 + sum(a * np.cos(h * theta + p) for a, h, p in zip(amplitudes, harmonics, phases)))
    return 0.5 * (1 + np.tanh((edge - np.hypot(dy, dx)) / (2 * softness)))


def _position(rng: np.random.Generator, size: int, margin: float) -> np.ndarray:
    """A random (row, col) at least `margin` from every edge, so marks are not cut off."""
    return rng.uniform(margin, size - margin, 2)


def _tone(hide: Hide, mask: np.ndarray, change: float | np.ndarray) -> None:
    """Scale the albedo by (1 + change) where `mask` is 1; `change` may be per channel."""
    hide.albedo *= 1 + mask[..., None] * np.asarray(change, dtype=np.float32)


# Defect painters: each edits a hide in place. `strength` in (0, 1] scales depth and
# contrast, so the same painter draws a faint natural mark or a clear defect.


def _paint_fly_bite(rng: np.random.Generator, hide: Hide, strength: float) -> None:
    """A cluster of small dark pits where insects bit the living animal."""
    scale = hide.scale
    centre = _position(rng, hide.size, 20 * scale)
    spread = rng.uniform(3, 16) * scale
    for _ in range(rng.integers(1, 7)):
        pit = _blob(rng, hide.size, centre + rng.normal(0, spread, 2), rng.uniform(1.8, 4.0) * scale, 0.7 * scale)
        hide.height -= 2.5 * strength * pit
        _tone(hide, pit, -0.6 * strength)


def _paint_tick_mark(rng: np.random.Generator, hide: Hide, strength: float) -> None:
    """One to three short healed scars, lighter or darker than the hide."""
    scale = hide.scale
    centre = _position(rng, hide.size, 20 * scale)
    change = rng.choice([-0.6, 0.4]) * strength
    for _ in range(rng.integers(1, 4)):
        across, window = _band(
            hide.size, centre + rng.normal(0, 6 * scale, 2), rng.uniform(0, math.pi),
            rng.uniform(5, 14) * scale, rng.uniform(-0.3, 0.3),
        )
        scar = np.exp(-((across / (rng.uniform(1.5, 3.5) * scale)) ** 2)) * window
        hide.height += 1.2 * strength * scar
        _tone(hide, scar, change)


def _paint_cut(rng: np.random.Generator, hide: Hide, strength: float) -> None:
    """A thin, possibly curved, dark groove with slightly raised lips."""
    scale = hide.scale
    width = rng.uniform(1.0, 2.2) * scale
    across, window = _band(
        hide.size, _position(rng, hide.size, 40 * scale), rng.uniform(0, math.pi),
        rng.uniform(30, 90) * scale, rng.uniform(-0.25, 0.25),
    )
    groove = np.exp(-((across / width) ** 2)) * window
    lips = np.exp(-(((np.abs(across) - 2 * width) / width) ** 2)) * window
    hide.height += strength * (0.6 * lips - 3.0 * groove)
    _tone(hide, groove, -0.7 * strength)


def _paint_wrinkle(rng: np.random.Generator, hide: Hide, strength: float) -> None:
    """A set of soft parallel ridges, as where the hide was folded or grew in folds."""
    scale = hide.scale
    spacing = rng.uniform(12, 22) * scale
    ridges = rng.integers(2, 6)
    across, window = _band(
        hide.size, _position(rng, hide.size, 35 * scale), rng.uniform(0, math.pi),
        rng.uniform(30, 90) * scale, rng.uniform(-0.2, 0.2),
    )
    envelope = np.exp(-((across / (ridges * spacing / 2)) ** 2)) * window
    wave = np.cos(2 * math.pi * across / spacing) * envelope
    hide.height += 1.2 * strength * wave
    _tone(hide, wave, 0.3 * strength)


def _paint_stain(rng: np.random.Generator, hide: Hide, strength: float) -> None:
    """A soft irregular blob of changed colour: water, oil or dye."""
    scale = hide.scale
    radius = rng.uniform(15, 45) * scale
    mask = _blob(rng, hide.size, _position(rng, hide.size, radius), radius, rng.uniform(0.08, 0.25) * radius)
    change = rng.choice([-0.4, 0.25]) + rng.normal(0, 0.04, 3)
    _tone(hide, mask, strength * change)


def _paint_grain_defect(rng: np.random.Generator, hide: Hide, strength: float) -> None:
    """A patch whose grain is coarse, stretched and rough instead of the hide's own."""
    scale = hide.scale
    radius = rng.uniform(12, 40) * scale
    mask = _blob(rng, hide.size, _position(rng, hide.size, radius), radius, rng.uniform(1.5, 4) * scale)
    grain = _pebbles(rng, hide.size, rng.uniform(8, 16) * scale, rng.uniform(1, 2.5), rng.uniform(0, math.pi))
    disturbed = rng.uniform(2.0, 4.0) * (1 - np.exp(-grain / 0.15)) + 0.5 * _smooth_noise(rng, hide.size, 2 * scale)
    hide.height += strength * mask * (disturbed - disturbed.mean() - hide.height)
    _tone(hide, mask, rng.choice([-0.25, 0.2]) * strength)


PAINTERS: dict[str, Callable[[np.random.Generator, Hide, float], None]] = {
    "fly bite": _paint_fly_bite,
    "tick mark": _paint_tick_mark,
    "cut": _paint_cut,
    "wrinkle": _paint_wrinkle,
    "stain": _paint_stain,
    "grain defect": _paint_grain_defect,
}
DEFECT_TYPES = tuple(PAINTERS)


def draw_hide(
    rng: np.random.Generator, size: int, hue_band: tuple[float, float] | None = None, scale: float | None = None
) -> Hide:
    """Everything about a patch except its defect, drawn the same way for every class.

    `hue_band` (degrees) turns the hide's colour into that band after it is drawn, so
    the same stream gives the same hide in another hue: the colour trap's only change.
    `scale` sizes grain and marks (pixels per IMAGE_SIZE-patch pixel; default: one patch enlarged to `size`).
    """
    patches = size / IMAGE_SIZE
    scale = patches if scale is None else scale
    rows, cols = _grid(size)
    colour = hide_colour(rng)
    if hue_band is not None:
        colour = into_hue_band(colour, hue_band)

    cells = _pebbles(rng, size, rng.uniform(3.0, 7.0) * scale, rng.uniform(1.0, 1.6), rng.uniform(0, math.pi))
    height = rng.uniform(0.6, 1.4) * (1 - np.exp(-cells / rng.uniform(0.08, 0.2)))
    height += rng.uniform(0.1, 0.3) * _smooth_noise(rng, size, 1.5 * scale)
    pores = np.zeros((size, size), dtype=np.float32)
    spots = rng.integers(0, size, (rng.poisson(rng.uniform(100, 600) * patches * patches), 2))
    np.add.at(pores, (spots[:, 0], spots[:, 1]), rng.uniform(1.0, 4.0, len(spots)).astype(np.float32))
    height -= ndimage.gaussian_filter(pores, 0.7 * scale)

    mottle = rng.uniform(0.01, 0.03) * _smooth_noise(rng, size, 40 * scale)
    mottle += rng.uniform(0.005, 0.015) * _smooth_noise(rng, size, 8 * scale)
    albedo = colour * (1 + mottle)[..., None]

    angle = rng.uniform(0, 2 * math.pi)
    ramp = ((cols * math.cos(angle) + rows * math.sin(angle)) / size - 0.5) * rng.uniform(0, 0.2)
    centre = size / 2 + rng.normal(0, 0.1 * size, 2)
    radius2 = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (size * size / 2)
    light = (1 + ramp) * (1 - rng.uniform(0, 0.15) * radius2)

    light_angle = rng.uniform(0, 2 * math.pi)
    hide = Hide(
        height=height - height.mean(),
        albedo=albedo.astype(np.float32),
        light=(light / light.mean()).astype(np.float32),
        light_dir=(math.sin(light_angle), math.cos(light_angle)),
        relief=rng.uniform(0.1, 0.35),
        occlusion=rng.uniform(0.04, 0.12),
        noise=rng.uniform(0.5, 2.5) * rng.standard_normal((size, size, 3), dtype=np.float32),
        scale=scale,
    )
    for _ in range(rng.poisson(1.5)):
        paint_natural_mark(rng, hide)
    return hide


def paint_natural_mark(rng: np.random.Generator, hide: Hide) -> None:
    """Paint one mark of a random kind below defect level, as clean and defective hides alike carry."""
    PAINTERS[DEFECT_TYPES[rng.integers(len(DEFECT_TYPES))]](rng, hide, rng.uniform(*_NATURAL_MARK_STRENGTH))


def paint_defect(rng: np.random.Generator, hide: Hide, defect: str) -> None:
    """Paint one clear defect of the given type onto the hide."""
    PAINTERS[defect](rng, hide, rng.uniform(*_DEFECT_STRENGTH))


def photograph(hide: Hide) -> np.ndarray:
    """Light the hide (slope shading, occlusion, gradient, vignette), add noise, quantise."""
    slope_y, slope_x = np.gradient(hide.height)
    shade = 1 + hide.relief * (hide.light_dir[0] * slope_y + hide.light_dir[1] * slope_x)
    shade += hide.occlusion * hide.height
    rgb = hide.albedo * (hide.light * np.maximum(shade, 0.2))[..., None] + hide.noise
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

