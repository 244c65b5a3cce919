"""Several models from one model config file, each served by its name: routing, labels, reloads, mistakes, metrics.

`leather` serves the toy model's version 1 and `brown-calf` the toy's version-3
weights as its version 7, so an answer tells by its numbers and its version
which model gave it.
"""
import base64
import json
import os
import pathlib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from cli import main as leather
from serving.model_config import read_model_configs, served_models
from serving.rest import RestFront
from serving.server import ServingServer

from serving_support import POLL_SECONDS, predict_request, predictions_stub, served_answer, wait_for

pytest_plugins = ["serving_fixtures"]

CALF = "brown-calf"


def _entry(name: str, base_path: pathlib.Path, extra: str = "") -> str:
    return f'config {{ name: "{name}" base_path: "{base_path}" model_platform: "tensorflow" {extra} }}'


def _write(path: pathlib.Path, *entries: str) -> pathlib.Path:
    path.write_text("model_config_list {\n  " + "\n  ".join(entries) + "\n}\n")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)  # a new modification time even on coarse clocks
    return path


@pytest.fixture
def two_models(
    tmp_path: pathlib.Path, push: Callable[..., pathlib.Path]
) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """The model config file and the base paths of `leather` (version 1) and `brown-calf` (version 7, toy 3)."""
    leather_dir, calf_dir = tmp_path / "leather", tmp_path / CALF
    push(leather_dir, 1)
    push(calf_dir, 7, source_version=3)
    calf_labels = 'version_labels { key: "stable" value: 7 }'
    config = _write(tmp_path / "models.config", _entry("leather", leather_dir), _entry(CALF, calf_dir, calf_labels))
    return config, leather_dir, calf_dir


@pytest.fixture
def serve_file() -> Iterator[Callable[[pathlib.Path], ServingServer]]:
    """Starts ServingServers of a model config file alone on 127.0.0.1:<free port>; stops them after the test."""
    servers = []

    def start(config: pathlib.Path, **options: object) -> ServingServer:
        server = ServingServer(
            None, host="127.0.0.1", port=0, poll_seconds=POLL_SECONDS, model_config_file=config, **options
        )
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(grace=1.0)


def _wait_loaded(server: ServingServer, **versions: tuple[int, ...]) -> None:
    def loaded() -> bool:
        models = server.models
        return all(name in models and models[name].store.loaded_versions() == want for name, want in versions.items())

    wait_for(loaded, f"loaded versions {versions}")


def _status(name: str) -> get_model_status_pb2.GetModelStatusRequest:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return request


def test_each_name_answers_with_its_own_model_over_grpc_and_rest(
    two_models, serve_file, connect, reference, images
):
    config, _, _ = two_models
    server = serve_file(config)
    _wait_loaded(server, leather=(1,), **{CALF: (7,)})
    channel = connect(server)
    photo = [images["gradient.png"]]
    rest = RestFront(server.api, "127.0.0.1", 0, server.metrics)
    rest.start()
    try:
        instance = {"b64": base64.b64encode(photo[0]).decode()}
        body = json.dumps({"signature_name": "predict_image", "instances": [instance]})
        url = f"http://127.0.0.1:{rest.port}/v1/models/{CALF}:predict"
        over_rest = json.load(urllib.request.urlopen(urllib.request.Request(url, data=body.encode()), timeout=10))
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{rest.port}/monitoring/prometheus/metrics", timeout=10).read().decode()
    finally:
        rest.stop()
    answers = {name: predictions_stub(channel).Predict(predict_request(photo, name=name), timeout=10)
               for name in ("leather", CALF)}
    statuses = {name: model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(_status(name), timeout=10)
                for name in ("leather", CALF)}

    assert answers["leather"].model_spec.name == "leather" and answers["leather"].model_spec.version.value == 1
    assert answers[CALF].model_spec.name == CALF and answers[CALF].model_spec.version.value == 7
    np.testing.assert_array_equal(served_answer(answers["leather"])["probability"],
                                  reference(1, "predict_image", photo)["probability"])
    np.testing.assert_array_equal(served_answer(answers[CALF])["probability"],
                                  reference(3, "predict_image", photo)["probability"])
    assert over_rest["predictions"][0]["probability"] == pytest.approx(
        float(reference(3, "predict_image", photo)["probability"][0]), rel=1e-6)
    assert [s.version for s in statuses["leather"].model_version_status] == [1]
    assert [s.version for s in statuses[CALF].model_version_status] == [7]
    assert 'leather_serving_loaded_version{model_name="brown-calf",version="7"} 1.0' in metrics
    assert 'leather_serving_loaded_version{model_name="leather",version="1"} 1.0' in metrics
    assert ':tensorflow:serving:request_count{model_name="brown-calf",status="OK"} 1.0' in metrics


def test_an_unknown_name_is_not_found_listing_the_served_names(two_models, serve_file, connect, images):
    config, _, _ = two_models
    server = serve_file(config)
    _wait_loaded(server, leather=(1,), **{CALF: (7,)})
    channel = connect(server)

    with pytest.raises(grpc.RpcError) as predicted:
        predictions_stub(channel).Predict(predict_request([images["dark.png"]], name="wallet"), timeout=10)
    with pytest.raises(grpc.RpcError) as status:
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(_status("wallet"), timeout=10)
    rest = RestFront(server.api, "127.0.0.1", 0)
    rest.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as over_rest:
            urllib.request.urlopen(f"http://127.0.0.1:{rest.port}/v1/models/wallet", timeout=10)
    finally:
        rest.stop()

    assert predicted.value.code() == status.value.code() == grpc.StatusCode.NOT_FOUND
    assert predicted.value.details() == (
        "Servable not found for request: Latest(wallet); this server serves models 'brown-calf', 'leather'"
    )
    assert status.value.details() == (
        "Could not find any versions of model wallet; this server serves models 'brown-calf', 'leather'"
    )
    assert over_rest.value.code == 404
    assert "this server serves models 'brown-calf', 'leather'" in json.load(over_rest.value)["error"]


