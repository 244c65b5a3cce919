"""The curated schema and the importer agree: every descriptor is curated, and imported photos break nothing."""
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from ingest.importer import SHARD_PATTERN, import_images
from ingest.synth import generate_dataset
from models import features
from pipeline.config import DEFAULT_SCHEMA


@pytest.fixture(scope="module")
def schema() -> schema_pb2.Schema:
    return tfdv.load_schema_text(str(DEFAULT_SCHEMA))


def test_every_descriptor_is_curated_with_a_domain_a_skew_bound_and_no_shape(schema):
    curated = {feature.name: feature for feature in schema.feature if feature.name.startswith("photo_")}

    assert set(curated) == set(features.PHOTO_DESCRIPTORS)
    for name, feature in curated.items():
        expected_type = schema_pb2.FLOAT if name in features.PHOTO_FLOAT_DESCRIPTORS else schema_pb2.INT
        assert feature.type == expected_type, name
        domain = "float_domain" if expected_type == schema_pb2.FLOAT else "int_domain"
        assert feature.WhichOneof("domain_info") == domain, name
        assert 0 < feature.skew_comparator.jensen_shannon_divergence.threshold < 1, name
        assert not feature.HasField("shape"), f"{name}: a shape would make Transform need it"
        assert feature.presence.min_fraction == 1.0


def test_imported_photos_of_every_kind_break_nothing_in_the_schema(schema, tmp_path):
    generate_dataset(tmp_path / "src", 40, seed=3, size=64, colour_confound=True)
    import_images(tmp_path / "src", tmp_path / "out")

    statistics = tfdv.generate_statistics_from_tfrecord(str(tmp_path / "out" / SHARD_PATTERN))
    anomalies = tfdv.validate_statistics(statistics, schema)

    assert dict(anomalies.anomaly_info) == {}
    described = {f.path.step[0] for f in statistics.datasets[0].features} & set(features.PHOTO_DESCRIPTORS)
    assert described == set(features.PHOTO_DESCRIPTORS)
