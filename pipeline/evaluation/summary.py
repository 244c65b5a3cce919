"""What a finished run decided, as the lines `leather run` and `leather report` print.

Each gate is shown with the numbers behind it, pass or fail, so a refused model
says by how much it missed; the decision thresholds say at which cut accuracy,
precision and recall were computed.
"""
from __future__ import annotations

import dataclasses
import itertools

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from pipeline.evaluation.results import GateDecision, RunResults
from pipeline.evaluation.variants import VariantTable


@dataclasses.dataclass
class RunSummary:
    metrics: dict[str, float]
    blessed: bool
    gate_failures: list[str]
    pushed: bool
    pushed_destination: str | None
    gates: list[GateDecision] = dataclasses.field(default_factory=list)
    baseline_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    decision_threshold: float | None = None
    baseline_decision_threshold: float | None = None
    variants: VariantTable = dataclasses.field(default_factory=VariantTable)
    drift: dict | None = None

    @classmethod
    def of(cls, results: RunResults) -> RunSummary:
        evaluation = results.evaluation
        return cls(
            metrics=evaluation.candidate_metrics,
            blessed=results.blessed,
            gate_failures=evaluation.failures(),
            pushed=results.pushed_destination is not None,
            pushed_destination=results.pushed_destination,
            gates=evaluation.gates(),
            baseline_metrics=evaluation.baseline_metrics,
            decision_threshold=evaluation.decision_thresholds.get(evaluation.candidate_name),
            baseline_decision_threshold=evaluation.decision_thresholds.get(evaluation.baseline_name),
            variants=VariantTable.of(evaluation),
            drift=results.drift,
        )

    def lines(self) -> list[str]:
        lines = drift_lines(self.drift) + ["evaluation on the test split:"]
        if self.decision_threshold is not None:
            baseline = self.baseline_decision_threshold
            lines.append(
                f"  accuracy, precision and recall at the model's decision threshold {self.decision_threshold:.4f}"
                + (f" (baseline's: {baseline:.4f})" if baseline is not None else "")
            )
        for name, value in sorted(self.metrics.items()):
            baseline = f"   (baseline {self.baseline_metrics[name]:.4f})" if name in self.baseline_metrics else ""
            lines.append(f"  {name:<32} {value:.4f}{baseline}")
        lines += self.variants.lines()
        if not self.gates:
            lines.append("gates: none configured")
        for where, gates in itertools.groupby(self.gates, key=lambda gate: gate.slice):
            lines.append(f"gates on the {where} slice:")
            lines += [f"  {gate.describe()}" for gate in gates]
        lines.append("model blessed: " + ("yes" if self.blessed else "no"))
        shown = {gate.describe() for gate in self.gates}
        lines += [f"  gate failed: {failure}" for failure in self.gate_failures if failure not in shown]
        lines.append(f"pushed to: {self.pushed_destination}" if self.pushed else "not pushed")
        return lines


def drift_lines(drift: dict | None) -> list[str]:
    """The drift check's verdict; a drift that did not stop the run (--on-drift warn) is a WARNING."""
    if drift is None:
        return []
    if drift["previous_span"] is None:
        return [f"span drift: span {drift['span']} is the first span; nothing to compare it with"]
    beyond = [row for row in drift["rows"] if row["beyond"]]
    head = f"span drift, span {drift['span']} against span {drift['previous_span']}:"
    if not beyond:
        largest = max(drift["rows"], key=lambda row: row["divergence"] / row["bound"] if row["bound"] else 0.0)
        return [
            f"{head} every feature within its bound (closest: {largest['feature']} {largest['measure']} "
            f"{largest['divergence']:.3f}, bound {largest['bound']:g})"
        ]
    return [f"WARNING {head} drift not stopped (--on-drift warn)"] + [
        f"  {row['feature']:<20} {row['measure']} {row['divergence']:.3f} above the bound {row['bound']:g}" for row in beyond
    ]


def summarize(pipeline_name: str, connection_config: metadata_store_pb2.ConnectionConfig) -> RunSummary:
    return RunSummary.of(RunResults.load(mlmd.MetadataStore(connection_config), pipeline_name))
