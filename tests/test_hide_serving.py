"""The hide signature served by `leather serve` and asked by the hide client: one request per photo, clear refusals."""
import io
import pathlib

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from models import features, texture
from models.hide_signature import HIDE_SIGNATURE, make_hide_signature
from models.signatures import attach_scorer
from models.serving_contract import WARMUP_REQUESTS_FILE
from models.warmup import warmup_requests
from serving.client import PredictionError
from inspection.client import has_hide_signature, request_tiles
from serving.limits import ServingLimits

from serving_support import MODEL_NAME, wait_for_versions

pytest_plugins = ["serving_fixtures"]
RESOLUTION = 32


@pytest.fixture(scope="module")
def hide_model(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Version 1 of a model with a small texture net that answers the hide signature."""
    tf.keras.utils.set_random_seed(9)
    net = texture.build_texture_net(3)
    attach_scorer(net, texture.EMBEDDING_LAYER, tf.TensorSpec([None, RESOLUTION, RESOLUTION, 3], tf.float32))
    net.decision_threshold = tf.Variable(0.5, trainable=False)
    module = tf.Module()
    # The variables alone: tracking the Keras model would make saving trace every layer again (a minute here).
    module.weights = [*net.variables, net.decision_threshold]
    signature = make_hide_signature(net, features.CNN_IMAGE_KEY, (RESOLUTION, RESOLUTION, 3))
    root = tmp_path_factory.mktemp("hide_model")
    tf.saved_model.save(module, str(root / "1"), signatures={HIDE_SIGNATURE: signature})
    # The Trainer's warmup record for this signature: the version only loads once the server has replayed it.
    [warmup] = [
        log for log in warmup_requests(MODEL_NAME, hide_signature=True)
        if log.predict_log.request.model_spec.signature_name == HIDE_SIGNATURE
    ]
    (root / "1" / WARMUP_REQUESTS_FILE).parent.mkdir()
    with tf.io.TFRecordWriter(str(root / "1" / WARMUP_REQUESTS_FILE)) as writer:
        writer.write(warmup.SerializeToString())
    return root


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3)).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _address(server) -> str:
    wait_for_versions(server, (1,))
    return f"127.0.0.1:{server.port}"


def test_one_request_answers_every_tile_as_the_model_does_in_process(hide_model, serve):
    address = _address(serve(hide_model))
    photo = _png(160, 120)

    tiles = request_tiles(address, photo, 64, 48, model_name=MODEL_NAME)

    expected = tf.saved_model.load(str(hide_model / "1")).signatures[HIDE_SIGNATURE](
        image_bytes=tf.constant(photo), patch_size=tf.constant(64), stride=tf.constant(48)
    )
    assert has_hide_signature(address, model_name=MODEL_NAME)
    assert (tiles.width, tiles.height, tiles.model_version) == (160, 120, 1)
    # x at 0, 48 and 96 (flush); y at 0, 48 and 56 (flush).
    assert tiles.origins.tolist() == [[x, y] for y in (0, 48, 56) for x in (0, 48, 96)]
    np.testing.assert_allclose(tiles.embedding, expected["embedding"].numpy(), atol=1e-6)
    np.testing.assert_allclose(tiles.probability, expected["probability"].numpy(), atol=1e-6)


def test_a_model_without_the_signature_is_told_apart(tmp_path, push, serve):
    push(tmp_path, 1)
    assert not has_hide_signature(_address(serve(tmp_path)), model_name=MODEL_NAME)


def test_a_patch_larger_than_the_photo_is_refused_with_the_reason(hide_model, serve):
    address = _address(serve(hide_model))
    with pytest.raises(PredictionError) as refused:
        request_tiles(address, _png(160, 120), 200, 100, model_name=MODEL_NAME)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "patch_size 200 px does not fit the 160x120 px photo" in refused.value.details


def test_a_photo_over_the_message_limit_says_how_to_raise_it(hide_model, serve):
    address = _address(serve(hide_model, limits=ServingLimits(max_message_bytes=64 * 1024)))
    photo = _png(300, 300)
    assert len(photo) > 64 * 1024
    with pytest.raises(PredictionError) as refused:
        request_tiles(address, photo, 64, 48, model_name=MODEL_NAME)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "raise `leather serve --max-message-mb`" in refused.value.details