def test_labels_of_one_model_are_not_the_others_and_move_on_their_own(
    tmp_path, two_models, serve_file, connect, push, images
):
    config, leather_dir, calf_dir = two_models
    push(calf_dir, 8, source_version=2)
    server = serve_file(config)
    _wait_loaded(server, leather=(1,), **{CALF: (8,)})
    stub = predictions_stub(connect(server))

    def by_label(name: str, label: str):
        request = predict_request([images["dark.png"]], name=name)
        request.model_spec.version_label = label
        return stub.Predict(request, timeout=10)

    with pytest.raises(grpc.RpcError) as refused:
        by_label("leather", "stable")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "Unrecognized servable version label: stable; model 'leather' defines no labels"

    both = 'model_version_policy { specific { versions: 7 versions: 8 } } version_labels { key: "stable" value: 8 }'
    _write(config, _entry("leather", leather_dir), _entry(CALF, calf_dir, both))
    wait_for(lambda: server.models[CALF].api.labels.get("stable") == 8, "brown-calf's stable to move to 8")
    _wait_loaded(server, **{CALF: (8, 7)})

    assert by_label(CALF, "stable").model_spec.version.value == 8
    assert dict(server.models["leather"].api.labels) == {}
    assert server.models["leather"].store.loaded_versions() == (1,)


def test_models_are_added_and_removed_as_the_file_changes(
    tmp_path, two_models, serve_file, connect, push, images, caplog
):
    config, leather_dir, calf_dir = two_models
    server = serve_file(config)
    _wait_loaded(server, leather=(1,), **{CALF: (7,)})
    stub = predictions_stub(connect(server))
    suede_dir = tmp_path / "suede"
    push(suede_dir, 2)

    _write(config, _entry("leather", leather_dir), _entry("suede", suede_dir))
    _wait_loaded(server, leather=(1,), suede=(2,))
    with pytest.raises(grpc.RpcError) as removed:
        stub.Predict(predict_request([images["dark.png"]], name=CALF), timeout=10)
    assert removed.value.code() == grpc.StatusCode.NOT_FOUND
    assert "this server serves models 'leather', 'suede'" in removed.value.details()
    assert stub.Predict(predict_request([images["dark.png"]], name="suede"), timeout=10).model_spec.version.value == 2

    push(tmp_path / "elsewhere", 1)
    _write(config, _entry("leather", tmp_path / "elsewhere"), _entry("suede", suede_dir))
    wait_for(lambda: "keeping the previous model config" in caplog.text, "the moved base_path to be refused")
    assert f"model config file {config}, model 'leather': base_path changed from {leather_dir}" in caplog.text
    assert set(server.models) == {"leather", "suede"}


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        (lambda d: [_entry("leather", d), _entry("leather", d)], "lists model 'leather' twice"),
        (lambda d: [_entry("leather", d), 'config { name: "suede" }'], "model 'suede': no base_path"),
        (lambda d: [_entry("leather", d), _entry("suede", d / "nowhere")], "model 'suede': base_path"),
        (lambda d: [f'config {{ name: "leather" base_path: "{d}" model_platform: "onnx" }}'],
         "model 'leather': model_platform must be"),
        (lambda d: [_entry("leather", d), _entry("brown calf", d)], "model 'brown calf': not a valid model name"),
    ],
)
def test_a_mistaken_file_is_refused_naming_the_file_and_the_entry(tmp_path, entries, fragment):
    config = _write(tmp_path / "models.config", *entries(tmp_path))

    with pytest.raises(ValueError) as refused:
        ServingServer(None, model_config_file=config, host="127.0.0.1", port=0)

    assert str(config) in str(refused.value) and fragment in str(refused.value)


def test_serve_refuses_a_duplicate_name_and_one_model_flags_beside_several_models(tmp_path, two_models, capsys):
    config, leather_dir, _ = two_models

    assert leather.main(["serve", "--model-config-file", str(config), "--model-dir", str(leather_dir)]) == 1
    assert "lists 2 models ('leather', 'brown-calf')" in capsys.readouterr().err
    assert leather.main(["serve", "--model-config-file", str(config), "--model-name", "leather"]) == 1
    assert "--model-dir and --model-name are for one model" in capsys.readouterr().err
    twice = _write(tmp_path / "twice.config", _entry("leather", leather_dir), _entry("leather", leather_dir))
    assert leather.main(["serve", "--model-config-file", str(twice)]) == 1
    assert f"model config file {twice} lists model 'leather' twice" in capsys.readouterr().err


def test_one_model_flags_with_a_file_of_one_model_still_take_its_place(tmp_path):
    config = _write(tmp_path / "one.config", 'config { name: "leather" }')

    (served,) = served_models(read_model_configs(config), config, tmp_path, None)

    assert (served.name, served.base_path) == ("leather", tmp_path)
