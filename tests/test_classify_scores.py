"""Classify's scores answer `label` at the stored decision threshold, not at 0.5.

The formula (`models/classify_scores.py`) is checked on known values; then the
real `make_serving_signatures` export, of a one-layer model whose probability
is its input and of a stand-in for Transform's layer that reads that input
straight from the photo feature's bytes, is classified in-process and through
TF Serving's standard Classify stub at thresholds 0.2 and 0.8, for
probabilities below, at and above the threshold. No Transform or Trainer runs.
"""
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2

from models import features
from models.classify_scores import ABOVE_HALF, BELOW_HALF, classify_scores, defective_score
from models.signatures import make_serving_signatures, mark_classification_signature, stored_decision_threshold

from serving_support import MODEL_NAME, predictions_stub, wait_for_versions

pytest_plugins = ["serving_fixtures"]

INPUT_KEY = "probability_in"
F32 = np.float32


def _exact_shift(p: float, t: float) -> float:
    """sigmoid(logit(p) - logit(t)) in float64, for 0 < p, t < 1."""
    return 1.0 / (1.0 + (t / (1.0 - t)) / (p / (1.0 - p)))


def _scores(probabilities, threshold) -> np.ndarray:
    return classify_scores(np.asarray(probabilities, F32), F32(threshold)).numpy()


def test_the_half_neighbours_are_the_float32s_beside_one_half_and_never_tie_with_their_complement():
    assert (F32(ABOVE_HALF), F32(BELOW_HALF)) == (F32(0.5) + F32(2**-24), F32(0.5) - F32(2**-25))
    assert F32(1) - F32(ABOVE_HALF) == F32(0.5) - F32(2**-24) < F32(ABOVE_HALF)
    assert F32(1) - F32(BELOW_HALF) == F32(0.5) > F32(BELOW_HALF)


@pytest.mark.parametrize(
    ("threshold", "probabilities", "fractions"),
    [
        # odds(0.2) = 1/4: s = odds(p) / (odds(p) + 1/4)
        (0.2, [0.1, 0.3, 0.5, 0.9], [4 / 13, 12 / 19, 4 / 5, 36 / 37]),
        # odds(0.8) = 4: s = odds(p) / (odds(p) + 4)
        (0.8, [0.1, 0.5, 0.7, 0.9], [1 / 37, 1 / 5, 7 / 19, 9 / 13]),
        (0.5, [0.1, 0.3, 0.7, 0.9], [0.1, 0.3, 0.7, 0.9]),
    ],
)
def test_defective_score_is_the_probability_with_its_log_odds_shifted_by_the_thresholds(threshold, probabilities, fractions):
    scores = _scores(probabilities, threshold)

    np.testing.assert_allclose(fractions, [_exact_shift(p, threshold) for p in probabilities], rtol=1e-12)
    np.testing.assert_allclose(scores[:, 1], fractions, rtol=1e-6)  # float32: a few roundings of 6e-8
    np.testing.assert_array_equal(scores[:, 0], F32(1) - scores[:, 1])


@pytest.mark.parametrize(
    ("threshold", "probabilities", "expected"),
    [
        (0.2, [0.0, 0.2, 1.0], [0.0, ABOVE_HALF, 1.0]),
        (0.8, [0.0, 0.8, 1.0], [0.0, ABOVE_HALF, 1.0]),
        (0.5, [0.0, 0.5, 1.0], [0.0, ABOVE_HALF, 1.0]),
        # a calibrated threshold of 0 calls everything defective, one of 1 only p == 1
        (0.0, [0.0, 0.3, 1.0], [ABOVE_HALF, 1.0, 1.0]),
        (1.0, [0.0, 0.3, 1.0], [0.0, 0.0, ABOVE_HALF]),
    ],
)
def test_ends_and_the_threshold_itself_score_exactly(threshold, probabilities, expected):
    scores = _scores(probabilities, threshold)

    np.testing.assert_array_equal(scores[:, 1], np.asarray(expected, F32))
    np.testing.assert_array_equal(scores[:, 0], F32(1) - np.asarray(expected, F32))


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8, 0.3125, 1e-6, 1 - 2**-20])
def test_scores_are_monotone_and_their_larger_one_is_labels_rule_on_a_dense_grid(threshold):
    t = F32(threshold)
    beside = [np.nextafter(t, F32(0)), t, np.nextafter(t, F32(1))]
    near = t + np.arange(-200, 201, dtype=F32) * np.spacing(t)
    p = np.unique(np.clip(np.concatenate([np.linspace(0, 1, 200_001, dtype=F32), near, beside]), 0, 1))

    scores = _scores(p, t)
    stored = tf.Variable(t)  # as the signature reads it: a variable, so nothing is folded into constants
    in_graph = tf.function(lambda x: classify_scores(x, stored))(tf.constant(p)).numpy()

    np.testing.assert_array_equal(in_graph, scores)  # Grappler's rewrites change no bit
    assert np.all(np.diff(scores[:, 1]) >= 0)
    np.testing.assert_array_equal(scores[:, 1] > scores[:, 0], p >= t)  # strictly: never a tie
    np.testing.assert_array_equal(np.argmax(scores, axis=1), (p >= t).astype(int))  # first of equal maxima
    assert scores[np.searchsorted(p, t), 1] == F32(ABOVE_HALF)


