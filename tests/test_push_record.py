"""What ML Metadata says about the newest push: a new model copied, or the version already served (the Pusher
saw the same files, or TFX took the whole Pusher from its cache). Read from an in-memory store."""
import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.pusher import ALREADY_PUSHED
from pipeline.evaluation.run_record import PUSHER_NODE, already_pushed

PIPELINE = "leather"
State = metadata_store_pb2.Execution


class PusherRecords:
    """The Pusher node's executions and PushedModel artifacts, as TFX and components/pusher.py record them."""

    def __init__(self) -> None:
        config = metadata_store_pb2.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = metadata_store.MetadataStore(config)
        self.execution_type = self.store.put_execution_type(metadata_store_pb2.ExecutionType(name=PUSHER_NODE))
        self.artifact_type = self.store.put_artifact_type(metadata_store_pb2.ArtifactType(name="PushedModel"))
        context_type = self.store.put_context_type(metadata_store_pb2.ContextType(name="node"))
        (self.context,) = self.store.put_contexts(
            [metadata_store_pb2.Context(type_id=context_type, name=f"{PIPELINE}.{PUSHER_NODE}")])

    def execution(self, state: int) -> None:
        (execution,) = self.store.put_executions(
            [metadata_store_pb2.Execution(type_id=self.execution_type, last_known_state=state)])
        self.store.put_attributions_and_associations(
            [], [metadata_store_pb2.Association(context_id=self.context, execution_id=execution)])

    def push(self, served_before: bool) -> metadata_store_pb2.Artifact:
        """A Pusher that ran, and its PushedModel: marked when the model was the version already served."""
        self.execution(State.COMPLETE)
        artifact = metadata_store_pb2.Artifact(type_id=self.artifact_type, uri="/work/pushed")
        if served_before:
            artifact.custom_properties[ALREADY_PUSHED].int_value = 1
        return artifact


@pytest.fixture
def records() -> PusherRecords:
    return PusherRecords()


def test_a_new_model_pushed_after_the_served_one_was_pushed_again_is_pushed(records):
    records.push(served_before=True)
    assert not already_pushed(records.store, PIPELINE, records.push(served_before=False))


def test_the_served_version_pushed_again_is_already_pushed(records):
    records.push(served_before=False)
    assert already_pushed(records.store, PIPELINE, records.push(served_before=True))


def test_a_pusher_taken_from_the_cache_is_already_pushed(records):
    pushed = records.push(served_before=False)
    records.execution(State.CACHED)
    assert already_pushed(records.store, PIPELINE, pushed)
