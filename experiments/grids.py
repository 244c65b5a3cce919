"""The experiment grids: the reference's Table 2 for the MLP and its AlexNet resolution/epoch/subset grid."""
import dataclasses
from collections.abc import Sequence

from models import features
from models.spec import PreprocessingConfig, TrainingConfig

FEATURE_VARIANTS = ("gray", "edges", "blocks")
VARIANT_TITLES = {
    "gray": "no edge detection, no block division",
    "edges": "edge detection, no block division",
    "blocks": "edge detection and block division",
}
# The reference's Table 2 (test accuracy %), rows as VARIANT_TITLES, columns by hidden units.
REFERENCE_TABLE2 = {
    "gray": {10: 78.0, 20: 79.2, 50: 80.2, 100: 79.5},
    "edges": {10: 79.2, 20: 78.5, 50: 80.0, 100: 78.8},
    "blocks": {10: 78.6, 20: 78.8, 50: 80.3, 100: 79.3},
}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One configuration of a grid; `ratio` is majority images per minority image (None: all)."""

    name: str
    preprocessing: PreprocessingConfig
    training: TrainingConfig
    ratio: int | None = None
    brightness: str = "both"


def table2(epochs: int, target_recall: float | None = None) -> list[Experiment]:
    """`target_recall` calibrates each fold's threshold on its validation fold (None: 0.5, as the reference)."""
    return [
        Experiment(
            name=f"mlp-{variant}-h{units}",
            preprocessing=PreprocessingConfig(feature_variant=variant),
            training=TrainingConfig(model="mlp", hidden_units=units, epochs=epochs, target_recall=target_recall),
        )
        for variant in FEATURE_VARIANTS
        for units in features.MLP_HIDDEN_UNITS
    ]


def alexnet(
    resolutions: Sequence[int],
    epochs: Sequence[int],
    ratios: Sequence[int],
    brightness: Sequence[str],
    channels: Sequence[int],
    target_recall: float | None = None,
) -> list[Experiment]:
    """Early stopping is off here: the epoch count is the grid's variable, as in the reference."""
    return [
        Experiment(
            name=f"alexnet-{resolution}px-c{channel}-e{epoch}-r1to{ratio}-{light}",
            preprocessing=PreprocessingConfig(cnn_resolution=resolution, cnn_channels=channel),
            training=TrainingConfig(
                model="alexnet", epochs=epoch, early_stopping_patience=epoch, target_recall=target_recall, augment=False
            ),
            ratio=ratio,
            brightness=light,
        )
        for channel in channels
        for resolution in resolutions
        for epoch in epochs
        for ratio in ratios
        for light in brightness
    ]
