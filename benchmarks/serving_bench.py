"""Latency and throughput of `leather serve` over gRPC on loopback against the SavedModel called in-process.

The in-process call of the pushed model's `predict_image` signature is the floor:
what serving adds on top of it is the Predict protos, gRPC and the server's
request handling. The server runs as its own process (`leather serve` on
127.0.0.1), as in production; the client keeps one channel open.

Usage: .venv/bin/python benchmarks/serving_bench.py --help
Without --model-dir it first trains a model with a short pipeline run on
synthetic leather (about two minutes).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import argparse
import json
import pathlib
import platform
import tempfile
import time
from collections.abc import Callable, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench_support import (
    MODEL_NAME,
    REPO_ROOT,
    SIGNATURE,
    TRAINING_NOTE,
    generate_dataset,
    model_to_serve,
    photo_files,
    start_server,
)

BATCH_SIZES = (1, 8, 64)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=pathlib.Path, default=None,
        help="a Pusher directory (numbered version subfolders); default: train one with a short pipeline run",
    )
    parser.add_argument(
        "--data-dir", type=pathlib.Path, default=REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev",
        help="photos to send (class subfolders); synthetic photos when absent (default: %(default)s)",
    )
    parser.add_argument("--latency-requests", type=int, default=300, help="single-image calls timed for p50/p99")
    parser.add_argument("--throughput-images", type=int, default=640, help="images sent per batch size")
    parser.add_argument(
        "--output", type=pathlib.Path, default=REPO_ROOT / "benchmarks" / "results" / "serving_bench.json",
        help="JSON results file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def load_photos(data_dir: pathlib.Path, count: int, scratch: pathlib.Path) -> tuple[list[bytes], str]:
    """`count` photos spread over the sorted file list (so every class is in), and where they came from."""
    paths = photo_files(data_dir)
    if not paths:
        generate_dataset(scratch / "photos", count, seed=5)
        paths, data_dir = sorted((scratch / "photos").rglob("*.jpg")), pathlib.Path("synthetic (ingest.synth)")
    step = max(len(paths) // count, 1)
    return [p.read_bytes() for p in paths[::step][:count]], str(data_dir)


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(np.asarray(seconds) * 1000.0, [50, 99])
    return {"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3), "calls": len(seconds)}


def time_calls(call: Callable[[list[bytes]], object], batches: list[list[bytes]]) -> list[float]:
    """Seconds per call, after two untimed warm-up calls."""
    for batch in batches[:2]:
        call(batch)
    durations = []
    for batch in batches:
        start = time.perf_counter()
        call(batch)
        durations.append(time.perf_counter() - start)
    return durations


def measure(call: Callable[[list[bytes]], object], photos: list[bytes], args: argparse.Namespace) -> dict:
    singles = [[photos[i % len(photos)]] for i in range(args.latency_requests)]
    result = {"latency_one_image": percentiles_ms(time_calls(call, singles)), "throughput_images_per_s": {}}
    for size in BATCH_SIZES:
        batches = [
            [photos[(start + i) % len(photos)] for i in range(size)]
            for start in range(0, max(args.throughput_images, size), size)
        ]
        seconds = sum(time_calls(call, batches))
        result["throughput_images_per_s"][str(size)] = round(len(batches) * size / seconds, 1)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as scratch_name:
        scratch = pathlib.Path(scratch_name)
        model_dir, version = model_to_serve(args.model_dir, scratch)
        photos, source = load_photos(args.data_dir, max(BATCH_SIZES), scratch)

        signature = tf.saved_model.load(str(version)).signatures[SIGNATURE]
        in_process = measure(lambda batch: signature(image_bytes=tf.constant(batch))["probability"].numpy(), photos, args)

        server, address = start_server(model_dir)
        try:
            with grpc.insecure_channel(address) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

                def predict(batch: list[bytes]) -> object:
                    request = predict_pb2.PredictRequest()
                    request.model_spec.name = MODEL_NAME
                    request.model_spec.signature_name = SIGNATURE
                    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
                    return stub.Predict(request, timeout=60)

                over_grpc = measure(predict, photos, args)
        finally:
            server.terminate()
            server.wait(timeout=30)

    slowdown = {
        "latency_p50": round(over_grpc["latency_one_image"]["p50_ms"] / in_process["latency_one_image"]["p50_ms"], 2),
        "latency_p99": round(over_grpc["latency_one_image"]["p99_ms"] / in_process["latency_one_image"]["p99_ms"], 2),
        **{
            f"throughput_batch_{size}": round(
                in_process["throughput_images_per_s"][size] / over_grpc["throughput_images_per_s"][size], 2
            )
            for size in in_process["throughput_images_per_s"]
        },
    }
    results = {
        "what": "predict_image of the pushed model: leather serve over gRPC on loopback vs the SavedModel in-process",
        "model": str(version) if args.model_dir else f"trained by a short pipeline run ({TRAINING_NOTE}), then deleted",
        "photos": source,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "in_process": in_process,
        "grpc_loopback": over_grpc,
        "slowdown_note": "latency: gRPC / in-process; throughput: in-process / gRPC; above 1 means gRPC is slower",
        "slowdown_grpc_vs_in_process": slowdown,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")

    print(f"{'':24}{'in-process':>12}{'gRPC':>12}{'ratio':>8}")
    for key, label in (("p50_ms", "latency p50 (ms)"), ("p99_ms", "latency p99 (ms)")):
        a, b = in_process["latency_one_image"][key], over_grpc["latency_one_image"][key]
        print(f"{label:<24}{a:>12.2f}{b:>12.2f}{b / a:>8.2f}")
    for size in in_process["throughput_images_per_s"]:
        a, b = in_process["throughput_images_per_s"][size], over_grpc["throughput_images_per_s"][size]
        print(f"{'images/s, batch ' + size:<24}{a:>12.1f}{b:>12.1f}{a / b:>8.2f}")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
