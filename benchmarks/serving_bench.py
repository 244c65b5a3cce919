"""`leather serve` over gRPC on loopback against the SavedModel called in-process: latency, batching, version swaps.

The in-process call of the pushed model's `predict_image` signature is the floor:
what serving adds on top of it is the Predict protos, gRPC and the server's
request handling. Each server runs as its own process (`leather serve` on
127.0.0.1), one at a time, as in production. Measured side by side in one run:

* one photo, no concurrency: p50/p99 in-process, through the ModelApi alone
  (protos, no transport), and over gRPC; a GetModelStatus round trip is the
  transport's own cost;
* throughput at batch 1, 8 and 64 from one client;
* CLIENTS concurrent clients sending one photo per request, without batching
  and with the production batching parameters (kubeflow/serving-config/), in
  ROUNDS rounds interleaved with in-process batch-8 runs, since a shared
  machine's load drifts;
* the first request after a version swap against the steady p50 of the
  requests right after it, with warmup (the default) and without.

Usage: .venv/bin/python benchmarks/serving_bench.py --help
Without --model-dir it first trains a model with a short pipeline run on
synthetic leather.
"""
import os

import bench_env  # noqa: F401  (first: tf-keras, quiet TensorFlow)

import argparse
import concurrent.futures
import json
import pathlib
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from cli.progress import add_verbose_flag
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
from serving.limits import ServingLimits
from serving.model_api import ModelApi
from serving.model_store import ModelStore

BATCH_SIZES = (1, 8, 64)
CLIENTS = 8
ROUNDS = 3
AFTER_SWAP = 10
PRODUCTION_BATCHING = REPO_ROOT / "kubeflow" / "serving-config" / "batching_parameters.txt"
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_verbose_flag(parser)
    parser.add_argument(
        "--model-dir", type=pathlib.Path, default=None,
        help="a Pusher directory (numbered version subfolders); default: train one with a short pipeline run",
    )
    parser.add_argument("--model-note", help="what the model is, for the results file (default: its path)")
    parser.add_argument(
        "--data-dir", type=pathlib.Path, default=REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev",
        help="photos to send (class subfolders); synthetic photos when absent (default: %(default)s)",
    )
    parser.add_argument("--latency-requests", type=int, default=300, help="single-image calls timed for p50/p99")
    parser.add_argument("--throughput-images", type=int, default=640, help="images sent per batch size")
    parser.add_argument("--client-requests", type=int, default=20, help="one-photo requests per client and round")
    parser.add_argument("--swaps", type=int, default=5, help="version swaps timed with and without warmup")
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


def latency(call: Callable[[list[bytes]], object], photos: list[bytes], args: argparse.Namespace) -> dict:
    return percentiles_ms(time_calls(call, [[photos[i % len(photos)]] for i in range(args.latency_requests)]))


def measure(call: Callable[[list[bytes]], object], photos: list[bytes], args: argparse.Namespace) -> dict:
    result = {"latency_one_image": latency(call, photos, args), "throughput_images_per_s": {}}
    for size in BATCH_SIZES:
        batches = [
            [photos[(start + i) % len(photos)] for i in range(size)]
            for start in range(0, max(args.throughput_images, size), size)
        ]
        seconds = sum(time_calls(call, batches))
        result["throughput_images_per_s"][str(size)] = round(len(batches) * size / seconds, 1)
    return result


def predict_request(batch: list[bytes]) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = SIGNATURE
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
    return request


def concurrent_clients(address: str, photos: list[bytes], requests_per_client: int) -> dict:
    """CLIENTS stations on channels of their own, each sending one photo per request as soon as answered."""
    start = threading.Barrier(CLIENTS + 1)

    def station(number: int) -> list[float]:
        with grpc.insecure_channel(address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            stub.Predict(predict_request([photos[number]]), timeout=60)
            start.wait()
            durations = []
            for i in range(requests_per_client):
                began = time.perf_counter()
                stub.Predict(predict_request([photos[(number * requests_per_client + i) % len(photos)]]), timeout=60)
                durations.append(time.perf_counter() - began)
            return durations

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(station, number) for number in range(CLIENTS)]
        start.wait()
        began = time.perf_counter()
        durations = [d for future in futures for d in future.result()]
        seconds = time.perf_counter() - began
    return {"images_per_s": round(len(durations) / seconds, 1), "latency": percentiles_ms(durations)}


