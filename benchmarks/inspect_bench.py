"""Whole-hide inspection against `leather serve`: how well it finds defects (MVTec AD's convention) and how fast.

With a model that has the hide signature (the texture model), every hide of each
--hides folder (photos, with NAME_mask.png beside the defective ones) goes through
`leather inspect`'s path: one Predict per photo over gRPC to `leather serve` in its
own process, self-referenced tile scores, the pixel map and its regions. It reports
image ROC-AUC (a hide's highest tile score), pixel ROC-AUC against the masks, the
share of defects located (a region touching them), false-alarm regions per clean
hide and seconds per photo, against the issue's goals. Then it times the largest
real photo end to end, the same way. A model without the hide signature is timed on
the per-patch path instead (crop, PNG, Predict in batches), as before.

Usage: .venv/bin/python benchmarks/inspect_bench.py --help
Without --model-dir it first trains a model with a short pipeline run on synthetic
leather; without --hides it draws the evaluation hides first (docs/results/whole-hide.md).
"""
import os

import bench_env  # noqa: F401  (first: tf-keras, quiet TensorFlow)

import argparse
import dataclasses
import json
import pathlib
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from cli.progress import add_verbose_flag
from bench_support import REPO_ROOT, TRAINING_NOTE, model_to_serve, photo_files, start_server
from ingest.synth_hide import MANIFEST_NAME, generate_hides, hide_specs
from inspection.client import has_hide_signature, request_tiles
from inspection.evaluation import hide_files, judge, summary
from inspection.patches import inspect_image
from inspection.settings import ScoringSettings
from inspection.whole_hide import inspect_hide
from serving.client import predict_images

