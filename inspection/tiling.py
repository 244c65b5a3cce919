"""The tile grid of a whole-hide photo: tiles every `stride`, plus one flush with the far edge, row by row.

Inspection by patches cuts its tiles on this grid (inspection/patches.py); the
hide signature cuts the same grid in the graph (models/hide_signature.py), and
tests hold the two to it.
"""


def tile_origins(length: int, patch: int, stride: int) -> list[int]:
    """Tile starts covering [0, length): every `stride`, plus one flush with the far edge."""
    if length < patch:
        raise ValueError(f"the image side of {length} px is smaller than the patch size {patch} px")
    origins = list(range(0, length - patch + 1, stride))
    if origins[-1] != length - patch:
        origins.append(length - patch)
    return origins


def patch_origins(width: int, height: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners (x, y) of the tiles, row by row."""
    return [(x, y) for y in tile_origins(height, patch, stride) for x in tile_origins(width, patch, stride)]
