"""How a signature answers TF Serving's Classify: which input takes the tf.Examples, and how outputs become classes.

A signature whose method name is `tensorflow/serving/classify` (the Trainer's
`classify`) is checked and read as TF Serving reads it (`classifier.cc`): one
input, `inputs`, of serialized tf.Examples; outputs `classes` ([batch, n]
strings) and/or `scores` ([batch, n] floats), nothing else. `leather serve` also
classifies with a predict signature whose only input is `examples` and which
returns `probability` (`serving_default`, and models exported before
`classify`), as the classes CLASS_LABELS scored 1 - p and p; TF Serving
refuses those (docs/serving.md).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2

from models.serving_contract import (
    CLASS_LABELS,
    CLASSES_OUTPUT,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD_NAME,
    EXAMPLES_INPUT,
    PROBABILITY_OUTPUT,
    SCORES_OUTPUT,
)
from serving.model_store import LoadedModel
from serving.request_error import RequestError

Outputs = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Classifier:
    """The input alias that takes the serialized tf.Examples, and how the signature's outputs become a result."""

    input_alias: str
    result: Callable[[Outputs, int], classification_pb2.ClassificationResult]


def _invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _checked(outputs: Outputs, alias: str, kind: str, examples: int) -> np.ndarray | None:
    """An output as TF Serving's PostProcessClassificationResult accepts it: [examples, classes] of `kind`."""
    if alias not in outputs:
        return None
    value = outputs[alias]
    if value.ndim != 2:
        raise _invalid(f"Expected Tensor shape: [batch_size num_classes] but got {list(value.shape)}")
    if (kind == "string") != (value.dtype == object):
        raise _invalid(f"Expected {alias} Tensor of DT_{kind.upper()}. Got: {value.dtype}")
    if value.shape[0] != examples:
        raise _invalid(f"Expected {alias} output batch size of {examples}. Got: {value.shape[0]}")
    return value


def _from_classes_and_scores(outputs: Outputs, examples: int) -> classification_pb2.ClassificationResult:
    classes = _checked(outputs, CLASSES_OUTPUT, "string", examples)
    scores = _checked(outputs, SCORES_OUTPUT, "float", examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise _invalid(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}")
    count = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for row in range(examples):
        listed = result.classifications.add().classes
        for column in range(count):
            entry = listed.add()
            if classes is not None:
                entry.label = classes[row, column].decode(errors="replace")
            if scores is not None:
                entry.score = float(scores[row, column])
    return result


def _from_probability(outputs: Outputs, examples: int) -> classification_pb2.ClassificationResult:
    result = classification_pb2.ClassificationResult()
    for probability in outputs[PROBABILITY_OUTPUT]:
        listed = result.classifications.add().classes
        for label, score in zip(CLASS_LABELS, (1 - probability, probability)):
            listed.add(label=label, score=float(score))
    return result


def classifier(model: LoadedModel, signature_name: str, function: tf.types.experimental.ConcreteFunction) -> Classifier:
    """How `signature_name` of `model` classifies, or INVALID_ARGUMENT / FAILED_PRECONDITION as TF Serving says why not."""
    signature_def = model.signature_defs.get(signature_name)
    if signature_def is not None and signature_def.method_name == CLASSIFY_METHOD_NAME:
        if len(signature_def.inputs) != 1:
            raise _invalid("Expected one input Tensor.")
        if len(signature_def.outputs) not in (1, 2):
            raise _invalid(f"Expected one or two output Tensors, found {len(signature_def.outputs)}")
        if CLASSIFY_INPUTS not in signature_def.inputs:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"No classification inputs found in SignatureDef '{signature_name}': its input is "
                f"{list(signature_def.inputs)}, not '{CLASSIFY_INPUTS}'",
            )
        if not {CLASSES_OUTPUT, SCORES_OUTPUT} & set(signature_def.outputs):
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Expected classification signature outputs to contain at least one of "{CLASSES_OUTPUT}" or '
                f'"{SCORES_OUTPUT}"; signature \'{signature_name}\' returns {sorted(signature_def.outputs)}',
            )
        return Classifier(CLASSIFY_INPUTS, _from_classes_and_scores)
    specs = function.structured_input_signature[1]
    if (
        list(specs) == [EXAMPLES_INPUT]
        and specs[EXAMPLES_INPUT].dtype == tf.string
        and PROBABILITY_OUTPUT in function.structured_outputs
    ):
        return Classifier(EXAMPLES_INPUT, _from_probability)
    raise _invalid(
        f"Classify needs a signature taking serialized tf.Examples: method name {CLASSIFY_METHOD_NAME} with input "
        f"'{CLASSIFY_INPUTS}', or input '{EXAMPLES_INPUT}' and output '{PROBABILITY_OUTPUT}'; signature "
        f"'{signature_name}' takes {sorted(specs)} and returns {sorted(function.structured_outputs)}"
    )
