"""`leather kubeflow compile|submit`: the KFP v2 spec, its runtime parameters, and the calls to the kfp client.

The spec is compiled once, by the real command in a child process that records
every file it opens for writing (a Python audit hook) and runs with its own
working, temporary and home directories, so the test can tell exactly where
compiling writes.
"""
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import kfp
import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.utils import json_utils, proto_utils

from cli.main import main
from models.epoch_progress import VERBOSE_ENV
from models.spec import TrainingConfig, training_from_custom_config
from pipeline.config import GateConfig, PipelineConfig
from pipeline.evaluation.spec import eval_config
from pipeline.kubeflow_runner import EVAL_CONFIG, MIN_MINORITY_SHARE, TRAINER_CUSTOM_CONFIG, compile_pipeline
from pipeline.kubeflow_settings import IMAGE_SCHEMA_PATH, KubeflowSettings, beam_args
from pipeline.kubeflow_submit import run_arguments
from pipeline.pipeline import create_components

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
IMAGE = "registry.example/leather-inspection:0.1.0"
DATA_DIR = "gs://leather-bucket/tfrecords"
BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0")
CONFIG_FLAGS = ["--epochs", "7", "--hidden-units", "20", "--min-minority-share", "0.2", "--min-accuracy", "0.7"]
TRAINER_FLAGS = ["--gpus", "2", "--gpu-type", "nvidia.com/gpu", "--trainer-memory", "24"]

_RECORD_WRITES = """
import json, os, sys

written = []

def record(event, args):
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing and isinstance(path, (str, bytes, os.PathLike)):
            written.append(os.fsdecode(path))
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.symlink", "shutil.copyfile", "shutil.rmtree"):
        written.append(os.fsdecode(args[-2] if event in ("os.rename", "os.replace", "shutil.copyfile") else args[0]))

sys.addaudithook(record)
from cli.main import main
code = main(sys.argv[1:])
recorded = list(written)
with open(os.environ["WRITES_LOG"], "w") as log:
    json.dump(recorded, log)
sys.exit(code)
"""


