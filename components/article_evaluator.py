"""The reference task's Evaluator: image and pixel ROC-AUC of the fitted article on the validation photos, gated.

TFMA scores one prediction per example; an article model is judged also pixel
by pixel against each defect photo's mask, which TFMA has no metric for. This
component runs the exported `anomaly_map` signature on every validation photo
(inspection/article_evaluation.py, the code `leather inspect-eval` uses),
writes the figures as JSON into its ModelEvaluation, and blesses the model
when every figure the photos allow is at or above its floor. Without
validation photos there is nothing to measure: the model is blessed on its
clean-photo threshold alone and the JSON says it was not evaluated.
"""

import json
import os

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from inspection.article_client import ArticleMap
from inspection.article_evaluation import article_summary, judge_photos
from models import features
from models.article_export import ANOMALY_MAP_SIGNATURE
from models.serving_contract import IMAGE_BYTES_INPUT

EVALUATION_FILE = "article_evaluation.json"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"
GATED_FIGURES = ("image_roc_auc", "pixel_roc_auc")


def _photos(examples: standard_artifacts.Examples, split: str) -> list[tuple[str, bytes, bytes]]:
    if split not in artifact_utils.decode_split_names(examples.split_names):
        return []
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    spec = {key: tf.io.FixedLenFeature([], tf.string) for key in (features.IMAGE_KEY, features.PHOTO_NAME_KEY, features.MASK_KEY)}
    photos = []
    for record in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern)), compression_type="GZIP"):
        example = tf.io.parse_single_example(record, spec)
        photos.append(tuple(example[key].numpy() for key in (features.PHOTO_NAME_KEY, features.IMAGE_KEY, features.MASK_KEY)))
    return [(name.decode(), image, mask) for name, image, mask in photos]


def gate(figures: dict, floors: dict[str, float]) -> list[str]:
    """The failed gates, each as 'figure value < floor'; figures the photos cannot give (None) are not gated."""
    return [
        f"{name} {figures[name]:.4f} < {floor:g}"
        for name, floor in floors.items()
        if figures.get(name) is not None and figures[name] < floor
    ]


@component
def ArticleEvaluator(  # noqa: N802 - TFX components are classes by convention
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    split: Parameter[str] = "validation",
    min_image_auc: Parameter[float] = 0.9,
    min_pixel_auc: Parameter[float] = 0.9,
) -> None:
    """Judge the article on the validation photos and bless it when it clears every floor."""
    photos = _photos(examples, split)
    record: dict = {"evaluated": bool(photos), "split": split}
    if photos:
        signature = tf.saved_model.load(path_utils.serving_model_path(model.uri)).signatures[ANOMALY_MAP_SIGNATURE]

        def request(data: bytes) -> ArticleMap:
            return ArticleMap.of({key: value.numpy() for key, value in signature(**{IMAGE_BYTES_INPUT: tf.constant(data)}).items()})

        record["figures"] = article_summary(judge_photos(photos, request))
        record["failed_gates"] = gate(record["figures"], {"image_roc_auc": min_image_auc, "pixel_roc_auc": min_pixel_auc})
    else:
        record["failed_gates"] = []
    blessed = not record["failed_gates"]
    record["blessed"] = blessed
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, EVALUATION_FILE), "w") as f:
        f.write(json.dumps(record, indent=2) + "\n")
    with tf.io.gfile.GFile(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "w") as f:
        f.write("")
    blessing.set_int_custom_property("blessed", int(blessed))
