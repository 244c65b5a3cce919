"""Every parameter of a pipeline run, in one object.

The CLI, the local runner and the Kubeflow runner all build the pipeline from a
`PipelineConfig`; the Transform and Trainer code receive their parts of it as
`custom_config` dicts and rebuild the same dataclasses, so each parameter has
one name and one default in the whole project.
"""
from __future__ import annotations

import dataclasses
import pathlib
import posixpath
from typing import Any, Literal

from models import features

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = REPO_ROOT / "schema" / "schema.pbtxt"

ModelName = Literal["mlp", "alexnet"]
FeatureVariant = Literal["blocks", "edges", "gray"]
ClassWeighting = Literal["balanced", "none"]
Sampling = Literal["natural", "balanced"]


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """What the Transform step computes; the served model applies the same graph."""

    feature_size: int = features.FEATURE_SIZE
    block_grid: int = features.BLOCK_GRID
    canny_low: float = features.CANNY_LOW
    canny_high: float = features.CANNY_HIGH
    canny_sigma: float = features.CANNY_SIGMA
    feature_variant: FeatureVariant = "blocks"
    cnn_resolution: int = 150
    cnn_channels: int = 3

    def __post_init__(self) -> None:
        if self.feature_size % self.block_grid:
            raise ValueError(f"feature_size {self.feature_size} is not divisible by block_grid {self.block_grid}")
        if not 0.0 <= self.canny_low <= self.canny_high <= 1.0:
            raise ValueError(f"Canny thresholds must satisfy 0 <= low <= high <= 1, got [{self.canny_low}, {self.canny_high}]")
        if self.cnn_resolution not in features.CNN_RESOLUTIONS:
            raise ValueError(f"cnn_resolution must be one of {features.CNN_RESOLUTIONS}, got {self.cnn_resolution}")
        if self.cnn_channels not in (1, 3):
            raise ValueError(f"cnn_channels must be 1 (grayscale) or 3 (RGB), got {self.cnn_channels}")
        if self.feature_variant not in ("blocks", "edges", "gray"):
            raise ValueError(f"unknown feature_variant {self.feature_variant!r}")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the Trainer builds and fits the model."""

    model: ModelName = "mlp"
    hidden_units: int = 50
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float | None = None
    """Adam's learning rate; None takes the model's default in DEFAULT_LEARNING_RATES."""
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
    """A local Keras HDF5 weights file for AlexNet, loaded by layer name; None trains from scratch."""
    seed: int = 42

    def __post_init__(self) -> None:
        if self.model not in ("mlp", "alexnet"):
            raise ValueError(f"unknown model {self.model!r} (choose mlp or alexnet)")
        if self.hidden_units < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("hidden_units, epochs and batch_size must be positive")
        if not 0.0 < self.decision_threshold < 1.0:
            raise ValueError(f"decision_threshold must be in (0, 1), got {self.decision_threshold}")
        if self.target_recall is not None and not 0.0 < self.target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {self.target_recall}")
        if self.learning_rate is not None and not self.learning_rate > 0.0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.class_weighting not in ("balanced", "none"):
            raise ValueError(f"unknown class_weighting {self.class_weighting!r} (choose balanced or none)")
        if self.sampling not in ("natural", "balanced"):
            raise ValueError(f"unknown sampling {self.sampling!r} (choose natural or balanced)")
        if self.sampling == "balanced" and self.class_weighting != "none":
            raise ValueError("sampling 'balanced' already evens out the classes: set class_weighting to 'none'")
        if self.pretrained_weights is not None and self.model != "alexnet":
            raise ValueError(f"pretrained_weights is for AlexNet only, but model is {self.model!r}")

    def optimizer_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.model]


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Bounds that stop a run on skewed data or keep a weak model from being pushed."""

    min_minority_share: float = 0.10
    min_accuracy: float = 0.6
    min_auc: float = 0.6
    max_accuracy_drop: float = 0.02
    max_auc_drop: float = 0.02


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One pipeline run: where data and artifacts live, and the parts above."""

    data_dir: str
    workdir: str
    pipeline_name: str = "leather-inspection"
    serving_dir: str | None = None
    schema_path: str = str(DEFAULT_SCHEMA)
    split_buckets: tuple[int, int, int] = (6, 1, 3)
    preprocessing: PreprocessingConfig = dataclasses.field(default_factory=PreprocessingConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gates: GateConfig = dataclasses.field(default_factory=GateConfig)
    beam_args: tuple[str, ...] = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")

    # Paths join as strings, not pathlib paths, so an object-store workdir keeps its "gs://".
    @property
    def pipeline_root(self) -> str:
        return posixpath.join(self.workdir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return posixpath.join(self.workdir, "metadata.sqlite")

    @property
    def push_destination(self) -> str:
        return self.serving_dir or posixpath.join(self.workdir, "serving")


    def model_input_key(self) -> str:
        """The transformed feature the configured model reads."""
        if self.training.model == "alexnet":
            return features.CNN_IMAGE_KEY
        return MLP_INPUT_KEYS[self.preprocessing.feature_variant]

    def transform_custom_config(self) -> dict[str, Any]:
        """Transform's part: only the model input it needs is materialised (a 150 px image is 270 kB)."""
        return {"preprocessing": dataclasses.asdict(self.preprocessing), "model_input": self.model_input_key()}

    def trainer_custom_config(self) -> dict[str, Any]:
        return {**self.transform_custom_config(), "training": dataclasses.asdict(self.training)}


DEFAULT_LEARNING_RATES: dict[str, float] = {"mlp": 1e-3, "alexnet": 1e-4}
"""Adam learning rates when none is given: a smaller step for AlexNet's 23-70M weights trained from scratch."""

MLP_INPUT_KEYS: dict[str, str] = {
    "blocks": features.BLOCK_COUNTS_KEY,
    "edges": features.EDGE_PIXELS_KEY,
    "gray": features.GRAY_PIXELS_KEY,
}


def preprocessing_from_custom_config(custom_config: dict[str, Any]) -> PreprocessingConfig:
    return PreprocessingConfig(**custom_config["preprocessing"])


def training_from_custom_config(custom_config: dict[str, Any]) -> TrainingConfig:
    return TrainingConfig(**custom_config["training"])
