"""What the Trainer exports for serving: TF Serving's classify signature and warmup requests, served by `leather serve`.

One small MLP is trained with the Trainer's own `run_fn` on a Transform output
of a few synthetic photos (tests/trainer_support.py), then served.
"""
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import classification_pb2, prediction_log_pb2

from ingest.synth import generate_dataset
from models import features
from models.classify_scores import classify_scores
from models.serving_contract import WARMUP_REQUESTS_FILE
from models.signatures import stored_decision_threshold
from models.spec import PreprocessingConfig, TrainingConfig
from models.trainer import run_fn
from pipeline.config import PipelineConfig
from models.warmup import WARMUP_BATCH_SIZES
from serving.limits import ServingLimits
from serving.model_api import ModelApi
from serving.model_store import ModelStore
from serving.warmup import replay
from trainer_support import make_fn_args, photo_rows, serialized_examples, transform_splits

from serving_support import predictions_stub, wait_for_versions

pytest_plugins = ["serving_fixtures"]
pytestmark = pytest.mark.slow  # a Transform and a Trainer run: over a minute on 2 CPUs


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[str, list[dict]]:
    """The serving model dir of a 2-epoch MLP trained by run_fn, and the raw photos it saw at evaluation."""
    root = tmp_path_factory.mktemp("export")
    generate_dataset(root / "photos", 24, seed=3, size=96)
    config = PipelineConfig(
        data_dir="unused", workdir="unused", preprocessing=PreprocessingConfig(),
        training=TrainingConfig(model="mlp", epochs=2, batch_size=8, target_recall=None),
    )
    splits = transform_splits(photo_rows(sorted((root / "photos").rglob("*.jpg"))), config, root / "transform")
    fn_args = make_fn_args(splits.transform_output, splits.files, config.trainer_custom_config(), root / "model")
    run_fn(fn_args)
    return fn_args.serving_model_dir, splits.raw["eval"]


def test_the_classify_signature_is_marked_for_tf_servings_classify_api(exported):
    saved_model = saved_model_pb2.SavedModel.FromString(tf.io.gfile.GFile(f"{exported[0]}/saved_model.pb", "rb").read())
    classify = saved_model.meta_graphs[0].signature_def["classify"]

    assert classify.method_name == "tensorflow/serving/classify"
    assert list(classify.inputs) == ["inputs"] and sorted(classify.outputs) == ["classes", "scores"]
    assert saved_model.meta_graphs[0].signature_def["predict_image"].method_name == "tensorflow/serving/predict"


def test_the_exported_warmup_requests_parse_and_replay_on_the_exported_model(exported, tmp_path):
    model_dir, _ = exported
    records = list(tf.data.TFRecordDataset(f"{model_dir}/{WARMUP_REQUESTS_FILE}").as_numpy_iterator())
    shutil.copytree(model_dir, tmp_path / "1")
    store = ModelStore(tmp_path)
    store.poll()
    store.poll()

    replayed = replay(store.get(1), ModelApi("leather", store, ServingLimits()).warm_up)

    assert [prediction_log_pb2.PredictionLog.FromString(r).WhichOneof("log_type") for r in records].count(
        "classify_log"
    ) == len(WARMUP_BATCH_SIZES)
    assert replayed == len(records) == 3 * len(WARMUP_BATCH_SIZES)


def test_classify_through_the_standard_stub_equals_the_saved_model_in_process(exported, tmp_path, serve, connect):
    model_dir, rows = exported
    shutil.copytree(model_dir, tmp_path / "1")
    server = serve(tmp_path)
    wait_for_versions(server, (1,))
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "leather", "classify"
    for serialized in serialized_examples(rows).numpy():
        request.input.example_list.examples.add().ParseFromString(serialized)

    response = predictions_stub(connect(server)).Classify(request, timeout=60)

    model = tf.saved_model.load(model_dir)
    in_process = model.signatures["classify"](inputs=serialized_examples(rows))
    probability = model.signatures["predict_image"](image_bytes=tf.constant([r[features.IMAGE_KEY] for r in rows]))
    served = response.result.classifications
    assert [[c.label for c in item.classes] for item in served] == [["0", "1"]] * len(rows)
    np.testing.assert_array_equal([[c.score for c in item.classes] for item in served], in_process["scores"].numpy())
    # Classify scores the probability rescaled to put the stored threshold at 0.5; its best class is the label
    threshold = stored_decision_threshold(model_dir)
    np.testing.assert_allclose(
        in_process["scores"].numpy()[:, 1], classify_scores(probability["probability"], threshold).numpy()[:, 1], rtol=1e-6
    )
    np.testing.assert_array_equal(np.argmax(in_process["scores"].numpy(), axis=1), probability["label"].numpy())
