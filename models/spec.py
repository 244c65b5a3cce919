"""The typed config tree of preprocessing and training, the lowest layer of the house.

`PipelineConfig` (pipeline/), the CLI flags, the experiment grids and the
Transform and Trainer code all hold these two frozen dataclasses; Transform and
Trainer receive them as `custom_config` dicts and rebuild them here, so each
parameter has one name and one default in the whole project. What differs by
model (its input, its learning rate, whether it augments) is asked of the
registry, never branched on here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

from models import features
from models.registry import DEFAULT_MODEL, MODELS, model_entry

FeatureVariant = Literal["blocks", "edges", "gray"]
FEATURE_VARIANTS: tuple[str, ...] = ("blocks", "edges", "gray")
ClassWeighting = Literal["balanced", "none"]
CLASS_WEIGHTINGS: tuple[str, ...] = ("balanced", "none")
Sampling = Literal["natural", "balanced"]
SAMPLINGS: tuple[str, ...] = ("natural", "balanced")
CNN_CHANNELS: tuple[int, ...] = (1, 3)


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """What the Transform step computes; the served model applies the same graph."""

    feature_size: int = features.FEATURE_SIZE
    block_grid: int = features.BLOCK_GRID
    canny_low: float = features.CANNY_LOW
    canny_high: float = features.CANNY_HIGH
    canny_sigma: float = features.CANNY_SIGMA
    feature_variant: FeatureVariant = "blocks"
    cnn_resolution: int | None = None
    """None takes the model's resolution from the registry (`with_model_defaults`)."""
    cnn_channels: int | None = None
    """None takes the model's channels from the registry."""

    def __post_init__(self) -> None:
        if self.feature_size % self.block_grid:
            raise ValueError(f"feature_size {self.feature_size} is not divisible by block_grid {self.block_grid}")
        if not 0.0 <= self.canny_low <= self.canny_high <= 1.0:
            raise ValueError(f"Canny thresholds must satisfy 0 <= low <= high <= 1, got [{self.canny_low}, {self.canny_high}]")
        if self.cnn_resolution is not None and self.cnn_resolution not in features.CNN_RESOLUTIONS:
            raise ValueError(f"cnn_resolution must be one of {features.CNN_RESOLUTIONS}, got {self.cnn_resolution}")
        if self.cnn_channels is not None and self.cnn_channels not in CNN_CHANNELS:
            raise ValueError(f"cnn_channels must be 1 (grayscale) or 3 (RGB), got {self.cnn_channels}")
        if self.feature_variant not in FEATURE_VARIANTS:
            raise ValueError(f"unknown feature_variant {self.feature_variant!r} (choose one of {', '.join(FEATURE_VARIANTS)})")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the Trainer builds and fits the model."""

    model: str = DEFAULT_MODEL
    hidden_units: int = 50
    epochs: int | None = None
    """None takes the model's default from the registry."""
    batch_size: int = 32
    learning_rate: float | None = None
    """Adam's learning rate; None takes the model's default from the registry."""
    early_stopping_patience: int = 10
    class_weighting: ClassWeighting = "balanced"
    sampling: Sampling = "natural"
    """`balanced` draws training batches half defective, half clean (instead of class weights)."""
    target_recall: float | None = 0.95
    """The decision threshold is chosen on the validation split to reach this recall of defects; None fixes it."""
    decision_threshold: float = 0.5
    """The threshold used when `target_recall` is None."""
    mixed_precision: bool = True
    pretrained_weights: str | None = None
    """A local Keras HDF5 weights file, loaded by layer name, for models that take one; None trains from scratch."""
    augment: bool = True
    """Random colour and geometry changes of the training images (models that read an image; never in serving)."""
    seed: int = 42

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r} (choose one of {', '.join(MODELS)})")
        if self.hidden_units < 1 or self.batch_size < 1 or (self.epochs is not None and self.epochs < 1):
            raise ValueError("hidden_units, epochs and batch_size must be positive")
        if not 0.0 < self.decision_threshold < 1.0:
            raise ValueError(f"decision_threshold must be in (0, 1), got {self.decision_threshold}")
        if self.target_recall is not None and not 0.0 < self.target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {self.target_recall}")
        if self.learning_rate is not None and not self.learning_rate > 0.0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(f"unknown class_weighting {self.class_weighting!r} (choose balanced or none)")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {self.sampling!r} (choose natural or balanced)")
        if self.sampling == "balanced" and self.class_weighting != "none":
            raise ValueError("sampling 'balanced' already evens out the classes: set class_weighting to 'none'")
        if self.pretrained_weights is not None and not model_entry(self.model).takes_pretrained_weights:
            raise ValueError(f"pretrained_weights is for AlexNet only, but model is {self.model!r}")

    def optimizer_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else model_entry(self.model).learning_rate

    def training_epochs(self) -> int:
        return self.epochs if self.epochs is not None else model_entry(self.model).epochs


