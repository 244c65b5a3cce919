"""TF Serving's model config file (`--model_config_file`): which versions to load and the labels that name them.

The file is a `ModelServerConfig` in text format, as the official container
reads it, with the one model this server serves:

    model_config_list {
      config {
        name: "leather"
        base_path: "/models/leather"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "stable" value: 3 }
        version_labels { key: "canary" value: 4 }
      }
    }

Stations that ask for `model_spec.version_label: "canary"` get version 4, the
others `stable`; moving a label is an edit of this file, which `leather serve`
reads again when it changes. Every mistake is a ValueError naming the file.
"""
from __future__ import annotations

import dataclasses
import pathlib
import types
from collections.abc import Mapping

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.model_store import VersionPolicy

_PLATFORM = "tensorflow"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The served model's entry of a model config file."""

    name: str
    base_path: pathlib.Path | None
    policy: VersionPolicy
    labels: Mapping[str, int]

    def describe_labels(self) -> str:
        return ", ".join(f"{label}={version}" for label, version in sorted(self.labels.items())) or "none"


def _policy(config: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    chosen = config.model_version_policy.WhichOneof("policy_choice")
    if chosen == "specific":
        return VersionPolicy(latest=None, specific=frozenset(config.model_version_policy.specific.versions))
    if chosen == "all":
        return VersionPolicy(latest=None)
    # TF Serving's default, and `latest {}` without a number, is the newest version alone.
    return VersionPolicy(latest=config.model_version_policy.latest.num_versions or 1)


def read_model_config(path: pathlib.Path) -> ModelConfig:
    """The one model configured in `path`, checked; a ValueError says what is wrong and where."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read model config file {path}: {error}") from None
    try:
        server_config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"model config file {path}: {error}") from None
    configs = list(server_config.model_config_list.config)
    if len(configs) != 1:
        names = [config.name for config in configs]
        raise ValueError(f"model config file {path} lists {len(configs)} models {names}; leather serve serves exactly one")
    (config,) = configs
    where = f"model config file {path}, model '{config.name}'"
    if not config.name:
        raise ValueError(f"model config file {path}: the model has no name")
    if config.model_platform not in ("", _PLATFORM):
        raise ValueError(f"{where}: model_platform must be '{_PLATFORM}', not '{config.model_platform}'")
    try:
        policy = _policy(config)
    except ValueError as error:
        raise ValueError(f"{where}: model_version_policy: {error}") from None
    labels = dict(config.version_labels)
    for label, version in labels.items():
        if version < 1:
            raise ValueError(f"{where}: label '{label}' must name a version number, not {version}")
        if policy.specific is not None and version not in policy.specific:
            raise ValueError(
                f"{where}: label '{label}' names version {version}, which the model_version_policy "
                f"({policy.describe()}) never loads"
            )
    return ModelConfig(
        name=config.name,
        base_path=pathlib.Path(config.base_path) if config.base_path else None,
        policy=policy,
        labels=types.MappingProxyType(labels),
    )
