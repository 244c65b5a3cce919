"""How whole-hide inspection scores tiles and draws its map, free of NumPy and TensorFlow.

`leather inspect` shows these defaults in its --help, which must answer at once;
inspection/scoring.py does the scoring with them (inspection/dense_inspection.py with DENSE_THRESHOLD). The defaults were chosen for
the 150 px texture model on synthetic hides of other colours and grain than those
the results are reported on (docs/results/whole-hide.md); the threshold depends
on the model and needs choosing again for another one.
"""
import dataclasses

DENSE_THRESHOLD = 23.0
"""Dense self-referenced patch scores (inspection/dense_inspection.py): the score, in the hide's own spreads above
its median, from which a pixel is defective. Chosen on the tuning hides only (12 brown 1024x1024 synthetic hides,
seed 21, 4 clean): the clean hides peaked at 18.0-22.2, so 23 is the lowest round value that flagged no region on
any of them (nor a false one on the defective); it located 7 of their 16 defects."""
HEATMAP_MAX_SIDE = 2048
"""Longest side of the heatmap PNG `leather inspect` writes, the photo shrunk to it (--heatmap-side)."""


@dataclasses.dataclass(frozen=True)
class ScoringSettings:
    """How tiles are scored and when a pixel counts as defective; `leather inspect` exposes each as a flag."""

    neighbours: int = 5
    """Nearest non-overlapping tiles a tile's distance is averaged over."""
    confidence: float = 0.9
    """Classifier probability from which its word counts."""
    classifier_weight: float = 2.0
    """Weight of the classifier's normalised logit beside the distance score."""
    threshold: float = 18.0
    """Score (in the hide's own spreads above its median) from which a pixel is defective."""

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")
        if self.classifier_weight < 0:
            raise ValueError(f"classifier weight must not be negative, got {self.classifier_weight}")
