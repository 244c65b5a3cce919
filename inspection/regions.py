"""Defective regions as the JSON and the map show them: numbered in order, a box, and the defective pixels in it.

Both ways of inspecting (tile scores of the hide, patches classified one by
one) describe a region alike, so a reader matches the number drawn on the map
with the JSON, and sizes in millimetres come from one rule.
"""
from __future__ import annotations

MM_PER_INCH = 25.4


def region_box(box: tuple[slice, slice]) -> dict[str, int]:
    """A region's bounding box from scipy's (rows, columns) slices, in photo pixels."""
    return {"x": box[1].start, "y": box[0].start, "width": box[1].stop - box[1].start, "height": box[0].stop - box[0].start}


def numbered(regions: list[dict]) -> list[dict]:
    """Regions in the order given, each with its number (from 1) first: the number drawn on the map."""
    return [{"number": number, **region} for number, region in enumerate(regions, start=1)]


def with_millimetres(regions: list[dict], px_per_mm: float) -> list[dict]:
    """Each region with its box's width and height and its defective pixels' area in millimetres."""
    mm = 1.0 / px_per_mm
    return [
        {**region, "size_mm": {
            "width": round(region["box"]["width"] * mm, 1),
            "height": round(region["box"]["height"] * mm, 1),
            "defect_area_mm2": round(region["defect_pixels"] * mm * mm, 1),
        }}
        for region in regions
    ]


def millimetre_scale(px_per_mm: float | None, info: dict) -> dict | None:
    """Pixels per millimetre and where they came from: the user's value, else the photo's DPI (Pillow's
    `info["dpi"]`) when it states one, else None.

    Many cameras write 72 DPI as a placeholder; the JSON names the source so a reader can tell.
    """
    if px_per_mm is not None:
        return {"px_per_mm": px_per_mm, "source": "--px-per-mm"}
    dpi = info.get("dpi")
    if not dpi or not float(dpi[0]) > 0:
        return None
    return {"px_per_mm": round(float(dpi[0]) / MM_PER_INCH, 4), "source": f"photo DPI {float(dpi[0]):g}"}