@dataclasses.dataclass(frozen=True)
class ArticleConfig:
    """How an article model (reference-based inspection, models/article.py) is fitted on clean photos of one leather."""

    scale: float = 1.0
    """Processing pixels per photo pixel: the photo is resized by this before the backbone sees it."""
    bank_size: int = 5_000
    """Most patches the memory bank keeps (a greedy coreset); every patch when the photos have fewer."""
    colour_blind: bool = False
    """Gray photos only; by default colour counts (a stain on its own leather is a defect)."""
    false_alarm_rate: float = 0.01
    """Share of clean photos (of the references' size) allowed above the threshold, by an extreme-value fit of the
    clean photos' held-out scores (models/article_threshold.py)."""
    threshold_margin: float = 1.0
    """The threshold is at least this times the highest held-out patch score of the clean photos."""
    max_reference_outlier: float = 1.5
    """A clean photo whose highest held-out patch score passes this times the typical one is refused as a likely defect."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.scale <= 4.0:
            raise ValueError(f"scale must lie between 0.05 and 4, got {self.scale}")
        if not 1 <= self.bank_size <= ARTICLE_BANK_LIMIT:
            raise ValueError(f"bank_size must lie between 1 and {ARTICLE_BANK_LIMIT:,}, got {self.bank_size}")
        if not 0.0 < self.false_alarm_rate < 0.5:
            raise ValueError(f"false_alarm_rate must lie between 0 and 0.5, got {self.false_alarm_rate}")
        if not self.threshold_margin >= 1.0:
            raise ValueError(f"threshold_margin must be at least 1, got {self.threshold_margin}")
        if not self.max_reference_outlier > 1.0:
            raise ValueError(f"max_reference_outlier must be above 1, got {self.max_reference_outlier}")


ARTICLE_BANK_LIMIT = 50_000
"""Largest memory bank: 50,000 x 152 floats is 30 MB of SavedModel constant, and each query compares with all of it."""


def model_input_key(preprocessing: PreprocessingConfig, training: TrainingConfig) -> str:
    """The transformed feature the configured model reads."""
    return model_entry(training.model).input_key(preprocessing)


def with_model_defaults(preprocessing: PreprocessingConfig, training: TrainingConfig) -> PreprocessingConfig:
    """The preprocessing with its CNN image's side and channels settled: the run's, or the configured model's own."""
    entry = model_entry(training.model)
    return dataclasses.replace(
        preprocessing,
        cnn_resolution=preprocessing.cnn_resolution or entry.resolution,
        cnn_channels=preprocessing.cnn_channels or entry.channels,
    )


def transform_custom_config(preprocessing: PreprocessingConfig, training: TrainingConfig) -> dict[str, Any]:
    """Transform's part: what `preprocessing_fn` computes, and nothing that only the Trainer reads.

    A model that reads an image gets the CNN image (a 224 px gray one is 200
    kB a photo) beside the block counts; the MLP gets all three flat inputs
    (20 kB), whichever `feature_variant` it reads. So runs that differ in the
    MLP's variant, or in any training setting, share one cached Transform.
    """
    settled = dataclasses.asdict(with_model_defaults(preprocessing, training))
    del settled["feature_variant"]
    reads_image = model_entry(training.model).reads_image
    if not reads_image:
        del settled["cnn_resolution"], settled["cnn_channels"]
    return {"preprocessing": settled, "cnn_image": reads_image}


def trainer_custom_config(preprocessing: PreprocessingConfig, training: TrainingConfig) -> dict[str, Any]:
    return {
        "preprocessing": dataclasses.asdict(with_model_defaults(preprocessing, training)),
        "model_input": model_input_key(preprocessing, training),
        "training": dataclasses.asdict(training),
    }


def preprocessing_from_custom_config(custom_config: dict[str, Any]) -> PreprocessingConfig:
    return PreprocessingConfig(**custom_config["preprocessing"])


def training_from_custom_config(custom_config: dict[str, Any]) -> TrainingConfig:
    return TrainingConfig(**custom_config["training"])
