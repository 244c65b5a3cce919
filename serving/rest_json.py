"""TF Serving's REST JSON for Predict, turned into a PredictRequest and back.

Predict takes the row format ({"instances": [...]}, answered with
{"predictions": [...]}) or the columnar one ({"inputs": ...}, answered with
{"outputs": ...}); binary strings travel as {"b64": "..."}. Whatever JSON a
client sends, a mistake in it is a RequestError (HTTP 400) naming what is wrong,
never a server error. The elements are counted against --max-batch-size before
any value is decoded or tensor built: 50 MB of `""` instances would otherwise
become 17 million bytes objects and a 1.3 GB TensorProto before being refused.
"""
import base64
import json
import math
import sys
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2

from serving.request_error import RequestError
from serving.tensors import check_batch_size

_BINARY_OUTPUT_SUFFIX = "_bytes"  # TF Serving returns string outputs so named as {"b64": ...}


def bad_request(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def request_json(body: bytes) -> dict:
    """The request body as a JSON object."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"the request body is not JSON: {error}") from error
    except ValueError:  # what json raises past Python's bound on the digits of an integer
        raise bad_request(
            "the request body is not JSON this server reads: a number has more than "
            f"{sys.get_int_max_str_digits()} digits"
        ) from None
    except RecursionError:
        raise bad_request("the request body nests JSON arrays or objects too deeply to be a tensor") from None
    if not isinstance(payload, dict):
        raise bad_request("the request body must be a JSON object")
    return payload


def signature_name(payload: Mapping) -> str:
    name = payload.get("signature_name", "")
    if not isinstance(name, str):
        raise bad_request(f'"signature_name" must be a string, not {json.dumps(name)[:100]}')
    return name


def _decoded(value: object) -> object:
    """JSON values with every {"b64": ...} replaced by its bytes and every other string by its UTF-8."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise bad_request(f"a string tensor element must be a string or {{\"b64\": ...}}, not {str(value)[:100]}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (TypeError, ValueError) as error:
            raise bad_request(f"invalid base64 in {{\"b64\": ...}}: {error}") from error
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    if isinstance(value, str):
        return value.encode()
    return value


def _is_single_value(value: object, input_names: list[str]) -> bool:
    """Whether an instance is the value of a signature's only input rather than a {name: value} map."""
    return len(input_names) == 1 and not (isinstance(value, dict) and set(value) == set(input_names))


def _columns(body: Mapping, input_names: list[str], max_batch_size: int) -> tuple[dict[str, object], bool]:
    """The request's input values by name, and whether it came in the row ("instances") format."""
    if ("instances" in body) == ("inputs" in body):
        raise bad_request('the request must have exactly one of "instances" (row format) or "inputs" (columnar)')
    if "inputs" in body:
        inputs = body["inputs"]
        if _is_single_value(inputs, input_names):
            return {input_names[0]: inputs}, False
        if not isinstance(inputs, dict) or set(inputs) != set(input_names):
            raise bad_request(f'"inputs" must map the input names {input_names} to values')
        return dict(inputs), False
    instances = body["instances"]
    if not isinstance(instances, list):
        raise bad_request('"instances" must be a list')
    check_batch_size('"instances"', len(instances), max_batch_size)
    if all(_is_single_value(instance, input_names) for instance in instances):
        return {input_names[0]: instances}, True
    if not all(isinstance(instance, dict) and set(instance) == set(input_names) for instance in instances):
        raise bad_request(f"every instance must name the same inputs, {input_names}")
    return {name: [instance[name] for instance in instances] for name in input_names}, True


def _most_values(shape: tf.TensorShape, max_batch_size: int) -> int | None:
    """The values an input of `shape` holds in a batch of max_batch_size; None if its inner shape is not fixed."""
    if shape.rank is None:
        return None
    inner = shape.as_list()[1:]
    return None if None in inner else max_batch_size * math.prod(inner)


def _check_values(name: str, values: object, shape: tf.TensorShape, max_batch_size: int) -> None:
    """Counts the values nested in `values`, stopping as soon as they are more than the input can take."""
    most = _most_values(shape, max_batch_size)
    if most is None:
        return
    count, pending = 0, [iter([values])]
    while pending:
        for value in pending[-1]:
            if isinstance(value, list):
                pending.append(iter(value))
                break
            count += 1
            if count > most:
                raise bad_request(
                    f"input '{name}' holds more than {most} values: this server takes at most {max_batch_size} "
                    f"elements of shape {shape[1:]} per request (--max-batch-size): send smaller batches"
                )
        else:
            pending.pop()


def predict_request(
    spec: model_pb2.ModelSpec, payload: Mapping, input_specs: Mapping[str, tf.TensorSpec], max_batch_size: int
) -> tuple[predict_pb2.PredictRequest, bool]:
    """The PredictRequest a JSON body stands for, and whether it came in the row format."""
    columns, rows = _columns(payload, sorted(input_specs), max_batch_size)
    for name, values in columns.items():
        _check_values(name, values, input_specs[name].shape, max_batch_size)
    request = predict_pb2.PredictRequest(model_spec=spec)
    for name, values in columns.items():
        dtype = input_specs[name].dtype
        try:
            proto = tf.make_tensor_proto(_decoded(values) if dtype == tf.string else values, dtype=dtype)
        except (TypeError, ValueError, OverflowError, RecursionError) as error:
            raise bad_request(f"input '{name}' is not a valid tensor: {error}") from None
        request.inputs[name].CopyFrom(proto)
    return request, rows


def _output_value(alias: str, array: np.ndarray) -> object:
    values = array.tolist()
    if array.dtype != object:
        return values
    binary = alias.endswith(_BINARY_OUTPUT_SUFFIX)

    def text(item: object) -> object:
        if isinstance(item, list):
            return [text(element) for element in item]
        return {"b64": base64.b64encode(item).decode()} if binary else item.decode(errors="replace")

    return text(values)


def predict_answer(response: predict_pb2.PredictResponse, rows: bool) -> dict:
    """TF Serving's JSON for a PredictResponse: {"predictions": ...} for rows, {"outputs": ...} for columns."""
    outputs = {alias: _output_value(alias, tf.make_ndarray(proto)) for alias, proto in response.outputs.items()}
    if not rows:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    batch = len(next(iter(outputs.values())))
    return {"predictions": [{alias: values[row] for alias, values in outputs.items()} for row in range(batch)]}
