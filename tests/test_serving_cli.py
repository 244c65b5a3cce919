"""`leather classify` and `leather serve` as commands, and the production TF Serving manifest."""
import json
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
import yaml

from cli import main as leather
from models.warmup import WARMUP_BATCH_SIZES
from serving.batching_parameters import DEFAULT_BATCHING, read_batching_parameters
from serving.metrics import METRICS_PATH

from serving_support import (
    REPO_ROOT,
    free_port,
    predict_request,
    predictions_stub,
    wait_for_versions,
)

pytest_plugins = ["serving_fixtures"]

CONFIG_MOUNT = "/etc/leather-serving"


def _classify_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = leather.main(["classify", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_classify_command_prints_table_and_json(tmp_path, push, serve, reference, images, image_files, capsys):
    push(tmp_path / "models", 1)
    server = serve(tmp_path / "models")
    wait_for_versions(server, (1,))
    address = f"127.0.0.1:{server.port}"
    files = [str(path) for path in image_files]
    expected = reference(1, "predict_image", [path.read_bytes() for path in image_files])
    expected_labels = ["defective" if label == 1 else "clean" for label in expected["label"]]

    table_code, table, _ = _classify_cli(capsys, "--server", address, "--batch-size", "3", *files)
    json_code, listing, _ = _classify_cli(capsys, "--server", address, "--json", *files)
    example_code, example_listing, _ = _classify_cli(
        capsys, "--server", address, "--json", "--signature", "serving_default", *files
    )

    assert (table_code, json_code, example_code) == (0, 0, 0)
    rows = [line.rsplit(maxsplit=2) for line in table.splitlines()]
    assert [row[0] for row in rows] == files
    assert [row[1] for row in rows] == [f"{p:.4f}" for p in expected["probability"]]
    assert [row[2] for row in rows] == expected_labels
    for output in (listing, example_listing):
        parsed = json.loads(output)
        assert [entry["file"] for entry in parsed] == files
        assert [entry["probability"] for entry in parsed] == [float(p) for p in expected["probability"]]
        assert [entry["label"] for entry in parsed] == expected_labels
        assert {entry["model_version"] for entry in parsed} == {1}


def test_classify_command_names_a_missing_image(tmp_path, image_files, capsys):
    missing = tmp_path / "photos" / "missing.png"

    code, out, err = _classify_cli(capsys, "--server", "127.0.0.1:1", str(image_files[0]), str(missing))

    assert code == 1 and out == ""
    assert f"cannot read image {missing}" in err and "No such file" in err


def test_classify_command_reports_a_server_that_is_down(image_files, capsys):
    port = free_port()
    code, out, err = _classify_cli(capsys, "--server", f"127.0.0.1:{port}", "--timeout", "5", str(image_files[0]))

    assert code == 1 and out == ""
    assert "UNAVAILABLE" in err and "Traceback" not in err
    assert err.rstrip("\n").endswith(f"; is leather serve running on 127.0.0.1:{port}?") and err.count("\n") == 1


def _lines(stream) -> queue.Queue:
    """Lines of a subprocess stream, read by a thread so waiting for one can time out."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue, pattern: str, seen: list[str], timeout: float = 60.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def test_serve_command_announces_versions_and_stops_on_sigterm(tmp_path, push, images):
    push(tmp_path, 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--model-dir", str(tmp_path), "--host", "127.0.0.1",
         "--port", "0", "--rest-port", "0", "--poll-seconds", "0.2"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines, seen = _lines(process.stdout), []
        port = _wait_for_line(lines, r"listening on 127\.0\.0\.1:(\d+) for model 'leather'", seen).group(1)
        rest_url = _wait_for_line(lines, r"REST API for model 'leather' on (http://\S+)", seen).group(1)
        _wait_for_line(lines, rf"serving model 'leather' version 1 on 127\.0\.0\.1:{port}", seen)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = predictions_stub(channel).Predict(predict_request([images["dark.png"]]), timeout=10)
        with urllib.request.urlopen(rest_url, timeout=10) as answer:
            rest_status = json.load(answer)
        push(tmp_path, 2)
        _wait_for_line(lines, rf"serving model 'leather' version 2 on 127\.0\.0\.1:{port}", seen)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        _wait_for_line(lines, "stopped serving model 'leather'", seen, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert response.model_spec.version.value == 1
    assert rest_status["model_version_status"][0]["state"] == "AVAILABLE"


def test_serve_command_rejects_a_missing_model_dir(tmp_path, capsys):
    assert leather.main(["serve", "--model-dir", str(tmp_path / "nowhere")]) == 1
    assert f"model directory {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err


def test_cli_module_does_not_import_tensorflow():
    probe = "import sys, cli.serving; print('tensorflow' in sys.modules, 'grpc' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_kubernetes_manifest_serves_the_pushed_model_with_tf_serving():
    text = (REPO_ROOT / "kubeflow" / "serving.yaml").read_text()
    documents = {document["kind"]: document for document in yaml.safe_load_all(text) if document}
    deployment, service = documents["Deployment"], documents["Service"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]

    assert re.fullmatch(r"tensorflow/serving:2\.16\.\d+", container["image"])
    assert {"name": "MODEL_NAME", "value": "leather"} in container["env"]
    assert {port["containerPort"] for port in container["ports"]} == {8500, 8501}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert set(mounts) == {"/models/leather", CONFIG_MOUNT}, "the pushed models and the serving config, nothing else"
    mount = mounts["/models/leather"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"]
    assert text.count("claimName") == 1, "the claim name must be set in one place"
    readiness = container["readinessProbe"]["httpGet"]
    assert (readiness["path"], readiness["port"]) == ("/v1/models/leather", 8501)
    assert container["livenessProbe"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert {port["port"] for port in service["spec"]["ports"]} == {8500, 8501}


def test_production_turns_on_warmup_batching_and_monitoring_with_the_files_leather_serve_reads():
    kubeflow = REPO_ROOT / "kubeflow"
    (generator,) = yaml.safe_load((kubeflow / "kustomization.yaml").read_text())["configMapGenerator"]
    files = {pathlib.PurePath(name).name: kubeflow / name for name in generator["files"]}
    documents = {d["kind"]: d for d in yaml.safe_load_all((kubeflow / "serving.yaml").read_text()) if d}
    pod = documents["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == CONFIG_MOUNT]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])

    assert volume["configMap"]["name"] == generator["name"]
    assert flags == {
        "enable_model_warmup": "true",
        "enable_batching": "true",
        "batching_parameters_file": f"{CONFIG_MOUNT}/batching_parameters.txt",
        "monitoring_config_file": f"{CONFIG_MOUNT}/monitoring.config",
    }
    assert set(files) == {"batching_parameters.txt", "monitoring.config"}
    batching = read_batching_parameters(files["batching_parameters.txt"])
    assert batching == DEFAULT_BATCHING, "leather serve's default batching is production's"
    assert batching.max_batch_size >= max(WARMUP_BATCH_SIZES), "leather inspect's 32-photo requests must fit"
    assert {size for size in WARMUP_BATCH_SIZES if size <= batching.max_batch_size} >= {1, *batching.allowed_batch_sizes}
    assert f'path: "{METRICS_PATH}"' in files["monitoring.config"].read_text()
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == METRICS_PATH


def test_warmup_covers_the_batch_sizes_the_clients_send_by_default():
    commands = leather.build_parser()._subparsers._group_actions[0].choices
    defaults = {commands[name].get_default("batch_size") for name in ("classify", "inspect")}

    assert defaults <= set(WARMUP_BATCH_SIZES) and 1 in WARMUP_BATCH_SIZES
