"""A request's TensorProtos and tf.Examples checked against a signature and turned into tensors.

Every mismatch (names, dtype, shape, output aliases) is refused here with
INVALID_ARGUMENT and a message naming the input, before the model sees anything.
The shape a TensorProto declares is checked before its values are expanded:
TensorFlow repeats the last value to fill the declared shape, so a few bytes
declaring [20000] would otherwise become 20,000 images.
"""
from collections.abc import Mapping, Sequence

import grpc
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import input_pb2

from serving.request_error import RequestError


def _dtype_name(dtype: int) -> str:
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return f"dtype {dtype}"


def declared_shape(alias: str, proto: tensor_pb2.TensorProto) -> list[int]:
    """The shape a TensorProto declares, which its values are expanded to; refused unless fully defined."""
    shape = proto.tensor_shape
    if shape.unknown_rank or any(dim.size < 0 for dim in shape.dim):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"input '{alias}' is not a valid TensorProto: its shape is not fully defined"
        )
    return [dim.size for dim in shape.dim]


def check_batch_size(what: str, size: int, max_batch_size: int | None) -> None:
    """Refuses a request of more elements than --max-batch-size (None: no cap) before any of them is looked at."""
    if max_batch_size is not None and size > max_batch_size:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what} holds {size} elements; this server takes at most {max_batch_size} per request "
            f"(--max-batch-size): send smaller batches",
        )


def input_tensors(
    function: tf.types.experimental.ConcreteFunction,
    signature_name: str,
    inputs: Mapping[str, tensor_pb2.TensorProto],
    max_batch_size: int | None,
) -> dict[str, tf.Tensor]:
    """Checks names, dtypes and shapes against the signature so mistakes get a clear INVALID_ARGUMENT."""
    specs = function.structured_input_signature[1]
    if set(inputs) != set(specs):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input names do not match signature '{signature_name}': sent {sorted(inputs)}, "
            f"expected {sorted(specs)}",
        )
    tensors = {}
    for alias, proto in inputs.items():
        spec = specs[alias]
        if proto.dtype != spec.dtype.as_datatype_enum:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input '{alias}' of signature '{signature_name}' must be "
                f"{_dtype_name(spec.dtype.as_datatype_enum)}, got {_dtype_name(proto.dtype)}",
            )
        shape = declared_shape(alias, proto)
        if not spec.shape.is_compatible_with(shape):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input '{alias}' of signature '{signature_name}' must have shape {spec.shape}, got {shape}",
            )
        if shape:
            check_batch_size(f"input '{alias}'", shape[0], max_batch_size)
        try:
            array = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"input '{alias}' is not a valid TensorProto: {error}"
            ) from error
        tensors[alias] = tf.constant(array, dtype=spec.dtype)
    return tensors


def selected_outputs(function: tf.types.experimental.ConcreteFunction, output_filter: Sequence[str]) -> list[str]:
    """The output aliases to answer with: those asked for, else all of the signature's."""
    available = sorted(function.structured_outputs)
    for alias in output_filter:
        if alias not in available:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(available)}}}.",
            )
    if len(set(output_filter)) != len(output_filter):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias in {list(output_filter)}")
    return list(output_filter) or available


def serialized_examples(request_input: input_pb2.Input) -> list[bytes]:
    """The request's tf.Examples as the serialized strings a tf.Example signature takes.

    With a context, the context is merged into each example as TF Serving does, by
    concatenating the serialized protos (the example's own features win). That copies
    the context once per example: the transports count both first
    (serving.request_budget.check_classify).
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return [example.SerializeToString() for example in request_input.example_list.examples]
    if kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        return [context + example.SerializeToString() for example in listed.examples]
    return []
