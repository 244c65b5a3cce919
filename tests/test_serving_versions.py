"""Which versions `leather serve` loads, serves and swaps, and that a swap fails no request."""
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving.model_store import ModelStore

from serving_support import (
    POLL_SECONDS,
    predict_request,
    predictions_stub,
    served_answer,
    wait_for,
    wait_for_versions,
)

pytest_plugins = ["serving_fixtures"]


def test_serves_the_newest_version_and_honours_requested_versions(
    tmp_path, push, serve, connect, reference, images
):
    for version in (1, 2, 3):
        push(tmp_path, version)
    (tmp_path / "export-tmp").mkdir()  # not a version: ignored
    server = serve(tmp_path, num_versions=2)
    wait_for_versions(server, (3, 2))
    stub = predictions_stub(connect(server))
    image = [images["gradient.png"]]

    latest = stub.Predict(predict_request(image), timeout=10)
    older = stub.Predict(predict_request(image, version=2), timeout=10)
    with pytest.raises(grpc.RpcError) as unloaded:
        stub.Predict(predict_request(image, version=1), timeout=10)

    assert latest.model_spec.version.value == 3
    np.testing.assert_array_equal(served_answer(latest)["probability"], reference(3, "predict_image", image)["probability"])
    assert older.model_spec.version.value == 2
    np.testing.assert_array_equal(served_answer(older)["probability"], reference(2, "predict_image", image)["probability"])
    assert unloaded.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Specific(leather, 1)" in unloaded.value.details()
    assert "[3, 2]" in unloaded.value.details()


def test_default_policy_keeps_only_the_latest_version(tmp_path, push, serve, connect, images):
    push(tmp_path, 1)
    push(tmp_path, 2)
    server = serve(tmp_path)
    wait_for_versions(server, (2,))

    with pytest.raises(grpc.RpcError) as older:
        predictions_stub(connect(server)).Predict(predict_request([images["dark.png"]], version=1), timeout=10)

    assert older.value.code() == grpc.StatusCode.NOT_FOUND


def test_new_versions_are_picked_up_and_broken_or_incomplete_ones_ignored(
    tmp_path, push, serve, connect, reference, images, caplog
):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    stub = predictions_stub(connect(server))
    image = [images["gradient.png"]]

    push(tmp_path, 2)
    wait_for_versions(server, (2,))
    after_push = stub.Predict(predict_request(image), timeout=10)
    assert after_push.model_spec.version.value == 2
    np.testing.assert_array_equal(
        served_answer(after_push)["probability"], reference(2, "predict_image", image)["probability"]
    )

    broken = tmp_path / "3"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"half a protobuf")
    wait_for(lambda: any(status.version == 3 for status in server.store.statuses()), "version 3 to be tried")
    failed = [status for status in server.store.statuses() if status.version == 3]
    assert failed[0].available is False and failed[0].error
    assert "could not load version 3" in caplog.text and "still serving [2]" in caplog.text
    assert stub.Predict(predict_request(image), timeout=10).model_spec.version.value == 2

    incomplete = push(tmp_path, 4, source_version=3)
    saved_model = (incomplete / "saved_model.pb").read_bytes()
    (incomplete / "saved_model.pb").unlink()
    time.sleep(10 * POLL_SECONDS)
    assert server.store.loaded_versions() == (2,)
    assert 4 not in {status.version for status in server.store.statuses()}

    (incomplete / "saved_model.pb").write_bytes(saved_model)
    wait_for_versions(server, (4,))
    completed = stub.Predict(predict_request(image), timeout=10)
    np.testing.assert_array_equal(
        served_answer(completed)["probability"], reference(3, "predict_image", image)["probability"]
    )


def test_a_version_still_being_copied_is_loaded_only_once_its_files_settle(tmp_path, push, toy_models):
    store = ModelStore(tmp_path)
    push(tmp_path, 1)
    assert store.poll() == ()  # first sighting: maybe mid-copy
    assert store.poll() == (1,)

    arriving = tmp_path / "2"
    arriving.mkdir()
    shutil.copy(toy_models[2] / "saved_model.pb", arriving)
    assert store.poll() == (1,)
    shutil.copytree(toy_models[2] / "variables", arriving / "variables")
    assert store.poll() == (1,)  # changed since the last poll: still arriving
    assert store.poll() == (2,)
    assert [(status.version, status.available, status.error) for status in store.statuses()] == [
        (1, False, None),
        (2, True, None),
    ]


def test_concurrent_requests_see_no_failure_while_a_new_version_is_pushed(
    tmp_path, push, serve, reference, images
):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    image = [images["gradient.png"]]
    expected = {version: reference(version, "predict_image", image)["probability"][0] for version in (1, 2)}
    request = predict_request(image)
    answers: list[tuple[float, float, int, float]] = []
    failures: list[str] = []
    started = time.monotonic()
    deadline = started + 10.0

    def client() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = predictions_stub(channel)
            for _ in range(20_000):
                sent = time.monotonic()
                if sent >= deadline:
                    return
                try:
                    response = stub.Predict(request, timeout=10)
                except grpc.RpcError as error:
                    failures.append(f"{error.code().name}: {error.details()}")
                    continue
                probability = tf.make_ndarray(response.outputs["probability"])[0]
                answers.append((sent, time.monotonic(), response.model_spec.version.value, probability))

    clients = [threading.Thread(target=client, name=f"client-{n}") for n in range(8)]
    for thread in clients:
        thread.start()
    time.sleep(4.0)
    push(tmp_path, 2)
    for thread in clients:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in clients)
    assert failures == []
    assert {version for _, _, version, _ in answers} == {1, 2}
    assert all(probability == expected[version] for _, _, version, probability in answers)
    first_new = min(received for _, received, version, _ in answers if version == 2)
    assert first_new < deadline - 2.0, "version 2 should be served well before the end"
    after_swap = [version for sent, _, version, _ in answers if sent >= first_new]
    assert after_swap and set(after_swap) == {2}
    print(f"{len(answers)} requests by 8 clients in {time.monotonic() - started:.1f}s, {len(failures)} failed")