def status_round_trip(stub: model_service_pb2_grpc.ModelServiceStub, args: argparse.Namespace) -> dict:
    """GetModelStatus calls: gRPC and the server's request handling without a model run."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    return percentiles_ms(time_calls(lambda _: stub.GetModelStatus(request, timeout=10), [[]] * args.latency_requests))


def both_servers(
    model_dir: pathlib.Path, photos: list[bytes], args: argparse.Namespace, in_process_batch: Callable[[], float]
) -> tuple[dict, dict, list[dict]]:
    """`leather serve` without and with batching side by side: one-photo latency (and batch throughput
    without), then ROUNDS rounds of in-process batch-8 throughput and CLIENTS clients on each server, interleaved
    so the machine's load drifts alike over all three."""
    plain_server, plain_address = start_server(model_dir, "--no-enable-batching")
    try:
        batched_server, batched_address = start_server(
            model_dir, "--batching-parameters-file", str(PRODUCTION_BATCHING)
        )
        try:
            results = []
            for address, batch_sizes in ((plain_address, True), (batched_address, False)):
                with grpc.insecure_channel(address) as channel:
                    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

                    def predict(batch: list[bytes]) -> object:
                        return stub.Predict(predict_request(batch), timeout=60)

                    result = measure(predict, photos, args) if batch_sizes else {"latency_one_image": latency(predict, photos, args)}
                    result["status_round_trip"] = status_round_trip(model_service_pb2_grpc.ModelServiceStub(channel), args)
                results.append(result)
            rounds = [
                {
                    "in_process_batch_8_images_per_s": in_process_batch(),
                    "without_batching": concurrent_clients(plain_address, photos, args.client_requests),
                    "with_batching": concurrent_clients(batched_address, photos, args.client_requests),
                }
                for _ in range(ROUNDS)
            ]
        finally:
            batched_server.terminate()
            batched_server.wait(timeout=30)
    finally:
        plain_server.terminate()
        plain_server.wait(timeout=30)
    return results[0], results[1], rounds


def first_requests_after_swaps(
    version: pathlib.Path, push_dir: pathlib.Path, photos: list[bytes], args: argparse.Namespace, *flags: str
) -> dict:
    """Pushes copies of `version` as versions 2, 3, ...; times the first request each new version answers
    against the median of the AFTER_SWAP requests that follow it (the steady latency under the same load)."""
    shutil.copytree(version, push_dir / "1")
    server, address = start_server(push_dir, *flags)
    swaps = []
    try:
        with grpc.insecure_channel(address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            status = model_service_pb2_grpc.ModelServiceStub(channel)

            def predict_ms(photo: bytes) -> float:
                began = time.perf_counter()
                stub.Predict(predict_request([photo]), timeout=60)
                return (time.perf_counter() - began) * 1000.0

            for _ in range(3):
                predict_ms(photos[0])
            for number in range(2, args.swaps + 2):
                shutil.copytree(version, push_dir / str(number))
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = MODEL_NAME
                request.model_spec.version.value = number
                while True:
                    try:
                        if status.GetModelStatus(request, timeout=10).model_version_status[0].state == AVAILABLE:
                            break
                    except grpc.RpcError:
                        pass  # not seen yet
                    time.sleep(0.02)
                first = predict_ms(photos[number % len(photos)])
                steady = statistics.median(predict_ms(photos[(number + i) % len(photos)]) for i in range(AFTER_SWAP))
                swaps.append({"first_ms": round(first, 2), "steady_p50_ms": round(steady, 2), "ratio": ratio(first, steady)})
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"swaps": swaps, "median_first_over_steady_p50": statistics.median(swap["ratio"] for swap in swaps)}


