"""Version labels and policies from a TF Serving model config file: canary and stable, over gRPC and REST."""
import base64
import json
import os
import pathlib
import urllib.request

import grpc
import numpy as np
import pytest

from cli import main as leather
from serving.model_config import read_model_configs
from serving.model_store import VersionPolicy
from serving.rest import RestFront

from serving_support import MODEL_NAME, predict_request, predictions_stub, served_answer, wait_for, wait_for_versions

pytest_plugins = ["serving_fixtures"]


def _config(path: pathlib.Path, body: str, name: str = MODEL_NAME) -> pathlib.Path:
    path.write_text(f'model_config_list {{ config {{ name: "{name}" model_platform: "tensorflow" {body} }} }}\n')
    return path


CANARY = (
    "model_version_policy { specific { versions: 2 versions: 3 } } "
    'version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 3 }'
)


def _by_label(label: str, images: dict[str, bytes]):
    request = predict_request([images["gradient.png"]])
    request.model_spec.version_label = label
    return request


def test_labels_point_at_their_versions_and_an_unknown_label_is_invalid_argument(
    tmp_path, push, serve, connect, reference, images
):
    models = tmp_path / "models"
    for version in (1, 2, 3):
        push(models, version)
    server = serve(models, model_config_file=_config(tmp_path / "models.config", CANARY))
    wait_for_versions(server, (3, 2))
    stub = predictions_stub(connect(server))

    stable = stub.Predict(_by_label("stable", images), timeout=10)
    canary = stub.Predict(_by_label("canary", images), timeout=10)
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Predict(_by_label("beta", images), timeout=10)

    assert (stable.model_spec.version.value, canary.model_spec.version.value) == (2, 3)
    for response, version in ((stable, 2), (canary, 3)):
        np.testing.assert_array_equal(
            served_answer(response)["probability"], reference(version, "predict_image", [images["gradient.png"]])["probability"]
        )
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.value.details() == "Unrecognized servable version label: beta; defined labels: canary, stable"


def test_rest_predicts_by_label_and_a_moved_label_follows_once_its_version_is_loaded(
    tmp_path, push, serve, reference, images
):
    models = tmp_path / "models"
    for version in (1, 2):
        push(models, version)
    config = _config(tmp_path / "models.config", "model_version_policy { specific { versions: 1 } } "
                     'version_labels { key: "stable" value: 1 }')
    server = serve(models, model_config_file=config)
    wait_for_versions(server, (1,))
    rest = RestFront(server.api, "127.0.0.1", 0, server.metrics)
    rest.start()
    try:
        url = f"http://127.0.0.1:{rest.port}/v1/models/leather/labels/stable"
        photo = base64.b64encode(images["gradient.png"]).decode()
        body = json.dumps({"signature_name": "predict_image", "instances": [{"b64": photo}]}).encode()

        def version_of_stable() -> int:
            return json.load(urllib.request.urlopen(url, timeout=10))["model_version_status"][0]["version"]

        before = version_of_stable()
        _config(config, "model_version_policy { specific { versions: 1 versions: 2 } } "
                'version_labels { key: "stable" value: 2 }')
        os.utime(config, ns=(1, 1))  # a new modification time even on coarse clocks
        wait_for(lambda: server.models[MODEL_NAME].api.labels.get("stable") == 2, "the label to move to version 2")
        predicted = json.load(urllib.request.urlopen(urllib.request.Request(url + ":predict", data=body), timeout=10))
        after = version_of_stable()
    finally:
        rest.stop()

    assert (before, after) == ("1", "2")
    assert server.store.loaded_versions() == (2, 1)
    expected = reference(2, "predict_image", [images["gradient.png"]])
    assert predicted["predictions"][0]["probability"] == pytest.approx(float(expected["probability"][0]), rel=1e-6)
    assert predicted["predictions"][0]["probability"] != pytest.approx(
        float(reference(1, "predict_image", [images["gradient.png"]])["probability"][0]), rel=1e-6
    )


def test_model_config_file_gives_policy_labels_and_base_path(tmp_path):
    (config,) = read_model_configs(_config(tmp_path / "a.config", f'base_path: "/models/leather" {CANARY}'))

    assert (config.name, config.base_path) == ("leather", pathlib.Path("/models/leather"))
    assert config.policy == VersionPolicy(latest=None, specific=frozenset({2, 3}))
    assert dict(config.labels) == {"stable": 2, "canary": 3}
    assert read_model_configs(_config(tmp_path / "b.config", ""))[0].policy == VersionPolicy(latest=1)
    assert read_model_configs(_config(tmp_path / "c.config", "model_version_policy { all {} }"))[0].policy == (
        VersionPolicy(latest=None)
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("model_config_list { config { name: 'a' } config { name: 'a' } }", "lists model 'a' twice"),
        ("model_config_list { config { name: 'a' } config { } }", "entry 2: the model has no name"),
        ("model_config_list { config { name: 'a/b' } }", "model 'a/b': not a valid model name"),
        ("", "lists no model"),
        ("model_config_list { config { name: 'leather' model_platform: 'onnx' } }", "model_platform must be 'tensorflow'"),
        ("model_config_list { config { name: 'leather' model_version_policy { specific { versions: 2 } } "
         "version_labels { key: 'canary' value: 3 } } }", "label 'canary' names version 3, which the model_version_policy"),
        ("model_config_list { config { name: 'leather' version_label { key: 'a' value: 1 } } }", "has no field named"),
    ],
)
def test_a_bad_model_config_file_is_refused_naming_the_file(tmp_path, text, fragment):
    path = tmp_path / "models.config"
    path.write_text(text)

    with pytest.raises(ValueError) as refused:
        read_model_configs(path)

    assert str(path) in str(refused.value) and fragment in str(refused.value)


def test_serve_refuses_a_config_for_another_model_or_beside_num_versions(tmp_path, capsys):
    config = _config(tmp_path / "models.config", f'base_path: "{tmp_path}"', name="wallet")

    assert leather.main(["serve", "--model-config-file", str(config), "--model-name", "leather"]) == 1
    assert f"--model-name leather differs from model 'wallet' in {config}" in capsys.readouterr().err
    assert leather.main(["serve", "--model-config-file", str(config), "--num-versions", "2"]) == 1
    assert "--num-versions and --model-config-file both set the version policy" in capsys.readouterr().err
