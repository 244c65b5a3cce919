"""Torch's legacy weights files read with pickle and numpy alone, so ImageNet weights need no torch.

A torch file is a pickle, and unpickling runs whatever globals the file names:
a weights file from elsewhere is untrusted input. The unpickler here resolves
only the handful of globals a state dict of tensors needs and refuses the rest,
and every way a file can be wrong (not torch, the zip format of torch >= 1.6,
truncated, inconsistent) ends in one ValueError whose single line names the
file and the fault.

The legacy layout: three small pickles (magic number, protocol version, system
info), the object pickle whose tensors point at storages by key, a pickle of
the storage keys, then each storage in that order as an int64 element count
followed by its raw little-endian elements.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
from typing import Any, NamedTuple

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_ZIP_MAGIC = b"PK\x03\x04"

_STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": None,
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
"""Storage classes a weights file may name, and their element layout; numpy has no bfloat16."""


class _Unreadable(Exception):
    """One fault of the file, worded to follow its path."""


class _StorageType(NamedTuple):
    name: str
    dtype: str | None


class _Storage(NamedTuple):
    key: str
    storage_type: _StorageType
    numel: int


class _TensorRef(NamedTuple):
    """A tensor as the object pickle describes it, before its storage's bytes are read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    """Stands in for torch._utils._rebuild_tensor_v2; requires_grad, hooks and metadata do not matter here."""
    if not isinstance(storage, _Storage):
        raise _Unreadable("has a tensor whose storage is not a storage reference")
    if not (_is_int_tuple(size) and _is_int_tuple(stride) and len(size) == len(stride) and _is_count(storage_offset)):
        raise _Unreadable("has a tensor with a malformed size, stride or offset")
    return _TensorRef(storage, storage_offset, size, stride)


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_count(item) for item in value)


class _RestrictedUnpickler(pickle._Unpickler):
    """Resolves an OrderedDict, the tensor rebuilder and the storage classes; any other global is refused.

    It is the pure-Python unpickler, as joblib's is: the C one sizes its memo
    by the largest index the pickle names, so ten bytes can ask it for 16 GB.
    """

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise _Unreadable(f"names the global {module}.{name}, which no weights file needs: refused")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise _Unreadable(f"has an unknown persistent id {str(pid)[:60]!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not (isinstance(storage_type, _StorageType) and isinstance(key, str) and _is_count(numel)):
            raise _Unreadable(f"has a malformed storage reference {str(key)[:60]!r}")
        if storage_type.dtype is None:
            raise _Unreadable(f"has storage {key} of type {storage_type.name}, which numpy cannot hold")
        if view_metadata is not None:
            raise _Unreadable(f"has storage {key} as a view of another storage, which this reader does not support")
        storage = self.storages.setdefault(key, _Storage(key, storage_type, numel))
        if storage != (key, storage_type, numel):
            raise _Unreadable(f"describes storage {key} twice, differently")
        return storage


def read_torch_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A legacy (non-zip) torch state dict file -> {name: array}; ValueError naming the file if unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from None
    try:
        return _parse(data)
    except _Unreadable as fault:
        raise ValueError(f"{path} {_one_line(str(fault))}") from None


def _parse(data: bytes) -> dict[str, np.ndarray]:
    if data.startswith(_ZIP_MAGIC):
        raise _Unreadable(
            "is a zip-format torch file (torch >= 1.6), not the legacy format; "
            "re-save it with torch.save(state_dict, path, _use_new_zipfile_serialization=False)"
        )
    if not data:
        raise _Unreadable("is empty, not a torch weights file")
    f = io.BytesIO(data)
    try:
        magic = _RestrictedUnpickler(f).load()
    except Exception:  # a photo or a text file unpickles into any error at all
        magic = None
    if magic != MAGIC_NUMBER:
        raise _Unreadable("is not a legacy torch weights file (bad magic number)")
    if (version := _load(f, "protocol version")) != PROTOCOL_VERSION:
        raise _Unreadable(f"has torch protocol version {version!r}, not {PROTOCOL_VERSION}")
    system = _load(f, "system info")
    if not isinstance(system, dict) or system.get("little_endian") is not True:
        raise _Unreadable("was not written little-endian, which this reader does not support")
    unpickler = _RestrictedUnpickler(f)
    state = _load(f, "object pickle", unpickler)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()):
        raise _Unreadable("does not hold a mapping of names to tensors (a state dict)")
    keys = _load(f, "storage key list")
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)) or sorted(keys) != sorted(unpickler.storages):
        raise _Unreadable("has a storage key list that does not match the storages its tensors use")
    arrays = {key: _read_storage(f, len(data), unpickler.storages[key]) for key in keys}
    return {name: _view(name, ref, arrays[ref.storage.key]) for name, ref in state.items()}


def _load(f: io.BytesIO, what: str, unpickler: pickle.Unpickler | None = None) -> Any:
    """One pickle from the file, every failure as an _Unreadable that says which part broke."""
    start = f.tell()
    try:
        return (unpickler or _RestrictedUnpickler(f)).load()
    except _Unreadable:
        raise
    except EOFError:
        raise _Unreadable(f"is truncated: it ends inside the {what} at byte {start}") from None
    except Exception as error:  # a corrupt pickle can raise nearly anything; all mean the same here
        if "truncated" in str(error):
            raise _Unreadable(f"is truncated: it ends inside the {what} at byte {start}") from None
        raise _Unreadable(f"has a corrupt {what} at byte {start} ({type(error).__name__}: {error})") from None


def _read_storage(f: io.BytesIO, end: int, storage: _Storage) -> np.ndarray:
    """One storage's elements; the sizes are checked against the bytes left before anything is allocated."""
    header = f.read(8)
    if len(header) < 8:
        raise _Unreadable(f"is truncated: storage {storage.key} wants an 8-byte size, {len(header)} left")
    numel = int.from_bytes(header, "little", signed=True)
    if numel != storage.numel:
        raise _Unreadable(f"has storage {storage.key} of {numel} elements where its tensors say {storage.numel}")
    dtype = np.dtype(storage.storage_type.dtype)
    wanted, left = numel * dtype.itemsize, end - f.tell()
    if left < wanted:
        raise _Unreadable(f"is truncated: storage {storage.key} wants {wanted} bytes, {left} left")
    array = np.empty(numel, dtype)
    f.readinto(memoryview(array).cast("B"))
    return array


def _view(name: str, ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """The tensor's elements of its storage, copied out in C order; refused if they reach past its end."""
    if 0 in ref.size:
        return np.empty(ref.size, storage.dtype)
    if (count := int(np.prod(ref.size, dtype=object))) > storage.size:
        raise _Unreadable(f"has tensor {name} of {count} elements in a {storage.size}-element storage")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= storage.size:
        raise _Unreadable(f"has tensor {name} reaching element {last} of a {storage.size}-element storage")
    strides = tuple(s * storage.itemsize for s in ref.stride)
    return np.lib.stride_tricks.as_strided(storage[ref.offset:], ref.size, strides, writeable=False).copy()


def _one_line(text: str) -> str:
    return " ".join(text.split())