def in_process_api(push_dir: pathlib.Path, photos: list[bytes], args: argparse.Namespace) -> dict:
    """ModelApi.predict in this process: request protos to response protos, no transport."""
    store = ModelStore(push_dir)
    store.poll()
    store.poll()
    api = ModelApi(MODEL_NAME, store, ServingLimits())
    return latency(lambda batch: api.predict(predict_request(batch)), photos, args)


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 2)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as scratch_name:
        scratch = pathlib.Path(scratch_name)
        model_dir, version = model_to_serve(args.model_dir, scratch)
        photos, source = load_photos(args.data_dir, max(BATCH_SIZES), scratch)

        signature = tf.saved_model.load(str(version)).signatures[SIGNATURE]

        def in_process_call(batch: list[bytes]) -> object:
            return signature(image_bytes=tf.constant(batch))["probability"].numpy()

        def in_process_batch_8() -> float:
            batches = [
                [photos[(start + i) % len(photos)] for i in range(8)] for start in range(0, CLIENTS * args.client_requests, 8)
            ]
            return round(len(batches) * 8 / sum(time_calls(in_process_call, batches)), 1)

        in_process = measure(in_process_call, photos, args)
        model_api = in_process_api(model_dir, photos, args)
        plain, batched, rounds = both_servers(model_dir, photos, args, in_process_batch_8)
        warm = first_requests_after_swaps(version, scratch / "swaps-warm", photos, args)
        cold = first_requests_after_swaps(version, scratch / "swaps-cold", photos, args, "--no-enable-model-warmup")

    per_round = [
        ratio(r["with_batching"]["images_per_s"], r["in_process_batch_8_images_per_s"]) for r in rounds
    ]
    goals = {
        "batched_clients_over_in_process_batch_8": statistics.median(per_round),
        "grpc_p50_over_in_process_p50": ratio(
            plain["latency_one_image"]["p50_ms"], in_process["latency_one_image"]["p50_ms"]
        ),
        "first_after_swap_over_steady_p50": warm["median_first_over_steady_p50"],
        "targets": {"batched_clients_over_in_process_batch_8": ">= 0.8", "grpc_p50_over_in_process_p50": "<= 1.2",
                    "first_after_swap_over_steady_p50": "<= 2"},
    }
    results = {
        "what": "predict_image of the pushed model: leather serve over gRPC on loopback vs the SavedModel in-process",
        "model": args.model_note or (str(version) if args.model_dir else f"trained by a short pipeline run ({TRAINING_NOTE}), then deleted"),
        "photos": source,
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
            "load_average_1_5_15_at_end": [round(load, 2) for load in os.getloadavg()],
        },
        "batching_parameters": PRODUCTION_BATCHING.read_text(),
        "in_process": in_process,
        "model_api_in_process_one_image": model_api,
        "grpc_loopback": plain,
        "grpc_loopback_with_batching": batched,
        f"{CLIENTS}_clients_one_photo_each_rounds": rounds,
        "version_swap_with_warmup": warm,
        "version_swap_without_warmup": cold,
        "goals": goals,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")

    one = "latency_one_image"
    print(f"one photo p50 (ms): in-process {in_process[one]['p50_ms']:.2f}, ModelApi {model_api['p50_ms']:.2f}, "
          f"gRPC {plain[one]['p50_ms']:.2f}, gRPC with batching {batched[one]['p50_ms']:.2f}, "
          f"status round trip {plain['status_round_trip']['p50_ms']:.2f}")
    for size in in_process["throughput_images_per_s"]:
        a, b = in_process["throughput_images_per_s"][size], plain["throughput_images_per_s"][size]
        print(f"images/s, batch {size}: in-process {a:.1f}, gRPC {b:.1f}")
    for number, r in enumerate(rounds, start=1):
        print(f"round {number}: in-process batch 8 {r['in_process_batch_8_images_per_s']:.1f} images/s; {CLIENTS} clients, "
              f"one photo each: without batching {r['without_batching']['images_per_s']:.1f}, "
              f"with batching {r['with_batching']['images_per_s']:.1f}")
    for name, swaps in (("with warmup", warm), ("without warmup", cold)):
        print(f"first request after a swap {name} (ms, steady p50 after it): "
              + ", ".join(f"{s['first_ms']:.1f} ({s['steady_p50_ms']:.1f})" for s in swaps["swaps"]))
    print(f"goals: {json.dumps({k: v for k, v in goals.items() if k != 'targets'})}")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
