"""Imported first by every benchmark, before TensorFlow loads: tf-keras, and only the benchmark's own lines.

TensorFlow reads its C++ log level once, as it loads, so `--verbose` is looked
for here, ahead of argument parsing (each parser accepts the flag as well).
"""
import os
import pathlib
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from cli.progress import configure_output  # noqa: E402

configure_output("--verbose" in sys.argv[1:])
