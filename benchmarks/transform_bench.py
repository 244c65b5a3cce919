"""Images per second of the TF feature path against an OpenCV/NumPy equivalent.

The TF path is what Transform and serving run (models/image_features.py); the
OpenCV path is the obvious hand-written alternative. The question is whether
keeping training and serving in one TF graph costs too much throughput, and
which stage of the TF path dominates if it does.

Usage: .venv/bin/python benchmarks/transform_bench.py --help
"""
import os

import bench_env  # noqa: F401  (first: tf-keras, quiet TensorFlow)

import argparse
import json
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np
import tensorflow as tf

from cli.progress import add_verbose_flag
from bench_support import REPO_ROOT, photo_files
from models import features
from models.canny import canny_edges
from models.image_features import block_counts, decode_images, image_features


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_verbose_flag(parser)
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        default=REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev",
        help="folder of class subfolders of photos (default: %(default)s)",
    )
    parser.add_argument(
        "--num-images", type=int, default=1000, help="photos to process (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="TF batch size (default: %(default)s)")
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=REPO_ROOT / "benchmarks" / "results" / "transform_bench.json",
        help="JSON results file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def load_images(data_dir: pathlib.Path, count: int) -> list[bytes]:
    """`count` photos spread evenly over the sorted file list, so every class is in."""
    paths = photo_files(data_dir)
    if not paths:
        raise SystemExit(f"no images under {data_dir}")
    picks = np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int)
    return [paths[i].read_bytes() for i in picks]


def batches(images: list[bytes], size: int) -> list[tf.Tensor]:
    return [tf.constant(images[i : i + size]) for i in range(0, len(images), size)]


class Timing(NamedTuple):
    """Wall and process CPU seconds: on a shared machine CPU time is the steadier figure."""

    wall: float
    cpu: float


def timed(run: Callable[[], None]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def time_batches(fn: Callable[[tf.Tensor], Any], inputs: list[tf.Tensor]) -> Timing:
    """One pass over all batches, after one warm-up batch has traced the graph."""
    tf.nest.map_structure(lambda t: t.numpy(), fn(inputs[0]))

    def run() -> None:
        for batch in inputs:
            tf.nest.map_structure(lambda t: t.numpy(), fn(batch))

    return timed(run)


def opencv_block_counts(data: bytes) -> np.ndarray:
    """The same 50 features with OpenCV: decode, gray, area resize, Canny relative to max gradient."""
    size, grid = features.FEATURE_SIZE, features.BLOCK_GRID
    colour = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    gray = cv2.resize(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), (size, size), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(gray, (0, 0), features.CANNY_SIGMA)
    dx = cv2.Sobel(blurred, cv2.CV_16S, 1, 0)
    dy = cv2.Sobel(blurred, cv2.CV_16S, 0, 1)
    top = float(np.sqrt(dx.astype(np.float32) ** 2 + dy.astype(np.float32) ** 2).max())
    edges = cv2.Canny(dx, dy, features.CANNY_LOW * top, features.CANNY_HIGH * top, L2gradient=True) > 0
    block = size // grid
    edge_count = edges.reshape(grid, block, grid, block).sum(axis=(1, 3))
    return np.stack([block * block - edge_count, edge_count], axis=-1).reshape(-1).astype(np.float32)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    images = load_images(args.data_dir, args.num_images)
    inputs = batches(images, args.batch_size)
    bytes_spec = [tf.TensorSpec([None], tf.string)]

    gray_spec = [tf.TensorSpec([None, features.FEATURE_SIZE, features.FEATURE_SIZE], tf.float32)]

    @tf.function(input_signature=bytes_spec)
    def tf_decode_resize(image_bytes: tf.Tensor) -> tf.Tensor:
        return decode_images(image_bytes, cnn_resolution=None).gray

    @tf.function(input_signature=gray_spec)
    def tf_canny_blocks(gray: tf.Tensor) -> tf.Tensor:
        return block_counts(canny_edges(gray))

    @tf.function(input_signature=bytes_spec)
    def tf_features(image_bytes: tf.Tensor) -> tf.Tensor:
        return tf_canny_blocks(tf_decode_resize(image_bytes))

    @tf.function(input_signature=bytes_spec)
    def tf_all_features(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return image_features(image_bytes)

    tf_time = time_batches(tf_features, inputs)
    decode_time = time_batches(tf_decode_resize, inputs)
    canny_time = time_batches(tf_canny_blocks, [tf_decode_resize(batch) for batch in inputs])
    all_features_time = time_batches(tf_all_features, inputs)
    opencv_block_counts(images[0])
    opencv_time = timed(lambda: [opencv_block_counts(data) for data in images])

    count = len(images)
    results = {
        "images": count,
        "batch_size": args.batch_size,
        "cpu_cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "tensorflow_version": tf.__version__,
        "opencv_version": cv2.__version__,
        "tf_images_per_second": count / tf_time.wall,
        "opencv_images_per_second": count / opencv_time.wall,
        "tf_slowdown_per_image": tf_time.wall / opencv_time.wall,
        "tf_cpu_ms_per_image": 1000 * tf_time.cpu / count,
        "opencv_cpu_ms_per_image": 1000 * opencv_time.cpu / count,
        "tf_cpu_slowdown_per_image": tf_time.cpu / opencv_time.cpu,
        "tf_stage_wall_seconds": {
            "decode_gray_resize_bright": decode_time.wall,
            "canny_and_block_counts": canny_time.wall,
            "block_features_path": tf_time.wall,
            "all_features_with_cnn_image_150x150x3": all_features_time.wall,
        },
    }
    for name in ("tf", "opencv"):
        print(
            f"{name:7s} {results[name + '_images_per_second']:8.1f} images/s, "
            f"{results[name + '_cpu_ms_per_image']:.3f} CPU ms/image"
        )
    print(
        f"TF is {results['tf_slowdown_per_image']:.2f}x slower per image than OpenCV "
        f"({results['tf_cpu_slowdown_per_image']:.2f}x in CPU time)"
    )
    print(
        f"TF stages (wall s for {count}): decode+gray+resize+bright {decode_time.wall:.2f}, "
        f"Canny+block counts {canny_time.wall:.2f}; all features incl. CNN image {all_features_time.wall:.2f}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
