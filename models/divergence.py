"""How far apart two sets of photos are, feature by feature, by the comparators of the curated schema.

Training/serving skew (`leather monitor`) and drift between spans (the
pipeline's SpanDrift) ask one question of two pairs of statistics. TFDV's
`validate_statistics` measures each comparator the schema sets on a feature
(a Jensen-Shannon divergence between histograms of a number, an L-infinity
distance between the shares of a category) and flags those beyond their bound;
this module reads its answer back as one row per bounded feature.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

Comparator = Literal["skew_comparator", "drift_comparator"]
_Measure = anomalies_pb2.DriftSkewInfo.Measurement
_MEASURES = {
    "jensen_shannon_divergence": (_Measure.JENSEN_SHANNON_DIVERGENCE, anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH),
    "infinity_norm": (_Measure.L_INFTY, anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH),
}
MEASURE_NAMES = {"jensen_shannon_divergence": "Jensen-Shannon", "infinity_norm": "L-infinity"}


class ComparisonError(ValueError):
    """The comparison cannot be made: the schema bounds nothing, or TFDV measured nothing for a feature; names it."""


@dataclasses.dataclass(frozen=True)
class DivergenceRow:
    """One feature's verdict: its divergence by the schema's measure, the bound, and whether TFDV flagged it."""

    feature: str
    measure: str
    divergence: float
    bound: float
    beyond: bool


def bounded_features(schema: schema_pb2.Schema, comparator: Comparator) -> dict[str, tuple[str, float]]:
    """Feature name to (measure, bound) for every feature the schema gives this comparator."""
    bounds = {}
    for feature in schema.feature:
        if not feature.HasField(comparator):
            continue
        setting = getattr(feature, comparator)
        for measure in _MEASURES:
            if setting.HasField(measure):
                bounds[feature.name] = (measure, getattr(setting, measure).threshold)
    if not bounds:
        raise ComparisonError(f"the schema sets no {comparator} (jensen_shannon_divergence or infinity_norm) on any feature")
    return bounds


def divergence_rows(
    anomalies: anomalies_pb2.Anomalies, schema: schema_pb2.Schema, comparator: Comparator
) -> list[DivergenceRow]:
    """Each bounded feature's measured divergence and verdict, in the schema's order."""
    measured = {}
    for info in anomalies.drift_skew_info:
        measurements = info.drift_measurements if comparator == "drift_comparator" else info.skew_measurements
        for measurement in measurements:
            measured[(".".join(info.path.step), measurement.type)] = measurement.value
    rows = []
    for name, (measure, bound) in bounded_features(schema, comparator).items():
        kind, flag = _MEASURES[measure]
        if (name, kind) not in measured:
            raise ComparisonError(f"TFDV measured no {MEASURE_NAMES[measure]} divergence for {name}: it is missing from one side's statistics")
        beyond = name in anomalies.anomaly_info and any(
            reason.type == flag for reason in anomalies.anomaly_info[name].reason
        )
        rows.append(DivergenceRow(name, MEASURE_NAMES[measure], measured[(name, kind)], bound, beyond))
    return rows
