"""Spans of a data folder: each import adds the next one, claims it atomically, and a run reads only span folders."""
import json
import pathlib
import threading

import pytest

from cli.main import main
from image_support import image_bytes
from ingest.importer import MANIFEST_NAME, IngestError, import_images
from ingest.spans import check_span_layout, import_span, newest_span_dir, span_numbers


@pytest.fixture()
def photos(tmp_path: pathlib.Path) -> pathlib.Path:
    src = tmp_path / "photos"
    for index, name in enumerate(["non defective/a.jpg", "non defective/b.jpg", "pinhole/c.jpg", "pinhole/d.png"]):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(image_bytes("RGB", "PNG" if name.endswith("png") else "JPEG", seed=index))
    return src


def test_imports_without_a_span_take_the_next_free_one(photos, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["data", "import", str(photos), str(data)]) == 0
    assert "(span 1)" in capsys.readouterr().out
    assert main(["data", "import", str(photos), str(data), "--span", "5"]) == 0
    assert main(["data", "import", str(photos), str(data)]) == 0
    assert span_numbers(data) == [1, 5, 6]
    assert newest_span_dir(data) == data / "span-6"
    manifest = json.loads((data / "span-6" / MANIFEST_NAME).read_text())
    assert manifest["totals"]["written"] == 4


def test_an_existing_span_is_replaced_only_with_overwrite(photos, tmp_path, capsys):
    data = tmp_path / "data"
    import_span(photos, data, 1)
    before = sorted(p.stat().st_mtime_ns for p in (data / "span-1").glob("data-*"))
    assert main(["data", "import", str(photos), str(data), "--span", "1"]) == 1
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert main(["data", "import", str(photos), str(data), "--span", "1", "--overwrite"]) == 0
    assert sorted(p.stat().st_mtime_ns for p in (data / "span-1").glob("data-*")) == before, "unchanged shards keep their dates"
    assert span_numbers(data) == [1]


@pytest.mark.parametrize("span", ["0", "-1", "x"])
def test_a_span_number_below_one_is_refused(photos, tmp_path, span, capsys):
    with pytest.raises(SystemExit):
        main(["data", "import", str(photos), str(tmp_path / "data"), "--span", span])
    assert "--span" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_concurrent_imports_claim_different_spans(photos, tmp_path):
    data = tmp_path / "data"
    claimed, errors = [], []

    def run() -> None:
        try:
            claimed.append(import_span(photos, data)[0])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(claimed) == [1, 2, 3, 4] and span_numbers(data) == [1, 2, 3, 4]


def test_a_failed_import_leaves_no_span_behind(photos, tmp_path):
    (photos / "pinhole" / "x.jpg").write_text("not an image")
    data = tmp_path / "data"
    with pytest.raises(IngestError, match="--strict"):
        import_span(photos, data, strict=True)
    assert not data.exists()
    import_span(photos, data)
    with pytest.raises(IngestError, match="--strict"):
        import_span(photos, data, strict=True)
    assert span_numbers(data) == [1]


def test_a_look_alike_span_folder_is_named(photos, tmp_path):
    data = tmp_path / "data"
    import_span(photos, data, 1)
    (data / "span-01").mkdir()
    with pytest.raises(IngestError, match="span-01 is not a span folder this importer writes"):
        check_span_layout(data)
    with pytest.raises(IngestError, match="span-01"):
        import_span(photos, data)


def test_shards_from_before_spans_are_refused_with_what_to_do(photos, tmp_path, capsys):
    old = tmp_path / "old"
    import_images(photos, old)
    with pytest.raises(IngestError, match="import made before spans; import the photos again"):
        check_span_layout(old)
    assert main(["run", "--data", str(old), "--workdir", str(tmp_path / "work")]) == 1
    assert "import made before spans" in capsys.readouterr().err
    assert main(["data", "import", str(photos), str(old)]) == 1
    assert "import made before spans" in capsys.readouterr().err
    assert span_numbers(old) == []


def test_an_image_folder_given_to_run_becomes_span_one(photos, tmp_path):
    from cli.data_source import tfrecord_dir

    data = tfrecord_dir(photos, tmp_path / "out", "non defective")
    assert data == tmp_path / "out" / "tfrecords" and span_numbers(data) == [1]
    assert tfrecord_dir(data, tmp_path / "elsewhere", "non defective") == data, "a data folder is used as it is"
