"""Entry point of the `leather` console script.

Each area registers its own sub-commands; heavy imports (TensorFlow, TFX) stay
inside the command functions so that `leather --help` answers at once, and so
that the output settings (cli/progress.py) are in place before they load.
"""
import argparse
import sys
from collections.abc import Sequence

from cli import data, experiment, inspect, inspect_eval, kubeflow, monitor, report, run, serving
from cli.errors import UserError
from cli.progress import configure_output

AREAS = (data, run, report, serving, monitor, inspect, inspect_eval, experiment, kubeflow)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leather",
        description="Leather defect inspection: ingest photos, run the TFX pipeline, serve the blessed model.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_output(getattr(args, "verbose", False))
    try:
        return args.func(args) or 0
    except UserError as error:
        print(f"leather: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("leather: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
