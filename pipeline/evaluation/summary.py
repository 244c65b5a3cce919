"""What a finished run decided, as the lines `leather run` and `leather report` print.

Each gate is a row of one table with the numbers behind it, the failing ones
first, so a refused model says by how much it missed; the decision thresholds
say at which cut accuracy, precision and recall were computed.
"""
from __future__ import annotations

import dataclasses
import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from pipeline.evaluation.results import GateDecision
from pipeline.evaluation.run_record import RunResults
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
    already_pushed: bool = False
    """Nothing new was pushed: the destination is the version served before the run."""
    candidate_is_baseline: bool = False
    """The candidate was the blessed baseline itself (components/evaluator.py): no change gates, no comparison."""

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
            already_pushed=results.already_pushed,
            candidate_is_baseline=results.candidate_is_baseline,
        )

    def lines(self) -> list[str]:
        lines = drift_lines(self.drift)
        if self.candidate_is_baseline:
            lines.append("the candidate is the blessed model itself (nothing changed): evaluated once, not compared")
        lines.append("evaluation on the test split:")
        if self.decision_threshold is not None:
            baseline = self.baseline_decision_threshold
            lines.append(
                f"  accuracy, precision and recall at the model's decision threshold {self.decision_threshold:.4f}"
                + (f" (baseline's: {baseline:.4f})" if baseline is not None else "")
            )
        for name, value in sorted(self.metrics.items()):
            baseline = f"   (baseline {number(name, self.baseline_metrics[name])})" if name in self.baseline_metrics else ""
            lines.append(f"  {name:<32} {number(name, value):>6}{baseline}")
        lines += self.variants.lines()
        lines += gate_table(self.gates)
        lines.append("model blessed: " + ("yes" if self.blessed else "no"))
        shown = {gate.describe() for gate in self.gates}
        lines += [f"  gate failed: {failure}" for failure in self.gate_failures if failure not in shown]
        lines.append(self.push_line())
        return lines

    def verdict(self) -> str:
        """The run's decision in one line: blessed or not, and what was pushed."""
        return f"model blessed: {'yes' if self.blessed else 'no'}; {self.push_line()}"

    def push_line(self) -> str:
        return push_line(self.pushed_destination, self.already_pushed)

    @property
    def pushed_version(self) -> str | None:
        """The version folder's name under the serving directory, what TF Serving calls the version."""
        return os.path.basename(self.pushed_destination) if self.pushed else None


def push_line(pushed_destination: str | None, already_pushed: bool) -> str:
    """Where the model went; `already pushed` when the served version was this very model."""
    if pushed_destination is None:
        return "not pushed"
    if already_pushed:
        return f"already pushed: version {os.path.basename(pushed_destination)}"
    return f"pushed to: {pushed_destination}"


COUNT_METRICS = ("example_count",)
"""Metrics that count photos: printed as whole numbers."""


def number(metric: str, value: float) -> str:
    """A metric's value as the summary and the page print it: `171`, not `171.0000`, for a count of photos."""
    return f"{value:.0f}" if metric in COUNT_METRICS else f"{value:.4f}"


def failing_first(gates: list[GateDecision]) -> list[GateDecision]:
    """The gates in the order the printed table and the report page show them: the failed ones first."""
    return sorted(gates, key=lambda gate: gate.passed)


def gate_table(gates: list[GateDecision]) -> list[str]:
    """One row per gate, the failing ones first: result, slice, metric, bound, candidate, baseline, change."""
    if not gates:
        return ["gates: none configured"]
    rows = [("result", "slice", "metric", "bound", "candidate", "baseline", "change")]
    for gate in failing_first(gates):
        rows.append((
            "pass" if gate.passed else "FAIL",
            gate.slice,
            gate.metric,
            f"change >= {gate.bound:+.4f}" if gate.is_change else f">= {number(gate.metric, gate.bound)}",
            number(gate.metric, gate.candidate),
            "-" if gate.baseline is None else number(gate.metric, gate.baseline),
            "-" if gate.change is None else f"{gate.change:+.4f}",
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["gates:"] + ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


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
