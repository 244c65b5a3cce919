"""TF Serving's model config file (`--model_config_file`): the models to serve, their versions and version labels.

The file is a `ModelServerConfig` in text format, as the official container
reads it, with one `config` entry per model, each served under its name:

    model_config_list {
      config {
        name: "leather"
        base_path: "/models/leather"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "stable" value: 3 }
        version_labels { key: "canary" value: 4 }
      }
      config { name: "brown-calf" base_path: "/models/brown-calf" }
    }

Stations that ask for `model_spec.version_label: "canary"` get version 4 of
`leather`, the others `stable`; moving a label is an edit of this file, which
`leather serve` reads again when it changes. Every mistake is a ValueError
naming the file and the entry.
"""
from __future__ import annotations

import dataclasses
import pathlib
import re
import types
from collections.abc import Mapping, Sequence

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.model_store import VersionPolicy

_PLATFORM = "tensorflow"
# A name clients can send over gRPC and in a REST path (/v1/models/<name>:predict): no '/', ':' or spaces.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One model's entry of a model config file (or of the --model-dir flags, as if it had one)."""

    name: str
    base_path: pathlib.Path | None
    policy: VersionPolicy
    labels: Mapping[str, int] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

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


def read_model_configs(path: pathlib.Path) -> tuple[ModelConfig, ...]:
    """Every model configured in `path`, in file order, checked; a ValueError says what is wrong and where.

    A base_path is not required here: one model may take its directory from
    --model-dir instead (`served_models` decides).
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read model config file {path}: {error}") from None
    try:
        server_config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"model config file {path}: {error}") from None
    entries = server_config.model_config_list.config
    if not entries:
        raise ValueError(f"model config file {path} lists no model (model_config_list {{ config {{ ... }} }})")
    configs: list[ModelConfig] = []
    for index, entry in enumerate(entries):
        config = _checked(entry, f"model config file {path}, model '{entry.name}'", f"{path}, entry {index + 1}")
        if any(seen.name == config.name for seen in configs):
            raise ValueError(f"model config file {path} lists model '{config.name}' twice; model names must differ")
        configs.append(config)
    return tuple(configs)


def _checked(entry: model_server_config_pb2.ModelConfig, where: str, position: str) -> ModelConfig:
    """One entry as a ModelConfig; `where` names the entry in errors, `position` an entry without a name."""
    if not entry.name:
        raise ValueError(f"model config file {position}: the model has no name")
    if not _MODEL_NAME.fullmatch(entry.name):
        raise ValueError(
            f"{where}: not a valid model name: use letters, digits, '.', '_' and '-' (at most 128), "
            "starting with a letter or digit, so that clients can name it in a REST path"
        )
    if entry.model_platform not in ("", _PLATFORM):
        raise ValueError(f"{where}: model_platform must be '{_PLATFORM}', not '{entry.model_platform}'")
    try:
        policy = _policy(entry)
    except ValueError as error:
        raise ValueError(f"{where}: model_version_policy: {error}") from None
    labels = dict(entry.version_labels)
    for label, version in labels.items():
        if version < 1:
            raise ValueError(f"{where}: label '{label}' must name a version number, not {version}")
        if policy.specific is not None and version not in policy.specific:
            raise ValueError(
                f"{where}: label '{label}' names version {version}, which the model_version_policy "
                f"({policy.describe()}) never loads"
            )
    return ModelConfig(
        name=entry.name,
        base_path=pathlib.Path(entry.base_path) if entry.base_path else None,
        policy=policy,
        labels=types.MappingProxyType(labels),
    )


def served_models(
    configs: Sequence[ModelConfig], path: pathlib.Path, model_dir: pathlib.Path | None, model_name: str | None
) -> tuple[ModelConfig, ...]:
    """The models a server serves from the entries of `path`, each with the directory it reads.

    With `model_dir` the server serves one model from that directory, as
    without a file: the file must then hold exactly that model's entry (named
    `model_name`, if given), whose base_path is ignored. Without it every
    entry is served from its own base_path, which must exist.
    """
    if model_dir is not None or model_name is not None:
        if len(configs) != 1:
            names = ", ".join(f"'{config.name}'" for config in configs)
            raise ValueError(
                f"model config file {path} lists {len(configs)} models ({names}), each served from its base_path; "
                "a model directory or model name given beside it is for a file of one model"
            )
        (config,) = configs
        if model_name not in (None, config.name):
            raise ValueError(
                f"model config file {path} configures model '{config.name}', but this server serves '{model_name}'"
            )
        if model_dir is not None:
            return (dataclasses.replace(config, base_path=model_dir),)
    for config in configs:
        where = f"model config file {path}, model '{config.name}'"
        if config.base_path is None:
            raise ValueError(f"{where}: no base_path (the directory of the model's numbered versions)")
        if not config.base_path.is_dir():
            raise ValueError(f"{where}: base_path {config.base_path} is not a directory")
    return tuple(configs)
