"""How far apart two sets of photos are, feature by feature, by the comparators of the curated schema.

Training/serving skew (`leather monitor`) and drift between spans (the
pipeline's SpanDrift) ask one question of two pairs of statistics. TFDV's
`validate_statistics` measures each comparator the schema sets on a feature
(a Jensen-Shannon divergence between histograms of a number, an L-infinity
distance between the shares of a category) and flags those beyond their bound;
this module reads its answer back as one row per bounded feature.

TFDV's histogram divergence is 1.0, "disjoint", whenever one side holds a
single value and the other anything else: its rebucketing gives a point mass
no width, so 199 photos of 227 px and one of 300 px are as far from 200 of
227 px as photos of another size. A feature that is constant on either side is
judged instead by the share of the other side's photos that differ from that
value (its total variation distance, never below the Jensen-Shannon divergence
in bits, so the schema's bound is no more lenient for it).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

Comparator = Literal["skew_comparator", "drift_comparator"]
_Measure = anomalies_pb2.DriftSkewInfo.Measurement
_MEASURES = {
    "jensen_shannon_divergence": (_Measure.JENSEN_SHANNON_DIVERGENCE, anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH),
    "infinity_norm": (_Measure.L_INFTY, anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH),
}
MEASURE_NAMES = {"jensen_shannon_divergence": "Jensen-Shannon", "infinity_norm": "L-infinity"}
CONSTANT_MEASURE = "share differing from the constant"
"""The measure of a row whose feature holds one value on one side (see the module docstring)."""
Statistics = statistics_pb2.DatasetFeatureStatisticsList


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
    anomalies: anomalies_pb2.Anomalies,
    schema: schema_pb2.Schema,
    comparator: Comparator,
    baseline: Statistics,
    compared: Statistics,
) -> list[DivergenceRow]:
    """Each bounded feature's measured divergence and verdict, in the schema's order.

    `baseline` and `compared` are the two statistics TFDV compared (training and
    serving, or the span before and the newest); a numeric feature constant on
    either side is measured by the share that differs from the constant.
    """
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
        share = _share_off_constant(_num_stats(baseline, name), _num_stats(compared, name))
        if kind == _Measure.JENSEN_SHANNON_DIVERGENCE and share is not None:
            rows.append(DivergenceRow(name, CONSTANT_MEASURE, share, bound, share > bound))
            continue
        beyond = name in anomalies.anomaly_info and any(
            reason.type == flag for reason in anomalies.anomaly_info[name].reason
        )
        rows.append(DivergenceRow(name, MEASURE_NAMES[measure], measured[(name, kind)], bound, beyond))
    return rows


def _num_stats(statistics: Statistics, name: str) -> statistics_pb2.NumericStatistics | None:
    for feature in statistics.datasets[0].features if statistics.datasets else ():
        if (".".join(feature.path.step) or feature.name) == name and feature.HasField("num_stats"):
            return feature.num_stats
    return None


def _share_off_constant(
    baseline: statistics_pb2.NumericStatistics | None, compared: statistics_pb2.NumericStatistics | None
) -> float | None:
    """The share of one side's photos away from the other side's single value, or None when neither is constant.

    Read from the varying side's standard histogram: the photos outside the
    buckets holding the constant differ from it (TFDV keeps no exact counts).
    """
    if baseline is None or compared is None:
        return None
    for constant, varying in ((baseline, compared), (compared, baseline)):
        if constant.min == constant.max and constant.common_stats.num_non_missing:
            buckets = next((h.buckets for h in varying.histograms if h.type == statistics_pb2.Histogram.STANDARD), [])
            total = sum(bucket.sample_count for bucket in buckets)
            if not total:
                return None
            same = sum(b.sample_count for b in buckets if b.low_value <= constant.min <= b.high_value)
            return max(0.0, 1.0 - same / total)
    return None
