"""What logging every request costs `leather serve`: CLIENTS stations, with and without `--request-log` at rate 1.0.

Two servers of the same model with the production batching parameters, one of
them writing every request it answers as a PredictionLog record. CLIENTS
concurrent clients send one photo per request to each in turn, for ROUNDS
rounds, since a shared machine's load drifts; the goal (issue "Continuous
training") is the median ratio of logged to plain throughput >= 0.9.

Usage: .venv/bin/python benchmarks/request_log_bench.py --help
Without --model-dir it first trains a model with a short pipeline run on
synthetic leather.
"""
import bench_env  # noqa: F401  (first: tf-keras, quiet TensorFlow)

import argparse
import json
import os
import pathlib
import platform
import statistics
import tempfile
from collections.abc import Sequence

from cli.progress import add_verbose_flag
from bench_support import REPO_ROOT, TRAINING_NOTE, model_to_serve, start_server
from serving_bench import CLIENTS, PRODUCTION_BATCHING, ROUNDS, concurrent_clients, load_photos

GOAL = 0.9


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_verbose_flag(parser)
    parser.add_argument("--model-dir", type=pathlib.Path, default=None,
                        help="a Pusher directory; default: train one with a short pipeline run")
    parser.add_argument("--model-note", help="what the model is, for the results file (default: its path)")
    parser.add_argument(
        "--data-dir", type=pathlib.Path, default=REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev",
        help="photos to send (class subfolders); synthetic photos when absent (default: %(default)s)",
    )
    parser.add_argument("--client-requests", type=int, default=40, help="one-photo requests per client and round")
    parser.add_argument(
        "--output", type=pathlib.Path, default=REPO_ROOT / "benchmarks" / "results" / "request_log_bench.json",
        help="JSON results file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="request-log-bench-") as scratch_name:
        scratch = pathlib.Path(scratch_name)
        model_dir, version = model_to_serve(args.model_dir, scratch)
        photos, source = load_photos(args.data_dir, 64, scratch)
        batching = ("--batching-parameters-file", str(PRODUCTION_BATCHING))
        servers = {
            "plain": start_server(model_dir, *batching),
            "logged": start_server(model_dir, *batching, "--request-log", str(scratch / "log"), "--log-sample-rate", "1"),
        }
        try:
            rounds = [
                {name: concurrent_clients(address, photos, args.client_requests)
                 for name, (_, address) in servers.items()}
                for _ in range(ROUNDS)
            ]
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=60)
        log_bytes = sum(f.stat().st_size for f in (scratch / "log").glob("*.tfrecord"))
    ratios = [round(r["logged"]["images_per_s"] / r["plain"]["images_per_s"], 3) for r in rounds]
    results = {
        "what": f"{CLIENTS} clients, one photo per request, production batching; request log at rate 1.0 vs none",
        "model": args.model_note or (str(version) if args.model_dir else f"trained by a short pipeline run ({TRAINING_NOTE})"),
        "photos": source,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1_5_15_at_end": [round(load, 2) for load in os.getloadavg()]},
        "rounds": rounds,
        "log_bytes_written": log_bytes,
        "logged_over_plain_per_round": ratios,
        "goal": {"logged_over_plain": statistics.median(ratios), "target": f">= {GOAL}"},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    for number, r in enumerate(rounds, start=1):
        print(f"round {number}: {CLIENTS} clients without request log {r['plain']['images_per_s']:.1f} images/s, "
              f"with request log at rate 1.0 {r['logged']['images_per_s']:.1f} images/s")
    print(f"logged over plain, median of {ROUNDS} rounds: {statistics.median(ratios):.3f} (goal >= {GOAL}); "
          f"{log_bytes / 1e6:.1f} MB of log written")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
