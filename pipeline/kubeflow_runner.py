"""Compile the pipeline into a Kubeflow Pipelines v2 spec with TFX's KubeflowV2DagRunner.

The graph is the one `create_pipeline(config)` gives the local runner; Kubeflow
adds a container image for every step, a GPU and more memory for the Trainer,
and three runtime parameters a run may set without recompiling:

- `min_minority_share` (float): the data gate's class-balance bound;
- `trainer_custom_config` (JSON string): the Trainer's whole custom_config, i.e.
  every `TrainingConfig` field (epochs, hidden units, batch size, learning rate,
  patience, decision threshold, seed, ...). TFX accepts a RuntimeParameter for
  custom_config only as a whole, not per key;
- `eval_config` (JSON string): the Evaluator's `tfma.EvalConfig`, holding the
  accuracy and ROC-AUC floors and allowed drops. A proto parameter may be a
  string RuntimeParameter; nothing inside a proto can be.

Everything else is fixed at compile time: the Transform's preprocessing and the
model input it materialises (so switching mlp <-> alexnet or the feature variant
needs a recompile), the splits, the schema, the paths and the Beam flags.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
from tfx.utils import json_utils, proto_utils

from pipeline.config import PipelineConfig
from pipeline.evaluation.spec import eval_config
from pipeline.kubeflow_settings import KubeflowSettings
from pipeline.pipeline import RunParameters, create_pipeline

MIN_MINORITY_SHARE = "min_minority_share"
TRAINER_CUSTOM_CONFIG = "trainer_custom_config"
EVAL_CONFIG = "eval_config"
TRAINER_ID = "Trainer"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def trainer_resources(settings: KubeflowSettings) -> ResourceSpec:
    """Limits only: Kubernetes then requests the same amounts, so the Trainer is never squeezed."""
    resources = ResourceSpec(cpu_limit=settings.trainer_cpus, memory_limit=settings.trainer_memory_gb)
    if settings.gpus:
        resources.accelerator.type = settings.gpu_type
        resources.accelerator.count = settings.gpus
    return resources


def runtime_parameters(config: PipelineConfig) -> RunParameters:
    """The run-time knobs, with the config's values as their defaults."""
    return RunParameters(
        min_minority_share=tfx.dsl.experimental.RuntimeParameter(
            name=MIN_MINORITY_SHARE, ptype=float, default=config.gates.min_minority_share
        ),
        trainer_custom_config=tfx.dsl.experimental.RuntimeParameter(
            name=TRAINER_CUSTOM_CONFIG, ptype=str, default=json_utils.dumps(config.trainer_custom_config())
        ),
        eval_config=tfx.dsl.experimental.RuntimeParameter(
            name=EVAL_CONFIG, ptype=str, default=proto_utils.proto_to_json(eval_config(config))
        ),
    )


def compile_pipeline(config: PipelineConfig, settings: KubeflowSettings, output: pathlib.Path) -> pathlib.Path:
    """Write the spec: YAML is the PipelineSpec Kubeflow Pipelines uploads; JSON is a Vertex AI PipelineJob.

    Schema 2.1 (`parameterType`) is what the KFP 2 backend and SDK read. TFX
    keeps the pipeline root and the RuntimeParameter defaults only in a JSON
    job's runtime config (and drops the defaults even there), so both are written
    into the spec itself: a run that sets nothing gets the config's values.
    """
    if output.suffix not in SPEC_SUFFIXES:
        raise ValueError(f"--output {output} must end in .yaml (Kubeflow Pipelines) or .json (Vertex AI PipelineJob)")
    if config.spans > 1:
        raise ValueError(
            f"--spans {config.spans}: training on several spans needs TFX's span-range resolver, which the KFP v2 "
            "compiler of TFX 1.16 does not compile (it takes only latest-artifact and latest-blessed-model resolvers); "
            "a Kubeflow run trains on the newest span"
        )
    parameters = runtime_parameters(config)
    pipeline = create_pipeline(config, run_parameters=parameters, pipeline_root=settings.pipeline_root)
    (trainer,) = [component for component in pipeline.components if component.id == TRAINER_ID]
    trainer.with_platform_config(trainer_resources(settings))
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=settings.image, use_pipeline_spec_2_1=True)
    )
    job = runner.run(pipeline, write_out=False)
    job["pipelineSpec"]["defaultPipelineRoot"] = settings.pipeline_root
    # The reference task's graph takes none of the classifier's runtime parameters.
    inputs = job["pipelineSpec"]["root"].get("inputDefinitions", {}).get("parameters", {})
    for field in dataclasses.fields(parameters):
        parameter = getattr(parameters, field.name)
        if parameter.name in inputs:
            inputs[parameter.name].update(defaultValue=parameter.default, isOptional=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w") as file:
        if output.suffix == ".json":
            json.dump(job, file, indent=1, sort_keys=True)
        else:
            yaml.safe_dump(job["pipelineSpec"], file, sort_keys=True)
    return output


def load_pipeline_spec(path: pathlib.Path) -> pipeline_spec_pb2.PipelineSpec:
    """Parse a compiled spec with KFP's own proto, whichever of the two formats it is in."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read pipeline spec {path}: {error.strerror}") from error
    if path.suffix == ".json":
        document = json.loads(text).get("pipelineSpec")
    else:
        document = next(yaml.safe_load_all(text), None)
    if not isinstance(document, dict):
        raise ValueError(f"{path} holds no KFP pipeline spec")
    return json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())


def parameter_defaults(spec: pipeline_spec_pb2.PipelineSpec) -> dict[str, Any]:
    """Every runtime parameter of the compiled pipeline with the default a run gets unless it sets one."""
    return {
        name: json_format.MessageToDict(definition.default_value)
        for name, definition in spec.root.input_definitions.parameters.items()
    }
