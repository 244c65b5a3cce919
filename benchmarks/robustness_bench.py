"""Does a model see the defect or the dye? ROC-AUC and recalls of each model on colour-shifted real photos.

`experiments.robustness` on the real photos: every model trained once on one
content-hash split and scored on every colour variant of the test photos at
its own calibrated threshold. Training seconds are wall time on this machine.

Usage: .venv/bin/python benchmarks/robustness_bench.py --help
"""
import os

import bench_env  # noqa: F401  (first: tf-keras, quiet TensorFlow)

import argparse
import json
import pathlib
import sys
import tempfile
from collections.abc import Sequence
from typing import Any


REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cli.progress import add_verbose_flag  # noqa: E402
from experiments.dataset import read_examples  # noqa: E402
from experiments.robustness import CONTENDERS, run_robustness, table  # noqa: E402
from ingest.importer import import_images  # noqa: E402
from models.colour_variants import VARIANT_NAMES  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "leather-kaggle-dev"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "robustness_bench.json"
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_verbose_flag(parser)
    parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA, help="class folders of real photos (default: %(default)s)")
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path(tempfile.gettempdir()) / "leather-robustness",
                        help="imported shards, cached features and inputs (default: %(default)s)")
    parser.add_argument("--models", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS), help="(default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="every model's epochs, for a quick look (default: experiments.robustness.CONTENDERS)")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS, help="results JSON (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"no photos at {args.data}: give --data, the real set's class folders")
    shards = args.work / "tfrecords"
    if not (shards / "manifest.json").exists():
        import_images(args.data, shards)

    def save(results: list[dict[str, Any]], inputs: dict[str, Any]) -> None:
        report = {
            "data": str(args.data),
            "split": {split: len(labels) for split, labels in inputs["labels"].items()},
            "variants": list(VARIANT_NAMES),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "results": results,
            "table": table(results),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    results = run_robustness(read_examples(shards), args.work, args.models, args.epochs, log=log, each=save)
    print(table(results))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
