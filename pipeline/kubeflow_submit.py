"""Start a compiled pipeline on a Kubeflow Pipelines cluster with the `kfp` client.

The compiled spec carries the runtime parameters with the compile-time config
as defaults; a run overrides some of them. `--training FIELD=VALUE` edits one
`TrainingConfig` field inside the Trainer's custom_config JSON and is checked
here, before anything reaches the cluster, with the same validation a local run
gets.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from kfp.pipeline_spec import pipeline_spec_pb2

from models.spec import TrainingConfig, model_input_key, preprocessing_from_custom_config
from pipeline.kubeflow_runner import TRAINER_CUSTOM_CONFIG, load_pipeline_spec, parameter_defaults

ParameterType = pipeline_spec_pb2.ParameterType.ParameterTypeEnum
_PARSERS: dict[int, Callable[[str], Any]] = {
    ParameterType.NUMBER_DOUBLE: float,
    ParameterType.NUMBER_INTEGER: int,
    ParameterType.STRING: str,
    ParameterType.BOOLEAN: lambda text: {"true": True, "false": False}[text.lower()],
}


@dataclasses.dataclass(frozen=True)
class Submitted:
    """The server's ids, so a user can find the pipeline version and the run in the UI."""

    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str | None = None
    recurring_run_id: str | None = None


def _json_or_text(text: str) -> Any:
    """`20` -> 20, `0.001` -> 0.001, `null` -> None, `mlp` -> "mlp"."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _with_training_overrides(custom_config_json: str, training: Mapping[str, str]) -> str:
    custom_config = json.loads(custom_config_json)
    fields = {field.name for field in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(training) - fields)
    if unknown:
        raise ValueError(f"unknown training field(s) {unknown}; known: {sorted(fields)}")
    fields_given = {key: _json_or_text(value) for key, value in training.items()}
    try:
        changed = TrainingConfig(**{**custom_config["training"], **fields_given})
    except TypeError as error:
        raise ValueError(f"training fields {fields_given} have the wrong type: {error}") from error
    compiled_input = custom_config["model_input"]
    needed_input = model_input_key(preprocessing_from_custom_config(custom_config), changed)
    if needed_input != compiled_input:
        raise ValueError(
            f"model {changed.model!r} reads {needed_input!r} but the compiled Transform materialises {compiled_input!r}: "
            "recompile with the new --model"
        )
    return json.dumps({**custom_config, "training": dataclasses.asdict(changed)}, sort_keys=True)


def run_arguments(package: pathlib.Path, params: Mapping[str, str], training: Mapping[str, str]) -> dict[str, Any]:
    """The values a run sets, typed as the compiled spec declares them; ValueError names a bad name or value."""
    spec = load_pipeline_spec(package)
    declared = spec.root.input_definitions.parameters
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"{package} has no runtime parameter(s) {unknown}; it has {sorted(declared)}")
    arguments: dict[str, Any] = {}
    for name, text in params.items():
        try:
            arguments[name] = _PARSERS[declared[name].parameter_type](text)
        except (ValueError, KeyError) as error:
            raise ValueError(f"runtime parameter {name}={text!r} is not a valid {ParameterType.Name(declared[name].parameter_type)}") from error
    if training:
        base = arguments.get(TRAINER_CUSTOM_CONFIG, parameter_defaults(spec)[TRAINER_CUSTOM_CONFIG])
        arguments[TRAINER_CUSTOM_CONFIG] = _with_training_overrides(base, training)
    return arguments


def check_cron(cron: str) -> None:
    """Kubeflow's scheduler reads six fields, seconds first (`0 0 3 * * *` is daily at 03:00)."""
    if len(cron.split()) != 6:
        raise ValueError(f"cron expression {cron!r} must have 6 fields (second minute hour day month weekday)")


def submit(
    client: Any,
    package: pathlib.Path,
    arguments: Mapping[str, Any],
    experiment: str,
    run_name: str,
    cron: str | None = None,
    namespace: str | None = None,
) -> Submitted:
    """Upload the package as a pipeline (or a new version of it), then start one run or a recurring run."""
    if cron:
        check_cron(cron)
    pipeline_name = load_pipeline_spec(package).pipeline_info.name
    version_name = f"{pipeline_name}-{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}"
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=pipeline_name, namespace=namespace).pipeline_id
        (version,) = client.list_pipeline_versions(pipeline_id=pipeline_id).pipeline_versions
        version_id = version.pipeline_version_id
    else:
        version_id = client.upload_pipeline_version(
            str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
        ).pipeline_version_id
    experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
    ids = {"pipeline_id": pipeline_id, "version_id": version_id, "experiment_id": experiment_id}
    if cron:
        recurring = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=run_name,
            cron_expression=cron,
            max_concurrency=1,
            no_catchup=True,
            params=dict(arguments),
            pipeline_id=pipeline_id,
            version_id=version_id,
        )
        return Submitted(**ids, recurring_run_id=recurring.recurring_run_id)
    run = client.run_pipeline(
        experiment_id=experiment_id, job_name=run_name, params=dict(arguments), pipeline_id=pipeline_id, version_id=version_id
    )
    return Submitted(**ids, run_id=run.run_id)
