"""A descriptor constant on one side (every training photo 227 px wide) is judged by the share of photos that differ."""
import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from models import features
from models.divergence import CONSTANT_MEASURE, divergence_rows
from monitoring.skew import compare
from pipeline.config import DEFAULT_SCHEMA

PHOTOS = 200
SIDES = (features.PHOTO_WIDTH_KEY, features.PHOTO_HEIGHT_KEY)


@pytest.fixture(scope="module")
def schema():
    return tfdv.load_schema_text(str(DEFAULT_SCHEMA))


def _photos(sides: list[int], seed: int = 0) -> pd.DataFrame:
    """Descriptors of photos alike in everything but their sides: the float ones drawn from one distribution."""
    rng = np.random.default_rng(seed)
    frame = {key: rng.uniform(0.2, 0.4, len(sides)).astype(np.float32) for key in features.PHOTO_DESCRIPTORS}
    frame.update({key: np.array(sides, dtype=np.int64) for key in SIDES})
    frame[features.DEFECT_TYPE_KEY] = np.array(["non defective", "pinhole"] * (len(sides) // 2), dtype=object)
    return pd.DataFrame(frame)


def _statistics(frame: pd.DataFrame):
    return tfdv.generate_statistics_from_dataframe(frame)


def _rows(rows) -> dict:
    return {row.feature: row for row in rows}


def test_one_odd_photo_among_constant_training_sides_is_not_skew(schema):
    training = _statistics(_photos([227] * PHOTOS))
    served = _statistics(_photos([227] * (PHOTOS - 1) + [300], seed=1))

    rows = _rows(compare(training, served, schema))

    for key in SIDES:
        assert rows[key].measure == CONSTANT_MEASURE and not rows[key].beyond
        assert rows[key].divergence == pytest.approx(1 / PHOTOS, abs=0.001)
    assert rows[features.PHOTO_BRIGHTNESS_KEY].measure == "Jensen-Shannon", "varying descriptors keep TFDV's measure"
    assert not any(row.beyond for row in rows.values()), rows


@pytest.mark.parametrize(("odd", "share", "skew"), [(50, 0.25, False), (100, 0.5, True), (PHOTOS, 1.0, True)])
def test_the_share_of_photos_off_the_constant_is_judged_against_the_bound(schema, odd, share, skew):
    training = _statistics(_photos([227] * PHOTOS))
    served = _statistics(_photos([227] * (PHOTOS - odd) + [300] * odd, seed=1))

    row = _rows(compare(training, served, schema))[features.PHOTO_WIDTH_KEY]

    assert row.divergence == pytest.approx(share, abs=0.01) and row.bound == 0.3 and row.beyond is skew


def test_constant_served_sides_against_training_with_one_odd_photo_is_not_skew(schema):
    training = _statistics(_photos([227] * (PHOTOS - 1) + [300]))
    served = _statistics(_photos([227] * PHOTOS, seed=1))

    row = _rows(compare(training, served, schema))[features.PHOTO_WIDTH_KEY]

    assert row.divergence == pytest.approx(1 / PHOTOS, abs=0.001) and not row.beyond


def test_span_drift_judges_a_constant_span_the_same_way(schema):
    before = _statistics(_photos([227] * PHOTOS))
    newest = _statistics(_photos([227] * (PHOTOS - 1) + [300], seed=1))
    anomalies = tfdv.validate_statistics(newest, schema, previous_statistics=before)

    row = _rows(divergence_rows(anomalies, schema, "drift_comparator", before, newest))[features.PHOTO_HEIGHT_KEY]

    assert row.measure == CONSTANT_MEASURE and row.divergence == pytest.approx(1 / PHOTOS, abs=0.001)
    assert not row.beyond
