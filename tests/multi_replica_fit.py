"""Run the Trainer's run_fn with the CPU split into two logical devices: `python multi_replica_fit.py SPLITS_JSON CUSTOM_CONFIG_JSON OUT`.

The split must happen before anything starts the TensorFlow runtime, so this
runs in its own process (tests/test_trainer.py starts it).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import json
import pathlib
import sys

import tensorflow as tf


def main(splits_json: str, custom_config_json: str, out: str) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from models.trainer import run_fn
    from trainer_support import make_fn_args

    splits = json.loads(splits_json)
    run_fn(make_fn_args(splits["transform_output"], splits["files"], json.loads(custom_config_json), pathlib.Path(out)))


if __name__ == "__main__":
    main(*sys.argv[1:])
