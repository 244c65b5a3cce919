"""Training throughput of every model, and the wall time and served latency of full pipeline runs.

Throughput is images per second per training epoch (forward, backward and
Adam update; no validation) on a fixed set of random in-memory inputs, after a
warm-up epoch that pays for tracing, so the number is the model's cost alone,
not Transform's or the disk's. The pipeline timing runs `leather run` on the
real photos once per model, end to end (import, statistics, Transform, Trainer,
colour variants, Evaluator, Pusher); AlexNet gets few epochs there and the
result says how many. After each run, the pushed model's `predict_image` is
timed in-process on one real photo per call (the p50 a station waits for the
model alone).

Usage: .venv/bin/python benchmarks/train_bench.py --help
"""
import os

import bench_env  # noqa: F401  (first: tf-keras, quiet TensorFlow)

import argparse
import json
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cli.progress import add_verbose_flag  # noqa: E402
from bench_support import photo_files  # noqa: E402
from models import features  # noqa: E402
from models.distribution import configure_devices  # noqa: E402
from models.registry import MODELS, model_entry  # noqa: E402
from models.serving_contract import PREDICT_IMAGE_SIGNATURE  # noqa: E402
from models.spec import TrainingConfig  # noqa: E402
from models.trainer import build_model  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev"
MLP_INPUTS = 2 * features.BLOCK_GRID**2
EPOCH_TIME = re.compile(r" - (\d+(?:\.\d+)?)(m?s)/epoch")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_verbose_flag(parser)
    parser.add_argument("--images", type=int, default=256, help="random inputs per epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=TrainingConfig().batch_size, help="(default: %(default)s)")
    parser.add_argument("--resolutions", type=int, nargs="+", default=list(features.CNN_RESOLUTIONS),
                        help="AlexNet and texture model input sizes (default: %(default)s)")
    parser.add_argument("--pipeline-models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="models timed in a full pipeline run (default: %(default)s)")
    parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA, help="real photos for the pipeline runs (default: %(default)s)")
    parser.add_argument("--pipeline", action=argparse.BooleanOptionalAction, default=None,
                        help="time a full `leather run` per model (default: on when --data exists)")
    parser.add_argument("--alexnet-epochs", type=int, default=2, help="AlexNet epochs in the pipeline run (default: %(default)s)")
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "benchmarks" / "results" / "train_bench.json",
                        help="JSON results file (default: %(default)s)")
    return parser.parse_args(argv)


class _EpochTimer(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def training_throughput(training: TrainingConfig, input_shape: tuple[int, ...], images: int, epochs: int) -> dict[str, Any]:
    """Images per second of `model.fit` epochs over random inputs, the first (tracing) epoch left out."""
    rng = np.random.default_rng(0)
    inputs = rng.random((images, *input_shape), dtype=np.float32)
    labels = (rng.random(images) < 0.3).astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(training.batch_size).cache()
    moments = (inputs.reshape(images, -1).mean(axis=0), inputs.reshape(images, -1).var(axis=0)) if model_entry(training.model).standardises_inputs else None
    model = build_model(training, input_shape, moments)
    timer = _EpochTimer()
    model.fit(dataset, epochs=epochs + 1, callbacks=[timer], verbose=0)
    timed = timer.seconds[1:]
    return {
        "input_shape": list(input_shape),
        "parameters": model.count_params(),
        "images_per_epoch": images,
        "epoch_seconds": [round(s, 3) for s in timed],
        "images_per_second": round(images / float(np.median(timed)), 1),
    }


def _epoch_seconds(log: str) -> list[float]:
    """Keras' per-epoch times from a `leather run --verbose` log (verbose=2 prints `- 12s/epoch -`)."""
    return [float(value) / (1000.0 if unit == "ms" else 1.0) for value, unit in EPOCH_TIME.findall(log)]


def predict_latency(push_dir: pathlib.Path, photo: bytes, calls: int = 50) -> dict[str, float]:
    """Milliseconds per `predict_image` call on one photo, in-process, after one warm-up call."""
    versions = sorted((p for p in push_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        return {}
    predict = tf.saved_model.load(str(versions[-1])).signatures[PREDICT_IMAGE_SIGNATURE]
    image = tf.constant([photo])
    predict(image_bytes=image)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(image_bytes=image)
        seconds.append(time.perf_counter() - start)
    return {"p50_ms": round(float(np.median(seconds)) * 1000, 2), "p90_ms": round(float(np.percentile(seconds, 90)) * 1000, 2)}


def pipeline_run(data: pathlib.Path, model: str, epochs: int | None, log_dir: pathlib.Path) -> dict[str, Any]:
    """Wall time of one `leather run` from the image folder, in a fresh workdir (nothing cached); latency of its model."""
    epochs = epochs or TrainingConfig(model=model).training_epochs()
    with tempfile.TemporaryDirectory(prefix=f"train-bench-{model}-") as workdir:
        command = [str(REPO_ROOT / ".venv" / "bin" / "leather"), "run", "--verbose", "--data", str(data), "--workdir", workdir,
                   "--model", model, "--epochs", str(epochs)]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        latency = predict_latency(pathlib.Path(workdir) / "serving", photo_files(data)[0].read_bytes())
    log = result.stdout + result.stderr
    log_path = log_dir / f"train_bench_pipeline_{model}.log"
    log_path.write_text(log)
    epoch_seconds = _epoch_seconds(log)
    return {
        "command": " ".join(command[1:]),
        "exit_code": result.returncode,
        "wall_seconds": round(seconds, 1),
        "max_epochs": epochs,
        "epochs_run": len(epoch_seconds),
        "trainer_epoch_seconds": epoch_seconds,
        "trainer_seconds": round(sum(epoch_seconds), 1),
        "predict_image_one_photo": latency,
        "log": str(log_path),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    strategy = configure_devices(mixed_precision=False)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "replicas": strategy.num_replicas_in_sync},
        "settings": {"images": args.images, "timed_epochs": args.epochs, "batch_size": args.batch_size},
        "throughput": {},
    }
    cases = [("mlp_blocks", TrainingConfig(model="mlp", batch_size=args.batch_size), (MLP_INPUTS,))]
    cases += [
        (f"{model}_{r}px", TrainingConfig(model=model, batch_size=args.batch_size), (r, r, 3))
        for model in ("texture", "alexnet")
        for r in args.resolutions
    ]
    for name, training, shape in cases:
        results["throughput"][name] = measured = training_throughput(training, shape, args.images, args.epochs)
        print(f"{name}: {measured['images_per_second']} images/s ({measured['parameters']:,} parameters)", flush=True)

    run_pipeline = args.data.is_dir() if args.pipeline is None else args.pipeline
    if run_pipeline:
        results["pipeline"] = {}
        for model in args.pipeline_models:
            epochs = args.alexnet_epochs if model == "alexnet" else None
            results["pipeline"][model] = run = pipeline_run(args.data, model, epochs, pathlib.Path(tempfile.gettempdir()))
            print(f"leather run --model {model}: {run['wall_seconds']} s (Trainer epochs {run['trainer_seconds']} s), "
                  f"exit {run['exit_code']}, {run['epochs_run']} epochs, predict_image one photo "
                  f"{run['predict_image_one_photo']}", flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
