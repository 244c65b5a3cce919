"""`leather monitor`: a log of hue-turned photos is flagged, a log of the training photos passes, bad input exits 2."""
import pathlib

import pytest
import tensorflow as tf

from cli.main import main
from ingest.importer import import_images
from ingest.synth import generate_dataset
from models import features
from models.divergence import CONSTANT_MEASURE
from models.colour_variants import shift_and_encode_graph
from monitor_support import pushed_workdir, write_request_log
from monitoring.logged_photos import LogSummary, completed_log_files, logged_photos
from monitoring.skew import describe_photos

PHOTOS = 60
MIN_PHOTOS = ["--min-photos", "20"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Imported synthetic photos, a workdir that pushed a model trained on them, and the photos' bytes."""
    root = tmp_path_factory.mktemp("monitor")
    generate_dataset(root / "src", PHOTOS, seed=5, size=96)
    import_images(root / "src", root / "examples")
    photos = [path.read_bytes() for path in sorted((root / "src").rglob("*.jpg"))]
    return {"root": root, "workdir": pushed_workdir(root / "work", root / "examples"), "photos": photos}


def _monitor(trained: dict, log_dir: pathlib.Path, *extra: str) -> int:
    return main(["monitor", "--requests", str(log_dir), "--workdir", str(trained["workdir"]), *MIN_PHOTOS, *extra])


def test_the_log_holds_every_logged_photo_of_both_request_kinds(trained, tmp_path):
    write_request_log(tmp_path / "log", trained["photos"])
    (tmp_path / "log" / "prediction_log-000099.tfrecord.partial").write_bytes(b"half written")

    summary = LogSummary()
    photos = list(logged_photos(completed_log_files(tmp_path / "log"), summary))

    assert photos == trained["photos"]
    assert summary.model_versions == {1: PHOTOS}
    assert (summary.files, summary.photos, summary.records) == (1, PHOTOS, PHOTOS // 4)


def test_a_logged_photo_that_does_not_decode_is_counted_and_the_others_kept(trained):
    good = trained["photos"][:3]

    described = describe_photos([good[0], b"not a photo", good[1], good[2]])

    assert described.undecodable == 1
    assert len(described.descriptors) == 3
    expected = describe_photos(good).descriptors
    assert described.descriptors[features.PHOTO_HUE_X_KEY].tolist() == expected[features.PHOTO_HUE_X_KEY].tolist()


def test_the_training_photos_themselves_pass(trained, tmp_path, capsys):
    write_request_log(tmp_path / "log", trained["photos"])

    assert _monitor(trained, tmp_path / "log", "--out", str(tmp_path / "page")) == 0

    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("photo_")}
    assert set(rows) == set(features.PHOTO_DESCRIPTORS)
    assert all(row[-1] == "ok" and float(row[1]) < 0.01 for row in rows.values())
    assert (tmp_path / "page" / "monitor.html").is_file() and (tmp_path / "page" / "descriptors.png").is_file()


def test_hue_turned_photos_are_flagged_on_the_hue(trained, tmp_path, capsys):
    turn = shift_and_encode_graph(("hue+120",))
    write_request_log(tmp_path / "log", [turn(tf.constant(photo)).numpy()[0] for photo in trained["photos"]])

    assert _monitor(trained, tmp_path / "log", "--out", str(tmp_path / "page")) == 1

    out = capsys.readouterr().out
    verdicts = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.startswith("photo_")}
    assert verdicts[features.PHOTO_HUE_X_KEY] == "SKEW"
    assert verdicts[features.PHOTO_WIDTH_KEY] == verdicts[features.PHOTO_SHARPNESS_KEY] == "ok"
    assert "skew: the served photos differ from the training photos in" in out
    page = (tmp_path / "page" / "monitor.html").read_text()
    assert "SKEW" in page
    # Each row names its own measure: the hue by Jensen-Shannon, the width (one size on both sides) by the share of
    # photos that differ from it, which the page once labelled a Jensen-Shannon divergence too.
    assert f"<td>{features.PHOTO_HUE_X_KEY}</td><td>Jensen-Shannon</td>" in page
    assert f"<td>{features.PHOTO_WIDTH_KEY}</td><td>{CONSTANT_MEASURE}</td>" in page


def test_bad_input_is_one_line_and_exit_2(trained, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "prediction_log-000001.tfrecord.partial").write_bytes(b"")
    write_request_log(tmp_path / "log", trained["photos"][:10])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "prediction_log-000001.tfrecord").write_bytes(b"not a TFRecord at all")
    cases = {
        "prediction_log-000001.tfrecord is not a readable PredictionLog file": ["--requests", str(tmp_path / "junk")],
        "does not exist or is not a directory": ["--requests", str(tmp_path / "missing")],
        "holds no completed request log files": ["--requests", str(tmp_path / "empty")],
        "holds no pipeline metadata": ["--requests", str(tmp_path / "log"), "--min-photos", "5",
                                       "--workdir", str(tmp_path)],
        "holds 10 usable logged photos, fewer than --min-photos 20": ["--requests", str(tmp_path / "log")],
        "pushed version 7": ["--requests", str(tmp_path / "log"), "--min-photos", "5", "--model-version", "7"],
    }
    for message, arguments in cases.items():
        argv = ["monitor", "--workdir", str(trained["workdir"]), *MIN_PHOTOS, *arguments]
        assert main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_model_trained_before_the_descriptors_existed_is_named_as_such(trained, tmp_path, capsys):
    """Shards imported before the importer wrote descriptors: their statistics hold no photo_* to compare."""
    (tmp_path / "old").mkdir()
    with tf.io.TFRecordWriter(str(tmp_path / "old" / "data-00000-of-00001.tfrecord")) as writer:
        for photo in trained["photos"]:
            image = {features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[photo]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=image)).SerializeToString())
    workdir = pushed_workdir(tmp_path / "work", tmp_path / "old")
    write_request_log(tmp_path / "log", trained["photos"])

    assert main(["monitor", "--requests", str(tmp_path / "log"), "--workdir", str(workdir), *MIN_PHOTOS]) == 2

    assert "import the data again and rerun the pipeline" in capsys.readouterr().err
