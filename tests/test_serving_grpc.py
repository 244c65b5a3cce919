"""`leather serve`'s gRPC answers: Predict, Classify, metadata and status, and every refusal's status code."""
import shutil
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    regression_pb2,
)

from serving.limits import ServingLimits
from serving.server import ServingServer

from serving_support import (
    MAX_MESSAGE_BYTES,
    MODEL_NAME,
    POLL_SECONDS,
    predict_request,
    predictions_stub,
    served_answer,
    tf_example,
    wait_for_versions,
)

pytest_plugins = ["serving_fixtures"]


@pytest.mark.parametrize("signature", ["predict_image", "serving_default"])
def test_predict_returns_what_the_saved_model_returns(
    tmp_path, push, serve, connect, reference, images, signature
):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    batch = list(images.values())

    response = predictions_stub(connect(server)).Predict(predict_request(batch, signature), timeout=10)

    expected = reference(1, signature, batch)
    answer = served_answer(response)
    assert set(answer) == {"probability", "label"}
    assert answer["probability"].dtype == np.float32 and answer["label"].dtype == np.int64
    np.testing.assert_array_equal(answer["probability"], expected["probability"])
    np.testing.assert_array_equal(answer["label"], expected["label"])
    assert set(answer["label"]) == {0, 1}, "the images should cover both labels"
    assert (response.model_spec.name, response.model_spec.version.value, response.model_spec.signature_name) == (
        MODEL_NAME, 1, signature,
    )


def test_predict_defaults_to_serving_default_and_honours_output_filter(
    tmp_path, push, serve, connect, reference, images
):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    request = predict_request([images["white.png"]], "serving_default")
    request.model_spec.ClearField("signature_name")
    request.output_filter.append("label")

    response = predictions_stub(connect(server)).Predict(request, timeout=10)

    assert response.model_spec.signature_name == "serving_default"
    assert list(response.outputs) == ["label"]
    np.testing.assert_array_equal(
        served_answer(response)["label"], reference(1, "serving_default", [images["white.png"]])["label"]
    )


def test_other_signatures_are_served_too(tmp_path, push, serve, connect, images):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    request = predict_request([images["dark.png"], images["white.png"]], "serving_default")
    request.model_spec.signature_name = "transform_features"

    response = predictions_stub(connect(server)).Predict(request, timeout=10)

    np.testing.assert_allclose(served_answer(response)["mean_intensity"], [20 / 255, 1.0], rtol=1e-6)



@pytest.fixture(scope="module")
def checked_server(tmp_path_factory, toy_models) -> Iterator[ServingServer]:
    """One server with version 1 and a 64 KiB message limit for the malformed-request cases."""
    model_dir = tmp_path_factory.mktemp("checked")
    shutil.copytree(toy_models[1], model_dir / "1")
    server = ServingServer(
        model_dir, MODEL_NAME, host="127.0.0.1", port=0, poll_seconds=POLL_SECONDS,
        limits=ServingLimits(max_message_bytes=MAX_MESSAGE_BYTES),
    )
    server.start()
    wait_for_versions(server, (1,))
    yield server
    server.stop(grace=1.0)


def _valid_png() -> bytes:
    return tf.io.encode_png(tf.zeros([2, 2, 1], tf.uint8)).numpy()


def _with_input(alias: str, values: object, dtype: tf.DType | None = None) -> predict_pb2.PredictRequest:
    request = predict_request([])
    request.inputs.clear()
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    return request


def _with_spec(**changes: object) -> predict_pb2.PredictRequest:
    request = predict_request([_valid_png()])
    for field, value in changes.items():
        if field == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, field, value)
    return request


def _filtered(alias: str) -> predict_pb2.PredictRequest:
    request = predict_request([_valid_png()])
    request.output_filter.append(alias)
    return request


def _classify(signature: str, examples: list[bytes]) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = signature
    for example in examples:
        request.input.example_list.examples.add().ParseFromString(example)
    return request


def _metadata(*fields: str) -> get_model_metadata_pb2.GetModelMetadataRequest:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
    request.model_spec.name = MODEL_NAME
    return request


