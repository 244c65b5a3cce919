"""Every model the pipeline can train, and what the Trainer and Transform ask of each.

Adding a model is one module with a `build` function plus one entry here: the
CLI's `--model` choices, the Transform's materialised input, the Trainer's
learning rate and input standardisation all read this table, so nothing else
branches on a model's name. Model modules load only when a model is built, so
the CLI answers `--help` without starting TensorFlow.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from models import features, serving_contract

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

    from models.spec import PreprocessingConfig, TrainingConfig

    Moments = tuple[np.ndarray, np.ndarray]
    """Per-feature mean and variance of the training split's model input."""

MLP_INPUT_KEYS: dict[str, str] = {
    "blocks": features.BLOCK_COUNTS_KEY,
    "edges": features.EDGE_PIXELS_KEY,
    "gray": features.GRAY_PIXELS_KEY,
}
"""The transformed feature the MLP reads for each reference Table 2 variant (`feature_variant`)."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    summary: str
    """One line for `--help`."""
    builder: str
    """`module:function` making the uncompiled network from (training config, input shape without the batch axis, moments)."""
    input_key: Callable[[PreprocessingConfig], str]
    """The transformed feature the model reads."""
    learning_rate: float
    """Adam's step when the run gives none."""
    epochs: int
    """Training epochs when the run gives none."""
    reads_image: bool = False
    """Whether the input is an image, which training augments unless told not to."""
    decays_learning_rate: bool = False
    """Whether the step follows a cosine from `learning_rate` to zero over the epochs."""
    standardises_inputs: bool = False
    """Whether `build` wants the training split's per-feature moments, baked into the served model."""
    takes_pretrained_weights: bool = False
    embedding_layer: str | None = None
    """The layer whose output the serving signatures also return as `embedding`."""
    resolution: int = 150
    """The CNN image's side when the run gives none (`PreprocessingConfig.cnn_resolution` None)."""
    channels: int = 3
    """The CNN image's channels when the run gives none: 3 RGB, 1 gray (a model that reads luminance only
    needs a third of the Transform output)."""
    frozen_features: bool = False
    """Whether `build` gives a frozen extractor (image -> features and embedding) whose features are computed
    once and a head fitted on them (models/frozen_fit.py), instead of a network trained end to end."""
    dense_patch_features: bool = False
    """Whether the served model also answers `patch_features` (models/patch_signature.py): a frozen Lite0's
    dense features of a whole photo, which `leather inspect` scores patch by patch against the rest of the hide."""
    best_epoch_by: str = "val_loss"
    """The validation metric that early stopping watches and that picks the epoch restored: `val_loss` (lowest) or `val_auc` (highest)."""

    def build(self, training: TrainingConfig, input_shape: tuple[int, ...], moments: Moments | None) -> tf.keras.Model:
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)(training, input_shape, moments)


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="mlp",
            summary="the reference's one-hidden-layer network on edge features (--feature-variant, --hidden-units)",
            builder="models.mlp:build",
            input_key=lambda preprocessing: MLP_INPUT_KEYS[preprocessing.feature_variant],
            learning_rate=1e-3,
            epochs=60,
            standardises_inputs=True,
        ),
        ModelEntry(
            name="alexnet",
            summary="the reference's Table 1 AlexNet, from scratch (--resolution, --channels)",
            builder="models.alexnet:build",
            input_key=lambda preprocessing: features.CNN_IMAGE_KEY,
            # A small step for 23-70M weights trained from scratch.
            learning_rate=1e-4,
            epochs=60,
            reads_image=True,
            takes_pretrained_weights=True,
        ),
        ModelEntry(
            name="backbone",
            summary="frozen ImageNet EfficientNet-Lite0 on per-photo standardised luminance, blind to colour, "
            "its maps' means, spreads and maxima at strides 8/16/32 into a logistic head; returns an embedding",
            builder="models.backbone_classifier:build",
            input_key=lambda preprocessing: features.CNN_IMAGE_KEY,
            learning_rate=1e-3,
            epochs=200,
            reads_image=True,
            resolution=224,
            channels=1,
            frozen_features=True,
            embedding_layer=serving_contract.EMBEDDING_OUTPUT,
            dense_patch_features=True,
            best_epoch_by="val_auc",
        ),
        ModelEntry(
            name="texture",
            summary="a residual CNN on per-photo standardised luminance, blind to the leather's colour; "
            "returns an embedding per photo (--resolution)",
            builder="models.texture:build",
            input_key=lambda preprocessing: features.CNN_IMAGE_KEY,
            learning_rate=2e-3,
            epochs=20,
            reads_image=True,
            decays_learning_rate=True,
            embedding_layer=serving_contract.EMBEDDING_OUTPUT,
            # Under strong augmentation and a decaying step the validation loss of 245 photos is noise around a
            # slow trend: on the real set it stopped the run at epoch 12 and restored epoch 2 (ROC-AUC 0.90).
            best_epoch_by="val_auc",
        ),
    )
}
DEFAULT_MODEL = "backbone"


def model_entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (choose one of {', '.join(MODELS)})") from None
