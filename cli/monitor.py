"""`leather monitor`: are the photos stations send still like the photos the served model was trained on?

Reads a `leather serve --request-log` directory, describes the logged photos
with the importer's descriptor graph, and compares their statistics with the
training statistics of the model the workdir's pipeline pushed (TFDV skew
comparators, bounds in the curated schema). Exit 0: no skew; 1: skew on some
descriptor; 2: bad input. Made to run from cron or as a Kubeflow step.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from cli.arg_types import positive_int
from cli.progress import add_verbose_flag

DEFAULT_OUT_DIR = "monitor"
DEFAULT_MIN_PHOTOS = 50
EXIT_SKEW, EXIT_BAD_INPUT = 1, 2


class _BadInput(Exception):
    """Input the monitor cannot judge; printed as one line, exit 2."""


def _table(rows: list) -> list[str]:
    from models.divergence import CONSTANT_MEASURE

    width = max(len("feature"), *(len(row.feature) for row in rows))
    lines = [f"{'feature':<{width}}  {'divergence':>10}  {'bound':>6}  verdict"]
    for row in rows:
        verdict = "SKEW" if row.beyond else "ok"
        lines.append(f"{row.feature:<{width}}  {row.divergence:>10.4f}  {row.bound:>6g}  {verdict}")
    constant = [row.feature for row in rows if row.measure == CONSTANT_MEASURE]
    if constant:
        lines.append(f"({', '.join(constant)}: one value on one side; the divergence is the share of photos that differ)")
    return lines


def _check(args: argparse.Namespace) -> int:
    from monitoring.logged_photos import LogSummary, RequestLogError, completed_log_files, logged_photos
    from monitoring.skew import SkewCheckError, compare, describe_photos, load_schema, serving_statistics
    from pipeline.monitor_page import write_monitor_page
    from pipeline.served_statistics import ServedStatisticsError, served_statistics

    summary = LogSummary()
    try:
        schema = load_schema(str(args.schema))
        described = describe_photos(logged_photos(completed_log_files(args.requests), summary))
        if len(described.descriptors) < args.min_photos:
            undecodable = f" ({described.undecodable} more do not decode)" if described.undecodable else ""
            raise _BadInput(
                f"{args.requests} holds {len(described.descriptors)} usable logged photos{undecodable}, fewer than "
                f"--min-photos {args.min_photos}: too few to judge a distribution"
            )
        answered = [version for version, _ in summary.model_versions.most_common() if version]
        version = args.model_version or (str(answered[0]) if answered else None)
        trained = served_statistics(args.workdir, args.pipeline_name, version)
        served = serving_statistics(described.descriptors)
        rows = compare(trained.statistics, served, schema)
    except (RequestLogError, ServedStatisticsError, SkewCheckError, _BadInput) as error:
        print(f"leather monitor: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    facts = {
        "request log": f"{args.requests} ({summary.files} file{'s' * (summary.files != 1)}, "
        f"{len(described.descriptors)} photos"
        + (f", {described.undecodable} undecodable" if described.undecodable else "") + ")",
        "served model": f"version {trained.pushed_version} ({trained.pushed_destination})",
        "training statistics": trained.path,
    }
    page = write_monitor_page(args.out or args.workdir / DEFAULT_OUT_DIR, rows, trained.statistics, served, facts)
    print("\n".join(_table(rows)))
    print("; ".join(f"{key}: {value}" for key, value in facts.items()))
    print(f"page written to {page}")
    skewed = [row.feature for row in rows if row.beyond]
    if skewed:
        print(f"skew: the served photos differ from the training photos in {', '.join(skewed)}")
        return EXIT_SKEW
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from pipeline.config import DEFAULT_SCHEMA, PipelineConfig

    monitor = commands.add_parser(
        "monitor",
        help="compare the photos in a request log with the served model's training photos (exit 1 on skew)",
        description="Describe the photos in the completed files of a `leather serve --request-log` directory, "
        "compare their distributions with the training statistics of the model the workdir's pipeline pushed "
        "(Jensen-Shannon divergence per descriptor, bounds in the schema's skew_comparator), print a table and "
        "write an HTML page. Exit 0: no skew, 1: skew, 2: bad input.",
    )
    monitor.add_argument("--requests", type=pathlib.Path, required=True, metavar="DIR",
                         help="the request log directory (`leather serve --request-log DIR`)")
    monitor.add_argument("--workdir", type=pathlib.Path, required=True, metavar="W",
                         help="the --workdir of `leather run`")
    monitor.add_argument("--out", type=pathlib.Path, help=f"folder for the page (default W/{DEFAULT_OUT_DIR})")
    monitor.add_argument("--schema", type=pathlib.Path, default=DEFAULT_SCHEMA, help="schema with the skew bounds "
                         "(default: the curated schema)")
    monitor.add_argument("--pipeline-name", default=PipelineConfig.pipeline_name, help="default %(default)s")
    monitor.add_argument("--model-version", help="the pushed version to compare with (default: the version that "
                         "answered most logged photos, else the newest push)")
    monitor.add_argument("--min-photos", type=positive_int, default=DEFAULT_MIN_PHOTOS,
                         help="fewer logged photos than this is bad input (default %(default)s)")
    add_verbose_flag(monitor)
    monitor.set_defaults(func=_check)
