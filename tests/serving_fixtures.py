"""The serving tests' fixtures: toy SavedModels, photos, and servers that are always stopped.

Loaded by the serving test modules with `pytest_plugins`; their helpers are in `serving_support`.
"""
import pathlib
import shutil
from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf

from models.signatures import mark_classification_signature
from models.warmup import write_warmup_requests
from serving.server import ServingServer

from serving_support import MODEL_NAME, POLL_SECONDS, ToyModel, signature_payload


@pytest.fixture(scope="session")
def toy_models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, pathlib.Path]:
    """Toy SavedModels for versions 1-3 exported as the Trainer exports (classify method, warmup requests).

    Each is saved once and copied into model dirs by `push`.
    """
    root = tmp_path_factory.mktemp("toy_models")
    models = {}
    for version in (1, 2, 3):
        module = ToyModel(version)
        models[version] = root / str(version)
        tf.saved_model.save(
            module,
            str(models[version]),
            signatures={
                "serving_default": module.serving_default,
                "predict_image": module.predict_image,
                "classify": module.classify,
                "transform_features": module.transform_features,
            },
        )
        mark_classification_signature(str(models[version]))
        write_warmup_requests(str(models[version]))
    return models


@pytest.fixture(scope="session")
def reference(toy_models: dict[int, pathlib.Path]) -> Callable[[int, str, list[bytes]], dict[str, np.ndarray]]:
    """What the toy SavedModel of a version answers in-process: the oracle for served answers."""
    loaded = {version: tf.saved_model.load(str(path)) for version, path in toy_models.items()}

    def answer(version: int, signature: str, images: list[bytes]) -> dict[str, np.ndarray]:
        inputs = {alias: tf.constant(values) for alias, values in signature_payload(signature, images).items()}
        return {alias: tensor.numpy() for alias, tensor in loaded[version].signatures[signature](**inputs).items()}

    return answer


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    """Encoded images dark to bright: version 1 calls the bright ones defective and the dark ones clean."""
    gradient = tf.reshape(tf.cast(tf.range(64) * 4, tf.uint8), [8, 8, 1])
    return {
        "dark.png": tf.io.encode_png(tf.fill([8, 8, 1], tf.constant(20, tf.uint8))).numpy(),
        "gradient.png": tf.io.encode_png(gradient).numpy(),
        "bright.jpg": tf.io.encode_jpeg(tf.fill([8, 8, 3], tf.constant(250, tf.uint8))).numpy(),
        "white.png": tf.io.encode_png(tf.fill([8, 8, 3], tf.constant(255, tf.uint8))).numpy(),
    }


@pytest.fixture
def image_files(tmp_path: pathlib.Path, images: dict[str, bytes]) -> list[pathlib.Path]:
    paths = []
    for name, data in images.items():
        path = tmp_path / "photos" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture
def push(toy_models: dict[int, pathlib.Path]) -> Callable[..., pathlib.Path]:
    """Copies a toy version into `model_dir/<version>` in place, as TFX's Pusher does."""

    def copy(model_dir: pathlib.Path, version: int, source_version: int | None = None) -> pathlib.Path:
        return pathlib.Path(shutil.copytree(toy_models[source_version or version], model_dir / str(version)))

    return copy


@pytest.fixture
def serve() -> Iterator[Callable[..., ServingServer]]:
    """Starts ServingServers on 127.0.0.1:<free port>; stops them all after the test."""
    servers = []

    def start(model_dir: pathlib.Path, **options: object) -> ServingServer:
        server = ServingServer(model_dir, MODEL_NAME, host="127.0.0.1", port=0, poll_seconds=POLL_SECONDS, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(grace=1.0)


@pytest.fixture
def connect() -> Iterator[Callable[[ServingServer], grpc.Channel]]:
    channels = []

    def open_channel(server: ServingServer) -> grpc.Channel:
        channels.append(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
        return channels[-1]

    yield open_channel
    for channel in channels:
        channel.close()