def test_a_nan_probability_scores_nan():
    assert np.isnan(defective_score(np.array([np.nan], F32), 0.2).numpy()).all()


class _ProbabilityFromBytes(tf.Module):
    """Stands in for Transform's layer: the photo feature holds a float32's four bytes, the model's input."""

    def __call__(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {INPUT_KEY: tf.reshape(tf.io.decode_raw(raw[features.IMAGE_KEY], tf.float32), [-1, 1])}


class _TransformOutput:
    """The three things make_serving_signatures asks of a TFTransformOutput."""

    def transform_features_layer(self) -> tf.Module:
        return _ProbabilityFromBytes()

    def raw_feature_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        return {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}

    def transformed_feature_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        return {INPUT_KEY: tf.io.FixedLenFeature([1], tf.float32)}


def _probabilities(threshold: float) -> np.ndarray:
    """Ascending: the ends, well below and above, and the float32s beside and at the threshold."""
    t = F32(threshold)
    return np.array(
        [0.0, 0.01, t - F32(0.1), np.nextafter(t, F32(0)), t, np.nextafter(t, F32(1)), t + F32(0.1), 0.99, 1.0], F32
    )


def _examples(probabilities: np.ndarray) -> list[bytes]:
    return [
        tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[p.tobytes()]))
        })).SerializeToString()
        for p in probabilities
    ]


@pytest.fixture(scope="module", params=[0.2, 0.8], ids=["threshold 0.2", "threshold 0.8"])
def exported(request, tmp_path_factory) -> tuple[float, str]:
    """A SavedModel exported as the Trainer exports it (signatures, classify method) at this decision threshold."""
    inputs = tf.keras.Input(shape=(1,), name=INPUT_KEY)
    model = tf.keras.Model(inputs, tf.keras.layers.Activation("linear")(inputs))
    signatures = make_serving_signatures(model, _TransformOutput(), INPUT_KEY, request.param)
    model_dir = str(tmp_path_factory.mktemp("classify") / "1")
    tf.saved_model.save(model, model_dir, signatures=signatures)
    mark_classification_signature(model_dir)
    return request.param, model_dir


def test_the_classify_signatures_best_class_is_the_label_at_the_stored_threshold(exported):
    threshold, model_dir = exported
    p = _probabilities(threshold)
    model = tf.saved_model.load(model_dir)

    classified = model.signatures["classify"](inputs=tf.constant(_examples(p)))
    predicted = model.signatures["predict_image"](image_bytes=tf.constant([v.tobytes() for v in p]))
    by_example = model.signatures["serving_default"](examples=tf.constant(_examples(p)))
    scores = classified["scores"].numpy()

    assert stored_decision_threshold(model_dir) == F32(threshold)
    np.testing.assert_array_equal(predicted["probability"].numpy(), p)  # the raw probability is unchanged
    np.testing.assert_array_equal(by_example["probability"].numpy(), p)
    np.testing.assert_array_equal(predicted["label"].numpy(), [0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(by_example["label"].numpy(), predicted["label"].numpy())
    assert classified["classes"].numpy().astype(str).tolist() == [["0", "1"]] * len(p)
    np.testing.assert_array_equal(np.argmax(scores, axis=1), predicted["label"].numpy())
    np.testing.assert_array_equal(scores[:, 1] > scores[:, 0], predicted["label"].numpy() == 1)
    assert np.all(np.diff(scores[:, 1]) >= 0) and np.all(np.diff(scores[[0, 1, 2, 3, 4, 6, 7, 8], 1]) > 0)
    np.testing.assert_array_equal(scores[4], np.array([1 - ABOVE_HALF, ABOVE_HALF], F32))  # p == threshold
    np.testing.assert_array_equal(scores[[0, -1], 1], [0.0, 1.0])
    np.testing.assert_array_equal(scores, _scores(p, threshold))  # the graph computes the shared formula exactly
    np.testing.assert_allclose(
        scores[[1, 2, 6, 7], 1], [_exact_shift(float(v), threshold) for v in p[[1, 2, 6, 7]]], rtol=1e-6
    )


def test_a_classify_client_taking_the_best_class_answers_the_label(exported, tmp_path, serve, connect):
    threshold, model_dir = exported
    p = _probabilities(threshold)
    shutil.copytree(model_dir, tmp_path / "1")
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, "classify"
    for serialized in _examples(p):
        request.input.example_list.examples.add().ParseFromString(serialized)

    response = predictions_stub(connect(server)).Classify(request, timeout=30)

    best = [max(c.classes, key=lambda entry: entry.score).label for c in response.result.classifications]
    labels = tf.saved_model.load(model_dir).signatures["predict_image"](image_bytes=tf.constant([v.tobytes() for v in p]))
    assert best == [str(label) for label in labels["label"].numpy()] == ["0"] * 4 + ["1"] * 5
    np.testing.assert_array_equal(
        [[c.score for c in item.classes] for item in response.result.classifications], _scores(p, threshold)
    )
