"""Command-line flags for every `PipelineConfig` field, shared by `run`, `kubeflow compile` and `experiment`.

Defaults are read from the config dataclasses, so `--help` and the code cannot
disagree about them.
"""
import argparse
import dataclasses
from collections.abc import Callable

from cli.arg_types import positive_int
from models import features
from models.registry import MODELS
from models.spec import (
    ArticleConfig,
    CLASS_WEIGHTINGS,
    CNN_CHANNELS,
    FEATURE_VARIANTS,
    SAMPLINGS,
    PreprocessingConfig,
    TrainingConfig,
)
from pipeline.config import TASKS, GateConfig, PipelineConfig

_PRE = PreprocessingConfig()
_TRAIN = TrainingConfig()
_GATES = GateConfig()
_ARTICLE = ArticleConfig()


def number_or_off(meaning: str) -> Callable[[str], float | None]:
    """An argparse type: a number, or `off` (None) for what the flag switches off; `meaning` names the number."""

    def parse(text: str) -> float | None:
        if text == "off":
            return None
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {meaning} or 'off', got {text!r}") from None

    return parse


recall_or_off = number_or_off("a recall in (0, 1]")
"""A target recall, or `off` for a fixed decision threshold."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task", choices=TASKS, default=PipelineConfig.task,
        help="classify: learn defective from clean on labelled photos (--model); reference: learn one leather "
        "article from its clean photos (--data a folder of clean photos, --validation photos with masks) and flag "
        "what differs from them (default %(default)s)",
    )
    model = parser.add_argument_group("model and training")
    model.add_argument("--model", choices=list(MODELS), default=_TRAIN.model,
                       help="; ".join(f"{entry.name}: {entry.summary}" for entry in MODELS.values()) + " (default %(default)s)")
    model.add_argument("--hidden-units", type=int, default=_TRAIN.hidden_units, help="MLP hidden units (reference: 10, 20, 50, 100; default %(default)s)")
    model.add_argument("--feature-variant", choices=FEATURE_VARIANTS, default=_PRE.feature_variant,
                       help="MLP input: 5x5 block edge counts, the 50x50 edge map, or 50x50 gray pixels (default %(default)s)")
    model.add_argument("--resolution", dest="cnn_resolution", type=int, choices=features.CNN_RESOLUTIONS, default=_PRE.cnn_resolution, help="CNN input size (default: the model's own, "
                       + ", ".join(f"{entry.name} {entry.resolution}" for entry in MODELS.values() if entry.reads_image) + ")")
    model.add_argument("--channels", dest="cnn_channels", type=int, choices=CNN_CHANNELS, default=_PRE.cnn_channels, help="CNN input channels: 3 RGB, 1 grayscale (default: the model's own, "
                       + ", ".join(f"{entry.name} {entry.channels}" for entry in MODELS.values() if entry.reads_image) + ")")
    model.add_argument("--epochs", type=int, default=_TRAIN.epochs,
                       help="maximum epochs, early stopping may end sooner (default by model: "
                       + ", ".join(f"{entry.name} {entry.epochs}" for entry in MODELS.values()) + ")")
    model.add_argument("--batch-size", type=int, default=_TRAIN.batch_size, help="per replica (default %(default)s)")
    model.add_argument("--learning-rate", type=float, default=_TRAIN.learning_rate,
                       help="Adam learning rate (default by model: "
                       + ", ".join(f"{entry.name} {entry.learning_rate:g}" for entry in MODELS.values()) + ")")
    model.add_argument("--patience", dest="early_stopping_patience", type=int, default=_TRAIN.early_stopping_patience, help="early-stopping patience in epochs (default %(default)s)")
    model.add_argument("--class-weighting", choices=CLASS_WEIGHTINGS, default=_TRAIN.class_weighting,
                       help="inverse-frequency loss weights (default: %(default)s)")
    model.add_argument("--sampling", choices=SAMPLINGS, default=_TRAIN.sampling,
                       help="balanced: half-defective training batches, use with --class-weighting none (default: %(default)s)")
    model.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=_TRAIN.mixed_precision,
                       help="float16 compute on GPUs (never on CPU; default: %(default)s)")
    model.add_argument("--pretrained-weights", default=_TRAIN.pretrained_weights, metavar="H5",
                       help="AlexNet only: a local Keras HDF5 weights file loaded by layer name (default: train from scratch)")
    model.add_argument("--target-recall", type=recall_or_off, default=_TRAIN.target_recall, metavar="R|off",
                       help="choose the decision threshold on the validation split to reach this recall of defects and "
                       "store it in the model; the served label and the Evaluator's accuracy, precision and recall "
                       "use it; off: use --decision-threshold (default %(default)s)")
    model.add_argument("--decision-threshold", type=float, default=_TRAIN.decision_threshold,
                       help="with --target-recall off, the probability from which a photo is labelled defective "
                       "(default %(default)s)")
    model.add_argument("--augment", action=argparse.BooleanOptionalAction, default=_TRAIN.augment,
                       help="random hue, saturation, brightness, contrast, gray, flips, quarter turns and scale crops "
                       "of training images, for models that read an image; never applied when serving; "
                       "--no-augment to reproduce the reference (default: %(default)s)")
    model.add_argument("--seed", type=int, default=_TRAIN.seed, help="training seed (default %(default)s)")

    edges = parser.add_argument_group("edge features")
    edges.add_argument("--canny-low", type=float, default=_PRE.canny_low, help="low threshold, fraction of the max gradient (default %(default)s)")
    edges.add_argument("--canny-high", type=float, default=_PRE.canny_high, help="high threshold, fraction of the max gradient (default %(default)s)")
    edges.add_argument("--canny-sigma", type=float, default=_PRE.canny_sigma, help="Gaussian sigma (default sqrt(2))")

    gates = parser.add_argument_group("gates")
    gates.add_argument("--min-minority-share", type=float, default=_GATES.min_minority_share, help="class-balance gate on the training split (default %(default)s)")
    gates.add_argument("--min-accuracy", type=float, default=_GATES.min_accuracy, help="absolute accuracy floor for blessing (default %(default)s)")
    gates.add_argument("--min-auc", type=float, default=_GATES.min_auc, help="absolute ROC-AUC floor for blessing (default %(default)s)")
    gates.add_argument("--max-accuracy-drop", type=float, default=_GATES.max_accuracy_drop, help="allowed accuracy drop against the last blessed model (default %(default)s)")
    gates.add_argument("--max-auc-drop", type=float, default=_GATES.max_auc_drop, help="allowed ROC-AUC drop against the last blessed model (default %(default)s)")
    gates.add_argument("--min-shifted-auc", type=number_or_off("an ROC-AUC in [0, 1]"), default=_GATES.min_shifted_auc,
                       metavar="AUC|off",
                       help="ROC-AUC floor on every colour variant of the test photos (gray, hue turns, saturation, "
                       "brightness, contrast), so on the worst: refuses a model that learned the leather's colour; "
                       "off: no such gate, the variant table is still shown (default %(default)s)")
    gates.add_argument("--max-image-pixels", type=int, default=_GATES.max_image_pixels,
                       help="images whose header declares more pixels stop the run at the data gate (default %(default)s)")

    gates.add_argument(
        "--on-drift", dest="stop_on_drift", type=_on_drift, default=_GATES.stop_on_drift, metavar="stop|warn",
        help="when the newest span's photo descriptors or defect-type shares drift from the span before beyond the "
        "schema's drift_comparator bounds: stop the run before Transform, or only warn in the report (default stop)",
    )

    article = parser.add_argument_group("reference task (--task reference)")
    add_article_arguments(article)
    article.add_argument("--min-image-auc", type=float, default=_GATES.min_image_auc,
                         help="image ROC-AUC floor on the validation photos (default %(default)s)")
    article.add_argument("--min-pixel-auc", type=float, default=_GATES.min_pixel_auc,
                         help="pixel ROC-AUC floor on the validation photos' masks (default %(default)s)")

    data = parser.add_argument_group("spans")
    data.add_argument(
        "--spans", type=positive_int, default=PipelineConfig.spans, metavar="K",
        help="train on the newest K spans of the data folder; each run ingests the newest span, older ones come from "
        "earlier runs (default %(default)s)",
    )

    beam = parser.add_argument_group("Beam")
    beam.add_argument("--beam-arg", action="append", default=None, metavar="FLAG",
                      help="a Beam pipeline flag, repeatable (default: DirectRunner in multi-processing mode on all cores)")


def add_article_arguments(article: argparse._ArgumentGroup) -> None:
    """The flags of every `ArticleConfig` field: how an article model is fitted on clean photos."""
    article.add_argument("--article-scale", dest="scale", type=float, default=_ARTICLE.scale,
                         help="processing pixels per photo pixel: photos are resized by this before the backbone "
                         "(default %(default)s)")
    article.add_argument("--bank-size", type=positive_int, default=_ARTICLE.bank_size,
                         help="most clean patches the memory bank keeps, chosen by greedy coreset (default %(default)s)")
    article.add_argument("--colour-blind", action="store_true",
                         help="fit and inspect on gray photos (default: colour counts, a stain is a defect)")
    article.add_argument("--false-alarm-rate", type=float, default=_ARTICLE.false_alarm_rate,
                         help="share of clean photos of the references' size let above the decision threshold, by an "
                         "extreme-value fit of the clean photos' held-out patch scores (default %(default)s)")
    article.add_argument("--threshold-margin", type=float, default=_ARTICLE.threshold_margin,
                         help="the decision threshold is at least this times the highest held-out patch score of the "
                         "clean photos (default %(default)s)")
    article.add_argument("--max-reference-outlier", type=float, default=_ARTICLE.max_reference_outlier,
                         help="refuse a clean photo whose most unusual patch scores this many times the other photos' "
                         "typical highest (default %(default)s)")


def article_from_args(args: argparse.Namespace) -> ArticleConfig:
    return _part(ArticleConfig, args)


def _on_drift(text: str) -> bool:
    if text not in ("stop", "warn"):
        raise argparse.ArgumentTypeError(f"must be stop or warn, not {text!r}")
    return text == "stop"


def _part(cls: type, args: argparse.Namespace):
    """A config dataclass from the flags whose destination is one of its fields (flags are named after fields)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def config_from_args(args: argparse.Namespace, data_dir: str, workdir: str) -> PipelineConfig:
    """The one mapping from flags to a `PipelineConfig`; ValueError names a bad combination."""
    return PipelineConfig(
        data_dir=data_dir,
        workdir=workdir,
        serving_dir=getattr(args, "serving_dir", None),
        preprocessing=_part(PreprocessingConfig, args),
        training=_part(TrainingConfig, args),
        gates=_part(GateConfig, args),
        spans=getattr(args, "spans", PipelineConfig.spans),
        task=getattr(args, "task", PipelineConfig.task),
        article=_part(ArticleConfig, args),
        **({"beam_args": tuple(args.beam_arg)} if args.beam_arg else {}),
    )
