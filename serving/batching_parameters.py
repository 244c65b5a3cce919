"""TF Serving's batching parameters, read from the text-format file `--batching_parameters_file` takes.

The file is a `tensorflow.serving.BatchingParameters` proto in text format
(`max_batch_size { value: 32 }`, `allowed_batch_sizes: 8`, ...), so the one file
under kubeflow/serving-config/ configures the official container and `leather
serve` alike. tensorflow-serving-api does not ship that proto, so its
descriptor is built here from TF Serving's field names and numbers; a field it
does not have is refused by the parser with its line and column. Checked as TF
Serving checks them; free of TensorFlow so the CLI can read the file at once.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

_INT64_FIELDS = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")


def _message_class() -> type:
    """`tensorflow.serving.BatchingParameters` (session_bundle_config.proto), in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(
        name="leather/batching_parameters.proto", package="tensorflow.serving", syntax="proto3",
        dependency=[wrappers.name],
    )
    message = proto.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, name in enumerate(_INT64_FIELDS, start=1):
        message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_MESSAGE,
                          type_name=".google.protobuf.Int64Value")
    message.field.add(name="thread_pool_name", number=5, label=field.LABEL_OPTIONAL, type=field.TYPE_MESSAGE,
                      type_name=".google.protobuf.StringValue")
    message.field.add(name="allowed_batch_sizes", number=6, label=field.LABEL_REPEATED, type=field.TYPE_INT64)
    message.field.add(name="pad_variable_length_inputs", number=7, label=field.LABEL_OPTIONAL, type=field.TYPE_BOOL)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


_BatchingParametersProto = _message_class()


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """How `leather serve` groups requests into shared model calls.

    A request of more elements than `max_batch_size` runs on its own (TF Serving
    refuses it); with `allowed_batch_sizes` a batch is padded up to the next
    allowed size by repeating its first element, as TF Serving pads.
    """

    max_batch_size: int
    batch_timeout_micros: int
    max_enqueued_batches: int
    num_batch_threads: int
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in _INT64_FIELDS:
            if getattr(self, name) < (0 if name == "batch_timeout_micros" else 1):
                raise ValueError(f"{name} must be {'non-negative' if name == 'batch_timeout_micros' else 'positive'}, "
                                 f"not {getattr(self, name)}")
        sizes = self.allowed_batch_sizes
        if any(later <= earlier for earlier, later in zip(sizes, sizes[1:])) or (sizes and sizes[0] < 1):
            raise ValueError(f"allowed_batch_sizes entries must be monotonically increasing, not {list(sizes)}")
        if sizes and sizes[-1] != self.max_batch_size:
            raise ValueError(
                f"final entry in allowed_batch_sizes must equal max_batch_size ({sizes[-1]} != {self.max_batch_size})"
            )

    @classmethod
    def tf_serving_defaults(cls, **chosen: object) -> BatchingParameters:
        """The parameters a file sets, TF Serving's defaults (BasicBatchScheduler::Options) for the others."""
        defaults = {"max_batch_size": 1000, "batch_timeout_micros": 0, "max_enqueued_batches": 10,
                    "num_batch_threads": os.cpu_count() or 1}
        return cls(**{**defaults, **chosen})

    def padded_size(self, size: int) -> int:
        """The allowed batch size a batch of `size` elements is padded to (itself without allowed sizes)."""
        return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)


def read_batching_parameters(path: pathlib.Path) -> BatchingParameters:
    """The parameters in `path`; a ValueError names the file and what is wrong with it."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read batching parameters file {path}: {error}") from None
    try:
        proto = text_format.Parse(text, _BatchingParametersProto())
    except text_format.ParseError as error:
        raise ValueError(f"batching parameters file {path}: {error}") from None
    if proto.pad_variable_length_inputs:
        raise ValueError(f"batching parameters file {path}: pad_variable_length_inputs is not supported by leather "
                         "serve (every input of the leather model is one string per element)")
    chosen = {name: getattr(proto, name).value for name in _INT64_FIELDS if proto.HasField(name)}
    try:
        return BatchingParameters.tf_serving_defaults(**chosen, allowed_batch_sizes=tuple(proto.allowed_batch_sizes))
    except ValueError as error:
        raise ValueError(f"batching parameters file {path}: {error}") from None


DEFAULT_BATCHING = BatchingParameters(
    max_batch_size=32, batch_timeout_micros=2000, max_enqueued_batches=16, num_batch_threads=1
)
"""`leather serve`'s batching without a parameters file: the production file's values
(kubeflow/serving-config/batching_parameters.txt, which a test holds to these), chosen in docs/serving.md."""
