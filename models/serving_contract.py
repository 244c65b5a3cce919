"""The serving contract: the exported model's signatures, their inputs and outputs.

The Trainer exports these names, the Evaluator reads them, and `serving/` and
its clients call them; a client written against TF Serving's API needs nothing
else to talk to the model.
"""
from collections.abc import Iterable

from models.features import CLEAN, DEFECTIVE

SERVING_DEFAULT_SIGNATURE = "serving_default"
PREDICT_IMAGE_SIGNATURE = "predict_image"
TRANSFORM_SIGNATURE = "transform_features"
EXAMPLES_INPUT = "examples"
IMAGE_BYTES_INPUT = "image_bytes"
PROBABILITY_OUTPUT = "probability"
LABEL_OUTPUT = "label"
EMBEDDING_OUTPUT = "embedding"
"""Only from models with an embedding layer (the texture model): the photo's pooled feature vector."""

# TF Serving's Classify API: a signature with this method name, `inputs` (serialized tf.Examples) in,
# `classes` (CLASS_LABELS per example) and `scores` ([batch, 2] float32) out. The scores are not 1 - p and p but
# the probability rescaled so the stored decision threshold scores 0.5 (models/classify_scores.py): the larger
# score is the class `label` gives.
CLASSIFY_SIGNATURE = "classify"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
CLASSIFY_INPUTS = "inputs"
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
CLASS_LABELS = (str(CLEAN), str(DEFECTIVE))
"""Classify's labels, in the order of each example's scores."""

# The requests TF Serving (--enable_model_warmup) and `leather serve` replay before a version takes traffic.
WARMUP_REQUESTS_FILE = "assets.extra/tf_serving_warmup_requests"

# The model name clients put in `model_spec.name` unless told otherwise (TF Serving's MODEL_NAME in production).
DEFAULT_MODEL_NAME = "leather"

# The file whose presence makes a version folder complete: TFX's Pusher copies it last.
SAVED_MODEL_FILE = "saved_model.pb"


MAX_VERSION = 2**63 - 1
"""The largest version: TF Serving's protos carry a version as an int64, and a version is positive."""


def version_folders(names: Iterable[str]) -> list[tuple[int, str]]:
    """The version folders among a model directory's entry names, newest first, as (version, name).

    The Pusher writes each version to a folder named by its number and TF Serving
    serves the folders whose names parse as a positive int64, so a name is a
    version only when it is ASCII digits of a number from 1 to MAX_VERSION:
    `str.isdigit` would also take "²", which `int` refuses, and a version beyond
    int64 fails every request that names it. Names may end in "/" as cloud
    storage lists folders. Whether a folder is complete (holds SAVED_MODEL_FILE)
    is for its reader to check on its own file system.
    """
    versions = []
    for name in names:
        stripped = name.rstrip("/")
        if stripped.isascii() and stripped.isdigit() and 0 < int(stripped) <= MAX_VERSION:
            versions.append((int(stripped), stripped))
    return sorted(versions, reverse=True)
