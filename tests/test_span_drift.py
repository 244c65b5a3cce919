"""Drift between spans, judged by TFDV's drift comparators in the curated schema, on the photos' descriptors."""
import pathlib

import pytest
import tensorflow_data_validation as tfdv

from components.span_drift import DriftError, compare_spans, drift_message, previous_span
from ingest.spans import import_span
from ingest.synth import generate_dataset
from pipeline.config import DEFAULT_SCHEMA
from pipeline.evaluation.summary import drift_lines
from span_support import colour_shifted_copy, every_nth_photo

HUE = ("photo_hue_x", "photo_hue_y")


@pytest.fixture(scope="module")
def schema():
    return tfdv.load_schema_text(str(DEFAULT_SCHEMA))


def _verdicts(rows) -> dict[str, bool]:
    return {row.feature: row.beyond for row in rows}


def test_the_span_before_is_the_highest_number_below(tmp_path):
    for span in (1, 3, 4):
        (tmp_path / f"span-{span}").mkdir()
    (tmp_path / "span-x").mkdir()
    assert previous_span(str(tmp_path), 4) == 3
    assert previous_span(str(tmp_path), 3) == 1
    assert previous_span(str(tmp_path), 1) is None


def test_the_first_span_has_nothing_to_compare(tmp_path, schema):
    generate_dataset(tmp_path / "a", 8, seed=1)
    import_span(tmp_path / "a", tmp_path / "data")
    assert compare_spans(str(tmp_path / "data"), 1, schema) == (None, [])
    assert drift_lines({"span": 1, "previous_span": None, "rows": [], "stopped": False}) == [
        "span drift: span 1 is the first span; nothing to compare it with"
    ]


def test_synthetic_leather_of_another_seed_passes_and_a_dye_change_is_caught(tmp_path, schema):
    for seed in (1, 2):
        generate_dataset(tmp_path / f"seed{seed}", 60, seed=seed)
    colour_shifted_copy(tmp_path / "seed2", tmp_path / "dyed", "hue+120")
    data = tmp_path / "data"
    for folder in ("seed1", "seed2", "dyed"):
        import_span(tmp_path / folder, data)

    previous, fresh = compare_spans(str(data), 2, schema)
    assert previous == 1 and not any(_verdicts(fresh).values()), fresh
    assert {row.feature for row in fresh} >= {*HUE, "photo_brightness", "defect_type"}

    previous, dyed = compare_spans(str(data), 3, schema)
    assert previous == 2
    beyond = {row.feature for row in dyed if row.beyond}
    assert beyond & set(HUE) and beyond <= {*HUE, "photo_saturation", "photo_brightness", "photo_contrast"}, dyed
    message = drift_message(dyed, 3, 2)
    row = next(row for row in dyed if row.feature in beyond)
    assert f"{row.feature} Jensen-Shannon divergence {row.divergence:.3f} above the bound {row.bound:g}" in message
    assert message.startswith("span drift: span 3 differs from span 2") and "--on-drift warn" in message
    assert issubclass(DriftError, RuntimeError)

    warned = drift_lines({"span": 3, "previous_span": 2, "rows": [r.__dict__ for r in dyed], "stopped": False})
    assert warned[0].startswith("WARNING span drift, span 3 against span 2:")
    assert any(row.feature in line for line in warned[1:])


@pytest.mark.real_data
def test_real_photos_fresh_pass_and_the_same_photos_in_another_hue_are_caught(real_data_dir, tmp_path, schema):
    """Measured on a third of the set each: fresh halves diverge by at most 0.03, a 120 degree hue turn by 0.3 to 0.65."""
    every_nth_photo(real_data_dir, tmp_path / "old", 6)
    every_nth_photo(real_data_dir, tmp_path / "new", 6, offset=3)
    colour_shifted_copy(tmp_path / "new", tmp_path / "dyed", "hue+120")
    data = tmp_path / "data"
    for folder in ("old", "new", "dyed"):
        import_span(tmp_path / folder, data)

    _, fresh = compare_spans(str(data), 2, schema)
    assert not any(_verdicts(fresh).values()), fresh
    assert max(row.divergence for row in fresh) < 0.1
    _, dyed = compare_spans(str(data), 3, schema)
    assert _verdicts(dyed)["photo_hue_y"], dyed
    assert _verdicts(dyed)["defect_type"] is False, "the same photos keep their labels"
