"""Hide-scale inspection by patches: tile a large photo, classify each patch, map where defects are.

The path for models without the hide signature (no embedding: the MLP,
AlexNet); models with one are inspected a photo per request and scored against
their own hide (inspection/whole_hide.py). Overlapping tiles sent in batches
through `predict_image` give a per-pixel defect probability (the mean over the
tiles covering the pixel) and the defective regions an inspector should look at.
"""
import concurrent.futures
import dataclasses
import io
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
from PIL import Image

from inspection.maps import ColourScale
from inspection.regions import numbered, region_box
from inspection.tiling import patch_origins
from serving.client import Prediction

Predictor = Callable[[Sequence[bytes]], list[Prediction]]
PNG_COMPRESS_LEVEL = 1


@dataclasses.dataclass(frozen=True)
class Tile:
    x: int
    y: int
    size: int
    probability: float
    defective: bool


@dataclasses.dataclass
class Inspection:
    width: int
    height: int
    tiles: list[Tile]
    heatmap: np.ndarray
    seconds: float
    colour_scale: ClassVar[ColourScale] = ColourScale(
        "defect probability, the mean of the patches covering a pixel", [(0.0, "0"), (0.5, "0.5"), (1.0, "1")]
    )
    """What the heatmap's colours mean, for the map's legend."""

    @property
    def patches_per_second(self) -> float:
        return len(self.tiles) / self.seconds if self.seconds > 0 else float("inf")

    def regions(self) -> list[dict[str, float | int]]:
        """Defective tiles merged where they overlap or touch, as boxes, most probable first."""
        from scipy import ndimage

        mask = np.zeros((self.height, self.width), bool)
        defective = [t for t in self.tiles if t.defective]
        for t in defective:
            mask[t.y : t.y + t.size, t.x : t.x + t.size] = True
        labels, count = ndimage.label(mask)
        pixels = ndimage.sum_labels(mask, labels, np.arange(1, count + 1))
        regions = []
        for index, (box, defect_pixels) in enumerate(zip(ndimage.find_objects(labels), pixels, strict=True), start=1):
            members = [t for t in defective if labels[t.y, t.x] == index]
            regions.append({
                "max_probability": max(t.probability for t in members),
                "tiles": len(members),
                "box": region_box(box),
                "defect_pixels": int(defect_pixels),
            })
        return numbered(sorted(regions, key=lambda region: -region["max_probability"]))

    def to_json(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "patches": len(self.tiles),
            "patches_per_second": round(self.patches_per_second, 2),
            "defective_patches": sum(t.defective for t in self.tiles),
            "regions": self.regions(),
            "tiles": [dataclasses.asdict(t) for t in self.tiles],
        }


def encode_patch(image: Image.Image, x: int, y: int, patch: int) -> bytes:
    """One tile as PNG, so the model sees no second JPEG loss.

    zlib level 1: on a 227 px patch Pillow's default level 6 took 17.8 ms and
    was the bottleneck of a whole-hide inspection (55 patches/s); level 1 takes
    3.3 ms for a file 13% larger (benchmarks/inspect_bench.py).
    """
    buffer = io.BytesIO()
    image.crop((x, y, x + patch, y + patch)).save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def inspect_image(image: Image.Image, predict: Predictor, *, patch: int = 227, stride: int = 113, batch_size: int = 32) -> Inspection:
    """Classify every tile and average the probabilities per pixel."""
    if patch < 1 or stride < 1 or batch_size < 1:
        raise ValueError("patch, stride and batch size must be positive")
    rgb = image.convert("RGB")
    origins = patch_origins(rgb.width, rgb.height, patch, stride)
    batches = [origins[first : first + batch_size] for first in range(0, len(origins), batch_size)]

    def encode(batch: list[tuple[int, int]]) -> list[bytes]:
        return [encode_patch(rgb, x, y, patch) for x, y in batch]

    start = time.perf_counter()
    predictions: list[Prediction] = []
    # Encoding the next batch while the server answers this one: Pillow's encoder releases the GIL.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as encoder:
        upcoming = encoder.submit(encode, batches[0])
        for index in range(len(batches)):
            encoded = upcoming.result()
            if index + 1 < len(batches):
                upcoming = encoder.submit(encode, batches[index + 1])
            predictions += predict(encoded)
    seconds = time.perf_counter() - start
    total = np.zeros((rgb.height, rgb.width), np.float64)
    cover = np.zeros_like(total)
    tiles = []
    for (x, y), prediction in zip(origins, predictions, strict=True):
        total[y : y + patch, x : x + patch] += prediction.probability
        cover[y : y + patch, x : x + patch] += 1
        tiles.append(Tile(x, y, patch, float(prediction.probability), bool(prediction.defective)))
    return Inspection(rgb.width, rgb.height, tiles, total / cover, seconds)
