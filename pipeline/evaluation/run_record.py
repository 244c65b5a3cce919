"""A finished run's record in ML Metadata: which evaluation the newest Evaluator wrote, the blessing, the push.

LocalDagRunner returns nothing, and a cached node records no new outputs of its
own kind, so a run's results are, per node, the newest execution's output
events; a cached Pusher, or one given the version already served, pushed
nothing new (`already_pushed`).
"""
from __future__ import annotations

import dataclasses

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components.evaluator import CANDIDATE_IS_BASELINE
from components.pusher import ALREADY_PUSHED
from components.span_drift import read_drift
from pipeline.evaluation.results import Evaluation

EVALUATOR_NODE = "Evaluator"
PUSHER_NODE = "Pusher"
SPAN_DRIFT_NODE = "SpanDrift"


def newest_execution(store: mlmd.MetadataStore, pipeline_name: str, node: str) -> metadata_store_pb2.Execution:
    """The node's newest execution, a cached one included."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node}")
    if context is None:
        raise LookupError(f"ML Metadata has no record of node {node} in pipeline {pipeline_name}")
    return max(store.get_executions_by_context(context.id), key=lambda e: e.id)


def newest_outputs(store: mlmd.MetadataStore, pipeline_name: str, node: str) -> dict[str, metadata_store_pb2.Artifact]:
    """The output artifacts of the node's newest execution, by output key."""
    execution = newest_execution(store, pipeline_name, node)
    events = [
        e
        for e in store.get_events_by_execution_ids([execution.id])
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    return {e.path.steps[0].key: artifacts[e.artifact_id] for e in events}


def already_pushed(store: mlmd.MetadataStore, pipeline_name: str, pushed: metadata_store_pb2.Artifact) -> bool:
    """True when the newest Pusher execution copied nothing: taken from the cache, or the model it was given is
    the version already served (components/pusher.py)."""
    cached = newest_execution(store, pipeline_name, PUSHER_NODE).last_known_state == metadata_store_pb2.Execution.CACHED
    return cached or bool(pushed.custom_properties[ALREADY_PUSHED].int_value)


@dataclasses.dataclass(frozen=True)
class RunResults:
    """What the newest Evaluator and Pusher executions recorded: the evaluation, the blessing, the push."""

    evaluation_uri: str
    evaluation: Evaluation
    blessed: bool
    pushed_destination: str | None
    """None when the Pusher did not push (the model was not blessed)."""
    already_pushed: bool = False
    """True when the destination is the version served before this run: nothing new was pushed."""
    drift: dict | None = None
    """What SpanDrift compared and found (components.span_drift); None in stores from before spans."""
    candidate_is_baseline: bool = False
    """The resolver's baseline was the candidate itself (a rerun on unchanged data): evaluated once, no comparison."""

    @classmethod
    def load(cls, store: mlmd.MetadataStore, pipeline_name: str) -> RunResults:
        evaluator = newest_outputs(store, pipeline_name, EVALUATOR_NODE)
        pushed = newest_outputs(store, pipeline_name, PUSHER_NODE)["pushed_model"]
        evaluation_uri = evaluator["evaluation"].uri
        was_pushed = bool(pushed.custom_properties["pushed"].int_value)
        return cls(
            evaluation_uri=evaluation_uri,
            evaluation=Evaluation.load(evaluation_uri),
            blessed=bool(evaluator["blessing"].custom_properties["blessed"].int_value),
            pushed_destination=pushed.custom_properties["pushed_destination"].string_value if was_pushed else None,
            already_pushed=was_pushed and already_pushed(store, pipeline_name, pushed),
            drift=_drift(store, pipeline_name),
            candidate_is_baseline=bool(evaluator["blessing"].custom_properties[CANDIDATE_IS_BASELINE].int_value),
        )


def _drift(store: mlmd.MetadataStore, pipeline_name: str) -> dict | None:
    try:
        return read_drift(newest_outputs(store, pipeline_name, SPAN_DRIFT_NODE)["drift"])
    except (LookupError, ValueError):
        return None
