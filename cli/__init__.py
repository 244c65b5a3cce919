"""The `leather` command line: one sub-command module per area of the product.

Keras is pinned to tf-keras here too, because `leather` is an entry point that
may import TensorFlow before any other package of ours; TensorFlow's C++ log
lines (CUDA plug-in registration, CPU features) are silenced here, before it
loads, and `--verbose` asks for them back (cli/progress.py).
"""
import os

from cli.progress import TF_CPP_NONE

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = TF_CPP_NONE
