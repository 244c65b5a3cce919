"""A Pusher executor that does not push again the model the serving directory already serves.

A rerun on unchanged data takes the Trainer from TFX's cache; the resolver then
returns that very model as the baseline, the Evaluator blesses it against
itself, and the stock Pusher copies it once more under a new version number.
Every scheduled run on unchanged data would make TF Serving load an identical
model and leave another copy behind. This executor compares the blessed model's
files with the newest pushed version and, when they are the same bytes, records
that version as the push instead of copying.
"""
import os
from typing import Any

import tensorflow as tf
from absl import logging
from tfx import types
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.base.base_node import BaseNode
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from models.serving_contract import version_folders

_CHUNK_BYTES = 1 << 24
ALREADY_PUSHED = "already_pushed"
"""Custom property of a PushedModel recorded as a push of the version already served: 1 when nothing was copied."""


def newest_version_dir(base_directory: str) -> str | None:
    """The numbered version folder with the highest number, as TF Serving's default policy picks it."""
    if not tf.io.gfile.isdir(base_directory):
        return None
    versions = version_folders(tf.io.gfile.listdir(base_directory))
    return os.path.join(base_directory, versions[0][1]) if versions else None


def _relative_files(root: str) -> dict[str, int]:
    """Every file under `root` by relative path, with its size."""
    files = {}
    for directory, _, names in tf.io.gfile.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            files[os.path.relpath(path, root)] = tf.io.gfile.stat(path).length
    return files


def _same_bytes(first: str, second: str) -> bool:
    with tf.io.gfile.GFile(first, "rb") as a, tf.io.gfile.GFile(second, "rb") as b:
        while True:
            chunk = a.read(_CHUNK_BYTES)
            if chunk != b.read(_CHUNK_BYTES):
                return False
            if not chunk:
                return True


def same_model_files(model_dir: str, pushed_dir: str) -> bool:
    """True when both directories hold the same relative paths with the same bytes."""
    files = _relative_files(model_dir)
    if files != _relative_files(pushed_dir):
        return False
    return all(_same_bytes(os.path.join(model_dir, path), os.path.join(pushed_dir, path)) for path in files)


class Executor(pusher_executor.Executor):
    """TFX's filesystem Pusher, except that a model identical to the newest pushed version is not copied again."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        if self.CheckBlessing(input_dict):
            destination = pusher_pb2.PushDestination()
            proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
            newest = newest_version_dir(destination.filesystem.base_directory)
            model_path = self.GetModelPath(input_dict)
            if newest is not None and same_model_files(model_path, newest):
                model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
                io_utils.copy_dir(model_path, model_push.uri)
                self._MarkPushed(model_push, pushed_destination=newest, pushed_version=os.path.basename(newest))
                model_push.set_int_custom_property(ALREADY_PUSHED, 1)
                logging.info("Model %s is already served as %s; not pushed again.", model_path, newest)
                return
        super().Do(input_dict, output_dict, exec_properties)


def no_repush_pusher(model: types.Channel, blessing: types.Channel, base_directory: str) -> BaseNode:
    """TFX's Pusher with this executor, pushing a blessed `model` to numbered versions under `base_directory`."""
    return tfx.components.Pusher(
        custom_executor_spec=executor_spec.ExecutorClassSpec(Executor),
        model=model,
        model_blessing=blessing,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=base_directory)
        ),
    )