def _status(version: int) -> get_model_status_pb2.GetModelStatusRequest:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.version.value = version
    return request


MALFORMED = {
    "unknown model": ("Predict", lambda: _with_spec(name="wallet"), grpc.StatusCode.NOT_FOUND,
                      "Servable not found for request: Latest(wallet)"),
    "unknown version": ("Predict", lambda: _with_spec(version=7), grpc.StatusCode.NOT_FOUND,
                        "Servable not found for request: Specific(leather, 7)"),
    "version label": ("Predict", lambda: _with_spec(version_label="stable"), grpc.StatusCode.INVALID_ARGUMENT,
                      "Unrecognized servable version label: stable"),
    "unknown signature": ("Predict", lambda: _with_spec(signature_name="predict_wallet"),
                          grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "predict_wallet" not found'),
    "wrong input name": ("Predict", lambda: _with_input("images", [_valid_png()]), grpc.StatusCode.INVALID_ARGUMENT,
                         "sent ['images'], expected ['image_bytes']"),
    "wrong dtype": ("Predict", lambda: _with_input("image_bytes", [0.5]), grpc.StatusCode.INVALID_ARGUMENT,
                    "must be DT_STRING, got DT_FLOAT"),
    "wrong rank": ("Predict", lambda: _with_input("image_bytes", [[_valid_png()]], tf.string),
                   grpc.StatusCode.INVALID_ARGUMENT, "must have shape (None,), got [1, 1]"),
    "undecodable image": ("Predict", lambda: _with_input("image_bytes", [b"GIF? no, just text"], tf.string),
                          grpc.StatusCode.INVALID_ARGUMENT, "Unknown image file format"),
    "unknown output": ("Predict", lambda: _filtered("score"),
                       grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: score"),
    "message too large": ("Predict", lambda: _with_input("image_bytes", [bytes(2 * MAX_MESSAGE_BYTES)], tf.string),
                          grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
    "classify on raw bytes": ("Classify", lambda: _classify("predict_image", [tf_example(_valid_png())]),
                              grpc.StatusCode.INVALID_ARGUMENT, "Classify needs a signature taking serialized tf.Examples"),
    "classify nothing": ("Classify", lambda: _classify("serving_default", []), grpc.StatusCode.INVALID_ARGUMENT,
                         "input is empty"),
    "classify unknown signature": ("Classify", lambda: _classify("nope", [tf_example(_valid_png())]),
                                   grpc.StatusCode.INVALID_ARGUMENT, 'Serving signature key "nope" not found'),
    "metadata without field": ("GetModelMetadata", _metadata, grpc.StatusCode.INVALID_ARGUMENT,
                               "at least one metadata_field"),
    "metadata of unknown field": ("GetModelMetadata", lambda: _metadata("signature_def", "warmup"),
                                  grpc.StatusCode.INVALID_ARGUMENT, "Metadata field warmup is not supported"),
    "regress": ("Regress", regression_pb2.RegressionRequest, grpc.StatusCode.UNIMPLEMENTED,
                "Regress is not supported"),
    "status of unknown version": ("GetModelStatus", lambda: _status(7), grpc.StatusCode.NOT_FOUND,
                                  "Could not find version 7 of model leather"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_get_the_documented_status(checked_server, connect, case):
    method, build, code, fragment = MALFORMED[case]
    channel = connect(checked_server)
    stub = model_service_pb2_grpc.ModelServiceStub(channel) if method == "GetModelStatus" else predictions_stub(channel)

    with pytest.raises(grpc.RpcError) as refused:
        getattr(stub, method)(build(), timeout=10)

    assert refused.value.code() == code
    assert fragment in refused.value.details()


def test_the_server_keeps_answering_after_malformed_requests(checked_server, connect):
    stub = predictions_stub(connect(checked_server))
    with pytest.raises(grpc.RpcError):
        stub.Predict(_with_input("image_bytes", [b"junk"], tf.string), timeout=10)

    assert stub.Predict(predict_request([_valid_png()]), timeout=10).model_spec.version.value == 1


def test_without_a_loaded_version_requests_are_unavailable(tmp_path, serve, connect):
    server = serve(tmp_path)
    channel = connect(server)

    with pytest.raises(grpc.RpcError) as predict:
        predictions_stub(channel).Predict(predict_request([_valid_png()]), timeout=10)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL_NAME
    with pytest.raises(grpc.RpcError) as status:
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=10)

    assert predict.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no version loaded yet" in predict.value.details()
    assert status.value.code() == grpc.StatusCode.UNAVAILABLE


def test_classify_scores_clean_and_defective_from_the_probability(
    tmp_path, push, serve, connect, reference, images
):
    push(tmp_path, 1)
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    batch = list(images.values())
    stub = predictions_stub(connect(server))
    with_context = classification_pb2.ClassificationRequest()
    with_context.model_spec.name = MODEL_NAME
    with_context.input.example_list_with_context.context.ParseFromString(tf_example(images["white.png"]))
    with_context.input.example_list_with_context.examples.add()

    response = stub.Classify(_classify("serving_default", [tf_example(image) for image in batch]), timeout=10)
    context_response = stub.Classify(with_context, timeout=10)

    probabilities = reference(1, "serving_default", batch)["probability"]
    assert [[cls.label for cls in c.classes] for c in response.result.classifications] == [["0", "1"]] * len(batch)
    assert [[cls.score for cls in c.classes] for c in response.result.classifications] == [
        [np.float32(1) - p, p] for p in probabilities
    ]
    assert (response.model_spec.version.value, response.model_spec.signature_name) == (1, "serving_default")
    assert context_response.result.classifications[0].classes[1].score == probabilities[batch.index(images["white.png"])]


def test_classify_with_the_classification_signature_equals_the_saved_model_in_process(
    tmp_path, push, serve, connect, reference, images
):
    push(tmp_path, 2)
    server = serve(tmp_path)
    wait_for_versions(server, (2,))
    batch = list(images.values())

    response = predictions_stub(connect(server)).Classify(_classify("classify", [tf_example(i) for i in batch]), timeout=10)

    expected = reference(2, "classify", batch)
    classifications = response.result.classifications
    assert [[c.label for c in item.classes] for item in classifications] == expected["classes"].astype(str).tolist()
    np.testing.assert_array_equal([[c.score for c in item.classes] for item in classifications], expected["scores"])
    assert expected["scores"][:, 1].tolist() == reference(2, "predict_image", batch)["probability"].tolist()
    assert (response.model_spec.version.value, response.model_spec.signature_name) == (2, "classify")


def test_metadata_lists_signature_defs_and_status_reports_available(tmp_path, push, serve, connect):
    push(tmp_path, 1)
    push(tmp_path, 2)
    server = serve(tmp_path)
    wait_for_versions(server, (2,))
    channel = connect(server)

    metadata = predictions_stub(channel).GetModelMetadata(_metadata("signature_def"), timeout=10)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL_NAME
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=10)

    assert (metadata.model_spec.name, metadata.model_spec.version.value) == (MODEL_NAME, 2)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert metadata.metadata["signature_def"].Unpack(signature_defs)
    signatures = signature_defs.signature_def
    assert {"serving_default", "predict_image", "transform_features"} <= set(signatures)
    predict_image = signatures["predict_image"]
    assert predict_image.method_name == "tensorflow/serving/predict"
    assert {alias: info.dtype for alias, info in predict_image.inputs.items()} == {"image_bytes": tf.string.as_datatype_enum}
    assert {alias: info.dtype for alias, info in predict_image.outputs.items()} == {
        "probability": tf.float32.as_datatype_enum,
        "label": tf.int64.as_datatype_enum,
    }
    assert list(signatures["serving_default"].inputs) == ["examples"]
    assert signatures["classify"].method_name == "tensorflow/serving/classify"
    assert (list(signatures["classify"].inputs), sorted(signatures["classify"].outputs)) == (["inputs"], ["classes", "scores"])
    assert [(s.version, s.state, s.status.error_code) for s in status.model_version_status] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)
    ]
