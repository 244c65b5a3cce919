"""What a request would cost the model, counted from what it declares before any of it is unpacked.

A few bytes can stand for far more: a 631-byte JPEG whose header claims 7000x7000
pixels decodes to 147 MB, a TensorProto repeats its last value to fill the shape
it declares, and a Classify context is copied into every example. So before the
model API sees a Predict or Classify request, its photos' pixels are summed from
their headers (PIL reads a header without decoding) against
--max-request-pixels, and a Classify
request's examples are counted, and their size once merged with the context
bounded by the message limit, before anything is merged. Bytes no decoder
recognises count no pixels: the model refuses them itself.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import grpc
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2

from models.features import IMAGE_KEY
from models.image_header import declared_pixels
from models.serving_contract import CLASSIFY_INPUTS, EXAMPLES_INPUT, IMAGE_BYTES_INPUT
from serving.limits import ServingLimits
from serving.request_error import RequestError
from serving.tensors import check_batch_size, declared_shape

_EXAMPLE_INPUTS = (EXAMPLES_INPUT, CLASSIFY_INPUTS)


def _example_pixels(serialized: bytes) -> int | None:
    """The pixels of a serialized tf.Example's photos; None if it holds none (or is no tf.Example)."""
    try:
        example = tf.train.Example.FromString(serialized)
    except Exception:  # noqa: BLE001 - the model refuses what does not parse
        return None
    return _photo_pixels(example)


def _photo_pixels(example: tf.train.Example) -> int | None:
    if IMAGE_KEY not in example.features.feature:
        return None
    return sum(declared_pixels(photo) for photo in example.features.feature[IMAGE_KEY].bytes_list.value)


class _PixelBudget:
    """Pixels counted element by element, refused at the element that takes the sum past the budget."""

    def __init__(self, limits: ServingLimits) -> None:
        self.budget = limits.max_request_pixels
        self.total = 0

    def count(self, what: str, pixels: Iterable[int], elements: int) -> None:
        for index, declared in enumerate(pixels):
            self.total += declared
            if self.total > self.budget:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{what} declares {self.total:,} pixels by element {index} (counting from 0) of {elements} "
                    f"(read from the photos' headers); this server decodes at most {self.budget:,} pixels per "
                    "request (--max-request-pixels): send fewer or smaller photos",
                )


def _declared_values(proto: tensor_pb2.TensorProto, elements: int) -> Iterator[bytes]:
    """The string values the tensor will hold: TensorFlow repeats the last one to fill the declared shape."""
    given = proto.string_val
    for index in range(elements):
        if not given:
            return
        yield given[min(index, len(given) - 1)]


def check_predict(request: predict_pb2.PredictRequest, limits: ServingLimits) -> None:
    """Refuses a Predict request whose photos (raw or in tf.Examples) declare more than the pixel budget."""
    budget = _PixelBudget(limits)
    for alias, proto in request.inputs.items():
        if alias not in (IMAGE_BYTES_INPUT, *_EXAMPLE_INPUTS) or proto.dtype != types_pb2.DT_STRING:
            continue
        elements = math.prod(declared_shape(alias, proto))
        check_batch_size(f"input '{alias}'", elements, limits.max_batch_size)
        values = _declared_values(proto, elements)
        if alias == IMAGE_BYTES_INPUT:
            budget.count(f"input '{alias}'", map(declared_pixels, values), elements)
        else:
            budget.count(f"input '{alias}'", (_example_pixels(value) or 0 for value in values), elements)


def check_classify(request: classification_pb2.ClassificationRequest, limits: ServingLimits) -> None:
    """Refuses a Classify request of too many examples, too many bytes once merged, or too many pixels.

    An example without a photo of its own takes the context's, so the context's
    pixels count once for each of them, as its bytes count once for every example.
    """
    what = "ClassificationRequest::input"
    given = request.input
    listed = given.example_list_with_context if given.HasField("example_list_with_context") else given.example_list
    examples = listed.examples
    check_batch_size(what, len(examples), limits.max_batch_size)
    context = listed.context if given.HasField("example_list_with_context") else None
    if context is not None:
        merged = len(examples) * context.ByteSize() + sum(example.ByteSize() for example in examples)
        if merged > limits.max_message_bytes:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{what}: its {len(examples)} examples merged with their context would take {merged:,} bytes, "
                f"more than the {limits.max_message_bytes:,} bytes of --max-message-mb: send a smaller context "
                "or fewer examples",
            )
    context_pixels = (_photo_pixels(context) if context is not None else None) or 0
    own = (_photo_pixels(example) for example in examples)
    _PixelBudget(limits).count(what, (context_pixels if pixels is None else pixels for pixels in own), len(examples))
