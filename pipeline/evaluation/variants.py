"""The colour-variant table: how each model ranks and labels the test photos in every colour.

A model that learned the leather's dye instead of the defect scores well on the
photos as taken and collapses on some variant (gray, a turned hue). The table
gives, per variant and model, ROC-AUC and the recall of each class at the
model's decision threshold, and marks each model's worst variant: the one the
robustness gate (`GateConfig.min_shifted_auc`) judges.
"""
from __future__ import annotations

import dataclasses
import math

from models.colour_variants import VARIANT_NAMES
from pipeline.evaluation.results import Evaluation
from pipeline.evaluation.spec import variant_slicing

ROLES = ("candidate", "baseline")


@dataclasses.dataclass(frozen=True)
class VariantScores:
    """One model on one variant; a recall is NaN when the variant's slice holds no photo of that class."""

    auc: float
    defect_recall: float
    clean_recall: float


@dataclasses.dataclass(frozen=True)
class VariantTable:
    """(variant, role -> scores) per variant, in the order of `models.colour_variants.VARIANTS`."""

    rows: list[tuple[str, dict[str, VariantScores]]] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, evaluation: Evaluation) -> VariantTable:
        """Empty for an evaluation without a variant slicing."""
        by_name = {}
        for _, slice_key in evaluation.slices(variant_slicing()):
            [(_, name)] = slice_key
            scores = {}
            for model, role in evaluation.roles().items():
                confusion = evaluation.confusion.get(slice_key, {}).get(model)
                auc = evaluation.plain_metrics(model, slice_key).get("auc")
                if confusion is not None and auc is not None:
                    scores[role] = VariantScores(auc, confusion.defect_recall, confusion.clean_recall)
            by_name[name] = scores
        return cls([(name, by_name[name]) for name in VARIANT_NAMES if name in by_name])

    @property
    def roles(self) -> list[str]:
        return [role for role in ROLES if any(role in scores for _, scores in self.rows)]

    def worst(self, role: str) -> str | None:
        """The variant on which the model's ROC-AUC is lowest; None when the table has no scores of it."""
        scored = [(scores[role].auc, name) for name, scores in self.rows if role in scores]
        return min(scored)[1] if scored else None

    def worst_of(self, variant: str) -> list[str]:
        """The roles whose worst variant this is."""
        return [role for role in self.roles if self.worst(role) == variant]

    def lines(self) -> list[str]:
        """A text table for the run summary; none for an empty table."""
        if not self.rows:
            return []
        roles = self.roles
        lines = [
            "colour variants of the test photos (ROC-AUC; recall of defects and of clean leather at the threshold):",
            f"  {'variant':<16}" + "".join(f"  {role + ' auc':>14} {'defects':>8} {'clean':>8}" for role in roles),
        ]
        for name, scores in self.rows:
            cells = "".join(_cells(scores.get(role)) for role in roles)
            worst = self.worst_of(name)
            lines.append(f"  {name:<16}{cells}" + (f"   <- worst ({', '.join(worst)})" if worst else ""))
        return lines


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _cells(scores: VariantScores | None) -> str:
    auc, defects, clean = dataclasses.astuple(scores) if scores else (math.nan,) * 3
    return f"  {_number(auc):>14} {_number(defects):>8} {_number(clean):>8}"
