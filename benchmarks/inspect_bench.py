"""Patches per second of hide-scale inspection (`leather inspect`) against `leather serve`, per batch size.

`leather inspect` crops overlapping patches from a large photo, encodes each as
PNG, sends them in batches through Predict and merges the answers into a heatmap.
The benchmark times exactly that path (`serving.inspection.inspect_image` with
the gRPC client) and two floors beside it: cropping and encoding alone (the
client's share), and the pushed model's `predict_image` called in-process on the
same encoded patches (the model's share). The server runs as its own process.

Usage: .venv/bin/python benchmarks/inspect_bench.py --help
Without --model-dir it first trains a model with a short pipeline run on
synthetic leather (about two minutes). Without --image it inspects the largest
photo of the real set when present, else a synthetic hide.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import argparse
import json
import pathlib
import platform
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from bench_support import REPO_ROOT, SIGNATURE, TRAINING_NOTE, model_to_serve, photo_files, start_server
from ingest.synth import render_patch
from models.serving_contract import PROBABILITY_OUTPUT
from serving.client import predict_images
from serving.inspection import encode_patch, inspect_image, overlay, patch_origins

SYNTHETIC_HIDE_SIZE = 2048


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=pathlib.Path, default=None,
        help="a Pusher directory (numbered version subfolders); default: train one with a short pipeline run",
    )
    parser.add_argument("--model-note", default=None, help="what the model is, for the JSON (default: its path)")
    parser.add_argument(
        "--image", type=pathlib.Path, default=None,
        help="the photo to inspect (default: the largest photo under --data-dir, else a synthetic "
        f"{SYNTHETIC_HIDE_SIZE} px hide)",
    )
    parser.add_argument(
        "--data-dir", type=pathlib.Path, default=REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev",
        help="where to look for the largest photo (default: %(default)s)",
    )
    parser.add_argument("--patch", type=int, default=227, help="patch side in pixels (default %(default)s)")
    parser.add_argument("--stride", type=int, default=113, help="step between patches (default %(default)s)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128], help="patches per request")
    parser.add_argument("--heatmap", type=pathlib.Path, default=None, help="also write the heatmap overlay PNG here")
    parser.add_argument(
        "--output", type=pathlib.Path, default=REPO_ROOT / "benchmarks" / "results" / "inspect_bench.json",
        help="JSON results file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def load_image(args: argparse.Namespace, scratch: pathlib.Path) -> tuple[Image.Image, str]:
    """The photo to inspect and a description of where it came from."""
    path = args.image
    if path is None:
        path = max(photo_files(args.data_dir), key=lambda p: p.stat().st_size, default=None)
    if path is None:
        pixels = render_patch(np.random.default_rng(3), "stain", size=SYNTHETIC_HIDE_SIZE)
        path = scratch / "synthetic_hide.png"
        Image.fromarray(pixels).save(path)
        source = f"synthetic {SYNTHETIC_HIDE_SIZE} px hide with one stain (ingest.synth.render_patch)"
    else:
        source = str(path)
    with Image.open(path) as image:
        return image.convert("RGB"), source


def encoded_patches(image: Image.Image, patch: int, stride: int) -> tuple[list[bytes], float]:
    """Every tile as `inspect_image` encodes it, and the seconds that took."""
    start = time.perf_counter()
    tiles = [encode_patch(image, x, y, patch) for x, y in patch_origins(image.width, image.height, patch, stride)]
    return tiles, time.perf_counter() - start


def in_process_rate(version: pathlib.Path, tiles: list[bytes], batch_size: int) -> float:
    """Patches per second of the SavedModel's `predict_image` on already encoded tiles, after a warm-up call."""
    signature = tf.saved_model.load(str(version)).signatures[SIGNATURE]
    signature(image_bytes=tf.constant(tiles[:batch_size]))
    start = time.perf_counter()
    for first in range(0, len(tiles), batch_size):
        signature(image_bytes=tf.constant(tiles[first : first + batch_size]))[PROBABILITY_OUTPUT].numpy()
    return len(tiles) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="inspect-bench-") as scratch_name:
        scratch = pathlib.Path(scratch_name)
        model_dir, version = model_to_serve(args.model_dir, scratch)
        image, source = load_image(args, scratch)
        tiles, encode_seconds = encoded_patches(image, args.patch, args.stride)
        print(f"{source}: {image.width}x{image.height}, {len(tiles)} patches of {args.patch} px, stride {args.stride}")

        server, address = start_server(model_dir)
        try:
            by_batch = {}
            for batch_size in args.batch_sizes:
                inspection = inspect_image(
                    image,
                    lambda batch: predict_images(address, batch, batch_size=len(batch), timeout=120),
                    patch=args.patch, stride=args.stride, batch_size=batch_size,
                )
                by_batch[str(batch_size)] = round(inspection.patches_per_second, 1)
                print(f"batch {batch_size:>4}: {inspection.patches_per_second:8.1f} patches/s over gRPC "
                      f"({inspection.seconds:.1f} s for the photo)")
        finally:
            server.terminate()
            server.wait(timeout=30)
        floor_batch = max(args.batch_sizes)
        model_rate = in_process_rate(version, tiles, floor_batch)

    encode_rate = len(tiles) / encode_seconds
    print(f"crop + PNG encode alone: {encode_rate:8.1f} patches/s")
    print(f"model in-process, batch {floor_batch}: {model_rate:8.1f} patches/s")
    if args.heatmap:
        overlay(image, inspection).save(args.heatmap)
        print(f"heatmap: {args.heatmap}")
    results = {
        "what": "leather inspect's path: crop, PNG-encode, Predict over gRPC to leather serve (own process), merge",
        "model": args.model_note or (str(version) if args.model_dir else f"trained by a short pipeline run ({TRAINING_NOTE})"),
        "image": {"source": source, "width": image.width, "height": image.height},
        "patch": args.patch,
        "stride": args.stride,
        "patches": len(tiles),
        "defective_patches": sum(t.defective for t in inspection.tiles),
        "defective_regions": len(inspection.regions()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "patches_per_second_over_grpc_by_batch": by_batch,
        "patches_per_second_crop_and_encode_only": round(encode_rate, 1),
        f"patches_per_second_model_in_process_batch_{floor_batch}": round(model_rate, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