def _tree(root: pathlib.Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _repo_entries() -> set[str]:
    """Untracked and ignored repository paths; bytecode caches are left out (PYTHONDONTWRITEBYTECODE is set anyway)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return {line[3:] for line in status.splitlines() if line[:2] in ("??", "!!") and "__pycache__" not in line}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """The YAML spec written by `leather kubeflow compile`, and what the run wrote where."""
    work = tmp_path_factory.mktemp("kubeflow")
    cwd, tmp, home = work / "cwd", work / "tmp", work / "home"
    for folder in (cwd, tmp, home):
        folder.mkdir()
    output = work / "out" / "pipeline.yaml"
    pipeline_root = work / "pvc" / "pipeline_root"
    writes_log = work / "writes.json"
    env = {
        **os.environ,
        "TMPDIR": str(tmp), "HOME": str(home), "WRITES_LOG": str(writes_log),
        "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO_ROOT),
    }
    repo_before = _repo_entries()
    result = subprocess.run(
        [sys.executable, "-c", _RECORD_WRITES, "kubeflow", "compile", "--output", str(output),
         "--pipeline-root", str(pipeline_root), "--image", IMAGE, "--data-dir", DATA_DIR,
         *TRAINER_FLAGS, *CONFIG_FLAGS],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {
        "output": output,
        "pipeline_root": pipeline_root,
        "tmp": tmp,
        "home_caches": (home / ".keras", home / ".cache", home / ".config"),
        "stdout": result.stdout,
        "writes": json.loads(writes_log.read_text()),
        "new_in_repo": _repo_entries() - repo_before,
        "left_in": {name: _tree(folder) for name, folder in (("cwd", cwd), ("tmp", tmp), ("home", home))},
    }


@pytest.fixture(scope="module")
def spec(compiled) -> pipeline_spec_pb2.PipelineSpec:
    """Parsed strictly (unknown fields fail) with KFP's own PipelineSpec proto."""
    return json_format.ParseDict(yaml.safe_load(compiled["output"].read_text()), pipeline_spec_pb2.PipelineSpec())


@pytest.fixture(scope="module")
def config(compiled) -> PipelineConfig:
    """The config the command line above stands for."""
    return PipelineConfig(
        data_dir=DATA_DIR,
        workdir=str(compiled["pipeline_root"]),
        training=TrainingConfig(epochs=7, hidden_units=20),
        gates=GateConfig(min_minority_share=0.2, min_accuracy=0.7),
    )


def _container(spec: pipeline_spec_pb2.PipelineSpec, task: str):
    executor_label = spec.components[spec.root.dag.tasks[task].component_ref.name].executor_label
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    return executors[executor_label]["container"]


def test_compile_writes_only_the_output(compiled):
    """Besides the output, only throw-away temporary files (gone afterwards) and the library caches that
    importing Keras and matplotlib puts in any home directory: ~/.keras/keras.json, ~/.cache and ~/.config/matplotlib."""
    assert compiled["output"].is_file()
    allowed = (compiled["output"].parent, compiled["pipeline_root"], compiled["tmp"], *compiled["home_caches"])
    outside = [path for path in compiled["writes"]
               if not path.startswith("/dev/") and not any(pathlib.Path(path).is_relative_to(root) for root in allowed)]
    assert outside == []
    assert str(compiled["output"]) in compiled["writes"]
    assert compiled["new_in_repo"] == set()
    assert compiled["left_in"]["cwd"] == set()
    assert compiled["left_in"]["tmp"] == set()
    assert {entry.split("/")[0] for entry in compiled["left_in"]["home"]} <= {".keras", ".cache", ".config"}
    assert f"wrote {compiled['output']}" in compiled["stdout"]


def test_spec_lists_every_component_with_the_image(spec, config):
    tasks = set(spec.root.dag.tasks)
    for node in create_components(config):
        # A Resolver compiles into one resolver task per input channel, named after it.
        assert node.id in tasks or any(task.startswith(f"{node.id}-") for task in tasks), node.id
    assert len(tasks) == 13
    containers = {task: _container(spec, task) for task in tasks if "resolver" not in task}
    assert len(containers) == 11
    assert {container["image"] for container in containers.values()} == {IMAGE}
    assert spec.pipeline_info.name == config.pipeline_name
    assert spec.schema_version == "2.1.0"


def test_trainer_alone_asks_for_gpus_and_memory(spec):
    resources = {task: _container(spec, task).get("resources") for task in spec.root.dag.tasks if "resolver" not in task}
    assert resources.pop("Trainer") == {
        "accelerator": {"type": "nvidia.com/gpu", "count": "2"}, "cpuLimit": 4.0, "memoryLimit": 24.0,
    }
    assert set(resources.values()) == {None}


def test_beam_steps_get_the_beam_flags(spec):
    for task in ("ImportExampleGen", "StatisticsGen", "Transform", "ColourVariants", "Evaluator"):
        args = _container(spec, task)["args"]
        assert args[-len(BEAM_ARGS):] == list(BEAM_ARGS), task


def test_paths_are_the_given_ones(spec, compiled):
    root = str(compiled["pipeline_root"])
    assert spec.default_pipeline_root == root
    constants = {name: value.runtime_value.constant.string_value
                 for task in spec.root.dag.tasks.values() for name, value in task.inputs.parameters.items()}
    assert constants["input_base"] == DATA_DIR
    assert constants["data_dir"] == DATA_DIR, "SpanDrift reads the span before the newest from the same folder"
    input_config = json.loads(constants["input_config"])
    assert input_config["splits"][0]["pattern"] == "span-{SPAN}/data-*.tfrecord", "a scheduled run takes the newest span"
    assert constants["schema_file"] == IMAGE_SCHEMA_PATH
    assert json.loads(constants["push_destination"]) == {"filesystem": {"base_directory": f"{root}/serving"}}


def test_runtime_parameters_carry_the_config_as_defaults(spec, config):
    declared = spec.root.input_definitions.parameters
    assert set(declared) == {MIN_MINORITY_SHARE, TRAINER_CUSTOM_CONFIG, EVAL_CONFIG}
    assert declared[MIN_MINORITY_SHARE].default_value.number_value == pytest.approx(0.2)
    custom_config = json.loads(declared[TRAINER_CUSTOM_CONFIG].default_value.string_value)
    assert custom_config == json.loads(json.dumps(config.trainer_custom_config()))
    assert training_from_custom_config(custom_config) == TrainingConfig(epochs=7, hidden_units=20)
    compiled_eval = proto_utils.json_to_proto(declared[EVAL_CONFIG].default_value.string_value, type(eval_config(config))())
    assert compiled_eval == eval_config(config)
    consumers = {(task_name, name): value.component_input_parameter
                 for task_name, task in spec.root.dag.tasks.items()
                 for name, value in task.inputs.parameters.items() if value.component_input_parameter}
    assert consumers == {
        ("DataGate", "min_minority_share"): MIN_MINORITY_SHARE,
        ("Trainer", "custom_config"): TRAINER_CUSTOM_CONFIG,
        ("Evaluator", "eval_config"): EVAL_CONFIG,
    }


def _as_executor_sees_it(spec: pipeline_spec_pb2.PipelineSpec, task: str, name: str, value) -> object:
    """What TFX's container entrypoint hands the executor when KFP resolves `name` to `value`."""
    args = _container(spec, task)["args"]
    inputs_spec = json_format.Parse(args[args.index("--json_serialized_inputs_spec_args") + 1], pipeline_spec_pb2.ComponentInputsSpec())
    executor_input = pipeline_spec_pb2.ExecutorInput()
    executor_input.inputs.parameter_values[name].CopyFrom(json_format.ParseDict(value, struct_pb2.Value()))
    properties = kubeflow_v2_entrypoint_utils.parse_execution_properties(
        executor_input.inputs.parameter_values, executor_input.inputs.parameters, inputs_spec
    )
    return properties[name]


def test_run_values_round_trip_to_what_the_executors_read(compiled, spec, config):
    stricter = eval_config(dataclasses.replace(config, gates=GateConfig(min_accuracy=0.8, min_auc=0.9)))
    arguments = run_arguments(
        compiled["output"],
        {MIN_MINORITY_SHARE: "0.05", EVAL_CONFIG: proto_utils.proto_to_json(stricter)},
        {"epochs": "20", "learning_rate": "0.0005", "sampling": "natural"},
    )
    assert set(arguments) == {MIN_MINORITY_SHARE, TRAINER_CUSTOM_CONFIG, EVAL_CONFIG}
    evaluator_json = _as_executor_sees_it(spec, "Evaluator", "eval_config", arguments[EVAL_CONFIG])
    assert proto_utils.json_to_proto(evaluator_json, type(stricter)()) == stricter
    assert _as_executor_sees_it(spec, "DataGate", "min_minority_share", arguments[MIN_MINORITY_SHARE]) == 0.05
    trainer_json = _as_executor_sees_it(spec, "Trainer", "custom_config", arguments[TRAINER_CUSTOM_CONFIG])
    custom_config = json_utils.loads(trainer_json)
    assert training_from_custom_config(custom_config) == TrainingConfig(epochs=20, hidden_units=20, learning_rate=0.0005)
    assert custom_config["model_input"] == "cnn_image"


@pytest.mark.parametrize(
    ("params", "training", "message"),
    [
        ({"epochs": "3"}, {}, "has no runtime parameter"),
        ({MIN_MINORITY_SHARE: "a lot"}, {}, "not a valid NUMBER_DOUBLE"),
        ({}, {"epoch": "3"}, "unknown training field"),
        ({}, {"epochs": "0"}, "must be positive"),
        ({}, {"epochs": "many"}, "wrong type"),
        ({}, {"model": "mlp"}, "recompile with the new --model"),
    ],
)
def test_run_arguments_refuse_what_a_run_cannot_change(compiled, params, training, message):
    with pytest.raises(ValueError, match=message):
        run_arguments(compiled["output"], params, training)


def test_json_spec_is_a_vertex_pipeline_job_with_the_same_defaults(tmp_path, config):
    output = compile_pipeline(config, KubeflowSettings(image=IMAGE, pipeline_root="gs://leather-bucket/root"), tmp_path / "job.json")
    job = json_format.ParseDict(json.loads(output.read_text()), pipeline_spec_pb2.PipelineJob())
    assert job.runtime_config.gcs_output_directory == "gs://leather-bucket/root"
    parameters = job.pipeline_spec["root"]["inputDefinitions"]["parameters"]
    assert parameters[MIN_MINORITY_SHARE]["defaultValue"] == pytest.approx(0.2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["job.json"]


def test_several_spans_are_refused_with_the_reason(tmp_path, config):
    with pytest.raises(ValueError, match="--spans 3: .*KFP v2 compiler of TFX 1.16 does not compile"):
        compile_pipeline(dataclasses.replace(config, spans=3), KubeflowSettings(image=IMAGE, pipeline_root="gs://b/r"), tmp_path / "p.yaml")
    assert not list(tmp_path.iterdir())


def test_the_image_keeps_keras_epoch_lines_in_the_trainer_pod_log_outside_its_cache_key():
    """A pod's log is all a Kubeflow run leaves; no `leather run --verbose` sets LEATHER_VERBOSE there."""
    dockerfile = (REPO_ROOT / "kubeflow" / "Dockerfile").read_text()
    environment = re.search(r"^ENV (.*?)(?<!\\)$", dockerfile, re.MULTILINE | re.DOTALL).group(1).split()
    assert f"{VERBOSE_ENV}=1" in environment
    assert VERBOSE_ENV not in json.dumps(PipelineConfig(data_dir="d", workdir="w").trainer_custom_config())


def test_beam_presets_name_what_the_cluster_needs():
    assert beam_args("dataflow", ("--project=p", "--region=europe-west4", "--temp_location=gs://b/tmp"), IMAGE)[:3] == (
        "--runner=DataflowRunner", f"--sdk_container_image={IMAGE}", "--sdk_location=container",
    )
    assert beam_args("direct", ("--direct_num_workers=4",), IMAGE)[-1] == "--direct_num_workers=4"
    with pytest.raises(ValueError, match="--beam-arg=--flink_master="):
        beam_args("flink", (), IMAGE)
    with pytest.raises(ValueError, match="--project=.*--region=.*--temp_location="):
        beam_args("dataflow", (), IMAGE)


class FakeClient:
    """Stands in for kfp.Client: records each call and answers with the ids a KFP 2 server would."""

    calls: list[tuple[str, dict]] = []
    existing_pipeline_id: str | None = None

    def __init__(self, **kwargs):
        self._record("__init__", **kwargs)

    def _record(self, method: str, **kwargs):
        FakeClient.calls.append((method, kwargs))

    def get_pipeline_id(self, name):
        self._record("get_pipeline_id", name=name)
        return FakeClient.existing_pipeline_id

    def upload_pipeline(self, pipeline_package_path, pipeline_name=None, namespace=None):
        self._record("upload_pipeline", pipeline_package_path=pipeline_package_path, pipeline_name=pipeline_name, namespace=namespace)
        return kfp.client.client.kfp_server_api.V2beta1Pipeline(pipeline_id="pipeline-1")

    def list_pipeline_versions(self, pipeline_id):
        self._record("list_pipeline_versions", pipeline_id=pipeline_id)
        version = kfp.client.client.kfp_server_api.V2beta1PipelineVersion(pipeline_version_id="version-1")
        return kfp.client.client.kfp_server_api.V2beta1ListPipelineVersionsResponse(pipeline_versions=[version])

    def upload_pipeline_version(self, pipeline_package_path, pipeline_version_name, pipeline_id):
        self._record("upload_pipeline_version", pipeline_package_path=pipeline_package_path,
                     pipeline_version_name=pipeline_version_name, pipeline_id=pipeline_id)
        return kfp.client.client.kfp_server_api.V2beta1PipelineVersion(pipeline_version_id="version-2")

    def create_experiment(self, name, namespace=None):
        self._record("create_experiment", name=name, namespace=namespace)
        return kfp.client.client.kfp_server_api.V2beta1Experiment(experiment_id="experiment-1")

    def run_pipeline(self, **kwargs):
        self._record("run_pipeline", **kwargs)
        return kfp.client.client.kfp_server_api.V2beta1Run(run_id="run-1")

    def create_recurring_run(self, **kwargs):
        self._record("create_recurring_run", **kwargs)
        return kfp.client.client.kfp_server_api.V2beta1RecurringRun(recurring_run_id="recurring-1")


@pytest.fixture
def fake_client(monkeypatch):
    FakeClient.calls = []
    FakeClient.existing_pipeline_id = None
    monkeypatch.setattr(kfp, "Client", FakeClient)
    return FakeClient


def test_submit_uploads_and_starts_a_run(compiled, fake_client, capsys):
    package = str(compiled["output"])
    code = main(["kubeflow", "submit", package, "--host", "http://localhost:8080",
                 "--param", "min_minority_share=0.15", "--training", "epochs=30"])
    assert code == 0
    names = [name for name, _ in fake_client.calls]
    assert names == ["__init__", "get_pipeline_id", "upload_pipeline", "list_pipeline_versions", "create_experiment", "run_pipeline"]
    calls = dict(fake_client.calls)
    assert calls["__init__"] == {"host": "http://localhost:8080"}
    assert calls["upload_pipeline"] == {"pipeline_package_path": package, "pipeline_name": "leather-inspection", "namespace": None}
    run = calls["run_pipeline"]
    assert (run["experiment_id"], run["pipeline_id"], run["version_id"], run["job_name"]) == (
        "experiment-1", "pipeline-1", "version-1", "leather-inspection")
    assert set(run["params"]) == {MIN_MINORITY_SHARE, TRAINER_CUSTOM_CONFIG}
    assert run["params"][MIN_MINORITY_SHARE] == 0.15
    assert training_from_custom_config(json.loads(run["params"][TRAINER_CUSTOM_CONFIG])).epochs == 30
    assert "run run-1" in capsys.readouterr().out


def test_submit_with_cron_adds_a_version_and_schedules(compiled, fake_client):
    fake_client.existing_pipeline_id = "pipeline-7"
    code = main(["kubeflow", "submit", str(compiled["output"]), "--host", "http://kfp", "--namespace", "team",
                 "--experiment", "nightly", "--cron", "0 0 3 * * *"])
    assert code == 0
    calls = dict(fake_client.calls)
    assert "upload_pipeline" not in calls and "run_pipeline" not in calls
    assert calls["upload_pipeline_version"]["pipeline_id"] == "pipeline-7"
    assert calls["upload_pipeline_version"]["pipeline_version_name"].startswith("leather-inspection-")
    assert calls["create_experiment"] == {"name": "nightly", "namespace": "team"}
    recurring = calls["create_recurring_run"]
    assert recurring == {
        "experiment_id": "experiment-1", "job_name": "leather-inspection", "cron_expression": "0 0 3 * * *",
        "max_concurrency": 1, "no_catchup": True, "params": {}, "pipeline_id": "pipeline-7", "version_id": "version-2",
    }


def test_submit_refuses_a_json_spec_and_a_five_field_cron(compiled, fake_client, capsys):
    assert main(["kubeflow", "submit", "job.json", "--host", "http://kfp"]) == 1
    assert main(["kubeflow", "submit", str(compiled["output"]), "--host", "http://kfp", "--cron", "0 3 * * *"]) == 1
    assert "6 fields" in capsys.readouterr().err
    assert [name for name, _ in fake_client.calls] == ["__init__"]