GOALS = {
    "image_roc_auc": (">=", 0.98),
    "pixel_roc_auc": (">=", 0.95),
    "defects_located": (">=", 0.90),
    "false_alarm_regions_per_clean_hide": ("<=", 0.10),
}
REAL_PHOTO_GOAL_SECONDS = 4.0
# The evaluation hides: colours and grain sizes the scoring settings were not tuned on (docs/results/whole-hide.md).
EVALUATION_HIDES = {
    "count": 40, "seed": 202, "size": (1600, 1200), "colours": ["burgundy", "navy", "olive", "cream", "grey"],
    "grains": [0.8, 1.25],
}
TIMED_RUNS = 3


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = ScoringSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_verbose_flag(parser)
    parser.add_argument("--model-dir", type=pathlib.Path, default=None, help="a Pusher directory; default: train one")
    parser.add_argument("--model-note", default=None, help="what the model is, for the JSON (default: its path)")
    parser.add_argument("--hides", type=pathlib.Path, nargs="*", default=None, help="folders of hides with masks")
    parser.add_argument(
        "--data-dir", type=pathlib.Path, default=REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev",
        help="where the largest photo is timed from (default: %(default)s); skipped when absent",
    )
    parser.add_argument("--patch", type=int, default=227, help="tile side in pixels (default %(default)s)")
    parser.add_argument("--stride", type=int, default=113, help="step between tiles (default %(default)s)")
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--neighbours", type=int, default=defaults.neighbours)
    parser.add_argument("--classifier-weight", type=float, default=defaults.classifier_weight)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128], help="per-patch path only")
    parser.add_argument(
        "--output", type=pathlib.Path, default=REPO_ROOT / "benchmarks" / "results" / "inspect_bench.json",
        help="JSON results file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def _met(value: float, goal: tuple[str, float]) -> bool:
    return value >= goal[1] if goal[0] == ">=" else value <= goal[1]


def evaluate_folder(address: str, folder: pathlib.Path, args: argparse.Namespace, settings: ScoringSettings) -> dict:
    """The MVTec AD figures of one folder of hides, each hide inspected as `leather inspect` does."""
    outcomes = []
    for photo, mask_path in hide_files(folder):
        inspection = inspect_hide(
            photo.read_bytes(), _requester(address), patch=args.patch, stride=args.stride, settings=settings
        )
        mask = np.asarray(Image.open(mask_path).convert("L")) > 127 if mask_path else None
        top = float(inspection.scores.max())
        outcomes.append(judge(photo.name, inspection.heat, settings.threshold, mask, top, inspection.seconds))
    figures = summary(outcomes)
    figures["goals_met"] = {name: _met(figures[name], goal) for name, goal in GOALS.items()}
    print(f"{folder}: " + ", ".join(f"{name} {figures[name]}" for name in (*GOALS, "seconds_per_photo")))
    return figures


def describe(folder: pathlib.Path) -> dict:
    """How a folder of `leather data synth-hide` was drawn (seed, colours, grains), from its hides.json."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    hides = json.loads(manifest.read_text())
    return {
        "seed": hides["seed"],
        "colours": sorted({hide["colour"] for hide in hides["hides"]}),
        "grains": sorted({hide["grain"] for hide in hides["hides"]}),
    }


def _requester(address: str):
    return lambda data, patch, stride: request_tiles(address, data, patch, stride, timeout=300)


def time_photo(address: str, photo: pathlib.Path, args: argparse.Namespace, settings: ScoringSettings) -> dict:
    """Seconds from the file's bytes to the regions through the server, after one warm-up request."""
    data = photo.read_bytes()
    inspect_hide(data, _requester(address), patch=args.patch, stride=args.stride, settings=settings)
    runs = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        inspection = inspect_hide(data, _requester(address), patch=args.patch, stride=args.stride, settings=settings)
        runs.append(time.perf_counter() - start)
    seconds = statistics.median(runs)
    tiles = len(inspection.scores)
    listed = ", ".join(f"{r:.2f}" for r in runs)
    print(f"{photo.name} ({inspection.width}x{inspection.height}): {tiles} tiles in {seconds:.2f} s "
          f"({tiles / seconds:.0f} tiles/s; runs {listed}), {len(inspection.regions)} region(s)")
    return {
        "photo": str(photo), "width": inspection.width, "height": inspection.height, "tiles": tiles,
        "seconds_median": round(seconds, 3), "seconds_runs": [round(r, 3) for r in runs],
        "tiles_per_second": round(tiles / seconds, 1), "regions": len(inspection.regions),
        "goal_seconds": REAL_PHOTO_GOAL_SECONDS, "goal_met": seconds <= REAL_PHOTO_GOAL_SECONDS,
    }


def time_patches(address: str, photo: pathlib.Path, args: argparse.Namespace) -> dict:
    """The per-patch path for models without the hide signature: patches per second by batch size."""
    image = Image.open(photo).convert("RGB")
    by_batch = {}
    for batch_size in args.batch_sizes:
        inspection = inspect_image(
            image, lambda batch: predict_images(address, batch, batch_size=len(batch), timeout=300),
            patch=args.patch, stride=args.stride, batch_size=batch_size,
        )
        by_batch[str(batch_size)] = round(inspection.patches_per_second, 1)
        print(f"batch {batch_size:>4}: {inspection.patches_per_second:8.1f} patches/s ({inspection.seconds:.1f} s)")
    return {"photo": str(photo), "patches": len(inspection.tiles), "patches_per_second_by_batch": by_batch}


def default_hides(scratch: pathlib.Path) -> list[pathlib.Path]:
    settings = EVALUATION_HIDES
    width, height = settings["size"]
    specs = hide_specs(
        settings["count"], settings["seed"], width, height, colours=settings["colours"], grains=settings["grains"]
    )
    generate_hides(scratch / "hides", specs, settings["seed"])
    return [scratch / "hides"]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = ScoringSettings(neighbours=args.neighbours, classifier_weight=args.classifier_weight, threshold=args.threshold)
    largest = max(photo_files(args.data_dir), key=lambda p: p.stat().st_size, default=None)
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "patch": args.patch, "stride": args.stride,
    }
    with tempfile.TemporaryDirectory(prefix="inspect-bench-") as scratch_name:
        scratch = pathlib.Path(scratch_name)
        model_dir, version = model_to_serve(args.model_dir, scratch)
        results["model"] = args.model_note or (str(version) if args.model_dir else f"short pipeline run ({TRAINING_NOTE})")
        server, address = start_server(model_dir)
        try:
            if has_hide_signature(address):
                results["settings"] = dataclasses.asdict(settings)
                results["goals"] = {name: f"{op} {value}" for name, (op, value) in GOALS.items()}
                folders = args.hides if args.hides is not None else default_hides(scratch)
                results["hide_sets"] = {
                    folder.name: describe(folder) | evaluate_folder(address, folder, args, settings) for folder in folders
                }
                if args.hides is None:
                    results["hide_sets_drawn_with"] = EVALUATION_HIDES
                if largest is not None:
                    results["real_photo"] = time_photo(address, largest, args, settings)
            elif largest is not None:
                results["per_patch_path"] = time_patches(address, largest, args)
        finally:
            server.terminate()
            server.wait(timeout=30)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
