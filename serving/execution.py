"""Running one signature of a loaded version on a request's tensors, a chunk of elements at a time.

A long batch runs in chunks so that a client whose deadline passes, or who hangs
up, stops the work at the next chunk instead of keeping a core busy for minutes.
Like TF Serving's request batching, this takes signatures to be batch-major (the
leading dimension of every input and output is the element).

A failure inside the model (an undecodable image, say) is the client's to hear
about, with TensorFlow's own status code, the reason in one line without the
node names and stack lines TensorFlow wraps around it, and, in a batch, the index
of the first element that fails on its own. The request stays all-or-nothing as
in TF Serving: one bad element fails it.
"""
import re
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf

from serving.admission import Caller
from serving.model_store import LoadedModel
from serving.request_error import RequestError

# Elements per model call; the client's deadline and presence are checked between calls.
CHUNK_SIZE = 64
# Longest reason passed on from a TensorFlow error.
MAX_REASON_CHARS = 300

_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_OP_ERROR_NOISE = ("Graph execution error", "Detected at node", "<stack traces")
_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
# TensorFlow quotes the offending input after this (e.g. "Could not parse example input, value: '...'").
_QUOTED_VALUE = ", value: '"
MODEL_ERRORS = (tf.errors.OpError, UnicodeDecodeError)
"""What a signature raises when the request's data is at fault (or the model fails on it)."""


def _reason(message: str) -> str:
    """The reason inside a TensorFlow runtime error: one bounded line without nodes, stacks or quoted input."""
    message = _FUNCTION_NODE.sub("", message.split(_QUOTED_VALUE)[0])
    lines = []
    for line in message.splitlines():
        line = line.split("[[")[0].split(" [Op:")[0].strip()
        if line and not line.startswith(_OP_ERROR_NOISE):
            lines.append(line)
    text = " ".join(lines) or message.strip()
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "..."


def _status(error: Exception) -> tuple[grpc.StatusCode, str]:
    """TensorFlow's status code and reason for a model failure.

    When TensorFlow's message quotes request bytes that are not UTF-8 (raw JPEG
    bytes given as a tf.Example, say), Python cannot even build the OpError and
    raises UnicodeDecodeError holding the message's bytes: the input is at fault.
    """
    if isinstance(error, UnicodeDecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, _reason(bytes(error.object).decode("utf-8", errors="replace"))
    return _GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), _reason(error.message)


def batch_size(tensors: Mapping[str, tf.Tensor]) -> int | None:
    """The number of elements when every input has the same leading dimension, else None (not chunked)."""
    sizes = {int(tensor.shape[0]) if tensor.shape.rank else None for tensor in tensors.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _first_bad_element(
    function: tf.types.experimental.ConcreteFunction, chunk: Mapping[str, tf.Tensor], caller: Caller
) -> tuple[int, Exception] | None:
    """The offset in `chunk` of the first element that fails alone, with its error; None if each one passes."""
    for offset in range(int(next(iter(chunk.values())).shape[0])):
        caller.check()
        try:
            function(**{alias: tensor[offset : offset + 1] for alias, tensor in chunk.items()})
        except MODEL_ERRORS as error:
            return offset, error
    return None


def run_signature(
    model: LoadedModel,
    signature_name: str,
    function: tf.types.experimental.ConcreteFunction,
    tensors: Mapping[str, tf.Tensor],
    caller: Caller,
) -> dict[str, np.ndarray]:
    """The signature's outputs for all elements, computed CHUNK_SIZE elements per call while the caller waits."""
    where = f"model version {model.version}, signature '{signature_name}'"
    size = batch_size(tensors)
    if size is None or size <= CHUNK_SIZE:
        chunks = [dict(tensors)]
    else:
        starts = range(0, size, CHUNK_SIZE) or [0]
        chunks = [{alias: tensor[start : start + CHUNK_SIZE] for alias, tensor in tensors.items()} for start in starts]
    parts = []
    for number, chunk in enumerate(chunks):
        caller.check()
        try:
            outputs = function(**chunk)
        except MODEL_ERRORS as error:
            bad = _first_bad_element(function, chunk, caller) if size is not None and size > 1 else None
            if bad is None:
                code, reason = _status(error)
                raise RequestError(code, f"{where}: {reason}") from None
            offset, element_error = bad
            code, reason = _status(element_error)
            index = number * CHUNK_SIZE + offset
            raise RequestError(code, f"{where}: element {index} (counting from 0) of {size}: {reason}") from None
        parts.append({alias: value.numpy() for alias, value in outputs.items()})
    if len(parts) == 1:
        return parts[0]
    for alias, value in parts[0].items():
        if value.ndim == 0 or len(value) != CHUNK_SIZE:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{where}: output '{alias}' is not batch-major, so it takes at most {CHUNK_SIZE} elements per request",
            )
    return {alias: np.concatenate([part[alias] for part in parts]) for alias in parts[0]}
