"""Every parameter of a pipeline run, in one object.

The CLI, the local runner and the Kubeflow runner all build the pipeline from a
`PipelineConfig`. It holds the run (paths, splits, gates, Beam arguments) and,
from `models.spec`, the preprocessing and training configs that the Transform
and Trainer code receive as `custom_config` dicts, so each parameter has one
name and one default in the whole project.
"""
from __future__ import annotations

import dataclasses
import pathlib
import posixpath
from typing import Any

from models import features, spec
from models.spec import ArticleConfig, PreprocessingConfig, TrainingConfig

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = REPO_ROOT / "schema" / "schema.pbtxt"
ARTICLE_SCHEMA = REPO_ROOT / "schema" / "article_schema.pbtxt"
TASKS = ("classify", "reference")
"""classify: learn defective from clean on labelled photos; reference: learn one leather article from its clean photos."""


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Bounds that stop a run on skewed data or keep a weak model from being pushed."""

    min_minority_share: float = 0.10
    min_accuracy: float = 0.6
    min_auc: float = 0.6
    max_accuracy_drop: float = 0.02
    max_auc_drop: float = 0.02
    min_shifted_auc: float | None = 0.6
    """ROC-AUC floor on every colour variant of the test photos (so on the worst); None: no such gate, the table stays."""
    stop_on_drift: bool = True
    """Drift of the newest span from the one before beyond the schema's drift_comparator bounds stops the run; False: a warning in the report."""
    max_image_pixels: int = features.MAX_IMAGE_PIXELS
    """Images whose header declares more pixels stop the run at the data gate; the importer's --max-pixels defaults to the same."""
    min_image_auc: float = 0.9
    """Reference task: image ROC-AUC floor on the validation photos (when they hold clean and defective ones)."""
    min_pixel_auc: float = 0.9
    """Reference task: pixel ROC-AUC floor on the validation photos' masks."""

    def __post_init__(self) -> None:
        if self.min_shifted_auc is not None and not 0.0 <= self.min_shifted_auc <= 1.0:
            raise ValueError(f"min_shifted_auc must be in [0, 1] or off, got {self.min_shifted_auc}")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One pipeline run: where data and artifacts live, and the parts above."""

    data_dir: str
    workdir: str
    pipeline_name: str = "leather-inspection"
    serving_dir: str | None = None
    schema_path: str = str(DEFAULT_SCHEMA)
    split_buckets: tuple[int, int, int] = (6, 1, 3)
    spans: int = 1
    """Train on the newest this many spans of `data_dir` (ExampleGen ingests one span a run; older ones from earlier runs)."""
    preprocessing: PreprocessingConfig = dataclasses.field(default_factory=PreprocessingConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gates: GateConfig = dataclasses.field(default_factory=GateConfig)
    beam_args: tuple[str, ...] = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")
    task: str = "classify"
    article: ArticleConfig = dataclasses.field(default_factory=ArticleConfig)
    """The reference task's fitting (pipeline/reference_pipeline.py)."""

    def __post_init__(self) -> None:
        if self.spans < 1:
            raise ValueError(f"spans must be at least 1, got {self.spans}")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r} (choose {' or '.join(TASKS)})")
        if self.task == "reference" and self.spans != 1:
            raise ValueError("the reference task fits one article from one set of photos: --spans does not apply")

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
        return spec.model_input_key(self.preprocessing, self.training)

    def transform_custom_config(self) -> dict[str, Any]:
        return spec.transform_custom_config(self.preprocessing, self.training)

    def trainer_custom_config(self) -> dict[str, Any]:
        return spec.trainer_custom_config(self.preprocessing, self.training)
